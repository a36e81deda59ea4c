//! `citaflow load`: an open-loop load generator against a running platform, through the public
//! API only.
//!
//! Open loop: request `i` is due at `start + i / rate`, whatever happened to earlier ones. When
//! `--concurrency` requests are already in flight a due request is not sent and is counted as
//! dropped, so a slow server shows up as drops and latency, never as a quietly slower schedule.
//! Latency is measured from when a request was due (not from when it happened to be sent), so
//! scheduler delays are not hidden either. The run is bounded by `--duration` (at most ten
//! minutes), targets loopback addresses only, and stops by itself.
//!
//! 202 → final state: a sample of creates (`--sample-percent`) is followed after its 202 by
//! polling `GET /bookings/{id}` every 20 ms until it is no longer `pending`. Two times are
//! reported: as the client saw it (202 received → first non-pending read, so up to one poll
//! interval late) and as the server recorded it (`decided_at - requested_at` of the booking).

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::api::{Api, ApiArgs};

/// `citaflow load` arguments.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub api: ApiArgs,

    /// Requests per second to send (open loop).
    #[arg(long, default_value_t = 50.0, value_name = "RPS")]
    pub rate: f64,

    /// How long to send, e.g. 20s, 2m, 1500ms (at most 10m).
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "TIME")]
    pub duration: Duration,

    /// Most requests in flight; a request due while this many are in flight is dropped.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=2000), value_name = "N")]
    pub concurrency: u32,

    /// Relative weights of the operations.
    #[arg(long, default_value = "create=70,read=20,cancel=5,reschedule=5", value_parser = Mix::parse, value_name = "MIX")]
    pub mix: Mix,

    /// Doctors to spread bookings over.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=5000), value_name = "N")]
    pub doctors: u32,

    /// How many of the doctors are "hot" (get --hot-percent of the bookings between them).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=5000), value_name = "N")]
    pub hot_doctors: u32,

    /// Share of creates that go to the hot doctors (a reschedule keeps its booking's doctor).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u8).range(0..=100), value_name = "PCT")]
    pub hot_percent: u8,

    /// Patients to book for.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=5000), value_name = "N")]
    pub patients: u32,

    /// Centers to book at.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000), value_name = "N")]
    pub centers: u32,

    /// Reuse active doctors, patients and centers already in the API instead of creating
    /// new ones.
    #[arg(long)]
    pub reuse: bool,

    /// Share of creates followed from their 202 to their final state.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=100), value_name = "PCT")]
    pub sample_percent: u8,

    /// Seed of the random choices (default: from the clock).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Write the result as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Print the result as JSON instead of a table; no progress bar.
    #[arg(long)]
    pub json: bool,

    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Help shown after `citaflow load --help`.
pub const HELP: &str = "\
What it does:
  1. Prepares its directory through the API: --centers, --doctors and --patients with unique
     names (prefix load-<run id>), or with --reuse the active ones already there.
  2. Sends --rate requests per second for --duration, open loop: each request is due at its
     time; one due while --concurrency requests are in flight is dropped (counted), never
     delayed. Operations, by --mix weight:
       create      POST /bookings (30-minute slots, next 90 days, 07:00-20:00 UTC);
                   --hot-percent of them go to the first --hot-doctors doctors
       read        GET /bookings/{id} of a booking made in this run, or a doctor's agenda
       cancel      POST /bookings/{id}/cancel of a booking made in this run
       reschedule  POST /bookings/{id}/reschedule of a booking made in this run
     A cancel or reschedule with nothing to act on yet is sent as a create.
  3. Waits for in-flight requests, then reports: achieved rate, dropped and late requests,
     HTTP latency (HDR histogram, from when each request was due: p50, p90, p99, p99.9, max)
     per operation, status counts, errors, and for --sample-percent of the creates the time
     from the 202 to the final state (polling GET /bookings/{id} every 20 ms; the server's own
     decided_at - requested_at is reported beside it).

Only loopback targets (127.0.0.0/8, ::1, localhost) are accepted.

Examples:
  CITAFLOW_USERNAME=admin CITAFLOW_PASSWORD=\"$(cat .run/secrets/admin-password)\" \\
    citaflow load --rate 200 --duration 20s --out result.json
  citaflow load --token \"$TOKEN\" --rate 50 --duration 5s --mix create=100 --json | jq .latency_ms.create
  citaflow load --rate 100 --duration 1m --doctors 200 --hot-doctors 2 --hot-percent 50 --reuse";

/// Parses `20s`, `1m`, `1500ms`, `1m30s` or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let invalid = || format!("{text:?} is not a duration (e.g. 20s, 2m, 1500ms, 1m30s)");
    if let Ok(secs) = text.parse::<f64>() {
        return to_duration(secs).ok_or_else(invalid);
    }
    let mut total = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            _ => return Err(invalid()),
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    to_duration(total).ok_or_else(invalid)
}

fn to_duration(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs > 0.0 && secs < 1e7).then(|| Duration::from_secs_f64(secs))
}

/// The kinds of request the generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Create,
    Read,
    Cancel,
    Reschedule,
}

impl Op {
    const ALL: [Op; 4] = [Op::Create, Op::Read, Op::Cancel, Op::Reschedule];

    fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Read => "read",
            Op::Cancel => "cancel",
            Op::Reschedule => "reschedule",
        }
    }
}

/// Weights of the operations, e.g. `create=70,read=20,cancel=5,reschedule=5`.
#[derive(Debug, Clone, Serialize)]
pub struct Mix(pub BTreeMap<Op, u32>);

impl Mix {
    pub fn parse(text: &str) -> Result<Mix, String> {
        let mut weights = BTreeMap::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected name=weight"))?;
            let op = Op::ALL
                .into_iter()
                .find(|op| op.name() == name.trim())
                .ok_or_else(|| {
                    format!("{name:?} is not an operation (create, read, cancel, reschedule)")
                })?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: the weight must be a whole number"))?;
            if weights.insert(op, weight).is_some() {
                return Err(format!("{name:?} appears twice"));
            }
        }
        if weights.values().sum::<u32>() == 0 {
            return Err("at least one operation needs a weight above 0".into());
        }
        Ok(Mix(weights))
    }

    fn pick(&self, roll: u64) -> Op {
        let total: u64 = self.0.values().map(|w| u64::from(*w)).sum();
        let mut roll = roll % total;
        for (op, weight) in &self.0 {
            if roll < u64::from(*weight) {
                return *op;
            }
            roll -= u64::from(*weight);
        }
        unreachable!("roll is below the total weight")
    }
}

/// SplitMix64: small, fast and good enough to spread requests; no dependency needed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Refuses anything but loopback targets: load is only ever sent to this machine.
pub fn require_loopback(url: &Url) -> anyhow::Result<()> {
    let host = url.host_str().unwrap_or_default();
    let loopback = match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
    {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    };
    if !loopback {
        bail!(
            "load is only sent to loopback addresses (127.0.0.0/8, ::1, localhost); {url} is not one"
        );
    }
    Ok(())
}

/// What the run prepared or reused.
struct Directory {
    centers: Vec<String>,
    doctors: Vec<String>,
    patients: Vec<String>,
    prefix: Option<String>,
}

async fn bulk_create(api: &Api, resource: &str, items: Vec<Value>) -> anyhow::Result<Vec<String>> {
    let reply = api
        .send(
            Method::POST,
            &format!("{resource}/bulk"),
            Some(&Value::Array(items)),
        )
        .await?;
    if reply.status != StatusCode::OK {
        bail!(
            "preparing {resource}: {} ({})",
            reply.reason(),
            reply.status
        );
    }
    let mut ids = Vec::new();
    for result in reply.body["results"].as_array().into_iter().flatten() {
        match result["id"].as_str() {
            Some(id) => ids.push(id.to_owned()),
            None => bail!(
                "preparing {resource}: {}",
                result["error"]["message"]
                    .as_str()
                    .unwrap_or("an item failed")
            ),
        }
    }
    Ok(ids)
}

async fn prepare(api: &Api, args: &LoadArgs) -> anyhow::Result<Directory> {
    if args.reuse {
        let ids = |items: Vec<Value>| {
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        };
        let centers = ids(api
            .list_all("centers?active=true", args.centers as usize)
            .await?);
        let doctors = ids(api
            .list_all("doctors?active=true", args.doctors as usize)
            .await?);
        let patients = ids(api
            .list_all("patients?status=ACTIVE", args.patients as usize)
            .await?);
        if centers.is_empty() || doctors.is_empty() || patients.is_empty() {
            bail!(
                "--reuse needs at least one active center, doctor and patient in the API (run `citaflow import` first, or drop --reuse)"
            );
        }
        let take = |mut v: Vec<String>, n: u32| {
            v.truncate(n as usize);
            v
        };
        return Ok(Directory {
            centers: take(centers, args.centers),
            doctors: take(doctors, args.doctors),
            patients: take(patients, args.patients),
            prefix: None,
        });
    }
    let prefix = format!("load-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let specialties = [
        "Odontología",
        "Ortodoncia",
        "Medicina general",
        "Pediatría",
        "Dermatología",
    ];
    let centers = (0..args.centers)
        .map(|i| json!({"name": format!("Carga {prefix} centro {i}"), "address": format!("Calle de la Prueba {i}, Madrid"), "timezone": "Europe/Madrid", "language": "es"}))
        .collect();
    let doctors = (0..args.doctors)
        .map(|i| json!({"name": format!("Dr. Carga {i} ({prefix})"), "specialty": specialties[i as usize % specialties.len()], "username": format!("{prefix}-dr-{i}")}))
        .collect();
    let patients = (0..args.patients)
        .map(|i| json!({"name": format!("Paciente de carga {i}"), "email": format!("{prefix}-p{i}@example.com"), "language": if i % 5 == 0 { "en" } else { "es" }}))
        .collect();
    Ok(Directory {
        centers: bulk_create(api, "centers", centers).await?,
        doctors: bulk_create(api, "doctors", doctors).await?,
        patients: bulk_create(api, "patients", patients).await?,
        prefix: Some(prefix),
    })
}

/// One scheduled request, fully decided by the scheduler (so the run is reproducible with
/// --seed up to which bookings exist when it runs).
#[derive(Debug, Clone, Copy)]
struct Planned {
    op: Op,
    doctor: usize,
    patient: usize,
    center: usize,
    slot: u32,
    pick: u64,
    follow: bool,
}

/// Slots: 30 minutes, 07:00–20:00 UTC (26 a day), over the 90 days after tomorrow.
const SLOTS_PER_DAY: u32 = 26;
const DAYS: u32 = 90;

fn slot_start(first_day: DateTime<Utc>, slot: u32) -> DateTime<Utc> {
    first_day
        + chrono::Duration::days(i64::from(slot / SLOTS_PER_DAY))
        + chrono::Duration::minutes(7 * 60 + 30 * i64::from(slot % SLOTS_PER_DAY))
}

/// Latency and outcome counts of one kind of request.
struct OpStats {
    latency: Histogram<u64>,
    statuses: BTreeMap<String, u64>,
}

fn histogram() -> Histogram<u64> {
    // Microseconds, 1 µs to 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

#[derive(Default)]
struct Targets {
    /// Bookings of this run that may still be cancelled or rescheduled.
    active: Vec<String>,
    /// Bookings of this run, for reads (the most recent 10 000).
    known: Vec<String>,
}

struct Stats {
    ops: BTreeMap<Op, OpStats>,
    all: Histogram<u64>,
    to_final_client: Histogram<u64>,
    to_final_server: Histogram<u64>,
    outcomes: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    error_samples: Vec<String>,
    followed: u64,
}

struct Shared {
    api: Api,
    dir: Directory,
    first_day: DateTime<Utc>,
    targets: Mutex<Targets>,
    stats: Mutex<Stats>,
    polls: AtomicU64,
    accepted: AtomicU64,
    tracker: TaskTracker,
}

/// A request's result as the generator records it.
enum Answer {
    Http { status: StatusCode, body: Value },
    Failed { kind: &'static str, message: String },
}

impl Shared {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self
            .api
            .http()
            .request(method, self.api.url(path))
            .bearer_auth(self.api.token());
        if let Some(body) = body {
            request = request.json(&body);
        }
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
        let micros = (due.elapsed().as_micros() as u64).clamp(1, 600_000_000);
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
    async fn execute(self: Arc<Self>, plan: Planned, due: Instant) {
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
                self.call(Method::POST, "bookings", Some(body)).await
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
                let _ = stats
                    .to_final_client
                    .record((client.as_micros() as u64).clamp(1, 600_000_000));
                if let Some(server) = server {
                    let _ = stats.to_final_server.record(server.min(600_000_000));
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

/// Percentiles of a histogram, in milliseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

fn latency(h: &Histogram<u64>) -> Latency {
    let ms = |micros: u64| micros as f64 / 1000.0;
    if h.is_empty() {
        return Latency {
            count: 0,
            mean: 0.0,
            p50: 0.0,
            p90: 0.0,
            p99: 0.0,
            p999: 0.0,
            max: 0.0,
        };
    }
    Latency {
        count: h.len(),
        mean: h.mean().round() / 1000.0,
        p50: ms(h.value_at_quantile(0.50)),
        p90: ms(h.value_at_quantile(0.90)),
        p99: ms(h.value_at_quantile(0.99)),
        p999: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
    }
}

/// The result of a run, as printed with --json and written with --out.
#[derive(Debug, Serialize)]
pub struct LoadReport {
    pub config: Value,
    pub summary: Summary,
    /// HTTP latency in milliseconds from when each request was due, overall and per operation.
    pub latency_ms: BTreeMap<String, Latency>,
    /// Answers by operation: HTTP status codes, or `error:<kind>` when no answer came.
    pub status: BTreeMap<String, BTreeMap<String, u64>>,
    pub to_final: ToFinal,
    /// Transport failures and 5xx answers by kind, with a few samples.
    pub errors: BTreeMap<String, u64>,
    pub error_samples: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub started_at: DateTime<Utc>,
    /// Requests due in the run (rate × duration).
    pub scheduled: u64,
    pub sent: u64,
    /// Due while --concurrency requests were in flight, so not sent.
    pub dropped: u64,
    /// Sent more than 10 ms after they were due (the generator itself fell behind).
    pub late: u64,
    /// Answered requests (any status).
    pub answered: u64,
    /// Transport failures and 5xx answers.
    pub errors: u64,
    /// Creates and reschedules answered 202.
    pub accepted_bookings: u64,
    pub send_window_secs: f64,
    /// Requests sent per second over the send window.
    pub achieved_rate: f64,
    /// GETs made to follow sampled bookings (not part of the rate).
    pub poll_requests: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory_prefix: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ToFinal {
    pub method: &'static str,
    pub followed: u64,
    /// 202 received → first read that is no longer pending (client clock; up to 20 ms late).
    pub client_ms: Latency,
    /// `decided_at - requested_at` of the booking (server clock).
    pub server_ms: Latency,
    pub outcomes: BTreeMap<String, u64>,
}

/// Runs the load; answers the exit code (0: the run completed; 1: every request failed).
pub async fn run(args: LoadArgs) -> anyhow::Result<u8> {
    let base = crate::api::base_url(&args.api.api_url)?;
    require_loopback(&base)?;
    if !(args.rate.is_finite() && args.rate > 0.0 && args.rate <= 5000.0) {
        bail!("--rate must be above 0 and at most 5000 requests per second");
    }
    if args.duration > Duration::from_secs(600) {
        bail!("--duration must be at most 10m");
    }
    if args.hot_doctors > args.doctors {
        bail!(
            "--hot-doctors ({}) cannot exceed --doctors ({})",
            args.hot_doctors,
            args.doctors
        );
    }
    let api = Api::connect(&args.api, args.concurrency as usize).await?;
    api.require_admin()
        .await
        .context("load prepares its own doctors, centers and patients")?;
    let dir = prepare(&api, &args).await?;
    let hot = (args.hot_doctors as usize).min(dir.doctors.len());

    let tomorrow = (Utc::now() + chrono::Duration::days(1)).date_naive();
    let first_day = tomorrow.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let shared = Arc::new(Shared {
        api,
        dir,
        first_day,
        targets: Mutex::default(),
        stats: Mutex::new(Stats {
            ops: BTreeMap::new(),
            all: histogram(),
            to_final_client: histogram(),
            to_final_server: histogram(),
            outcomes: BTreeMap::new(),
            errors: BTreeMap::new(),
            error_samples: Vec::new(),
            followed: 0,
        }),
        polls: AtomicU64::new(0),
        accepted: AtomicU64::new(0),
        tracker: TaskTracker::new(),
    });

    let total = (args.rate * args.duration.as_secs_f64()).floor().max(1.0) as u64;
    let bar = if args.json || args.quiet {
        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden())
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template("[{elapsed_precise}] [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let seed = args
        .seed
        .unwrap_or_else(|| Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64);
    let mut rng = Rng(seed);
    let in_flight = Arc::new(Semaphore::new(args.concurrency as usize));
    let started_at = Utc::now();
    let start = Instant::now();
    let (mut sent, mut dropped, mut late) = (0u64, 0u64, 0u64);
    let n = shared.dir.doctors.len();
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / args.rate);
        tokio::time::sleep_until(due.into()).await;
        if due.elapsed() > Duration::from_millis(10) {
            late += 1;
        }
        let op = args.mix.pick(rng.next());
        let doctor = if hot > 0 && (hot == n || rng.below(100) < args.hot_percent as usize) {
            rng.below(hot)
        } else {
            hot + rng.below(n - hot)
        };
        let plan = Planned {
            op,
            doctor,
            patient: rng.below(shared.dir.patients.len()),
            center: rng.below(shared.dir.centers.len()),
            slot: rng.below((SLOTS_PER_DAY * DAYS) as usize) as u32,
            pick: rng.next(),
            follow: rng.below(100) < args.sample_percent as usize,
        };
        match in_flight.clone().try_acquire_owned() {
            Ok(permit) => {
                sent += 1;
                let shared2 = shared.clone();
                shared.tracker.spawn(async move {
                    shared2.execute(plan, due).await;
                    drop(permit);
                });
            }
            Err(_) => dropped += 1,
        }
        bar.inc(1);
        if i % 64 == 0 {
            bar.set_message(format!(
                "sent {sent}, dropped {dropped}, in flight {}",
                args.concurrency as usize - in_flight.available_permits()
            ));
        }
    }
    let send_window = start.elapsed();
    bar.set_message("waiting for in-flight requests and followed bookings");
    shared.tracker.close();
    let grace = Duration::from_secs(args.api.timeout_secs.max(1) + 35);
    let incomplete = tokio::time::timeout(grace, shared.tracker.wait())
        .await
        .is_err();
    bar.finish_and_clear();
    if incomplete {
        bail!(
            "requests still unanswered {}s after the run; the API may be stuck",
            grace.as_secs()
        );
    }

    let stats = shared.stats.lock().expect("stats lock");
    let mut latency_ms = BTreeMap::new();
    latency_ms.insert("all".to_owned(), latency(&stats.all));
    let mut status = BTreeMap::new();
    let mut answered = 0;
    for (op, s) in &stats.ops {
        latency_ms.insert(op.name().to_owned(), latency(&s.latency));
        status.insert(op.name().to_owned(), s.statuses.clone());
        answered += s
            .statuses
            .iter()
            .filter(|(k, _)| !k.starts_with("error:"))
            .map(|(_, v)| v)
            .sum::<u64>();
    }
    let errors_total = stats.errors.values().sum();
    let report = LoadReport {
        config: json!({
            "api_url": base.as_str(), "rate": args.rate, "duration_secs": args.duration.as_secs_f64(),
            "concurrency": args.concurrency, "mix": args.mix, "doctors": shared.dir.doctors.len(),
            "hot_doctors": hot, "hot_percent": args.hot_percent, "patients": shared.dir.patients.len(),
            "centers": shared.dir.centers.len(), "reuse": args.reuse, "sample_percent": args.sample_percent, "seed": seed,
        }),
        summary: Summary {
            started_at,
            scheduled: total,
            sent,
            dropped,
            late,
            answered,
            errors: errors_total,
            accepted_bookings: shared.accepted.load(Ordering::Relaxed),
            send_window_secs: round3(send_window.as_secs_f64()),
            achieved_rate: round3(sent as f64 / send_window.as_secs_f64().max(1e-9)),
            poll_requests: shared.polls.load(Ordering::Relaxed),
            directory_prefix: shared.dir.prefix.clone(),
        },
        latency_ms,
        status,
        to_final: ToFinal {
            method: "poll GET /bookings/{id} every 20 ms after the 202 (client); decided_at - requested_at (server)",
            followed: stats.followed,
            client_ms: latency(&stats.to_final_client),
            server_ms: latency(&stats.to_final_server),
            outcomes: stats.outcomes.clone(),
        },
        errors: stats.errors.clone(),
        error_samples: stats.error_samples.clone(),
    };
    drop(stats);
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &args.out {
        std::fs::write(path, format!("{text}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        crate::emit(&format!("{text}\n"));
    } else {
        crate::emit(&render_table(&report, args.out.as_deref()));
    }
    Ok(if sent > 0 && answered == 0 { 1 } else { 0 })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The report as text tables.
fn render_table(r: &LoadReport, path: Option<&std::path::Path>) -> String {
    let mut out = String::new();
    let s = &r.summary;
    let _ = writeln!(
        out,
        "sent {} of {} due in {:.1}s: {:.1} req/s achieved ({} dropped at the concurrency cap, {} late), {} answered, {} errors",
        s.sent,
        s.scheduled,
        s.send_window_secs,
        s.achieved_rate,
        s.dropped,
        s.late,
        s.answered,
        s.errors
    );
    let _ = writeln!(out, "\nHTTP latency (ms, from when each request was due)");
    let _ = writeln!(
        out,
        "{:<11} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "OPERATION", "COUNT", "P50", "P90", "P99", "P99.9", "MAX"
    );
    for (name, l) in &r.latency_ms {
        let _ = writeln!(
            out,
            "{:<11} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            name, l.count, l.p50, l.p90, l.p99, l.p999, l.max
        );
    }
    let _ = writeln!(out, "\nStatus counts");
    for (op, statuses) in &r.status {
        let line: Vec<String> = statuses.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let _ = writeln!(out, "  {:<11} {}", op, line.join(", "));
    }
    let f = &r.to_final;
    let _ = writeln!(
        out,
        "\n202 → final state ({} followed; polling GET every 20 ms)",
        f.followed
    );
    let _ = writeln!(
        out,
        "{:<11} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "CLOCK", "COUNT", "P50", "P90", "P99", "P99.9", "MAX"
    );
    for (name, l) in [("client", &f.client_ms), ("server", &f.server_ms)] {
        let _ = writeln!(
            out,
            "{:<11} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            name, l.count, l.p50, l.p90, l.p99, l.p999, l.max
        );
    }
    let outcomes: Vec<String> = f
        .outcomes
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let _ = writeln!(
        out,
        "  outcomes: {}",
        if outcomes.is_empty() {
            "-".to_owned()
        } else {
            outcomes.join(", ")
        }
    );
    if !r.errors.is_empty() {
        let _ = writeln!(out, "\nErrors");
        for (kind, count) in &r.errors {
            let _ = writeln!(out, "  {kind}: {count}");
        }
        for sample in &r.error_samples {
            let _ = writeln!(out, "  e.g. {sample}");
        }
    }
    if let Some(path) = path {
        let _ = writeln!(out, "\nJSON written to {}", path.display());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        for bad in ["", "0s", "-1s", "10x", "s", "1.2.3s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn mixes_follow_their_weights() {
        let mix = Mix::parse("create=70, read=20,cancel=5,reschedule=5").unwrap();
        let mut counts = BTreeMap::new();
        let mut rng = Rng(7);
        for _ in 0..100_000 {
            *counts.entry(mix.pick(rng.next())).or_insert(0u32) += 1;
        }
        assert!(
            (69_000..71_000).contains(&counts[&Op::Create]),
            "{counts:?}"
        );
        assert!((4_500..5_500).contains(&counts[&Op::Cancel]), "{counts:?}");
        assert_eq!(Mix::parse("read=1").unwrap().pick(12345), Op::Read);
        for bad in [
            "create",
            "create=x",
            "delete=5",
            "create=0",
            "create=1,create=2",
        ] {
            assert!(Mix::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn only_loopback_is_a_target() {
        for ok in [
            "http://127.0.0.1:8080/",
            "http://127.1.2.3/",
            "http://[::1]:8080/",
            "http://LOCALHOST:8080/",
        ] {
            assert!(require_loopback(&Url::parse(ok).unwrap()).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1/",
            "http://192.168.1.1/",
            "http://example.com/",
            "http://0.0.0.0/",
        ] {
            assert!(
                require_loopback(&Url::parse(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn slots_are_half_hours_in_the_day_window() {
        let day = "2030-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(slot_start(day, 0).to_rfc3339(), "2030-01-01T07:00:00+00:00");
        assert_eq!(
            slot_start(day, 25).to_rfc3339(),
            "2030-01-01T19:30:00+00:00"
        );
        assert_eq!(
            slot_start(day, 26).to_rfc3339(),
            "2030-01-02T07:00:00+00:00"
        );
    }

    #[test]
    fn percentiles_are_in_milliseconds() {
        let mut h = histogram();
        for micros in 1..=1000u64 {
            h.record(micros * 1000).unwrap();
        }
        let l = latency(&h);
        assert_eq!(l.count, 1000);
        assert!((l.p50 - 500.0).abs() < 1.0, "{l:?}");
        assert!((l.max - 1000.0).abs() < 1.0, "{l:?}");
    }
}
