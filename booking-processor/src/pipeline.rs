//! The consume → decide → publish → store-offset loop.
//!
//! At-least-once with an exactly-once outcome: the offset of a command is stored only after
//! its decision is committed in PostgreSQL and its events are acknowledged by Kafka. A crash
//! anywhere before that redelivers the command; `decide` recognises it and the recorded
//! events are published again with the same ids.

use std::{sync::Arc, time::Duration};

use citaflow_platform::Settings;
use citaflow_schemas::{AvroCodec, BookingCommand, BookingEvent};
use rdkafka::{
    Message,
    consumer::{CommitMode, Consumer, StreamConsumer},
    message::{BorrowedMessage, Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    command::Command,
    decide::{self, Rules},
    error::ProcessError,
};

pub struct Pipeline {
    settings: Arc<Settings>,
    pool: PgPool,
    producer: FutureProducer,
    consumer: StreamConsumer,
    commands: AvroCodec<BookingCommand>,
    events: AvroCodec<BookingEvent>,
}

impl Pipeline {
    pub fn new(
        settings: Arc<Settings>,
        pool: PgPool,
        producer: FutureProducer,
        consumer: StreamConsumer,
        commands: AvroCodec<BookingCommand>,
        events: AvroCodec<BookingEvent>,
    ) -> Self {
        Self { settings, pool, producer, consumer, commands, events }
    }

    fn rules(&self) -> Rules {
        Rules {
            min_duration_minutes: self.settings.processor.min_duration_minutes,
            max_duration_minutes: self.settings.processor.max_duration_minutes,
        }
    }

    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        loop {
            let message = tokio::select! {
                _ = shutdown.cancelled() => break,
                message = self.consumer.recv() => message,
            };
            let message = match message {
                Ok(m) => m,
                Err(err) => {
                    tracing::warn!(error = %err, "consumer error");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            self.handle_until_done(&message, &shutdown).await;
        }
        if let Err(err) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(error = %err, "final offset commit (nothing stored?)");
        }
        tracing::info!("booking-processor drained");
        Ok(())
    }

    /// Handles one message until it is decided or dead-lettered, then stores its offset.
    async fn handle_until_done(&self, message: &BorrowedMessage<'_>, shutdown: &CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.handle(message).await {
                Ok(()) => break,
                Err(err) if err.is_transient() => {
                    metrics::counter!("citaflow_processor_transient_failures_total").increment(1);
                    tracing::warn!(error = %err, partition = message.partition(), offset = message.offset(), "transient failure, retrying");
                    if shutdown.is_cancelled() {
                        // Not stored: the command is redelivered after restart.
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(err) => {
                    if let Err(dlq_err) = self.dead_letter(message, &err).await {
                        tracing::error!(error = %dlq_err, "cannot dead-letter, will retry");
                        tokio::time::sleep(backoff).await;
                        continue;
                    }
                    break;
                }
            }
        }
        if let Err(err) = self.consumer.store_offset_from_message(message) {
            tracing::warn!(error = %err, "could not store offset (partition revoked?)");
        }
    }

    async fn handle(&self, message: &BorrowedMessage<'_>) -> Result<(), ProcessError> {
        let payload = message.payload().unwrap_or_default();
        let record = self.commands.decode(payload).await.map_err(|e| {
            if e.is_transient() {
                ProcessError::Transient(e.into())
            } else {
                ProcessError::Permanent(e.into())
            }
        })?;
        let command = Command::try_from(&record)?;
        let span = tracing::info_span!(
            "decide",
            booking_id = %command.booking_id(),
            command_id = %command.command_id,
            kind = command.kind(),
        );
        async {
            let events = decide::decide(&self.pool, self.rules(), &command).await?;
            self.publish(&events).await?;
            for event in &events {
                metrics::counter!("citaflow_processor_decisions_total", "outcome" => format!("{:?}", event.kind).to_lowercase()).increment(1);
                tracing::info!(kind = ?event.kind, reason = event.reason_code.as_deref(), "decided");
            }
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// Publishes events keyed by doctor and waits for every acknowledgement.
    async fn publish(&self, events: &[BookingEvent]) -> Result<(), ProcessError> {
        for event in events {
            let payload = self.events.encode(event).await.map_err(|e| {
                if e.is_transient() {
                    ProcessError::Transient(e.into())
                } else {
                    ProcessError::Permanent(e.into())
                }
            })?;
            let record = FutureRecord::to(&self.settings.topics.events)
                .key(event.doctor_id.as_bytes())
                .payload(&payload);
            self.producer
                .send(record, Duration::from_secs(5))
                .await
                .map_err(|(e, _)| ProcessError::Transient(anyhow::anyhow!("publishing event: {e}")))?;
        }
        Ok(())
    }

    /// Copies an unusable record to the dead-letter topic with its provenance.
    async fn dead_letter(
        &self,
        message: &BorrowedMessage<'_>,
        error: &ProcessError,
    ) -> anyhow::Result<()> {
        let error_text = error.to_string();
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        let headers = OwnedHeaders::new()
            .insert(Header { key: "citaflow-original-topic", value: Some(message.topic()) })
            .insert(Header { key: "citaflow-original-partition", value: Some(&partition) })
            .insert(Header { key: "citaflow-original-offset", value: Some(&offset) })
            .insert(Header { key: "citaflow-error", value: Some(&error_text) });
        let mut record = FutureRecord::to(&self.settings.topics.dlq).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        self.producer
            .send(record, Duration::from_secs(5))
            .await
            .map_err(|(e, _)| anyhow::anyhow!("producing dead letter: {e}"))?;
        metrics::counter!("citaflow_processor_dead_letters_total").increment(1);
        tracing::warn!(error = %error_text, "command dead-lettered");
        Ok(())
    }
}
