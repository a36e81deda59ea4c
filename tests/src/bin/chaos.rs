//! `./dev chaos [runs]`: a fault-injection run of the whole workflow on the real local stack.
//!
//! During a burst of booking requests it kills, one after another: the processor (SIGKILL,
//! restarted), the Kafka broker (SIGKILL, restarted with `./dev start kafka`), the API
//! (SIGKILL, restarted on the same port) and PostgreSQL (SIGQUIT to the postmaster, its
//! immediate shutdown: a crash, recovered on restart with `./dev start postgres`). Then it checks every invariant of the
//! workflow and prints what was killed, when, and the counts:
//!
//! - every request answered 202 ends in exactly one final state, and no row is left pending
//!   (the bound: the retry ladder plus the pending expiry, measured from the last recovery);
//! - no doctor has two confirmed appointments that overlap;
//! - one decision event (one event id) per booking, in the database and on `booking.events`;
//! - one email per decision event: each delivered Message-ID is in Mailpit exactly once.
//!
//! It runs alone (it stops the shared broker and database), so it is not part of the parallel
//! `cargo test` run; exits non-zero on the first broken invariant.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{Duration as Minutes, Utc};
use citaflow_tests::{
    ADMIN_PASSWORD, ADMIN_USERNAME, Services, TestApp, process::ServiceProcess, read_all,
};
use serde_json::{Value, json};
use uuid::Uuid;

/// Requests per second and seconds of the burst.
const RATE: u64 = 30;
const BURST_SECS: u64 = 70;
const DOCTORS: usize = 20;
const PATIENTS: usize = 40;
/// Retry ladder (ms) and pending expiry (s) of this run: the ladder outlasts each outage.
const LADDER: [u64; 3] = [1_000, 5_000, 10_000];
const EXPIRE_AFTER_SECS: u64 = 30;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn log(started: Instant, what: &str) {
    println!("[chaos] t={:>5.1}s {what}", started.elapsed().as_secs_f64());
}

/// Runs `./dev <args>` and fails loudly if it does.
fn dev(args: &[&str]) -> String {
    let output = std::process::Command::new(root().join("dev"))
        .args(args)
        .output()
        .expect("run ./dev");
    assert!(
        output.status.success(),
        "./dev {} failed:\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The PID `./dev status` shows for a component.
fn pid_of(component: &str) -> u32 {
    dev(&["status"])
        .lines()
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next() == Some(component))
                .then(|| fields.next()?.parse().ok())
                .flatten()
        })
        .unwrap_or_else(|| panic!("{component} has no PID in ./dev status"))
}

fn kill9(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -9 {pid}");
}

/// SIGQUIT to the postmaster: PostgreSQL's immediate shutdown, a crash (no checkpoint;
/// crash recovery on the next start).
fn crash_postgres() {
    let pid = pid_of("postgres");
    let status = std::process::Command::new("kill")
        .args(["-QUIT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -QUIT {pid}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "PostgreSQL did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Services3 {
    api: ServiceProcess,
    processor: ServiceProcess,
    _notifier: ServiceProcess,
}

#[derive(Default)]
struct Answers {
    statuses: HashMap<String, usize>,
}

async fn wait_for_login(http: &reqwest::Client, api: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = http
            .post(format!("{api}/auth/login"))
            .json(&json!({"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}))
            .send()
            .await;
        if let Ok(reply) = reply
            && reply.status() == 200
        {
            let body: Value = reply.json().await.unwrap();
            return body["access_token"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "the API did not come up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn one_run(run: usize) {
    let mut app = TestApp::spawn_with(
        Services {
            api: false,
            processor: false,
            email: false,
            sms: false,
            database_proxy: false,
            smtp_proxy: false,
        },
        |s| {
            s.topics.retry_delays_ms = LADDER.to_vec();
            s.processor.expire_pending_after_secs = EXPIRE_AFTER_SECS;
            s.processor.pending_sweep_interval_secs = 2;
            s.notifier.group_id = Some(format!("chaos-{}-notifier-email", Uuid::new_v4().simple()));
        },
    )
    .await;
    ingest_api::create_admin(&app.settings, ADMIN_USERNAME, ADMIN_PASSWORD.into())
        .await
        .expect("create the admin");
    let port = free_port();
    let api_url = format!("http://127.0.0.1:{port}");
    let api_env = vec![("CITAFLOW__HTTP__PORT", port.to_string())];
    let processor_env = vec![
        (
            "CITAFLOW__PROCESSOR__EXPIRE_PENDING_AFTER_SECS",
            EXPIRE_AFTER_SECS.to_string(),
        ),
        (
            "CITAFLOW__PROCESSOR__PENDING_SWEEP_INTERVAL_SECS",
            "2".to_owned(),
        ),
    ];
    let notifier_env = vec![(
        "CITAFLOW__NOTIFIER__GROUP_ID",
        app.settings.notifier.group_id.clone().unwrap(),
    )];
    let mut services = Services3 {
        api: ServiceProcess::start_with("ingest-api", &app.settings, &api_env),
        processor: ServiceProcess::start_with("booking-processor", &app.settings, &processor_env),
        _notifier: ServiceProcess::start_with("notifier", &app.settings, &notifier_env),
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    app.api_url = api_url.clone();
    app.admin_token = wait_for_login(&http, &api_url).await;
    let centers = futures_util::future::join_all((0..4).map(|_| app.create_center())).await;
    let doctors = futures_util::future::join_all((0..DOCTORS).map(|_| app.create_doctor())).await;
    let mut patients = Vec::new();
    for _ in 0..PATIENTS {
        patients.push(app.create_patient("es").await);
    }
    let token = app.admin_token.clone();

    // The burst, open loop: request i is due at i / RATE seconds.
    let started = Instant::now();
    log(
        started,
        &format!(
            "run {run}: burst of {} requests at {RATE}/s",
            RATE * BURST_SECS
        ),
    );
    let answers = Arc::new(Mutex::new(Answers::default()));
    let base = (Utc::now() + Minutes::hours(48)).timestamp() / 60 * 60;
    let base = chrono::DateTime::from_timestamp(base, 0).unwrap();
    let mut requests = Vec::new();
    for i in 0..(RATE * BURST_SECS) as usize {
        let due = started + Duration::from_millis(i as u64 * 1000 / RATE);
        let body = json!({
            "patient_id": patients[i % PATIENTS].0,
            "doctor_id": doctors[i % DOCTORS],
            "center_id": centers[i % centers.len()],
            // 60 starts per doctor, 20 minutes apart, 30-minute visits: neighbours collide.
            "start": (base + Minutes::minutes(((i / DOCTORS) % 60) as i64 * 20)).to_rfc3339(),
            "duration_minutes": 30,
        });
        let (http, url, token, answers) = (
            http.clone(),
            api_url.clone(),
            token.clone(),
            answers.clone(),
        );
        requests.push(tokio::spawn(async move {
            tokio::time::sleep_until(due.into()).await;
            let reply = http
                .post(format!("{url}/bookings"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await;
            let (label, id) = match reply {
                Ok(reply) => {
                    let status = reply.status().as_u16();
                    if status == 202 {
                        let body: Value = reply.json().await.unwrap_or_default();
                        let id = body["booking_id"]
                            .as_str()
                            .and_then(|s| Uuid::parse_str(s).ok());
                        ("202".to_owned(), id)
                    } else {
                        let body: Value = reply.json().await.unwrap_or_default();
                        let code = body["error"]["code"].as_str().unwrap_or("-").to_owned();
                        (format!("{status} {code}"), None)
                    }
                }
                Err(err) if err.is_timeout() => ("timeout".to_owned(), None),
                Err(_) => ("no answer".to_owned(), None),
            };
            *answers.lock().unwrap().statuses.entry(label).or_default() += 1;
            if id.is_some() {
                return id;
            }
            None
        }));
    }

    // The faults, in one run, one after the other while the burst goes on.
    let pause = |secs: u64| tokio::time::sleep(Duration::from_secs(secs));
    pause(5).await;
    services.processor.kill();
    log(started, "booking-processor SIGKILLed");
    pause(1).await;
    services.processor =
        ServiceProcess::start_with("booking-processor", &app.settings, &processor_env);
    log(started, "booking-processor restarted");

    pause(5).await;
    kill9(pid_of("kafka"));
    log(started, "Kafka broker SIGKILLed");
    pause(6).await;
    tokio::task::spawn_blocking(|| dev(&["start", "kafka"]))
        .await
        .unwrap();
    log(started, "Kafka broker restarted and ready");

    pause(4).await;
    services.api.kill();
    log(started, "ingest-api SIGKILLed");
    pause(1).await;
    services.api = ServiceProcess::start_with("ingest-api", &app.settings, &api_env);
    log(started, "ingest-api restarted");

    pause(5).await;
    tokio::task::spawn_blocking(crash_postgres).await.unwrap();
    log(started, "PostgreSQL crashed (SIGQUIT: immediate shutdown)");
    pause(4).await;
    tokio::task::spawn_blocking(|| dev(&["start", "postgres"]))
        .await
        .unwrap();
    let recovered = Instant::now();
    log(started, "PostgreSQL restarted (crash recovery) and ready");
    assert!(
        started.elapsed() < Duration::from_secs(BURST_SECS),
        "the faults outlasted the burst"
    );

    let mut accepted = Vec::new();
    for request in requests {
        if let Some(id) = request.await.unwrap() {
            accepted.push(id);
        }
    }
    log(started, "burst over");
    let statuses = std::mem::take(&mut answers.lock().unwrap().statuses);
    println!(
        "[chaos] answers: {statuses:?}; accepted (202): {}",
        accepted.len()
    );
    assert!(
        accepted.len() > 500,
        "too few requests accepted to judge anything"
    );

    // None pending within the bound: the ladder, the expiry and a sweep, from the last recovery.
    let bound = Duration::from_millis(LADDER.iter().sum())
        + Duration::from_secs(EXPIRE_AFTER_SECS + 2 + 30);
    loop {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM appointments WHERE status = 'pending'")
                .fetch_one(&app.pool)
                .await
                .unwrap_or(-1);
        if pending == 0 {
            break;
        }
        assert!(
            recovered.elapsed() < bound,
            "{pending} still pending {bound:?} after the last recovery"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    log(
        started,
        &format!(
            "none pending ({:.1} s after the last recovery)",
            recovered.elapsed().as_secs_f64()
        ),
    );

    // Exactly one final state per accepted request.
    let rows: Vec<(Uuid, String, Option<String>)> =
        sqlx::query_as("SELECT id, status, reason_code FROM appointments")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let states: HashMap<Uuid, (String, Option<String>)> = rows
        .iter()
        .map(|(id, s, r)| (*id, (s.clone(), r.clone())))
        .collect();
    let mut outcome_counts: HashMap<String, usize> = HashMap::new();
    for id in &accepted {
        let (status, reason) = states
            .get(id)
            .unwrap_or_else(|| panic!("accepted booking {id} has no row"));
        assert!(
            matches!(status.as_str(), "confirmed" | "rejected"),
            "booking {id} ended {status}"
        );
        *outcome_counts
            .entry(format!(
                "{status}{}",
                reason.as_ref().map(|r| format!(":{r}")).unwrap_or_default()
            ))
            .or_default() += 1;
    }
    println!(
        "[chaos] outcomes of the accepted: {outcome_counts:?}; rows in all: {} (rows without a 202: {})",
        rows.len(),
        rows.len() - accepted.len()
    );

    // No double booking.
    let overlaps: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM appointments a JOIN appointments b
           ON a.doctor_id = b.doctor_id AND a.id < b.id
          AND a.status = 'confirmed' AND b.status = 'confirmed'
          AND tstzrange(a.starts_at, a.ends_at) && tstzrange(b.starts_at, b.ends_at)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(overlaps, 0, "overlapping confirmed appointments");

    // One decision event per booking, recorded and on the topic: every accepted booking has
    // exactly one; a row whose request never got a 202 has one if the processor closed it
    // (an expiry), none if the API closed it after a failed publish.
    let recorded: HashMap<Uuid, i64> = sqlx::query_as(
        "SELECT booking_id, count(DISTINCT event_id) FROM booking_events
          WHERE kind IN ('CONFIRMED', 'REJECTED') GROUP BY booking_id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    for id in &accepted {
        assert!(
            recorded.contains_key(id),
            "accepted booking {id} has no decision event"
        );
    }
    assert!(
        recorded.values().all(|n| *n == 1),
        "one decision event id per booking"
    );
    let topic = app.settings.topics.events.clone();
    let expected = recorded.len();
    let records =
        tokio::task::spawn_blocking(move || read_all(&topic, expected, Duration::from_secs(60)))
            .await
            .unwrap();
    let mut on_topic: HashMap<Uuid, HashSet<String>> = HashMap::new();
    for event in app.decode_events(&records).await {
        on_topic
            .entry(Uuid::parse_str(&event.booking_id).unwrap())
            .or_default()
            .insert(event.event_id);
    }
    assert_eq!(
        on_topic.keys().collect::<HashSet<_>>(),
        recorded.keys().collect::<HashSet<_>>(),
        "the topic has a decision event for exactly the decided bookings"
    );
    assert!(
        on_topic.values().all(|ids| ids.len() == 1),
        "one event id per booking on the topic"
    );
    println!(
        "[chaos] events: {} records on the topic for {} decided bookings (re-published copies: {})",
        records.len(),
        recorded.len(),
        records.len() - recorded.len()
    );

    // One email per decision event.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM booking_events e
              WHERE NOT EXISTS (SELECT 1 FROM notification_deliveries d
                                 WHERE d.event_id = e.event_id AND d.channel = 'email'
                                   AND d.status IN ('sent', 'skipped', 'failed'))",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} events without a closed email delivery"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let sent: Vec<(String, String)> = sqlx::query_as(
        "SELECT p.email, d.detail FROM notification_deliveries d
           JOIN appointments a ON a.id = d.booking_id JOIN patients p ON p.id = a.patient_id
          WHERE d.channel = 'email' AND d.status = 'sent'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let failed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notification_deliveries WHERE channel = 'email' AND status = 'failed'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let mut by_patient: HashMap<&str, HashSet<&str>> = HashMap::new();
    for (email, message_id) in &sent {
        by_patient
            .entry(email)
            .or_default()
            .insert(message_id.trim_matches(['<', '>']));
    }
    let mut copies = 0;
    for (email, expected) in &by_patient {
        let found = citaflow_tests::mailpit::message_ids_to(email).await;
        for id in expected {
            let n = found
                .iter()
                .filter(|f| f.trim_matches(['<', '>']) == *id)
                .count();
            assert_eq!(n, 1, "Message-ID {id} to {email} is in Mailpit {n} times");
        }
        copies += found.len();
    }
    println!(
        "[chaos] emails: {} sent, {} in Mailpit for these patients, {failed} failed",
        sent.len(),
        copies
    );
    assert_eq!(
        copies,
        sent.len(),
        "no email beyond one per delivered event"
    );
    log(started, &format!("run {run}: every invariant holds"));
    drop(services);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    for run in 1..=runs {
        one_run(run).await;
    }
    println!("[chaos] {runs} run(s) passed");
}
