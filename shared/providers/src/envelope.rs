//! Reading a provider's JSON envelope: the body as UTF-8 JSON text, the
//! envelope object, the event type, and the dedup keys derived from bytes.
//! Each provider module reads its own envelope's fields with these.

use crate::DecodeError;
use sha2::{Digest, Sha256};
use switchboard_types::Provider;

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The fallback dedup key when a payload carries nothing better: the body hash.
pub fn body_dedup_key(body: &[u8]) -> String {
    digest_dedup_key(&sha256_hex(body))
}

/// [`body_dedup_key`] from the body's SHA-256 in hex, when it is at hand.
pub fn digest_dedup_key(body_sha256_hex: &str) -> String {
    format!("sha256:{body_sha256_hex}")
}

/// `<provider>.<native type>` for types we pass through without modelling.
pub fn passthrough_type(provider: Provider, native_type: &str) -> String {
    format!("{}.{}", provider.as_str(), native_type)
}

/// The envelope's event type, which must not be blank: a body whose type is
/// `""` is not the provider's envelope (found by fuzzing; such a body used
/// to be published as `<provider>.`).
pub(crate) fn required_type(
    provider: &'static str,
    field: &str,
    native_type: String,
) -> Result<String, DecodeError> {
    if native_type.trim().is_empty() {
        return Err(DecodeError::NoEnvelope {
            provider,
            detail: format!("`{field}` is empty"),
        });
    }
    Ok(native_type)
}

/// Sorts a serde error into "not JSON at all" versus "JSON, but not the
/// provider's envelope" (wrong shape, missing `type`, duplicate keys).
pub(crate) fn classify_json_error(
    provider: &'static str,
    error: &serde_json::Error,
) -> DecodeError {
    match error.classify() {
        serde_json::error::Category::Data => DecodeError::NoEnvelope {
            provider,
            detail: error.to_string(),
        },
        _ => DecodeError::MalformedJson(error.to_string()),
    }
}

/// The body as JSON text, which is UTF-8 (RFC 8259, section 8.1), checked
/// whole. serde_json reading bytes checks only the strings it keeps: a body
/// with invalid UTF-8 in a field that no model reads used to decode, be
/// accepted, and then fail in the fanout, which publishes the body as text,
/// on every retry of its stream record. Checking the whole body once also
/// lets serde_json read `&str`, which skips its check of each string.
fn json_text(body: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(body).map_err(|e| {
        DecodeError::MalformedJson(format!("invalid UTF-8 at byte {}", e.valid_up_to()))
    })
}

/// Parses a body as the provider's envelope, which must be a JSON object:
/// serde would otherwise read a JSON array positionally into the envelope
/// struct (`["x"]` as `{"type": "x"}`), which is no envelope at all.
pub(crate) fn parse_envelope<T: serde::de::DeserializeOwned>(
    provider: &'static str,
    body: &[u8],
) -> Result<T, DecodeError> {
    let text = json_text(body)?;
    if !starts_as_object(text) {
        // Invalid JSON keeps its malformed_json code; valid JSON that is not
        // an object is not the envelope.
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Err(e) => classify_json_error(provider, &e),
            Ok(_) => DecodeError::NoEnvelope {
                provider,
                detail: "the body is not a JSON object".into(),
            },
        });
    }
    serde_json::from_str(text).map_err(|e| classify_json_error(provider, &e))
}

fn starts_as_object(text: &str) -> bool {
    text.trim_start_matches(|c: char| c.is_ascii_whitespace())
        .starts_with('{')
}
