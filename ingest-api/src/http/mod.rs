//! The REST API: one module per resource, each owning its router.

pub mod bookings;
pub mod directory;
pub mod error;

use std::time::Instant;

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request},
    middleware::{self, Next},
    response::Response,
};
use citaflow_platform::ops;

use crate::state::AppState;

/// The whole HTTP surface of ingest-api, ready for `axum::serve` or in-process `oneshot` tests.
pub fn router(state: AppState, readiness: ops::Readiness) -> Router {
    let body_limit = state.settings.api.body_limit_bytes;
    Router::new()
        .merge(bookings::router())
        .merge(directory::router())
        .fallback(error::not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .merge(ops::router(readiness))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(record_metrics))
}

async fn method_not_allowed() -> error::ApiError {
    error::ApiError::MethodNotAllowed
}

/// Counts requests and their latency by route template (never by raw path: ids would explode
/// the label set).
async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("citaflow_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("citaflow_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
