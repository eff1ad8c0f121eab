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
    /// The template's path, as API Gateway's route key names it.
    pub path: String,
    /// Path segments; `{name}` captures one segment.
    pub pattern: Vec<String>,
    /// The pipeline behind it.
    pub ingest: Ingest,
}

impl Route {
    /// A route for a template path.
    pub fn new(path: &str, ingest: Ingest) -> Self {
        Self {
            path: path.to_owned(),
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

/// The routes a gateway serves, and its own base URL.
#[derive(Debug)]
struct Gateway {
    routes: Vec<Route>,
    base_url: String,
}

/// The gateway's router over `routes`, served at `base_url`
/// (`http://127.0.0.1:3000`).
pub fn router(routes: Vec<Route>, base_url: String) -> Router {
    Router::new()
        .fallback(handle)
        .with_state(Arc::new(Gateway { routes, base_url }))
}

async fn handle(State(gateway): State<Arc<Gateway>>, request: Request<Body>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let found = gateway
        .routes
        .iter()
        .find_map(|r| r.matches(&path).map(|t| (r, t)));
    let Some((route, token)) = found else {
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
        // As the Lambda adapter builds it from API Gateway's request
        // context: the gateway's own address and the route, never a header.
        public_url: Some(format!("{}{}", gateway.base_url, route.path)),
        query: parts.uri.query().map(str::to_owned),
    };
    let started = std::time::Instant::now();
    let handled = route.ingest.handle(&request, Utc::now()).await;
    for outcome in &handled.outcomes {
        outcome.log(started.elapsed());
    }
    handled.reply.into_response()
}
