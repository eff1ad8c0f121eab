//! What a provider sees of a request ([`Inbound`]) and what its headers say
//! about the delivery beyond the signed body ([`Delivery`]).

use crate::AuthError;
use http::HeaderMap;
use sha2::{Digest, Sha256};

/// What a provider sees of an HTTP request: headers, the raw body bytes,
/// the token from the URL path (ZipMessage only) and the query string. Built once per request
/// ([`Inbound::new`]) and read-only, so the body's digest cannot go stale.
#[derive(Debug, Clone)]
pub struct Inbound<'a> {
    /// Request headers (names are case-insensitive).
    pub(crate) headers: &'a HeaderMap,
    /// The body exactly as received.
    pub(crate) body: &'a [u8],
    /// The `{token}` path segment, when the route has one.
    pub(crate) path_token: Option<&'a str>,
    /// The public URL the request was posted to, as the gateway that
    /// received it knows it ([`Inbound::with_url`]).
    pub(crate) url: Option<&'a str>,
    /// The raw query string (without `?`), as received.
    pub(crate) query: Option<&'a str>,
    /// SHA-256 of `body`, computed on first use: Bird's signature covers it
    /// and the stored item records it, so a request hashes its body once.
    body_sha256: std::cell::OnceCell<[u8; 32]>,
}

impl<'a> Inbound<'a> {
    /// A request as received.
    pub fn new(headers: &'a HeaderMap, body: &'a [u8], path_token: Option<&'a str>) -> Self {
        Self {
            headers,
            body,
            path_token,
            url: None,
            query: None,
            body_sha256: std::cell::OnceCell::new(),
        }
    }

    /// The public URL the request was posted to, built by the gateway from
    /// what it knows of itself (API Gateway's request context: its domain
    /// name, stage and route), never from a header the client chose. What
    /// a provider that signs its URL (Bird) verifies against when no URL
    /// is configured.
    pub fn with_url(mut self, url: Option<&'a str>) -> Self {
        self.url = url;
        self
    }

    /// The raw query string (without `?`): what a `GET` subscription check
    /// carries its parameters in.
    pub fn with_query(mut self, query: Option<&'a str>) -> Self {
        self.query = query.filter(|q| !q.is_empty());
        self
    }

    /// The query's parameters, percent-decoded (`+` is a space), in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query
            .map(|q| {
                q.split('&')
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                        (form_decode(name), form_decode(value))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A header's value as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The signature a provider sends in `header` (shown as `shown` in the
    /// error), trimmed: absent or blank is `missing_signature`.
    pub fn signature(&self, header: &str, shown: &'static str) -> Result<&str, AuthError> {
        self.header(header)
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .ok_or(AuthError::MissingSignature(shown))
    }

    /// SHA-256 of the body (computed once per request).
    pub fn body_sha256(&self) -> &[u8; 32] {
        self.body_sha256
            .get_or_init(|| Sha256::digest(self.body).into())
    }
}

/// What a request's headers say about this delivery, beyond what the body
/// says. Kept with the stored event, so `reprocess` sees what the webhook saw.
/// None of it is identity: a signature covers the body, not these headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// A test delivery (Partoo's `X-Partoo-Webhook-Tryout`): real-looking
    /// data, published with the CloudEvents extension `test: true`.
    pub test: bool,
    /// The sender's id for this notification across its attempts (Bird's
    /// `messagebird-request-id`), published as the extension `deliveryid`.
    pub delivery_id: Option<String>,
    /// The tenant label of the credential that authenticated the request
    /// (what [`WebhookProvider::authenticate`](crate::WebhookProvider::authenticate)
    /// returned); `None` for an unlabelled one.
    pub tenant: Option<String>,
}

impl Delivery {
    /// The longest delivery id kept; a longer header is not an id Bird sends.
    pub const MAX_ID_LEN: usize = 256;

    /// The dedup key of an event delivered this way: a test delivery's key
    /// can never equal a genuine event's, so a tryout of message 123 does not
    /// make the genuine message 123 a duplicate. `natural` is already
    /// scoped to its tenant.
    pub fn scope_dedup_key(&self, natural: &str) -> String {
        if self.test {
            format!("test:{natural}")
        } else {
            natural.to_owned()
        }
    }

    /// The tenant of an event delivered this way: the organisation its body
    /// names where the provider's credentials carry no label (Partoo's
    /// `org_id`, already checked against the allow-list), else the
    /// credential's label, else `default`.
    pub fn tenant_of(&self, account: Option<&str>) -> String {
        account
            .or(self.tenant.as_deref())
            .unwrap_or(switchboard_types::DEFAULT_TENANT)
            .to_owned()
    }
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a
/// space, `%XX` a byte; the bytes are read as UTF-8 (an invalid sequence
/// becomes U+FFFD), and a `%` not followed by two hex digits is kept as is.
pub fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes one `application/x-www-form-urlencoded` component as a query
/// carries it: unreserved characters as they are, every other byte `%XX`
/// (what [`form_decode`] reads back).
pub fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::{form_decode, form_encode};

    #[test]
    fn form_components_decode_as_browsers_encode_them() {
        for text in ["meaty hamhock&x=1", "caf\u{e9} +%", ""] {
            assert_eq!(form_decode(&form_encode(text)), text);
        }
        assert_eq!(form_decode("a+b%20c"), "a b c");
        assert_eq!(form_decode("hub.challenge"), "hub.challenge");
        assert_eq!(form_decode("%E2%9C%93"), "\u{2713}");
        assert_eq!(form_decode("100%"), "100%");
        assert_eq!(form_decode("%zz%4"), "%zz%4");
        assert_eq!(form_decode("%41"), "A");
        assert_eq!(form_decode("%ff"), "\u{fffd}");
    }
}
