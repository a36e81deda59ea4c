//! `citaflow dlq`: look at and re-drive the dead-letter topic.
//!
//! These are operator commands: they talk to Kafka and the schema registry directly, with the
//! same `CITAFLOW__KAFKA__*`, `CITAFLOW__REGISTRY__*` and `CITAFLOW__TOPICS__*` settings the
//! services use.

use std::time::Duration;

use anyhow::{Context, bail};
use citaflow_platform::{Settings, kafka};
use citaflow_schemas::{AvroCodec, BookingCommand, RegistryClient};
use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, CommitMode, Consumer},
    message::{Header, Headers, OwnedHeaders, OwnedMessage},
    producer::{FutureProducer, FutureRecord},
};
use serde::Serialize;
use uuid::Uuid;

/// One dead letter, as listed.
#[derive(Debug, Serialize)]
pub struct DeadLetter {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub reason: Option<String>,
    pub attempt: Option<String>,
    pub original_topic: Option<String>,
    pub original_partition: Option<String>,
    pub original_offset: Option<String>,
    pub error: Option<String>,
    pub command_id: Option<String>,
    pub booking_id: Option<String>,
    pub kind: Option<String>,
}

fn header(message: &OwnedMessage, key: &str) -> Option<String> {
    message
        .headers()?
        .iter()
        .filter(|h| h.key == key)
        .last()
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

fn codec(settings: &Settings) -> anyhow::Result<AvroCodec<BookingCommand>> {
    let registry = RegistryClient::new(
        &settings.registry.url,
        Duration::from_millis(settings.registry.timeout_ms),
    )?;
    Ok(AvroCodec::new(registry, &settings.topics.requests))
}

/// Reads `topic` from `start` (per partition) to its current end.
fn read_to_end(
    consumer: &BaseConsumer,
    topic: &str,
    start: impl Fn(i32) -> Offset,
) -> anyhow::Result<Vec<OwnedMessage>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .context("reading topic metadata")?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    if partitions.is_empty() {
        bail!("topic {topic} does not exist");
    }
    let mut assignment = TopicPartitionList::new();
    let mut ends = std::collections::HashMap::new();
    for partition in &partitions {
        let (low, high) = consumer.fetch_watermarks(topic, *partition, Duration::from_secs(10))?;
        let from = match start(*partition) {
            Offset::Offset(o) => o.max(low),
            _ => low,
        };
        if from < high {
            assignment.add_partition_offset(topic, *partition, Offset::Offset(from))?;
            ends.insert(*partition, high);
        }
    }
    if ends.is_empty() {
        return Ok(Vec::new());
    }
    consumer.assign(&assignment)?;
    let mut records = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !ends.is_empty() {
        if std::time::Instant::now() > deadline {
            bail!("timed out reading {topic}");
        }
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => {
                let message = message.detach();
                if let Some(end) = ends.get(&message.partition())
                    && message.offset() + 1 >= *end
                {
                    ends.remove(&message.partition());
                }
                records.push(message);
            }
            Some(Err(err)) => bail!("reading {topic}: {err}"),
            None => {}
        }
    }
    records.sort_by_key(|m| (m.partition(), m.offset()));
    Ok(records)
}

/// Every record in the dead-letter topic.
pub async fn list(settings: &Settings) -> anyhow::Result<Vec<DeadLetter>> {
    let consumer: BaseConsumer = kafka::base_config(&settings.kafka, "citaflow-cli")
        .set("group.id", format!("citaflow-dlq-list-{}", Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .create()?;
    let topic = settings.topics.dlq.clone();
    let records =
        tokio::task::block_in_place(|| read_to_end(&consumer, &topic, |_| Offset::Beginning))?;
    let codec = codec(settings)?;
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        let command = codec
            .decode(record.payload().unwrap_or_default())
            .await
            .ok();
        out.push(DeadLetter {
            partition: record.partition(),
            offset: record.offset(),
            key: record
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            reason: header(&record, "citaflow-reason"),
            attempt: header(&record, "citaflow-attempt"),
            original_topic: header(&record, "citaflow-original-topic"),
            original_partition: header(&record, "citaflow-original-partition"),
            original_offset: header(&record, "citaflow-original-offset"),
            error: header(&record, "citaflow-error"),
            command_id: command.as_ref().map(|c| c.command_id.clone()),
            booking_id: command.as_ref().map(|c| c.booking_id.clone()),
            kind: command
                .as_ref()
                .map(|c| format!("{:?}", c.kind).to_uppercase()),
        });
    }
    Ok(out)
}

/// What a replay did.
#[derive(Debug, Default, Serialize)]
pub struct ReplayReport {
    pub replayed: usize,
    pub skipped_unreadable: usize,
}

/// Re-drives the dead letters not replayed yet (tracked by the consumer group `group`): each
/// readable command is sent again to the request topic as a new command (new command id,
/// header `citaflow-replay-of`), so it is decided afresh. Unreadable records are skipped.
pub async fn replay(
    settings: &Settings,
    group: &str,
    dry_run: bool,
) -> anyhow::Result<ReplayReport> {
    let consumer: BaseConsumer = kafka::base_config(&settings.kafka, "citaflow-cli")
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let topic = settings.topics.dlq.clone();
    let committed = {
        let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
        let mut list = TopicPartitionList::new();
        for t in metadata.topics().iter().filter(|t| t.name() == topic) {
            for p in t.partitions() {
                list.add_partition(&topic, p.id());
            }
        }
        consumer.committed_offsets(list, Duration::from_secs(10))?
    };
    let start = |partition: i32| {
        committed
            .find_partition(&topic, partition)
            .map(|e| e.offset())
            .filter(|o| matches!(o, Offset::Offset(_)))
            .unwrap_or(Offset::Beginning)
    };
    let records = tokio::task::block_in_place(|| read_to_end(&consumer, &topic, start))?;
    let codec = codec(settings)?;
    let producer: FutureProducer = kafka::producer(&settings.kafka, "citaflow-cli")?;
    let mut report = ReplayReport::default();
    let mut progress: std::collections::BTreeMap<i32, i64> = std::collections::BTreeMap::new();
    for record in &records {
        match codec.decode(record.payload().unwrap_or_default()).await {
            Ok(mut command) => {
                let replay_of = command.command_id.clone();
                command.command_id = Uuid::new_v4().to_string();
                if !dry_run {
                    let payload = codec.encode(&command).await?;
                    let target = header(record, "citaflow-original-topic")
                        .unwrap_or_else(|| settings.topics.requests.clone());
                    let headers = OwnedHeaders::new().insert(Header {
                        key: "citaflow-replay-of",
                        value: Some(&replay_of),
                    });
                    producer
                        .send(
                            FutureRecord::to(&target)
                                .key(command.doctor_id.as_bytes())
                                .payload(&payload)
                                .headers(headers),
                            Duration::from_secs(10),
                        )
                        .await
                        .map_err(|(e, _)| anyhow::anyhow!("re-driving {replay_of}: {e}"))?;
                }
                report.replayed += 1;
            }
            Err(err) if err.is_transient() => {
                return Err(err).context("schema registry unavailable");
            }
            Err(_) => report.skipped_unreadable += 1,
        }
        progress.insert(record.partition(), record.offset() + 1);
    }
    if !dry_run && !progress.is_empty() {
        // Only what was sent is marked replayed.
        let mut offsets = TopicPartitionList::new();
        for (partition, next) in progress {
            offsets.add_partition_offset(&topic, partition, Offset::Offset(next))?;
        }
        consumer
            .commit(&offsets, CommitMode::Sync)
            .context("recording replay progress")?;
    }
    Ok(report)
}
