//! Parking that survives a restart or a rebalance.
//!
//! The handler keeps, in memory, which doctor waits behind which command in a delay topic
//! (see `handler.rs`). A new owner of a partition — this process after a restart, or another
//! replica after a rebalance — starts with an empty memory, so it rebuilds it from Kafka before
//! it hands the partition's first record to a worker: the records of every delay topic's
//! partition with the same number (a doctor's key maps to the same partition number in every
//! topic) that the group has not consumed yet are read, and each doctor found there is parked
//! behind the latest of its commands. Records in delay topics also carry the command they
//! follow (`citaflow-parked-behind`), which the handler checks on its own.
//!
//! The scan uses the group's committed offsets, never commits anything (it does not join the
//! group) and is bounded in time; when Kafka cannot answer, the partition starts with what the
//! records' own headers say.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::Context;
use citaflow_platform::settings::KafkaSettings;
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
};

/// A record waiting in a delay topic.
#[derive(Debug, Clone)]
pub struct Delayed {
    pub topic: String,
    pub payload: Vec<u8>,
    /// Produce time, epoch milliseconds (0 when the broker gave none).
    pub timestamp_ms: i64,
}

/// Reads what waits in the delay topics for one partition number.
pub struct Recovery {
    config: ClientConfig,
    delay_topics: Vec<String>,
    timeout: Duration,
    scanner: Mutex<Option<BaseConsumer>>,
}

impl Recovery {
    pub fn new(settings: &KafkaSettings, group: &str, delay_topics: Vec<String>) -> Self {
        let mut config =
            citaflow_platform::kafka::consumer_config(settings, "booking-processor-parking", group);
        // Reads the group's committed offsets but never moves them.
        config
            .set("enable.auto.commit", "false")
            .set("statistics.interval.ms", "0");
        Self {
            config,
            delay_topics,
            timeout: Duration::from_secs(5),
            scanner: Mutex::new(None),
        }
    }

    /// The consumer group whose offsets are read.
    pub fn group(&self) -> &str {
        self.config.get("group.id").unwrap_or_default()
    }

    /// The records the group has not consumed yet in partition `partition` of every delay
    /// topic, in each topic's offset order. Blocking; bounded by the timeout.
    pub fn waiting(&self, partition: i32) -> anyhow::Result<Vec<Delayed>> {
        let mut scanner = self.scanner.lock().expect("scanner lock");
        if scanner.is_none() {
            *scanner = Some(
                self.config
                    .create()
                    .context("creating the parking scanner")?,
            );
        }
        let consumer = scanner.as_ref().expect("just created");
        let deadline = Instant::now() + self.timeout;
        let mut wanted = TopicPartitionList::new();
        for topic in &self.delay_topics {
            wanted.add_partition(topic, partition);
        }
        let committed = consumer
            .committed_offsets(wanted, self.timeout)
            .context("reading committed offsets")?;
        let mut assignment = TopicPartitionList::new();
        let mut ends: HashMap<String, i64> = HashMap::new();
        for element in committed.elements() {
            let (low, high) = consumer
                .fetch_watermarks(element.topic(), partition, self.timeout)
                .context("reading watermarks")?;
            let start = match element.offset() {
                Offset::Offset(offset) => offset.max(low),
                _ => low,
            };
            if start < high {
                assignment
                    .add_partition_offset(element.topic(), partition, Offset::Offset(start))
                    .context("assigning")?;
                ends.insert(element.topic().to_owned(), high);
            }
        }
        let mut found = Vec::new();
        if ends.is_empty() {
            return Ok(found);
        }
        consumer.assign(&assignment).context("assigning")?;
        while !ends.is_empty() && Instant::now() < deadline {
            let Some(result) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let message = result.context("reading a delay topic")?;
            let topic = message.topic().to_owned();
            found.push(Delayed {
                topic: topic.clone(),
                payload: message.payload().unwrap_or_default().to_vec(),
                timestamp_ms: message.timestamp().to_millis().unwrap_or(0),
            });
            if ends
                .get(&topic)
                .is_some_and(|end| message.offset() + 1 >= *end)
            {
                ends.remove(&topic);
            }
        }
        let _ = consumer.unassign();
        if !ends.is_empty() {
            anyhow::bail!(
                "timed out reading the delay topics ({} not read to the end)",
                ends.len()
            );
        }
        Ok(found)
    }
}
