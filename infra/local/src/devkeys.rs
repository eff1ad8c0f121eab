//! Development credentials for the local stack: one per registered
//! provider, made by the provider's own [`Credentials::dev`], and the keys
//! the stack runs with once the developer's overrides are applied.
//!
//! Generated once into `.local/dev-secrets.json` (git-ignored) and reused,
//! so URLs and keys stay the same between runs; a provider registered later
//! gets its credential added. Never used in AWS.
//!
//! [`Credentials::dev`]: switchboard_providers::registry::Credentials::dev

use anyhow::{bail, Context, Result};
use rand::Rng;
use std::collections::BTreeMap;
use std::path::Path;
use switchboard_providers::registry::{self, credentials_json, Descriptor, DevCredential};
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
    /// What signs requests for it: the first configured key where the
    /// scheme is symmetric, else the dev signing key.
    pub signing: String,
    /// Whether the configured keys are what signs (symmetric schemes).
    symmetric: bool,
}

impl LocalKeys {
    /// The secret's value: what the provider's function reads.
    pub fn secret_value(&self) -> String {
        credentials_json(&self.configured)
    }

    /// The configured keys as the banner shows them (`label:key` for
    /// labelled ones).
    pub fn shown(&self) -> String {
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
            tenants: self
                .tenants()
                .into_iter()
                .filter_map(|t| Some((t.to_owned(), self.signing_for(Some(t)).ok()?.to_owned())))
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

    /// What signs requests as `tenant`: the first key labelled so (the
    /// unlabelled signing key for `None`).
    pub fn signing_for(&self, tenant: Option<&str>) -> Result<&str> {
        let Some(tenant) = tenant else {
            return Ok(&self.signing);
        };
        let d = self.descriptor;
        if !self.symmetric {
            bail!(
                "{} keys carry no tenant label: its events' tenant comes from the body",
                d.display_name
            );
        }
        match self
            .configured
            .iter()
            .find(|c| c.tenant.as_deref() == Some(tenant))
        {
            Some(c) => Ok(&c.key),
            None => bail!(
                "no {} key is labelled {tenant:?} in {} (labelled: {})",
                d.display_name,
                d.credentials.inline,
                self.tenants().join(", ")
            ),
        }
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
            let signing = match overridden.first() {
                Some(first) if symmetric => first.key.clone(),
                _ => credential.signing.clone(),
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
                assert_eq!(k.signing, "override-token-0123456789");
                assert_eq!(k.tenants(), ["acme"]);
                assert_eq!(
                    k.signing_for(Some("acme")).ok(),
                    Some("override-token-0123456789")
                );
                assert!(k.signing_for(Some("globex")).is_err());
            } else {
                let configured = [Credential::unlabelled(credential.configured.clone())];
                assert_eq!(k.configured, configured);
                assert_eq!(k.signing, credential.signing);
            }
        }
        // An override the function would refuse stops the tools too.
        let bad = local_keys(&dev, &|name| {
            name.ends_with("_TOKENS").then(|| "Acme:tok".to_owned())
        });
        assert!(bad.is_err());
    }
}
