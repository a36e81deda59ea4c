//! The booking workflow on the real stack: conflicts under concurrency, per-doctor order,
//! delay topics, dead letters, crashes, cancel and reschedule, `Prefer: wait`. The processor
//! decides in batches here (`TestApp` lets a worker wait 20 ms for more records), and each test
//! that stresses a guarantee checks that batches of more than one command were formed.

use std::{collections::HashMap, time::Duration};

use chrono::Duration as Minutes;
use citaflow_tests::{
    Batches, Directory, Services, TEST_PARTITIONS, TestApp, in_hours, process::ServiceProcess,
    read_all,
};
use futures_util::future::join_all;
use rdkafka::{
    ClientConfig, Message,
    message::Headers,
    producer::{FutureProducer, FutureRecord},
};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

fn header(message: &rdkafka::message::OwnedMessage, key: &str) -> Option<String> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The records of `topic` (see [`read_all`]), read off the async runtime's threads.
async fn read_topic(
    topic: &str,
    at_least: usize,
    within: Duration,
) -> Vec<rdkafka::message::OwnedMessage> {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || read_all(&topic, at_least, within))
        .await
        .unwrap()
}

async fn booking_id(response: reqwest::Response) -> String {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(
        status == 202 || status == 201,
        "unexpected {status}: {body}"
    );
    body["booking_id"]
        .as_str()
        .or(body["id"].as_str())
        .unwrap()
        .to_string()
}

/// Holds the per-doctor lock the processor takes, so deciding that doctor times out: a
/// transient failure of the real database, for one doctor only.
async fn hold_doctor_lock(app: &TestApp, doctor: Uuid) -> PgConnection {
    let url = secrecy::ExposeSecret::expose_secret(&app.settings.database.url).to_owned();
    let mut conn = PgConnection::connect(&url).await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(hashtextextended($1::text, 7))")
        .bind(doctor)
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_requests_for_one_slot_confirm_exactly_one() {
    let mut app = TestApp::spawn_with(Services::no_email(), |_| {}).await;
    app.spawn_processor().await;
    let d = app.directory().await;
    let start = in_hours(24);

    let requests = (0..200).map(|i| {
        let app = &app;
        let d = &d;
        // Every request overlaps every other: starts within 20 minutes, lasts 30.
        async move { booking_id(app.book(d, start + Minutes::minutes(i % 20), 30).await).await }
    });
    let ids = join_all(requests).await;
    assert_eq!(ids.len(), 200);
    app.wait_until_none_pending(Duration::from_secs(60)).await;

    let mut outcomes: HashMap<(String, String), usize> = HashMap::new();
    for id in &ids {
        let b: Value = app
            .get(&format!("/bookings/{id}"))
            .await
            .json()
            .await
            .unwrap();
        let key = (
            b["status"].as_str().unwrap().to_owned(),
            b["reason_code"].as_str().unwrap_or("").to_owned(),
        );
        *outcomes.entry(key).or_default() += 1;
    }
    assert_eq!(
        outcomes.get(&("confirmed".into(), "".into())),
        Some(&1),
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.get(&("rejected".into(), "slot_taken".into())),
        Some(&199),
        "{outcomes:?}"
    );

    let confirmed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM appointments WHERE doctor_id = $1 AND status = 'confirmed'",
    )
    .bind(d.doctor)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(confirmed, 1, "the database agrees");
    Batches::in_process(&app).assert_formed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_doctors_go_on_while_one_waits_in_a_retry_topic_and_its_order_holds() {
    let app = TestApp::spawn_with(Services::no_email(), |s| {
        s.database.statement_timeout_ms = 400;
        // Long enough for a burst of the others while the slow one waits in the second.
        s.topics.retry_delays_ms = vec![500, 10_000];
    })
    .await;
    let slow = app.directory().await;
    let others: Vec<Directory> = join_all((0..3).map(|_| app.directory())).await;
    let start = in_hours(30);

    let lock = hold_doctor_lock(&app, slow.doctor).await;
    let first = booking_id(app.book(&slow, start, 30).await).await;

    // While it waits in the delay topics, other doctors are decided at once.
    for d in &others {
        let id = booking_id(app.book(d, start, 30).await).await;
        let b = app.wait_for_decision(&id, Duration::from_secs(5)).await;
        assert_eq!(b["status"], "confirmed");
    }
    // It reached the second delay topic, with its provenance.
    let retried = read_topic(
        &app.settings.topics.retry_topics()[1],
        1,
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(retried.len(), 1);
    assert_eq!(
        header(&retried[0], "citaflow-attempt").as_deref(),
        Some("2")
    );
    assert_eq!(
        header(&retried[0], "citaflow-original-topic").as_deref(),
        Some(app.settings.topics.requests.as_str())
    );
    assert!(header(&retried[0], "citaflow-due-at").is_some());
    assert!(
        header(&retried[0], "citaflow-error")
            .unwrap()
            .contains("transient")
    );
    // A burst of the others, decided in batches, is not held up either.
    for id in burst(&app, &others, 60, in_hours(90)).await {
        app.wait_for_decision(&id, Duration::from_secs(10)).await;
    }
    let pending: Value = app
        .get(&format!("/bookings/{first}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pending["status"], "pending");
    let delayed = read_topic(
        &app.settings.topics.retry_topics()[0],
        1,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        delayed.len(),
        1,
        "only the slow doctor's command went to the delay topics"
    );
    Batches::in_process(&app).assert_formed();

    // The database recovers; a later request of the same doctor for the same slot must not
    // overtake the earlier one.
    drop(lock);
    let second = booking_id(app.book(&slow, start, 30).await).await;
    let first = app.wait_for_decision(&first, Duration::from_secs(15)).await;
    let second = app
        .wait_for_decision(&second, Duration::from_secs(15))
        .await;
    assert_eq!(first["status"], "confirmed", "{first}");
    assert_eq!(second["status"], "rejected", "{second}");
    assert_eq!(second["reason_code"], "slot_taken");
}

/// The order of one doctor's commands holds across a processor restart: the new process
/// rebuilds the parking from the delay topics before it decides anything of the partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_processor_keeps_a_doctor_behind_its_command_in_a_delay_topic() {
    let app = TestApp::spawn_with(Services::api_only(), |s| {
        s.database.statement_timeout_ms = 400;
        // Longer than the session timeout, after which the group hands the dead process's
        // partitions to its successor.
        s.topics.retry_delays_ms = vec![500, 30_000];
    })
    .await;
    let slow = app.directory().await;
    let start = in_hours(32);
    let mut processor = ServiceProcess::start("booking-processor", &app.settings);

    let lock = hold_doctor_lock(&app, slow.doctor).await;
    let first = booking_id(app.book(&slow, start, 30).await).await;
    // It waits in the second delay topic (30 s) when the processor dies.
    let retried = read_topic(
        &app.settings.topics.retry_topics()[1],
        1,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        retried.len(),
        1,
        "the first command reached the second delay topic"
    );
    processor.kill();
    drop(lock);
    let successor = ServiceProcess::start("booking-processor", &app.settings);
    // Other doctors' commands are decided in batches meanwhile.
    let others: Vec<Directory> = join_all((0..4).map(|_| app.directory())).await;
    for id in burst(&app, &others, 60, in_hours(92)).await {
        app.wait_for_decision(&id, Duration::from_secs(60)).await;
    }
    successor.batches(&app.settings).await.assert_formed();

    // A later request of the same doctor for the same slot, decided by the new process: it must
    // not overtake the first, which is still waiting for its delay.
    let second = booking_id(app.book(&slow, start, 30).await).await;
    let first = app.wait_for_decision(&first, Duration::from_secs(70)).await;
    let second = app
        .wait_for_decision(&second, Duration::from_secs(70))
        .await;
    assert_eq!(first["status"], "confirmed", "{first}");
    assert_eq!(second["status"], "rejected", "{second}");
    assert_eq!(second["reason_code"], "slot_taken");
    let decided = |b: &Value| {
        chrono::DateTime::parse_from_rfc3339(b["decided_at"].as_str().unwrap()).unwrap()
    };
    assert!(
        decided(&first) < decided(&second),
        "decided in order: {first} {second}"
    );
    drop(successor);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_ridden_out_through_the_retry_topics() {
    let app = TestApp::spawn_with(
        Services {
            email: false,
            database_proxy: true,
            ..Services::default()
        },
        |s| {
            s.topics.retry_delays_ms = vec![1_000, 4_000, 8_000];
            // The five requests below reach the processor together, as one batch.
            s.processor.batch_wait_ms = 2_000;
        },
    )
    .await;
    let d = app.directory().await;
    let proxy = app.database_proxy.as_ref().unwrap();

    // The processor loses PostgreSQL with accepted requests on their way.
    proxy.down();
    let ids: Vec<String> = join_all((0..5).map(|i| {
        let app = &app;
        let d = &d;
        async move { booking_id(app.book(d, in_hours(40) + Minutes::hours(i), 30).await).await }
    }))
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let retried: i64 = {
        let topic = app.settings.topics.retry_topics()[0].clone();
        tokio::task::spawn_blocking(move || {
            read_all(&topic, 5, Duration::from_secs(10)).len() as i64
        })
        .await
        .unwrap()
    };
    assert!(
        retried >= 5,
        "the commands went through the first delay topic ({retried})"
    );
    let pending: Value = app
        .get(&format!("/bookings/{}", ids[0]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pending["status"], "pending");
    proxy.up();

    app.wait_until_none_pending(Duration::from_secs(30)).await;
    for id in &ids {
        let b: Value = app
            .get(&format!("/bookings/{id}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(b["status"], "confirmed", "{b}");
    }
    Batches::in_process(&app).assert_formed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_last_attempt_commands_are_dead_lettered_rejected_and_can_be_replayed() {
    let app = TestApp::spawn_with(
        Services {
            email: false,
            database_proxy: true,
            ..Services::default()
        },
        |s| {
            s.topics.retry_delays_ms = vec![300, 600];
        },
    )
    .await;
    // Three doctors (a doctor's later requests would wait behind its first one instead).
    let doctors: Vec<Directory> = join_all((0..3).map(|_| app.directory())).await;
    let proxy = app.database_proxy.as_ref().unwrap();
    proxy.down();
    let ids: Vec<String> = join_all(doctors.iter().map(|d| {
        let app = &app;
        async move { booking_id(app.book(d, in_hours(50), 30).await).await }
    }))
    .await;

    let dead = read_topic(&app.settings.topics.dlq, 3, Duration::from_secs(30)).await;
    assert_eq!(dead.len(), 3, "every command reached the dead-letter topic");
    for record in &dead {
        assert_eq!(
            header(record, "citaflow-original-topic").as_deref(),
            Some(app.settings.topics.requests.as_str())
        );
        assert!(header(record, "citaflow-original-partition").is_some());
        assert!(header(record, "citaflow-original-offset").is_some());
        assert_eq!(header(record, "citaflow-attempt").as_deref(), Some("3"));
        assert_eq!(
            header(record, "citaflow-reason").as_deref(),
            Some("exhausted")
        );
        let key = String::from_utf8_lossy(record.key().unwrap()).into_owned();
        assert!(
            doctors.iter().any(|d| d.doctor.to_string() == key),
            "keyed by doctor"
        );
    }

    // Once the database is back they end rejected, saying why.
    proxy.up();
    app.wait_until_none_pending(Duration::from_secs(30)).await;
    for id in &ids {
        let b: Value = app
            .get(&format!("/bookings/{id}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(b["status"], "rejected", "{b}");
        assert_eq!(b["reason_code"], "retries_exhausted");
    }

    // An operator re-drives them with the CLI; they are decided again, and confirmed.
    let output = app.cli(&["dlq", "list"]);
    assert!(output.status.success(), "{output:?}");
    let listing = String::from_utf8_lossy(&output.stdout);
    assert_eq!(listing.matches("exhausted").count(), 3, "{listing}");
    let output = app.cli(&["dlq", "replay"]);
    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("replayed 3"),
        "{output:?}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let counts = app.status_counts().await;
        if counts.get("confirmed") == Some(&3) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not re-driven: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A second replay finds nothing new.
    let output = app.cli(&["dlq", "replay"]);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("replayed 0"),
        "{output:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_processor_killed_mid_burst_still_decides_each_request_exactly_once() {
    let app = TestApp::spawn_with(Services::api_only(), |_| {}).await;
    let directories: Vec<Directory> = join_all((0..40).map(|_| app.directory())).await;
    let mut processor = ServiceProcess::start("booking-processor", &app.settings);

    let total = 2_000usize;
    let base = in_hours(60);
    let burst = {
        let app = &app;
        let directories = &directories;
        futures_util::stream::iter(0..total)
            .map(move |i| async move {
                let d = &directories[i % directories.len()];
                // Some requests of a doctor collide, most do not.
                let start = base + Minutes::minutes(((i / directories.len()) as i64 % 40) * 20);
                booking_id(app.book(d, start, 30).await).await
            })
            .buffer_unordered(32)
            .collect::<Vec<String>>()
    };
    let killer = async {
        // Kill it while it is deciding in batches: the burst keeps its partitions' queues
        // full, so a batch is in hand whenever it is killed.
        loop {
            let decided: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_commands")
                .fetch_one(&app.pool)
                .await
                .unwrap();
            if decided >= 300 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        processor.batches(&app.settings).await.assert_formed();
        processor.kill();
        tokio::time::sleep(Duration::from_millis(500)).await;
        processor = ServiceProcess::start("booking-processor", &app.settings);
    };
    let (ids, ()) = tokio::join!(burst, killer);
    assert_eq!(ids.len(), total);
    app.wait_until_none_pending(Duration::from_secs(120)).await;

    let counts = app.status_counts().await;
    assert_eq!(counts.values().sum::<i64>(), total as i64);
    assert_eq!(counts.get("pending"), None);
    let processed: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_commands")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(processed, total as i64, "each command decided once");
    let recorded: i64 = sqlx::query_scalar("SELECT count(DISTINCT booking_id) FROM booking_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(recorded, total as i64, "one recorded outcome per booking");

    // Every booking has exactly one outcome event on the topic (a redelivered decision is
    // re-published with the same event id, which consumers de-duplicate).
    let events = read_topic(&app.settings.topics.events, total, Duration::from_secs(60)).await;
    let mut by_booking: HashMap<String, std::collections::HashSet<String>> = HashMap::new();
    for event in app.decode_events(&events).await {
        by_booking
            .entry(event.booking_id)
            .or_default()
            .insert(event.event_id);
    }
    assert_eq!(
        by_booking.len(),
        total,
        "an outcome event for every booking"
    );
    assert!(
        by_booking.values().all(|ids| ids.len() == 1),
        "exactly one outcome per booking"
    );
    eprintln!(
        "{} event records for {} bookings (re-published after the kill: {})",
        events.len(),
        total,
        events.len() - total
    );
    drop(processor);
}

use futures_util::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_records_are_dead_lettered_without_stopping_the_partition() {
    let app = TestApp::spawn_with(Services::no_email(), |_| {}).await;
    let d = app.directory().await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &app.settings.kafka.bootstrap_servers)
        .set("partitioner", "murmur2_random")
        .create()
        .unwrap();
    let key = d.doctor.to_string();
    for payload in [
        b"{\"not\": \"avro\"}".to_vec(),
        vec![0, 0x7f, 0xff, 0xff, 0xf0, 1, 2, 3],
    ] {
        producer
            .send(
                FutureRecord::to(&app.settings.topics.requests)
                    .key(&key)
                    .payload(&payload),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
    }
    // The same partition keeps going, its other records decided in batches.
    let id = booking_id(app.book(&d, in_hours(20), 30).await).await;
    let b = app.wait_for_decision(&id, Duration::from_secs(10)).await;
    assert_eq!(b["status"], "confirmed");
    let others: Vec<Directory> = join_all((0..3).map(|_| app.directory())).await;
    for id in burst(&app, &others, 30, in_hours(94)).await {
        app.wait_for_decision(&id, Duration::from_secs(10)).await;
    }
    Batches::in_process(&app).assert_formed();

    let dead = read_topic(&app.settings.topics.dlq, 2, Duration::from_secs(15)).await;
    assert_eq!(dead.len(), 2);
    let errors: Vec<String> = dead
        .iter()
        .map(|r| header(r, "citaflow-error").unwrap())
        .collect();
    assert!(errors[0].contains("magic byte"), "{errors:?}");
    assert!(errors[1].contains("unknown"), "{errors:?}");
    assert!(
        dead.iter()
            .all(|r| header(r, "citaflow-reason").as_deref() == Some("permanent"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefer_wait_answers_the_outcome_or_202_in_time() {
    let app = TestApp::spawn_with(Services::no_email(), |s| {
        s.database.statement_timeout_ms = 400;
    })
    .await;
    let d = app.directory().await;
    let start = in_hours(26);
    let body = |start: chrono::DateTime<chrono::Utc>| {
        json!({"patient_id": d.patient, "doctor_id": d.doctor, "center_id": d.center,
               "start": start.to_rfc3339(), "duration_minutes": 30})
    };

    let confirmed = app
        .http
        .post(app.url("/bookings"))
        .bearer_auth(&app.admin_token)
        .header("prefer", "wait=10")
        .json(&body(start))
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 201);
    assert_eq!(confirmed.headers()["preference-applied"], "wait=10");
    let b: Value = confirmed.json().await.unwrap();
    assert_eq!(b["status"], "confirmed");

    let rejected = app
        .http
        .post(app.url("/bookings"))
        .bearer_auth(&app.admin_token)
        .header("prefer", "wait=10")
        .json(&body(start))
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status(), 409);
    let e: Value = rejected.json().await.unwrap();
    assert_eq!(e["error"]["code"], "booking_rejected");
    assert_eq!(e["error"]["details"]["reason_code"], "slot_taken");
    assert_eq!(e["error"]["details"]["booking"]["status"], "rejected");

    // Not decided in time: 202, and the booking is there.
    let lock = hold_doctor_lock(&app, d.doctor).await;
    let slow = app
        .http
        .post(app.url("/bookings"))
        .bearer_auth(&app.admin_token)
        .header("prefer", "wait=1")
        .json(&body(start + Minutes::hours(2)))
        .send()
        .await
        .unwrap();
    assert_eq!(slow.status(), 202);
    let accepted: Value = slow.json().await.unwrap();
    assert_eq!(accepted["status"], "pending");
    drop(lock);
    let later = app
        .wait_for_decision(
            accepted["booking_id"].as_str().unwrap(),
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(later["status"], "confirmed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_reschedule() {
    let app = TestApp::spawn_with(Services::no_email(), |_| {}).await;
    let d = app.directory().await;
    let other_doctor = app.create_doctor().await;
    let start = in_hours(28);
    let wait = |path: String, body: Value| {
        let app = &app;
        async move {
            app.http
                .post(app.url(&path))
                .bearer_auth(&app.admin_token)
                .header("prefer", "wait=10")
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };

    // Cancel a confirmed booking, then again.
    let id = booking_id(app.book(&d, start, 30).await).await;
    app.wait_for_decision(&id, Duration::from_secs(5)).await;
    let cancelled = wait(format!("/bookings/{id}/cancel"), json!({})).await;
    assert_eq!(cancelled.status(), 200);
    assert_eq!(
        cancelled.json::<Value>().await.unwrap()["status"],
        "cancelled"
    );
    let twice = wait(format!("/bookings/{id}/cancel"), json!({})).await;
    assert_eq!(twice.status(), 409);
    assert_eq!(
        twice.json::<Value>().await.unwrap()["error"]["code"],
        "already_cancelled"
    );
    // Its slot is free again.
    let again = booking_id(app.book(&d, start, 30).await).await;
    assert_eq!(
        app.wait_for_decision(&again, Duration::from_secs(5)).await["status"],
        "confirmed"
    );

    // Reschedule to a free slot: the new one is confirmed and the old one cancelled together.
    let moved = wait(
        format!("/bookings/{again}/reschedule"),
        json!({"start": (start + Minutes::hours(3)).to_rfc3339()}),
    )
    .await;
    assert_eq!(moved.status(), 201);
    let new: Value = moved.json().await.unwrap();
    assert_eq!(new["status"], "confirmed");
    assert_eq!(new["previous_booking_id"], again.as_str());
    let old: Value = app
        .get(&format!("/bookings/{again}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(old["status"], "cancelled");
    assert_eq!(old["reason_code"], "rescheduled");

    // Reschedule onto a taken slot: refused, and the old appointment stays as it was.
    let blocker = booking_id(app.book(&d, start + Minutes::hours(6), 30).await).await;
    app.wait_for_decision(&blocker, Duration::from_secs(5))
        .await;
    let new_id = new["id"].as_str().unwrap();
    let refused = wait(
        format!("/bookings/{new_id}/reschedule"),
        json!({"start": (start + Minutes::hours(6)).to_rfc3339()}),
    )
    .await;
    assert_eq!(refused.status(), 409);
    let e: Value = refused.json().await.unwrap();
    assert_eq!(e["error"]["details"]["reason_code"], "slot_taken");
    let kept: Value = app
        .get(&format!("/bookings/{new_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kept["status"], "confirmed", "the old appointment stays");

    // Moving within an overlapping window of the same doctor works (the old slot is freed first).
    let shifted = wait(
        format!("/bookings/{new_id}/reschedule"),
        json!({"start": (start + Minutes::hours(3) + Minutes::minutes(15)).to_rfc3339()}),
    )
    .await;
    assert_eq!(shifted.status(), 201);
    let shifted: Value = shifted.json().await.unwrap();

    // And to another doctor.
    let shifted_id = shifted["id"].as_str().unwrap();
    let other = wait(
        format!("/bookings/{shifted_id}/reschedule"),
        json!({"start": start.to_rfc3339(), "doctor_id": other_doctor}),
    )
    .await;
    assert_eq!(other.status(), 201);
    let other: Value = other.json().await.unwrap();
    assert_eq!(other["doctor_id"], other_doctor.to_string());

    // A cancelled booking cannot be moved.
    let stale = wait(
        format!("/bookings/{id}/reschedule"),
        json!({"start": (start + Minutes::hours(9)).to_rfc3339()}),
    )
    .await;
    assert_eq!(stale.status(), 409);

    // The events tell the whole story to a data team.
    let kinds: Vec<String> = sqlx::query_scalar("SELECT kind FROM booking_events ORDER BY seq")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    for expected in ["CONFIRMED", "CANCELLED", "RESCHEDULED", "REJECTED"] {
        assert!(
            kinds.iter().any(|k| k == expected),
            "{expected} missing from {kinds:?}"
        );
    }
}

/// Books `total` appointments over `doctors` doctors, concurrently, answering the booking ids.
async fn burst(
    app: &TestApp,
    directories: &[Directory],
    total: usize,
    base: chrono::DateTime<chrono::Utc>,
) -> Vec<String> {
    futures_util::stream::iter(0..total)
        .map(|i| async move {
            let d = &directories[i % directories.len()];
            let start = base + Minutes::minutes(((i / directories.len()) as i64 % 40) * 20);
            booking_id(app.book(d, start, 30).await).await
        })
        .buffer_unordered(32)
        .collect()
        .await
}

async fn processed(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM processed_commands")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// After a run: every booking decided once, with one recorded outcome.
async fn assert_each_decided_once(app: &TestApp, total: i64) {
    app.wait_until_none_pending(Duration::from_secs(120)).await;
    assert_eq!(processed(app).await, total, "each command decided once");
    let outcomes: i64 = sqlx::query_scalar("SELECT count(*) FROM booking_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(outcomes, total, "one outcome per booking");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_within_the_deadline_and_a_successor_finishes_the_rest() {
    let app = TestApp::spawn_with(Services::api_only(), |s| {
        s.processor.drain_timeout_ms = 5_000;
    })
    .await;
    let directories: Vec<Directory> = join_all((0..20).map(|_| app.directory())).await;
    let mut first = ServiceProcess::start("booking-processor", &app.settings);
    let total = 600;
    let (ids, status) = tokio::join!(burst(&app, &directories, total, in_hours(70)), async {
        while processed(&app).await < 100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        first.batches(&app.settings).await.assert_formed();
        let started = std::time::Instant::now();
        let status = tokio::task::block_in_place(|| first.terminate(Duration::from_secs(15)));
        (status, started.elapsed())
    });
    let (status, took) = status;
    let status = status.expect("the processor exits after SIGTERM");
    assert!(status.success(), "clean exit: {status:?}");
    assert!(
        took < Duration::from_secs(10),
        "within the drain deadline (+ margin): {took:?}"
    );
    assert_eq!(ids.len(), total);
    let _successor = ServiceProcess::start("booking-processor", &app.settings);
    assert_each_decided_once(&app, total as i64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebalance_mid_burst_loses_and_repeats_nothing() {
    let app = TestApp::spawn_with(Services::api_only(), |_| {}).await;
    let directories: Vec<Directory> = join_all((0..30).map(|_| app.directory())).await;
    let first = ServiceProcess::start("booking-processor", &app.settings);
    let total = 900;
    let mut second = None;
    let (ids, ()) = tokio::join!(burst(&app, &directories, total, in_hours(80)), async {
        while processed(&app).await < 150 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A second processor joins: partitions move while commands are in flight.
        second = Some(ServiceProcess::start("booking-processor", &app.settings));
        while processed(&app).await < 600 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // And leaves again, gracefully: its partitions are drained and handed back.
        tokio::task::block_in_place(|| second.as_mut().unwrap().terminate(Duration::from_secs(30)));
    });
    assert_eq!(ids.len(), total);
    assert_each_decided_once(&app, total as i64).await;
    first.batches(&app.settings).await.assert_formed();
}

/// Kafka's default partitioner, which the platform's producers use for the doctor key
/// (`murmur2_random`): murmur2 of the key, made positive, modulo the partitions.
fn partition_of(key: &[u8], partitions: i32) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ key.len() as u32;
    let mut chunks = key.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes(chunk.try_into().unwrap()).wrapping_mul(M);
        k ^= k >> 24;
        h = h.wrapping_mul(M) ^ k.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, byte) in tail.iter().enumerate() {
            h ^= u32::from(*byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    (h & 0x7fff_ffff) as i32 % partitions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_gives_each_command_its_own_outcome_in_order() {
    let mut app = TestApp::spawn_with(Services::api_only(), |s| {
        // The worker waits for the whole queue: every record below is in one batch.
        s.processor.batch_wait_ms = 2_000;
    })
    .await;
    let d = app.directory().await;
    let partition = partition_of(d.doctor.to_string().as_bytes(), TEST_PARTITIONS);
    // A second doctor whose commands travel on the same partition.
    let other = loop {
        let doctor = app.create_doctor().await;
        if partition_of(doctor.to_string().as_bytes(), TEST_PARTITIONS) == partition {
            break doctor;
        }
    };
    let inactive = Directory {
        doctor: other,
        ..d.clone()
    };

    // Accepted while no processor runs, so they wait in the partition together.
    let start = in_hours(50);
    let first = booking_id(app.book(&d, start, 30).await).await;
    let collides = booking_id(app.book(&d, start + Minutes::minutes(10), 30).await).await;
    let to_inactive = booking_id(app.book(&inactive, start, 30).await).await;
    sqlx::query("UPDATE doctors SET active = false WHERE id = $1")
        .bind(other)
        .execute(&app.pool)
        .await
        .unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &app.settings.kafka.bootstrap_servers)
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::to(&app.settings.topics.requests)
                .partition(partition)
                .key(&d.doctor.to_string())
                .payload(b"not a command".as_slice()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let last = booking_id(app.book(&d, start + Minutes::hours(2), 30).await).await;

    app.spawn_processor().await;
    let decided = |b: &Value| {
        chrono::DateTime::parse_from_rfc3339(b["decided_at"].as_str().unwrap()).unwrap()
    };
    let mut outcomes = Vec::new();
    for id in [&first, &collides, &to_inactive, &last] {
        let b = app.wait_for_decision(id, Duration::from_secs(20)).await;
        outcomes.push((
            b["status"].as_str().unwrap().to_owned(),
            b["reason_code"].as_str().unwrap_or("").to_owned(),
            decided(&b),
        ));
    }
    let verdicts: Vec<(&str, &str)> = outcomes
        .iter()
        .map(|(s, r, _)| (s.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("confirmed", ""),
            ("rejected", "slot_taken"),
            ("rejected", "doctor_inactive"),
            ("confirmed", ""),
        ]
    );
    // The three before the malformed record were decided in one transaction (one decision
    // time); the malformed one took the one-record path; the last came after it.
    assert_eq!(outcomes[0].2, outcomes[1].2, "{outcomes:?}");
    assert_eq!(outcomes[0].2, outcomes[2].2, "{outcomes:?}");
    assert!(outcomes[3].2 > outcomes[0].2, "{outcomes:?}");

    let dead = read_topic(&app.settings.topics.dlq, 1, Duration::from_secs(15)).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        header(&dead[0], "citaflow-reason").as_deref(),
        Some("permanent")
    );
    assert_eq!(dead[0].partition(), partition);

    // The events follow the commands' order on the doctors' shared partition.
    let records = read_topic(&app.settings.topics.events, 4, Duration::from_secs(15)).await;
    assert!(records.iter().all(|r| r.partition() == partition));
    let order: Vec<String> = app
        .decode_events(&records)
        .await
        .into_iter()
        .map(|e| e.booking_id)
        .collect();
    assert_eq!(order, [first, collides, to_inactive, last]);

    let batches = Batches::in_process(&app);
    batches.assert_formed();
    assert_eq!(batches.commands, 4.0, "{batches:?}");
    assert_eq!(batches.batches, 2.0, "{batches:?}");
}
