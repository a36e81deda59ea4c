//! notifier: one consumer group per channel (`notifier-email`, `notifier-sms`), each reading
//! every event of `booking.events` and sending each notification once.
//!
//! Once per channel per event: a row in `notification_deliveries` (unique on event id and
//! channel) is claimed before sending and closed after; the event's offset is stored only
//! then. A redelivered event whose row is closed is skipped. Transient failures are retried
//! with backoff on the spot (this channel waits; the other channel's group does not).

pub mod channels;
pub mod contact;
pub mod templates;

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use chrono::Utc;
use citaflow_platform::{Settings, db, kafka, ops, settings::Channel};
use citaflow_schemas::{AvroCodec, BookingEvent, RegistryClient};
use rdkafka::{
    Message,
    consumer::{CommitMode, Consumer, StreamConsumer},
    message::BorrowedMessage,
};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::{
    channels::{EmailChannel, SendError, SmsChannel},
    templates::Lang,
};

/// The configured delivery channel.
#[derive(Clone)]
enum Sender {
    Email(EmailChannel),
    Sms(SmsChannel),
}

/// What happened to one event on this channel.
#[derive(Debug, PartialEq, Eq)]
enum Delivery {
    Sent,
    AlreadyHandled,
    Skipped(&'static str),
    Failed(String),
}

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
        let readiness = {
            let pool = pool.clone();
            let probe = kafka::producer(&settings.kafka, &client_id)?;
            ops::Readiness::default()
                .with("postgres", move || {
                    let pool = pool.clone();
                    async move { db::is_ready(&pool).await }
                })
                .with("kafka", move || {
                    let probe = probe.clone();
                    async move { kafka::is_ready(&probe, Duration::from_secs(2)).await }
                })
        };
        let address = format!("{}:{}", settings.http.host, settings.http.port);
        let ops_listener =
            TcpListener::bind(&address).await.with_context(|| format!("binding {address}"))?;
        let port = ops_listener.local_addr()?.port();
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
        let worker = Worker {
            settings: self.settings,
            pool: self.pool,
            events: self.events,
            sender: self.sender,
            channel: self.channel,
        };
        tracing::info!(channel = self.channel.as_str(), port = self.port, "notifier started");
        loop {
            let message = tokio::select! {
                _ = shutdown.cancelled() => break,
                message = self.consumer.recv() => message,
            };
            match message {
                Ok(message) => {
                    if worker.handle_until_done(&message, &shutdown).await {
                        if let Err(err) = self.consumer.store_offset_from_message(&message) {
                            tracing::warn!(error = %err, "could not store offset");
                        }
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
        let _ = ops.await;
        tracing::info!("notifier drained");
        Ok(())
    }
}

struct Worker {
    settings: Arc<Settings>,
    pool: PgPool,
    events: AvroCodec<BookingEvent>,
    sender: Sender,
    channel: Channel,
}

impl Worker {
    /// Handles one record, retrying transient failures with backoff. Returns whether the
    /// offset may be stored (false only when stopping mid-retry: the record is redelivered).
    async fn handle_until_done(&self, message: &BorrowedMessage<'_>, shutdown: &CancellationToken) -> bool {
        let channel = self.channel.as_str();
        let mut backoff = Duration::from_millis(500);
        loop {
            match self.handle(message).await {
                Ok(delivery) => {
                    let outcome = match &delivery {
                        Delivery::Sent => "sent",
                        Delivery::AlreadyHandled => "duplicate",
                        Delivery::Skipped(_) => "skipped",
                        Delivery::Failed(_) => "failed",
                    };
                    metrics::counter!("citaflow_notifications_total", "channel" => channel, "outcome" => outcome).increment(1);
                    return true;
                }
                Err(err) => {
                    metrics::counter!("citaflow_notifications_total", "channel" => channel, "outcome" => "retried").increment(1);
                    tracing::warn!(error = %err, channel, "notification failed, will retry");
                    tokio::select! {
                        _ = shutdown.cancelled() => return false,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// `Err` means "try again later"; everything final is `Ok`.
    async fn handle(&self, message: &BorrowedMessage<'_>) -> anyhow::Result<Delivery> {
        let event = match self.events.decode(message.payload().unwrap_or_default()).await {
            Ok(event) => event,
            Err(err) if err.is_transient() => return Err(err.into()),
            Err(err) => {
                tracing::error!(error = %err, offset = message.offset(), "undecodable event skipped");
                return Ok(Delivery::Skipped("undecodable"));
            }
        };
        let (Ok(event_id), Ok(booking_id), Ok(patient_id), Ok(center_id), Ok(doctor_id)) = (
            Uuid::parse_str(&event.event_id),
            Uuid::parse_str(&event.booking_id),
            Uuid::parse_str(&event.patient_id),
            Uuid::parse_str(&event.center_id),
            Uuid::parse_str(&event.doctor_id),
        ) else {
            tracing::error!(offset = message.offset(), "event with invalid ids skipped");
            return Ok(Delivery::Skipped("invalid_ids"));
        };
        let span = tracing::info_span!("notify", booking_id = %booking_id, event_id = %event_id, channel = self.channel.as_str());
        async {
            if !self.claim(event_id, booking_id).await? {
                return Ok(Delivery::AlreadyHandled);
            }
            let default_lang = Lang::parse(&self.settings.notifier.default_language).unwrap_or(Lang::Es);
            let recipient =
                contact::resolve(&self.pool, patient_id, center_id, doctor_id, default_lang).await?;
            let delivery = match recipient {
                None => Delivery::Skipped("patient_unknown"),
                Some(recipient) => {
                    let rendered = templates::render(&event, &recipient.context, Utc::now());
                    let result = match (&self.sender, &recipient.email, &recipient.phone) {
                        (Sender::Email(email), Some(address), _) => {
                            Some(email.send(address, &recipient.context.patient_name, &rendered).await)
                        }
                        (Sender::Sms(sms), _, Some(phone)) => Some(sms.send(phone, &rendered).await),
                        _ => None,
                    };
                    match result {
                        None => Delivery::Skipped("no_contact_for_channel"),
                        Some(Ok(())) => Delivery::Sent,
                        Some(Err(SendError::Permanent(reason))) => Delivery::Failed(reason),
                        Some(Err(SendError::Transient(reason))) => anyhow::bail!(reason),
                    }
                }
            };
            self.close(event_id, &delivery).await?;
            tracing::info!(outcome = ?delivery, "notification handled");
            Ok(delivery)
        }
        .instrument(span)
        .await
    }

    /// Claims the (event, channel) row. `false` when it is already closed.
    async fn claim(&self, event_id: Uuid, booking_id: Uuid) -> anyhow::Result<bool> {
        let row = sqlx::query(
            "INSERT INTO notification_deliveries (event_id, channel, booking_id, status, attempts)
             VALUES ($1, $2, $3, 'sending', 1)
             ON CONFLICT (event_id, channel) DO UPDATE
                SET attempts = notification_deliveries.attempts + 1, updated_at = now()
              WHERE notification_deliveries.status = 'sending'
             RETURNING attempts",
        )
        .bind(event_id)
        .bind(self.channel.as_str())
        .bind(booking_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn close(&self, event_id: Uuid, delivery: &Delivery) -> anyhow::Result<()> {
        let (status, detail) = match delivery {
            Delivery::Sent => ("sent", None),
            Delivery::Skipped(why) => ("skipped", Some(why.to_string())),
            Delivery::Failed(why) => ("failed", Some(why.clone())),
            Delivery::AlreadyHandled => return Ok(()),
        };
        sqlx::query(
            "UPDATE notification_deliveries SET status = $3, detail = $4, updated_at = now()
              WHERE event_id = $1 AND channel = $2",
        )
        .bind(event_id)
        .bind(self.channel.as_str())
        .bind(status)
        .bind(detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
