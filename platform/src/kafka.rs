//! Kafka clients configured the same way everywhere: idempotent producers with `acks=all`,
//! consumers that commit only offsets stored explicitly after the work is done.

use std::time::Duration;

use anyhow::Context;
use rdkafka::{
    ClientConfig, ClientContext,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::{ConsumerContext, StreamConsumer},
    error::RDKafkaErrorCode,
    producer::{FutureProducer, Producer},
    statistics::Statistics,
};
use secrecy::ExposeSecret;

use crate::settings::KafkaSettings;

/// Connection and security options common to every client.
pub fn base_config(settings: &KafkaSettings, client_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.bootstrap_servers)
        .set("client.id", client_id)
        .set("security.protocol", &settings.security_protocol)
        // TCP_NODELAY, as the Java client sets it: small requests go out when written instead
        // of waiting behind an unacknowledged one (Nagle's algorithm).
        .set("socket.nagle.disable", "true");
    if let Some(mechanism) = &settings.sasl_mechanism {
        config.set("sasl.mechanism", mechanism);
    }
    if let Some(username) = &settings.sasl_username {
        config.set("sasl.username", username);
    }
    if let Some(password) = &settings.sasl_password {
        config.set("sasl.password", password.expose_secret());
    }
    config
}

/// An idempotent producer (`acks=all`, no duplicates or reordering on internal retries).
pub fn producer(settings: &KafkaSettings, client_id: &str) -> anyhow::Result<FutureProducer> {
    producer_with_linger(settings, client_id, 2)
}

/// [`producer`] with its own `linger.ms`: 0 where a caller waits for each acknowledgement
/// (the API answers only once its command is acknowledged), more where batching pays.
pub fn producer_with_linger(
    settings: &KafkaSettings,
    client_id: &str,
    linger_ms: u32,
) -> anyhow::Result<FutureProducer> {
    base_config(settings, client_id)
        .set("enable.idempotence", "true")
        // The Java client's partitioner, so any producer keyed by doctor id agrees with us.
        .set("partitioner", "murmur2_random")
        .set("acks", "all")
        .set("linger.ms", linger_ms.to_string())
        .set("compression.type", "lz4")
        .set(
            "message.timeout.ms",
            settings.message_timeout_ms.to_string(),
        )
        .create()
        .context("creating Kafka producer")
}

/// A consumer in `group_id` whose offsets are committed in the background, but only once the
/// application has stored them (`enable.auto.offset.store=false`): a message is never marked
/// consumed before its work is durable.
pub fn consumer(
    settings: &KafkaSettings,
    client_id: &str,
    group_id: &str,
) -> anyhow::Result<StreamConsumer<MeteredContext>> {
    consumer_config(settings, client_id, group_id)
        .create_with_context(MeteredContext {
            group: group_id.to_owned(),
        })
        .context("creating Kafka consumer")
}

/// A consumer context that exports consumer lag as `citaflow_consumer_lag`.
pub struct MeteredContext {
    pub group: String,
}

impl ClientContext for MeteredContext {
    fn stats(&self, statistics: Statistics) {
        export_lag(&self.group, statistics);
    }
}

impl ConsumerContext for MeteredContext {}

/// Sets `citaflow_consumer_lag{group, topic, partition}` from librdkafka's statistics.
pub fn export_lag(group: &str, statistics: Statistics) {
    for (topic, t) in statistics.topics {
        for (partition, p) in t.partitions {
            if partition >= 0 && p.consumer_lag >= 0 {
                metrics::gauge!("citaflow_consumer_lag", "group" => group.to_owned(), "topic" => topic.clone(), "partition" => partition.to_string())
                    .set(p.consumer_lag as f64);
            }
        }
    }
}

/// The configuration behind [`consumer`], for consumers with their own context.
pub fn consumer_config(settings: &KafkaSettings, client_id: &str, group_id: &str) -> ClientConfig {
    let mut config = base_config(settings, client_id);
    config
        .set("group.id", group_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .set("max.poll.interval.ms", "300000")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("statistics.interval.ms", "5000");
    config
}

/// Creates the topics that do not exist yet (existing ones are left as they are).
pub async fn ensure_topics(settings: &KafkaSettings, topics: &[(&str, i32)]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = base_config(settings, "citaflow-admin")
        .create()
        .context("creating Kafka admin client")?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .context("creating topics")?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("creating topic {topic}: {code}"),
        }
    }
    Ok(())
}

/// Whether the cluster answers a metadata request within `timeout`.
pub async fn is_ready(producer: &FutureProducer, timeout: Duration) -> bool {
    let client = producer.clone();
    tokio::task::spawn_blocking(move || client.client().fetch_metadata(None, timeout).is_ok())
        .await
        .unwrap_or(false)
}
