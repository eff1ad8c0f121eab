//! Decoding an authentic body into the neutral model, the same way on
//! arrival and in `reprocess`: the provider's decoder (from the registry),
//! the limits every decoded event is held to, and the admission check.

use crate::envelope::sha256_hex;
use crate::registry::{self, descriptor, Accounts};
use crate::DecodeError;
use chrono::{DateTime, Utc};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use switchboard_types::{Normalized, Provider};

/// Which authentic events are published, beyond their signature: settings
/// the webhooks and `reprocess` read alike (never secret).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// Per provider with an allow-list ([`Descriptor::accounts`]): the
    /// accounts whose events are published (`PARTOO_ORG_IDS`, …). One key
    /// signs every account's webhooks, so a signature proves "the provider
    /// sent this", not "this is ours". Unset or empty publishes nothing
    /// from that provider.
    pub accounts: BTreeMap<Provider, BTreeSet<String>>,
}

impl Admission {
    /// The admission settings from configuration (the webhooks and
    /// `reprocess` read them alike): every provider's allow-list.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        let accounts = registry::all()
            .filter_map(|d| {
                let list = d.accounts?;
                let listed = lookup(list.setting)
                    .map(|value| Accounts::parse(&value))
                    .unwrap_or_default();
                Some((d.provider, listed))
            })
            .collect();
        Self { accounts }
    }

    /// The same settings with `provider`'s allow-list set to `accounts`.
    pub fn listing(mut self, provider: Provider, accounts: &[&str]) -> Self {
        self.accounts
            .insert(provider, accounts.iter().map(|a| (*a).to_owned()).collect());
        self
    }

    /// Checks a decoded event against the settings: where the provider has
    /// an allow-list, the account its body names must be on it.
    pub fn admit(&self, provider: Provider, decoded: &Decoded) -> Result<(), DecodeError> {
        let Some(list) = descriptor(provider).accounts else {
            return Ok(());
        };
        let listed = self.accounts.get(&provider);
        match &decoded.account {
            Some(account) if listed.is_some_and(|l| l.contains(account)) => Ok(()),
            account => Err(DecodeError::OrgNotAllowed {
                org_id: account.clone(),
                accounts: list,
            }),
        }
    }
}

/// An authentic event decoded into the neutral model.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The provider's own type string, as sent.
    pub native_type: String,
    /// Canonical CloudEvent type or `<provider>.<native type>`.
    pub event_type: String,
    /// What makes a redelivery of this event recognisable, built only from
    /// what the sender signed (the body; for ZipMessage, the whole request).
    pub dedup_key: String,
    /// The sender-side account the body names, when it names one (Partoo's
    /// organisation, `org_id`): the event's tenant where the provider's
    /// credentials carry no label ([`Delivery::tenant_of`](crate::Delivery::tenant_of)).
    pub account: Option<String>,
    /// Provider-scoped conversation key, when the event concerns one.
    pub conversation_key: Option<String>,
    /// When it occurred, if the payload says.
    pub occurred_at: Option<DateTime<Utc>>,
    /// Normalised conversation/message/actor.
    pub normalized: Normalized,
}

/// Decodes an authentic body and checks it against the admission settings:
/// what the webhook does on arrival and `reprocess` does again later, so the
/// two cannot disagree.
pub fn decode_event(
    provider: Provider,
    body: &[u8],
    admission: &Admission,
) -> Result<Decoded, DecodeError> {
    let decoded = decode_body(provider, body)?;
    admission.admit(provider, &decoded)?;
    Ok(decoded)
}

/// The events a request's body carries, each as a body of its own, in the
/// body's order ([`Descriptor::split`](crate::Descriptor::split)): what the
/// webhook stores one by one. Never empty: a body that does not split is
/// one part.
pub fn split_body(provider: Provider, body: &[u8]) -> Vec<Cow<'_, [u8]>> {
    let parts = (descriptor(provider).split)(body);
    if parts.is_empty() {
        registry::one_event(body)
    } else {
        parts
    }
}

/// Decodes a body of `provider`, without the admission check: what the
/// fanout uses to rebuild an accepted (so admitted) event's normalised data
/// from its raw body. Header-derived facts ([`Delivery`]) are stored with
/// the event, so they are not needed here.
pub fn decode_body(provider: Provider, body: &[u8]) -> Result<Decoded, DecodeError> {
    bounded((descriptor(provider).decode)(body)?)
}

/// The longest native event type published. No provider documents one
/// near it; a longer one is quarantined (`type_too_long`), since it would
/// be published as a type no consumer routes on.
pub const MAX_TYPE_LEN: usize = 256;

/// The longest conversation key or dedup key used as it is. Both end up in
/// stored keys (DynamoDB: partition keys ≤ 2,048 bytes, sort keys ≤ 1,024)
/// and the conversation key in the CloudEvent `subject`; a longer one is
/// replaced by [`bounded_key`]'s digest. The full value stays in the body.
pub const MAX_KEY_LEN: usize = 512;

/// `key` when it is at most [`MAX_KEY_LEN`] bytes, else `sha256:<hex>` of
/// it: stable (a redelivery gets the same key) and short.
pub fn bounded_key(key: String) -> String {
    if key.len() <= MAX_KEY_LEN {
        key
    } else {
        format!("sha256:{}", sha256_hex(key.as_bytes()))
    }
}

/// Holds a decoded event to the limits above, whichever provider decoded it.
fn bounded(mut decoded: Decoded) -> Result<Decoded, DecodeError> {
    if decoded.native_type.len() > MAX_TYPE_LEN {
        return Err(DecodeError::TypeTooLong {
            len: decoded.native_type.len(),
        });
    }
    decoded.dedup_key = bounded_key(std::mem::take(&mut decoded.dedup_key));
    decoded.conversation_key = decoded.conversation_key.take().map(bounded_key);
    if let Some(conversation) = decoded.normalized.conversation.as_mut() {
        // The key equals the CloudEvent subject, so it is bounded the same way.
        conversation.key = bounded_key(std::mem::take(&mut conversation.key));
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{body_dedup_key, Delivery};
    use serde_json::Value;

    /// Every variant of `value` with one node replaced by another shape.
    fn variants(value: &Value, out: &mut Vec<Value>) {
        let shapes = [
            Value::Null,
            serde_json::json!([]),
            serde_json::json!({}),
            serde_json::json!("x"),
            serde_json::json!(7),
            serde_json::json!([{"id": 1}, 2]),
            serde_json::json!({"id": {"x": 1}}),
        ];
        fn walk(root: &Value, at: &mut Vec<String>, shapes: &[Value], out: &mut Vec<Value>) {
            let node = at.iter().fold(root, |v, k| match v {
                Value::Array(items) => &items[k.parse::<usize>().unwrap_or_default()],
                other => &other[k.as_str()],
            });
            if !at.is_empty() {
                for shape in shapes {
                    let mut copy = root.clone();
                    let slot = at.iter().fold(&mut copy, |v, k| match v {
                        Value::Array(items) => &mut items[k.parse::<usize>().unwrap_or_default()],
                        other => &mut other[k.as_str()],
                    });
                    *slot = shape.clone();
                    out.push(copy);
                }
            }
            let keys: Vec<String> = match node {
                Value::Object(map) => map.keys().cloned().collect(),
                Value::Array(items) => (0..items.len()).map(|i| i.to_string()).collect(),
                _ => Vec::new(),
            };
            for key in keys {
                at.push(key);
                walk(root, at, shapes, out);
                at.pop();
            }
        }
        walk(value, &mut Vec::new(), &shapes, out);
    }

    #[test]
    fn invalid_utf8_anywhere_is_malformed_json() {
        // Even in a field no model reads, which serde_json would skip
        // unchecked: the fanout publishes the body as text.
        for (provider, dir, seed) in fixtures() {
            if (descriptor(provider).data_raw)(&seed).is_some() {
                // A form (Twilio's) is ASCII: a byte past it is no form.
                let body = [&seed[..], b"&unread=caf\xe9"].concat();
                let code = decode_body(provider, &body).map_err(|e| e.code());
                assert_eq!(code.err(), Some("no_envelope"), "{dir}");
                continue;
            }
            let rest = seed
                .trim_ascii_start()
                .strip_prefix(b"{")
                .expect("an object");
            let body = [&b"{\"unread\": \"caf\xe9\","[..], rest].concat();
            match decode_body(provider, &body) {
                Err(DecodeError::MalformedJson(why)) => {
                    assert_eq!(why, "invalid UTF-8 at byte 15", "{dir}")
                }
                other => panic!("{dir}: {other:?}"),
            }
        }
    }

    /// Every event of every fixture body of every registered provider (a
    /// body that carries several, split as the webhook splits it), with its
    /// name.
    fn fixtures() -> Vec<(Provider, String, Vec<u8>)> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");
        crate::registry::all()
            .flat_map(|d| {
                d.fixtures.iter().flat_map(move |file| {
                    let path = format!("{root}/{}/{file}", d.name());
                    let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                    split_body(d.provider, &body)
                        .into_iter()
                        .enumerate()
                        .map(|(i, part)| (d.provider, format!("{path}#{i}"), part.into_owned()))
                        .collect::<Vec<_>>()
                })
            })
            .collect()
    }

    #[test]
    fn a_field_of_the_wrong_shape_fails_alone() {
        // Every seed with any one node replaced by another JSON shape: the
        // event still decodes unless the node is one the event needs (then
        // a stable quarantine code). (A nested object with a duplicate key:
        // json.rs's tests.)
        let mut checked = 0;
        for (provider, dir, body) in fixtures() {
            let seed = decode_body(provider, &body);
            assert!(seed.is_ok(), "{dir}: a seed decodes");
            if (descriptor(provider).data_raw)(&body).is_some() {
                // A form has no shapes: every value is text, and any value
                // of any parameter decodes.
                let text = String::from_utf8(body.clone()).expect("a form is ASCII");
                for (at, _) in text.match_indices('=') {
                    let variant = format!("{}=%7B%5B%00{}", &text[..at], &text[at + 1..]);
                    assert!(
                        decode_body(provider, variant.as_bytes()).is_ok(),
                        "{variant}"
                    );
                    checked += 1;
                }
                continue;
            }
            let mut bodies = Vec::new();
            variants(&serde_json::from_slice(&body).expect("json"), &mut bodies);
            for variant in bodies {
                let text = variant.to_string();
                if let Err(e) = decode_body(provider, text.as_bytes()) {
                    assert!(
                        ["no_envelope", "missing_field"].contains(&e.code()),
                        "{dir}: {text}: {e}"
                    );
                }
                checked += 1;
            }
        }
        assert!(checked > 500, "{checked} variants");
    }

    #[test]
    fn a_test_delivery_never_shares_a_genuine_dedup_key() {
        // Only Partoo sends test deliveries, and its natural keys are
        // `<type>:<message id>[:<digest>]` or `sha256:<hex>`: never `test:…`.
        let test = Delivery {
            test: true,
            ..Delivery::default()
        };
        for (provider, dir, body) in fixtures() {
            if provider != Provider::Partoo {
                continue;
            }
            let natural = decode_body(provider, &body).expect(&dir).dedup_key;
            assert!(!natural.starts_with("test:"), "{natural}");
            assert_eq!(Delivery::default().scope_dedup_key(&natural), natural);
            assert_eq!(test.scope_dedup_key(&natural), format!("test:{natural}"));
        }
        assert!(!body_dedup_key(b"{}").starts_with("test:"));
    }
}
