//! Nothing stays pending forever: a booking whose command never reached Kafka (the API died
//! between writing the pending row and producing) is closed `not_accepted` once the bound has
//! passed, by an expiry decided on its doctor's partition; and an expiry never overtakes a
//! request that was produced, however late the processor gets to it.

use std::{collections::HashSet, time::Duration};

use chrono::Utc;
use citaflow_booking_store::{self as store, NewAppointment};
use citaflow_tests::{Services, TestApp, in_hours, read_all};
use uuid::Uuid;

/// Short bounds for the tests (the retry ladder of the test topics is 0.5 s + 2 s).
const EXPIRE_AFTER_SECS: u64 = 3;
const SWEEP_EVERY_SECS: u64 = 1;

fn short_expiry(settings: &mut citaflow_platform::Settings) {
    settings.processor.expire_pending_after_secs = EXPIRE_AFTER_SECS;
    settings.processor.pending_sweep_interval_secs = SWEEP_EVERY_SECS;
}

#[tokio::test]
async fn a_booking_whose_request_never_arrived_is_closed_after_the_bound_once() {
    let app = TestApp::spawn_with(Services::no_email(), short_expiry).await;
    let dir = app.directory().await;

    // The row exactly as the API writes it, with no command behind it.
    let lost = Uuid::new_v4();
    let starts_at = in_hours(48);
    store::insert_pending(
        &app.pool,
        &NewAppointment {
            id: lost,
            command_id: Uuid::new_v4(),
            doctor_id: dir.doctor,
            patient_id: dir.patient,
            center_id: dir.center,
            starts_at,
            ends_at: starts_at + chrono::Duration::minutes(30),
            reason: None,
            previous_booking_id: None,
            requested_by: None,
            requested_at: Utc::now(),
            service_id: None,
        },
    )
    .await
    .unwrap();
    // A booking of the same doctor accepted meanwhile, the normal way.
    let accepted = app.book(&dir, in_hours(72), 30).await;
    assert_eq!(accepted.status(), 202);
    let accepted: serde_json::Value = accepted.json().await.unwrap();
    let accepted_id = accepted["booking_id"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();

    let closed = app
        .wait_for_decision(&lost.to_string(), Duration::from_secs(30))
        .await;
    let waited = started.elapsed();
    assert_eq!(closed["status"], "rejected", "{closed}");
    assert_eq!(closed["reason_code"], "not_accepted", "{closed}");
    assert!(
        waited >= Duration::from_secs(EXPIRE_AFTER_SECS) - Duration::from_millis(300),
        "closed after {waited:?}, before the bound of {EXPIRE_AFTER_SECS} s"
    );
    let bound = Duration::from_secs(EXPIRE_AFTER_SECS + SWEEP_EVERY_SECS + 5);
    assert!(waited <= bound, "still pending after {waited:?}");
    println!(
        "a lost booking was closed {waited:?} after its request (bound {EXPIRE_AFTER_SECS} s + sweep {SWEEP_EVERY_SECS} s)"
    );

    // Several more sweeps: the expiry is decided once, the confirmed booking is untouched.
    tokio::time::sleep(Duration::from_secs(3 * SWEEP_EVERY_SECS + 1)).await;
    let confirmed = app
        .wait_for_decision(&accepted_id, Duration::from_secs(10))
        .await;
    assert_eq!(confirmed["status"], "confirmed", "{confirmed}");

    let topic = app.settings.topics.events.clone();
    let events = tokio::task::spawn_blocking(move || read_all(&topic, 2, Duration::from_secs(20)))
        .await
        .unwrap();
    let mut ids = HashSet::new();
    for event in app.decode_events(&events).await {
        if event.booking_id == lost.to_string() {
            assert_eq!(event.kind, citaflow_schemas::BookingEventKind::Rejected);
            assert_eq!(event.reason_code.as_deref(), Some("not_accepted"));
            ids.insert(event.event_id);
        }
    }
    assert_eq!(
        ids.len(),
        1,
        "one decision event id for the expired booking"
    );
    let decided: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM processed_commands WHERE booking_id = $1 AND kind = 'expire'",
    )
    .bind(lost)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        decided, 1,
        "the expiry is decided once, whatever the number of sweeps"
    );
}

#[tokio::test]
async fn an_expiry_never_overtakes_a_request_that_was_produced() {
    // The API accepts while no processor runs, for longer than the bound; the processor that
    // starts then sweeps at once and finds the booking stale, but the create comes first on
    // the doctor's partition.
    let mut app = TestApp::spawn_with(
        Services {
            processor: false,
            ..Services::no_email()
        },
        short_expiry,
    )
    .await;
    let dir = app.directory().await;
    let response = app.book(&dir, in_hours(30), 30).await;
    assert_eq!(response.status(), 202);
    let body: serde_json::Value = response.json().await.unwrap();
    let id = body["booking_id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(EXPIRE_AFTER_SECS + 2)).await;

    app.spawn_processor().await;
    let decided = app.wait_for_decision(&id, Duration::from_secs(30)).await;
    assert_eq!(decided["status"], "confirmed", "{decided}");
    // The expiry the sweep produced found it decided and changed nothing.
    tokio::time::sleep(Duration::from_secs(2 * SWEEP_EVERY_SECS + 1)).await;
    let later = app.wait_for_decision(&id, Duration::from_secs(5)).await;
    assert_eq!(later["status"], "confirmed", "{later}");
    let expiries: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM processed_commands WHERE booking_id = $1::uuid AND kind = 'expire'",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        expiries, 1,
        "the sweep did ask to expire it, and it was a no-op"
    );
}
