//! One event on one channel: decode, claim in the delivery log, resolve the patient, render,
//! send under the row lock, record. Transient failures are retried in place with backoff (this
//! channel waits; the other channel's consumer group does not). A message the SMTP server keeps
//! refusing for now ([`SendError::Deferred`]) is retried only until
//! `notifier.deferred_give_up_secs` after its first attempt, then recorded `failed`: one such
//! recipient holds its partition at most that long.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use citaflow_platform::{Settings, settings::Channel};
use citaflow_schemas::{AvroCodec, BookingEvent, BookingEventKind};
use rdkafka::{Message, message::BorrowedMessage};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::{
    channels::{EmailChannel, SendError, SmsChannel},
    contact::{self, EventIds},
    deliveries::{self, Claim, Closing, LockError},
    phone::Phone,
    templates::{self, Lang},
};

/// The configured delivery channel.
#[derive(Clone)]
pub(crate) enum Sender {
    Email(EmailChannel),
    Sms(SmsChannel),
}

/// The final outcome of one record on this channel (exactly one per record handled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Sent,
    Failed,
    Skipped,
    /// The delivery log says it was handled already.
    Duplicate,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
            Outcome::Duplicate => "duplicate",
        }
    }

    fn of(closing: &Closing) -> Self {
        match closing {
            Closing::Sent(_) => Outcome::Sent,
            Closing::Failed(_) => Outcome::Failed,
            Closing::Skipped(_) => Outcome::Skipped,
        }
    }
}

/// "Try again later", possibly with an outcome already known but not yet recorded.
struct Retry {
    error: anyhow::Error,
    unrecorded: Option<(Uuid, Closing)>,
    /// The next attempt is due no later than this (a deferred message's give-up time), so that
    /// the pause between attempts never stretches the bound.
    due_within: Option<Duration>,
}

impl<E: Into<anyhow::Error>> From<E> for Retry {
    fn from(error: E) -> Self {
        Retry {
            error: error.into(),
            unrecorded: None,
            due_within: None,
        }
    }
}

fn count(channel: &'static str, outcome: &'static str) {
    metrics::counter!("citaflow_notifications_total", "channel" => channel, "outcome" => outcome)
        .increment(1);
}

pub(crate) struct Worker {
    pub pool: PgPool,
    pub events: AvroCodec<BookingEvent>,
    pub sender: Sender,
    pub channel: Channel,
    pub default_lang: Lang,
    /// How long a deferred message is retried from its first attempt.
    pub deferred_give_up: Duration,
    /// `notifier.public_base_url`: messages link to the web app.
    pub app_url: String,
}

impl Worker {
    pub fn new(
        settings: &Arc<Settings>,
        pool: PgPool,
        events: AvroCodec<BookingEvent>,
        sender: Sender,
    ) -> Self {
        let default_lang = Lang::parse(&settings.notifier.default_language).unwrap_or(Lang::Es);
        Self {
            pool,
            events,
            sender,
            channel: settings.notifier.channel,
            default_lang,
            deferred_give_up: Duration::from_secs(settings.notifier.deferred_give_up_secs),
            app_url: settings.notifier.public_base_url.clone(),
        }
    }

    /// Handles one record, retrying transient failures with growing pauses. Answers whether
    /// the offset may be stored: false only when stopping mid-retry (the record comes again).
    pub async fn handle_until_done(
        &self,
        message: &BorrowedMessage<'_>,
        shutdown: &CancellationToken,
    ) -> bool {
        let channel = self.channel.as_str();
        let mut backoff = Duration::from_millis(500);
        let mut unrecorded: Option<(Uuid, Closing)> = None;
        loop {
            let result = match &unrecorded {
                // Sent already: only the record is missing. Never send again for that.
                Some((event_id, closing)) => {
                    deliveries::close(&self.pool, *event_id, channel, closing)
                        .await
                        .map(|()| Outcome::of(closing))
                        .map_err(Retry::from)
                }
                None => self.handle(message).await,
            };
            match result {
                Ok(outcome) => {
                    count(channel, outcome.as_str());
                    return true;
                }
                Err(retry) => {
                    if retry.unrecorded.is_some() {
                        unrecorded = retry.unrecorded;
                    }
                    count(channel, "retried");
                    // A little past the give-up time, so that the next attempt is the last.
                    let pause = retry
                        .due_within
                        .map_or(backoff, |due| backoff.min(due + Duration::from_millis(50)));
                    tracing::warn!(error = %retry.error, channel, retry_in_ms = pause.as_millis() as u64, "notification not done, will retry");
                    tokio::select! {
                        _ = shutdown.cancelled() => return false,
                        _ = tokio::time::sleep(pause) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    async fn handle(&self, message: &BorrowedMessage<'_>) -> Result<Outcome, Retry> {
        let event = match self
            .events
            .decode(message.payload().unwrap_or_default())
            .await
        {
            Ok(event) => event,
            Err(err) if err.is_transient() => return Err(err.into()),
            Err(err) => {
                tracing::error!(error = %err, partition = message.partition(), offset = message.offset(), "undecodable event skipped");
                return Ok(Outcome::Skipped);
            }
        };
        let previous_booking_id = event
            .previous_booking_id
            .as_deref()
            .and_then(|id| Uuid::parse_str(id).ok());
        let (Ok(event_id), Ok(booking_id), Ok(patient_id), Ok(center_id), Ok(doctor_id)) = (
            Uuid::parse_str(&event.event_id),
            Uuid::parse_str(&event.booking_id),
            Uuid::parse_str(&event.patient_id),
            Uuid::parse_str(&event.center_id),
            Uuid::parse_str(&event.doctor_id),
        ) else {
            tracing::error!(
                partition = message.partition(),
                offset = message.offset(),
                "event with invalid ids skipped"
            );
            return Ok(Outcome::Skipped);
        };
        let ids = EventIds {
            booking_id,
            patient_id,
            center_id,
            doctor_id,
            previous_booking_id,
        };
        let span = tracing::info_span!(
            "notify",
            booking_id = %booking_id,
            event_id = %event_id,
            kind = ?event.kind,
            channel = self.channel.as_str()
        );
        self.deliver(&event, event_id, ids).instrument(span).await
    }

    /// Everything after decoding, inside the booking's span.
    async fn deliver(
        &self,
        event: &BookingEvent,
        event_id: Uuid,
        ids: EventIds,
    ) -> Result<Outcome, Retry> {
        let channel = self.channel.as_str();
        let (in_doubt, since, attempts) =
            match deliveries::claim(&self.pool, event_id, channel, ids.booking_id).await? {
                Claim::Closed => {
                    tracing::debug!("already handled");
                    return Ok(Outcome::Duplicate);
                }
                Claim::Open {
                    in_doubt,
                    since,
                    attempts,
                } => {
                    if attempts > 1 {
                        tracing::info!(attempts, in_doubt, "notification attempted again");
                    }
                    (in_doubt, since, attempts)
                }
            };
        // What the patient needs to hear, and where.
        let prepared = self.prepare(event, ids).await?;
        let (message, address) = match prepared {
            Prepared::Done(closing) => return self.finish_unlocked(event_id, closing).await,
            Prepared::Send { message, address } => (message, address),
        };

        let locked = match deliveries::lock(&self.pool, event_id, channel).await {
            Ok(Some(locked)) => locked,
            Ok(None) => return Ok(Outcome::Duplicate),
            Err(LockError::Busy) => return Err(LockError::Busy.into()),
            Err(LockError::Database(e)) => return Err(e.into()),
        };
        if in_doubt {
            count(channel, "in_doubt");
        }
        // Stays true until this attempt learns that no earlier one delivered.
        let mut doubt_remains = in_doubt;
        let started = std::time::Instant::now();
        // An earlier attempt may have delivered: the provider's own record is asked first.
        let (already, searched) = match (&self.sender, &address) {
            (_, _) if !in_doubt => (Ok(None), false),
            (Sender::Email(email), _) => (email.find_sent(event_id).await, email.has_message_log()),
            (Sender::Sms(sms), Address::Phone(phone)) => {
                (sms.find_sent(phone, &message.sms, since).await, true)
            }
            _ => unreachable!("the address matches the channel"),
        };
        let sent = match already {
            Ok(Some(reference)) => {
                count(channel, "reconciled");
                tracing::warn!(provider_reference = %reference, "an earlier attempt had delivered this notification; not sending it again");
                Ok(reference)
            }
            Err(e) => Err(e),
            Ok(None) => {
                if searched {
                    doubt_remains = false;
                } else if in_doubt {
                    tracing::warn!(
                        "an earlier attempt may have delivered this email; sending it again with the same Message-ID"
                    );
                }
                match (&self.sender, &address) {
                    (Sender::Email(email), Address::Email { to, name }) => {
                        email.send(event_id, to, name, &message).await
                    }
                    (Sender::Sms(sms), Address::Phone(phone)) => sms.send(phone, &message).await,
                    _ => unreachable!("the address matches the channel"),
                }
            }
        };
        metrics::histogram!("citaflow_notification_send_seconds", "channel" => channel)
            .record(started.elapsed().as_secs_f64());
        let closing = match sent {
            Ok(reference) => Closing::Sent(reference),
            Err(SendError::Permanent(reason)) => Closing::Failed(reason),
            Err(SendError::Deferred(reason)) => {
                // Measured from the first attempt, as the delivery log recorded it.
                let waited = (Utc::now() - since).to_std().unwrap_or_default();
                if waited >= self.deferred_give_up {
                    count(channel, "gave_up");
                    let mut reason = format!(
                        "gave up after {attempts} attempts over {} s: {reason}",
                        waited.as_secs()
                    );
                    if doubt_remains {
                        reason.push_str(" (an earlier attempt may have delivered it)");
                    }
                    Closing::Failed(reason)
                } else {
                    count(channel, "deferred");
                    if let Err(e) = locked.note_retry(doubt_remains, &reason).await {
                        tracing::warn!(error = %e, "could not record the failed attempt");
                    }
                    return Err(Retry {
                        error: SendError::Deferred(reason).into(),
                        unrecorded: None,
                        due_within: Some(self.deferred_give_up - waited),
                    });
                }
            }
            Err(error @ (SendError::NotSent(_) | SendError::InDoubt(_))) => {
                let doubt = doubt_remains || matches!(error, SendError::InDoubt(_));
                let reason = match &error {
                    SendError::NotSent(r)
                    | SendError::InDoubt(r)
                    | SendError::Permanent(r)
                    | SendError::Deferred(r) => r.clone(),
                };
                if let Err(e) = locked.note_retry(doubt, &reason).await {
                    tracing::warn!(error = %e, "could not record the failed attempt");
                }
                return Err(error.into());
            }
        };
        let outcome = Outcome::of(&closing);
        match locked.close(&closing).await {
            Ok(()) => {
                log_closed(&closing);
                Ok(outcome)
            }
            Err(e) => Err(Retry {
                error: e.into(),
                unrecorded: Some((event_id, closing)),
                due_within: None,
            }),
        }
    }

    /// Records an outcome reached without sending anything.
    async fn finish_unlocked(&self, event_id: Uuid, closing: Closing) -> Result<Outcome, Retry> {
        deliveries::close(&self.pool, event_id, self.channel.as_str(), &closing).await?;
        log_closed(&closing);
        Ok(Outcome::of(&closing))
    }

    async fn prepare(&self, event: &BookingEvent, ids: EventIds) -> Result<Prepared, Retry> {
        // A move announces itself: the cancellation of the old booking that goes with it is
        // not news to the patient (and its calendar entry is updated by the move's).
        if event.kind == BookingEventKind::Cancelled
            && event.reason_code.as_deref() == Some("rescheduled")
        {
            return Ok(Prepared::Done(Closing::Skipped("superseded_by_reschedule")));
        }
        // Attendance is the clinic's record: nothing to tell the patient.
        if !templates::tells_the_patient(event.kind) {
            return Ok(Prepared::Done(Closing::Skipped("not_notified")));
        }
        // A reminder read late (this notifier was down) is still sent before the visit, never
        // after it has started, and never for a booking cancelled or moved since.
        if event.kind == BookingEventKind::ReminderDue {
            let starts_at = chrono::DateTime::from_timestamp_millis(event.starts_at);
            if starts_at.is_none_or(|t| t <= Utc::now()) {
                return Ok(Prepared::Done(Closing::Skipped("too_late")));
            }
            if !contact::still_confirmed(&self.pool, ids.booking_id, event.starts_at).await? {
                return Ok(Prepared::Done(Closing::Skipped("not_confirmed")));
            }
        }
        // An offer is sent only while it is held: one read late (after its hold lapsed, or
        // taken or declined meanwhile) is not news any more. The processor publishes the offer
        // while its transaction is still open (it commits after Kafka's ack), so a prompt
        // reader may not see the row yet: that is retried, for a while; an offer whose row
        // never appears (the processor stopped before committing) was never made.
        if event.kind == BookingEventKind::WaitlistOffered {
            let offer = event
                .waitlist_offer_id
                .as_deref()
                .and_then(|id| Uuid::parse_str(id).ok());
            let state = match offer {
                Some(id) => contact::offer_still_open(&self.pool, id).await?,
                None => Some(false),
            };
            match state {
                Some(true) => {}
                Some(false) => return Ok(Prepared::Done(Closing::Skipped("offer_closed"))),
                None if event_age(event) < OFFER_COMMIT_WAIT => {
                    return Err(anyhow::anyhow!("the offer is not committed yet").into());
                }
                None => return Ok(Prepared::Done(Closing::Skipped("offer_never_made"))),
            }
        }
        let Some(mut recipient) = contact::resolve(&self.pool, ids, self.default_lang).await?
        else {
            return Ok(Prepared::Done(Closing::Skipped("patient_unknown")));
        };
        recipient.context.app_url = self.app_url.clone();
        let address = match &self.sender {
            Sender::Email(email) => {
                let Some(to) = recipient.email.clone().filter(|e| !e.trim().is_empty()) else {
                    return Ok(Prepared::Done(Closing::Skipped("no_email")));
                };
                recipient.context.organizer = Some(email.from_address());
                Address::Email {
                    to,
                    name: recipient.context.patient_name.clone(),
                }
            }
            Sender::Sms(_) => {
                let Some(raw) = recipient.phone.as_deref().filter(|p| !p.trim().is_empty()) else {
                    return Ok(Prepared::Done(Closing::Skipped("no_phone")));
                };
                match Phone::try_from(raw) {
                    Ok(phone) => Address::Phone(phone),
                    Err(invalid) => {
                        return Ok(Prepared::Done(Closing::Failed(format!(
                            "invalid_phone: {invalid}"
                        ))));
                    }
                }
            }
        };
        let Some(message) = templates::render(event, &recipient.context, Utc::now()) else {
            return Ok(Prepared::Done(Closing::Skipped("not_notified")));
        };
        Ok(Prepared::Send { message, address })
    }
}

/// Where to send, already checked.
enum Address {
    Email { to: String, name: String },
    Phone(Phone),
}

/// How long after an offer event its row may still be missing (the processor's transaction
/// commits after Kafka's acknowledgement, well within this).
const OFFER_COMMIT_WAIT: Duration = Duration::from_secs(60);

/// Time since the event occurred (zero for an event from the future).
fn event_age(event: &BookingEvent) -> Duration {
    let age_ms = Utc::now().timestamp_millis() - event.occurred_at;
    Duration::from_millis(age_ms.max(0) as u64)
}

enum Prepared {
    /// Nothing to send; record this.
    Done(Closing),
    Send {
        message: templates::Rendered,
        address: Address,
    },
}

fn log_closed(closing: &Closing) {
    match closing {
        Closing::Sent(reference) => {
            tracing::info!(outcome = "sent", provider_reference = %reference, "notification handled")
        }
        Closing::Failed(reason) => {
            tracing::warn!(outcome = "failed", reason = %reason, "notification handled")
        }
        Closing::Skipped(reason) => {
            tracing::info!(outcome = "skipped", reason = %reason, "notification handled")
        }
    }
}
