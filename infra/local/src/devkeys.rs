//! Development secrets for the local stack, and signing helpers so a
//! developer can produce valid Partoo and Bird signatures for curl.
//!
//! Generated once into `.local/dev-secrets.json` (git-ignored) and reused,
//! so URLs and keys stay the same between runs. Never used in AWS.

use anyhow::{Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410).
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The local stack's secrets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevSecrets {
    /// ZipMessage URL token.
    pub zipmessage_token: String,
    /// Partoo signing key: base64 of the 32-byte Ed25519 seed (stands in for Partoo's private key).
    pub partoo_private_key: String,
    /// The matching public key, base64 DER, as Partoo publishes keys.
    pub partoo_public_key: String,
    /// Bird signingKey.
    pub bird_signing_key: String,
}

/// A random URL-safe token of `len` characters.
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Base64 DER (SubjectPublicKeyInfo) of an Ed25519 public key.
pub fn public_key_der_b64(key: &SigningKey) -> String {
    let mut der = ED25519_SPKI_PREFIX.to_vec();
    der.extend_from_slice(key.verifying_key().as_bytes());
    STANDARD.encode(der)
}

impl DevSecrets {
    /// Fresh random secrets.
    pub fn generate() -> Self {
        let seed: [u8; 32] = rand::thread_rng().gen();
        let key = SigningKey::from_bytes(&seed);
        Self {
            zipmessage_token: random_token(32),
            partoo_private_key: STANDARD.encode(seed),
            partoo_public_key: public_key_der_b64(&key),
            bird_signing_key: random_token(40),
        }
    }

    /// Reads `path`, or generates and writes it.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        if let Ok(text) = std::fs::read_to_string(path) {
            return serde_json::from_str(&text)
                .with_context(|| format!("reading {}", path.display()));
        }
        let secrets = Self::generate();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&secrets)?)?;
        Ok(secrets)
    }

    /// The Partoo signing key.
    pub fn partoo_signing_key(&self) -> Result<SigningKey> {
        let seed: [u8; 32] = STANDARD
            .decode(&self.partoo_private_key)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("partoo_private_key must be 32 bytes"))?;
        Ok(SigningKey::from_bytes(&seed))
    }
}

/// `X-Partoo-Signature-v1` for `body`.
pub fn sign_partoo(key: &SigningKey, body: &[u8]) -> String {
    STANDARD.encode(key.sign(body).to_bytes())
}
