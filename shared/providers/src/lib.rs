//! The providers: how each webhook sender authenticates its requests and how
//! its payloads decode into the provider-neutral model.
//!
//! Everything here is pure — bytes and headers in, a verdict out. No I/O, no
//! clock reads (the caller passes `now`), no environment reads (the caller
//! resolves each provider's settings and keys). A provider is one module
//! that implements [`WebhookProvider`], decodes its envelope and exports a
//! [`registry::Descriptor`]; [`registry`] lists them.
#![forbid(unsafe_code)]

pub mod bird;
pub mod html;
pub mod messagebird;
pub mod partoo;
pub mod registry;
pub mod timestamp;
pub mod twilio;
pub mod whatsapp;
pub mod zipmessage;

mod decode;
mod envelope;
mod error;
mod inbound;
mod json;

use chrono::{DateTime, Utc};
use switchboard_types::Provider;

pub use bird::Bird;
pub use decode::{
    bounded_key, decode_body, decode_event, split_body, Admission, Decoded, MAX_KEY_LEN,
    MAX_TYPE_LEN,
};
pub use envelope::{body_dedup_key, digest_dedup_key, passthrough_type, sha256_hex};
pub(crate) use envelope::{parse_envelope, required_type};
pub use error::{AuthError, ConfigError, DecodeError};
pub use inbound::{form_decode, form_encode, Delivery, Inbound};
pub use partoo::Partoo;
pub use registry::{
    descriptor, parse_credentials, split_key_list, Accounts, Credential, Descriptor,
};
pub use zipmessage::Zipmessage;

/// One webhook sender: how to authenticate its requests and what their
/// headers say about the delivery. Bodies decode through [`decode_event`].
pub trait WebhookProvider: Send + Sync + std::fmt::Debug {
    /// Which provider this is.
    fn provider(&self) -> Provider;

    /// Proves the request is authentic. Runs on the raw bytes, before any
    /// parsing. Returns the tenant label of the credential that matched
    /// (`None`: unlabelled, tenant `default`).
    fn authenticate(
        &self,
        request: &Inbound<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<&str>, AuthError>;

    /// The delivery facts an authentic request's headers carry.
    fn delivery(&self, _request: &Inbound<'_>) -> Delivery {
        Delivery::default()
    }

    /// Answers a subscription check sent as a `GET` (Meta's `hub.mode=
    /// subscribe` with its `hub.challenge`): `None` where the request is not
    /// one this provider sends (the pipeline answers 405), else the text to
    /// answer with, or why the check fails. Nothing is stored either way.
    fn handshake(&self, _request: &Inbound<'_>) -> Option<Result<String, AuthError>> {
        None
    }
}
