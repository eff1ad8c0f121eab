//! Liberal timestamp parsing for the formats the providers document.
//!
//! - RFC 3339 with any offset (`2022-04-01T14:23:59.799+00:00`, `…Z`).
//! - Partoo's space-separated form with microseconds and an offset
//!   (`2023-01-31 16:22:17.327878+00:00`), also with `+0000` or no offset (UTC).
//! - ZipMessage's `2022-04-01 14:23:1648823039`, whose tail after the last
//!   colon is the Unix time in seconds (the seconds field is replaced by it).
//! - Unix seconds, milliseconds, microseconds or nanoseconds, as a JSON
//!   number or a digit string, told apart by magnitude.
//!
//! Anything else yields `None`, and so does an instant outside the years
//! 0000–9999 (in UTC): the range RFC 3339 writes with four digits, which
//! the sort keys and every reader of a stored event hold. A timestamp we
//! cannot read never rejects an event: the event falls back to its receive
//! time, and the sender's value stays in its raw data.

use chrono::{DateTime, Datelike, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

/// Parses any of the documented formats into UTC, within years 0000–9999.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    parse_any(text).filter(in_range)
}

/// Whether `t` is in the years switchboard stores: 0000 to 9999 (UTC).
pub fn in_range(t: &DateTime<Utc>) -> bool {
    (0..=9999).contains(&t.year())
}

fn parse_any(text: &str) -> Option<DateTime<Utc>> {
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

/// Unix time in the unit its magnitude says, within years 0000–9999:
/// up to 11 digits seconds, up to 14 milliseconds, up to 17 microseconds
/// (Bird's `1671697970736000`), more nanoseconds. Each unit's range ends
/// after the year 5138, where the next unit's plausible dates begin.
pub fn from_unix(value: i64) -> Option<DateTime<Utc>> {
    let magnitude = value.unsigned_abs();
    let t = if magnitude < 100_000_000_000 {
        Utc.timestamp_opt(value, 0).single()
    } else if magnitude < 100_000_000_000_000 {
        Utc.timestamp_millis_opt(value).single()
    } else if magnitude < 100_000_000_000_000_000 {
        Utc.timestamp_micros(value).single()
    } else {
        Some(Utc.timestamp_nanos(value))
    };
    t.filter(in_range)
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
    fn sixteen_digits_are_microseconds_and_nineteen_nanoseconds() {
        assert_eq!(iso("1671697970736000"), "2022-12-22T08:32:50.736Z");
        assert_eq!(iso("1671697970736123"), "2022-12-22T08:32:50.736123Z");
        assert_eq!(
            parse_value(&serde_json::json!(1_671_697_970_736_000_123i64)).map(format),
            Some("2022-12-22T08:32:50.736000123Z".into())
        );
        assert_eq!(iso("1671697970736"), "2022-12-22T08:32:50.736Z");
        assert_eq!(iso("1671697970"), "2022-12-22T08:32:50Z");
    }

    #[test]
    fn instants_outside_years_0000_to_9999_are_no_time() {
        for far in [
            "9999-12-31T23:59:59-01:00",
            "0000-01-01T00:30:00+01:00",
            "+10000-01-01T00:00:00Z",
            "-62167219201",
            "-99999999999",
            "9999-12-31 23:59:59-0100",
        ] {
            assert_eq!(parse(far), None, "{far}");
        }
        assert_eq!(iso("9999-12-31T23:59:59Z"), "9999-12-31T23:59:59Z");
        assert_eq!(iso("0000-01-01T00:00:00Z"), "0000-01-01T00:00:00Z");
        // Every i64 is some instant in range or none: no panic at the ends.
        for n in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX] {
            assert!(parse_value(&serde_json::json!(n)).is_none_or(|t| in_range(&t)));
        }
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
