//! Reads template.yaml and resolves the CloudFormation intrinsics the local
//! stack needs (`Ref`, `Fn::Sub`, `Fn::GetAtt`, `Fn::Select`, `Fn::Split`,
//! `Fn::Join`, `Fn::If` with `Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or`),
//! in short (`!Ref`) and long (`Ref:`) form. A resource whose `Condition` is
//! false is left out.
//! Parameters take their defaults unless overridden.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map, Value as Json};
use serde_yaml::Value;
use std::collections::HashMap;
use std::path::Path;

/// Physical ids and attributes of the resources created so far.
#[derive(Debug, Default, Clone)]
pub struct Physical {
    /// What `Ref` returns, by logical id.
    pub refs: HashMap<String, String>,
    /// `Fn::GetAtt` values, by (logical id, attribute).
    pub attrs: HashMap<(String, String), String>,
}

/// A parsed template bound to a stack name and region.
#[derive(Debug, Clone)]
pub struct Template {
    doc: Value,
    /// Stands in for `AWS::StackName`.
    pub stack_name: String,
    /// Stands in for `AWS::Region`.
    pub region: String,
    params: HashMap<String, String>,
}

/// Why a value could not be resolved yet.
#[derive(Debug, thiserror::Error)]
#[error("{0} is not created yet")]
pub struct NotYet(pub String);

impl Template {
    /// Loads `path`, with parameter defaults and `overrides`.
    pub fn load(
        path: &Path,
        stack_name: &str,
        region: &str,
        overrides: &HashMap<String, String>,
    ) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let doc: Value =
            serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let mut params = HashMap::new();
        if let Some(Value::Mapping(defs)) = doc.get("Parameters") {
            for (name, def) in defs {
                let name = name.as_str().unwrap_or_default().to_owned();
                if let Some(default) = def.get("Default") {
                    params.insert(name.clone(), scalar_text(default));
                }
            }
        }
        params.extend(overrides.clone());
        Ok(Self {
            doc,
            stack_name: stack_name.to_owned(),
            region: region.to_owned(),
            params,
        })
    }

    /// A parameter's value: its override, else its default.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// `(logical id, resource)` of every resource of `kind` the stack
    /// creates (its `Condition`, if any, true), in file order.
    pub fn resources(&self, kind: &str) -> Result<Vec<(String, &Value)>> {
        let Some(Value::Mapping(resources)) = self.doc.get("Resources") else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (id, resource) in resources {
            if resource.get("Type").and_then(Value::as_str) != Some(kind) {
                continue;
            }
            let id = id.as_str().unwrap_or_default().to_owned();
            // A resource whose `Condition` is false is not created.
            if let Some(condition) = resource.get("Condition") {
                let name = scalar_text(condition);
                if !self
                    .condition(&name, &Physical::default())
                    .with_context(|| format!("condition {name} of {id}"))?
                {
                    continue;
                }
            }
            out.push((id, resource));
        }
        Ok(out)
    }

    /// The `Globals` section's value at `section.key`, if any.
    pub fn global(&self, section: &str, key: &str) -> Option<&Value> {
        self.doc.get("Globals")?.get(section)?.get(key)
    }

    /// Resolves a value to JSON; `Ok(None)` for `AWS::NoValue`. Fails with
    /// [`NotYet`] when it refers to a resource not created yet.
    pub fn resolve(&self, value: &Value, physical: &Physical) -> Result<Option<Json>> {
        Ok(match value {
            Value::Null => Some(Json::Null),
            Value::Bool(b) => Some(json!(b)),
            Value::Number(n) => Some(serde_json::to_value(n)?),
            Value::String(s) => Some(json!(s)),
            Value::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    if let Some(v) = self.resolve(item, physical)? {
                        out.push(v);
                    }
                }
                Some(Json::Array(out))
            }
            Value::Mapping(map) => {
                if map.len() == 1 {
                    if let Some((Value::String(key), inner)) = map.iter().next() {
                        if key == "Ref" || key.starts_with("Fn::") || key == "Condition" {
                            let tag = if key == "Ref" {
                                "Ref".to_owned()
                            } else {
                                key.trim_start_matches("Fn::").to_owned()
                            };
                            return self.intrinsic(&tag, inner, physical);
                        }
                    }
                }
                let mut out = Map::new();
                for (k, v) in map {
                    if let Some(v) = self.resolve(v, physical)? {
                        out.insert(scalar_text(k), v);
                    }
                }
                Some(Json::Object(out))
            }
            Value::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                self.intrinsic(tag.trim_start_matches('!'), &tagged.value, physical)?
            }
        })
    }

    fn intrinsic(&self, tag: &str, arg: &Value, physical: &Physical) -> Result<Option<Json>> {
        Ok(match tag {
            "Ref" => {
                let name = arg.as_str().ok_or_else(|| anyhow!("Ref takes a name"))?;
                if name == "AWS::NoValue" {
                    None
                } else {
                    Some(json!(self.lookup(name, physical)?))
                }
            }
            "GetAtt" => {
                let (id, attr) = match arg {
                    Value::String(s) => {
                        s.split_once('.').map(|(a, b)| (a.to_owned(), b.to_owned()))
                    }
                    Value::Sequence(v) if v.len() == 2 => {
                        Some((scalar_text(&v[0]), scalar_text(&v[1])))
                    }
                    _ => None,
                }
                .ok_or_else(|| anyhow!("GetAtt takes Resource.Attribute"))?;
                let key = (id.clone(), attr.clone());
                Some(json!(physical
                    .attrs
                    .get(&key)
                    .ok_or_else(|| NotYet(format!("{id}.{attr}")))?))
            }
            "Sub" => {
                let text = match arg {
                    Value::String(s) => s.clone(),
                    _ => bail!("only the one-argument form of Fn::Sub is supported locally"),
                };
                Some(json!(self.substitute(&text, physical)?))
            }
            "If" => {
                let args = arg
                    .as_sequence()
                    .filter(|a| a.len() == 3)
                    .ok_or_else(|| anyhow!("If takes 3 items"))?;
                let branch = if self.condition(scalar_text(&args[0]).as_str(), physical)? {
                    &args[1]
                } else {
                    &args[2]
                };
                self.resolve(branch, physical)?
            }
            "Equals" | "Not" | "And" | "Or" | "Condition" => {
                Some(json!(self.evaluate(tag, arg, physical)?))
            }
            "Select" | "Split" | "Join" => {
                let args = arg
                    .as_sequence()
                    .filter(|a| a.len() == 2)
                    .ok_or_else(|| anyhow!("{tag} takes 2 items"))?;
                let first = self.resolve(&args[0], physical)?;
                let second = self.resolve(&args[1], physical)?;
                let text = |v: &Option<Json>| match v {
                    Some(Json::String(s)) => Ok(s.clone()),
                    Some(Json::Number(n)) => Ok(n.to_string()),
                    other => Err(anyhow!("{tag}: not a string: {other:?}")),
                };
                let list = |v: Option<Json>| match v {
                    Some(Json::Array(items)) => Ok(items),
                    other => Err(anyhow!("{tag}: not a list: {other:?}")),
                };
                match tag {
                    "Select" => {
                        let index: usize = text(&first)?
                            .parse()
                            .map_err(|_| anyhow!("Select: the index is not a number"))?;
                        let items = list(second)?;
                        Some(items.get(index).cloned().ok_or_else(|| {
                            anyhow!("Select: no item {index} in a list of {}", items.len())
                        })?)
                    }
                    "Split" => Some(json!(text(&second)?
                        .split(text(&first)?.as_str())
                        .collect::<Vec<_>>())),
                    _ => {
                        let parts = list(second)?
                            .into_iter()
                            .map(|item| text(&Some(item)))
                            .collect::<Result<Vec<_>>>()?;
                        Some(json!(parts.join(&text(&first)?)))
                    }
                }
            }
            other => bail!("intrinsic function {other} is not supported by the local stack"),
        })
    }

    fn condition(&self, name: &str, physical: &Physical) -> Result<bool> {
        let def = self
            .doc
            .get("Conditions")
            .and_then(|c| c.get(name))
            .ok_or_else(|| anyhow!("unknown condition {name}"))?;
        self.truth(def, physical)
    }

    fn truth(&self, value: &Value, physical: &Physical) -> Result<bool> {
        match self.resolve(value, physical)? {
            Some(Json::Bool(b)) => Ok(b),
            other => bail!("condition did not evaluate to a boolean: {other:?}"),
        }
    }

    fn evaluate(&self, tag: &str, arg: &Value, physical: &Physical) -> Result<bool> {
        let items = arg.as_sequence();
        Ok(match tag {
            "Equals" => {
                let items = items
                    .filter(|i| i.len() == 2)
                    .ok_or_else(|| anyhow!("Equals takes 2 items"))?;
                self.resolve(&items[0], physical)? == self.resolve(&items[1], physical)?
            }
            "Not" => !self.truth(
                items
                    .and_then(|i| i.first())
                    .ok_or_else(|| anyhow!("Not takes 1 item"))?,
                physical,
            )?,
            "And" => {
                let mut all = true;
                for item in items.ok_or_else(|| anyhow!("And takes a list"))? {
                    all &= self.truth(item, physical)?;
                }
                all
            }
            "Or" => {
                let mut any = false;
                for item in items.ok_or_else(|| anyhow!("Or takes a list"))? {
                    any |= self.truth(item, physical)?;
                }
                any
            }
            _ => self.condition(arg.as_str().unwrap_or_default(), physical)?,
        })
    }

    fn lookup(&self, name: &str, physical: &Physical) -> Result<String> {
        match name {
            "AWS::StackName" => return Ok(self.stack_name.clone()),
            "AWS::Region" => return Ok(self.region.clone()),
            "AWS::AccountId" => return Ok("123456789012".into()),
            "AWS::URLSuffix" => return Ok("amazonaws.com".into()),
            "AWS::Partition" => return Ok("aws".into()),
            _ => {}
        }
        if let Some(v) = self.params.get(name) {
            return Ok(v.clone());
        }
        physical
            .refs
            .get(name)
            .cloned()
            .ok_or_else(|| NotYet(name.to_owned()).into())
    }

    fn substitute(&self, text: &str, physical: &Physical) -> Result<String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| anyhow!("unclosed ${{ in Sub"))?;
            let name = &after[..end];
            let value = match name.split_once('.') {
                Some((id, attr)) if !name.starts_with("AWS::") => physical
                    .attrs
                    .get(&(id.to_owned(), attr.to_owned()))
                    .cloned()
                    .ok_or_else(|| anyhow::Error::from(NotYet(name.to_owned())))?,
                _ => self.lookup(name, physical)?,
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// A YAML scalar as text.
pub fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_owned(),
    }
}

/// A resolved JSON value rendered as the string an AWS attribute map wants.
pub fn attribute_text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}
