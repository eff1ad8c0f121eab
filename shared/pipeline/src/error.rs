//! The one place where outcomes and errors become HTTP responses.
//!
//! Every response is JSON. Errors are `{"error": "<stable_code>",
//! "message": "<human detail>"}`; 5xx bodies stay generic (the cause goes to
//! the log), and nothing echoes a secret or an internal `Debug` rendering.

use http::{HeaderValue, StatusCode};
use serde_json::json;
use switchboard_providers::AuthError;

/// A finished HTTP answer, independent of the Lambda or local server types.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// Extra headers besides the content type.
    pub headers: Vec<(&'static str, HeaderValue)>,
    /// The body: JSON, or text for [`Reply::text`].
    pub body: String,
    /// Its content type.
    pub content_type: &'static str,
}

impl Reply {
    /// A JSON reply.
    pub fn json(status: StatusCode, body: &serde_json::Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.to_string(),
            content_type: "application/json",
        }
    }

    /// A plain-text reply (a subscription check's challenge), which no
    /// browser may read as anything else.
    pub fn text(status: StatusCode, body: String) -> Self {
        Self {
            status,
            headers: vec![(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            )],
            body,
            content_type: "text/plain; charset=utf-8",
        }
    }

    /// Converts into an `http::Response` for any body type built from a `String`.
    pub fn into_response<B: From<String>>(self) -> http::Response<B> {
        let mut response = http::Response::new(B::from(self.body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }

    /// The body as JSON (for tests and tools).
    pub fn json_body(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Every way a request can fail, each with one status and one stable code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No such route.
    #[error("no webhook is served at this path")]
    NotFound,
    /// Anything but POST (and, for a provider that sends one, its `GET`
    /// URL check): `allow` is what the route serves.
    #[error("webhooks must be sent with POST")]
    MethodNotAllowed {
        /// The `Allow` header: `POST`, or `GET, POST`.
        allow: &'static str,
    },
    /// A body larger than a Lambda invocation carries: API Gateway answers
    /// 413 before any function runs; the local gateway does the same.
    #[error("the body is larger than the {limit} bytes a webhook function can receive")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Authentication failed; nothing was stored. A subscription check's
    /// wrong verify token is a 403, every other failure a 401.
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
    /// Storage failed transiently: the provider should retry.
    #[error("the event could not be stored right now; retry later")]
    StorageUnavailable,
}

impl ApiError {
    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized(AuthError::InvalidVerifyToken) => StatusCode::FORBIDDEN,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::StorageUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::Unauthorized(auth) => auth.code(),
            ApiError::StorageUnavailable => "storage_unavailable",
        }
    }

    /// The HTTP reply for this error.
    pub fn reply(&self) -> Reply {
        let mut reply = Reply::json(
            self.status(),
            &json!({ "error": self.code(), "message": self.to_string() }),
        );
        match self {
            ApiError::MethodNotAllowed { allow } => reply
                .headers
                .push(("allow", HeaderValue::from_static(allow))),
            ApiError::StorageUnavailable => reply
                .headers
                .push(("retry-after", HeaderValue::from_static("30"))),
            _ => {}
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_stable_codes_and_json_bodies() {
        let reply = ApiError::Unauthorized(AuthError::InvalidSignature("the body")).reply();
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.json_body()["error"], "invalid_signature");
        let reply = ApiError::PayloadTooLarge { limit: 10 }.reply();
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            reply.json_body()["message"],
            "the body is larger than the 10 bytes a webhook function can receive"
        );
        let reply = ApiError::MethodNotAllowed { allow: "POST" }.reply();
        assert_eq!(reply.headers[0].0, "allow");
    }
}
