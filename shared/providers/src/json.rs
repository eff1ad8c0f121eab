//! Small serde helpers shared by the provider models.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::Value;

/// A documented field that is modelled but not normalised: accepted in any
/// shape and skipped without building a value.
pub type Unmodelled = Option<serde::de::IgnoredAny>;

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

// Nested objects are read leniently: an object of the wrong shape becomes
// `None` instead of failing the event. serde_json cannot resume after an
// error inside a value, so the first attempt reads everything in one pass
// and any error inside a nested object fails that whole attempt; `payload`
// then reads the payload again in tolerant mode, where each nested object is
// captured as raw text first and parsed on its own (its failure stays
// local). The fast attempt succeeds for every well-formed payload (the
// documented ones and their variants), and when it does, its result is the
// tolerant mode's result: it skips work, never changes the outcome.
thread_local! {
    static TOLERANT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn tolerant() -> bool {
    TOLERANT.with(std::cell::Cell::get)
}

/// Parses an envelope's `payload` text leniently: a payload of the wrong
/// shape decodes as the default (every field absent), a nested object of
/// the wrong shape as `None`.
pub fn payload<T: serde::de::DeserializeOwned + Default>(raw: Option<&RawValue>) -> T {
    let Some(text) = raw.and_then(|r| object_text(r.get())) else {
        return T::default();
    };
    if let Ok(value) = serde_json::from_str(text) {
        return value;
    }
    TOLERANT.with(|mode| mode.set(true));
    let value = serde_json::from_str(text).unwrap_or_default();
    TOLERANT.with(|mode| mode.set(false));
    value
}

/// Deserialises a value that should be an object but may be `null` or of the
/// wrong shape: anything else becomes `None` (see `payload` for the two modes).
pub fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    if tolerant() {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        return Ok(object_text(raw.get()).and_then(|text| serde_json::from_str(text).ok()));
    }
    shaped(deserializer)
}

/// An envelope's `payload` read in the envelope's own pass, as [`lenient`]
/// reads a nested object: `Some` for an object of the expected shape, `None`
/// for any other JSON value. A payload that does not read fails the whole
/// one-pass read; the provider then reads the envelope with the payload as
/// raw text and calls [`payload`], whose result a successful one-pass read
/// equals (the same fields, read from the same text, in the same mode).
#[derive(Debug)]
pub struct InPass<T>(pub Option<T>);

impl<T> Default for InPass<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for InPass<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        lenient(deserializer).map(InPass)
    }
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
    if tolerant() {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        return Ok(serde_json::from_str::<Vec<Box<RawValue>>>(raw.get())
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| serde_json::from_str(item.get()).ok())
                    .collect()
            })
            .unwrap_or_default());
    }
    shaped(deserializer)
}

/// What a one-pass lenient read keeps: a value of the expected shape is
/// read, every other JSON value is consumed and becomes [`Shape::other`].
trait Shape<'de>: Sized {
    /// The value for JSON of any other shape.
    fn other() -> Self;

    /// Reads an object; by default it is the wrong shape.
    fn map<A: serde::de::MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Self::other())
    }

    /// Reads an array; by default it is the wrong shape.
    fn seq<A: serde::de::SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Self::other())
    }
}

/// An object as `Some(T)`.
impl<'de, T: Deserialize<'de>> Shape<'de> for Option<T> {
    fn other() -> Self {
        None
    }

    fn map<A: serde::de::MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Some)
    }
}

/// An array's objects, skipping items of other shapes.
impl<'de, T: Deserialize<'de>> Shape<'de> for Vec<T> {
    fn other() -> Self {
        Vec::new()
    }

    fn seq<A: serde::de::SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        let mut items = Vec::new();
        while let Some(Item(item)) = seq.next_element::<Item<T>>()? {
            items.extend(item);
        }
        Ok(items)
    }
}

/// Reads any JSON value as `S` in one pass.
fn shaped<'de, D: Deserializer<'de>, S: Shape<'de>>(deserializer: D) -> Result<S, D::Error> {
    deserializer.deserialize_any(Shaped(std::marker::PhantomData))
}

/// One array item: `T` when it is an object, skipped otherwise.
struct Item<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Item<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        shaped(deserializer).map(Item)
    }
}

struct Shaped<S>(std::marker::PhantomData<S>);

impl<'de, S: Shape<'de>> serde::de::Visitor<'de> for Shaped<S> {
    type Value = S;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<S, A::Error> {
        S::map(map)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<S, A::Error> {
        S::seq(seq)
    }

    fn visit_bool<E>(self, _: bool) -> Result<S, E> {
        Ok(S::other())
    }

    fn visit_i64<E>(self, _: i64) -> Result<S, E> {
        Ok(S::other())
    }

    fn visit_u64<E>(self, _: u64) -> Result<S, E> {
        Ok(S::other())
    }

    fn visit_f64<E>(self, _: f64) -> Result<S, E> {
        Ok(S::other())
    }

    fn visit_str<E>(self, _: &str) -> Result<S, E> {
        Ok(S::other())
    }

    fn visit_unit<E>(self) -> Result<S, E> {
        Ok(S::other())
    }
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
    fn well_formed_payloads_read_in_one_pass() {
        let out = read(r#"{"x":{"a":"1"},"y":2,"v":[{"a":"3"},5,null,[1],{"a":4}]}"#);
        assert_eq!(
            out,
            Outer {
                x: Some(inner("1")),
                y: Some("2".into()),
                v: vec![inner("3"), inner("4")],
            }
        );
        assert!(!tolerant());
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
        // A duplicate key inside a nested object fails serde's derive: the
        // one-pass attempt fails, the tolerant pass keeps everything else.
        let out = read(r#"{"x":{"a":"1","a":"2"},"y":"k","v":[{"a":"3","a":"4"},{"a":"5"}]}"#);
        assert_eq!(
            out,
            Outer {
                x: None,
                y: Some("k".into()),
                v: vec![inner("5")],
            }
        );
        assert!(!tolerant(), "the mode is reset after the tolerant pass");
        assert_eq!(read("[1]"), Outer::default());
    }
}
