//! Creates the template's tables, queues and secrets on the local AWS
//! endpoint (moto), and resolves every function's environment and routes
//! from the same template — so the local stack runs with exactly the
//! resources and configuration a deployed stack has.

use crate::template::{attribute_text, scalar_text, NotYet, Physical, Template};
use anyhow::{anyhow, bail, Context, Result};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value as Json;
use std::collections::HashMap;

/// A function of the template, as the local stack runs it.
#[derive(Debug, Clone)]
pub struct LocalFunction {
    /// Logical id in the template.
    pub logical_id: String,
    /// The cargo binary (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    /// Resolved `Environment.Variables` (Globals merged in).
    pub env: HashMap<String, String>,
    /// `(method, path)` of each HttpApi event.
    pub routes: Vec<(String, String)>,
    /// Logical id of the table whose stream triggers it, if any.
    pub stream_table: Option<String>,
    /// Logical id of the stream source's on-failure destination queue.
    pub failure_queue: Option<String>,
    /// The stream source's batch, retry and bisect settings (for a
    /// stream-triggered function), and the function's timeout.
    pub stream_settings: crate::poller::Settings,
    /// Each SQS event: the queue, batch size and response types.
    pub queue_events: Vec<crate::sqs_source::QueueEvent>,
    /// The access key id of its role (`Role: !GetAtt X.Arn`): what its
    /// calls are signed with, and checked against ([`crate::iam`]).
    pub access_key: Option<String>,
}

impl LocalFunction {
    /// `sdk` signing as this function's role (unchanged for a function
    /// without one).
    pub fn sdk(&self, sdk: &SdkConfig) -> SdkConfig {
        match &self.access_key {
            Some(key) => crate::as_role(sdk, key),
            None => sdk.clone(),
        }
    }
}

/// Everything provisioned for one local stack.
#[derive(Debug, Clone)]
pub struct Provisioned {
    /// Physical ids and attributes, by logical id.
    pub physical: Physical,
    /// The template's functions, resolved.
    pub functions: Vec<LocalFunction>,
    /// Queue URL by logical id.
    pub queues: HashMap<String, String>,
    /// Secret ARN by logical id.
    pub secrets: HashMap<String, String>,
    /// Table name by logical id.
    pub tables: HashMap<String, String>,
}

/// Creates every table, queue and secret of `template`. `secret_values`
/// gives the value of a secret by the environment variable a function uses
/// to name it (e.g. `ZIPMESSAGE_SECRET_ID`), overriding the template's own.
pub async fn provision(
    sdk: &SdkConfig,
    template: &Template,
    secret_values: &HashMap<String, String>,
) -> Result<Provisioned> {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let secrets_client = aws_sdk_secretsmanager::Client::new(sdk);
    let mut physical = Physical::default();
    let mut tables = HashMap::new();
    let mut queues = HashMap::new();
    let mut secrets = HashMap::new();

    for (id, resource) in template.resources("AWS::DynamoDB::Table")? {
        let props = template
            .resolve(props_of(resource), &physical)?
            .unwrap_or(Json::Null);
        let (name, stream_arn) = create_table(&dynamodb, &props)
            .await
            .with_context(|| format!("creating table {id}"))?;
        physical.attrs.insert(
            (id.clone(), "Arn".into()),
            format!(
                "arn:aws:dynamodb:{}:123456789012:table/{name}",
                template.region
            ),
        );
        if let Some(arn) = stream_arn {
            physical.attrs.insert((id.clone(), "StreamArn".into()), arn);
        }
        physical.refs.insert(id.clone(), name.clone());
        tables.insert(id, name);
    }

    // Queues may refer to each other (redrive to a DLQ): create in passes.
    let mut pending = template.resources("AWS::SQS::Queue")?;
    while !pending.is_empty() {
        let before = pending.len();
        let mut deferred = Vec::new();
        for (id, resource) in pending {
            match template.resolve(props_of(resource), &physical) {
                Ok(props) => {
                    let props = props.unwrap_or(Json::Null);
                    let (url, arn, name) = create_queue(&sqs, &props)
                        .await
                        .with_context(|| format!("creating queue {id}"))?;
                    physical.refs.insert(id.clone(), url.clone());
                    physical.attrs.insert((id.clone(), "Arn".into()), arn);
                    physical
                        .attrs
                        .insert((id.clone(), "QueueName".into()), name);
                    physical
                        .attrs
                        .insert((id.clone(), "QueueUrl".into()), url.clone());
                    queues.insert(id, url);
                }
                Err(e) if e.is::<NotYet>() => deferred.push((id, resource)),
                Err(e) => return Err(e.context(format!("resolving queue {id}"))),
            }
        }
        if deferred.len() == before {
            bail!(
                "queues refer to resources that never get created: {:?}",
                deferred.iter().map(|(id, _)| id).collect::<Vec<_>>()
            );
        }
        pending = deferred;
    }

    // Which function variable names each secret, so local values can be given by variable.
    let mut secret_variable: HashMap<String, String> = HashMap::new();
    for (_, function) in template.resources("AWS::Serverless::Function")? {
        if let Some(serde_yaml::Value::Mapping(vars)) = props_of(function)
            .get("Environment")
            .and_then(|e| e.get("Variables"))
        {
            for (name, value) in vars {
                if let serde_yaml::Value::Tagged(t) = value {
                    if t.tag == "!Ref" {
                        secret_variable.insert(scalar_text(&t.value), scalar_text(name));
                    }
                }
            }
        }
    }
    for (id, resource) in template.resources("AWS::SecretsManager::Secret")? {
        let props = template
            .resolve(props_of(resource), &physical)?
            .unwrap_or(Json::Null);
        let name = props
            .get("Name")
            .and_then(Json::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{}/{id}", template.stack_name));
        let value = secret_variable
            .get(&id)
            .and_then(|var| secret_values.get(var))
            .cloned()
            .or_else(|| {
                props
                    .get("SecretString")
                    .and_then(Json::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| crate::devkeys::random_token(40));
        let arn = match secrets_client
            .create_secret()
            .name(&name)
            .secret_string(&value)
            .send()
            .await
        {
            Ok(out) => out.arn().map(str::to_owned),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_exists_exception()) =>
            {
                secrets_client
                    .put_secret_value()
                    .secret_id(&name)
                    .secret_string(&value)
                    .send()
                    .await?;
                secrets_client
                    .describe_secret()
                    .secret_id(&name)
                    .send()
                    .await?
                    .arn()
                    .map(str::to_owned)
            }
            Err(e) => {
                return Err(anyhow!(aws_sdk_secretsmanager::error::DisplayErrorContext(
                    &e
                )
                .to_string()))
            }
        }
        .ok_or_else(|| anyhow!("secret {id} has no ARN"))?;
        physical.refs.insert(id.clone(), arn.clone());
        secrets.insert(id, arn);
    }

    // Log groups are not created locally; their ARNs (what a role's grant
    // names) are what CloudFormation's Fn::GetAtt would return.
    for (id, resource) in template.resources("AWS::Logs::LogGroup")? {
        if let Some(Json::String(name)) = props_of(resource)
            .get("LogGroupName")
            .map(|n| template.resolve(n, &physical))
            .transpose()?
            .flatten()
        {
            physical.attrs.insert(
                (id.clone(), "Arn".into()),
                format!(
                    "arn:aws:logs:{}:{}:log-group:{name}:*",
                    template.region,
                    crate::iam::ACCOUNT
                ),
            );
            physical.refs.insert(id, name);
        }
    }

    let functions = resolve_functions(template, &physical)?;
    register_roles(template, &physical, &functions)?;
    Ok(Provisioned {
        physical,
        functions,
        queues,
        secrets,
        tables,
    })
}

/// Registers every `AWS::IAM::Role` of the template, its policies
/// resolved, with the functions that run with it ([`crate::iam::register`]).
fn register_roles(
    template: &Template,
    physical: &Physical,
    functions: &[LocalFunction],
) -> Result<()> {
    for (id, resource) in template.resources("AWS::IAM::Role")? {
        let policies = props_of(resource)
            .get("Policies")
            .map(|p| template.resolve(p, physical))
            .transpose()
            .with_context(|| format!("resolving the policies of {id}"))?
            .flatten()
            .unwrap_or(Json::Null);
        let statements: Vec<Json> = policies
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|p| {
                p["PolicyDocument"]["Statement"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        let key = crate::iam::Role::access_key(&template.stack_name, &id);
        crate::iam::register(crate::iam::Role {
            stack: template.stack_name.clone(),
            logical_id: id.clone(),
            functions: functions
                .iter()
                .filter(|f| f.access_key.as_deref() == Some(key.as_str()))
                .map(|f| f.binary.clone())
                .collect(),
            policy: serde_json::json!({ "Version": "2012-10-17", "Statement": statements }),
        });
    }
    Ok(())
}

fn props_of(resource: &serde_yaml::Value) -> &serde_yaml::Value {
    static EMPTY: serde_yaml::Value = serde_yaml::Value::Null;
    resource.get("Properties").unwrap_or(&EMPTY)
}

/// Resolves each `AWS::Serverless::Function`'s environment, routes and stream source.
pub fn resolve_functions(template: &Template, physical: &Physical) -> Result<Vec<LocalFunction>> {
    let mut out = Vec::new();
    let globals = template
        .global("Function", "Environment")
        .and_then(|e| e.get("Variables"))
        .map(|v| template.resolve(v, physical))
        .transpose()?
        .flatten();
    for (id, resource) in template.resources("AWS::Serverless::Function")? {
        let props = props_of(resource);
        let binary = resource
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .map(scalar_text)
            .ok_or_else(|| anyhow!("function {id} has no Metadata.BuildProperties.Binary"))?;
        let mut env = HashMap::new();
        let own = props
            .get("Environment")
            .and_then(|e| e.get("Variables"))
            .map(|v| template.resolve(v, physical))
            .transpose()?
            .flatten();
        for vars in [&globals, &own].into_iter().flatten() {
            if let Json::Object(map) = vars {
                for (k, v) in map {
                    env.insert(k.clone(), attribute_text(v));
                }
            }
        }
        let mut routes = Vec::new();
        let mut stream_table = None;
        let mut failure_queue = None;
        let mut stream_settings = crate::poller::Settings::default();
        let mut queue_events = Vec::new();
        let number = |v: Option<&serde_yaml::Value>| v.and_then(serde_yaml::Value::as_u64);
        // The logical id a `!Ref X` or `!GetAtt X.Attr` names.
        let logical = |v: Option<&serde_yaml::Value>| match v {
            Some(serde_yaml::Value::Tagged(t)) => {
                scalar_text(&t.value).split('.').next().map(str::to_owned)
            }
            _ => None,
        };
        if let Some(timeout) =
            number(props.get("Timeout")).or_else(|| number(template.global("Function", "Timeout")))
        {
            stream_settings.function_timeout = std::time::Duration::from_secs(timeout);
        }
        if let Some(serde_yaml::Value::Mapping(events)) = props.get("Events") {
            for (_, event) in events {
                let kind = event
                    .get("Type")
                    .and_then(serde_yaml::Value::as_str)
                    .unwrap_or_default();
                let eprops = props_of(event);
                match kind {
                    "HttpApi" => routes.push((
                        eprops
                            .get("Method")
                            .map(scalar_text)
                            .unwrap_or_else(|| "ANY".into()),
                        eprops
                            .get("Path")
                            .map(scalar_text)
                            .ok_or_else(|| anyhow!("HttpApi event of {id} has no Path"))?,
                    )),
                    "DynamoDB" => {
                        stream_table = logical(eprops.get("Stream"));
                        if let Some(n) = number(eprops.get("BatchSize")) {
                            stream_settings.batch_size = usize::try_from(n).unwrap_or(100);
                        }
                        // A parameter's value (`!Ref FanoutBatchingWindowSeconds`).
                        let window = eprops
                            .get("MaximumBatchingWindowInSeconds")
                            .map(|v| template.resolve(v, physical))
                            .transpose()?
                            .flatten()
                            .map(|v| attribute_text(&v));
                        if let Some(seconds) = window {
                            let seconds: u64 = seconds.trim().parse().map_err(|_| {
                                anyhow!("{id}: MaximumBatchingWindowInSeconds is not a number: {seconds}")
                            })?;
                            stream_settings.batching_window =
                                std::time::Duration::from_secs(seconds);
                        }
                        if let Some(n) = number(eprops.get("MaximumRetryAttempts")) {
                            stream_settings.maximum_retry_attempts = u32::try_from(n).unwrap_or(10);
                        }
                        if let Some(b) = eprops
                            .get("BisectBatchOnFunctionError")
                            .and_then(serde_yaml::Value::as_bool)
                        {
                            stream_settings.bisect_on_function_error = b;
                        }
                        failure_queue = logical(
                            eprops
                                .get("DestinationConfig")
                                .and_then(|d| d.get("OnFailure"))
                                .and_then(|o| o.get("Destination")),
                        );
                    }
                    "SQS" => queue_events.push(crate::sqs_source::QueueEvent {
                        queue: logical(eprops.get("Queue"))
                            .ok_or_else(|| anyhow!("SQS event of {id} names no queue"))?,
                        batch_size: number(eprops.get("BatchSize"))
                            .and_then(|n| i32::try_from(n).ok())
                            .unwrap_or(10),
                        report_batch_item_failures: eprops
                            .get("FunctionResponseTypes")
                            .and_then(serde_yaml::Value::as_sequence)
                            .is_some_and(|types| {
                                types
                                    .iter()
                                    .any(|t| t.as_str() == Some("ReportBatchItemFailures"))
                            }),
                    }),
                    _ => {}
                }
            }
        }
        out.push(LocalFunction {
            logical_id: id,
            binary,
            env,
            routes,
            stream_table,
            failure_queue,
            stream_settings,
            queue_events,
            access_key: logical(props.get("Role"))
                .map(|role| crate::iam::Role::access_key(&template.stack_name, &role)),
        });
    }
    Ok(out)
}

fn text<'a>(v: &'a Json, key: &str) -> Result<&'a str> {
    v.get(key)
        .and_then(Json::as_str)
        .ok_or_else(|| anyhow!("missing {key}"))
}

fn key_schema(v: &Json) -> Result<Vec<KeySchemaElement>> {
    v.as_array()
        .ok_or_else(|| anyhow!("KeySchema must be a list"))?
        .iter()
        .map(|k| {
            Ok(KeySchemaElement::builder()
                .attribute_name(text(k, "AttributeName")?)
                .key_type(KeyType::from(text(k, "KeyType")?))
                .build()?)
        })
        .collect()
}

async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    props: &Json,
) -> Result<(String, Option<String>)> {
    let name = text(props, "TableName")?.to_owned();
    let mut request = client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::from(
            props
                .get("BillingMode")
                .and_then(Json::as_str)
                .unwrap_or("PAY_PER_REQUEST"),
        ))
        .set_key_schema(Some(key_schema(
            props.get("KeySchema").unwrap_or(&Json::Null),
        )?));
    for def in props
        .get("AttributeDefinitions")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(text(def, "AttributeName")?)
                .attribute_type(ScalarAttributeType::from(text(def, "AttributeType")?))
                .build()?,
        );
    }
    for gsi in props
        .get("GlobalSecondaryIndexes")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let projection = gsi.get("Projection").unwrap_or(&Json::Null);
        let mut p = Projection::builder().projection_type(ProjectionType::from(
            projection
                .get("ProjectionType")
                .and_then(Json::as_str)
                .unwrap_or("ALL"),
        ));
        for attr in projection
            .get("NonKeyAttributes")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            p = p.non_key_attributes(attr.as_str().unwrap_or_default());
        }
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(text(gsi, "IndexName")?)
                .set_key_schema(Some(key_schema(
                    gsi.get("KeySchema").unwrap_or(&Json::Null),
                )?))
                .projection(p.build())
                .build()?,
        );
    }
    if let Some(view) = props
        .get("StreamSpecification")
        .and_then(|s| s.get("StreamViewType"))
        .and_then(Json::as_str)
    {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view))
                .build()?,
        );
    }
    // PointInTimeRecovery, SSE and deletion protection have no local meaning.
    let description = match request.send().await {
        Ok(output) => output.table_description().cloned(),
        // The SDK retries a CreateTable whose answer did not come in time
        // (moto's first DynamoDB request is slow while it loads); the retry
        // finds the table its first attempt created, as on AWS after a lost
        // answer. Names are unique per stack, so the table is this one.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            client
                .describe_table()
                .table_name(&name)
                .send()
                .await
                .map_err(|e| anyhow!(aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string()))?
                .table()
                .cloned()
        }
        Err(e) => {
            return Err(anyhow!(
                aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string()
            ))
        }
    };
    if let Some(ttl) = props.get("TimeToLiveSpecification") {
        client
            .update_time_to_live()
            .table_name(&name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(text(ttl, "AttributeName")?)
                    .enabled(ttl.get("Enabled").and_then(Json::as_bool).unwrap_or(false))
                    .build()?,
            )
            .send()
            .await
            .map_err(|e| anyhow!(aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string()))?;
    }
    let stream_arn = description
        .as_ref()
        .and_then(|d| d.latest_stream_arn())
        .map(str::to_owned);
    Ok((name, stream_arn))
}

async fn create_queue(
    client: &aws_sdk_sqs::Client,
    props: &Json,
) -> Result<(String, String, String)> {
    let name = text(props, "QueueName")?.to_owned();
    // moto's default is 1 MiB; AWS's has long been 256 KiB. A queue the
    // template leaves at the default gets AWS's stricter value, so the
    // limits proxy (crate::aws_limits) checks messages as AWS would.
    let mut request = client.create_queue().queue_name(&name).attributes(
        QueueAttributeName::MaximumMessageSize,
        crate::aws_limits::SQS_DEFAULT_MAX_MESSAGE.to_string(),
    );
    if let Json::Object(map) = props {
        for (key, value) in map {
            // CloudFormation's queue properties are SQS attribute names.
            if key == "QueueName" || key == "Tags" {
                continue;
            }
            request = request.attributes(
                QueueAttributeName::from(key.as_str()),
                attribute_text(value),
            );
        }
    }
    let url = request
        .send()
        .await
        .map_err(|e| anyhow!(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()))?
        .queue_url()
        .ok_or_else(|| anyhow!("no queue URL returned"))?
        .to_owned();
    let attrs = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?;
    let arn = attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| anyhow!("no queue ARN returned"))?;
    Ok((url, arn, name))
}
