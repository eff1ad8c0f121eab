//! IAM, enforced in front of moto.
//!
//! moto checks no permission, so a function whose role misses a grant
//! passes every local test and fails in AWS. Here each function of the
//! local stack signs its calls with credentials of its own role in
//! template.yaml ([`register`] at provisioning, [`Role::access_key`]), and
//! the AWS proxy ([`crate::aws_limits`]) asks, for every call so signed,
//! what AWS asks: may this role perform this action on this resource, with
//! these condition keys? The answer comes from a real policy evaluator,
//! `@cloud-copilot/iam-simulate` (`infra/iam/simulate.mjs`), which also
//! validates the action and the resource type against AWS's service
//! authorization data. A denied call is answered with AWS's
//! `AccessDeniedException`, naming role, function, action and resource, so
//! the test that made it fails as the function would fail in AWS.
//!
//! What this module writes itself is only what the evaluator cannot know:
//! which IAM action and resource ARN an API request is (AWS's "Actions,
//! resources, and condition keys" reference, per service), and the
//! `dynamodb:LeadingKeys` condition key of the items it writes.
//!
//! Calls signed with any other credentials (the tests' own reads, the
//! local stack's provisioning, which CloudFormation does in AWS) are not
//! checked. With `SWITCHBOARD_IAM_LOG` set, every role and every checked
//! call is appended to that file as a JSON line; `infra/iam/coverage.mjs`
//! reads it to prove every grant of the template is used by some call or
//! listed with its reason.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The account every local ARN is in (moto's default account).
pub const ACCOUNT: &str = "123456789012";

/// A role of the template, as the local stack runs it.
#[derive(Debug, Clone, Serialize)]
pub struct Role {
    /// The stack it belongs to.
    pub stack: String,
    /// Its logical id in template.yaml.
    pub logical_id: String,
    /// The functions that run with it (their binaries).
    pub functions: Vec<String>,
    /// Its policies' statements, resolved, as one policy document.
    pub policy: Value,
}

impl Role {
    /// The access key id its functions sign with: unique per stack and role.
    pub fn access_key(stack: &str, logical_id: &str) -> String {
        format!("LOCALROLE-{stack}-{logical_id}")
    }

    /// The role's ARN (the name CloudFormation would give it, without the
    /// random suffix).
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:iam::{ACCOUNT}:role/{}-{}",
            self.stack, self.logical_id
        )
    }
}

fn roles() -> &'static Mutex<HashMap<String, Arc<Role>>> {
    static ROLES: OnceLock<Mutex<HashMap<String, Arc<Role>>>> = OnceLock::new();
    ROLES.get_or_init(Mutex::default)
}

/// Makes the proxy check every call signed with `role`'s access key
/// against its policy, and records the role in the call log.
pub fn register(role: Role) {
    log_line(&json!({ "kind": "role", "role": &role }));
    roles()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(
            Role::access_key(&role.stack, &role.logical_id),
            Arc::new(role),
        );
}

/// The registered role whose credentials signed a request, from its SigV4
/// `Authorization` header (`… Credential=AKID/date/region/service/…`), and
/// the region of that signature.
pub fn caller(authorization: Option<&str>) -> Option<(Arc<Role>, String)> {
    let credential = authorization?
        .split("Credential=")
        .nth(1)?
        .split([',', ' '])
        .next()?;
    let mut scope = credential.split('/');
    let key = scope.next()?;
    let _date = scope.next();
    let region = scope.next().unwrap_or("us-east-1").to_owned();
    let role = roles()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(key)
        .cloned()?;
    Some((role, region))
}

/// One authorization AWS makes for a request: an action on a resource,
/// with the request's condition keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// `service:Action`.
    pub action: String,
    /// The resource ARN (`*` for an action that takes none).
    pub resource: String,
    /// Condition keys the request sets (`dynamodb:LeadingKeys`).
    pub context: Value,
}

/// What the proxy knows of a table, to name a request's resource and keys.
pub trait Lookups {
    /// The partition key attribute of `table`.
    fn partition_key(&self, table: &str) -> Option<String>;
    /// The ARN of a secret named `name` (a name, not an ARN).
    fn secret_arn(&self, name: &str) -> Option<String>;
}

/// The IAM authorizations a JSON-protocol request needs, from its
/// `X-Amz-Target` (`DynamoDB_20120810.Query`) and body: AWS's "Actions,
/// resources, and condition keys" reference for DynamoDB, DynamoDB
/// Streams, SQS and Secrets Manager. An operation it does not model is an
/// error, so a new kind of call is decided on purpose, not waved through.
pub fn checks(
    target: &str,
    body: &Value,
    region: &str,
    lookups: &dyn Lookups,
) -> Result<Vec<Check>, String> {
    let (prefix, operation) = target
        .split_once('.')
        .ok_or_else(|| format!("{target:?} is no AWS JSON-protocol operation"))?;
    let text = |field: &str| -> Result<&str, String> {
        body[field]
            .as_str()
            .ok_or_else(|| format!("{operation} without {field}"))
    };
    let table_arn = |table: &str| format!("arn:aws:dynamodb:{region}:{ACCOUNT}:table/{table}");
    let check = |action: &str, resource: String, context: Value| Check {
        action: action.to_owned(),
        resource,
        context,
    };
    let leading_keys = |table: &str, keys: &[&Value]| -> Value {
        let Some(pk) = lookups.partition_key(table) else {
            return json!({});
        };
        let values: Vec<Value> = keys
            .iter()
            .filter_map(|k| k[&pk].as_object()?.values().next().cloned())
            .collect();
        json!({ "dynamodb:LeadingKeys": values })
    };
    match prefix {
        "DynamoDB_20120810" => {
            let action = format!("dynamodb:{operation}");
            match operation {
                "BatchGetItem" | "BatchWriteItem" => {
                    let tables = body["RequestItems"]
                        .as_object()
                        .ok_or_else(|| format!("{operation} without RequestItems"))?;
                    Ok(tables
                        .iter()
                        .map(|(table, request)| {
                            let keys: Vec<&Value> = if operation == "BatchGetItem" {
                                request["Keys"].as_array().into_iter().flatten().collect()
                            } else {
                                request
                                    .as_array()
                                    .into_iter()
                                    .flatten()
                                    .filter_map(|w| {
                                        let put = &w["PutRequest"]["Item"];
                                        Some(if put.is_object() {
                                            put
                                        } else {
                                            w.get("DeleteRequest")?.get("Key")?
                                        })
                                    })
                                    .collect()
                            };
                            check(&action, table_arn(table), leading_keys(table, &keys))
                        })
                        .collect())
                }
                "PutItem" | "UpdateItem" | "DeleteItem" | "GetItem" => {
                    let table = text("TableName")?;
                    let key = if operation == "PutItem" {
                        &body["Item"]
                    } else {
                        &body["Key"]
                    };
                    Ok(vec![check(
                        &action,
                        table_arn(table),
                        leading_keys(table, &[key]),
                    )])
                }
                "Query" | "Scan" => {
                    let table = text("TableName")?;
                    let resource = match body["IndexName"].as_str() {
                        Some(index) => format!("{}/index/{index}", table_arn(table)),
                        None => table_arn(table),
                    };
                    Ok(vec![check(&action, resource, json!({}))])
                }
                "DescribeTable" | "DescribeTimeToLive" => Ok(vec![check(
                    &action,
                    table_arn(text("TableName")?),
                    json!({}),
                )]),
                "ListTables" => Ok(vec![check(&action, "*".into(), json!({}))]),
                other => Err(format!(
                    "the local IAM check does not model DynamoDB's {other}: add it to infra/local/src/iam.rs"
                )),
            }
        }
        "DynamoDBStreams_20120810" => {
            let action = format!("dynamodb:{operation}");
            let resource = match operation {
                "DescribeStream" | "GetShardIterator" => text("StreamArn")?.to_owned(),
                // moto's iterators begin with the stream's ARN, then `|`.
                "GetRecords" => text("ShardIterator")?
                    .split('|')
                    .next()
                    .filter(|arn| arn.contains(":table/") && arn.contains("/stream/"))
                    .ok_or("a shard iterator that names no stream")?
                    .to_owned(),
                "ListStreams" => "*".to_owned(),
                other => {
                    return Err(format!(
                        "the local IAM check does not model DynamoDB Streams' {other}"
                    ))
                }
            };
            Ok(vec![check(&action, resource, json!({}))])
        }
        "AmazonSQS" => {
            // A batch is authorized as its single action (SQS Developer
            // Guide, "Amazon SQS API permissions: Actions and resource
            // reference"): there is no sqs:SendMessageBatch permission.
            let action = match operation {
                "SendMessageBatch" => "SendMessage",
                "DeleteMessageBatch" => "DeleteMessage",
                "ChangeMessageVisibilityBatch" => "ChangeMessageVisibility",
                other => other,
            };
            let queue_arn = |url: &str| -> Result<String, String> {
                let mut segments = url.trim_end_matches('/').rsplit('/');
                let name = segments.next().unwrap_or_default();
                let account = segments.next().unwrap_or(ACCOUNT);
                Ok(format!("arn:aws:sqs:{region}:{account}:{name}"))
            };
            let resource = match operation {
                "ListQueues" => "*".to_owned(),
                "GetQueueUrl" => format!("arn:aws:sqs:{region}:{ACCOUNT}:{}", text("QueueName")?),
                _ => queue_arn(text("QueueUrl")?)?,
            };
            Ok(vec![check(&format!("sqs:{action}"), resource, json!({}))])
        }
        "secretsmanager" => {
            let id = text("SecretId")?;
            let resource = if id.starts_with("arn:") {
                id.to_owned()
            } else {
                lookups
                    .secret_arn(id)
                    .ok_or_else(|| format!("no secret named {id}"))?
            };
            Ok(vec![check(
                &format!("secretsmanager:{operation}"),
                resource,
                json!({}),
            )])
        }
        other => Err(format!(
            "the local IAM check does not model the service of {other}.{operation}"
        )),
    }
}

/// The evaluator's answer to one [`Check`].
#[derive(Debug, Clone, Deserialize)]
pub struct Answer {
    /// `Allowed`, `ImplicitlyDenied` or `ExplicitlyDenied`.
    #[serde(default)]
    pub decision: String,
    /// The statements (by Sid) that allowed it.
    #[serde(default)]
    pub statements: Vec<String>,
    /// Why the evaluator could not decide (an unknown action, a resource
    /// of a type the action does not take).
    #[serde(default)]
    pub error: Option<String>,
}

impl Answer {
    /// No decision, for `why`.
    fn undecided(why: String) -> Self {
        Self {
            decision: String::new(),
            statements: Vec::new(),
            error: Some(why),
        }
    }
}

/// A long-running `node infra/iam/simulate.mjs`, asked one question at a
/// time, with its answers kept (a role's policy does not change while the
/// stack runs). One task owns the process and reads the answer to every
/// question it writes, so a caller that goes away mid-question (a request
/// whose client timed out) cannot leave an answer for the next one to read.
#[derive(Debug)]
pub struct Evaluator {
    questions: tokio::sync::mpsc::UnboundedSender<(String, tokio::sync::oneshot::Sender<Answer>)>,
    answers: Mutex<HashMap<String, Answer>>,
}

/// Where the evaluator script is: `SWITCHBOARD_IAM_SIMULATOR`, else
/// `infra/iam/simulate.mjs` of this checkout.
pub fn simulator_script() -> PathBuf {
    std::env::var_os("SWITCHBOARD_IAM_SIMULATOR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../iam/simulate.mjs"))
        })
}

impl Evaluator {
    /// Starts the evaluator (on the current tokio runtime), or says in one
    /// line why it cannot run.
    pub fn start() -> Result<Self, String> {
        let script = simulator_script();
        let dir = script.parent().map(PathBuf::from).unwrap_or_default();
        if !dir
            .join("node_modules/@cloud-copilot/iam-simulate")
            .is_dir()
        {
            return Err(format!(
                "the IAM evaluator is not installed: run `npm ci` in {} (make test does)",
                dir.display()
            ));
        }
        let mut child = tokio::process::Command::new("node")
            .arg(&script)
            .current_dir(&dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("node could not start the IAM evaluator: {e}"))?;
        let mut stdin = child.stdin.take().ok_or("the evaluator has no stdin")?;
        let stdout = child.stdout.take().ok_or("the evaluator has no stdout")?;
        let (questions, mut asked) =
            tokio::sync::mpsc::unbounded_channel::<(String, tokio::sync::oneshot::Sender<Answer>)>(
            );
        tokio::spawn(async move {
            let _child = child;
            let mut lines = BufReader::new(stdout).lines();
            while let Some((question, reply)) = asked.recv().await {
                let exchanged = async {
                    stdin.write_all(question.as_bytes()).await?;
                    stdin.write_all(b"\n").await?;
                    stdin.flush().await?;
                    lines.next_line().await
                }
                .await;
                let answer = match exchanged {
                    Ok(Some(line)) => serde_json::from_str(&line).unwrap_or_else(|e| {
                        Answer::undecided(format!("the evaluator answered {line:?}: {e}"))
                    }),
                    Ok(None) => Answer::undecided("the IAM evaluator exited".into()),
                    Err(e) => Answer::undecided(format!("the IAM evaluator failed: {e}")),
                };
                // The asker may have gone; the answer was read all the same.
                let _ = reply.send(answer);
            }
        });
        Ok(Self {
            questions,
            answers: Mutex::default(),
        })
    }

    /// Whether `role` may make `check`.
    pub async fn decide(&self, role: &Role, check: &Check) -> Answer {
        let request = json!({
            "policy": role.policy,
            "principal": role.arn(),
            "action": check.action,
            "resource": check.resource,
            "context": check.context,
        })
        .to_string();
        if let Some(answer) = self
            .answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&request)
        {
            return answer.clone();
        }
        let (reply, answered) = tokio::sync::oneshot::channel();
        let answer = if self.questions.send((request.clone(), reply)).is_ok() {
            answered
                .await
                .unwrap_or_else(|_| Answer::undecided("the IAM evaluator stopped".into()))
        } else {
            Answer::undecided("the IAM evaluator stopped".into())
        };
        if answer.error.is_none() {
            self.answers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(request, answer.clone());
        }
        answer
    }
}

/// Whether calls must be checked even when the evaluator cannot run
/// (`SWITCHBOARD_IAM=required`, as `make test` sets), or not at all
/// (`SWITCHBOARD_IAM=off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Check when the evaluator is installed; warn once otherwise.
    IfInstalled,
    /// Refuse every role's call when the evaluator cannot run.
    Required,
    /// Check nothing.
    Off,
}

impl Mode {
    /// From `SWITCHBOARD_IAM`.
    pub fn from_env() -> Self {
        match std::env::var("SWITCHBOARD_IAM").as_deref() {
            Ok("required") => Self::Required,
            Ok("off") => Self::Off,
            _ => Self::IfInstalled,
        }
    }
}

/// AWS's message for a denied call.
pub fn denial_message(role: &Role, check: &Check, why: Option<&str>) -> String {
    let session = role.functions.join(",");
    match why {
        None => format!(
            "User: arn:aws:sts::{ACCOUNT}:assumed-role/{}-{}/{session} is not authorized to \
             perform: {} on resource: {} because no identity-based policy allows the {} action \
             (role {} of template.yaml)",
            role.stack, role.logical_id, check.action, check.resource, check.action, role.logical_id
        ),
        Some(why) => format!(
            "{session} (role {}) called {} on {}, which the local IAM check could not decide: {why}",
            role.logical_id, check.action, check.resource
        ),
    }
}

/// Appends a checked call to the call log.
pub fn log_call(role: &Role, check: &Check, answer: &Answer) {
    log_line(&json!({
        "kind": "call",
        "stack": role.stack,
        "role": role.logical_id,
        "functions": role.functions,
        "action": check.action,
        "resource": check.resource,
        "decision": answer.decision,
        "statements": answer.statements,
        "error": answer.error,
    }));
}

fn log_line(line: &Value) {
    let Some(path) = std::env::var_os("SWITCHBOARD_IAM_LOG") else {
        return;
    };
    static LOG: Mutex<()> = Mutex::new(());
    let _one_at_a_time = LOG.lock().unwrap_or_else(PoisonError::into_inner);
    // One write per line, in append mode: lines of concurrent test
    // processes do not interleave.
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = file.write_all(format!("{line}\n").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Lookups for Fixed {
        fn partition_key(&self, _: &str) -> Option<String> {
            Some("pk".into())
        }
        fn secret_arn(&self, name: &str) -> Option<String> {
            Some(format!(
                "arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{name}-AbCdEf"
            ))
        }
    }

    fn one(target: &str, body: Value) -> Check {
        let mut all = checks(target, &body, "eu-west-1", &Fixed).expect("modelled");
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    #[test]
    fn a_query_on_an_index_is_a_resource_of_its_own() {
        let table = one(
            "DynamoDB_20120810.Query",
            json!({ "TableName": "t", "KeyConditionExpression": "pk = :p" }),
        );
        assert_eq!(
            table.resource,
            format!("arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/t")
        );
        let index = one(
            "DynamoDB_20120810.Query",
            json!({ "TableName": "t", "IndexName": "by-day" }),
        );
        assert_eq!(
            index.resource,
            format!("arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/t/index/by-day")
        );
        assert_eq!(index.action, "dynamodb:Query");
    }

    #[test]
    fn writes_carry_their_partition_keys_as_leading_keys() {
        let put = one(
            "DynamoDB_20120810.PutItem",
            json!({ "TableName": "t", "Item": { "pk": { "S": "bird#x" }, "v": { "N": "1" } } }),
        );
        assert_eq!(put.context, json!({ "dynamodb:LeadingKeys": ["bird#x"] }));
        let batch = checks(
            "DynamoDB_20120810.BatchGetItem",
            &json!({ "RequestItems": { "t": { "Keys": [ { "pk": { "S": "a" }, "sk": { "S": "1" } }, { "pk": { "S": "b" }, "sk": { "S": "2" } } ] } } }),
            "us-east-1",
            &Fixed,
        )
        .expect("modelled");
        assert_eq!(
            batch[0].context,
            json!({ "dynamodb:LeadingKeys": ["a", "b"] })
        );
    }

    #[test]
    fn sqs_batches_are_authorized_as_their_single_action() {
        for (operation, action) in [
            ("SendMessageBatch", "sqs:SendMessage"),
            ("DeleteMessageBatch", "sqs:DeleteMessage"),
            (
                "ChangeMessageVisibilityBatch",
                "sqs:ChangeMessageVisibility",
            ),
            ("ReceiveMessage", "sqs:ReceiveMessage"),
        ] {
            let c = one(
                &format!("AmazonSQS.{operation}"),
                json!({ "QueueUrl": "http://127.0.0.1:1/123456789012/q.fifo" }),
            );
            assert_eq!(c.action, action);
            assert_eq!(c.resource, "arn:aws:sqs:eu-west-1:123456789012:q.fifo");
        }
    }

    #[test]
    fn a_records_read_names_the_stream_of_its_iterator() {
        let stream =
            "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-12-07T00:00:00.000";
        let c = one(
            "DynamoDBStreams_20120810.GetRecords",
            json!({ "ShardIterator": format!("{stream}|1|abc") }),
        );
        assert_eq!(c.resource, stream);
        assert!(checks(
            "DynamoDBStreams_20120810.GetRecords",
            &json!({ "ShardIterator": "opaque" }),
            "us-east-1",
            &Fixed
        )
        .is_err());
    }

    #[test]
    fn secrets_named_by_name_resolve_to_their_arn() {
        let c = one(
            "secretsmanager.GetSecretValue",
            json!({ "SecretId": "stack/BirdSecret" }),
        );
        assert_eq!(
            c.resource,
            format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:stack/BirdSecret-AbCdEf")
        );
    }

    #[test]
    fn an_operation_it_does_not_model_is_an_error_not_a_pass() {
        for target in [
            "DynamoDB_20120810.TransactWriteItems",
            "Kinesis_20131202.PutRecord",
            "NoDot",
        ] {
            assert!(
                checks(target, &json!({}), "us-east-1", &Fixed).is_err(),
                "{target}"
            );
        }
    }

    /// Needs the evaluator `make test` installs (infra/iam/node_modules).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_abandoned_question_never_answers_the_next_one() {
        let evaluator = Evaluator::start().unwrap_or_else(|why| panic!("{why}"));
        let queue = |name: &str| format!("arn:aws:sqs:us-east-1:{ACCOUNT}:{name}");
        let role = Role {
            stack: "s".into(),
            logical_id: "R".into(),
            functions: vec!["f".into()],
            policy: json!({ "Version": "2012-10-17", "Statement": [
                { "Sid": "Q", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue("allowed*") }
            ]}),
        };
        let send_to = |name: String| Check {
            action: "sqs:SendMessage".into(),
            resource: name,
            context: json!({}),
        };
        for n in 0..20 {
            // Asked, then given up on (a request whose client timed out):
            // polled once, so the question is out, then dropped.
            let abandoned = send_to(queue(&format!("allowed-{n}")));
            let _ = tokio::time::timeout(
                std::time::Duration::ZERO,
                evaluator.decide(&role, &abandoned),
            )
            .await;
            let denied = evaluator
                .decide(&role, &send_to(queue(&format!("other-{n}"))))
                .await;
            assert_eq!(
                denied.decision, "ImplicitlyDenied",
                "question {n}: {denied:?}"
            );
            let allowed = evaluator.decide(&role, &send_to(queue("allowed"))).await;
            assert_eq!(allowed.decision, "Allowed", "question {n}: {allowed:?}");
        }
    }

    #[test]
    fn the_caller_is_read_from_the_sigv4_credential() {
        register(Role {
            stack: "s1".into(),
            logical_id: "ReplayRole".into(),
            functions: vec!["replay".into()],
            policy: json!({ "Version": "2012-10-17", "Statement": [] }),
        });
        let header = "AWS4-HMAC-SHA256 Credential=LOCALROLE-s1-ReplayRole/20261207/eu-west-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00";
        let (role, region) = caller(Some(header)).expect("registered");
        assert_eq!(role.logical_id, "ReplayRole");
        assert_eq!(region, "eu-west-1");
        assert!(caller(Some(&header.replace("s1", "s2"))).is_none());
        assert!(caller(None).is_none());
    }
}
