//! Encodes Mozilla's root certificates (webpki-root-certs) as one PEM bundle
//! at build time, for the SDK's trust store (`config::https_client`), which
//! takes PEM only, rather than encoding them at every cold start.

use base64::Engine;
use std::path::PathBuf;

fn main() {
    let mut pem = Vec::with_capacity(256 * 1024);
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        let encoded = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        for line in encoded.as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("mozilla_roots.pem"), pem).expect("write the PEM bundle");
    println!("cargo:rerun-if-changed=build.rs");
}
