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

/// Deserialises a value that should be an object but may be `null` or of the
/// wrong shape: anything that does not decode becomes `None`. It captures the
/// raw JSON text and parses that, instead of building a `Value` tree first.
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

/// Parses an envelope's `payload` text leniently: a payload of the wrong
/// shape decodes as the default (every field absent).
pub fn payload<T: serde::de::DeserializeOwned + Default>(raw: Option<&RawValue>) -> T {
    raw.and_then(|r| object_text(r.get()))
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
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
                .filter_map(|item| serde_json::from_str(item.get()).ok())
                .collect()
        })
        .unwrap_or_default())
}

/// Empty strings carry no information in these payloads (`"name": ""`).
pub fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|s| !s.trim().is_empty())
}
