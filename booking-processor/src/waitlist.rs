//! The waitlist worker: freed slots offered to waiting patients, first come first offered.
//!
//! Two loops in every processor replica:
//! - **The stream side** reads `booking.events` in its own consumer group
//!   (`<processor.group_id>-waitlist`): a CANCELLED booking (a cancel, or the old half of a
//!   move) whose time is ahead and that someone waits for becomes an opening; a CONFIRMED or
//!   RESCHEDULED booking closes the patient's entries it satisfies (and the offer it took); a
//!   REJECTED one fails the offer it was taking. Each event's work is one idempotent
//!   transaction, and its offset is stored only after it commits.
//! - **The offer rounds** (woken by a new opening or a failed offer, else every
//!   `processor.waitlist_poll_interval_ms`) expire the holds that lapsed (WAITLIST_EXPIRED),
//!   then offer each opening without a live offer to the first entry that fits
//!   (WAITLIST_OFFERED, held `processor.waitlist_hold_secs`): its service offered by the
//!   doctor, the visit within the doctor's hours at the center and its occupied time (buffers
//!   included) free of confirmed visits. An opening nobody fits is closed `exhausted`, one
//!   taken meanwhile `filled`, one whose time came `past`.
//!
//! Events are published while the rows they announce are locked, and the transaction commits
//! only after Kafka acknowledged them: a crash in between leaves no offer behind (the next
//! round makes it again, under a new id; the notifiers check an offer is still open before
//! sending it). Partial unique indexes keep one live offer per opening, per slot and per entry
//! (migration 0009), so no slot is ever offered to two patients at once.
//! Taking an offer is a normal booking command sent by the API (`POST
//! /waitlist/offers/{id}/accept`): every rule and the exclusion constraint apply.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use citaflow_agenda as agenda;
use citaflow_booking_store::waitlist::{self, Offer, Opening};
use citaflow_platform::{Settings, kafka};
use citaflow_schemas::{AvroCodec, BookingEvent, BookingEventKind, BookingStatus};
use rdkafka::{
    Message,
    consumer::{CommitMode, Consumer, StreamConsumer},
    producer::FutureProducer,
};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How many holds or openings one round handles at most.
const BATCH: i64 = 50;
/// How many waiting entries are tried for one opening at most.
const CANDIDATES: i64 = 20;
/// How often entries whose dates have gone by are closed.
const LAPSE_EVERY: Duration = Duration::from_secs(60);

pub struct Worker {
    pool: PgPool,
    consumer: StreamConsumer<kafka::MeteredContext>,
    producer: FutureProducer,
    events: AvroCodec<BookingEvent>,
    topic: String,
    hold: chrono::Duration,
    every: Duration,
    wake: Notify,
}

/// The event id of the expiry of offer `offer_id`: the same every time.
pub fn expiry_event_id(offer_id: Uuid) -> Uuid {
    Uuid::new_v5(&offer_id, b"citaflow:waitlist:expired")
}

impl Worker {
    pub fn new(
        settings: &Settings,
        pool: PgPool,
        producer: FutureProducer,
        events: AvroCodec<BookingEvent>,
    ) -> anyhow::Result<Self> {
        let group = format!("{}-waitlist", settings.processor.group_id);
        let consumer = kafka::consumer(&settings.kafka, "booking-processor-waitlist", &group)?;
        consumer
            .subscribe(&[settings.topics.events.as_str()])
            .context("subscribing the waitlist to the events topic")?;
        Ok(Self {
            pool,
            consumer,
            producer,
            events,
            topic: settings.topics.events.clone(),
            hold: chrono::Duration::seconds(settings.processor.waitlist_hold_secs as i64),
            every: Duration::from_millis(settings.processor.waitlist_poll_interval_ms.max(1)),
            wake: Notify::new(),
        })
    }

    /// Runs both loops until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let stream = tokio::spawn(Arc::clone(&this).follow_events(shutdown.clone()));
        this.offer_rounds(shutdown).await;
        let _ = stream.await;
        let _ = this.consumer.commit_consumer_state(CommitMode::Sync);
    }

    async fn follow_events(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let message = tokio::select! {
                _ = shutdown.cancelled() => return,
                message = self.consumer.recv() => message,
            };
            let message = match message {
                Ok(message) => message,
                Err(err) => {
                    tracing::warn!(error = %err, "waitlist consumer error");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let Some(event) = self.decode(message.payload(), &shutdown).await else {
                if shutdown.is_cancelled() {
                    return;
                }
                // Not an event this worker can read: nothing of the waitlist depends on it.
                let _ = self.consumer.store_offset_from_message(&message);
                continue;
            };
            let mut backoff = Duration::from_millis(200);
            let woke = loop {
                match self.apply(&event).await {
                    Ok(woke) => break woke,
                    Err(err) => {
                        tracing::warn!(error = %format!("{err:#}"), event_id = %event.event_id, "waitlist could not apply an event; retrying");
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            };
            if let Err(err) = self.consumer.store_offset_from_message(&message) {
                tracing::warn!(error = %err, "could not store the waitlist offset");
            }
            if woke {
                self.wake.notify_one();
            }
        }
    }

    /// The event in `payload`; `None` for a record that is not one (after logging it). Waits
    /// out a registry that is away.
    async fn decode(
        &self,
        payload: Option<&[u8]>,
        shutdown: &CancellationToken,
    ) -> Option<BookingEvent> {
        let payload = payload?;
        loop {
            match self.events.decode(payload).await {
                Ok(event) => return Some(event),
                Err(err) if err.is_transient() && !shutdown.is_cancelled() => {
                    tracing::warn!(error = %err, "registry away; waitlist waits");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "waitlist skips a record it cannot decode");
                    return None;
                }
            }
        }
    }

    /// Applies one event; returns whether an offer round may now have work.
    async fn apply(&self, event: &BookingEvent) -> anyhow::Result<bool> {
        let id = |s: &str| Uuid::parse_str(s).context("an id in an event");
        let at = |ms: i64| DateTime::from_timestamp_millis(ms).context("a time in an event");
        let mut conn = self.pool.acquire().await?;
        match event.kind {
            BookingEventKind::Cancelled => {
                let recorded = waitlist::record_opening(
                    &mut conn,
                    id(&event.event_id)?,
                    id(&event.booking_id)?,
                    id(&event.doctor_id)?,
                    id(&event.center_id)?,
                    at(event.starts_at)?,
                    at(event.ends_at)?,
                    Utc::now(),
                )
                .await?;
                if recorded {
                    metrics::counter!("citaflow_waitlist_openings_total").increment(1);
                    tracing::info!(booking_id = %event.booking_id, "freed slot recorded for the waitlist");
                }
                Ok(recorded)
            }
            BookingEventKind::Confirmed | BookingEventKind::Rescheduled => {
                let service = event.service_id.as_deref().map(id).transpose()?;
                let mut tx = sqlx::Acquire::begin(&mut *conn).await?;
                waitlist::booked(
                    &mut tx,
                    id(&event.booking_id)?,
                    id(&event.patient_id)?,
                    id(&event.center_id)?,
                    id(&event.doctor_id)?,
                    service,
                    at(event.starts_at)?,
                )
                .await?;
                tx.commit().await?;
                Ok(false)
            }
            BookingEventKind::Rejected => {
                waitlist::rejected(&mut conn, id(&event.booking_id)?).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn offer_rounds(&self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut lapsed_at = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
                _ = self.wake.notified() => {}
            }
            if let Err(err) = self.expire_holds().await {
                tracing::warn!(error = %format!("{err:#}"), "waitlist expiry round failed; next round");
            }
            if let Err(err) = self.offer_openings().await {
                tracing::warn!(error = %format!("{err:#}"), "waitlist offer round failed; next round");
            }
            if lapsed_at.elapsed() >= LAPSE_EVERY {
                lapsed_at = tokio::time::Instant::now();
                let mut conn = match self.pool.acquire().await {
                    Ok(conn) => conn,
                    Err(_) => continue,
                };
                if let Ok(n) = waitlist::lapse_entries(&mut conn, Utc::now()).await
                    && n > 0
                {
                    tracing::info!(entries = n, "waitlist entries past their dates closed");
                }
            }
        }
    }

    /// Closes the holds that lapsed and announces each (WAITLIST_EXPIRED).
    async fn expire_holds(&self) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        let now = Utc::now();
        let lapsed = waitlist::claim_lapsed(&mut tx, now, BATCH).await?;
        for offer in &lapsed {
            let event = event(offer, BookingEventKind::WaitlistExpired, now);
            self.publish(&event).await?;
            metrics::counter!("citaflow_waitlist_offers_total", "outcome" => "expired")
                .increment(1);
            tracing::info!(offer_id = %offer.id, "waitlist hold lapsed");
        }
        tx.commit().await?;
        Ok(())
    }

    /// Offers every opening without a live offer to the first entry that fits it.
    async fn offer_openings(&self) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        let now = Utc::now();
        for opening in waitlist::claim_unoffered(&mut tx, BATCH).await? {
            if opening.starts_at <= now {
                waitlist::close_opening(&mut tx, opening.id, "past").await?;
                continue;
            }
            if !waitlist::time_is_free(
                &mut tx,
                opening.doctor_id,
                opening.starts_at,
                opening.ends_at,
            )
            .await?
            {
                waitlist::close_opening(&mut tx, opening.id, "filled").await?;
                continue;
            }
            match self.fitting_offer(&mut tx, &opening, now).await? {
                None => {
                    waitlist::close_opening(&mut tx, opening.id, "exhausted").await?;
                    tracing::info!(opening_id = %opening.id, "nobody waiting fits a freed slot");
                }
                Some(offer) => {
                    waitlist::insert_offer(&mut tx, &offer).await?;
                    self.publish(&event(&offer, BookingEventKind::WaitlistOffered, now))
                        .await?;
                    waitlist::mark_published(&mut tx, offer.id).await?;
                    metrics::counter!("citaflow_waitlist_offers_total", "outcome" => "offered")
                        .increment(1);
                    tracing::info!(offer_id = %offer.id, entry_id = %offer.entry_id, "freed slot offered");
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The offer of `opening` to the first waiting entry whose visit fits there, if any.
    async fn fitting_offer(
        &self,
        conn: &mut sqlx::PgConnection,
        opening: &Opening,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<Offer>> {
        let tz = opening
            .timezone
            .parse::<chrono_tz::Tz>()
            .unwrap_or(chrono_tz::UTC);
        let date = agenda::local_date(tz, opening.starts_at);
        let candidates = waitlist::candidates(conn, opening, date, CANDIDATES).await?;
        if candidates.is_empty() {
            return Ok(None);
        }
        let day = chrono::Duration::days(1);
        let agendas = agenda::load(conn, &[opening.doctor_id], date - day, date + day).await?;
        let doctor_agenda = agendas.get(&opening.doctor_id).cloned().unwrap_or_default();
        for candidate in candidates {
            let spec = agenda::SlotSpec::for_service(
                i64::from(candidate.duration_minutes),
                i64::from(candidate.buffer_before_minutes),
                i64::from(candidate.buffer_after_minutes),
            );
            let visit = agenda::Interval::new(opening.starts_at, opening.starts_at + spec.duration);
            match doctor_agenda.check(opening.center_id, tz, visit) {
                agenda::Verdict::Open | agenda::Verdict::NoAgenda => {}
                _ => continue,
            }
            let occupied = spec.occupied(opening.starts_at);
            if !waitlist::time_is_free(conn, opening.doctor_id, occupied.start, occupied.end)
                .await?
            {
                continue;
            }
            return Ok(Some(Offer {
                id: Uuid::new_v4(),
                opening_id: opening.id,
                entry_id: candidate.entry_id,
                freed_booking_id: opening.freed_booking_id,
                patient_id: candidate.patient_id,
                doctor_id: opening.doctor_id,
                center_id: opening.center_id,
                service_id: candidate.service_id,
                starts_at: visit.start,
                ends_at: visit.end,
                hold_until: now + self.hold,
            }));
        }
        Ok(None)
    }

    async fn publish(&self, event: &BookingEvent) -> anyhow::Result<()> {
        crate::publish_event(
            &self.producer,
            &self.events,
            &self.topic,
            event,
            "a waitlist event",
        )
        .await
    }
}

/// The WAITLIST_OFFERED or WAITLIST_EXPIRED event of `offer`.
fn event(offer: &Offer, kind: BookingEventKind, now: DateTime<Utc>) -> BookingEvent {
    let event_id = match kind {
        BookingEventKind::WaitlistExpired => expiry_event_id(offer.id),
        _ => offer.id,
    }
    .to_string();
    let (reason_code, reason_message) = match kind {
        BookingEventKind::WaitlistExpired => (
            "waitlist_hold_lapsed",
            "The hold on a freed slot lapsed untaken.",
        ),
        _ => (
            "waitlist_offer",
            "A freed slot is held for a patient on the waitlist.",
        ),
    };
    BookingEvent {
        event_id,
        kind,
        booking_id: offer.freed_booking_id.to_string(),
        command_id: offer.id.to_string(),
        doctor_id: offer.doctor_id.to_string(),
        patient_id: offer.patient_id.to_string(),
        center_id: offer.center_id.to_string(),
        starts_at: offer.starts_at.timestamp_millis(),
        ends_at: offer.ends_at.timestamp_millis(),
        status: BookingStatus::Cancelled,
        reason_code: Some(reason_code.into()),
        reason_message: Some(reason_message.into()),
        previous_booking_id: None,
        occurred_at: now.timestamp_millis(),
        service_id: Some(offer.service_id.to_string()),
        waitlist_offer_id: Some(offer.id.to_string()),
        waitlist_entry_id: Some(offer.entry_id.to_string()),
        hold_until: Some(offer.hold_until.timestamp_millis()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiry_keeps_its_event_id_and_differs_from_the_offer() {
        let offer = Uuid::new_v4();
        assert_eq!(expiry_event_id(offer), expiry_event_id(offer));
        assert_ne!(expiry_event_id(offer), offer);
    }
}
