//! `GET /availability` and the agenda rules of bookings, through the API against the real
//! stack: what is offered is what the processor confirms.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use citaflow_tests::{Directory, Services, TestApp};
use serde_json::{Value, json};
use uuid::Uuid;

/// Friday before the spring change in Madrid (UTC+1), and the Monday after it (UTC+2).
const FRIDAY: &str = "2027-03-26";
const MONDAY: &str = "2027-03-29";
const WEEKDAYS: [&str; 5] = ["monday", "tuesday", "wednesday", "thursday", "friday"];

async fn created(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

fn id(v: &Value) -> Uuid {
    Uuid::parse_str(v["id"].as_str().unwrap()).unwrap()
}

/// A service of `minutes` with buffers, offered by `doctors`.
async fn service(app: &TestApp, minutes: i64, before: i64, after: i64, doctors: &[Uuid]) -> Uuid {
    let body = json!({
        "name": format!("Servicio {}", Uuid::new_v4().simple()),
        "duration_minutes": minutes,
        "buffer_before_minutes": before,
        "buffer_after_minutes": after,
        "doctor_ids": doctors,
    });
    id(&created(app.post("/services", &body).await).await)
}

/// Weekly hours of the doctor at the center on each of `days`.
async fn hours(app: &TestApp, doctor: Uuid, center: Uuid, days: &[&str], start: &str, end: &str) {
    for day in days {
        let body = json!({"doctor_id": doctor, "center_id": center, "weekday": day,
                          "start": start, "end": end});
        created(app.post("/working-hours", &body).await).await;
    }
}

/// `GET /availability` as the admin, answering the body after checking for 200.
async fn availability(app: &TestApp, query: &str) -> Value {
    availability_as(app, &app.admin_token, query).await
}

async fn availability_as(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app.get_as(token, &format!("/availability?{query}")).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{query}: {body}");
    body
}

/// The slots of one date, as their local `HH:MM` starts.
fn local_starts(answer: &Value, date: &str) -> BTreeSet<String> {
    day(answer, date)
        .iter()
        .map(|s| s["start"].as_str().unwrap()[11..16].to_owned())
        .collect()
}

fn day<'a>(answer: &'a Value, date: &str) -> &'a Vec<Value> {
    answer["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["date"] == date)
        .unwrap_or_else(|| panic!("{date} is listed: {answer}"))["slots"]
        .as_array()
        .unwrap()
}

fn instant(text: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// `POST /bookings` as `token`, waiting up to 10 s for the outcome.
async fn book_as(app: &TestApp, token: &str, body: &Value) -> (u16, Value) {
    let response = app
        .http
        .post(app.url("/bookings"))
        .bearer_auth(token)
        .header("prefer", "wait=10")
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn visit(d: &Directory, service: Uuid, start: &str) -> Value {
    json!({"patient_id": d.patient, "doctor_id": d.doctor, "center_id": d.center,
           "service_id": service, "start": start})
}

/// The rejection's reason code of a 409 `booking_rejected`.
fn reason(status: u16, body: &Value) -> String {
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "booking_rejected", "{body}");
    body["error"]["details"]["reason_code"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every half hour from 09:00 to 13:30, local.
fn morning() -> BTreeSet<String> {
    (0..10)
        .map(|i| format!("{:02}:{:02}", 9 + i / 2, (i % 2) * 30))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_slots_follow_the_hours_time_off_buffers_and_notice() {
    let app = TestApp::spawn_with(Services::no_email(), |_| {}).await;
    let d = app.directory().await;
    let checkup = service(&app, 30, 0, 0, &[d.doctor]).await;
    hours(&app, d.doctor, d.center, &WEEKDAYS, "09:00", "14:00").await;
    let query = format!(
        "service_id={checkup}&doctor_id={}&center_id={}&from={FRIDAY}&to={MONDAY}",
        d.doctor, d.center
    );

    // 09:00 local on both sides of the change: 08:00Z on Friday, 07:00Z on Monday.
    let answer = availability(&app, &query).await;
    assert_eq!(answer["service"]["id"], checkup.to_string());
    assert_eq!(answer["service"]["duration_minutes"], 30);
    let dates: Vec<&str> = answer["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["date"].as_str().unwrap())
        .collect();
    assert_eq!(dates, [FRIDAY, "2027-03-27", "2027-03-28", MONDAY]);
    let friday = day(&answer, FRIDAY);
    assert_eq!(friday[0]["start"], "2027-03-26T09:00:00+01:00");
    assert_eq!(
        instant(&friday[0]["start"]).to_rfc3339(),
        "2027-03-26T08:00:00+00:00"
    );
    assert_eq!(friday[0]["end"], "2027-03-26T09:30:00+01:00");
    assert_eq!(friday[0]["doctor_id"], d.doctor.to_string());
    assert_eq!(friday[0]["center_id"], d.center.to_string());
    let monday = day(&answer, MONDAY);
    assert_eq!(
        instant(&monday[0]["start"]).to_rfc3339(),
        "2027-03-29T07:00:00+00:00"
    );
    assert!(day(&answer, "2027-03-27").is_empty(), "{answer}");
    assert!(day(&answer, "2027-03-28").is_empty(), "{answer}");
    assert_eq!(local_starts(&answer, FRIDAY), morning());
    assert_eq!(local_starts(&answer, MONDAY), morning());
    assert_eq!(answer["doctors"][0]["id"], d.doctor.to_string());
    assert_eq!(answer["centers"][0]["timezone"], "Europe/Madrid");

    // Time off on Monday 10:00–11:00 removes exactly those slots.
    created(
        app.post(
            "/agenda-exceptions",
            &json!({"doctor_id": d.doctor, "kind": "time_off", "date": MONDAY,
                    "start": "10:00", "end": "11:00"}),
        )
        .await,
    )
    .await;
    let answer = availability(&app, &query).await;
    let mut expected = morning();
    expected.remove("10:00");
    expected.remove("10:30");
    assert_eq!(local_starts(&answer, MONDAY), expected);
    assert_eq!(local_starts(&answer, FRIDAY), morning());

    // A confirmed 30-minute cleaning at 11:00 with 10 minutes before and 15 after keeps the
    // doctor busy 10:50–11:45: the slots that meet it go, 10:00 and 12:00 stay.
    let cleaning = service(&app, 30, 10, 15, &[d.doctor]).await;
    let (status, booking) = book_as(
        &app,
        &app.admin_token,
        &visit(&d, cleaning, "2027-03-26T11:00:00+01:00"),
    )
    .await;
    assert_eq!(status, 201, "{booking}");
    assert_eq!(booking["service_id"], cleaning.to_string());
    assert_eq!(
        instant(&booking["ends_at"]) - instant(&booking["starts_at"]),
        chrono::Duration::minutes(30),
        "the service's duration"
    );
    let answer = availability(&app, &query).await;
    let mut expected = morning();
    for gone in ["10:30", "11:00", "11:30"] {
        expected.remove(gone);
    }
    assert_eq!(local_starts(&answer, FRIDAY), expected);

    // The minimum notice: a doctor open around the clock is offered nothing sooner than
    // now + 120 min, and something soon after it.
    let late = app.create_doctor().await;
    let anytime = service(&app, 30, 0, 0, &[late]).await;
    let every_day = [WEEKDAYS.as_slice(), &["saturday", "sunday"]].concat();
    hours(&app, late, d.center, &every_day, "00:00", "24:00").await;
    let now = Utc::now();
    let today = now.date_naive();
    let answer = availability(
        &app,
        &format!(
            "service_id={anytime}&doctor_id={late}&from={}&to={}",
            today - chrono::Duration::days(1),
            today + chrono::Duration::days(1)
        ),
    )
    .await;
    let starts: Vec<DateTime<Utc>> = answer["days"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["slots"].as_array().unwrap())
        .map(|s| instant(&s["start"]))
        .collect();
    let notice = now + chrono::Duration::minutes(120);
    assert!(!starts.is_empty(), "{answer}");
    assert!(
        starts.iter().all(|s| *s >= notice),
        "nothing inside the notice: first {} vs {notice}",
        starts[0]
    );
    assert!(
        starts[0] < notice + chrono::Duration::minutes(31),
        "the first slot is the first half hour after the notice: {} vs {notice}",
        starts[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_patients_racing_for_one_slot_get_one_confirmation_every_time() {
    let app = TestApp::spawn_with(Services::no_email(), |_| {}).await;
    let d = app.directory().await;
    let checkup = service(&app, 30, 0, 0, &[d.doctor]).await;
    hours(&app, d.doctor, d.center, &WEEKDAYS, "09:00", "14:00").await;
    let (ana, ana_token) = app.patient_who_logs_in(&d).await;
    let (luis, luis_token) = app.patient_who_logs_in(&d).await;
    let query = format!(
        "service_id={checkup}&doctor_id={}&from=2027-03-22&to=2027-03-26",
        d.doctor
    );
    let offered: Vec<Value> = availability_as(&app, &ana_token, &query).await["days"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["slots"].as_array().unwrap().clone())
        .collect();
    assert_eq!(offered.len(), 50, "five mornings of ten slots");

    for (round, slot) in offered.iter().step_by(2).take(20).enumerate() {
        let start = slot["start"].as_str().unwrap();
        let (for_ana, for_luis) = (visit(&ana, checkup, start), visit(&luis, checkup, start));
        let (a, b) = tokio::join!(
            book_as(&app, &ana_token, &for_ana),
            book_as(&app, &luis_token, &for_luis),
        );
        let mut outcomes = [a, b];
        outcomes.sort_by_key(|(status, _)| *status);
        let [(won, confirmed), (lost, rejected)] = outcomes;
        assert_eq!(won, 201, "round {round}: {confirmed}");
        assert_eq!(confirmed["status"], "confirmed");
        assert_eq!(reason(lost, &rejected), "slot_taken", "round {round}");
        let now_offered = availability_as(&app, &luis_token, &query).await;
        let still = now_offered["days"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|d| d["slots"].as_array().unwrap())
            .any(|s| s["start"] == start);
        assert!(!still, "round {round}: {start} is still offered");
    }
    let confirmed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM appointments WHERE doctor_id = $1 AND status = 'confirmed'",
    )
    .bind(d.doctor)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(confirmed, 20);
    // The other slots are all still there.
    let left = availability(&app, &query).await;
    let count: usize = left["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["slots"].as_array().unwrap().len())
        .sum();
    assert_eq!(count, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookings_outside_the_agenda_are_rejected_with_the_reason() {
    let app = TestApp::spawn_with(Services::no_email(), |_| {}).await;
    let d = app.directory().await;
    let elsewhere = app.create_center().await;
    let checkup = service(&app, 30, 0, 0, &[d.doctor]).await;
    let not_theirs = service(&app, 30, 0, 0, &[]).await;
    hours(&app, d.doctor, d.center, &WEEKDAYS, "09:00", "14:00").await;
    created(
        app.post(
            "/agenda-exceptions",
            &json!({"doctor_id": d.doctor, "kind": "time_off", "date": FRIDAY,
                    "start": "12:00", "end": "13:00", "note": "Formación"}),
        )
        .await,
    )
    .await;
    let admin = app.admin_token.as_str();
    let at = |time: &str| format!("{FRIDAY}T{time}:00+01:00");

    let (status, body) = book_as(&app, admin, &visit(&d, checkup, &at("15:00"))).await;
    assert_eq!(reason(status, &body), "outside_working_hours");
    let (status, body) = book_as(&app, admin, &visit(&d, checkup, &at("13:45"))).await;
    assert_eq!(
        reason(status, &body),
        "outside_working_hours",
        "runs past 14:00"
    );
    let other_center = Directory {
        center: elsewhere,
        ..d.clone()
    };
    let (status, body) = book_as(&app, admin, &visit(&other_center, checkup, &at("09:00"))).await;
    assert_eq!(reason(status, &body), "doctor_not_at_center");
    let (status, body) = book_as(&app, admin, &visit(&d, not_theirs, &at("09:00"))).await;
    assert_eq!(reason(status, &body), "service_not_offered");
    // A doctor whose every range of hours has ended is still on the agenda: closed, not open
    // at any time as a doctor whose agenda was never set up would be.
    let retired = app.create_doctor().await;
    let their_checkup = service(&app, 30, 0, 0, &[retired]).await;
    created(
        app.post(
            "/working-hours",
            &json!({"doctor_id": retired, "center_id": d.center, "weekday": "friday",
                    "start": "09:00", "end": "14:00", "valid_until": "2027-03-01"}),
        )
        .await,
    )
    .await;
    let ended = Directory {
        doctor: retired,
        ..d.clone()
    };
    let (status, body) = book_as(&app, admin, &visit(&ended, their_checkup, &at("09:00"))).await;
    assert_eq!(reason(status, &body), "outside_working_hours");
    let (status, body) = book_as(&app, admin, &visit(&d, checkup, &at("12:30"))).await;
    assert_eq!(reason(status, &body), "doctor_time_off");
    assert_eq!(
        body["error"]["details"]["booking"]["service_id"],
        checkup.to_string()
    );

    // Cancelling a confirmed booking frees its slot again.
    let query = format!(
        "service_id={checkup}&doctor_id={}&from={FRIDAY}&to={FRIDAY}",
        d.doctor
    );
    let (status, booking) = book_as(&app, admin, &visit(&d, checkup, &at("09:30"))).await;
    assert_eq!(status, 201, "{booking}");
    assert!(!local_starts(&availability(&app, &query).await, FRIDAY).contains("09:30"));
    let cancelled = app
        .http
        .post(app.url(&format!(
            "/bookings/{}/cancel",
            booking["id"].as_str().unwrap()
        )))
        .bearer_auth(admin)
        .header("prefer", "wait=10")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    assert!(local_starts(&availability(&app, &query).await, FRIDAY).contains("09:30"));

    // A move outside the hours is refused for the same reason, and the old booking stays.
    let (status, old) = book_as(&app, admin, &visit(&d, checkup, &at("10:00"))).await;
    assert_eq!(status, 201, "{old}");
    let old_id = old["id"].as_str().unwrap();
    let moved = app
        .http
        .post(app.url(&format!("/bookings/{old_id}/reschedule")))
        .bearer_auth(admin)
        .header("prefer", "wait=10")
        .json(&json!({"start": at("16:00")}))
        .send()
        .await
        .unwrap();
    let status = moved.status().as_u16();
    let body: Value = moved.json().await.unwrap();
    assert_eq!(reason(status, &body), "outside_working_hours");
    assert_eq!(
        body["error"]["details"]["booking"]["service_id"],
        checkup.to_string(),
        "the new booking kept the old one's service"
    );
    let old: Value = app
        .get(&format!("/bookings/{old_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(old["status"], "confirmed", "{old}");
    // A move within the hours keeps the service and its duration.
    let moved = app
        .http
        .post(app.url(&format!("/bookings/{old_id}/reschedule")))
        .bearer_auth(admin)
        .header("prefer", "wait=10")
        .json(&json!({"start": at("11:00")}))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 201);
    let new: Value = moved.json().await.unwrap();
    assert_eq!(new["service_id"], checkup.to_string());
    assert_eq!(new["previous_booking_id"], old_id);
    assert_eq!(
        instant(&new["ends_at"]) - instant(&new["starts_at"]),
        chrono::Duration::minutes(30)
    );
}

/// A 422 naming `field`.
async fn invalid(response: reqwest::Response, field: &str) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 422, "{body}");
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap_or_else(|| panic!("field errors: {body}"))
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, [field], "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_and_bookings_are_validated() {
    let app = TestApp::spawn_with(Services::no_email(), |_| {}).await;
    let d = app.directory().await;
    let checkup = service(&app, 30, 0, 0, &[d.doctor]).await;
    hours(&app, d.doctor, d.center, &WEEKDAYS, "09:00", "14:00").await;

    invalid(app.get("/availability").await, "service_id").await;
    invalid(
        app.get(&format!("/availability?doctor_id={}", d.doctor))
            .await,
        "service_id",
    )
    .await;
    invalid(
        app.get(&format!(
            "/availability?service_id={checkup}&from=2027-03-01&to=2027-04-01"
        ))
        .await,
        "to",
    )
    .await;
    invalid(
        app.get(&format!(
            "/availability?service_id={checkup}&from=2027-03-10&to=2027-03-09"
        ))
        .await,
        "to",
    )
    .await;
    invalid(
        app.get(&format!("/availability?service_id={}", Uuid::new_v4()))
            .await,
        "service_id",
    )
    .await;
    // A month of 31 dates is fine, and so are the defaults (today and the six days after).
    let month = availability(
        &app,
        &format!("service_id={checkup}&from=2027-03-01&to=2027-03-31"),
    )
    .await;
    assert_eq!(month["days"].as_array().unwrap().len(), 31);
    let week = availability(&app, &format!("service_id={checkup}")).await;
    assert_eq!(week["days"].as_array().unwrap().len(), 7, "{week}");
    assert_eq!(app.get("/availability?service_id=nope").await.status(), 400);

    // Bookings: the service sets the duration; a patient may not give one, staff may.
    let (patient, token) = app.patient_who_logs_in(&d).await;
    let start = "2027-03-26T09:00:00+01:00";
    let mut with_duration = visit(&patient, checkup, start);
    with_duration["duration_minutes"] = json!(45);
    invalid(
        app.post_as(&token, "/bookings", &with_duration).await,
        "duration_minutes",
    )
    .await;
    let (status, staff) = book_as(&app, &app.admin_token, &with_duration).await;
    assert_eq!(status, 201, "{staff}");
    assert_eq!(
        instant(&staff["ends_at"]) - instant(&staff["starts_at"]),
        chrono::Duration::minutes(45)
    );
    let mut no_service = visit(&patient, checkup, start);
    no_service.as_object_mut().unwrap().remove("service_id");
    invalid(
        app.post_as(&token, "/bookings", &no_service).await,
        "duration_minutes",
    )
    .await;
    invalid(
        app.post_as(&token, "/bookings", &visit(&patient, Uuid::new_v4(), start))
            .await,
        "service_id",
    )
    .await;
    // An inactive service is neither searched nor booked.
    let patched = app
        .http
        .patch(app.url(&format!("/services/{checkup}")))
        .bearer_auth(&app.admin_token)
        .json(&json!({"active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    invalid(
        app.get(&format!("/availability?service_id={checkup}"))
            .await,
        "service_id",
    )
    .await;
    invalid(
        app.post_as(
            &token,
            "/bookings",
            &visit(&patient, checkup, "2027-03-26T10:00:00+01:00"),
        )
        .await,
        "service_id",
    )
    .await;
    // Nothing of the refused requests was written.
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM appointments")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(written, 1);
}
