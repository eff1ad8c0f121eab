//! Small serde helpers shared by the provider models.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::Value;

/// Deserialises an optional id that a provider may send as a number or a
/// string (Partoo's ids are numbers in the docs, strings elsewhere). Any other
/// JSON type becomes `None` rather than failing the whole event.
pub fn opt_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(s) if !s.is_empty() => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// Deserialises an optional string leniently: a number or bool becomes its
/// text, anything else (`null`, objects, arrays) becomes `None`.
pub fn opt_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

/// Deserialises an optional boolean leniently (`true`, `"true"`, `1`).
pub fn opt_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Bool(b) => Some(b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        Value::Number(n) => n.as_i64().map(|v| v != 0),
        _ => None,
    })
}

/// Deserialises an optional number leniently (number or numeric string).
pub fn opt_f64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

// Nested objects are read leniently, and on their own: each one is first
// taken as raw JSON text, then parsed into its model, so an object of the
// wrong shape (or with a duplicate key) becomes `None` and the rest of the
// event still reads. serde_json cannot resume after an error inside a value,
// so this is what keeps one bad field from failing the whole event.

/// Parses an envelope's `payload` text leniently: a payload that is not an
/// object decodes as the default (every field absent), a nested object of
/// the wrong shape as `None`.
pub fn payload<T: serde::de::DeserializeOwned + Default>(raw: Option<&RawValue>) -> T {
    raw.and_then(|r| object_text(r.get()))
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

/// Deserialises a value that should be an object but may be `null` or of the
/// wrong shape: anything else becomes `None`.
pub fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let raw = Box::<RawValue>::deserialize(deserializer)?;
    Ok(object_text(raw.get()).and_then(|text| serde_json::from_str(text).ok()))
}

/// The text of a JSON object, or `None` for any other JSON value: structs
/// must not be filled positionally from an array.
fn object_text(raw: &str) -> Option<&str> {
    raw.trim_start().starts_with('{').then_some(raw)
}

/// A list that may be `null`, missing, or contain items of the wrong shape
/// (those are skipped).
pub fn lenient_vec<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let raw = Box::<RawValue>::deserialize(deserializer)?;
    Ok(serde_json::from_str::<Vec<Box<RawValue>>>(raw.get())
        .map(|items| {
            items
                .iter()
                .filter_map(|item| object_text(item.get()))
                .filter_map(|text| serde_json::from_str(text).ok())
                .collect()
        })
        .unwrap_or_default())
}

/// Empty strings carry no information in these payloads (`"name": ""`).
pub fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|s| !s.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, Deserialize)]
    struct Inner {
        #[serde(default, deserialize_with = "opt_text")]
        a: Option<String>,
    }

    #[derive(Debug, Default, PartialEq, Deserialize)]
    struct Outer {
        #[serde(default, deserialize_with = "lenient")]
        x: Option<Inner>,
        #[serde(default, deserialize_with = "opt_text")]
        y: Option<String>,
        #[serde(default, deserialize_with = "lenient_vec")]
        v: Vec<Inner>,
    }

    fn read(text: &str) -> Outer {
        let raw: Box<RawValue> = serde_json::from_str(text).unwrap_or_else(|_| {
            RawValue::from_string("null".into()).unwrap_or_else(|_| unreachable!())
        });
        payload(Some(&raw))
    }

    fn inner(a: &str) -> Inner {
        Inner { a: Some(a.into()) }
    }

    #[test]
    fn well_formed_payloads_read_whole() {
        let out = read(r#"{"x":{"a":"1"},"y":2,"v":[{"a":"3"},5,null,[1],{"a":4}]}"#);
        assert_eq!(
            out,
            Outer {
                x: Some(inner("1")),
                y: Some("2".into()),
                v: vec![inner("3"), inner("4")],
            }
        );
    }

    #[test]
    fn values_of_the_wrong_shape_are_none_or_empty() {
        for x in ["null", "[1,2]", "\"s\"", "3", "true", "1.5"] {
            let out = read(&format!(r#"{{"x":{x},"y":"k","v":{x}}}"#));
            assert_eq!(out.x, None, "{x}");
            assert!(out.v.is_empty(), "{x}");
            assert_eq!(out.y.as_deref(), Some("k"), "{x}");
        }
        assert!(
            read(r#"{"v":{"a":"1"}}"#).v.is_empty(),
            "an object is not a list"
        );
    }

    #[test]
    fn a_nested_object_that_fails_fails_alone() {
        // A duplicate key inside a nested object fails serde's derive: that
        // object is `None`, everything else still reads.
        let out = read(r#"{"x":{"a":"1","a":"2"},"y":"k","v":[{"a":"3","a":"4"},{"a":"5"}]}"#);
        assert_eq!(
            out,
            Outer {
                x: None,
                y: Some("k".into()),
                v: vec![inner("5")],
            }
        );
        assert_eq!(read("[1]"), Outer::default());
    }
}
