//! Nothing stays pending forever. The API writes a booking `pending` before it produces the
//! command; if it dies in between, the command never exists and nothing would decide the row.
//!
//! Every processor replica looks, every `processor.pending_sweep_interval_secs`, for bookings
//! still pending `processor.expire_pending_after_secs` after their request (longer than the
//! whole retry ladder), and produces an EXPIRE command for each on its doctor's partition of
//! the request topic. Kafka's order decides: anything produced for that doctor earlier (the
//! original create, if it was produced) is decided first, and the expiry then finds the row
//! decided and changes nothing; a doctor parked behind a retried command keeps the expiry
//! behind it too. The expiry's command id is derived from the booking id, so the sweeps of
//! several replicas, or of several rounds, decide it once.
//!
//! Bound: a row stays pending at most `expire_pending_after_secs + pending_sweep_interval_secs`
//! plus the time its partition takes to reach the expiry.

use std::time::Duration;

use chrono::Utc;
use citaflow_booking_store as store;
use citaflow_platform::settings::ProcessorSettings;
use citaflow_schemas::{AvroCodec, BookingCommand, BookingCommandKind};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How many stale bookings one sweep asks to expire at most.
const BATCH: i64 = 500;

pub struct Sweeper {
    pool: PgPool,
    producer: FutureProducer,
    commands: AvroCodec<BookingCommand>,
    topic: String,
    after: chrono::Duration,
    every: Duration,
}

/// The expiry command of `booking_id`: the same id every time, so it is decided once.
pub fn expiry_command_id(booking_id: Uuid) -> Uuid {
    Uuid::new_v5(&booking_id, b"citaflow:expire")
}

impl Sweeper {
    pub fn new(
        pool: PgPool,
        producer: FutureProducer,
        commands: AvroCodec<BookingCommand>,
        topic: &str,
        settings: &ProcessorSettings,
    ) -> Self {
        Self {
            pool,
            producer,
            commands,
            topic: topic.to_owned(),
            after: chrono::Duration::seconds(settings.expire_pending_after_secs as i64),
            every: Duration::from_secs(settings.pending_sweep_interval_secs.max(1)),
        }
    }

    /// Sweeps until `shutdown`; a failed sweep (database or broker away) is tried next round.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(bookings = n, "expiry requested for bookings left pending"),
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "pending sweep failed; next round")
                }
            }
        }
    }

    async fn sweep(&self) -> anyhow::Result<usize> {
        let stale = store::stale_pending(&self.pool, Utc::now() - self.after, BATCH).await?;
        for (booking_id, doctor_id) in &stale {
            let command = BookingCommand {
                command_id: expiry_command_id(*booking_id).to_string(),
                kind: BookingCommandKind::Expire,
                booking_id: booking_id.to_string(),
                doctor_id: doctor_id.to_string(),
                patient_id: None,
                center_id: None,
                starts_at: None,
                ends_at: None,
                reason: None,
                previous_booking_id: None,
                requested_by: None,
                requested_at: Utc::now().timestamp_millis(),
                service_id: None,
            };
            let payload = self.commands.encode(&command).await?;
            let record = FutureRecord::to(&self.topic)
                .key(command.doctor_id.as_bytes())
                .payload(&payload);
            self.producer
                .send(record, Duration::from_secs(5))
                .await
                .map_err(|(e, _)| anyhow::anyhow!("producing an expiry: {e}"))?;
            metrics::counter!("citaflow_processor_expiries_requested_total").increment(1);
            tracing::info!(%booking_id, "booking still pending; expiry requested");
        }
        Ok(stale.len())
    }
}
