//! The local HTTP gateway: serves the template's routes on loopback through
//! the same pipeline code the Lambdas run, standing in for API Gateway.

use axum::body::Body;
use axum::extract::State;
use axum::Router;
use bytes::Bytes;
use chrono::Utc;
use http::{Request, Response};
use std::sync::Arc;
use switchboard_pipeline::{ApiError, Ingest, WebhookRequest};

/// The largest request payload of a synchronous Lambda invocation (6 MB):
/// API Gateway refuses a larger body with 413 before a webhook function runs.
pub const LAMBDA_PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;

/// A route: its path pattern (`/webhooks/zipmessage/{token}`) and pipeline.
#[derive(Debug, Clone)]
pub struct Route {
    /// Path segments; `{name}` captures one segment.
    pub pattern: Vec<String>,
    /// The pipeline behind it.
    pub ingest: Ingest,
}

impl Route {
    /// A route for a template path.
    pub fn new(path: &str, ingest: Ingest) -> Self {
        Self {
            pattern: path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            ingest,
        }
    }

    /// The captured `{…}` segment when `path` matches.
    fn matches(&self, path: &str) -> Option<Option<String>> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if segments.len() != self.pattern.len() {
            return None;
        }
        let mut capture = None;
        for (pattern, segment) in self.pattern.iter().zip(&segments) {
            if pattern.starts_with('{') && pattern.ends_with('}') {
                capture = Some((*segment).to_owned());
            } else if pattern != segment {
                return None;
            }
        }
        Some(capture)
    }
}

/// The gateway's router over `routes`.
pub fn router(routes: Vec<Route>) -> Router {
    Router::new().fallback(handle).with_state(Arc::new(routes))
}

async fn handle(State(routes): State<Arc<Vec<Route>>>, request: Request<Body>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let Some((route, token)) = routes.iter().find_map(|r| r.matches(&path).map(|t| (r, t))) else {
        return ApiError::NotFound.reply().into_response();
    };
    let (parts, body) = request.into_parts();
    // Whatever a Lambda would receive reaches the pipeline, which keeps an
    // authentic body over its own limit as `too_large`; past what a Lambda
    // invocation carries, API Gateway answers 413 before any function runs.
    let body: Bytes = match axum::body::to_bytes(body, LAMBDA_PAYLOAD_LIMIT).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::PayloadTooLarge {
                limit: LAMBDA_PAYLOAD_LIMIT,
            }
            .reply()
            .into_response()
        }
    };
    let request = WebhookRequest {
        method: parts.method,
        headers: parts.headers,
        body,
        path_token: token,
    };
    let started = std::time::Instant::now();
    let handled = route.ingest.handle(&request, Utc::now()).await;
    handled.outcome.log(started.elapsed());
    handled.reply.into_response()
}
