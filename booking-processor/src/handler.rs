//! What happens to one record: decode, keep the doctor's order, decide, publish, or route
//! the record to a delay topic or the dead-letter topic.
//!
//! A record's offset is stored (by the caller) only when this returns `true`, i.e. once its
//! outcome is durable: decided in PostgreSQL and its events acknowledged by Kafka, or the
//! record itself acknowledged on a delay or dead-letter topic.
//!
//! Batches: of the records a partition's worker hands over together, each run of plain
//! commands (from the request topic, readable, their doctor parked behind nothing) is decided
//! in one transaction (`decide::decide_batch`) and its events published together; every
//! other record takes the one-record path at its place in the order. When a run cannot be
//! decided or published as one (a transient failure, a constraint violation), nothing of it is
//! kept and its records take the one-record path in order: each gets its own outcome, and
//! exactly the failing ones go to the delay topics.
//!
//! Per-doctor order across retries ("parking"): when a doctor's command goes to a delay topic,
//! the doctor is parked on this partition behind it. Later commands of that doctor are not
//! decided ahead of it: they follow it into the delay topics, one step behind, until the
//! command they wait for is processed. Other doctors are never held up. Parking is kept in
//! memory and rebuilt from the delay topics when a partition changes hands (`parking.rs`);
//! a parked record also names the command it follows (`citaflow-parked-behind`), which is
//! checked whatever the memory says.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use citaflow_schemas::{AvroCodec, BookingCommand, BookingEvent};
use rdkafka::{
    Message,
    message::{OwnedHeaders, OwnedMessage},
    producer::{FutureProducer, FutureRecord},
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::{
    command::Command,
    decide::{self, Rules},
    dispatch::{self, PartitionHandler},
    error::ProcessError,
    parking::Recovery,
    retry::{self, Next, Provenance, Role, Topology, header},
};

pub struct Handler {
    pub pool: PgPool,
    pub producer: FutureProducer,
    pub commands: AvroCodec<BookingCommand>,
    pub events: AvroCodec<BookingEvent>,
    pub topology: Topology,
    pub rules: Rules,
    /// The consumer group, which labels the batch metrics.
    group: String,
    /// (topic, partition, doctor) → the last command of that doctor sent to a delay topic.
    parked: Mutex<HashMap<(String, i32, Uuid), Uuid>>,
    recovery: Arc<Recovery>,
}

/// How long to back off while Kafka itself refuses a retry or dead-letter record.
const PRODUCE_BACKOFF_MAX: Duration = Duration::from_secs(5);

impl Handler {
    pub fn new(
        pool: PgPool,
        producer: FutureProducer,
        commands: AvroCodec<BookingCommand>,
        events: AvroCodec<BookingEvent>,
        topology: Topology,
        rules: Rules,
        recovery: Recovery,
    ) -> Self {
        Self {
            pool,
            producer,
            commands,
            events,
            topology,
            rules,
            group: recovery.group().to_owned(),
            parked: Mutex::default(),
            recovery: Arc::new(recovery),
        }
    }

    /// Rebuilds the parking of partition number `partition` from what waits in the delay
    /// topics: each doctor found there is parked, on the request topic, behind the latest of
    /// its commands (see `parking.rs`).
    pub async fn recover_parking(&self, partition: i32) {
        let recovery = self.recovery.clone();
        let scan = tokio::task::spawn_blocking(move || recovery.waiting(partition));
        let waiting = match scan.await {
            Ok(Ok(waiting)) => waiting,
            Ok(Err(err)) => {
                tracing::warn!(partition, error = %err, "parking not rebuilt from the delay topics");
                return;
            }
            Err(err) => {
                tracing::warn!(partition, error = %err, "parking scan failed");
                return;
            }
        };
        let mut latest: HashMap<Uuid, (i64, Uuid)> = HashMap::new();
        for record in &waiting {
            let Ok(decoded) = self.commands.decode(&record.payload).await else {
                continue;
            };
            let Ok(command) = Command::try_from(&decoded) else {
                continue;
            };
            let entry = latest
                .entry(command.doctor_id())
                .or_insert((record.timestamp_ms, command.command_id));
            if record.timestamp_ms >= entry.0 {
                *entry = (record.timestamp_ms, command.command_id);
            }
        }
        for (doctor, (_, command_id)) in &latest {
            self.park(
                (self.topology.requests.clone(), partition, *doctor),
                *command_id,
            );
        }
        if !latest.is_empty() {
            tracing::info!(
                partition,
                doctors = latest.len(),
                records = waiting.len(),
                "parking rebuilt from the delay topics"
            );
        }
    }

    async fn decode(&self, message: &OwnedMessage) -> Result<Command, ProcessError> {
        let record = self
            .commands
            .decode(message.payload().unwrap_or_default())
            .await?;
        Command::try_from(&record)
    }

    /// Handles a command record from the request topic or a delay topic.
    async fn handle_command(
        &self,
        message: &OwnedMessage,
        role: Role,
    ) -> Result<(), anyhow::Error> {
        let command = match self.decode(message).await {
            Ok(command) => command,
            Err(err) => return self.route_failure(message, role, &err, None).await,
        };
        let span = tracing::info_span!(
            "command",
            booking_id = %command.booking_id(),
            command_id = %command.command_id,
            kind = command.kind(),
            topic = message.topic(),
        );
        async {
            let park_key = (
                message.topic().to_owned(),
                message.partition(),
                command.doctor_id(),
            );
            let behind = retry::get(message.headers(), header::PARKED_BEHIND)
                .and_then(|id| Uuid::parse_str(id).ok());
            if let Some(ahead) = self.still_parked(&park_key, behind).await {
                metrics::counter!("citaflow_processor_parked_total").increment(1);
                tracing::info!(
                    waiting_for = %ahead,
                    "doctor parked behind an earlier command, following it"
                );
                let next = self.topology.after_parking(role);
                let why = format!("waiting for command {ahead}");
                let behind = ahead.to_string();
                self.forward(message, next, "parked", &why, Some(&behind), false)
                    .await?;
                self.park(park_key, command.command_id);
                return Ok(());
            }
            let started = std::time::Instant::now();
            match self.decide_and_publish(&command).await {
                Ok(()) => {
                    metrics::histogram!("citaflow_processor_decision_seconds")
                        .record(started.elapsed().as_secs_f64());
                    Ok(())
                }
                Err(err) => {
                    if err.is_transient() {
                        self.park(park_key, command.command_id);
                    }
                    self.route_failure(message, role, &err, Some(&command))
                        .await
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Whether this doctor still waits for an earlier command (that is not processed yet):
    /// the one this partition parked it behind, or the one the record itself follows.
    async fn still_parked(&self, key: &(String, i32, Uuid), behind: Option<Uuid>) -> Option<Uuid> {
        let remembered = self.parked.lock().expect("parked lock").get(key).copied();
        if let Some(ahead) = remembered {
            match decide::is_processed(&self.pool, ahead).await {
                Ok(true) => {
                    self.parked.lock().expect("parked lock").remove(key);
                }
                // Not processed, or the database cannot tell: keep the order.
                Ok(false) | Err(_) => return Some(ahead),
            }
        }
        let ahead = behind.filter(|b| Some(*b) != remembered)?;
        match decide::is_processed(&self.pool, ahead).await {
            Ok(true) => None,
            Ok(false) | Err(_) => Some(ahead),
        }
    }

    fn park(&self, key: (String, i32, Uuid), command_id: Uuid) {
        self.parked
            .lock()
            .expect("parked lock")
            .insert(key, command_id);
    }

    async fn decide_and_publish(&self, command: &Command) -> Result<(), ProcessError> {
        let events = decide::decide(&self.pool, self.rules, command).await?;
        self.publish(&events).await?;
        for event in &events {
            count_decision(event);
            tracing::info!(kind = ?event.kind, reason = event.reason_code.as_deref(), "decided");
        }
        Ok(())
    }

    /// A record that may be decided with its neighbours: a command from the request topic,
    /// readable, whose doctor waits for nothing on this partition.
    async fn batchable(&self, message: &OwnedMessage) -> Option<Command> {
        if self.topology.role(message.topic()) != Some(Role::Requests)
            || retry::get(message.headers(), header::PARKED_BEHIND).is_some()
        {
            return None;
        }
        let command = self.decode(message).await.ok()?;
        let key = (
            message.topic().to_owned(),
            message.partition(),
            command.doctor_id(),
        );
        if self.parked.lock().expect("parked lock").contains_key(&key) {
            return None;
        }
        Some(command)
    }

    /// Decides a run of batchable records (`messages`, their `commands`) in one transaction
    /// and publishes their events. Returns how many of them are done: all, or, when the run
    /// could not be decided or published as one, as many as the one-record path finished.
    async fn decide_run(
        &self,
        messages: &[OwnedMessage],
        commands: Vec<Command>,
        stop: &CancellationToken,
    ) -> usize {
        if commands.is_empty() {
            return 0;
        }
        metrics::histogram!("citaflow_processor_batch_size", "group" => self.group.clone())
            .record(commands.len() as f64);
        let started = std::time::Instant::now();
        match self.decide_and_publish_batch(&commands).await {
            Ok(()) => {
                metrics::histogram!("citaflow_processor_batch_seconds")
                    .record(started.elapsed().as_secs_f64());
                return messages.len();
            }
            Err(err) => {
                metrics::counter!("citaflow_processor_batch_fallbacks_total", "group" => self.group.clone())
                    .increment(1);
                tracing::warn!(
                    error = %err,
                    records = messages.len(),
                    "batch not decided as one; deciding its records one by one"
                );
            }
        }
        dispatch::handle_each(self, messages.iter().cloned(), stop).await
    }

    async fn decide_and_publish_batch(&self, commands: &[Command]) -> Result<(), ProcessError> {
        let outcomes = decide::decide_batch(&self.pool, self.rules, commands).await?;
        self.publish(outcomes.iter().flatten()).await?;
        for event in outcomes.iter().flatten() {
            count_decision(event);
            tracing::info!(
                booking_id = event.booking_id,
                command_id = event.command_id,
                kind = ?event.kind,
                reason = event.reason_code.as_deref(),
                "decided"
            );
        }
        Ok(())
    }

    /// Publishes events keyed by doctor, in order (the producer is idempotent, so a partition
    /// keeps the order they were sent in), and waits for every acknowledgement.
    async fn publish<'a>(
        &self,
        events: impl IntoIterator<Item = &'a BookingEvent>,
    ) -> Result<(), ProcessError> {
        let failed = |e: &dyn std::fmt::Display| {
            ProcessError::Transient(anyhow::anyhow!("publishing event: {e}"))
        };
        let mut deliveries = Vec::new();
        for event in events {
            let payload = self.events.encode(event).await?;
            let record = FutureRecord::to(&self.topology.events)
                .key(event.doctor_id.as_bytes())
                .payload(&payload);
            let delivery = self
                .producer
                .send_result(record)
                .map_err(|(e, _)| failed(&e))?;
            deliveries.push(delivery);
        }
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(failed(&e)),
                Err(canceled) => return Err(failed(&canceled)),
            }
        }
        Ok(())
    }

    /// Sends a failed record to its next stage: the next delay topic for a transient failure,
    /// the dead-letter topic for a permanent one or after the last delay.
    async fn route_failure(
        &self,
        message: &OwnedMessage,
        role: Role,
        error: &ProcessError,
        command: Option<&Command>,
    ) -> anyhow::Result<()> {
        let text = error.to_string();
        if !error.is_transient() {
            tracing::warn!(error = %text, "permanent failure, dead-lettering");
            let next = Next::DeadLetter {
                topic: self.topology.dlq.clone(),
            };
            return self
                .forward(message, next, "permanent", &text, None, true)
                .await;
        }
        let next = self.topology.after_failure(role);
        match &next {
            Next::Retry { topic, .. } => {
                metrics::counter!("citaflow_processor_retries_total", "topic" => topic.clone())
                    .increment(1);
                let booking_id = command.map(|c| c.booking_id().to_string());
                tracing::warn!(
                    error = %text,
                    retry_topic = topic,
                    booking_id,
                    "transient failure, retrying later"
                );
                self.forward(message, next, "transient", &text, None, true)
                    .await
            }
            Next::DeadLetter { .. } => {
                tracing::warn!(error = %text, "retries exhausted, dead-lettering");
                self.forward(message, next, "exhausted", &text, None, true)
                    .await
            }
        }
    }

    /// Copies the record (same key and payload) to `next` with its provenance headers.
    async fn forward(
        &self,
        message: &OwnedMessage,
        next: Next,
        reason: &str,
        error: &str,
        parked_behind: Option<&str>,
        counts_as_attempt: bool,
    ) -> anyhow::Result<()> {
        let provenance = Provenance::of(
            message.headers(),
            message.topic(),
            message.partition(),
            message.offset(),
        );
        let attempt = provenance.attempt + i64::from(counts_as_attempt);
        let (topic, due_at) = match &next {
            Next::Retry {
                topic, delay_ms, ..
            } => (topic.as_str(), retry::now_ms() + *delay_ms as i64),
            Next::DeadLetter { topic } => (topic.as_str(), retry::now_ms()),
        };
        let headers: OwnedHeaders =
            provenance.headers(attempt, due_at, reason, error, parked_behind);
        let mut record = FutureRecord::to(topic).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        self.producer
            .send(record, Duration::from_secs(5))
            .await
            .map_err(|(e, _)| anyhow::anyhow!("producing to {topic}: {e}"))?;
        if matches!(next, Next::DeadLetter { .. }) {
            metrics::counter!("citaflow_processor_dead_letters_total", "reason" => reason.to_owned())
                .increment(1);
        }
        Ok(())
    }

    /// Closes a dead-lettered command: its booking ends `rejected` (`retries_exhausted`) once
    /// the database is reachable, and the outcome is published like any other.
    async fn finalize_dead_letter(&self, message: &OwnedMessage) -> Result<(), ProcessError> {
        let reason = retry::get(message.headers(), header::REASON).unwrap_or("permanent");
        let command = match self.decode(message).await {
            Ok(command) => command,
            // Unreadable records have no booking to close; they stay in the topic for operators.
            Err(err) if !err.is_transient() => return Ok(()),
            Err(err) => return Err(err),
        };
        let span = tracing::info_span!(
            "dead_letter",
            booking_id = %command.booking_id(),
            command_id = %command.command_id
        );
        async {
            let events = decide::close_dead_letter(&self.pool, &command, reason).await?;
            self.publish(&events).await?;
            for event in &events {
                metrics::counter!("citaflow_processor_decisions_total", "outcome" => "rejected")
                    .increment(1);
                tracing::warn!(
                    kind = ?event.kind,
                    reason = event.reason_code.as_deref(),
                    "dead-lettered command closed"
                );
            }
            Ok(())
        }
        .instrument(span)
        .await
    }
}

fn count_decision(event: &BookingEvent) {
    let outcome = format!("{:?}", event.kind).to_lowercase();
    metrics::counter!("citaflow_processor_decisions_total", "outcome" => outcome).increment(1);
}

impl PartitionHandler for Handler {
    async fn assigned(&self, partition: i32) {
        self.recover_parking(partition).await;
    }

    async fn handle_batch(&self, messages: Vec<OwnedMessage>, stop: &CancellationToken) -> usize {
        let mut done = 0;
        // The run of batchable records being gathered: messages[start..i], their commands.
        let mut start = 0;
        let mut run = Vec::new();
        for (i, message) in messages.iter().enumerate() {
            if let Some(command) = self.batchable(message).await {
                run.push(command);
                continue;
            }
            let gathered = run.len();
            let finished = self
                .decide_run(&messages[start..i], std::mem::take(&mut run), stop)
                .await;
            done += finished;
            if finished < gathered || !self.handle(message.clone(), stop).await {
                return done;
            }
            done += 1;
            start = i + 1;
        }
        done + self.decide_run(&messages[start..], run, stop).await
    }

    async fn handle(&self, message: OwnedMessage, stop: &CancellationToken) -> bool {
        let Some(role) = self.topology.role(message.topic()) else {
            tracing::error!(
                topic = message.topic(),
                "record from an unexpected topic ignored"
            );
            return true;
        };
        let mut backoff = Duration::from_millis(200);
        loop {
            let result = match role {
                Role::DeadLetter => self
                    .finalize_dead_letter(&message)
                    .await
                    .map_err(anyhow::Error::from),
                Role::Requests | Role::Retry(_) => self.handle_command(&message, role).await,
            };
            match result {
                Ok(()) => return true,
                Err(err) => {
                    // Only Kafka refusing our retry/dead-letter record, or the database being
                    // down while closing a dead letter, lands here: wait on this partition.
                    tracing::warn!(
                        error = %err,
                        topic = message.topic(),
                        partition = message.partition(),
                        offset = message.offset(),
                        "cannot move on yet, retrying"
                    );
                    tokio::select! {
                        _ = stop.cancelled() => return false,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(PRODUCE_BACKOFF_MAX);
                }
            }
        }
    }
}
