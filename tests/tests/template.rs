//! template.yaml and the code, held together: every function crate has a
//! resource (and back), every environment variable the code reads is set
//! (and every one set is read), no key material sits in an environment,
//! every route the code serves is in the API (and back), each webhook's
//! role reaches only its own provider's items and secret, and the alarms
//! watch metrics the code emits.
//!
//! These tests read the file only; no AWS and no moto.

use serde_yaml::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use switchboard_aws::config::{table_name, KeySource};
use switchboard_aws::metrics::Metrics;
use switchboard_aws::{ConfigError, QueueUrls, WebhookConfig};
use switchboard_local::provision::{resolve_functions, LocalFunction};
use switchboard_local::template::{Physical, Template};
use switchboard_pipeline::OutcomeKind;
use switchboard_providers::registry::{self, descriptor, LocalDefault};
use switchboard_providers::{bird, Admission, DecodeError};
use switchboard_tests::root;
use switchboard_types::{key, Provider};

fn raw() -> Value {
    let text = std::fs::read_to_string(root().join("template.yaml")).expect("template.yaml");
    serde_yaml::from_str(&text).expect("template.yaml parses")
}

fn resources(doc: &Value) -> &serde_yaml::Mapping {
    doc.get("Resources")
        .and_then(Value::as_mapping)
        .expect("Resources")
}

/// `(tag, target)` of a `!Ref X` / `!GetAtt X.Attr` value.
fn tagged(value: &Value) -> Option<(String, String)> {
    match value {
        Value::Tagged(t) => Some((t.tag.to_string(), t.value.as_str()?.to_owned())),
        _ => None,
    }
}

/// template.yaml with parameters `params`, and every resource standing in
/// as a placeholder name (`ref-<id>`, `<Attr>-<id>`).
fn loaded(params: &[(&str, &str)]) -> (Template, Physical) {
    let params: HashMap<String, String> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let template = Template::load(&root().join("template.yaml"), "stack", "eu-west-1", &params)
        .expect("template loads");
    let mut physical = Physical::default();
    for (id, _) in resources(&raw()) {
        let id = id.as_str().expect("id").to_owned();
        physical.refs.insert(id.clone(), format!("ref-{id}"));
        for attr in ["Arn", "StreamArn", "QueueName", "QueueUrl"] {
            physical
                .attrs
                .insert((id.clone(), attr.into()), format!("{attr}-{id}"));
        }
    }
    (template, physical)
}

/// The functions with their environments resolved, with template
/// parameters `params`.
fn functions(params: &[(&str, &str)]) -> Vec<LocalFunction> {
    let (template, physical) = loaded(params);
    resolve_functions(&template, &physical).expect("functions resolve")
}

fn provider_of(binary: &str) -> Option<Provider> {
    registry::by_function(binary).map(|d| d.provider)
}

/// The variables a config reader asks for, answered from `env`.
struct Recorder<'a> {
    env: &'a HashMap<String, String>,
    read: RefCell<BTreeSet<String>>,
}

impl Recorder<'_> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.read.borrow_mut().insert(name.to_owned());
        self.env.get(name).cloned()
    }
}

#[test]
fn every_function_crate_has_a_resource_and_every_resource_a_crate() {
    let mut crates = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("functions")).expect("functions/") {
        let dir = entry.expect("entry").path();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml");
        let name = manifest
            .lines()
            .find_map(|l| l.strip_prefix("name = "))
            .map(|n| n.trim_matches('"').to_owned())
            .expect("package name");
        let folder = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        crates.insert(format!("functions/{folder}"), name);
    }
    let doc = raw();
    let mut in_template = BTreeMap::new();
    for (id, resource) in resources(&doc) {
        if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let code_uri = resource["Properties"]["CodeUri"]
            .as_str()
            .expect("CodeUri")
            .to_owned();
        let metadata = &resource["Metadata"];
        assert_eq!(
            metadata["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{id:?} builds with cargo-lambda"
        );
        let binary = metadata["BuildProperties"]["Binary"]
            .as_str()
            .expect("Binary")
            .to_owned();
        assert!(
            in_template.insert(code_uri, binary).is_none(),
            "one resource per crate"
        );
    }
    assert_eq!(crates, in_template);
    assert_eq!(doc["Globals"]["Function"]["Architectures"][0], "arm64");
    assert_eq!(doc["Globals"]["Function"]["Runtime"], "provided.al2023");
}

#[test]
fn every_variable_the_code_reads_is_set_and_every_one_set_is_read() {
    let bird_url = "https://abc.execute-api.eu-west-1.amazonaws.com/live/webhooks/bird";
    let messagebird_url =
        "https://abc.execute-api.eu-west-1.amazonaws.com/live/webhooks/messagebird";
    let twilio_url = "https://hooks.example.com/twilio?customer=acme";
    let all = functions(&[
        ("BirdWebhookUrl", bird_url),
        ("MessagebirdWebhookUrl", messagebird_url),
        ("TwilioWebhookUrl", twilio_url),
        ("RetentionDays", "30"),
        ("ExampleConsumer", "true"),
    ]);
    // One webhook per registered provider, plus fanout, replay, reprocess
    // and the example consumer.
    assert_eq!(all.len(), registry::all().count() + 4);
    for function in &all {
        let recorder = Recorder {
            env: &function.env,
            read: RefCell::default(),
        };
        let lookup = |name: &str| recorder.lookup(name);
        let mut may_be_unset = BTreeSet::new();
        let mut may_be_unread = BTreeSet::new();
        match provider_of(&function.binary) {
            Some(provider) => {
                let config = WebhookConfig::from_lookup(provider, &lookup)
                    .unwrap_or_else(|e| panic!("{}: {e}", function.binary));
                assert!(
                    matches!(config.keys, KeySource::Secret(_)),
                    "{}: keys come from Secrets Manager",
                    function.binary
                );
                assert_eq!(config.limits.retention_days, 30);
                if provider == Provider::Bird {
                    assert_eq!(config.settings.get(bird::WEBHOOK_URL), Some(bird_url));
                }
                if provider == Provider::Twilio {
                    assert_eq!(
                        config
                            .settings
                            .get(switchboard_providers::twilio::WEBHOOK_URL),
                        Some(twilio_url)
                    );
                }
                if provider == Provider::Messagebird {
                    assert_eq!(
                        config
                            .settings
                            .get(switchboard_providers::messagebird::WEBHOOK_URL),
                        Some(messagebird_url)
                    );
                }
                // The inline key variable is for local runs and must never
                // be set in the template: no key material in an environment.
                let inline = descriptor(provider).credentials.inline;
                assert!(
                    !function.env.contains_key(inline),
                    "{} sets {inline}",
                    function.binary
                );
                may_be_unset.insert(inline.to_owned());
            }
            None => match function.binary.as_str() {
                "fanout" => {
                    QueueUrls::from_lookup(&lookup).expect("queue URLs");
                }
                "replay" => {
                    table_name(&lookup).expect("table");
                    QueueUrls::from_lookup(&lookup).expect("queue URLs");
                }
                "reprocess" => {
                    table_name(&lookup).expect("table");
                    Admission::from_lookup(&lookup);
                }
                // It reads nothing. Globals give every function the metrics
                // namespace, which the example, emitting no metrics, leaves.
                "example-consumer" => {
                    may_be_unread.insert("METRICS_NAMESPACE".to_owned());
                }
                other => panic!("{other}: which configuration does it read?"),
            },
        }
        if function.binary != "example-consumer" {
            Metrics::from_lookup(&lookup);
        }
        let read = recorder.read.into_inner();
        let set: BTreeSet<String> = function.env.keys().cloned().collect();
        let unread: Vec<_> = set
            .difference(&read)
            .filter(|v| !may_be_unread.contains(*v))
            .collect();
        assert!(
            unread.is_empty(),
            "{} sets variables no code reads: {unread:?}",
            function.binary
        );
        let unset: Vec<_> = read
            .difference(&set)
            .filter(|v| !may_be_unset.contains(*v))
            .collect();
        assert!(
            unset.is_empty(),
            "{} reads variables the template does not set: {unset:?}",
            function.binary
        );
    }
}

#[test]
fn one_deploy_serves_bird_and_messagebird_waits_for_its_url() {
    // With the default (empty) URL parameters the variables are left out.
    // Bird's webhook starts and verifies each request against the URL API
    // Gateway received it at. The legacy MessageBird webhook fails its cold
    // start: API Gateway answers 5xx and MessageBird keeps retrying until
    // the URL is set (docs/operations.md).
    let all = functions(&[]);
    let bird = all
        .iter()
        .find(|f| f.binary == descriptor(Provider::Bird).function)
        .expect("bird function");
    assert!(!bird
        .env
        .contains_key(switchboard_providers::bird::WEBHOOK_URL));
    let lookup = |name: &str| bird.env.get(name).cloned();
    assert!(WebhookConfig::from_lookup(Provider::Bird, &lookup).is_ok());
    let mut checked = Vec::new();
    for d in registry::all() {
        for setting in d
            .settings
            .iter()
            .filter(|s| s.local == LocalDefault::RouteUrl)
        {
            let function = all
                .iter()
                .find(|f| f.binary == d.function)
                .expect("its function");
            assert!(!function.env.contains_key(setting.name));
            let lookup = |name: &str| function.env.get(name).cloned();
            assert!(
                matches!(
                    WebhookConfig::from_lookup(d.provider, &lookup),
                    Err(ConfigError::Missing(name)) if name == setting.name
                ),
                "{}",
                d.name()
            );
            checked.push(d.provider);
        }
    }
    assert_eq!(checked, [Provider::Messagebird]);
}

fn bird_config(params: &[(&str, &str)]) -> Result<WebhookConfig, ConfigError> {
    let mut params = params.to_vec();
    params.push(("BirdWebhookUrl", "https://example.com/live/webhooks/bird"));
    let all = functions(&params);
    let bird = all
        .iter()
        .find(|f| f.binary == descriptor(Provider::Bird).function)
        .expect("bird function");
    let lookup = |name: &str| bird.env.get(name).cloned();
    WebhookConfig::from_lookup(Provider::Bird, &lookup)
}

#[test]
fn birds_window_defaults_to_36_hours_in_the_template_and_the_code() {
    // Bird retries for 8 h (docs) to ~24 h (field reports) with the original
    // timestamp: the template's default and the code's are the same 36 h.
    let doc = raw();
    assert_eq!(
        doc["Parameters"]["BirdTimestampToleranceSecs"]["Default"].as_u64(),
        Some(129_600)
    );
    assert_eq!(switchboard_providers::bird::DEFAULT_TOLERANCE_SECS, 129_600);
    let config = bird_config(&[]).expect("the default configuration starts");
    assert_eq!(
        config.settings.number::<u64>(bird::TOLERANCE).ok(),
        Some(129_600)
    );
}

#[test]
fn bird_refuses_a_window_that_outlives_the_retention() {
    // 36 h + 300 s is not shorter than 1 day: a signed copy could arrive
    // after its stored twin expired and be stored again.
    let err = bird_config(&[("RetentionDays", "1")]).expect_err("refused");
    assert!(
        err.to_string().contains("BIRD_TIMESTAMP_TOLERANCE_SECS"),
        "{err}"
    );
    assert!(
        bird_config(&[("RetentionDays", "2")]).is_ok(),
        "172800 s > 129900 s"
    );
    assert!(bird_config(&[
        ("RetentionDays", "1"),
        ("BirdTimestampToleranceSecs", "86099")
    ])
    .is_ok());
    assert!(bird_config(&[
        ("RetentionDays", "1"),
        ("BirdTimestampToleranceSecs", "86100")
    ])
    .is_err());
    assert!(
        bird_config(&[("RetentionDays", "0")]).is_ok(),
        "kept forever"
    );
}

#[test]
fn the_default_retention_keeps_events_as_long_as_anything_names_them() {
    // A message a queue still holds, or a fanout-failures notice, names a
    // stored event: replay and reprocess need it while the notice lives.
    // Bird's late retries need their stored twin (the window check).
    let doc = raw();
    let days = doc["Parameters"]["RetentionDays"]["Default"]
        .as_u64()
        .expect("a number");
    assert!(days > 0, "a deliberate retention, not forever by omission");
    let longest_queue = doc["Resources"]
        .as_mapping()
        .expect("resources")
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::SQS::Queue"))
        .map(|q| {
            q["Properties"]["MessageRetentionPeriod"]
                .as_u64()
                .unwrap_or(345_600)
        })
        .max()
        .expect("queues");
    assert!(
        days * 86_400 >= longest_queue,
        "{days} days < {longest_queue} s"
    );
    assert!(bird_config(&[]).is_ok(), "Bird's window fits the default");
    // The fanout's batching window defaults to none: the lowest latency.
    assert_eq!(
        doc["Parameters"]["FanoutBatchingWindowSeconds"]["Default"].as_u64(),
        Some(0)
    );
    // The local stack's stream source follows the parameter.
    for (seconds, expected) in [("0", 0), ("2", 2)] {
        let fanout = functions(&[("FanoutBatchingWindowSeconds", seconds)])
            .into_iter()
            .find(|f| f.stream_table.is_some())
            .expect("the fanout");
        assert_eq!(
            fanout.stream_settings.batching_window,
            std::time::Duration::from_secs(expected)
        );
    }
}

#[test]
fn only_the_listed_accounts_are_published_in_the_webhook_and_reprocess() {
    // Where one key signs many accounts (Partoo, WhatsApp): empty by
    // default, so nothing is published until listed; the webhook and
    // reprocess read the same list.
    for (provider, parameter) in [
        (Provider::Partoo, "PartooOrgIds"),
        (Provider::Whatsapp, "WhatsappAccountIds"),
    ] {
        assert!(descriptor(provider).accounts.is_some());
        for (params, expected) in [
            (vec![], BTreeSet::new()),
            (
                vec![(parameter, "123, 0456")],
                BTreeSet::from(["123".to_owned(), "456".to_owned()]),
            ),
        ] {
            let all = functions(&params);
            for binary in [descriptor(provider).function, "reprocess"] {
                let function = all.iter().find(|f| f.binary == binary).expect(binary);
                let lookup = |name: &str| function.env.get(name).cloned();
                assert_eq!(
                    Admission::from_lookup(&lookup)
                        .accounts
                        .get(&provider)
                        .cloned()
                        .unwrap_or_default(),
                    expected,
                    "{binary} {params:?}"
                );
            }
        }
    }
    // Every provider with an allow-list is in that list above.
    let listed = registry::all().filter(|d| d.accounts.is_some()).count();
    assert_eq!(listed, 2);
}

#[test]
fn the_api_routes_are_exactly_the_providers_routes() {
    let mut routes = BTreeSet::new();
    for function in functions(&[]) {
        for (method, path) in &function.routes {
            let provider = provider_of(&function.binary)
                .unwrap_or_else(|| panic!("{} serves a route", function.binary));
            // ANY, so a GET reaches the function and gets its 405 + Allow.
            assert_eq!(method, "ANY", "{path}");
            routes.insert((provider.as_str(), path.clone()));
        }
    }
    let expected: BTreeSet<_> = registry::all()
        .map(|d| (d.name(), d.route.to_owned()))
        .collect();
    assert_eq!(routes, expected);
}

#[test]
fn every_provider_setting_is_set_where_it_is_read() {
    // A registered provider's settings reach its webhook (and `reprocess`
    // where they decide admission); its secret reaches its webhook only.
    let all = functions(&[]);
    for d in registry::all() {
        let webhook = all
            .iter()
            .find(|f| f.binary == d.function)
            .unwrap_or_else(|| panic!("template.yaml has no {} function", d.function));
        let reprocess = all
            .iter()
            .find(|f| f.binary == "reprocess")
            .expect("reprocess");
        assert!(
            webhook.env.contains_key(d.credentials.secret),
            "{}",
            d.name()
        );
        for s in d.settings {
            // A required setting with no default may be left out (then the
            // function refuses to start, as MessageBird does without its
            // URL), and so may an optional one whose default is empty (Bird's
            // URL: then derived from each request).
            if s.default.is_some_and(|default| !default.is_empty()) {
                assert!(
                    webhook.env.contains_key(s.name),
                    "{}: {}",
                    d.function,
                    s.name
                );
            }
            assert_eq!(
                reprocess.env.contains_key(s.name),
                s.reprocess,
                "reprocess and {}",
                s.name
            );
        }
    }
}

#[test]
fn every_provider_is_in_the_openapi_document() {
    let text = std::fs::read_to_string(root().join("docs/openapi.yaml")).expect("openapi.yaml");
    let doc: Value = serde_yaml::from_str(&text).expect("openapi.yaml parses");
    let paths: BTreeSet<String> = doc["paths"]
        .as_mapping()
        .expect("paths")
        .keys()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    let expected: BTreeSet<String> = registry::all().map(|d| d.route.to_owned()).collect();
    assert_eq!(
        paths, expected,
        "docs/openapi.yaml documents exactly the routes"
    );
    for d in registry::all() {
        let post = &doc["paths"][d.route]["post"];
        assert!(post.is_mapping(), "{}: POST is documented", d.route);
        // Every header the provider signs with is a documented parameter.
        let credential = (d.credentials.dev)(&[1; 32]);
        let signed = (d.sign)(&registry::SignRequest {
            key: &credential.signing,
            url: "https://hooks.example.com",
            body: b"{}",
            timestamp: 1_795_000_000,
        })
        .expect("signs");
        for (header, _) in signed {
            let documented = post["parameters"]
                .as_sequence()
                .into_iter()
                .flatten()
                .any(|p| {
                    p["in"] == "header"
                        && p["name"]
                            .as_str()
                            .is_some_and(|n| n.eq_ignore_ascii_case(header))
                });
            assert!(documented, "{}: the {header} header is documented", d.route);
        }
    }
}

#[test]
fn every_fifo_queue_takes_the_largest_message_the_fanout_sends() {
    let doc = raw();
    let mut fifo = 0;
    for (id, resource) in resources(&doc) {
        let props = &resource["Properties"];
        if resource["Type"] == "AWS::SQS::Queue" && props["FifoQueue"] == Value::Bool(true) {
            fifo += 1;
            assert_eq!(
                props["MaximumMessageSize"].as_u64(),
                Some(switchboard_pipeline::fanout::MAX_MESSAGE_BYTES as u64),
                "{id:?}: a message the fanout sends must fit it (and its dead-letter queue)"
            );
        }
    }
    assert_eq!(fifo, 6, "three family queues and their dead-letter queues");
}

/// The statements of the role a function resource names.
fn role_statements<'a>(doc: &'a Value, function: &Value) -> Vec<&'a Value> {
    let (tag, target) = tagged(&function["Properties"]["Role"]).expect("Role: !GetAtt X.Arn");
    assert_eq!(tag, "!GetAtt");
    let role_id = target.strip_suffix(".Arn").expect(".Arn");
    let role = &resources(doc)[role_id];
    assert_eq!(role["Type"], "AWS::IAM::Role");
    assert!(
        role["Properties"].get("ManagedPolicyArns").is_none(),
        "{role_id}: no managed policies"
    );
    role["Properties"]["Policies"]
        .as_sequence()
        .expect("Policies")
        .iter()
        .flat_map(|p| {
            p["PolicyDocument"]["Statement"]
                .as_sequence()
                .expect("Statement")
        })
        .collect()
}

fn actions(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::String(a) => vec![a.clone()],
        Value::Sequence(list) => list
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect(),
        other => panic!("Action {other:?}"),
    }
}

#[test]
fn each_role_names_single_resources_and_each_webhook_only_its_own() {
    let doc = raw();
    for (id, function) in resources(&doc) {
        if function.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        assert!(
            function["Properties"].get("Policies").is_none(),
            "{id:?}: permissions live in its own role"
        );
        let binary = function["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .expect("binary");
        let statements = role_statements(&doc, function);
        for statement in &statements {
            assert_eq!(statement["Effect"], "Allow");
            if statement["Resource"] == "*" {
                assert_eq!(
                    actions(statement),
                    ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                    "{binary}: only X-Ray may use Resource \"*\""
                );
            }
        }
        let Some(provider) = provider_of(binary) else {
            // The others: exactly the data actions each needs.
            let mut data: Vec<String> = statements
                .iter()
                .flat_map(|s| actions(s))
                .filter(|a| !a.starts_with("logs:") && !a.starts_with("xray:"))
                .collect();
            data.sort();
            let expected: &[&str] = match binary {
                "fanout" => &[
                    "dynamodb:DescribeStream",
                    "dynamodb:GetRecords",
                    "dynamodb:GetShardIterator",
                    "dynamodb:ListStreams",
                    "sqs:SendMessage",
                    "sqs:SendMessage",
                ],
                "replay" => &[
                    "dynamodb:BatchGetItem",
                    "dynamodb:Query",
                    "dynamodb:Scan",
                    "sqs:SendMessage",
                ],
                "reprocess" => &[
                    "dynamodb:BatchGetItem",
                    "dynamodb:PutItem",
                    "dynamodb:Query",
                    "dynamodb:UpdateItem",
                ],
                "example-consumer" => &[
                    "sqs:ChangeMessageVisibility",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ReceiveMessage",
                ],
                other => panic!("{other}: which permissions does it need?"),
            };
            assert_eq!(data, expected, "{binary}");
            continue;
        };
        // PutItem, on its provider's keys only; the prefix is the one the
        // code writes.
        let put = statements
            .iter()
            .find(|s| actions(s) == ["dynamodb:PutItem"])
            .expect("PutItem statement");
        let prefixes = put["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
            .as_sequence()
            .expect("LeadingKeys");
        assert_eq!(prefixes.len(), 1);
        let prefix = prefixes[0].as_str().expect("prefix");
        assert_eq!(prefix, format!("{}#*", provider.as_str()));
        for pk in [
            key::partition(provider, "default", Some("c"), "x"),
            key::partition(provider, "acme", None, "x"),
        ] {
            assert!(pk.starts_with(prefix.trim_end_matches('*')), "{pk}");
        }
        // Its own secret: the one its *_SECRET_ID names.
        let secret_var = descriptor(provider).credentials.secret;
        let (_, secret) =
            tagged(&function["Properties"]["Environment"]["Variables"][secret_var]).expect("!Ref");
        let read = statements
            .iter()
            .find(|s| actions(s) == ["secretsmanager:GetSecretValue"])
            .expect("GetSecretValue statement");
        assert_eq!(tagged(&read["Resource"]), Some(("!Ref".into(), secret)));
        // The init-time connection warm-up reads the table's description
        // (metadata, no items), on the events table only.
        let describe = statements
            .iter()
            .find(|s| actions(s) == ["dynamodb:DescribeTable"])
            .expect("DescribeTable statement");
        assert_eq!(
            tagged(&describe["Resource"]),
            tagged(&put["Resource"]),
            "{binary}: DescribeTable on the events table"
        );
        // Nothing else that reads or writes data.
        let data: Vec<String> = statements
            .iter()
            .flat_map(|s| actions(s))
            .filter(|a| !a.starts_with("logs:") && !a.starts_with("xray:"))
            .collect();
        assert_eq!(
            data,
            [
                "dynamodb:PutItem",
                "dynamodb:DescribeTable",
                "secretsmanager:GetSecretValue"
            ],
            "{binary}"
        );
    }
}

#[test]
fn alarms_watch_metrics_the_code_emits_in_its_namespace() {
    let doc = raw();
    let namespace =
        tagged(&doc["Globals"]["Function"]["Environment"]["Variables"]["METRICS_NAMESPACE"])
            .expect("METRICS_NAMESPACE: !Sub ...");
    let emitted: BTreeSet<&str> = OutcomeKind::ALL
        .iter()
        .map(|k| k.metric())
        .chain(["published", "failed", "skipped"])
        .collect();
    // The reasons the code reports, by metric.
    let reasons: BTreeSet<(&str, &str)> = [
        (
            "auth_failed",
            switchboard_providers::AuthError::TimestampOutOfWindow {
                skew_secs: 0,
                direction: "before",
                tolerance_secs: 0,
            }
            .code(),
        ),
        (
            "quarantined",
            DecodeError::OrgNotAllowed {
                org_id: None,
                accounts: &switchboard_providers::partoo::ACCOUNTS,
            }
            .code(),
        ),
        (
            "quarantined",
            DecodeError::TooLarge { size: 0, limit: 0 }.code(),
        ),
        (
            "quarantined",
            DecodeError::StorageRefused(String::new()).code(),
        ),
    ]
    .into();
    let series = published_series();
    let mut reason_alarms = BTreeSet::new();
    let mut watched = BTreeSet::new();
    for (id, alarm) in resources(&doc) {
        if alarm.get("Type").and_then(Value::as_str) != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        let props = &alarm["Properties"];
        // A plain description, or one joined from parameters.
        let description = serde_yaml::to_string(&props["AlarmDescription"]).expect("text");
        assert!(
            description.contains("docs/operations.md#"),
            "{id:?} names its runbook"
        );
        // Metric math reads our metrics by name too.
        for stat in props["Metrics"].as_sequence().into_iter().flatten() {
            let metric = &stat["MetricStat"]["Metric"];
            if tagged(&metric["Namespace"]).is_some() {
                assert_eq!(
                    tagged(&metric["Namespace"]),
                    Some(namespace.clone()),
                    "{id:?}"
                );
                let name = metric["MetricName"].as_str().expect("MetricName");
                assert!(emitted.contains(name), "{id:?} reads {name}");
                let mut names: Vec<String> = metric["Dimensions"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .map(|d| d["Name"].as_str().expect("Name").to_owned())
                    .collect();
                names.sort();
                assert!(
                    series.contains(&(name.to_owned(), names.clone())),
                    "{id:?} reads {name} by {names:?}, which the code does not publish"
                );
            }
        }
        if let Some(ns) = tagged(&props["Namespace"]) {
            assert_eq!(ns, namespace, "{id:?}");
            let metric = props["MetricName"].as_str().expect("MetricName");
            assert!(emitted.contains(metric), "{id:?} watches {metric}");
            watched.insert(metric.to_owned());
            // The very series: a metric is published only with the
            // dimension sets something reads, so an alarm on another
            // would never see data.
            let mut names: Vec<String> = props["Dimensions"]
                .as_sequence()
                .into_iter()
                .flatten()
                .map(|d| d["Name"].as_str().expect("Name").to_owned())
                .collect();
            names.sort();
            assert!(
                series.contains(&(metric.to_owned(), names.clone())),
                "{id:?} watches {metric} by {names:?}, which the code does not publish"
            );
            // A reason alarm watches the `[Reason]` series of a code the
            // pipeline reports for that outcome.
            // A silence alarm watches the `[Provider]` or `[Provider,
            // Tenant]` series of `accepted` (silence_alarms_… below).
            for dimension in props["Dimensions"].as_sequence().into_iter().flatten() {
                match dimension["Name"].as_str() {
                    Some("Reason") => {
                        let reason = dimension["Value"].as_str().expect("value");
                        assert!(
                            reasons.contains(&(metric, reason)),
                            "{id:?}: {metric} has no reason {reason}"
                        );
                        reason_alarms.insert(reason.to_owned());
                    }
                    Some("Provider" | "Tenant") => assert_eq!(metric, "accepted", "{id:?}"),
                    other => panic!("{id:?}: a {other:?} dimension"),
                }
            }
        }
    }
    assert_eq!(
        watched,
        BTreeSet::from(["accepted", "auth_failed", "quarantined"].map(str::to_owned))
    );
    assert_eq!(
        reason_alarms,
        BTreeSet::from(
            [
                "org_not_allowed",
                "storage_refused",
                "timestamp_out_of_window",
                "too_large"
            ]
            .map(str::to_owned)
        ),
        "each way an authentic event is refused or kept unpublished has its alarm"
    );
    // Every runbook an alarm names exists.
    let operations =
        std::fs::read_to_string(root().join("docs/operations.md")).expect("docs/operations.md");
    for (id, alarm) in resources(&doc) {
        if let Some(description) = alarm["Properties"]["AlarmDescription"].as_str() {
            let anchor = description
                .split("docs/operations.md#")
                .nth(1)
                .expect("anchor");
            let heading = format!("### {}", anchor.replace('-', " "));
            assert!(
                operations
                    .lines()
                    .any(|l| l.to_lowercase().starts_with(&heading)),
                "{id:?}: docs/operations.md has no heading for #{anchor}"
            );
        }
    }
}

/// Every series the code publishes (metric, sorted dimension names): each
/// outcome of a request, with its event (and tenant) where it has one and
/// a reason where it can have one; the fanout's counts.
fn published_series() -> BTreeSet<(String, Vec<String>)> {
    let metrics = Metrics::new("N");
    let mut series: BTreeSet<(String, Vec<String>)> = BTreeSet::new();
    for kind in OutcomeKind::ALL {
        for (reason, event) in [
            (None, true),
            (Some("some_code"), false),
            (Some("some_code"), true),
        ] {
            let outcome = switchboard_pipeline::Outcome {
                provider: Provider::Bird,
                kind,
                reason,
                event: event.then(|| switchboard_pipeline::EventSummary {
                    event_id: "e".into(),
                    event_type: "t".into(),
                    tenant: "acme".into(),
                    conversation: "acme/c".into(),
                }),
            };
            let doc = metrics.webhook(&outcome, std::time::Duration::ZERO, 0);
            for directive in doc["_aws"]["CloudWatchMetrics"]
                .as_array()
                .expect("directives")
            {
                for dims in directive["Dimensions"].as_array().expect("dimensions") {
                    let mut names: Vec<String> = dims
                        .as_array()
                        .expect("names")
                        .iter()
                        .map(|d| d.as_str().expect("name").to_owned())
                        .collect();
                    names.sort();
                    for metric in directive["Metrics"].as_array().expect("metrics") {
                        let name = metric["Name"].as_str().expect("name").to_owned();
                        series.insert((name, names.clone()));
                    }
                }
            }
        }
    }
    for name in ["published", "failed", "skipped"] {
        series.insert((name.to_owned(), Vec::new()));
    }
    series
}

#[test]
fn the_dashboard_reads_what_the_code_and_lambda_publish() {
    let doc = raw();
    let (_, body) = tagged(&doc["Resources"]["Dashboard"]["Properties"]["DashboardBody"])
        .expect("DashboardBody: !Sub |");
    // The `${…}` the stack substitutes, as they would read.
    let substituted = regex_lite_sub(&body);
    let dashboard: serde_json::Value =
        serde_json::from_str(&substituted).expect("the dashboard body is JSON");
    let series = published_series();
    let mut durations = BTreeSet::new();
    for widget in dashboard["widgets"].as_array().expect("widgets") {
        for metric in widget["properties"]["metrics"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let parts = metric.as_array().expect("a metric row");
            if let Some(expression) = parts[0]["expression"].as_str() {
                // SEARCH('{Switchboard/<stack>,Dim,…} MetricName=("a" OR "b")', …)
                if let Some(schema) = expression
                    .split('{')
                    .nth(1)
                    .and_then(|rest| rest.split('}').next())
                    .filter(|schema| schema.starts_with("Switchboard/"))
                {
                    let mut dims: Vec<String> =
                        schema.split(',').skip(1).map(str::to_owned).collect();
                    dims.sort();
                    let names = expression.split("MetricName=").nth(1).expect("MetricName=");
                    for name in names.split('"').skip(1).step_by(2) {
                        assert!(
                            series.contains(&(name.to_owned(), dims.clone())),
                            "the dashboard searches {name} by {dims:?}, which the code does not publish"
                        );
                    }
                }
                continue;
            }
            let namespace = parts[0].as_str().expect("namespace");
            let name = parts[1].as_str().expect("metric name");
            if namespace.starts_with("Switchboard/") {
                let dims: Vec<String> = parts[2..]
                    .iter()
                    .filter_map(|p| p.as_str())
                    .step_by(2)
                    .map(str::to_owned)
                    .collect();
                assert!(
                    series.contains(&(name.to_owned(), dims.clone())),
                    "the dashboard reads {name} by {dims:?}, which the code does not publish"
                );
            }
            if (namespace, name) == ("AWS/Lambda", "Duration") {
                durations.insert(parts[3].as_str().expect("function").to_owned());
            }
        }
    }
    // Every webhook's duration is on it: a new provider's function too.
    let webhooks: BTreeSet<String> = resources(&doc)
        .iter()
        .filter(|(_, r)| {
            r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .is_some_and(|b| provider_of(b).is_some())
        })
        .map(|(id, _)| format!("<{}>", id.as_str().expect("id")))
        .collect();
    assert_eq!(durations, webhooks);
}

/// A `!Sub` body with each `${Name}` replaced by `<Name>`.
fn regex_lite_sub(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closing brace") + start;
        out.push('<');
        out.push_str(&rest[start + 2..end]);
        out.push('>');
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn every_registered_variable_is_in_the_configuration_reference() {
    let reference = std::fs::read_to_string(root().join("docs/configuration.md"))
        .expect("docs/configuration.md");
    let table: Vec<&str> = reference.lines().filter(|l| l.starts_with('|')).collect();
    for d in registry::all() {
        let names = [d.credentials.inline, d.credentials.secret]
            .into_iter()
            .chain(d.settings.iter().map(|s| s.name));
        for name in names {
            assert!(
                table.iter().any(|row| row.contains(&format!("`{name}`"))),
                "docs/configuration.md does not list {name}"
            );
        }
    }
}

/// The stream mapping keeps a conversation in order (one batch per shard at
/// a time; a higher factor keeps order only per item), reports partial
/// failures, and the local poller reads the same values from the template.
#[test]
fn the_fanout_stream_keeps_order_and_the_local_poller_follows_it() {
    let doc = raw();
    let fanout = &resources(&doc)["FanoutFunction"]["Properties"];
    let stream = &fanout["Events"]["Stream"]["Properties"];
    assert_eq!(stream["ParallelizationFactor"].as_u64(), Some(1));
    assert_eq!(
        stream["FunctionResponseTypes"][0].as_str(),
        Some("ReportBatchItemFailures")
    );
    assert_eq!(stream["BisectBatchOnFunctionError"].as_bool(), Some(true));
    let local = functions(&[])
        .into_iter()
        .find(|f| f.binary == "fanout")
        .expect("the fanout function")
        .stream_settings;
    assert_eq!(Some(local.batch_size as u64), stream["BatchSize"].as_u64());
    assert_eq!(
        Some(u64::from(local.maximum_retry_attempts)),
        stream["MaximumRetryAttempts"].as_u64()
    );
    assert_eq!(
        Some(local.function_timeout.as_secs()),
        fanout["Timeout"].as_u64()
    );
    assert!(local.bisect_on_function_error);
}

#[test]
fn the_example_consumer_reads_every_fifo_queue_as_lambda_advises() {
    // Off unless asked for; on, one SQS event source per FIFO queue with
    // partial batch responses, and each queue's visibility timeout at least
    // six times the function's timeout (Lambda's and SQS's advice: a batch
    // retried after a throttle stays hidden from other pollers).
    let doc = raw();
    let all = resources(&doc);
    assert_eq!(doc["Parameters"]["ExampleConsumer"]["Default"], "false");
    let function = &all["ExampleConsumerFunction"];
    assert_eq!(function["Condition"], "DeployExampleConsumer");
    let timeout = function["Properties"]["Timeout"].as_u64().expect("Timeout");
    let mut queues = BTreeSet::new();
    for (_, event) in function["Properties"]["Events"]
        .as_mapping()
        .expect("Events")
    {
        assert_eq!(event["Type"], "SQS");
        let props = &event["Properties"];
        assert_eq!(props["FunctionResponseTypes"][0], "ReportBatchItemFailures");
        let (_, target) = tagged(&props["Queue"]).expect("!GetAtt");
        let queue = target.trim_end_matches(".Arn").to_owned();
        let visibility = all[queue.as_str()]["Properties"]["VisibilityTimeout"]
            .as_u64()
            .expect("VisibilityTimeout");
        assert!(
            visibility >= 6 * timeout,
            "{queue}: {visibility} s < 6 x {timeout} s"
        );
        queues.insert(queue);
    }
    let fifo: BTreeSet<String> = all
        .iter()
        .filter(|(_, r)| {
            r["Properties"]["FifoQueue"] == true && r["Properties"].get("RedrivePolicy").is_some()
        })
        .filter_map(|(id, _)| id.as_str().map(str::to_owned))
        .collect();
    assert_eq!(queues, fifo);
}

#[test]
fn the_consumer_in_the_operations_guide_is_the_example_consumer() {
    // docs/operations.md shows the example consumer's whole main.rs, which
    // the workspace builds: the snippet a team copies compiles.
    let guide = std::fs::read_to_string(root().join("docs/operations.md")).expect("guide");
    let main = std::fs::read_to_string(root().join("functions/example-consumer/src/main.rs"))
        .expect("main.rs");
    assert!(
        guide.contains(&format!("```rust\n{main}```")),
        "docs/operations.md's consumer differs from functions/example-consumer/src/main.rs"
    );
}

/// The silence alarms `params` create: `(provider, tenant, hours)` each.
fn silence_alarms(params: &[(&str, &str)]) -> BTreeSet<(String, Option<String>, String)> {
    let (template, physical) = loaded(params);
    let mut out = BTreeSet::new();
    for (id, alarm) in template
        .resources("AWS::CloudWatch::Alarm")
        .expect("alarms resolve")
    {
        let props = template
            .resolve(&alarm["Properties"], &physical)
            .expect("resolves")
            .expect("properties");
        if props["MetricName"] != "accepted" {
            continue;
        }
        // No accepted event in each of the last `hours` hourly sums.
        assert_eq!(props["Namespace"], "Switchboard/stack", "{id}");
        assert_eq!(props["Statistic"], "Sum", "{id}");
        assert_eq!(props["Period"], 3600, "{id}");
        assert_eq!(props["ComparisonOperator"], "LessThanThreshold", "{id}");
        assert_eq!(props["Threshold"], 1, "{id}");
        assert_eq!(
            props["TreatMissingData"], "breaching",
            "{id}: no data is silence"
        );
        let hours = props["EvaluationPeriods"].to_string().replace('"', "");
        assert_eq!(
            props["DatapointsToAlarm"].to_string().replace('"', ""),
            hours,
            "{id}"
        );
        assert_eq!(props["AlarmActions"][0], "ref-AlarmTopic", "{id}");
        assert!(
            props["AlarmDescription"]
                .as_str()
                .is_some_and(|d| d.contains("docs/operations.md#silent-provider")),
            "{id}: names its runbook"
        );
        let dimension = |name: &str| {
            props["Dimensions"]
                .as_array()
                .expect("dimensions")
                .iter()
                .find(|d| d["Name"] == name)
                .map(|d| d["Value"].as_str().expect("value").to_owned())
        };
        let provider = dimension("Provider").expect("a Provider dimension");
        out.insert((provider, dimension("Tenant"), hours));
    }
    out
}

#[test]
fn silence_alarms_are_off_by_default_and_follow_their_parameters() {
    assert!(silence_alarms(&[]).is_empty(), "default off");
    // One hours parameter per registered provider; the alarm's dimension is
    // the Provider value the webhooks emit `accepted` with.
    let mut params = Vec::new();
    let names: Vec<(String, String)> = registry::all()
        .map(|d| {
            let name = d.name().to_owned();
            let mut parameter = name.clone();
            parameter[..1].make_ascii_uppercase();
            (format!("{parameter}SilenceHours"), name)
        })
        .collect();
    for (i, (parameter, _)) in names.iter().enumerate() {
        params.push((parameter.as_str(), ["1", "6", "24", "168"][i % 4]));
    }
    params.push(("SilenceAlarmTenants", "bird/acme/6,zipmessage/globex/24"));
    let alarms = silence_alarms(&params);
    let mut expected: BTreeSet<(String, Option<String>, String)> = names
        .iter()
        .enumerate()
        .map(|(i, (_, name))| {
            (
                name.clone(),
                None,
                ["1", "6", "24", "168"][i % 4].to_owned(),
            )
        })
        .collect();
    expected.insert(("bird".into(), Some("acme".into()), "6".into()));
    expected.insert(("zipmessage".into(), Some("globex".into()), "24".into()));
    assert_eq!(alarms, expected);
}

#[test]
fn the_silent_tenants_parameter_refuses_what_the_alarms_cannot_hold() {
    let doc = raw();
    let pattern = doc["Parameters"]["SilenceAlarmTenants"]["AllowedPattern"]
        .as_str()
        .expect("AllowedPattern");
    let re = regex::Regex::new(pattern).expect("a regex");
    for ok in [
        "",
        "bird/acme/6",
        "bird/acme/168,zipmessage/globex/1,partoo/123/24,bird/b/2,messagebird/m/3",
    ] {
        assert!(re.is_match(ok), "{ok:?} is accepted");
    }
    for bad in [
        "bird/acme",
        "bird/acme/0",
        "bird/acme/169",
        "bird/ACME/6",
        "bird/acme/6,",
        "a/b/1,a/b/2,a/b/3,a/b/4,a/b/5,a/b/6",
    ] {
        assert!(!re.is_match(bad), "{bad:?} is refused");
    }
    // As many slots as the pattern allows entries.
    let slots = resources(&doc)
        .keys()
        .filter_map(Value::as_str)
        .filter(|id| id.starts_with("SilenceTenant") && id.ends_with("Alarm"))
        .count();
    assert_eq!(slots, 5);
}
