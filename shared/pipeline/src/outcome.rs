//! What happened to one webhook request, for logs and metrics.
//!
//! [`Ingest::handle`](crate::Ingest::handle) returns the HTTP reply together
//! with an [`Outcome`]. The Lambda glue writes it as one line per request
//! that is both its CloudWatch metrics (EMF) and its log record (event id,
//! provider, type, conversation, outcome, never a body or a secret); the
//! local gateway logs it with [`Outcome::log`].

use crate::error::Reply;
use std::time::Duration;
use switchboard_types::Provider;

/// The kind of outcome; [`OutcomeKind::metric`] is its metric name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutcomeKind {
    /// Stored and published.
    Accepted,
    /// Already stored: a redelivery.
    Duplicate,
    /// Authentic but undecodable, not admitted or too large: stored, not published.
    Quarantined,
    /// Authentication failed (401); nothing stored.
    AuthFailed,
    /// Refused before authentication (405: not a POST); nothing stored.
    Rejected,
    /// Storage failed (503); the provider retries.
    StorageUnavailable,
    /// A subscription check answered (Meta's `GET`); nothing stored.
    Verified,
}

impl OutcomeKind {
    /// Every kind, in a stable order.
    pub const ALL: [OutcomeKind; 7] = [
        OutcomeKind::Accepted,
        OutcomeKind::Duplicate,
        OutcomeKind::Quarantined,
        OutcomeKind::AuthFailed,
        OutcomeKind::Rejected,
        OutcomeKind::StorageUnavailable,
        OutcomeKind::Verified,
    ];

    /// The metric (and log `outcome`) name.
    pub fn metric(self) -> &'static str {
        match self {
            OutcomeKind::Accepted => "accepted",
            OutcomeKind::Duplicate => "duplicate",
            OutcomeKind::Quarantined => "quarantined",
            OutcomeKind::AuthFailed => "auth_failed",
            OutcomeKind::Rejected => "rejected",
            OutcomeKind::StorageUnavailable => "storage_unavailable",
            OutcomeKind::Verified => "verified",
        }
    }
}

/// The identity of the stored (or already stored) event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSummary {
    /// CloudEvent id.
    pub event_id: String,
    /// Canonical type (`<provider>.quarantined` for quarantined events).
    pub event_type: String,
    /// Whose event it is (`default` when no label or body says).
    pub tenant: String,
    /// Provider-scoped conversation key; empty when there is none.
    pub conversation: String,
}

/// What one request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The provider of the route.
    pub provider: Provider,
    /// The outcome.
    pub kind: OutcomeKind,
    /// The stable reason code for refusals and quarantines
    /// (`invalid_signature`, `payload_too_large`, `malformed_json`, …).
    pub reason: Option<&'static str>,
    /// The event, once authenticated and keyed.
    pub event: Option<EventSummary>,
}

impl Outcome {
    /// Writes the request's one log line: warn for refusals, error for
    /// storage failures, info otherwise.
    pub fn log(&self, elapsed: Duration) {
        let provider = self.provider.as_str();
        let outcome = self.kind.metric();
        let reason = self.reason.unwrap_or("");
        let (event_id, event_type, tenant, conversation) = match &self.event {
            Some(e) => (
                e.event_id.as_str(),
                e.event_type.as_str(),
                e.tenant.as_str(),
                e.conversation.as_str(),
            ),
            None => ("", "", "", ""),
        };
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        macro_rules! line {
            ($level:ident) => {
                tracing::$level!(
                    provider,
                    event_id,
                    r#type = event_type,
                    tenant,
                    conversation,
                    outcome,
                    reason,
                    latency_ms,
                    "webhook handled"
                )
            };
        }
        match self.kind {
            OutcomeKind::AuthFailed | OutcomeKind::Rejected => line!(warn),
            OutcomeKind::StorageUnavailable => line!(error),
            _ => line!(info),
        }
    }
}

/// A request's reply and outcomes.
#[derive(Debug, Clone, PartialEq)]
pub struct Handled {
    /// The HTTP answer.
    pub reply: Reply,
    /// What happened, for logs and metrics: one per event the request
    /// carried, in the body's order (up to the first that could not be
    /// stored), or one without an event for a request answered before any
    /// (refused, or a subscription check).
    pub outcomes: Vec<Outcome>,
}

impl Handled {
    /// The first outcome: a one-event request's only one.
    pub fn outcome(&self) -> &Outcome {
        // Every answer has at least one outcome.
        &self.outcomes[0]
    }
}
