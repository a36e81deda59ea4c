//! Operational HTTP endpoints every service serves: `/health/live`, `/health/ready` and
//! Prometheus `/metrics`.

use std::{future::Future, pin::Pin, sync::Arc, sync::OnceLock, time::Duration};

use anyhow::Context;

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rdkafka::producer::FutureProducer;
use serde_json::json;
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::settings::HttpSettings;

/// Binds a service's HTTP listener (port 0 picks a free one) and returns it with its port.
pub async fn bind(http: &HttpSettings) -> anyhow::Result<(TcpListener, u16)> {
    let address = format!("{}:{}", http.host, http.port);
    let listener = TcpListener::bind(&address)
        .await
        .with_context(|| format!("binding {address}"))?;
    let port = listener.local_addr()?.port();
    Ok((listener, port))
}

/// One dependency whose health decides readiness.
pub type Check = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// The readiness checks of a service, by name.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, Check)>,
}

impl Readiness {
    pub fn with<F, Fut>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        self.checks
            .push((name, Arc::new(move || Box::pin(check()))));
        self
    }

    /// The checks every service has: PostgreSQL answers, and the Kafka cluster answers
    /// `producer`'s metadata request within 2 s.
    pub fn postgres_and_kafka(pool: PgPool, producer: FutureProducer) -> Self {
        Self::postgres(pool).with("kafka", move || {
            let producer = producer.clone();
            async move { crate::kafka::is_ready(&producer, Duration::from_secs(2)).await }
        })
    }

    /// PostgreSQL answers.
    pub fn postgres(pool: PgPool) -> Self {
        Self::default().with("postgres", move || {
            let pool = pool.clone();
            async move { crate::db::is_ready(&pool).await }
        })
    }

    /// Runs every check (each bounded by its own timeout) and reports them by name.
    pub async fn report(&self) -> (bool, serde_json::Value) {
        let mut ok = true;
        let mut checks = serde_json::Map::new();
        for (name, check) in &self.checks {
            let up = check().await;
            ok &= up;
            checks.insert(name.to_string(), json!(if up { "up" } else { "down" }));
        }
        (
            ok,
            json!({ "status": if ok { "ready" } else { "not_ready" }, "checks": checks }),
        )
    }
}

/// The process-wide Prometheus recorder (the `metrics` facade is global by design).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .expect("the Prometheus recorder is installed once per process")
        })
        .clone()
}

/// `/health/live`, `/health/ready` and `/metrics`: an ops listener's whole surface.
pub fn router(readiness: Readiness) -> Router {
    let handle = metrics_handle();
    health_router(readiness).route("/metrics", get(move || std::future::ready(handle.render())))
}

/// `/health/live` and `/health/ready` alone (ingest-api also serves them on its API port, where
/// its probes point; its `/metrics` is only on the ops listener).
pub fn health_router(readiness: Readiness) -> Router {
    Router::new()
        .route(
            "/health/live",
            get(|| async { Json(json!({ "status": "live" })) }),
        )
        .route("/health/ready", get(ready).with_state(readiness))
}

async fn ready(State(readiness): State<Readiness>) -> impl IntoResponse {
    let (ok, body) = readiness.report().await;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
