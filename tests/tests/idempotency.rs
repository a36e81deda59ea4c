//! `Idempotency-Key` on the booking commands: a retried request answers the first one's
//! outcome with the same booking id and never books twice; the same key with another body is
//! 422; keys belong to their caller.

use std::time::Duration;

use citaflow_tests::{Directory, Services, TestApp, in_hours};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

fn booking(d: &Directory, hour: i64) -> Value {
    json!({
        "patient_id": d.patient,
        "doctor_id": d.doctor,
        "center_id": d.center,
        "start": in_hours(hour).to_rfc3339(),
        "duration_minutes": 30,
    })
}

/// `POST path` as `token` with an `Idempotency-Key` (and `Prefer: wait=10` when `wait`),
/// answering the status, whether it was replayed, and the body.
async fn post_keyed(
    app: &TestApp,
    token: &str,
    path: &str,
    key: &str,
    body: Option<&Value>,
    wait: bool,
) -> (StatusCode, bool, Value) {
    let mut request = app
        .http
        .post(app.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", key);
    if let Some(body) = body {
        request = request.json(body);
    }
    if wait {
        request = request.header("Prefer", "wait=10");
    }
    let response = request.send().await.expect("POST");
    let status = response.status();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    (
        status,
        replayed,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// How many bookings the patient of `d` has.
async fn bookings_of(app: &TestApp, d: &Directory) -> usize {
    let response = app
        .get(&format!("/bookings?patient_id={}", d.patient))
        .await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    page["items"].as_array().expect("items").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_retried_with_its_key_makes_one_booking_and_answers_the_same_id() {
    let app = TestApp::spawn_with(Services::api_only(), |_| {}).await;
    let d = app.directory().await;
    let (d, token) = app.patient_who_logs_in(&d).await;
    let key = Uuid::new_v4().to_string();
    let body = booking(&d, 24);

    let (status, replayed, first) =
        post_keyed(&app, &token, "/bookings", &key, Some(&body), false).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    assert!(!replayed);
    for _ in 0..2 {
        let (status, replayed, again) =
            post_keyed(&app, &token, "/bookings", &key, Some(&body), false).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{again}");
        assert!(replayed);
        assert_eq!(again["booking_id"], first["booking_id"]);
    }
    assert_eq!(bookings_of(&app, &d).await, 1);

    // The same key with another body is another request: refused, nothing booked.
    let (status, _, refused) = post_keyed(
        &app,
        &token,
        "/bookings",
        &key,
        Some(&booking(&d, 25)),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["code"], "idempotency_key_reused");
    assert_eq!(bookings_of(&app, &d).await, 1);

    // A malformed key is refused before anything happens.
    for bad in ["", "has space", &"k".repeat(256)] {
        let (status, _, refused) = post_keyed(
            &app,
            &token,
            "/bookings",
            bad,
            Some(&booking(&d, 26)),
            false,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}: {refused}");
        assert_eq!(refused["error"]["code"], "invalid_idempotency_key");
    }
    assert_eq!(bookings_of(&app, &d).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_belong_to_their_caller() {
    let app = TestApp::spawn_with(Services::api_only(), |_| {}).await;
    let d = app.directory().await;
    let (ana, ana_token) = app.patient_who_logs_in(&d).await;
    let (bea, bea_token) = app.patient_who_logs_in(&d).await;
    let key = "shared-key-1";

    let (status, _, first) = post_keyed(
        &app,
        &ana_token,
        "/bookings",
        key,
        Some(&booking(&ana, 24)),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (status, replayed, other) = post_keyed(
        &app,
        &bea_token,
        "/bookings",
        key,
        Some(&booking(&bea, 30)),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{other}");
    assert!(!replayed);
    assert_ne!(other["booking_id"], first["booking_id"]);
    // Even the very same request, sent by someone else (the admin here), is theirs.
    let (status, replayed, admins) = post_keyed(
        &app,
        &app.admin_token,
        "/bookings",
        key,
        Some(&booking(&ana, 24)),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{admins}");
    assert!(!replayed);
    assert_ne!(admins["booking_id"], first["booking_id"]);
    assert_eq!(bookings_of(&app, &ana).await, 2);
    assert_eq!(bookings_of(&app, &bea).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decided_answers_and_cancels_are_replayed_as_first_answered() {
    let app = TestApp::spawn().await;
    let d = app.directory().await;
    let (d, token) = app.patient_who_logs_in(&d).await;
    let key = Uuid::new_v4().to_string();
    let body = booking(&d, 48);

    let (status, _, confirmed) =
        post_keyed(&app, &token, "/bookings", &key, Some(&body), true).await;
    assert_eq!(status, StatusCode::CREATED, "{confirmed}");
    let id = confirmed["id"].as_str().unwrap().to_owned();
    let (status, replayed, again) =
        post_keyed(&app, &token, "/bookings", &key, Some(&body), true).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert!(replayed);
    assert_eq!(again["id"], id.as_str());

    // With a new key the same body is a second request: the slot is taken by the first...
    let second_key = Uuid::new_v4().to_string();
    let (status, _, second) =
        post_keyed(&app, &token, "/bookings", &second_key, Some(&body), true).await;
    assert_eq!(status, StatusCode::CONFLICT, "{second}");
    assert_eq!(second["error"]["details"]["reason_code"], "slot_taken");
    // ... and its 409, retried with its key, answers the same 409 and booking.
    let (status, replayed, again) =
        post_keyed(&app, &token, "/bookings", &second_key, Some(&body), true).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert!(replayed);
    assert_eq!(again, second);
    assert_eq!(bookings_of(&app, &d).await, 2);

    let cancel_path = format!("/bookings/{id}/cancel");
    let cancel_key = Uuid::new_v4().to_string();
    let (status, _, cancelled) =
        post_keyed(&app, &token, &cancel_path, &cancel_key, None, true).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    // Retried, the cancel answers the same, not 409 already_cancelled.
    let (status, replayed, again) =
        post_keyed(&app, &token, &cancel_path, &cancel_key, None, true).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert!(replayed);
    assert_eq!(again, cancelled);
    // A new cancel (a new key) is a new request, and the booking is already cancelled.
    let (status, _, refused) = post_keyed(
        &app,
        &token,
        &cancel_path,
        &Uuid::new_v4().to_string(),
        None,
        false,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "already_cancelled");
    // The cancel's key on another operation is another request.
    let (status, _, refused) = post_keyed(
        &app,
        &token,
        "/bookings",
        &cancel_key,
        Some(&booking(&d, 50)),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["code"], "idempotency_key_reused");
    let decided = app.wait_for_decision(&id, Duration::from_secs(5)).await;
    assert_eq!(decided["status"], "cancelled");
}
