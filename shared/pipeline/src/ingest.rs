//! One webhook request, start to finish, for any provider.
//!
//! Order of checks: method (405) → body size (413) → content type (415) →
//! authentication on the raw bytes (401) → decode (an authentic body that
//! does not decode is quarantined, never refused) → one conditional write
//! (202 accepted/quarantined, 200 duplicate, 503 when storage fails).

use crate::error::{ApiError, Reply};
use crate::item;
use crate::outcome::{EventSummary, Handled, Outcome, OutcomeKind};
use crate::ports::{EventStore, InsertOutcome};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, Method, StatusCode};
use serde_json::json;
use std::sync::Arc;
use switchboard_providers::{Inbound, WebhookProvider};
use switchboard_types::Status;

/// A webhook request as both the Lambda and the local gateway see it.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    /// HTTP method.
    pub method: Method,
    /// Request headers.
    pub headers: HeaderMap,
    /// The raw body bytes.
    pub body: Bytes,
    /// The `{token}` path segment, for routes that have one.
    pub path_token: Option<String>,
}

/// Request limits and storage policy.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted body, in bytes.
    pub max_body_bytes: usize,
    /// Days to keep each event (DynamoDB TTL on `expires_at`); 0 keeps
    /// events forever.
    pub retention_days: u32,
}

impl Limits {
    /// The default body limit: 256 KiB.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

    /// The `expires_at` (epoch seconds) of an event received at `now`, or
    /// `None` when events are kept forever.
    pub fn expires_at(&self, now: DateTime<Utc>) -> Option<i64> {
        (self.retention_days > 0).then(|| now.timestamp() + i64::from(self.retention_days) * 86_400)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            retention_days: 0,
        }
    }
}

/// The ingest pipeline for one provider.
#[derive(Clone)]
pub struct Ingest {
    provider: Arc<dyn WebhookProvider>,
    store: Arc<dyn EventStore>,
    limits: Limits,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("provider", &self.provider)
            .field("limits", &self.limits)
            .finish()
    }
}

impl Ingest {
    /// Builds the pipeline. The body limit is clamped to what one stored
    /// item can always hold.
    pub fn new(
        provider: Arc<dyn WebhookProvider>,
        store: Arc<dyn EventStore>,
        limits: Limits,
    ) -> Self {
        let limits = Limits {
            max_body_bytes: limits.max_body_bytes.min(item::MAX_BODY_LIMIT),
            ..limits
        };
        Self {
            provider,
            store,
            limits,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Handles one request received at `now`: the HTTP reply and what
    /// happened. Logging and metrics are the caller's (see [`Outcome::log`]).
    pub async fn handle(&self, request: &WebhookRequest, now: DateTime<Utc>) -> Handled {
        let provider = self.provider.provider();
        if request.method != Method::POST {
            return self.refuse(ApiError::MethodNotAllowed);
        }
        if request.body.len() > self.limits.max_body_bytes {
            return self.refuse(ApiError::PayloadTooLarge {
                limit: self.limits.max_body_bytes,
            });
        }
        if !is_json_content_type(&request.headers) {
            return self.refuse(ApiError::UnsupportedMediaType);
        }
        let inbound = Inbound::new(
            &request.headers,
            &request.body,
            request.path_token.as_deref(),
        );
        if let Err(auth) = self.provider.authenticate(&inbound, now) {
            return self.refuse(ApiError::Unauthorized(auth));
        }

        let decoded = self.provider.decode(&inbound);
        let mut event = item::build_hashed(
            provider,
            &decoded,
            &request.body,
            inbound.body_sha256(),
            now,
        );
        event.expires_at = self.limits.expires_at(now);
        let summary = EventSummary {
            event_id: event.event_id.clone(),
            event_type: event.event_type.clone(),
            conversation: event.conversation_key.clone(),
        };
        let quarantine_code = decoded.as_ref().err().map(|e| e.code());
        let outcome = match self.store.insert(&event).await {
            Ok(outcome) => outcome,
            Err(error) => {
                // The cause goes to the log; the provider gets a generic 503.
                tracing::error!(
                    provider = provider.as_str(),
                    event_id = %event.event_id,
                    error = %error,
                    "could not store webhook event"
                );
                return Handled {
                    reply: ApiError::StorageUnavailable.reply(),
                    outcome: Outcome {
                        provider,
                        kind: OutcomeKind::StorageUnavailable,
                        reason: Some(ApiError::StorageUnavailable.code()),
                        event: Some(summary),
                    },
                };
            }
        };
        let (status, kind) = match (outcome, event.status) {
            (InsertOutcome::Duplicate, _) => (StatusCode::OK, OutcomeKind::Duplicate),
            (InsertOutcome::Created, Status::Accepted) => {
                (StatusCode::ACCEPTED, OutcomeKind::Accepted)
            }
            (InsertOutcome::Created, Status::Quarantined) => {
                (StatusCode::ACCEPTED, OutcomeKind::Quarantined)
            }
        };
        let mut body = json!({ "status": kind.metric(), "event_ids": [event.event_id] });
        if let (Some(reason), InsertOutcome::Created) = (&event.reason, outcome) {
            body["reason"] = json!(reason);
        }
        Handled {
            reply: Reply::json(status, &body),
            outcome: Outcome {
                provider,
                kind,
                reason: quarantine_code,
                event: Some(summary),
            },
        }
    }

    fn refuse(&self, error: ApiError) -> Handled {
        let kind = if matches!(error, ApiError::Unauthorized(_)) {
            OutcomeKind::AuthFailed
        } else {
            OutcomeKind::Rejected
        };
        Handled {
            reply: error.reply(),
            outcome: Outcome {
                provider: self.provider.provider(),
                kind,
                reason: Some(error.code()),
                event: None,
            },
        }
    }
}

/// A missing content type is accepted (liberal: some senders omit it); a
/// present one must be JSON: `application/json`, `text/json` or `*/*+json`,
/// with any parameters.
pub fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let media = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media == "application/json"
        || media == "text/json"
        || (media.contains('/') && media.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn json_content_types() {
        let mut h = HeaderMap::new();
        assert!(is_json_content_type(&h));
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "APPLICATION/JSON",
            "application/cloudevents+json",
            "text/json",
        ] {
            h.insert("content-type", HeaderValue::from_static(ok));
            assert!(is_json_content_type(&h), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "",
            "json",
            "application/jsonp",
        ] {
            h.insert("content-type", HeaderValue::from_static(bad));
            assert!(!is_json_content_type(&h), "{bad}");
        }
    }
}
