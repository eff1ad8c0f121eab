//! The parts of `docs/` that `template.yaml` decides, generated from it
//! (`make docs`), so no count, function list, alarm list or parameter
//! table is written by hand and drifts.
//!
//! Each generated part sits in a document between two markers:
//!
//! ```text
//! <!-- generated: NAME (make docs, from template.yaml) -->
//! …
//! <!-- end generated: NAME -->
//! ```
//!
//! [`update`] rewrites what is between them; `tests/tests/docs.rs` checks
//! that the committed documents are what [`update`] would write.

use anyhow::{bail, Context, Result};
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The facts of a template the documents state.
#[derive(Debug)]
pub struct Facts {
    resources: Vec<Resource>,
    parameters: Vec<Parameter>,
}

#[derive(Debug)]
struct Resource {
    id: String,
    kind: String,
    condition: Option<String>,
    description: Option<String>,
    routes: Vec<String>,
    /// Metrics an alarm watches (one, or each `MetricStat` of its math).
    metrics: usize,
}

#[derive(Debug)]
struct Parameter {
    name: String,
    default: String,
    description: String,
}

/// What a month of an idle stack costs, per unit (`infra/prices.json`).
#[derive(Debug, Clone, Copy)]
pub struct IdlePrices {
    /// One secret.
    pub secret_month: f64,
    /// One metric an alarm watches.
    pub alarm_metric_month: f64,
    /// A dashboard past an account's free ones.
    pub dashboard_month: f64,
}

impl IdlePrices {
    /// The prices of `infra/prices.json`'s text.
    pub fn from_prices_json(text: &str) -> Result<Self> {
        let prices: serde_json::Value = serde_json::from_str(text).context("infra/prices.json")?;
        let usd = |name: &str| {
            prices["prices"][name]["usd"]
                .as_f64()
                .with_context(|| format!("infra/prices.json has no prices.{name}.usd"))
        };
        Ok(Self {
            secret_month: usd("secrets_manager_per_secret_month")?,
            alarm_metric_month: usd("cloudwatch_alarm_per_metric_month")?,
            dashboard_month: usd("cloudwatch_dashboard_per_month")?,
        })
    }
}

/// A scalar as text (`!Ref X` as `X`), else empty.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Tagged(tagged) => text(&tagged.value),
        _ => String::new(),
    }
}

impl Facts {
    /// Reads a template's text.
    pub fn parse(template: &str) -> Result<Self> {
        let doc: Value = serde_yaml::from_str(template).context("parsing the template")?;
        let Some(Value::Mapping(resources)) = doc.get("Resources") else {
            bail!("the template has no Resources");
        };
        let resources = resources
            .iter()
            .map(|(id, r)| {
                let properties = &r["Properties"];
                let routes = properties
                    .get("Events")
                    .and_then(Value::as_mapping)
                    .into_iter()
                    .flat_map(|events| events.values())
                    .filter(|e| text(&e["Type"]) == "HttpApi")
                    .map(|e| {
                        format!(
                            "{} {}",
                            text(&e["Properties"]["Method"]).to_uppercase(),
                            text(&e["Properties"]["Path"])
                        )
                    })
                    .collect();
                let metrics = properties
                    .get("Metrics")
                    .and_then(Value::as_sequence)
                    .map_or(1, |m| {
                        m.iter().filter(|m| m.get("MetricStat").is_some()).count()
                    });
                Resource {
                    id: text(id),
                    kind: text(&r["Type"]),
                    condition: r.get("Condition").map(text),
                    description: properties.get("Description").map(text),
                    routes,
                    metrics,
                }
            })
            .collect();
        let parameters = doc
            .get("Parameters")
            .and_then(Value::as_mapping)
            .into_iter()
            .flatten()
            .map(|(name, p)| Parameter {
                name: text(name),
                default: p.get("Default").map(text).unwrap_or_default(),
                description: p
                    .get("Description")
                    .map(text)
                    .unwrap_or_default()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            })
            .collect();
        Ok(Self {
            resources,
            parameters,
        })
    }

    fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Resource> + 'a {
        self.resources.iter().filter(move |r| r.kind == kind)
    }

    /// How many resources of `kind` every stack has, and how many only
    /// some (under a condition).
    fn count(&self, kind: &str) -> (usize, usize) {
        let all: Vec<_> = self.of_kind(kind).collect();
        let conditional = all.iter().filter(|r| r.condition.is_some()).count();
        (all.len() - conditional, conditional)
    }

    /// The "What gets deployed" table: one row per resource type.
    pub fn deployed(&self) -> String {
        // The documents' order, then any other type in the template's.
        let mut kinds: Vec<&str> = NOUNS
            .iter()
            .map(|(kind, _, _)| *kind)
            .filter(|kind| self.of_kind(kind).next().is_some())
            .collect();
        for r in &self.resources {
            if !kinds.contains(&r.kind.as_str()) {
                kinds.push(&r.kind);
            }
        }
        let mut out = String::from("| resources | which |\n|---|---|\n");
        for kind in kinds {
            let (always, conditional) = self.count(kind);
            let (one, many) = noun(kind);
            let mut what = format!("{always} {}", if always == 1 { one } else { many });
            if conditional > 0 {
                what.push_str(&format!(" (+{conditional} when asked for)"));
            }
            let which: Vec<String> = self
                .of_kind(kind)
                .map(|r| {
                    let mut item = format!("`{}`", r.id);
                    if let Some(description) = r.description.as_deref().map(first_sentence) {
                        item.push_str(&format!(": {description}"));
                    }
                    if !r.routes.is_empty() {
                        item.push_str(&format!(" (`{}`)", r.routes.join("`, `")));
                    }
                    if let Some(condition) = &r.condition {
                        item.push_str(&format!(" — only with `{condition}`"));
                    }
                    item
                })
                .collect();
            let _ = writeln!(out, "| {what} | {} |", which.join("; ").replace('|', "\\|"));
        }
        out
    }

    /// The parameter table: each parameter, its default and its description.
    pub fn parameters(&self) -> String {
        let mut out = String::from("| parameter | default | meaning |\n|---|---|---|\n");
        for p in &self.parameters {
            let default = if p.default.is_empty() {
                "empty".to_owned()
            } else {
                format!("`{}`", p.default)
            };
            let _ = writeln!(
                out,
                "| `{}` | {default} | {} |",
                p.name,
                p.description.replace('|', "\\|")
            );
        }
        out
    }

    /// What an idle stack costs a month: its secrets and the metrics its
    /// alarms watch; the dashboard past an account's free ones.
    pub fn idle_cost(&self, prices: IdlePrices) -> String {
        let (secrets, _) = self.count("AWS::SecretsManager::Secret");
        let always: Vec<&Resource> = self
            .of_kind("AWS::CloudWatch::Alarm")
            .filter(|a| a.condition.is_none())
            .collect();
        let metrics: usize = always.iter().map(|a| a.metrics).sum();
        let secrets_usd = secrets as f64 * prices.secret_month;
        let alarms_usd = metrics as f64 * prices.alarm_metric_month;
        format!(
            "Idle, with no events, a stack costs **${:.2} a month**: {secrets} secrets \
             (${secrets_usd:.2}) and {} alarms watching {metrics} metrics (${alarms_usd:.2}); \
             each silence alarm asked for watches one more (${:.2}). The dashboard is free \
             for an account's first three, then ${:.2} a month.\n",
            secrets_usd + alarms_usd,
            always.len(),
            prices.alarm_metric_month,
            prices.dashboard_month,
        )
    }

    /// Every generated part, by name.
    pub fn parts(&self, prices: IdlePrices) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("deployed", self.deployed()),
            ("parameters", self.parameters()),
            ("idle-cost", self.idle_cost(prices)),
        ])
    }
}

/// Each resource type the documents name, singular and plural, in the
/// order they list them.
const NOUNS: [(&str, &str, &str); 11] = [
    ("AWS::Serverless::HttpApi", "HTTP API", "HTTP APIs"),
    (
        "AWS::Serverless::Function",
        "Lambda function",
        "Lambda functions",
    ),
    ("AWS::DynamoDB::Table", "DynamoDB table", "DynamoDB tables"),
    ("AWS::SQS::Queue", "SQS queue", "SQS queues"),
    ("AWS::SecretsManager::Secret", "secret", "secrets"),
    ("AWS::IAM::Role", "IAM role", "IAM roles"),
    ("AWS::Logs::LogGroup", "log group", "log groups"),
    ("AWS::CloudWatch::Alarm", "alarm", "alarms"),
    ("AWS::SNS::Topic", "SNS topic", "SNS topics"),
    (
        "AWS::SNS::Subscription",
        "SNS subscription",
        "SNS subscriptions",
    ),
    ("AWS::CloudWatch::Dashboard", "dashboard", "dashboards"),
];

/// A resource type's name in the documents, singular and plural.
fn noun(kind: &str) -> (&str, &str) {
    NOUNS
        .iter()
        .find(|(k, _, _)| *k == kind)
        .map_or((kind, kind), |(_, one, many)| (*one, *many))
}

/// A description's first sentence, without its full stop.
fn first_sentence(description: &str) -> &str {
    let end = description.find(". ").unwrap_or(description.len());
    description[..end].trim_end_matches('.')
}

/// The marker lines around a generated part.
fn markers(name: &str) -> (String, String) {
    (
        format!("<!-- generated: {name} (make docs, from template.yaml) -->"),
        format!("<!-- end generated: {name} -->"),
    )
}

/// `document` with each generated part it marks replaced by `parts`'s.
/// A marker without its end, or naming no part, is an error.
pub fn update(document: &str, parts: &BTreeMap<&'static str, String>) -> Result<String> {
    let mut out = document.to_owned();
    let names: Vec<String> = document
        .split("<!-- generated: ")
        .skip(1)
        .map(|rest| {
            rest.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    for name in names {
        let part = parts
            .get(name.as_str())
            .with_context(|| format!("no generated part is called {name:?}"))?;
        let (start, end) = markers(&name);
        let from = out
            .find(&start)
            .with_context(|| format!("the marker of {name:?} is not `{start}`"))?
            + start.len();
        let to = from
            + out[from..]
                .find(&end)
                .with_context(|| format!("{name:?} has no `{end}`"))?;
        out.replace_range(from..to, &format!("\n{part}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  Stage:
    Type: String
    Default: live
    Description: >
      The stage.
Conditions:
  Extra: !Equals [a, b]
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
  Hook:
    Type: AWS::Serverless::Function
    Properties:
      Description: A hook
      Events:
        Post:
          Type: HttpApi
          Properties: { Path: /hook, Method: ANY, ApiId: !Ref Api }
  Other:
    Type: AWS::Serverless::Function
    Condition: Extra
  A1:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Metrics:
        - Id: e
          Expression: a + b
        - Id: a
          MetricStat: {}
        - Id: b
          MetricStat: {}
  A2:
    Type: AWS::CloudWatch::Alarm
    Properties: { MetricName: m }
  Secret:
    Type: AWS::SecretsManager::Secret
"#;

    #[test]
    fn counts_lists_and_costs_come_from_the_template() {
        let facts = Facts::parse(TEMPLATE).expect("parses");
        let deployed = facts.deployed();
        assert!(
            deployed.contains("| 1 Lambda function (+1 when asked for) |"),
            "{deployed}"
        );
        assert!(
            deployed.contains("`Hook`: A hook (`ANY /hook`)"),
            "{deployed}"
        );
        assert!(
            deployed.contains("`Other` — only with `Extra`"),
            "{deployed}"
        );
        assert!(deployed.contains("| 2 alarms |"), "{deployed}");
        assert!(facts
            .parameters()
            .contains("| `Stage` | `live` | The stage. |"));
        let prices = IdlePrices {
            secret_month: 0.4,
            alarm_metric_month: 0.1,
            dashboard_month: 3.0,
        };
        let idle = facts.idle_cost(prices);
        assert!(idle.contains("**$0.70 a month**"), "{idle}");
        assert!(
            idle.contains("2 alarms watching 3 metrics ($0.30)"),
            "{idle}"
        );
    }

    #[test]
    fn only_what_is_between_the_markers_changes() {
        let parts = BTreeMap::from([("deployed", "new\n".to_owned())]);
        let (start, end) = markers("deployed");
        let document = format!("before\n{start}\nold\n{end}\nafter\n");
        let updated = update(&document, &parts).expect("updates");
        assert_eq!(updated, format!("before\n{start}\nnew\n{end}\nafter\n"));
        assert_eq!(update(&updated, &parts).expect("again"), updated);
        let unknown = "<!-- generated: nothing (make docs, from template.yaml) -->";
        assert!(update(unknown, &parts).is_err());
        assert!(update(&format!("{start}\nno end\n"), &parts).is_err());
    }
}
