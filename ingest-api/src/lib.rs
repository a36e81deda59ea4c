//! ingest-api: authenticates clients, manages the clinic directory, validates booking requests
//! and publishes them as Avro commands to Kafka, and answers queries from PostgreSQL.

pub mod domain;
pub mod http;
pub mod outcomes;
pub mod state;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use citaflow_platform::{Settings, db, kafka, ops};
use citaflow_schemas::{AvroCodec, RegistryClient};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// A built, bound, not yet serving ingest-api.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    port: u16,
    /// Stops background tasks (the outcome listener) when the server stops.
    background: CancellationToken,
}

impl Application {
    /// Connects to the dependencies (lazily: the service starts and reports not-ready while
    /// they are down) and binds the listener, so `port` is known before serving (port 0 picks
    /// a free one).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        let pool = db::pool(&settings.database)?;
        let producer = kafka::producer(&settings.kafka, "ingest-api")?;
        let registry = RegistryClient::new(
            &settings.registry.url,
            Duration::from_millis(settings.registry.timeout_ms),
        )?;
        let commands = AvroCodec::new(registry, &settings.topics.requests);
        let background = CancellationToken::new();
        let outcomes = outcomes::Outcomes::spawn(pool.clone(), background.clone());
        let state = AppState {
            settings: settings.clone(),
            pool: pool.clone(),
            producer: producer.clone(),
            commands,
            outcomes,
        };

        let readiness = ops::Readiness::default()
            .with("postgres", move || {
                let pool = pool.clone();
                async move { db::is_ready(&pool).await }
            })
            .with("kafka", move || {
                let producer = producer.clone();
                async move { kafka::is_ready(&producer, Duration::from_secs(2)).await }
            });
        let router = http::router(state, readiness);

        let address = format!("{}:{}", settings.http.host, settings.http.port);
        let listener = TcpListener::bind(&address)
            .await
            .with_context(|| format!("binding {address}"))?;
        let port = listener.local_addr()?.port();
        Ok(Self { listener, router, port, background })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight requests finish.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(port = self.port, "ingest-api listening");
        let result = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
            .context("serving HTTP");
        self.background.cancel();
        result
    }
}

/// Applies the database migrations and exits (`ingest-api migrate`).
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let pool = db::pool(&settings.database)?;
    db::migrate(&pool).await
}
