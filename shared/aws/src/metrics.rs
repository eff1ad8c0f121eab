//! CloudWatch metrics in Embedded Metric Format (EMF).
//!
//! Each document is one JSON line on stdout; CloudWatch Logs turns it into
//! metrics, with no API call and no extra latency. Names (namespace from
//! `METRICS_NAMESPACE`, default `Switchboard`):
//!
//! | metric | unit | dimensions | emitted by |
//! |---|---|---|---|
//! | `accepted`, `duplicate`, `quarantined`, `auth_failed`, `rejected`, `storage_unavailable` | Count | `[Provider]`, `[]` | webhooks, one per request |
//! | the same, with the reason code | Count | `[Provider, Reason]`, `[Reason]` | webhooks, refusals and quarantines |
//! | the same, with the tenant | Count | `[Provider, Tenant]` | webhooks, once the request is authentic |
//! | `ingest_latency` | Milliseconds | `[Provider]`, `[]` | webhooks |
//! | `published`, `failed`, `skipped` | Count | `[]` | fanout, one document per batch |
//! | `replayed`, `replay_failed` | Count | `[]` | replay, one document per run |
//! | `reprocessed`, `reprocess_failed` | Count | `[]` | reprocess, one document per run |
//!
//! The dimensionless series (`[]`) are what the alarms watch; the per-provider
//! series feed the dashboard. `Tenant` takes only configured values: a
//! credential's label, a listed Partoo organisation, or `default` (where an
//! unlisted organisation's quarantined events are counted), so the number
//! of series is bounded by the configuration, not by what senders send. template.yaml's alarms and dashboard use these
//! exact names.

use crate::config::Lookup;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::time::Duration;
use switchboard_pipeline::{FanoutReport, Outcome};

/// The default namespace.
pub const DEFAULT_NAMESPACE: &str = "Switchboard";
/// Metric name of the webhook latency.
pub const INGEST_LATENCY: &str = "ingest_latency";

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

    /// The document for one webhook request.
    pub fn webhook(&self, outcome: &Outcome, latency: Duration, timestamp_ms: i64) -> Value {
        let name = outcome.kind.metric();
        let mut directives = vec![json!({
            "Namespace": self.namespace,
            "Dimensions": [["Provider"], []],
            "Metrics": [
                { "Name": name, "Unit": "Count" },
                { "Name": INGEST_LATENCY, "Unit": "Milliseconds" },
            ],
        })];
        let mut fields = Map::new();
        fields.insert("Provider".into(), json!(outcome.provider.as_str()));
        fields.insert(name.into(), json!(1));
        fields.insert(
            INGEST_LATENCY.into(),
            json!((latency.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0),
        );
        if let Some(reason) = outcome.reason {
            directives.push(json!({
                "Namespace": self.namespace,
                // `[Reason]` across providers: what the alarms on one
                // reason watch (timestamp_out_of_window, org_not_allowed,
                // too_large).
                "Dimensions": [["Provider", "Reason"], ["Reason"]],
                "Metrics": [{ "Name": name, "Unit": "Count" }],
            }));
            fields.insert("Reason".into(), json!(reason));
        }
        if let Some(event) = &outcome.event {
            directives.push(json!({
                "Namespace": self.namespace,
                "Dimensions": [["Provider", "Tenant"]],
                "Metrics": [{ "Name": name, "Unit": "Count" }],
            }));
            fields.insert("Tenant".into(), json!(event.tenant));
            // Searchable in Logs Insights; not dimensions (unbounded).
            fields.insert("event_id".into(), json!(event.event_id));
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
            metrics.push(json!({ "Name": name, "Unit": "Count" }));
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
    use switchboard_pipeline::{EventSummary, OutcomeKind};
    use switchboard_types::Provider;

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
        assert_eq!(doc["Provider"], "partoo");
        assert_eq!(doc["Reason"], "invalid_signature");
        assert_eq!(doc["ingest_latency"], 1.5);
        let directives = doc["_aws"]["CloudWatchMetrics"].as_array().expect("array");
        assert_eq!(directives.len(), 2);
        assert_eq!(directives[0]["Namespace"], "Switchboard/test");
        assert_eq!(directives[0]["Dimensions"], json!([["Provider"], []]));
        assert_eq!(
            directives[1]["Dimensions"],
            json!([["Provider", "Reason"], ["Reason"]])
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
    fn accepted_document_carries_the_event_id_and_its_tenant_not_a_reason() {
        let outcome = Outcome {
            provider: Provider::Bird,
            kind: OutcomeKind::Accepted,
            reason: None,
            event: Some(EventSummary {
                event_id: "id-1".into(),
                event_type: "conversation.created".into(),
                tenant: "acme".into(),
                conversation: "acme/c".into(),
            }),
        };
        let doc = Metrics::new("N").webhook(&outcome, Duration::ZERO, 0);
        assert_eq!(doc["accepted"], 1);
        assert_eq!(doc["event_id"], "id-1");
        assert_eq!(doc["Tenant"], "acme");
        assert!(doc.get("Reason").is_none());
        let directives = doc["_aws"]["CloudWatchMetrics"]
            .as_array()
            .expect("directives");
        // The per-provider series the alarms and dashboard use are kept.
        assert_eq!(directives[0]["Dimensions"], json!([["Provider"], []]));
        assert_eq!(directives[1]["Dimensions"], json!([["Provider", "Tenant"]]));
        assert_eq!(directives.len(), 2);
    }
}
