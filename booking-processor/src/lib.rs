//! booking-processor: consumes booking commands keyed by doctor, decides them against
//! PostgreSQL and publishes the outcome to `booking.events`; transient failures travel
//! through delay topics, and then the dead-letter topic, without holding anyone else up.

pub mod command;
pub mod decide;
pub mod dispatch;
pub mod error;
pub mod expiry;
pub mod handler;
pub mod parking;
pub mod reminders;
pub mod retry;
pub mod waitlist;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use citaflow_platform::{Settings, db, kafka, ops};
use citaflow_schemas::{AvroCodec, RegistryClient};
use rdkafka::consumer::Consumer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    decide::Rules,
    dispatch::{ProcessorConsumer, ProcessorContext},
    handler::Handler,
    retry::Topology,
};

/// Publishes `event` on `topic` keyed by its doctor and waits for Kafka's acknowledgement;
/// `what` names it in the error. For the processor's own loops (reminders, waitlist), which
/// publish what they hold locked in a transaction.
pub async fn publish_event(
    producer: &rdkafka::producer::FutureProducer,
    codec: &AvroCodec<citaflow_schemas::BookingEvent>,
    topic: &str,
    event: &citaflow_schemas::BookingEvent,
    what: &str,
) -> anyhow::Result<()> {
    let payload = codec.encode(event).await?;
    let record = rdkafka::producer::FutureRecord::to(topic)
        .key(event.doctor_id.as_bytes())
        .payload(&payload);
    producer
        .send(record, Duration::from_secs(5))
        .await
        .map_err(|(e, _)| anyhow::anyhow!("publishing {what}: {e}"))?;
    Ok(())
}

/// A built processor: clients created, ops listener bound, not yet consuming.
pub struct Application {
    consumer: Arc<ProcessorConsumer>,
    handler: Arc<Handler>,
    topology: Topology,
    ops_listener: TcpListener,
    ops_router: axum::Router,
    port: u16,
    drain: Duration,
    batching: dispatch::Batching,
    sweeper: expiry::Sweeper,
    reminders: reminders::Scheduler,
    waitlist: waitlist::Worker,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool = db::pool(&settings.database)?;
        let producer = kafka::producer(&settings.kafka, "booking-processor")?;
        let group = settings.processor.group_id.clone();
        let drain = Duration::from_millis(settings.processor.drain_timeout_ms);
        let consumer: ProcessorConsumer =
            kafka::consumer_config(&settings.kafka, "booking-processor", &group)
                .create_with_context(ProcessorContext::new(drain, group.clone()))
                .context("creating Kafka consumer")?;
        let topology = Topology::new(&settings.topics);
        consumer
            .subscribe(&topology.consumed())
            .context("subscribing")?;

        let registry = RegistryClient::new(
            &settings.registry.url,
            Duration::from_millis(settings.registry.timeout_ms),
        )?;
        let rules = Rules::from(&settings.processor);
        let commands = AvroCodec::new(registry.clone(), &settings.topics.requests);
        let sweeper = expiry::Sweeper::new(
            pool.clone(),
            producer.clone(),
            commands.clone(),
            &settings.topics.requests,
            &settings.processor,
        );
        let reminders = reminders::Scheduler::new(
            pool.clone(),
            producer.clone(),
            AvroCodec::new(registry.clone(), &settings.topics.events),
            &settings.topics.events,
            &settings.processor,
        );
        let waitlist = waitlist::Worker::new(
            &settings,
            pool.clone(),
            producer.clone(),
            AvroCodec::new(registry.clone(), &settings.topics.events),
        )?;
        let handler = Handler::new(
            pool.clone(),
            producer.clone(),
            commands,
            AvroCodec::new(registry, &settings.topics.events),
            topology.clone(),
            rules,
            parking::Recovery::new(
                &settings.kafka,
                &group,
                topology.retries.iter().map(|(t, _)| t.clone()).collect(),
            ),
        );

        let readiness = ops::Readiness::postgres_and_kafka(pool, producer);
        let (ops_listener, port) = ops::bind(&settings.http).await?;
        Ok(Self {
            consumer: Arc::new(consumer),
            handler: Arc::new(handler),
            topology,
            ops_listener,
            ops_router: ops::router(readiness),
            port,
            drain,
            batching: dispatch::Batching {
                max: settings.processor.batch_max,
                wait: Duration::from_millis(settings.processor.batch_wait_ms),
            },
            sweeper,
            reminders,
            waitlist,
        })
    }

    /// Port of the health and metrics endpoints.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Consumes until `shutdown` is cancelled, then lets in-flight records finish (within the
    /// drain deadline), commits the stored offsets and returns.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let ops_shutdown = CancellationToken::new();
        let ops_stop = ops_shutdown.clone();
        let ops = tokio::spawn(async move {
            axum::serve(self.ops_listener, self.ops_router)
                .with_graceful_shutdown(async move { ops_stop.cancelled().await })
                .await
        });
        tracing::info!(port = self.port, "booking-processor started");
        let sweeper = tokio::spawn(self.sweeper.run(shutdown.clone()));
        let reminders = tokio::spawn(self.reminders.run(shutdown.clone()));
        let waitlist = tokio::spawn(self.waitlist.run(shutdown.clone()));
        let runtime = tokio::runtime::Handle::current();
        let (consumer, handler, topology) = (self.consumer, self.handler, self.topology);
        let batching = self.batching;
        let poll_shutdown = shutdown.clone();
        // The consumer is polled on its own thread: rebalance callbacks may block it while
        // revoked partitions drain, without stalling the async workers.
        let poller = std::thread::Builder::new()
            .name("kafka-poll".into())
            .spawn(move || {
                dispatch::run(
                    consumer,
                    topology,
                    handler,
                    batching,
                    runtime,
                    poll_shutdown,
                )
            })
            .context("starting the polling thread")?;
        shutdown.cancelled().await;
        let joined = tokio::task::spawn_blocking(move || poller.join());
        match tokio::time::timeout(self.drain + Duration::from_secs(5), joined).await {
            Ok(_) => tracing::info!("booking-processor drained"),
            Err(_) => tracing::warn!("drain deadline passed; stopping anyway"),
        }
        ops_shutdown.cancel();
        let _ = ops.await;
        let _ = sweeper.await;
        let _ = reminders.await;
        let _ = waitlist.await;
        Ok(())
    }
}
