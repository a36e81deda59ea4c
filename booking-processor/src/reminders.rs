//! Reminders before a visit. A confirmation writes one `reminders` row per offset in its
//! deciding transaction (booking-store `reminders.rs`); this loop, in every processor replica,
//! looks every `processor.reminder_poll_interval_ms` for rows that are due (the partial index
//! on pending rows: it never reads the whole table), claims them with `FOR UPDATE SKIP LOCKED`
//! and publishes one `REMINDER_DUE` event each; the notifiers send it by email and SMS.
//!
//! Exactly once per booking, offset and channel: the row stays locked while its event is
//! published and is closed `sent` in the same transaction only after Kafka acknowledged it.
//! A crash in between leaves the row pending and publishes it again with the same event id
//! (derived from the booking and the offset), which the notifiers' delivery log sends once
//! per channel. At due time the booking must still be confirmed and start when it did when
//! the reminder was scheduled (a cancel or a move also drops the row in its own
//! transaction); a reminder found due only after the visit started (the processors were down)
//! is dropped (`started`), never sent late.

use std::time::Duration;

use chrono::Utc;
use citaflow_booking_store::reminders::{self, DueReminder};
use citaflow_platform::settings::ProcessorSettings;
use citaflow_schemas::{AvroCodec, BookingEvent, BookingEventKind, BookingStatus};
use rdkafka::producer::FutureProducer;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How many due reminders one round claims at most.
const BATCH: i64 = 100;

pub struct Scheduler {
    pool: PgPool,
    producer: FutureProducer,
    events: AvroCodec<BookingEvent>,
    topic: String,
    every: Duration,
}

/// The event id of the reminder of `booking_id` at `offset_minutes`: the same every time.
pub fn reminder_event_id(booking_id: Uuid, offset_minutes: i32) -> Uuid {
    Uuid::new_v5(
        &booking_id,
        format!("citaflow:reminder:{offset_minutes}").as_bytes(),
    )
}

impl Scheduler {
    pub fn new(
        pool: PgPool,
        producer: FutureProducer,
        events: AvroCodec<BookingEvent>,
        topic: &str,
        settings: &ProcessorSettings,
    ) -> Self {
        Self {
            pool,
            producer,
            events,
            topic: topic.to_owned(),
            every: Duration::from_millis(settings.reminder_poll_interval_ms.max(1)),
        }
    }

    /// Runs until `shutdown`; a failed round (database or broker away) is tried next round.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            loop {
                match self.round().await {
                    // A full batch: more may be due at once.
                    Ok(n) if n as i64 == BATCH && !shutdown.is_cancelled() => continue,
                    Ok(_) => break,
                    Err(err) => {
                        tracing::warn!(error = %format!("{err:#}"), "reminder round failed; next round");
                        break;
                    }
                }
            }
        }
    }

    /// Claims the due reminders, publishes or drops each, and commits: returns how many.
    async fn round(&self) -> anyhow::Result<usize> {
        let mut tx = self.pool.begin().await?;
        let now = Utc::now();
        let due = reminders::claim_due(&mut tx, now, BATCH).await?;
        for reminder in &due {
            if let Some(why) = reminder.stale(now) {
                reminders::close(
                    &mut tx,
                    reminder.booking_id,
                    reminder.offset_minutes,
                    false,
                    Some(why),
                )
                .await?;
                metrics::counter!("citaflow_processor_reminders_total", "outcome" => why)
                    .increment(1);
                tracing::info!(booking_id = %reminder.booking_id, why, "reminder dropped");
                continue;
            }
            let event = event(reminder, now);
            sqlx::query(
                "INSERT INTO booking_events (event_id, command_id, booking_id, kind, payload,
                                             occurred_at)
                 VALUES ($1, $1, $2, 'REMINDER_DUE', $3, $4)
                 ON CONFLICT (event_id) DO NOTHING",
            )
            .bind(reminder_event_id(
                reminder.booking_id,
                reminder.offset_minutes,
            ))
            .bind(reminder.booking_id)
            .bind(sqlx::types::Json(&event))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            crate::publish_event(
                &self.producer,
                &self.events,
                &self.topic,
                &event,
                "a reminder",
            )
            .await?;
            reminders::close(
                &mut tx,
                reminder.booking_id,
                reminder.offset_minutes,
                true,
                None,
            )
            .await?;
            metrics::counter!("citaflow_processor_reminders_total", "outcome" => "sent")
                .increment(1);
            tracing::info!(
                booking_id = %reminder.booking_id,
                offset_minutes = reminder.offset_minutes,
                "reminder published"
            );
        }
        tx.commit().await?;
        Ok(due.len())
    }
}

/// The `REMINDER_DUE` event of a due reminder; `reason_code` names the offset.
fn event(r: &DueReminder, now: chrono::DateTime<Utc>) -> BookingEvent {
    let id = reminder_event_id(r.booking_id, r.offset_minutes).to_string();
    BookingEvent {
        event_id: id.clone(),
        kind: BookingEventKind::ReminderDue,
        booking_id: r.booking_id.to_string(),
        command_id: id,
        doctor_id: r.doctor_id.to_string(),
        patient_id: r.patient_id.to_string(),
        center_id: r.center_id.to_string(),
        starts_at: r.starts_at.timestamp_millis(),
        ends_at: r.ends_at.timestamp_millis(),
        status: BookingStatus::Confirmed,
        reason_code: Some(format!("reminder_{}m", r.offset_minutes)),
        reason_message: Some(format!(
            "Reminder {} minutes before the visit.",
            r.offset_minutes
        )),
        previous_booking_id: None,
        occurred_at: now.timestamp_millis(),
        service_id: r.service_id.map(|s| s.to_string()),
        waitlist_offer_id: None,
        waitlist_entry_id: None,
        hold_until: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reminder_keeps_its_event_id_per_offset() {
        let booking = Uuid::new_v4();
        assert_eq!(
            reminder_event_id(booking, 1440),
            reminder_event_id(booking, 1440)
        );
        assert_ne!(
            reminder_event_id(booking, 1440),
            reminder_event_id(booking, 60)
        );
    }
}
