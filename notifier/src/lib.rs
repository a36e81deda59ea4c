//! notifier: one consumer group per channel (`notifier-email`, `notifier-sms`), each reading
//! every event of `booking.events` and sending each notification once.
//!
//! Once per channel per event: a row in `notification_deliveries` (unique on event id and
//! channel, see [`deliveries`]) is claimed before sending, locked while sending and closed
//! after; the event's offset is stored only then. A redelivered event whose row is closed is
//! skipped. Transient failures are retried with backoff on the spot (this channel waits; the
//! other channel's group does not).
//!
//! # Decisions
//!
//! - **Exactly once, as far as the providers allow.** Neither SMTP nor Twilio's Messages API
//!   takes an idempotency key, so a process killed after the provider took a message but
//!   before the row was closed leaves the row `sending` with no outcome. The next attempt knows
//!   it is *in doubt* and first looks in the provider's own record of what it sent; found
//!   there, the row is closed `sent` without sending again (counted `reconciled`):
//!   - email: **looks in the mail system's message log** (`smtp.message_log_url`, Mailpit's
//!     search API shape: `GET …/api/v1/search?query=message-id:"…"`) for the email's fixed
//!     **`Message-ID`** (`<event-id>.email@<from domain>`). SMTP itself cannot tell: a server
//!     stores the whole message before it answers the final dot, so a kill during a send
//!     usually lands in that window. With no message log configured (or one that cannot
//!     search), the email is sent again with the same `Message-ID` and the same content, so
//!     the copy is the same message; mail systems that de-duplicate on it (Gmail) show it
//!     once, others show it twice.
//!   - SMS: **looks in the provider's message log** (`GET …/Messages.json?To=&From=`) for the
//!     same text to the same number since the first attempt, and only sends if it is not
//!     there. A provider that cannot list gets the message again (at least once, never none).
//!
//!   An outcome known but not recorded because the database went away is kept in memory and
//!   recorded when it is back, never sent again. Two replicas owning one partition for a
//!   moment (rebalance) cannot both send: the send happens under a row lock taken with
//!   `NOWAIT`; the loser retries and finds the row closed. A dead process's lock goes with its
//!   connection.
//! - **Reschedules are one message.** The processor publishes `RESCHEDULED` for the new booking
//!   and `CANCELLED` (`rescheduled`) for the old one; patients get only the first ("moved from
//!   … to …"); the second is recorded `skipped` (`superseded_by_reschedule`).
//! - **Calendar files follow the appointment.** The `.ics` `UID` is the first booking of a
//!   chain of reschedules and `SEQUENCE` counts the moves, so a move updates the calendar
//!   entry (`METHOD:PUBLISH`) and a cancellation removes it (`METHOD:CANCEL`, `STATUS:CANCELLED`).
//!   `DTSTAMP` is the event time: a resent message is byte-for-byte the same calendar object.
//! - **Bad contact data is a permanent failure, not a retry.** A phone that is not E.164 is
//!   recorded `failed` (`invalid_phone: …`) without calling the provider; so is an email
//!   address that does not parse. No email or no phone on file is `skipped`.
//! - **No personal data in logs or in the delivery log.** Provider errors echo addresses and
//!   numbers; every error text is passed through [`redact::redact`]. Names, emails and phones
//!   never reach a log field; `Debug` of contacts and phones hides them.
//! - **Metrics.** `citaflow_notifications_total{channel, outcome}`: one final outcome per
//!   record (`sent`, `failed`, `skipped`, `duplicate`) plus events along the way (`retried` per
//!   failed attempt, `deferred` per attempt the SMTP server refused for now, `gave_up` when
//!   such a refusal outlasted `notifier.deferred_give_up_secs`, `in_doubt` per attempt that may
//!   repeat a delivery, `reconciled` when the provider's log (the mail system's or the SMS
//!   provider's) showed it had been delivered);
//!   `citaflow_notification_send_seconds`; consumer lag from the platform
//!   (`citaflow_consumer_lag`).
//! - **A recipient refused for now is given up on in bounded time.** An SMTP 4xx reply other
//!   than `421` to `MAIL FROM`, `RCPT TO` or the message is about this message
//!   ([`channels::SendError::Deferred`]): retried until `notifier.deferred_give_up_secs` after
//!   the delivery's first attempt, then recorded `failed` (`gave up after N attempts over T s:
//!   …`, counted `gave_up`; each refused attempt `deferred`). Retries are in place, so one such
//!   recipient holds its partition at most that long (a deferral queue would hold nobody; not
//!   built). An unreachable server (refused connection, timeouts, `421`) holds everyone alike
//!   and is retried until it is back.
//! - **Shutdown** stops polling; a send in progress gets `notifier.drain_timeout_ms` to finish
//!   and be recorded, after which the record is left for redelivery.

pub mod channels;
pub mod contact;
pub mod deliveries;
pub mod phone;
pub mod redact;
pub mod templates;
pub mod welcome;
mod worker;

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use citaflow_platform::{Settings, db, kafka, ops, settings::Channel};
use citaflow_schemas::{AvroCodec, BookingEvent, RegistryClient};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    channels::{EmailChannel, SmsChannel},
    templates::Lang,
    worker::{Sender, Worker},
};

pub use channels::message_id;

pub struct Application {
    settings: Arc<Settings>,
    pool: PgPool,
    consumer: StreamConsumer<kafka::MeteredContext>,
    events: AvroCodec<BookingEvent>,
    sender: Sender,
    channel: Channel,
    ops_listener: TcpListener,
    ops_router: axum::Router,
    port: u16,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        let channel = settings.notifier.channel;
        Lang::parse(&settings.notifier.default_language)
            .context("notifier.default_language must be `es` or `en`")?;
        let pool = db::pool(&settings.database)?;
        let client_id = format!("notifier-{}", channel.as_str());
        let consumer = kafka::consumer(&settings.kafka, &client_id, &settings.notifier.group_id())?;
        consumer
            .subscribe(&[settings.topics.events.as_str()])
            .context("subscribing to the events topic")?;
        let registry = RegistryClient::new(
            &settings.registry.url,
            Duration::from_millis(settings.registry.timeout_ms),
        )?;
        let events = AvroCodec::new(registry, &settings.topics.events);
        let sender = match channel {
            Channel::Email => Sender::Email(EmailChannel::new(&settings.smtp)?),
            Channel::Sms => Sender::Sms(SmsChannel::new(&settings.sms)?),
        };
        let probe = kafka::producer(&settings.kafka, &client_id)?;
        let readiness = ops::Readiness::postgres_and_kafka(pool.clone(), probe);
        let (ops_listener, port) = ops::bind(&settings.http).await?;
        Ok(Self {
            settings,
            pool,
            consumer,
            events,
            sender,
            channel,
            ops_listener,
            ops_router: ops::router(readiness),
            port,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let ops_shutdown = shutdown.clone();
        let ops = tokio::spawn(async move {
            axum::serve(self.ops_listener, self.ops_router)
                .with_graceful_shutdown(async move { ops_shutdown.cancelled().await })
                .await
        });
        let drain = Duration::from_millis(self.settings.notifier.drain_timeout_ms);
        // The email channel also sends the welcome emails of patients who signed up.
        let welcome = match &self.sender {
            Sender::Email(email) => Some(tokio::spawn(welcome::run(
                self.pool.clone(),
                email.clone(),
                Lang::parse(&self.settings.notifier.default_language).unwrap_or(Lang::Es),
                shutdown.clone(),
            ))),
            Sender::Sms(_) => None,
        };
        let worker = Worker::new(&self.settings, self.pool, self.events, self.sender);
        tracing::info!(
            channel = self.channel.as_str(),
            port = self.port,
            "notifier started"
        );
        loop {
            let message = tokio::select! {
                _ = shutdown.cancelled() => break,
                message = self.consumer.recv() => message,
            };
            match message {
                Ok(message) => {
                    // Once stopping, the send in progress gets the drain deadline; past it the
                    // record is left for redelivery (its row says how far it got).
                    let handled = tokio::select! {
                        done = worker.handle_until_done(&message, &shutdown) => done,
                        _ = async { shutdown.cancelled().await; tokio::time::sleep(drain).await } => {
                            tracing::warn!("drain deadline passed with a notification in progress");
                            false
                        }
                    };
                    // The offset is stored only once the delivery log has the outcome.
                    if handled && let Err(err) = self.consumer.store_offset_from_message(&message) {
                        tracing::warn!(error = %err, "could not store offset");
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "consumer error");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        let _ = self.consumer.commit_consumer_state(CommitMode::Sync);
        shutdown.cancel();
        if let Some(welcome) = welcome {
            let _ = welcome.await;
        }
        let _ = ops.await;
        tracing::info!("notifier drained");
        Ok(())
    }
}
