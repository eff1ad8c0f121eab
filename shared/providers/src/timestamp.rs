//! Liberal timestamp parsing for the formats the providers document.
//!
//! - RFC 3339 with any offset (`2022-04-01T14:23:59.799+00:00`, `…Z`).
//! - Partoo's space-separated form with microseconds and an offset
//!   (`2023-01-31 16:22:17.327878+00:00`), also with `+0000` or no offset (UTC).
//! - ZipMessage's `2022-04-01 14:23:1648823039`, whose tail after the last
//!   colon is the Unix time in seconds (the seconds field is replaced by it).
//! - Unix seconds or milliseconds, as a JSON number or a digit string.
//!
//! Anything else yields `None`: a timestamp we cannot read never rejects an
//! event, the event falls back to its receive time.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

/// Parses any of the documented formats into UTC.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().ok().and_then(from_unix);
    }
    if let Some(t) = zipmessage_epoch_tail(text) {
        return Some(t);
    }
    // Space (or T) separated, optional fraction, optional offset.
    for format in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    // Partoo may send a short offset such as "+00".
    if let Some(stripped) = text.strip_suffix("+00") {
        if let Ok(t) = NaiveDateTime::parse_from_str(stripped, "%Y-%m-%d %H:%M:%S%.f") {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), format) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    None
}

/// Parses a JSON value that may be a string or a Unix-time number.
pub fn parse_value(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(s) => parse(s),
        Value::Number(n) => n.as_i64().and_then(from_unix),
        _ => None,
    }
}

/// Unix seconds, or milliseconds when the number is too large to be seconds
/// of a plausible date (after the year 5138).
pub fn from_unix(value: i64) -> Option<DateTime<Utc>> {
    if value.abs() >= 100_000_000_000 {
        Utc.timestamp_millis_opt(value).single()
    } else {
        Utc.timestamp_opt(value, 0).single()
    }
}

/// The RFC 3339 UTC rendering used everywhere in switchboard's output
/// ([`switchboard_types::rfc3339`]).
pub fn format(t: DateTime<Utc>) -> String {
    switchboard_types::rfc3339(t)
}

/// `YYYY-MM-DD HH:MM:<unix seconds>`: ZipMessage's `created_at` format.
fn zipmessage_epoch_tail(text: &str) -> Option<DateTime<Utc>> {
    let (head, tail) = text.rsplit_once(':')?;
    if tail.len() < 9 || !tail.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // The head must look like a date and an hour:minute, or this is not the format.
    NaiveDateTime::parse_from_str(&format!("{head}:00"), "%Y-%m-%d %H:%M:%S").ok()?;
    tail.parse::<i64>().ok().and_then(from_unix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(text: &str) -> String {
        format(parse(text).unwrap_or_else(|| panic!("{text} should parse")))
    }

    #[test]
    fn reads_rfc3339_with_any_offset() {
        assert_eq!(
            iso("2022-04-01T14:23:59.799+00:00"),
            "2022-04-01T14:23:59.799Z"
        );
        assert_eq!(iso("2024-11-27T19:33:53.504Z"), "2024-11-27T19:33:53.504Z");
        assert_eq!(iso("2022-04-01T16:23:59+02:00"), "2022-04-01T14:23:59Z");
    }

    #[test]
    fn reads_zipmessage_epoch_tail_format() {
        assert_eq!(iso("2022-04-01 14:23:1648823039"), "2022-04-01T14:23:59Z");
        assert_eq!(iso("2022-01-08 18:02:1641664979"), "2022-01-08T18:02:59Z");
    }

    #[test]
    fn reads_partoo_space_separated_format() {
        assert_eq!(
            iso("2023-01-31 16:22:17.327878+00:00"),
            "2023-01-31T16:22:17.327878Z"
        );
        assert_eq!(iso("2023-01-31 16:22:17+0100"), "2023-01-31T15:22:17Z");
        assert_eq!(iso("2023-01-31 16:22:17.5+00"), "2023-01-31T16:22:17.500Z");
        assert_eq!(iso("2023-01-31 16:22:17"), "2023-01-31T16:22:17Z");
    }

    #[test]
    fn reads_unix_seconds_and_millis() {
        assert_eq!(iso("1648823039"), "2022-04-01T14:23:59Z");
        assert_eq!(
            parse_value(&serde_json::json!(1648823039123i64)).map(format),
            Some("2022-04-01T14:23:59.123Z".into())
        );
    }

    #[test]
    fn unreadable_timestamps_are_none_not_errors() {
        for junk in [
            "",
            "<string>",
            "yesterday",
            "2022-13-45 99:99:99",
            "12:1648823039",
        ] {
            assert_eq!(parse(junk), None, "{junk}");
        }
    }
}
