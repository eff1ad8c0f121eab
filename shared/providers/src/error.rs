//! The providers' errors: why a request is not authentic (401), why an
//! authentic body is quarantined (a stable reason code), and why a
//! provider's configuration is unusable (start-up).

use crate::decode::MAX_TYPE_LEN;

/// Why a request failed authentication. Every variant answers 401 but
/// [`AuthError::InvalidVerifyToken`], a subscription check's, which answers
/// 403 (Meta's convention).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// ZipMessage URL carried no token. Never an HTTP answer (the route
    /// needs a non-empty token, so an empty one is a 404); only a direct
    /// invocation without the path parameter gets it.
    #[error("the webhook URL carries no token")]
    MissingToken,
    /// ZipMessage token matched no configured token.
    #[error("the webhook URL token is not valid")]
    InvalidToken,
    /// The signature header is absent or empty.
    #[error("missing signature header {0}")]
    MissingSignature(&'static str),
    /// The signature header is not base64 of the right length.
    #[error("the signature header {0} is not a well-formed signature")]
    MalformedSignature(&'static str),
    /// The signature matched no configured key over what the provider
    /// signs, which it names (`the body`; for Bird its timestamp, URL and
    /// body).
    #[error("the signature does not match {0} under any configured key")]
    InvalidSignature(&'static str),
    /// Bird's timestamp header is absent.
    #[error("missing timestamp header {0}")]
    MissingTimestamp(&'static str),
    /// Bird's timestamp header is not a Unix time.
    #[error("the timestamp header {0} is not a Unix time")]
    MalformedTimestamp(&'static str),
    /// Bird's (validly signed) timestamp is older than the past tolerance
    /// or further ahead than the future tolerance.
    #[error("the request timestamp is {skew_secs} s {direction} now, past the accepted {tolerance_secs} s")]
    TimestampOutOfWindow {
        /// How far the timestamp is from now.
        skew_secs: u64,
        /// `before` or `after`.
        direction: &'static str,
        /// The tolerance in that direction.
        tolerance_secs: u64,
    },
    /// A (validly signed) token is used outside its `nbf`–`exp` window and
    /// the leeway (legacy MessageBird).
    #[error(
        "the signed token is used {skew_secs} s {direction}, past the accepted {leeway_secs} s"
    )]
    TokenOutOfWindow {
        /// How far now is from the bound.
        skew_secs: u64,
        /// `before its nbf` or `after its exp`.
        direction: &'static str,
        /// The leeway.
        leeway_secs: u64,
    },
    /// A (validly signed) token's claim does not fit this request: its URL
    /// or body hash, its id (legacy MessageBird).
    #[error("the signed token's {0}")]
    InvalidClaim(&'static str),
    /// A subscription check (Meta's `GET` with `hub.mode=subscribe`) whose
    /// `hub.verify_token` is absent or matches no configured verify token.
    #[error("hub.verify_token is missing or matches no configured verify token")]
    InvalidVerifyToken,
}

impl AuthError {
    /// Stable machine-readable code for the error body.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "missing_token",
            AuthError::InvalidToken => "invalid_token",
            AuthError::MissingSignature(_) => "missing_signature",
            AuthError::MalformedSignature(_) => "malformed_signature",
            AuthError::InvalidSignature(_) => "invalid_signature",
            AuthError::MissingTimestamp(_) => "missing_timestamp",
            AuthError::MalformedTimestamp(_) => "malformed_timestamp",
            AuthError::TimestampOutOfWindow { .. } => "timestamp_out_of_window",
            AuthError::TokenOutOfWindow { .. } => "token_out_of_window",
            AuthError::InvalidClaim(_) => "invalid_claim",
            AuthError::InvalidVerifyToken => "invalid_verify_token",
        }
    }
}

/// Why an authentic body is not published: it could not be decoded, or is
/// not admitted. The event is stored as quarantined, with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Over the body limit: kept as far as an item holds, never decoded.
    #[error(
        "the body is {size} bytes, over the limit of {limit}; its first {limit} bytes are kept"
    )]
    TooLarge {
        /// The body's size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// An event of a sender-side account (a Partoo organisation, a
    /// WhatsApp Business Account) that is not listed, or that names none,
    /// where one key signs every account's webhooks.
    #[error("{}", match org_id {
        Some(org) => format!("{} {org} is not in {}", accounts.what, accounts.setting),
        None => format!("the event names no {} ({})", accounts.what, accounts.field),
    })]
    OrgNotAllowed {
        /// The account the body names.
        org_id: Option<String>,
        /// The provider's allow-list.
        accounts: &'static crate::registry::Accounts,
    },
    /// Not JSON at all (or invalid UTF-8, or nested too deep).
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    /// JSON, but not the provider's envelope.
    #[error("the body is not a {provider} envelope: {detail}")]
    NoEnvelope {
        /// Provider name.
        provider: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A known event type without a field needed to identify or key it.
    #[error("{event_type} is missing the required field {field}")]
    MissingField {
        /// The native type.
        event_type: String,
        /// Dotted path of the missing field.
        field: &'static str,
    },
    /// An event type longer than any a provider documents.
    #[error("the event type is {len} bytes, over the limit of {MAX_TYPE_LEN}")]
    TypeTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The store refused the accepted event for good (DynamoDB's
    /// `ValidationException`): it is kept as quarantined instead.
    #[error("the store refused the event: {0}")]
    StorageRefused(String),
}

impl DecodeError {
    /// Stable machine-readable reason code stored with the quarantined event.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::OrgNotAllowed { .. } => "org_not_allowed",
            DecodeError::MalformedJson(_) => "malformed_json",
            DecodeError::NoEnvelope { .. } => "no_envelope",
            DecodeError::MissingField { .. } => "missing_field",
            DecodeError::TypeTooLong { .. } => "type_too_long",
            DecodeError::StorageRefused(_) => "storage_refused",
        }
    }

    /// What the sender is told in the answer's `detail`: the reason's text,
    /// but for a storage refusal, whose cause is DynamoDB's own message (an
    /// internal error, kept in the stored reason and the log).
    pub fn public_detail(&self) -> String {
        match self {
            DecodeError::StorageRefused(_) => {
                "the store refused the event for good; it is kept as quarantined".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// The native type, when the envelope was readable far enough to tell.
    pub fn native_type(&self) -> Option<&str> {
        match self {
            DecodeError::MissingField { event_type, .. } if event_type.len() <= MAX_TYPE_LEN => {
                Some(event_type)
            }
            _ => None,
        }
    }
}

/// Why a provider's configured keys are unusable. Raised at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No key/token at all.
    #[error("no {0} configured")]
    Empty(&'static str),
    /// A key could not be parsed (which one is said by position, never by value).
    #[error("{what} number {position} is invalid: {detail}")]
    InvalidKey {
        /// What kind of key.
        what: &'static str,
        /// 1-based position in the list.
        position: usize,
        /// Why.
        detail: String,
    },
    /// Another setting is invalid.
    #[error("{0}")]
    Invalid(String),
}
