//! booking-processor: consumes booking commands keyed by doctor, decides them against
//! PostgreSQL and publishes the outcome to `booking.events`.

pub mod command;
pub mod decide;
pub mod error;
mod pipeline;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use citaflow_platform::{Settings, db, kafka, ops};
use citaflow_schemas::{AvroCodec, RegistryClient};
use rdkafka::consumer::Consumer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use pipeline::Pipeline;

/// A built processor: clients created, ops listener bound, not yet consuming.
pub struct Application {
    pipeline: Pipeline,
    ops_listener: TcpListener,
    ops_router: axum::Router,
    port: u16,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        let pool = db::pool(&settings.database)?;
        let producer = kafka::producer(&settings.kafka, "booking-processor")?;
        let consumer =
            kafka::consumer(&settings.kafka, "booking-processor", &settings.processor.group_id)?;
        let registry = RegistryClient::new(
            &settings.registry.url,
            Duration::from_millis(settings.registry.timeout_ms),
        )?;
        let commands = AvroCodec::new(registry.clone(), &settings.topics.requests);
        let events = AvroCodec::new(registry, &settings.topics.events);
        consumer
            .subscribe(&[settings.topics.requests.as_str()])
            .context("subscribing to the request topic")?;

        let readiness = {
            let pool = pool.clone();
            let producer = producer.clone();
            ops::Readiness::default()
                .with("postgres", move || {
                    let pool = pool.clone();
                    async move { db::is_ready(&pool).await }
                })
                .with("kafka", move || {
                    let producer = producer.clone();
                    async move { kafka::is_ready(&producer, Duration::from_secs(2)).await }
                })
        };
        let address = format!("{}:{}", settings.http.host, settings.http.port);
        let ops_listener =
            TcpListener::bind(&address).await.with_context(|| format!("binding {address}"))?;
        let port = ops_listener.local_addr()?.port();
        let pipeline = Pipeline::new(settings, pool, producer, consumer, commands, events);
        Ok(Self { pipeline, ops_listener, ops_router: ops::router(readiness), port })
    }

    /// Port of the health and metrics endpoints.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Consumes until `shutdown` is cancelled, then finishes in-flight work, commits stored
    /// offsets and returns.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let ops_shutdown = shutdown.clone();
        let ops = tokio::spawn(async move {
            axum::serve(self.ops_listener, self.ops_router)
                .with_graceful_shutdown(async move { ops_shutdown.cancelled().await })
                .await
        });
        tracing::info!(port = self.port, "booking-processor started");
        let result = self.pipeline.run(shutdown.clone()).await;
        shutdown.cancel();
        let _ = ops.await;
        result
    }
}
