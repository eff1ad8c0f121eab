//! CloudWatch metrics in Embedded Metric Format (EMF).
//!
//! Each document is one JSON line on stdout; CloudWatch Logs turns it into
//! metrics, with no API call and no extra latency. A webhook request's
//! document is also its log line: it carries the outcome's fields (event id,
//! type, tenant, conversation, outcome, reason, latency), so one line per
//! request serves both. Names (namespace from `METRICS_NAMESPACE`, default
//! `Switchboard`), every one a count:
//!
//! | metric | dimensions | emitted by |
//! |---|---|---|
//! | `accepted` | `[Provider]`, `[Provider, Tenant]` | webhooks, one per event |
//! | `duplicate` | `[Provider]` | webhooks |
//! | `quarantined` | `[Provider]`, `[]`, `[Provider, Tenant]` | webhooks |
//! | `auth_failed`, `rejected`, `storage_unavailable` | `[Provider]`, `[]` | webhooks |
//! | `verified` (a subscription check answered) | `[Provider]` | webhooks |
//! | a refusal's or quarantine's count, with its reason code | `[Provider, Reason]`, `[Reason]` | webhooks |
//! | `published`, `failed`, `skipped` | `[]` | fanout, one document per batch |
//! | `replayed`, `replay_failed` | `[]` | replay, one document per run |
//! | `reprocessed`, `reprocess_failed` | `[]` | reprocess, one document per run |
//!
//! Each metric name and dimension-value combination is a custom metric
//! billed by the month, so a series exists only where an alarm or the
//! dashboard reads it: the dimensionless ones of what the alarms watch
//! (refusals and quarantines), the per-provider ones the dashboard and
//! the silence alarms read, per tenant what a tenant's silence alarm reads
//! (and its quarantines). A request's time in the function is its line's
//! `latency_ms`; as a metric, Lambda's own `Duration` per function says it
//! for free. `Tenant` takes only configured values: a
//! credential's label, a listed Partoo organisation, or `default` (where an
//! unlisted organisation's quarantined events are counted), so the number
//! of series is bounded by the configuration, not by what senders send. template.yaml's alarms and dashboard use these
//! exact names.

use crate::config::Lookup;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::time::Duration;
use switchboard_pipeline::{FanoutReport, Outcome, OutcomeKind};

/// The default namespace.
pub const DEFAULT_NAMESPACE: &str = "Switchboard";
/// The field of a webhook's line with its time in the function, in
/// milliseconds (not a metric: Lambda's `Duration` is one, for free).
pub const LATENCY_MS: &str = "latency_ms";

/// Renders and writes EMF documents.
#[derive(Debug, Clone)]
pub struct Metrics {
    namespace: String,
}

impl Metrics {
    /// A writer for `namespace`.
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
        }
    }

    /// The namespace from `METRICS_NAMESPACE`, or the default.
    pub fn from_lookup(env: Lookup<'_>) -> Self {
        Self::new(
            env("METRICS_NAMESPACE")
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
        )
    }

    /// The document for one webhook request: its metrics, and the fields
    /// of its log line (never a body or a credential).
    pub fn webhook(&self, outcome: &Outcome, latency: Duration, timestamp_ms: i64) -> Value {
        let name = outcome.kind.metric();
        let alarmed = !matches!(
            outcome.kind,
            OutcomeKind::Accepted | OutcomeKind::Duplicate | OutcomeKind::Verified
        );
        let mut dimensions = vec![json!(["Provider"])];
        if alarmed {
            // What the alarms on refusals and quarantines watch.
            dimensions.push(json!([]));
        }
        let mut fields = Map::new();
        fields.insert("Provider".into(), json!(outcome.provider.as_str()));
        fields.insert("outcome".into(), json!(name));
        fields.insert(name.into(), json!(1));
        if let Some(event) = &outcome.event {
            if outcome.kind != OutcomeKind::Duplicate {
                dimensions.push(json!(["Provider", "Tenant"]));
            }
            fields.insert("Tenant".into(), json!(event.tenant));
            // Searchable in Logs Insights; not dimensions (unbounded).
            fields.insert("event_id".into(), json!(event.event_id));
            fields.insert("type".into(), json!(event.event_type));
            fields.insert("conversation".into(), json!(event.conversation));
        }
        fields.insert(
            LATENCY_MS.into(),
            json!((latency.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0),
        );
        let mut directives = vec![json!({
            "Namespace": self.namespace,
            "Dimensions": dimensions,
            "Metrics": [{ "Name": name }],
        })];
        if let Some(reason) = outcome.reason {
            directives.push(json!({
                "Namespace": self.namespace,
                // `[Reason]` across providers: what the alarms on one
                // reason watch (timestamp_out_of_window, org_not_allowed,
                // too_large).
                "Dimensions": [["Provider", "Reason"], ["Reason"]],
                "Metrics": [{ "Name": name }],
            }));
            fields.insert("Reason".into(), json!(reason));
        }
        document(directives, fields, timestamp_ms)
    }

    /// The document for one fanout batch.
    pub fn fanout(&self, report: &FanoutReport, timestamp_ms: i64) -> Value {
        self.counts(
            &[
                ("published", report.published),
                ("failed", report.failed.len()),
                ("skipped", report.skipped),
            ],
            timestamp_ms,
        )
    }
}

impl Metrics {
    /// A dimensionless document of counts (the operator tools' runs).
    pub fn counts(&self, counts: &[(&str, usize)], timestamp_ms: i64) -> Value {
        let mut fields = Map::new();
        let mut metrics = Vec::new();
        for (name, count) in counts {
            fields.insert((*name).into(), json!(count));
            metrics.push(json!({ "Name": name }));
        }
        let directives = vec![json!({
            "Namespace": self.namespace,
            "Dimensions": [[]],
            "Metrics": metrics,
        })];
        document(directives, fields, timestamp_ms)
    }
}

fn document(directives: Vec<Value>, mut fields: Map<String, Value>, timestamp_ms: i64) -> Value {
    fields.insert(
        "_aws".into(),
        json!({ "Timestamp": timestamp_ms, "CloudWatchMetrics": directives }),
    );
    Value::Object(fields)
}

/// Writes one EMF document as a single stdout line (where Lambda's log
/// capture picks it up). A failed write is ignored: metrics never fail a
/// request.
pub fn emit(document: &Value) {
    let mut line = document.to_string();
    line.push('\n');
    let _ = std::io::stdout().lock().write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_pipeline::EventSummary;
    use switchboard_types::Provider;

    fn event() -> Option<EventSummary> {
        Some(EventSummary {
            event_id: "id-1".into(),
            event_type: "conversation.created".into(),
            tenant: "acme".into(),
            conversation: "acme/c".into(),
        })
    }

    fn dimensions_of(doc: &Value, metric: &str) -> Vec<Value> {
        doc["_aws"]["CloudWatchMetrics"]
            .as_array()
            .expect("directives")
            .iter()
            .filter(|d| {
                d["Metrics"]
                    .as_array()
                    .expect("metrics")
                    .iter()
                    .any(|m| m["Name"] == metric)
            })
            .flat_map(|d| d["Dimensions"].as_array().expect("dimensions").clone())
            .collect()
    }

    #[test]
    fn webhook_document_has_the_metric_its_dimensions_and_no_body() {
        let outcome = Outcome {
            provider: Provider::Partoo,
            kind: OutcomeKind::AuthFailed,
            reason: Some("invalid_signature"),
            event: None,
        };
        let doc = Metrics::new("Switchboard/test").webhook(
            &outcome,
            Duration::from_micros(1500),
            1_700_000_000_000,
        );
        assert_eq!(doc["auth_failed"], 1);
        assert_eq!(doc["outcome"], "auth_failed");
        assert_eq!(doc["Provider"], "partoo");
        assert_eq!(doc["Reason"], "invalid_signature");
        assert_eq!(doc[LATENCY_MS], 1.5);
        let directives = doc["_aws"]["CloudWatchMetrics"].as_array().expect("array");
        assert!(directives
            .iter()
            .all(|d| d["Namespace"] == "Switchboard/test"));
        // A refusal: per provider, across providers (what its alarm
        // watches), and by reason.
        assert_eq!(
            dimensions_of(&doc, "auth_failed"),
            [
                json!(["Provider"]),
                json!([]),
                json!(["Provider", "Reason"]),
                json!(["Reason"])
            ]
        );
        // Every metric a directive names is a number at the top level.
        for directive in directives {
            for metric in directive["Metrics"].as_array().expect("metrics") {
                let name = metric["Name"].as_str().expect("name");
                assert!(doc[name].is_number(), "{name}");
            }
        }
    }

    #[test]
    fn an_accepted_request_is_one_line_with_its_event_and_the_series_read() {
        let outcome = Outcome {
            provider: Provider::Bird,
            kind: OutcomeKind::Accepted,
            reason: None,
            event: event(),
        };
        let doc = Metrics::new("N").webhook(&outcome, Duration::ZERO, 0);
        assert_eq!(doc["accepted"], 1);
        assert_eq!(doc["outcome"], "accepted");
        assert_eq!(doc["event_id"], "id-1");
        assert_eq!(doc["type"], "conversation.created");
        assert_eq!(doc["conversation"], "acme/c");
        assert_eq!(doc["Tenant"], "acme");
        assert!(doc.get("Reason").is_none());
        // The dashboard's per-provider series and the silence alarms'
        // per-tenant one; no alarm reads a dimensionless `accepted`.
        assert_eq!(
            dimensions_of(&doc, "accepted"),
            [json!(["Provider"]), json!(["Provider", "Tenant"])]
        );
    }

    #[test]
    fn a_duplicate_is_counted_per_provider_only() {
        let outcome = Outcome {
            provider: Provider::Bird,
            kind: OutcomeKind::Duplicate,
            reason: None,
            event: event(),
        };
        let doc = Metrics::new("N").webhook(&outcome, Duration::ZERO, 0);
        assert_eq!(dimensions_of(&doc, "duplicate"), [json!(["Provider"])]);
        assert_eq!(doc["event_id"], "id-1");
    }
}
