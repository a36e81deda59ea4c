//! Sending one planned request through the API, remembering the bookings the run made (for
//! reads, cancels and reschedules), recording each answer, and following sampled bookings
//! from their 202 to their final state.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_util::task::TaskTracker;

use super::{
    directory::Directory,
    schedule::{Op, Planned, slot_start},
    stats::{MAX_MICROS, OpStats, Stats, histogram, micros},
};
use crate::api::Api;

#[derive(Default)]
pub(super) struct Targets {
    /// Bookings of this run that may still be cancelled or rescheduled.
    active: Vec<String>,
    /// Bookings of this run, for reads (the most recent 10 000).
    known: Vec<String>,
}

/// What the requests of a run share.
pub(super) struct Shared {
    pub api: Api,
    pub dir: Directory,
    /// Midnight (UTC) of the first day bookings go to.
    pub first_day: DateTime<Utc>,
    pub targets: Mutex<Targets>,
    pub stats: Mutex<Stats>,
    /// GETs made to follow sampled bookings.
    pub polls: AtomicU64,
    /// Creates and reschedules answered 202.
    pub accepted: AtomicU64,
    pub tracker: TaskTracker,
}

/// A request's result as the generator records it.
enum Answer {
    Http { status: StatusCode, body: Value },
    Failed { kind: &'static str, message: String },
}

impl Shared {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.send(self.api.request(method, path, body.as_ref()))
            .await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                match response.bytes().await {
                    Ok(bytes) => Answer::Http {
                        status,
                        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                    },
                    Err(e) => failed(&e),
                }
            }
            Err(e) => failed(&e),
        }
    }

    fn remember(&self, id: &str) {
        let mut targets = self.targets.lock().expect("targets lock");
        targets.active.push(id.to_owned());
        if targets.known.len() >= 10_000 {
            let i = targets.known.len() % 10_000;
            targets.known[i] = id.to_owned();
        } else {
            targets.known.push(id.to_owned());
        }
    }

    fn take_active(&self, pick: u64) -> Option<String> {
        let mut targets = self.targets.lock().expect("targets lock");
        if targets.active.is_empty() {
            return None;
        }
        let i = (pick % targets.active.len() as u64) as usize;
        Some(targets.active.swap_remove(i))
    }

    fn known(&self, pick: u64) -> Option<String> {
        let targets = self.targets.lock().expect("targets lock");
        (!targets.known.is_empty())
            .then(|| targets.known[(pick % targets.known.len() as u64) as usize].clone())
    }

    fn record(&self, op: Op, due: Instant, answer: &Answer) {
        let micros = micros(due.elapsed());
        let label = match answer {
            Answer::Http { status, .. } => status.as_u16().to_string(),
            Answer::Failed { kind, .. } => format!("error:{kind}"),
        };
        let mut stats = self.stats.lock().expect("stats lock");
        let entry = stats.ops.entry(op).or_insert_with(|| OpStats {
            latency: histogram(),
            statuses: BTreeMap::new(),
        });
        let _ = entry.latency.record(micros);
        *entry.statuses.entry(label).or_default() += 1;
        let _ = stats.all.record(micros);
        let error = match answer {
            Answer::Failed { kind, message } => Some((kind.to_string(), message.clone())),
            Answer::Http { status, body } if status.is_server_error() => Some((
                format!("http_{}", status.as_u16()),
                crate::api::error_reason(*status, body),
            )),
            _ => None,
        };
        if let Some((kind, message)) = error {
            *stats.errors.entry(kind).or_default() += 1;
            if stats.error_samples.len() < 10 {
                stats
                    .error_samples
                    .push(format!("{}: {message}", op.name()));
            }
        }
    }

    /// Runs one planned request.
    pub(super) async fn execute(self: Arc<Self>, plan: Planned, due: Instant) {
        let doctor = &self.dir.doctors[plan.doctor];
        let mut op = plan.op;
        let target = match op {
            Op::Cancel | Op::Reschedule => {
                let target = self.take_active(plan.pick);
                if target.is_none() {
                    op = Op::Create; // nothing of this run to act on yet
                }
                target
            }
            _ => None,
        };
        let start = slot_start(self.first_day, plan.slot).to_rfc3339();
        let answer = match op {
            Op::Create => {
                let body = json!({
                    "patient_id": self.dir.patients[plan.patient], "doctor_id": doctor,
                    "center_id": self.dir.centers[plan.center], "start": start,
                    "duration_minutes": 30, "reason": "Carga (citaflow load)",
                });
                // A fresh key per create, as a client that may retry it would send.
                let request = self
                    .api
                    .request(Method::POST, "bookings", Some(&body))
                    .header("Idempotency-Key", uuid::Uuid::new_v4().to_string());
                self.send(request).await
            }
            Op::Read => match self.known(plan.pick) {
                Some(id) if plan.pick.is_multiple_of(2) => {
                    self.call(Method::GET, &format!("bookings/{id}"), None)
                        .await
                }
                _ => {
                    self.call(
                        Method::GET,
                        &format!("bookings?doctor_id={doctor}&per_page=20"),
                        None,
                    )
                    .await
                }
            },
            Op::Cancel => {
                let id = target.expect("a cancel has a target");
                self.call(Method::POST, &format!("bookings/{id}/cancel"), None)
                    .await
            }
            Op::Reschedule => {
                let id = target.expect("a reschedule has a target");
                self.call(
                    Method::POST,
                    &format!("bookings/{id}/reschedule"),
                    Some(json!({ "start": start })),
                )
                .await
            }
        };
        let received = Instant::now();
        self.record(op, due, &answer);
        if let Answer::Http { status, body } = &answer
            && *status == StatusCode::ACCEPTED
            && matches!(op, Op::Create | Op::Reschedule)
        {
            self.accepted.fetch_add(1, Ordering::Relaxed);
            if let Some(id) = body["booking_id"].as_str() {
                self.remember(id);
                if plan.follow && op == Op::Create {
                    let shared = self.clone();
                    let id = id.to_owned();
                    self.tracker
                        .spawn(async move { shared.follow(id, received).await });
                }
            }
        }
    }

    /// Polls a booking from its 202 until it is decided; records both times.
    async fn follow(self: Arc<Self>, id: String, accepted_at: Instant) {
        let deadline = accepted_at + Duration::from_secs(30);
        let outcome = loop {
            self.polls.fetch_add(1, Ordering::Relaxed);
            if let Answer::Http {
                status: StatusCode::OK,
                body,
            } = self
                .call(Method::GET, &format!("bookings/{id}"), None)
                .await
                && body["status"] != "pending"
            {
                let client = accepted_at.elapsed();
                let server = match (
                    parse_time(&body["requested_at"]),
                    parse_time(&body["decided_at"]),
                ) {
                    (Some(r), Some(d)) => (d - r).num_microseconds().map(|m| m.max(1) as u64),
                    _ => None,
                };
                let mut stats = self.stats.lock().expect("stats lock");
                let _ = stats.to_final_client.record(micros(client));
                if let Some(server) = server {
                    let _ = stats.to_final_server.record(server.min(MAX_MICROS));
                }
                drop(stats);
                break match body["reason_code"].as_str() {
                    Some(code) if body["status"] == "rejected" => format!("rejected:{code}"),
                    _ => body["status"].as_str().unwrap_or("unknown").to_owned(),
                };
            }
            if Instant::now() > deadline {
                break "still_pending_after_30s".to_owned();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let mut stats = self.stats.lock().expect("stats lock");
        stats.followed += 1;
        *stats.outcomes.entry(outcome).or_default() += 1;
    }
}

fn failed(err: &reqwest::Error) -> Answer {
    let kind = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect"
    } else {
        "transport"
    };
    Answer::Failed {
        kind,
        message: crate::api::root_cause(err),
    }
}

fn parse_time(value: &Value) -> Option<DateTime<Utc>> {
    value.as_str()?.parse().ok()
}
