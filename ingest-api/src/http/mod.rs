//! The REST API: one module per resource, each owning its router and its part of the OpenAPI
//! document (generated from the handlers, so the document and the routes cannot drift).

pub mod agenda;
pub mod attendance;
pub mod auth;
pub mod availability;
pub mod bookings;
pub mod bulk;
pub mod centers;
pub mod doctors;
pub mod document;
pub mod error;
pub mod etag;
pub mod history;
pub mod idempotency;
pub mod pagination;
pub mod patients;
pub mod services;
pub mod signup;
pub mod users;
pub mod waitlist;
pub mod web;

use std::time::Instant;

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::{HeaderValue, header},
    middleware::{self, Next},
    response::Response,
    routing::get,
};
use citaflow_platform::ops;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Citaflow API",
        description = "Clinic appointments: directory, bookings decided in order per doctor, notifications. Every error has the shape `{\"error\": {\"code\", \"message\", \"details\"}}`.",
        license(name = "Apache-2.0"),
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "agenda", description = "Where and when each doctor works: weekly hours and exceptions"),
        (name = "auth", description = "Sign in; patients sign up"),
        (name = "availability", description = "Free slots of a service"),
        (name = "bookings", description = "Request, read, cancel and move appointments; record attendance; read their history"),
        (name = "centers", description = "Clinics of the network"),
        (name = "doctors", description = "Doctors and their users"),
        (name = "patients", description = "Patients and their users"),
        (name = "services", description = "Kinds of visit and the doctors who offer them"),
        (name = "users", description = "Staff accounts"),
        (name = "waitlist", description = "Wait for a freed slot; take or decline what is offered"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The API's routes with their OpenAPI document.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(agenda::router())
        .merge(attendance::router())
        .merge(auth::router())
        .merge(availability::router())
        .merge(bookings::router())
        .merge(centers::router())
        .merge(doctors::router())
        .merge(history::router())
        .merge(patients::router())
        .merge(services::router())
        .merge(signup::router())
        .merge(users::router())
        .merge(waitlist::router())
        .split_for_parts()
}

/// The API's OpenAPI document as `/openapi.json` serves it (`ingest-api openapi` prints it, so
/// the web app's client is generated without a running server).
pub fn document(settings: &citaflow_platform::Settings) -> utoipa::openapi::OpenApi {
    let (_, mut openapi) = api();
    document::complete(&mut openapi, settings);
    openapi
}

/// The public HTTP surface of ingest-api (the API, its document, the web app and `/health/*`), ready for
/// `axum::serve` or in-process tests. `/metrics` is not here: see [`ops_router`].
pub fn router(state: AppState, readiness: ops::Readiness) -> Router {
    let body_limit = state.settings.api.body_limit_bytes;
    let (api, mut openapi) = api();
    document::complete(&mut openapi, &state.settings);
    let document = openapi.clone();
    let web = state
        .settings
        .api
        .web_dir
        .as_deref()
        .and_then(|dir| web::router(std::path::Path::new(dir)));
    Router::new()
        .merge(api)
        .fallback(error::not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .merge(web.unwrap_or_default())
        .route(
            "/openapi.json",
            get(move || std::future::ready(Json(document.clone()))),
        )
        .merge(SwaggerUi::new("/docs").url("/docs/openapi.json", openapi))
        .merge(ops::health_router(readiness))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(record_metrics))
        .layer(middleware::from_fn(security_headers))
}

/// The ops listener's surface (`/metrics` and `/health/*`), served on `http.ops_port` so the
/// metrics never face the API's clients.
pub fn ops_router(readiness: ops::Readiness) -> Router {
    ops::router(readiness).layer(middleware::from_fn(security_headers))
}

/// How long clients and proxies may keep the API's description (`/openapi.json`, `/docs`):
/// it holds no personal data and changes only with a deploy.
const DOCUMENT_CACHE: &str = "public, max-age=300";

/// Headers on every response: `X-Content-Type-Options: nosniff` (a browser never reads a JSON
/// answer as HTML or script), and `Cache-Control: no-store` on everything but the API's
/// description, since answers carry personal data or tokens and must not sit in a shared or
/// browser cache. A handler's own `Cache-Control` is kept.
async fn security_headers(request: Request, next: Next) -> Response {
    let document = {
        let path = request.uri().path();
        path == "/openapi.json" || path == "/docs" || path.starts_with("/docs/")
    };
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        let policy = if document { DOCUMENT_CACHE } else { "no-store" };
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    response
}

async fn method_not_allowed() -> error::ApiError {
    error::ApiError::MethodNotAllowed
}

/// Awaits one stage of a request and records its duration as
/// `citaflow_api_stage_seconds{stage}`, which shows where a request's time goes.
pub(crate) async fn timed<F: Future>(stage: &'static str, work: F) -> F::Output {
    let started = Instant::now();
    let output = work.await;
    metrics::histogram!("citaflow_api_stage_seconds", "stage" => stage)
        .record(started.elapsed().as_secs_f64());
    output
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
    metrics::counter!(
        "citaflow_http_requests_total",
        "method" => method.clone(),
        "route" => route.clone(),
        "status" => status
    )
    .increment(1);
    metrics::histogram!(
        "citaflow_http_request_duration_seconds",
        "method" => method,
        "route" => route
    )
    .record(started.elapsed().as_secs_f64());
    response
}
