//! The provider registry: one [`Descriptor`] per provider, exported by the
//! provider's module, and [`descriptor`], the one place that lists them.
//!
//! Everything that lists or matches providers iterates this registry:
//! configuration (`switchboard-aws`), the local stack's routes, banner, dev
//! secrets, `env` and `sign` (`infra/local`), the tests' keys, seeds and
//! fuzz ranges, the benches and the load generator. Adding a provider is
//! its module with a `DESCRIPTOR`, its line in `switchboard_types`'
//! `providers!` list and its arm in [`descriptor`] (the compiler asks for
//! it), its function crate, its template and OpenAPI entries, its rows in
//! the configuration reference (docs/configuration.md) and its fixtures; `tests/template.rs`
//! and `tests/decode.rs` fail until the last four agree with the descriptor.

use crate::{bird, messagebird, partoo, twilio, whatsapp, zipmessage};
use crate::{ConfigError, DecodeError, Decoded, WebhookProvider};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use switchboard_types::Provider;

/// A provider built from its keys and settings.
pub type Built = Box<dyn WebhookProvider>;

/// Headers to send, by name.
pub type Headers = Vec<(&'static str, String)>;

/// What the registry knows of one provider.
#[derive(Debug)]
pub struct Descriptor {
    /// Which provider.
    pub provider: Provider,
    /// Its name for people (`ZipMessage`), in banners and messages.
    pub display_name: &'static str,
    /// The webhook route (API Gateway syntax; `{token}` is a path
    /// parameter carrying the credential). template.yaml declares exactly these.
    pub route: &'static str,
    /// The function crate and binary that serves the route.
    pub function: &'static str,
    /// Where its keys come from.
    pub credentials: Credentials,
    /// Whether and how its credentials carry a tenant label.
    pub labels: Labels,
    /// Settings beyond the keys, read by its webhook function.
    pub settings: &'static [Setting],
    /// Builds the authenticator from its keys and settings (at cold start).
    pub build: fn(&[Credential], &Settings) -> Result<Built, ConfigError>,
    /// Checks the settings alone, before any key is fetched, so a bad
    /// setting fails start-up with its own name; a valid setting that
    /// keeps every event from being published is a warning for the log.
    pub check: fn(&Settings) -> Result<Option<String>, ConfigError>,
    /// The events an authentic body carries, each as a body of its own in
    /// the provider's envelope, in the order the body has them ([`one_event`]
    /// for providers that send one event per request). Each part is stored
    /// as an event and decoded alone; a body that does not split is one part.
    pub split: for<'a> fn(&'a [u8]) -> Vec<Cow<'a, [u8]>>,
    /// Decodes one event's body (a part [`Descriptor::split`] made) into the
    /// neutral model.
    pub decode: fn(&[u8]) -> Result<Decoded, DecodeError>,
    /// What `data.raw` holds for an event's body that is not JSON (Twilio's
    /// form bodies: the form as a JSON object of arrays); `None` publishes
    /// the body itself, which is JSON ([`json_body`]).
    pub data_raw: fn(&[u8]) -> Option<String>,
    /// Where one key signs every sender-side account's webhooks, the
    /// allow-list of accounts whose events are published ([`Decoded::account`]
    /// is the event's tenant); `None` where the credential says whose event
    /// it is, and every authentic event is published.
    pub accounts: Option<&'static Accounts>,
    /// Signs a request as the provider does (tests and local tools): the
    /// headers to send. A provider whose credential sits in the URL adds none.
    pub sign: fn(&SignRequest<'_>) -> Result<Headers, String>,
    /// The header [`Descriptor::sign`] puts the signature in, if any: what
    /// `switchboard-local sign` prints.
    pub signature_header: Option<&'static str>,
    /// The `GET` check the provider sends to verify a webhook URL, when it
    /// sends one (Meta's `hub.challenge`): what `switchboard-local sign
    /// --url-check` builds.
    pub url_check: Option<UrlCheck>,
    /// Its documented example payloads, file names under
    /// `tests/fixtures/<name>/`: the seeds every test and measurement uses.
    pub fixtures: &'static [&'static str],
}

impl Descriptor {
    /// The provider's lowercase name.
    pub fn name(&self) -> &'static str {
        self.provider.as_str()
    }

    /// The request path for a credential: the route with `{token}` replaced
    /// by the credential where the route carries it.
    pub fn path(&self, signing_key: &str) -> String {
        self.route.replace("{token}", signing_key)
    }

    /// Its settings as a local or test stack sets them over the template's:
    /// the fixed values that suit the committed fixtures, and its route's
    /// URL on `base_url` (`http://127.0.0.1:3000`) for a setting that names
    /// its public URL. Settings the template decides are left out.
    pub fn local_settings(&self, base_url: &str) -> Vec<(&'static str, String)> {
        self.settings
            .iter()
            .filter_map(|s| match s.local {
                LocalDefault::Template | LocalDefault::Derived => None,
                LocalDefault::Value(value) => Some((s.name, value.to_owned())),
                LocalDefault::RouteUrl => Some((s.name, format!("{base_url}{}", self.route))),
            })
            .collect()
    }

    /// The route's prefix before its `{token}` segment, for providers whose
    /// credential is in the path.
    pub fn token_prefix(&self) -> Option<&'static str> {
        self.route.strip_suffix("{token}")
    }
}

/// A provider's `GET` URL check, as the provider sends it.
#[derive(Debug)]
pub struct UrlCheck {
    /// The setting that lists the tokens it may carry.
    pub tokens: &'static str,
    /// Its query string for a token and a challenge.
    pub query: fn(token: &str, challenge: &str) -> String,
}

/// Where a provider's keys come from: a Secrets Manager secret in AWS, or
/// an inline list (local stack and tests only; never in template.yaml).
#[derive(Debug)]
pub struct Credentials {
    /// The inline variable (`ZIPMESSAGE_TOKENS`).
    pub inline: &'static str,
    /// The variable holding the secret's id (`ZIPMESSAGE_SECRET_ID`).
    pub secret: &'static str,
    /// The variable `switchboard-local env` exports the signing credential
    /// as, for the README's curl commands (`ZIPMESSAGE_TOKEN`).
    pub dev_variable: &'static str,
    /// A development credential from 32 random (or, in tests, fixed) bytes.
    pub dev: fn(&[u8; 32]) -> DevCredential,
}

/// Whether a provider's credentials may carry a tenant label, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Labels {
    /// No label: the body says whose event it is (Partoo's one key signs
    /// every organisation; `payload.org_id` is the tenant).
    None,
    /// Only from JSON (`{"tenant": "acme", "key": "…"}`): the keys are
    /// arbitrary strings, so no separator inside them is unambiguous.
    Json,
    /// From JSON, or as `label:key` in a plain list: the keys are URL-safe,
    /// so they never contain `:`.
    Prefix,
}

/// One configured credential: the key (or token) and the tenant it
/// authenticates, when it carries a label.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The tenant label, `[a-z0-9-]{1,32}`; `None` is tenant `default`.
    pub tenant: Option<String>,
    /// The key, token or public key, as the provider's scheme reads it.
    pub key: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Credential")
            .field("tenant", &self.tenant)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl From<&str> for Credential {
    fn from(key: &str) -> Self {
        Credential::unlabelled(key)
    }
}

impl From<String> for Credential {
    fn from(key: String) -> Self {
        Credential::unlabelled(key)
    }
}

impl From<&String> for Credential {
    fn from(key: &String) -> Self {
        Credential::unlabelled(key.as_str())
    }
}

impl Credential {
    /// An unlabelled credential (tenant `default`).
    pub fn unlabelled(key: impl Into<String>) -> Self {
        Self {
            tenant: None,
            key: key.into(),
        }
    }
}

/// The longest tenant label.
pub const MAX_LABEL_LEN: usize = 32;

/// Whether `label` is a valid tenant label: `[a-z0-9-]{1,32}`.
pub fn valid_label(label: &str) -> bool {
    (1..=MAX_LABEL_LEN).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// One item of a JSON credential list: a plain string, or an object with
/// the key and its tenant.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum JsonCredential {
    Plain(String),
    Labelled { tenant: String, key: String },
}

/// Parses a provider's configured credentials (the inline variable or the
/// secret's value): a JSON array whose items are strings or
/// `{"tenant": …, "key": …}` objects, or a comma- or whitespace-separated
/// list. Where the provider's keys are URL-safe ([`Labels::Prefix`]), a
/// string item (in either form) may be `label:key`. A bad item is named by
/// position, never by value. Empty items are dropped.
pub fn parse_credentials(
    descriptor: &Descriptor,
    raw: &str,
) -> Result<Vec<Credential>, ConfigError> {
    let what = descriptor.credentials.inline;
    let invalid = |position: usize, detail: String| ConfigError::InvalidKey {
        what,
        position,
        detail,
    };
    let label = |position: usize, tenant: String| {
        if descriptor.labels == Labels::None {
            return Err(invalid(
                position,
                format!(
                    "{} credentials take no tenant label: the body says whose event it is",
                    descriptor.display_name
                ),
            ));
        }
        if valid_label(&tenant) {
            Ok(Some(tenant))
        } else {
            Err(invalid(
                position,
                format!("a tenant label is [a-z0-9-], 1 to {MAX_LABEL_LEN} characters"),
            ))
        }
    };
    let plain = |position: usize, item: &str| match item.split_once(':') {
        Some((tenant, key)) if descriptor.labels == Labels::Prefix => Ok(Credential {
            tenant: label(position, tenant.to_owned())?,
            key: key.to_owned(),
        }),
        _ => Ok(Credential::unlabelled(item)),
    };
    let trimmed = raw.trim();
    // With each credential, its 1-based position in the list.
    let mut credentials: Vec<(usize, Credential)> = Vec::new();
    if trimmed.starts_with('[') {
        let items: Vec<serde_json::Value> = serde_json::from_str(trimmed).map_err(|_| {
            ConfigError::Invalid(format!(
                "{what} starts with [ but is not a JSON array of strings and {{\"tenant\", \"key\"}} objects"
            ))
        })?;
        for (i, item) in items.into_iter().enumerate() {
            let position = i + 1;
            let item: JsonCredential = serde_json::from_value(item).map_err(|_| {
                invalid(
                    position,
                    "an item is a string or an object {\"tenant\": …, \"key\": …}".into(),
                )
            })?;
            let credential = match item {
                JsonCredential::Plain(key) => plain(position, key.trim())?,
                JsonCredential::Labelled { tenant, key } => Credential {
                    tenant: label(position, tenant)?,
                    key: key.trim().to_owned(),
                },
            };
            if !credential.key.is_empty() {
                credentials.push((position, credential));
            }
        }
    } else {
        let items = trimmed
            .split(|c: char| c == ',' || c.is_whitespace())
            .map(str::trim)
            .filter(|s| !s.is_empty());
        for (i, item) in items.enumerate() {
            credentials.push((i + 1, plain(i + 1, item)?));
        }
    }
    one_tenant_per_key(what, &credentials)?;
    Ok(credentials.into_iter().map(|(_, c)| c).collect())
}

/// Refuses a key listed under two tenants: it would authenticate as the
/// first listed only, and the other tenant's events would silently be the
/// first's. The error names the labels and positions, never the key.
fn one_tenant_per_key(
    what: &'static str,
    credentials: &[(usize, Credential)],
) -> Result<(), ConfigError> {
    let label = |c: &Credential| match &c.tenant {
        Some(tenant) => format!("label {tenant:?}"),
        None => "no label (the default tenant)".to_owned(),
    };
    for (i, (position, credential)) in credentials.iter().enumerate() {
        if let Some((first, earlier)) = credentials[..i]
            .iter()
            .find(|(_, e)| e.key == credential.key && e.tenant != credential.tenant)
        {
            return Err(ConfigError::InvalidKey {
                what,
                position: *position,
                detail: format!(
                    "the same credential as position {first}, under {} there and {} here: \
                     a credential belongs to one tenant",
                    label(earlier),
                    label(credential)
                ),
            });
        }
    }
    Ok(())
}

/// Credentials as a secret holds them, which [`parse_credentials`] reads
/// back: a JSON array of strings, with `{"tenant", "key"}` objects for
/// labelled ones.
pub fn credentials_json(credentials: &[Credential]) -> String {
    let items: Vec<serde_json::Value> = credentials
        .iter()
        .map(|c| match &c.tenant {
            Some(tenant) => serde_json::json!({ "tenant": tenant, "key": c.key }),
            None => serde_json::json!(c.key),
        })
        .collect();
    serde_json::Value::Array(items).to_string()
}

/// A credential as a sender holds it and as switchboard is configured
/// with it. They differ where the scheme is asymmetric (Partoo signs with a
/// private key; switchboard holds the public key).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DevCredential {
    /// What signs requests (or, for a URL token, the token).
    pub signing: String,
    /// What switchboard's configuration lists.
    pub configured: String,
}

impl DevCredential {
    /// A symmetric credential: the same secret on both ends.
    pub fn shared(secret: String) -> Self {
        Self {
            signing: secret.clone(),
            configured: secret,
        }
    }
}

/// One setting of a provider beyond its keys.
#[derive(Debug)]
pub struct Setting {
    /// Its environment variable.
    pub name: &'static str,
    /// The value when unset; `None` makes it required.
    pub default: Option<&'static str>,
    /// What the local stack uses unless the developer sets it.
    pub local: LocalDefault,
    /// Whether the `reprocess` tool reads it too (settings that decide
    /// admission must be the same there as in the webhook).
    pub reprocess: bool,
}

/// A setting's value in the local stack, unless the environment sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalDefault {
    /// The template's value, as in AWS.
    Template,
    /// A fixed value that suits the committed fixtures.
    Value(&'static str),
    /// The local gateway's URL of the provider's route.
    RouteUrl,
    /// Unset, as in AWS by default: the function derives the route's URL
    /// from each request; the local tools use the gateway's URL of it.
    Derived,
}

/// A provider's settings as resolved from configuration: every declared
/// setting with its value or default (required ones are present), and the
/// shared retention period some providers check against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    values: BTreeMap<&'static str, String>,
    /// Days events are kept (`RETENTION_DAYS`; 0 keeps them forever).
    pub retention_days: u32,
}

impl Settings {
    /// Resolves `descriptor`'s settings from `lookup` (blank is unset).
    /// A required setting that is unset is returned as `Err(name)`.
    pub fn resolve(
        descriptor: &Descriptor,
        lookup: &dyn Fn(&str) -> Option<String>,
        retention_days: u32,
    ) -> Result<Self, &'static str> {
        let mut values = BTreeMap::new();
        for setting in descriptor.settings {
            let value = lookup(setting.name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .or_else(|| setting.default.map(str::to_owned))
                .ok_or(setting.name)?;
            values.insert(setting.name, value);
        }
        Ok(Self {
            values,
            retention_days,
        })
    }

    /// A setting's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A setting's value as a number.
    pub fn number<T: std::str::FromStr>(&self, name: &'static str) -> Result<T, ConfigError> {
        let value = self
            .get(name)
            .ok_or_else(|| ConfigError::Invalid(format!("{name} is not set")))?;
        value
            .parse()
            .map_err(|_| ConfigError::Invalid(format!("{name} is not a whole number")))
    }
}

/// What to sign: the credential, the full URL the request is posted to
/// (for schemes that sign it), the body, and the time to sign at.
#[derive(Debug, Clone, Copy)]
pub struct SignRequest<'a> {
    /// The signing credential ([`DevCredential::signing`]).
    pub key: &'a str,
    /// The URL as the provider would post to it.
    pub url: &'a str,
    /// The raw body.
    pub body: &'a [u8],
    /// Unix seconds.
    pub timestamp: i64,
}

/// The descriptor of `provider`. The one list of providers: a new variant
/// of `Provider` does not compile until it has its arm here.
pub fn descriptor(provider: Provider) -> &'static Descriptor {
    match provider {
        Provider::Zipmessage => &zipmessage::DESCRIPTOR,
        Provider::Partoo => &partoo::DESCRIPTOR,
        Provider::Bird => &bird::DESCRIPTOR,
        Provider::Messagebird => &messagebird::DESCRIPTOR,
        Provider::Whatsapp => &whatsapp::DESCRIPTOR,
        Provider::Twilio => &twilio::DESCRIPTOR,
    }
}

/// Every provider's descriptor, in `Provider::ALL` order.
pub fn all() -> impl Iterator<Item = &'static Descriptor> {
    Provider::ALL.iter().map(|&p| descriptor(p))
}

/// The descriptor whose function crate is `function`.
pub fn by_function(function: &str) -> Option<&'static Descriptor> {
    all().find(|d| d.function == function)
}

/// [`Descriptor::data_raw`] for providers whose bodies are JSON: the body
/// is `data.raw` as it is.
pub fn json_body(_: &[u8]) -> Option<String> {
    None
}

/// [`Descriptor::split`] for providers that send one event per request:
/// the body is the event's.
pub fn one_event(body: &[u8]) -> Vec<Cow<'_, [u8]>> {
    vec![Cow::Borrowed(body)]
}

/// A provider's allow-list of sender-side accounts, where one key signs
/// every account's webhooks (Partoo's organisations, WhatsApp Business
/// Accounts): a signature proves who sent the event, the listed account it
/// names says it is ours. A listed account is its events' tenant.
#[derive(Debug, PartialEq, Eq)]
pub struct Accounts {
    /// The setting that lists them (comma- or space-separated, or a JSON
    /// array); empty publishes nothing from the provider.
    pub setting: &'static str,
    /// What one is called, in messages (`Partoo organisation`).
    pub what: &'static str,
    /// Where a body names its account, in messages.
    pub field: &'static str,
}

impl Accounts {
    /// The accounts a setting's value lists. Numeric ids are compared as
    /// numbers (`0123` lists account 123).
    pub fn parse(list: &str) -> BTreeSet<String> {
        split_key_list(list)
            .into_iter()
            .map(|id| id.parse::<u64>().map(|n| n.to_string()).unwrap_or(id))
            .collect()
    }

    /// [`Descriptor::check`]'s part for the list: every account can be a
    /// tenant in a table key; an empty list is a warning (nothing from the
    /// provider is published until it lists one).
    pub fn check(&self, settings: &Settings) -> Result<Option<String>, ConfigError> {
        let listed = Self::parse(settings.get(self.setting).unwrap_or_default());
        if let Some(bad) = listed
            .iter()
            .find(|id| !switchboard_types::key::valid_tenant(id))
        {
            return Err(ConfigError::Invalid(format!(
                "{}: {bad:?} is not a {} id (it holds '#' or '!')",
                self.setting, self.what
            )));
        }
        Ok(listed.is_empty().then(|| {
            format!(
                "{} lists no {}: every event is kept as quarantined (org_not_allowed) \
                 and none is published until it does",
                self.setting, self.what
            )
        }))
    }
}

/// A setting naming the public URL a provider signs (Bird's, legacy
/// MessageBird's), trimmed: it must be absolute, since the signature covers
/// it exactly.
pub fn public_url<'a>(setting: &str, value: &'a str) -> Result<&'a str, ConfigError> {
    let value = value.trim();
    if value.starts_with("https://") || value.starts_with("http://") {
        Ok(value)
    } else {
        Err(ConfigError::Invalid(format!(
            "{setting} must be the absolute public webhook URL (http:// or https://)"
        )))
    }
}

/// [`Descriptor::check`] for providers with nothing to check beyond presence.
pub fn no_check(_: &Settings) -> Result<Option<String>, ConfigError> {
    Ok(None)
}

/// Splits a configured list: comma- or whitespace-separated, or a JSON array
/// of strings. Empty items are dropped.
pub fn split_key_list(raw: &str) -> Vec<String> {
    let trimmed = raw.trim();
    if trimmed.starts_with('[') {
        if let Ok(items) = serde_json::from_str::<Vec<String>>(trimmed) {
            return items
                .into_iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
        }
    }
    trimmed
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn each_descriptor_is_its_providers_and_names_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for d in all() {
            assert_eq!(descriptor(d.provider).provider, d.provider);
            for unique in [
                d.route,
                d.function,
                d.credentials.inline,
                d.credentials.secret,
            ] {
                assert!(seen.insert(unique), "{unique} is declared twice");
            }
            assert!(d.route.starts_with(&format!("/webhooks/{}", d.name())));
            assert!(!d.fixtures.is_empty(), "{}: no fixtures", d.name());
        }
    }

    #[test]
    fn a_dev_credential_signs_requests_its_provider_accepts() {
        // For every provider: build it from a dev credential's configured
        // value, sign a body with its signing value, and authenticate.
        let now = Utc.timestamp_opt(1_795_000_000, 0).single().expect("time");
        for d in all() {
            let credential = (d.credentials.dev)(&[42; 32]);
            let base = "https://hooks.example.com";
            let url = format!("{base}{}", d.path(&credential.signing));
            let local = d.local_settings(base);
            let lookup = |name: &str| {
                local
                    .iter()
                    .find(|(setting, _)| *setting == name)
                    .map(|(_, value)| value.clone())
            };
            let settings = Settings::resolve(d, &lookup, 0).expect("settings");
            let provider = (d.build)(
                &[Credential::unlabelled(credential.configured.clone())],
                &settings,
            )
            .expect("builds");
            let body = br#"{"type":"x"}"#;
            let headers: http::HeaderMap = (d.sign)(&SignRequest {
                key: &credential.signing,
                url: &url,
                body,
                timestamp: now.timestamp(),
            })
            .expect("signs")
            .into_iter()
            .map(|(k, v)| (http::HeaderName::from_static(k), v.parse().expect("value")))
            .collect();
            let token = d.token_prefix().map(|_| credential.signing.as_str());
            let request = crate::Inbound::new(&headers, body, token).with_url(Some(&url));
            assert_eq!(
                provider.authenticate(&request, now),
                Ok(None),
                "{}",
                d.name()
            );
            assert_eq!(provider.provider(), d.provider);
            let other = (d.credentials.dev)(&[43; 32]);
            assert_ne!(
                other,
                credential,
                "{}: credentials differ by seed",
                d.name()
            );
        }
    }

    #[test]
    fn birds_declared_default_is_its_default_tolerance() {
        let setting = bird::DESCRIPTOR
            .settings
            .iter()
            .find(|s| s.name == bird::TOLERANCE)
            .expect("declared");
        assert_eq!(
            setting.default,
            Some(bird::DEFAULT_TOLERANCE_SECS.to_string().as_str())
        );
    }

    fn credentials(
        d: &Descriptor,
        raw: &str,
    ) -> Result<Vec<(Option<&'static str>, String)>, String> {
        parse_credentials(d, raw)
            .map(|list| {
                list.into_iter()
                    .map(|c| (c.tenant.map(|t| &*t.leak()), c.key))
                    .collect()
            })
            .map_err(|e| e.to_string())
    }

    #[test]
    fn key_lists_accept_commas_spaces_and_json_arrays() {
        let plain = |keys: &[&str]| -> Vec<(Option<&'static str>, String)> {
            keys.iter().map(|k| (None, (*k).to_owned())).collect()
        };
        for d in all() {
            assert_eq!(credentials(d, "a, b,,c"), Ok(plain(&["a", "b", "c"])));
            assert_eq!(credentials(d, " a b\n"), Ok(plain(&["a", "b"])));
            assert_eq!(
                credentials(d, r#"["x", " y ", ""]"#),
                Ok(plain(&["x", "y"]))
            );
            assert_eq!(credentials(d, "  "), Ok(Vec::new()));
        }
    }

    #[test]
    fn labels_come_from_where_each_provider_keeps_them_unambiguous() {
        let zip = &zipmessage::DESCRIPTOR;
        assert_eq!(
            credentials(zip, "acme:tok1,globex:tok2 tok3"),
            Ok(vec![
                (Some("acme"), "tok1".into()),
                (Some("globex"), "tok2".into()),
                (None, "tok3".into()),
            ])
        );
        // Bird keys are arbitrary strings: a colon is part of the key.
        let bird = &bird::DESCRIPTOR;
        assert_eq!(
            credentials(bird, "acme:k1"),
            Ok(vec![(None, "acme:k1".into())])
        );
        assert_eq!(
            credentials(bird, r#"[{"tenant": "acme", "key": "k, 1:"}, "k2"]"#),
            Ok(vec![(Some("acme"), "k, 1:".into()), (None, "k2".into())])
        );
        // Partoo's one key signs every organisation: no label.
        let err = credentials(&partoo::DESCRIPTOR, r#"[{"tenant": "acme", "key": "k"}]"#)
            .expect_err("refused");
        assert!(
            err.contains("number 1") && err.contains("no tenant label"),
            "{err}"
        );
        // Bad labels and shapes are named by position, never by value.
        for (raw, why) in [
            ("ok:tok1,Acme:secret-tok", "[a-z0-9-]"),
            ("ok:tok1,:secret-tok", "[a-z0-9-]"),
            (
                r#"["tok1", {"tenant": "a", "secret": "secret-tok"}]"#,
                "an item is",
            ),
        ]
        .map(|(raw, why)| (raw.to_owned(), why))
        .into_iter()
        .chain([(
            format!(
                r#"["tok1", {{"tenant": "{}", "key": "secret-tok"}}]"#,
                "x".repeat(33)
            ),
            "[a-z0-9-]",
        )]) {
            let err = credentials(zip, &raw).expect_err(&raw);
            assert!(
                err.contains("number 2") && err.contains(why),
                "{raw}: {err}"
            );
            assert!(!err.contains("secret-tok"), "{err}");
        }
        assert!(credentials(zip, "[not json").is_err());
        // One credential under two tenants would authenticate as the first
        // listed only: refused, naming labels and positions, not the key.
        for (d, raw, at, labels) in [
            (
                zip,
                "acme:secret-tok,tok2 secret-tok",
                3,
                ["\"acme\"", "no label"],
            ),
            (
                zip,
                "acme:secret-tok,globex:secret-tok",
                2,
                ["\"acme\"", "\"globex\""],
            ),
            (
                bird,
                r#"[{"tenant": "acme", "key": "secret-tok"}, "other", "secret-tok"]"#,
                3,
                ["\"acme\"", "no label"],
            ),
        ] {
            let err = credentials(d, raw).expect_err(raw);
            assert!(
                err.contains("position 1") && err.contains(&format!("number {at}")),
                "{raw}: {err}"
            );
            for label in labels {
                assert!(err.contains(label), "{raw}: {err}");
            }
            assert!(!err.contains("secret-tok"), "{err}");
        }
        // Listed twice for the same tenant is only a repetition.
        assert!(credentials(zip, "acme:tok,acme:tok").is_ok());
        // A URL-safe token's label reads the same inside a JSON array.
        assert_eq!(
            credentials(zip, r#"["acme:tok1"]"#),
            Ok(vec![(Some("acme"), "tok1".into())])
        );
        // What credentials_json writes, parse_credentials reads back.
        for d in all() {
            let list = vec![
                Credential::unlabelled("k1"),
                Credential {
                    tenant: (d.labels != Labels::None).then(|| "acme".to_owned()),
                    key: "k2".into(),
                },
            ];
            assert_eq!(parse_credentials(d, &credentials_json(&list)), Ok(list));
        }
    }
}
