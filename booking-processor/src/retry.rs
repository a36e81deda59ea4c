//! Where a record goes after a failure, and the provenance headers it carries there.
//!
//! Topics: the request topic, one delay topic per configured delay (shortest first) and the
//! dead-letter topic. A transient failure moves a command one delay topic further; after the
//! last one it goes to the dead-letter topic. Records keep their key (the doctor id), so a
//! doctor's records stay on the same partition number in every topic.

use std::time::{SystemTime, UNIX_EPOCH};

use citaflow_platform::settings::TopicSettings;
use rdkafka::message::{Header, Headers, OwnedHeaders};

/// Header names (values are UTF-8 text).
pub mod header {
    /// Failed attempts so far.
    pub const ATTEMPT: &str = "citaflow-attempt";
    /// Epoch milliseconds before which the record must not be processed.
    pub const DUE_AT: &str = "citaflow-due-at";
    pub const ORIGINAL_TOPIC: &str = "citaflow-original-topic";
    pub const ORIGINAL_PARTITION: &str = "citaflow-original-partition";
    pub const ORIGINAL_OFFSET: &str = "citaflow-original-offset";
    pub const FIRST_FAILED_AT: &str = "citaflow-first-failed-at";
    /// The last error.
    pub const ERROR: &str = "citaflow-error";
    /// `transient`, `permanent`, `exhausted` or `parked`.
    pub const REASON: &str = "citaflow-reason";
    /// Set on records moved only to stay behind an earlier command of the same doctor.
    pub const PARKED_BEHIND: &str = "citaflow-parked-behind";
    /// Set by `citaflow dlq replay` on re-driven records.
    pub const REPLAY_OF: &str = "citaflow-replay-of";
}

/// What a topic is to the processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Requests,
    /// Delay topic by index (0 = shortest delay).
    Retry(usize),
    DeadLetter,
}

/// The processor's topics.
#[derive(Debug, Clone)]
pub struct Topology {
    pub requests: String,
    pub retries: Vec<(String, u64)>,
    pub dlq: String,
    pub events: String,
}

/// Where a failed or parked record goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Retry {
        index: usize,
        topic: String,
        delay_ms: u64,
    },
    DeadLetter {
        topic: String,
    },
}

impl Topology {
    pub fn new(topics: &TopicSettings) -> Self {
        Self {
            requests: topics.requests.clone(),
            retries: topics
                .retry_topics()
                .into_iter()
                .zip(topics.retry_delays_ms.iter().copied())
                .collect(),
            dlq: topics.dlq.clone(),
            events: topics.events.clone(),
        }
    }

    /// Topics the processor consumes.
    pub fn consumed(&self) -> Vec<&str> {
        let mut topics = vec![self.requests.as_str()];
        topics.extend(self.retries.iter().map(|(t, _)| t.as_str()));
        topics.push(self.dlq.as_str());
        topics
    }

    pub fn role(&self, topic: &str) -> Option<Role> {
        if topic == self.requests {
            Some(Role::Requests)
        } else if topic == self.dlq {
            Some(Role::DeadLetter)
        } else {
            self.retries
                .iter()
                .position(|(t, _)| t == topic)
                .map(Role::Retry)
        }
    }

    /// The stage after a failed attempt in `role`.
    pub fn after_failure(&self, role: Role) -> Next {
        let index = match role {
            Role::Requests => 0,
            Role::Retry(i) => i + 1,
            Role::DeadLetter => usize::MAX,
        };
        self.retry_or_dlq(index)
    }

    /// The stage for a record that must stay behind an earlier one of its doctor: one step
    /// further, but never into the dead-letter topic (it was not attempted): at the last delay
    /// topic it waits there again.
    pub fn after_parking(&self, role: Role) -> Next {
        let index = match role {
            Role::Requests => 0,
            Role::Retry(i) => (i + 1).min(self.retries.len().saturating_sub(1)),
            Role::DeadLetter => usize::MAX,
        };
        self.retry_or_dlq(index)
    }

    fn retry_or_dlq(&self, index: usize) -> Next {
        match self.retries.get(index) {
            Some((topic, delay_ms)) => Next::Retry {
                index,
                topic: topic.clone(),
                delay_ms: *delay_ms,
            },
            None => Next::DeadLetter {
                topic: self.dlq.clone(),
            },
        }
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The value of header `key` as text.
pub fn get<'a>(headers: Option<&'a impl Headers>, key: &str) -> Option<&'a str> {
    let headers = headers?;
    headers
        .iter()
        .filter(|h| h.key == key)
        .last()
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

pub fn get_i64(headers: Option<&impl Headers>, key: &str) -> Option<i64> {
    get(headers, key).and_then(|v| v.parse().ok())
}

/// Where a record came from originally and how often it failed: the provenance copied onto
/// every retry and dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub original_topic: String,
    pub original_partition: i32,
    pub original_offset: i64,
    pub attempt: i64,
    pub first_failed_at: i64,
    pub replay_of: Option<String>,
}

impl Provenance {
    /// Reads the provenance from a record's headers, or starts it at this record.
    pub fn of(headers: Option<&impl Headers>, topic: &str, partition: i32, offset: i64) -> Self {
        match get(headers, header::ORIGINAL_TOPIC) {
            Some(original) => Provenance {
                original_topic: original.to_owned(),
                original_partition: get_i64(headers, header::ORIGINAL_PARTITION).unwrap_or(-1)
                    as i32,
                original_offset: get_i64(headers, header::ORIGINAL_OFFSET).unwrap_or(-1),
                attempt: get_i64(headers, header::ATTEMPT).unwrap_or(0),
                first_failed_at: get_i64(headers, header::FIRST_FAILED_AT).unwrap_or_else(now_ms),
                replay_of: get(headers, header::REPLAY_OF).map(str::to_owned),
            },
            None => Provenance {
                original_topic: topic.to_owned(),
                original_partition: partition,
                original_offset: offset,
                attempt: 0,
                first_failed_at: now_ms(),
                replay_of: get(headers, header::REPLAY_OF).map(str::to_owned),
            },
        }
    }

    /// Headers for the next stage.
    pub fn headers(
        &self,
        attempt: i64,
        due_at: i64,
        reason: &str,
        error: &str,
        parked_behind: Option<&str>,
    ) -> OwnedHeaders {
        let values = [
            (header::ATTEMPT, attempt.to_string()),
            (header::DUE_AT, due_at.to_string()),
            (header::ORIGINAL_TOPIC, self.original_topic.clone()),
            (
                header::ORIGINAL_PARTITION,
                self.original_partition.to_string(),
            ),
            (header::ORIGINAL_OFFSET, self.original_offset.to_string()),
            (header::FIRST_FAILED_AT, self.first_failed_at.to_string()),
            (header::REASON, reason.to_owned()),
            (header::ERROR, error.chars().take(1000).collect()),
        ];
        let mut headers = OwnedHeaders::new_with_capacity(values.len() + 2);
        for (key, value) in &values {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_str()),
            });
        }
        if let Some(command) = parked_behind {
            headers = headers.insert(Header {
                key: header::PARKED_BEHIND,
                value: Some(command),
            });
        }
        if let Some(replay) = &self.replay_of {
            headers = headers.insert(Header {
                key: header::REPLAY_OF,
                value: Some(replay.as_str()),
            });
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> Topology {
        Topology::new(&TopicSettings::default())
    }

    #[test]
    fn failures_climb_the_delay_topics_then_dead_letter() {
        let t = topology();
        assert_eq!(
            t.after_failure(Role::Requests),
            Next::Retry {
                index: 0,
                topic: "booking.requests.retry.1s".into(),
                delay_ms: 1_000
            }
        );
        assert_eq!(
            t.after_failure(Role::Retry(0)),
            Next::Retry {
                index: 1,
                topic: "booking.requests.retry.10s".into(),
                delay_ms: 10_000
            }
        );
        assert_eq!(
            t.after_failure(Role::Retry(2)),
            Next::DeadLetter {
                topic: "booking.requests.dlq".into()
            }
        );
    }

    #[test]
    fn parked_records_never_reach_the_dead_letter_topic() {
        let t = topology();
        assert!(matches!(
            t.after_parking(Role::Retry(2)),
            Next::Retry { index: 2, .. }
        ));
        assert!(matches!(
            t.after_parking(Role::Requests),
            Next::Retry { index: 0, .. }
        ));
    }

    #[test]
    fn roles_by_topic() {
        let t = topology();
        assert_eq!(t.role("booking.requests"), Some(Role::Requests));
        assert_eq!(t.role("booking.requests.retry.10s"), Some(Role::Retry(1)));
        assert_eq!(t.role("booking.requests.dlq"), Some(Role::DeadLetter));
        assert_eq!(t.role("other"), None);
    }

    #[test]
    fn provenance_survives_the_hops() {
        let first = Provenance::of(None::<&OwnedHeaders>, "booking.requests", 4, 99);
        let headers = first.headers(1, 123, "transient", "db down", None);
        let again = Provenance::of(Some(&headers), "booking.requests.retry.1s", 4, 7);
        assert_eq!(again.original_topic, "booking.requests");
        assert_eq!(again.original_partition, 4);
        assert_eq!(again.original_offset, 99);
        assert_eq!(again.attempt, 1);
        assert_eq!(get_i64(Some(&headers), header::DUE_AT), Some(123));
    }
}
