//! After the booking, against the real stack: staff record attendance once a visit has
//! started (an `ATTENDED` / `NO_SHOW` event, the patient's no-show count), patients cannot;
//! and the history of a visit lists every change in order, with who made it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use citaflow_schemas::{BookingEventKind, BookingStatus};
use citaflow_tests::{Directory, Services, TestApp, in_hours, read_all};
use serde_json::{Value, json};
use uuid::Uuid;

const PASSWORD: &str = "a-long-enough-password";

/// A logged-in user and their id.
struct User {
    id: String,
    token: String,
}

async fn secretary(app: &TestApp) -> User {
    let username = format!("sec-{}", Uuid::new_v4().simple());
    let response = app
        .post(
            "/users",
            &json!({"username": username, "password": PASSWORD, "role": "secretary"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    User {
        id: body["id"].as_str().unwrap().to_owned(),
        token: app.login(&username, PASSWORD).await,
    }
}

/// A patient with a login, booking with `d`'s doctor and center.
async fn patient_user(app: &TestApp, d: &Directory) -> (Directory, User) {
    let (own, token) = app.patient_who_logs_in(d).await;
    let record: Value = app
        .get(&format!("/patients/{}", own.patient))
        .await
        .json()
        .await
        .unwrap();
    let id = record["user_id"].as_str().unwrap().to_owned();
    (own, User { id, token })
}

/// `method path` as `token`, waiting up to 10 s for the outcome.
async fn waiting(app: &TestApp, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let response = app
        .http
        .post(app.url(path))
        .bearer_auth(token)
        .header("prefer", "wait=10")
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn mark(app: &TestApp, token: &str, booking: &str, outcome: &str) -> (u16, Value) {
    waiting(
        app,
        token,
        &format!("/bookings/{booking}/attendance"),
        &json!({"outcome": outcome}),
    )
    .await
}

/// Books `d` at `start` as `token` and waits for the confirmation, answering the booking id.
async fn confirmed(app: &TestApp, token: &str, d: &Directory, start: DateTime<Utc>) -> String {
    let (status, body) = waiting(
        app,
        token,
        "/bookings",
        &json!({"patient_id": d.patient, "doctor_id": d.doctor, "center_id": d.center,
                "start": start.to_rfc3339(), "duration_minutes": 30}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn no_show_count(app: &TestApp, token: &str, patient: Uuid) -> Value {
    let response = app.get_as(token, &format!("/patients/{patient}")).await;
    assert_eq!(response.status(), 200);
    let record: Value = response.json().await.unwrap();
    record.get("no_show_count").cloned().unwrap_or(Value::Null)
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

/// The whole minute at least `seconds` from now (bookings start on a whole minute).
fn minute_after(seconds: i64) -> DateTime<Utc> {
    let t = Utc::now() + chrono::Duration::seconds(seconds + 59);
    DateTime::from_timestamp(t.timestamp() - t.timestamp() % 60, 0).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_record_a_no_show_once_the_visit_started_and_patients_cannot() {
    let app = TestApp::spawn_with(Services::no_email(), |_| {}).await;
    let d = app.directory().await;
    let (own, patient) = patient_user(&app, &d).await;
    let secretary = secretary(&app).await;
    // Soon enough to wait for, late enough to be decided (and checked) before it starts.
    let start = minute_after(50);
    let booking = confirmed(&app, &app.admin_token, &own, start).await;

    let (status, body) = mark(&app, &secretary.token, &booking, "no_show").await;
    assert_eq!((status, code(&body)), (409, "not_started"), "{body}");
    let (status, body) = mark(&app, &patient.token, &booking, "no_show").await;
    assert_eq!(status, 403, "{body}");
    // Only a confirmed appointment: a cancelled one is refused whatever its time.
    let cancelled = confirmed(&app, &app.admin_token, &own, in_hours(30)).await;
    let (status, _) = waiting(
        &app,
        &app.admin_token,
        &format!("/bookings/{cancelled}/cancel"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = mark(&app, &secretary.token, &cancelled, "attended").await;
    assert_eq!((status, code(&body)), (409, "not_confirmed"), "{body}");
    assert_eq!(no_show_count(&app, &secretary.token, own.patient).await, 0);

    // Once the visit has started.
    let wait = (start - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(1);
    assert!(wait < Duration::from_secs(130), "{wait:?}");
    tokio::time::sleep(wait).await;
    let (status, body) = mark(&app, &patient.token, &booking, "no_show").await;
    assert_eq!(status, 403, "a patient never records attendance: {body}");
    let (status, body) = mark(&app, &secretary.token, &booking, "no_show").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["attendance"], "no_show", "{body}");
    assert_eq!(body["status"], "confirmed", "{body}");
    let (status, body) = mark(&app, &secretary.token, &booking, "no_show").await;
    assert_eq!((status, code(&body)), (409, "already_marked"), "{body}");

    // Staff see the count; the patient's own record does not carry it.
    assert_eq!(no_show_count(&app, &secretary.token, own.patient).await, 1);
    assert_eq!(no_show_count(&app, &app.admin_token, own.patient).await, 1);
    assert_eq!(
        no_show_count(&app, &patient.token, own.patient).await,
        Value::Null
    );

    // A correction: the patient came after all.
    let (status, body) = mark(&app, &app.admin_token, &booking, "attended").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["attendance"], "attended", "{body}");
    assert_eq!(no_show_count(&app, &secretary.token, own.patient).await, 0);
    // The visit is over: it can no longer be cancelled.
    let (status, body) = waiting(
        &app,
        &app.admin_token,
        &format!("/bookings/{booking}/cancel"),
        &json!({}),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (409, "attendance_recorded"),
        "{body}"
    );

    // Both marks are on the topic, in order, as the analytics consumer reads them.
    let topic = app.settings.topics.events.clone();
    let records = tokio::task::spawn_blocking(move || read_all(&topic, 4, Duration::from_secs(20)))
        .await
        .unwrap();
    let events = app.decode_events(&records).await;
    let marks: Vec<_> = events
        .iter()
        .filter(|e| {
            e.booking_id == booking
                && matches!(
                    e.kind,
                    BookingEventKind::NoShow | BookingEventKind::Attended
                )
        })
        .collect();
    assert_eq!(
        marks.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [BookingEventKind::NoShow, BookingEventKind::Attended],
        "{events:?}"
    );
    for e in &marks {
        assert_eq!(e.status, BookingStatus::Confirmed);
        assert_eq!(e.patient_id, own.patient.to_string());
        assert_eq!(e.starts_at, start.timestamp_millis());
    }

    // And in the history, with who recorded them.
    let history: Value = app
        .get(&format!("/bookings/{booking}/history"))
        .await
        .json()
        .await
        .unwrap();
    let steps: Vec<(&str, &str)> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor"]["role"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("requested", "admin"),
            ("confirmed", "admin"),
            ("no_show", "secretary"),
            ("attended", "admin"),
        ],
        "{history}"
    );
    assert_eq!(
        history["entries"][2]["actor"]["user_id"], secretary.id,
        "{history}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_follows_a_visit_through_every_change_with_its_actors() {
    let app = TestApp::spawn_with(Services::no_email(), |_| {}).await;
    let d = app.directory().await;
    let (own, patient) = patient_user(&app, &d).await;
    let secretary = secretary(&app).await;

    let first = confirmed(&app, &patient.token, &own, in_hours(48)).await;
    let (status, moved) = waiting(
        &app,
        &secretary.token,
        &format!("/bookings/{first}/reschedule"),
        &json!({"start": in_hours(50).to_rfc3339()}),
    )
    .await;
    assert_eq!(status, 201, "{moved}");
    let second = moved["id"].as_str().unwrap().to_owned();
    let (status, body) = waiting(
        &app,
        &patient.token,
        &format!("/bookings/{second}/cancel"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let history = |token: String, id: String| {
        let app = &app;
        async move {
            let response = app.get_as(&token, &format!("/bookings/{id}/history")).await;
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, seen) = history(patient.token.clone(), second.clone()).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["booking_id"], second);
    let entries = seen["entries"].as_array().unwrap();
    let steps: Vec<(&str, &str, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["booking_id"].as_str().unwrap(),
                e["actor"]["user_id"].as_str().unwrap_or("-"),
                e["actor"]["role"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    let (p, s) = (patient.id.as_str(), secretary.id.as_str());
    assert_eq!(
        steps,
        [
            ("requested", first.as_str(), p, "patient"),
            ("confirmed", first.as_str(), p, "patient"),
            ("requested", second.as_str(), s, "secretary"),
            ("moved", second.as_str(), s, "secretary"),
            ("cancelled", second.as_str(), p, "patient"),
        ],
        "{seen}"
    );
    assert_eq!(entries[2]["from_booking_id"], first, "{seen}");
    assert_eq!(entries[3]["from_booking_id"], first, "{seen}");
    assert_eq!(entries[3]["to_booking_id"], second, "{seen}");
    assert_eq!(entries[4]["reason_code"], "cancelled_by_request", "{seen}");
    assert_eq!(entries[4]["status"], "cancelled", "{seen}");
    let times: Vec<DateTime<Utc>> = entries
        .iter()
        .map(|e| e["at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    // Ids and roles only: nothing of the directory.
    for leak in ["Ana", "Lucía", "@example.test", "Revisión"] {
        assert!(!seen.to_string().contains(leak), "{leak} in {seen}");
    }

    // The old booking tells the same story; so do staff.
    let (_, from_old) = history(patient.token.clone(), first.clone()).await;
    assert_eq!(from_old["entries"], seen["entries"]);
    let (_, as_admin) = history(app.admin_token.clone(), second.clone()).await;
    assert_eq!(as_admin["entries"], seen["entries"]);

    // Another patient sees nothing of it, as with the booking itself.
    let (_, stranger) = patient_user(&app, &d).await;
    for id in [&first, &second] {
        let (status, body) = history(stranger.token.clone(), id.clone()).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(code(&body), "not_found");
    }
    let (status, _) = history(patient.token.clone(), Uuid::new_v4().to_string()).await;
    assert_eq!(status, 404);
}
