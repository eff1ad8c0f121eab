//! Development credentials for the local stack: one per registered
//! provider, made by the provider's own [`Credentials::dev`], and the keys
//! the stack runs with once the developer's overrides are applied.
//!
//! Generated once into `.local/dev-secrets.json` (git-ignored) and reused,
//! so URLs and keys stay the same between runs; a provider registered later
//! gets its credential added. Never used in AWS.
//!
//! [`Credentials::dev`]: switchboard_providers::registry::Credentials::dev

use anyhow::{Context, Result};
use rand::Rng;
use std::collections::BTreeMap;
use std::path::Path;
use switchboard_providers::registry::{self, credentials_json, Descriptor, DevCredential, Labels};
use switchboard_providers::{parse_credentials, Credential};

/// A random URL-safe token of `len` characters.
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The local stack's dev credentials, by provider name.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct DevSecrets(BTreeMap<String, DevCredential>);

impl DevSecrets {
    /// Reads `path`, adds a fresh credential for every registered provider
    /// it lacks, and writes it back when it added one.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        let mut secrets: Self = match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a dev secrets file this version reads; `make clean-local` \
                     replaces it with new secrets",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let mut added = false;
        for descriptor in registry::all() {
            secrets
                .0
                .entry(descriptor.name().to_owned())
                .or_insert_with(|| {
                    added = true;
                    (descriptor.credentials.dev)(&rand::thread_rng().gen())
                });
        }
        if added {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(path, serde_json::to_string_pretty(&secrets)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(secrets)
    }

    /// The dev credential of a registered provider.
    pub fn get(&self, descriptor: &Descriptor) -> &DevCredential {
        // load_or_create adds every registered provider.
        &self.0[descriptor.name()]
    }
}

/// One provider's keys as the local stack runs with them.
#[derive(Debug, Clone)]
pub struct LocalKeys {
    /// The provider.
    pub descriptor: &'static Descriptor,
    /// What its configuration lists: the inline variable's credentials
    /// (with their tenant labels) when the developer sets it, else the dev
    /// credential.
    pub configured: Vec<Credential>,
    /// What signs requests as the default tenant: the first unlabelled
    /// configured key where the scheme is symmetric (none when every
    /// configured key is labelled), else the dev signing key.
    pub signing: Option<String>,
    /// Whether the configured keys are what signs (symmetric schemes).
    symmetric: bool,
}

/// The tenant of events an unlabelled key authenticates.
pub const DEFAULT_TENANT: &str = "default";

impl LocalKeys {
    /// The secret's value: what the provider's function reads.
    pub fn secret_value(&self) -> String {
        credentials_json(&self.configured)
    }

    /// The configured keys in the syntax the inline variable reads back
    /// as the same list: `label:key,key` where labels may prefix a key,
    /// else the JSON array when a key carries a label or holds a separator.
    pub fn shown(&self) -> String {
        let plain_reads_back = self.configured.iter().all(|c| {
            let separator = |ch: char| ch == ',' || ch.is_whitespace();
            let labelled_ok = c.tenant.is_none() || self.descriptor.labels == Labels::Prefix;
            let key_ok = !c.key.contains(separator)
                && !c.key.starts_with('[')
                && (self.descriptor.labels != Labels::Prefix || !c.key.contains(':'));
            labelled_ok && key_ok
        });
        if !plain_reads_back {
            return credentials_json(&self.configured);
        }
        self.configured
            .iter()
            .map(|c| match &c.tenant {
                Some(tenant) => format!("{tenant}:{}", c.key),
                None => c.key.clone(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Whether the signing credential differs from what is configured
    /// (Partoo: a private key signs, its public key is configured).
    pub fn asymmetric(&self) -> bool {
        !self.symmetric
    }

    /// What the state file records: what signs, as each tenant too.
    pub fn recorded(&self) -> crate::state::ProviderKeys {
        crate::state::ProviderKeys {
            provider: self.descriptor.provider,
            signing: self.signing.clone(),
            // The first key of each label signs as its tenant.
            tenants: self
                .configured
                .iter()
                .rev()
                .filter(|_| self.symmetric)
                .filter_map(|c| Some((c.tenant.clone()?, c.key.clone())))
                .collect(),
            tenant_from_body: !self.symmetric,
        }
    }

    /// The tenant labels of the configured keys, each once, in order.
    pub fn tenants(&self) -> Vec<&str> {
        let mut seen = Vec::new();
        for tenant in self.configured.iter().filter_map(|c| c.tenant.as_deref()) {
            if !seen.contains(&tenant) {
                seen.push(tenant);
            }
        }
        seen
    }

    /// The tenant each configured key authenticates: its label, else the
    /// default tenant.
    pub fn tenant_of(credential: &Credential) -> &str {
        credential.tenant.as_deref().unwrap_or(DEFAULT_TENANT)
    }
}

/// Every registered provider's keys: `lookup` (the environment) overrides
/// the dev credentials with each provider's inline variable, read as the
/// function reads it (tenant labels included).
pub fn local_keys(
    dev: &DevSecrets,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<LocalKeys>> {
    registry::all()
        .map(|descriptor| {
            let credential = dev.get(descriptor);
            let overridden = match lookup(descriptor.credentials.inline) {
                Some(raw) => parse_credentials(descriptor, &raw)?,
                None => Vec::new(),
            };
            let symmetric = credential.signing == credential.configured;
            let signing = if symmetric && !overridden.is_empty() {
                overridden
                    .iter()
                    .find(|c| c.tenant.is_none())
                    .map(|c| c.key.clone())
            } else {
                Some(credential.signing.clone())
            };
            let configured = if overridden.is_empty() {
                vec![Credential::unlabelled(credential.configured.clone())]
            } else {
                overridden
            };
            Ok(LocalKeys {
                descriptor,
                configured,
                signing,
                symmetric,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_gets_a_credential_and_it_is_kept() {
        let dir = std::env::temp_dir().join(format!("devkeys-{}", random_token(8)));
        let path = dir.join("dev-secrets.json");
        let first = DevSecrets::load_or_create(&path).expect("created");
        let again = DevSecrets::load_or_create(&path).expect("read");
        for d in registry::all() {
            assert_eq!(first.get(d), again.get(d), "{}", d.name());
        }
        // A file that lacks a provider (one registered later) gets it added.
        let mut partial = first.clone();
        partial
            .0
            .remove(registry::all().last().expect("a provider").name());
        std::fs::write(&path, serde_json::to_string(&partial).expect("json")).expect("write");
        let completed = DevSecrets::load_or_create(&path).expect("completed");
        assert_eq!(completed.0.len(), registry::all().count());
        // The old fixed-field format is refused with a way out.
        std::fs::write(&path, r#"{"zipmessage_token": "x"}"#).expect("write");
        let err = DevSecrets::load_or_create(&path).expect_err("old format");
        assert!(format!("{err:#}").contains("make clean-local"), "{err:#}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_inline_override_signs_only_where_the_scheme_is_symmetric() {
        let dev = DevSecrets(
            registry::all()
                .map(|d| (d.name().to_owned(), (d.credentials.dev)(&[1; 32])))
                .collect(),
        );
        let keys = local_keys(&dev, &|name| {
            name.ends_with("_TOKENS")
                .then(|| "acme:override-token-0123456789,second-token-0123456789".to_owned())
        })
        .expect("valid overrides");
        for k in keys {
            let credential = dev.get(k.descriptor);
            if k.descriptor.credentials.inline.ends_with("_TOKENS") {
                assert_eq!(k.configured.len(), 2);
                // The unlabelled key signs as the default tenant.
                assert_eq!(k.signing.as_deref(), Some("second-token-0123456789"));
                assert_eq!(k.tenants(), ["acme"]);
                let recorded = k.recorded();
                assert_eq!(
                    recorded.signing_for(Some("acme")).ok(),
                    Some("override-token-0123456789")
                );
                assert_eq!(
                    recorded.signing_for(Some("default")).ok(),
                    Some("second-token-0123456789")
                );
                assert!(recorded.signing_for(Some("globex")).is_err());
            } else {
                let configured = [Credential::unlabelled(credential.configured.clone())];
                assert_eq!(k.configured, configured);
                assert_eq!(k.signing.as_deref(), Some(credential.signing.as_str()));
            }
        }
        // An override the function would refuse stops the tools too.
        let bad = local_keys(&dev, &|name| {
            name.ends_with("_TOKENS").then(|| "Acme:tok".to_owned())
        });
        assert!(bad.is_err());
    }

    /// What the banner shows for a provider's keys, set as its variable,
    /// is the same keys of the same tenants: for random keys with the
    /// characters a plain list would split on or misread (`,`, spaces,
    /// `:`, a leading `[`), labelled and not.
    #[test]
    fn what_the_banner_shows_reads_back_as_the_same_keys() {
        use rand::{seq::SliceRandom, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(29);
        let pieces = ["a", "Z9", "-", "_", ",", " ", ":", "[", "x=", "/+"];
        for d in registry::all() {
            let mut checked = 0;
            for _ in 0..200 {
                let configured: Vec<Credential> = (0..rng.gen_range(1..4))
                    .map(|_| {
                        let key: String = (0..rng.gen_range(1..8))
                            .map(|_| *pieces.choose(&mut rng).expect("a piece"))
                            .collect();
                        // Keys that labels may prefix never hold a `:`.
                        let key = match d.labels {
                            Labels::Prefix => format!("k{}k", key.trim().replace(':', "")),
                            _ => format!("k{}k", key.trim()),
                        };
                        let tenant = (d.labels != Labels::None && rng.gen_bool(0.5)).then(|| {
                            ["acme", "globex-2"]
                                .choose(&mut rng)
                                .expect("a label")
                                .to_string()
                        });
                        Credential { tenant, key }
                    })
                    .collect();
                // Only what a function would run with (no key twice
                // under two tenants, ...).
                if parse_credentials(d, &credentials_json(&configured)).ok()
                    != Some(configured.clone())
                {
                    continue;
                }
                checked += 1;
                let keys = LocalKeys {
                    descriptor: d,
                    configured: configured.clone(),
                    signing: None,
                    symmetric: true,
                };
                let shown = keys.shown();
                let read = parse_credentials(d, &shown)
                    .unwrap_or_else(|e| panic!("{}: {shown:?} does not read: {e}", d.name()));
                assert_eq!(read, configured, "{}: {shown:?}", d.name());
            }
            assert!(checked > 100, "{}: {checked} valid lists", d.name());
        }
    }
}
