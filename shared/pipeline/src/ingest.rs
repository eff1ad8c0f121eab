//! One webhook request, start to finish, for any provider.
//!
//! Order of checks: a `GET` subscription check the provider sends (Meta's:
//! the challenge, or 403) → method (405) → authentication on the raw bytes
//! (401) → everything else, where nothing refuses an authentic sender. The
//! body is split into its events (one, for most providers; a WhatsApp body
//! carries many), and each is stored in the body's order: an event over
//! the limit is kept in part as quarantined `too_large`; a body of any
//! content type is decoded; one that does not decode, or is not admitted
//! (an account not listed), is quarantined. One conditional write per
//! event: 200 when every event is stored (`accepted`, `duplicate` or
//! `quarantined` each), or 503 at the first that storage fails
//! transiently, so the provider retries the body. An accepted event the
//! store refuses for good is written again as quarantined
//! `storage_refused` (a retry could never succeed). Partoo drops an event
//! on any 4xx.

use crate::error::{ApiError, Reply};
use crate::item;
use crate::outcome::{EventSummary, Handled, Outcome, OutcomeKind};
use crate::ports::{EventStore, InsertOutcome};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, Method, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use switchboard_providers::registry::descriptor;
use switchboard_providers::{
    decode_event, split_body, Admission, DecodeError, Delivery, Inbound, WebhookProvider,
};
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
    /// The public URL it was posted to, as the gateway knows itself
    /// (`Inbound::with_url`): what Bird's signature covers unless a URL is
    /// configured.
    pub public_url: Option<String>,
    /// The raw query string (without `?`), as received: what a `GET`
    /// subscription check carries (Meta's `hub.*` parameters).
    pub query: Option<String>,
}

/// Request limits and storage policy.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest body stored whole, in bytes; an authentic body over it is
    /// kept in part, as quarantined `too_large`.
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
    admission: Arc<Admission>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("provider", &self.provider)
            .field("limits", &self.limits)
            .field("admission", &self.admission)
            .finish()
    }
}

impl Ingest {
    /// Which provider this pipeline serves.
    pub fn provider(&self) -> switchboard_types::Provider {
        self.provider.provider()
    }

    /// Builds the pipeline, admitting what [`Admission::default`] admits
    /// (no Partoo organisation: see [`Ingest::with_admission`]). The body
    /// limit is clamped to what one stored item can always hold.
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
            admission: Arc::default(),
        }
    }

    /// The same pipeline with these admission settings.
    pub fn with_admission(mut self, admission: Admission) -> Self {
        self.admission = Arc::new(admission);
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Handles one request received at `now`: the HTTP reply and what
    /// happened. Logging and metrics are the caller's (see [`Outcome::log`]).
    pub async fn handle(&self, request: &WebhookRequest, now: DateTime<Utc>) -> Handled {
        let provider = self.provider.provider();
        let inbound = Inbound::new(
            &request.headers,
            &request.body,
            request.path_token.as_deref(),
        )
        .with_url(request.public_url.as_deref())
        .with_query(request.query.as_deref());
        if request.method == Method::GET {
            match self.provider.handshake(&inbound) {
                Some(Ok(challenge)) => return self.verified(challenge),
                Some(Err(auth)) => return self.refuse(ApiError::Unauthorized(auth)),
                None => {}
            }
        }
        if request.method != Method::POST {
            // A provider that checks its URL with a GET serves GET too.
            let allow = if descriptor(provider).url_check.is_some() {
                "GET, POST"
            } else {
                "POST"
            };
            return self.refuse(ApiError::MethodNotAllowed { allow });
        }
        let tenant = match self.provider.authenticate(&inbound, now) {
            Ok(tenant) => tenant.map(str::to_owned),
            Err(auth) => return self.refuse(ApiError::Unauthorized(auth)),
        };

        // Authentic from here on: stored, whatever else is wrong with it.
        let delivery = Delivery {
            tenant,
            ..self.provider.delivery(&inbound)
        };
        // One event per part, stored in the body's order; the first that
        // cannot be stored ends the request with a 503, so the provider
        // retries the body: what was stored is then a duplicate, and no
        // event of a conversation is stored after one before it failed.
        let parts = split_body(provider, &request.body);
        let whole = parts.len() == 1;
        let mut stored = Vec::with_capacity(parts.len());
        for part in &parts {
            let digest = if whole {
                *inbound.body_sha256()
            } else {
                Sha256::digest(part).into()
            };
            let event = self.store(request, part, &digest, &delivery, now).await;
            let failed = event.outcome.kind == OutcomeKind::StorageUnavailable;
            stored.push(event);
            if failed {
                return Handled {
                    reply: ApiError::StorageUnavailable.reply(),
                    outcomes: stored.into_iter().map(|e| e.outcome).collect(),
                };
            }
        }
        // 200 for every outcome: Partoo documents 200 as success, and every
        // provider takes it as "received".
        let status = match stored.as_slice() {
            [first, rest @ ..] if rest.iter().all(|e| e.outcome.kind == first.outcome.kind) => {
                first.outcome.kind.metric()
            }
            _ => "mixed",
        };
        let mut body = json!({
            "status": status,
            "event_ids": stored.iter().map(|e| e.id()).collect::<Vec<_>>(),
        });
        if let [event] = stored.as_slice() {
            // The bare code for machines, what was wrong for people.
            event.explain(&mut body);
        } else {
            body["events"] = stored
                .iter()
                .map(|event| {
                    let mut item =
                        json!({ "id": event.id(), "status": event.outcome.kind.metric() });
                    event.explain(&mut item);
                    item
                })
                .collect();
        }
        Handled {
            reply: Reply::json(StatusCode::OK, &body),
            outcomes: stored.into_iter().map(|e| e.outcome).collect(),
        }
    }

    /// Stores one event of an authentic request: `part` is its body (the
    /// whole body, for a provider that sends one event per request), with
    /// its SHA-256.
    async fn store(
        &self,
        request: &WebhookRequest,
        part: &[u8],
        digest: &[u8; 32],
        delivery: &Delivery,
        now: DateTime<Utc>,
    ) -> StoredPart {
        let provider = self.provider.provider();
        let limit = self.limits.max_body_bytes;
        let too_large = part.len() > limit;
        let (decoded, kept) = if too_large {
            let error = DecodeError::TooLarge {
                size: part.len(),
                limit,
            };
            (Err(error), &part[..limit])
        } else {
            (decode_event(provider, part, &self.admission), part)
        };
        let build = |decoded: &Result<_, DecodeError>| {
            let mut event = item::build_hashed(
                provider,
                decoded,
                delivery,
                kept,
                digest,
                now,
                self.limits.expires_at(now),
            );
            if too_large {
                event.headers = Some(kept_headers(&request.headers));
            }
            event
        };
        let mut event = build(&decoded);
        let mut quarantine = decoded.as_ref().err().cloned();
        let mut stored = self.store.insert(&event).await;
        if let (Err(error), Status::Accepted) = (&stored, event.status) {
            if error.permanent {
                // Retrying cannot succeed, and the provider would retry
                // until it gives up: keep the body as quarantined instead.
                tracing::error!(
                    provider = provider.as_str(),
                    event_id = %event.event_id,
                    error = %error,
                    "the store refused the accepted event; keeping it as quarantined"
                );
                let refused = Err(DecodeError::StorageRefused(error.message.clone()));
                event = build(&refused);
                quarantine = refused.err();
                stored = self.store.insert(&event).await;
            }
        }
        let summary = EventSummary {
            event_id: event.event_id.clone(),
            event_type: event.event_type.clone(),
            tenant: event.tenant.clone(),
            conversation: event.conversation_key.clone(),
        };
        let (kind, reason, detail) = match stored {
            Err(error) => {
                // The cause goes to the log; the provider gets a generic 503.
                tracing::error!(
                    provider = provider.as_str(),
                    event_id = %event.event_id,
                    error = %error,
                    "could not store webhook event"
                );
                let unavailable = ApiError::StorageUnavailable;
                (
                    OutcomeKind::StorageUnavailable,
                    Some(unavailable.code()),
                    None,
                )
            }
            Ok(InsertOutcome::Duplicate) => (OutcomeKind::Duplicate, None, None),
            Ok(InsertOutcome::Created) => match (event.status, quarantine) {
                (Status::Quarantined, Some(why)) => (
                    OutcomeKind::Quarantined,
                    Some(why.code()),
                    Some(why.public_detail()),
                ),
                (Status::Quarantined, None) => (OutcomeKind::Quarantined, None, None),
                (Status::Accepted, _) => (OutcomeKind::Accepted, None, None),
            },
        };
        StoredPart {
            outcome: Outcome {
                provider,
                kind,
                reason,
                event: Some(summary),
            },
            detail,
        }
    }

    /// A subscription check answered: the challenge, as text.
    fn verified(&self, challenge: String) -> Handled {
        Handled {
            reply: Reply::text(StatusCode::OK, challenge),
            outcomes: vec![Outcome {
                provider: self.provider.provider(),
                kind: OutcomeKind::Verified,
                reason: None,
                event: None,
            }],
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
            outcomes: vec![Outcome {
                provider: self.provider.provider(),
                kind,
                reason: Some(error.code()),
                event: None,
            }],
        }
    }
}

/// What became of one event of a request.
struct StoredPart {
    outcome: Outcome,
    /// What was wrong with a quarantined event, for people.
    detail: Option<String>,
}

impl StoredPart {
    fn id(&self) -> &str {
        self.outcome
            .event
            .as_ref()
            .map_or("", |e| e.event_id.as_str())
    }

    /// Adds why a newly quarantined event is: its bare code for machines,
    /// what was wrong for people.
    fn explain(&self, answer: &mut serde_json::Value) {
        if let (OutcomeKind::Quarantined, Some(code)) = (self.outcome.kind, self.outcome.reason) {
            answer["reason"] = json!(code);
            answer["detail"] = json!(self.detail.as_deref().unwrap_or_default());
        }
    }
}

/// Most header text a `too_large` item keeps (API Gateway's HTTP API
/// takes at most 10 KB of request line and headers in all).
const KEPT_HEADERS_MAX: usize = 4096;

/// The headers a `too_large` item keeps: names (lowercase, as received)
/// with their visible-ASCII values, leaving out any whose name suggests a
/// credential (a Partoo webhook may be configured with custom headers such
/// as `X-Auth-Token`), bounded in total size.
pub fn kept_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    const SECRET_HINTS: [&str; 6] = ["auth", "token", "secret", "cookie", "key", "password"];
    let mut kept = BTreeMap::new();
    let mut size = 0;
    for (name, value) in headers {
        let name = name.as_str();
        let Ok(value) = value.to_str() else {
            continue;
        };
        if SECRET_HINTS.iter().any(|hint| name.contains(hint)) {
            continue;
        }
        size += name.len() + value.len();
        if size > KEPT_HEADERS_MAX {
            break;
        }
        kept.insert(name.to_owned(), value.to_owned());
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn kept_headers_leave_out_credentials_and_stay_bounded() {
        let mut h = HeaderMap::new();
        for (name, value) in [
            ("x-partoo-signature-v1", "c2ln"),
            ("content-type", "text/plain"),
            ("x-auth-token", "hunter2"),
            ("authorization", "Bearer x"),
            ("x-api-key", "k"),
        ] {
            h.insert(name, HeaderValue::from_static(value));
        }
        let kept = kept_headers(&h);
        assert_eq!(
            kept.keys().map(String::as_str).collect::<Vec<_>>(),
            ["content-type", "x-partoo-signature-v1"]
        );
        let long = "v".repeat(3000);
        h.insert("x-one", HeaderValue::from_str(&long).expect("value"));
        h.insert("x-two", HeaderValue::from_str(&long).expect("value"));
        let kept = kept_headers(&h);
        let size: usize = kept.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(size <= KEPT_HEADERS_MAX, "{size}");
    }
}
