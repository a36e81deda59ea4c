//! Reminders before a visit, against the real stack: with a 2-minute offset, a booking 3
//! minutes ahead is reminded once by email and once by SMS when due and not before; one
//! cancelled, or booked inside the offset, is not reminded; a processor and both notifiers
//! killed around the due time and restarted still remind exactly once per channel.

use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use citaflow_platform::{Settings, settings::Channel};
use citaflow_schemas::BookingEventKind;
use citaflow_tests::{
    Directory, Services, TestApp, mailpit, process::ServiceProcess, read_all, sms::SmsRecorder,
};
use serde_json::{Value, json};
use uuid::Uuid;

const OFFSET_MINUTES: i64 = 2;

fn short_offsets(s: &mut Settings) {
    s.processor.reminder_offsets_minutes = vec![OFFSET_MINUTES as u32];
    s.processor.reminder_poll_interval_ms = 500;
}

/// The first whole minute at least `minutes` from now.
fn whole_minute_in(minutes: i64) -> DateTime<Utc> {
    (Utc::now() + TimeDelta::minutes(minutes) + TimeDelta::seconds(59))
        .duration_trunc(TimeDelta::minutes(1))
        .unwrap()
}

/// A doctor, a center and a patient with their own email and phone.
async fn directory(app: &TestApp) -> (Directory, String) {
    let email = format!(
        "reminded-{}@reminders.example.test",
        Uuid::new_v4().simple()
    );
    let phone = format!("+3461{:07}", rand_digits());
    let body = json!({"name": "Lucía Pérez", "email": email, "phone": phone, "language": "es"});
    let response = app.post("/patients", &body).await;
    assert_eq!(response.status(), 201, "create patient");
    let patient: Value = response.json().await.unwrap();
    let d = Directory {
        doctor: app.create_doctor().await,
        center: app.create_center().await,
        patient: Uuid::parse_str(patient["id"].as_str().unwrap()).unwrap(),
        email,
    };
    (d, phone)
}

fn rand_digits() -> u32 {
    (Uuid::new_v4().as_u128() % 10_000_000) as u32
}

async fn confirmed(app: &TestApp, d: &Directory, start: DateTime<Utc>) -> String {
    let response = app.book(d, start, 30).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 202, "book: {body}");
    let id = body["booking_id"].as_str().unwrap().to_owned();
    let booking = app.wait_for_decision(&id, Duration::from_secs(20)).await;
    assert_eq!(booking["status"], "confirmed", "{booking}");
    id
}

/// The REMINDER_DUE events of `booking_id` on this test's events topic.
async fn reminder_events(app: &TestApp, booking_id: &str) -> usize {
    let records = read_all(&app.settings.topics.events, 1, Duration::from_secs(3));
    app.decode_events(&records)
        .await
        .into_iter()
        .filter(|e| e.booking_id == booking_id && e.kind == BookingEventKind::ReminderDue)
        .count()
}

fn reminders(mails: &[mailpit::Mail]) -> usize {
    mails
        .iter()
        .filter(|m| m.subject.starts_with("Recordatorio de su cita"))
        .count()
}

async fn reminder_rows(app: &TestApp, booking_id: &str) -> Vec<(String, Option<String>)> {
    sqlx::query_as("SELECT status, detail FROM reminders WHERE booking_id = $1::uuid")
        .bind(booking_id)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_confirmed_visit_is_reminded_once_by_email_and_sms_when_due_and_others_are_not() {
    let recorder = SmsRecorder::start().await;
    let app = TestApp::spawn_with(
        Services {
            sms: true,
            ..Services::default()
        },
        |s| {
            recorder.configure(s);
            short_offsets(s);
        },
    )
    .await;
    let (reminded, reminded_phone) = directory(&app).await;
    let (cancelled, cancelled_phone) = directory(&app).await;
    let (late, late_phone) = directory(&app).await;

    let start = whole_minute_in(OFFSET_MINUTES + 1);
    let due = start - TimeDelta::minutes(OFFSET_MINUTES);
    let id = confirmed(&app, &reminded, start).await;
    let cancelled_id = confirmed(&app, &cancelled, start).await;
    // Inside the offset: booked less than 2 minutes before it starts.
    let late_start = whole_minute_in(1);
    assert!(late_start - Utc::now() < TimeDelta::minutes(OFFSET_MINUTES));
    let late_id = confirmed(&app, &late, late_start).await;
    let response = app
        .post(&format!("/bookings/{cancelled_id}/cancel"), &json!({}))
        .await;
    assert_eq!(response.status(), 202, "cancel");
    let booking = app
        .wait_for_decision(&cancelled_id, Duration::from_secs(1))
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while app
        .get(&format!("/bookings/{cancelled_id}"))
        .await
        .json::<Value>()
        .await
        .unwrap()["status"]
        != "cancelled"
    {
        assert!(tokio::time::Instant::now() < deadline, "{booking}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Not before it is due: the confirmation only.
    let confirmation =
        mailpit::wait_for_messages(&reminded.email, 1, Duration::from_secs(20)).await;
    assert_eq!(reminders(&confirmation), 0);
    recorder
        .wait_for(&reminded_phone, 1, Duration::from_secs(20))
        .await;
    let until_due = (due - Utc::now() - TimeDelta::seconds(2))
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(until_due).await;
    assert_eq!(
        reminders(&mailpit::messages_to(&reminded.email).await),
        0,
        "no reminder before it is due"
    );
    assert_eq!(
        recorder.messages_to(&reminded_phone).len(),
        1,
        "no SMS before it is due"
    );

    // When due: one email and one SMS, in Spanish, with the center's local time (Madrid).
    let mails = mailpit::wait_for_messages(&reminded.email, 2, Duration::from_secs(30)).await;
    assert!(Utc::now() >= due, "reminded before it was due");
    let sms = recorder
        .wait_for(&reminded_phone, 2, Duration::from_secs(30))
        .await;
    let madrid = start
        .with_timezone(&chrono_tz::Europe::Madrid)
        .format("%H:%M")
        .to_string();
    let reminder = mails
        .iter()
        .find(|m| m.subject.starts_with("Recordatorio de su cita"))
        .expect("a reminder email");
    assert!(reminder.text.contains(&madrid), "{}", reminder.text);
    assert!(
        sms[1].body.contains("Recordatorio") && sms[1].body.contains(&madrid),
        "{}",
        sms[1].body
    );

    // And only once, for the reminded booking alone.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(reminders(&mailpit::messages_to(&reminded.email).await), 1);
    assert_eq!(recorder.messages_to(&reminded_phone).len(), 2);
    assert_eq!(reminder_events(&app, &id).await, 1);
    assert_eq!(reminder_rows(&app, &id).await, vec![("sent".into(), None)]);
    for (d, phone, booking) in [
        (&cancelled, &cancelled_phone, &cancelled_id),
        (&late, &late_phone, &late_id),
    ] {
        assert_eq!(reminders(&mailpit::messages_to(&d.email).await), 0);
        assert!(
            recorder
                .messages_to(phone)
                .iter()
                .all(|m| !m.body.contains("Recordatorio"))
        );
        assert_eq!(reminder_events(&app, booking).await, 0);
    }
    assert_eq!(
        reminder_rows(&app, &cancelled_id).await,
        vec![("dropped".into(), Some("cancelled".into()))]
    );
    assert!(
        reminder_rows(&app, &late_id).await.is_empty(),
        "none inside the offset"
    );

    // The history shows it.
    let history: Value = app
        .get(&format!("/bookings/{id}/history"))
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = history["entries"]
        .as_array()
        .expect("history entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["requested", "confirmed", "reminded"], "{history}");
}

#[tokio::test]
async fn a_processor_and_notifiers_killed_around_the_due_time_still_remind_once() {
    let recorder = SmsRecorder::start().await;
    let app = TestApp::spawn_with(
        Services {
            processor: false,
            email: false,
            sms: false,
            ..Services::default()
        },
        short_offsets,
    )
    .await;
    let extra = [
        (
            "CITAFLOW__PROCESSOR__REMINDER_OFFSETS_MINUTES",
            format!("[{OFFSET_MINUTES}]"),
        ),
        (
            "CITAFLOW__PROCESSOR__REMINDER_POLL_INTERVAL_MS",
            "500".into(),
        ),
    ];
    let notifier = |channel: Channel| {
        let mut s = app.settings.clone();
        s.notifier.channel = channel;
        s.notifier.group_id = Some(format!("t{}-notifier-{}", app.id, channel.as_str()));
        recorder.configure(&mut s);
        s
    };
    let (email_settings, sms_settings) = (notifier(Channel::Email), notifier(Channel::Sms));
    let start_all = || {
        (
            ServiceProcess::start_with("booking-processor", &app.settings, &extra),
            ServiceProcess::start("notifier", &email_settings),
            ServiceProcess::start("notifier", &sms_settings),
        )
    };
    let mut running = start_all();

    let (d, phone) = directory(&app).await;
    let start = whole_minute_in(OFFSET_MINUTES + 1);
    let due = start - TimeDelta::minutes(OFFSET_MINUTES);
    let id = confirmed(&app, &d, start).await;
    mailpit::wait_for_messages(&d.email, 1, Duration::from_secs(30)).await;
    recorder.wait_for(&phone, 1, Duration::from_secs(30)).await;

    // Killed just before it is due, started again after.
    let until = (due - Utc::now() - TimeDelta::seconds(1))
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(until).await;
    running.0.kill();
    running.1.kill();
    running.2.kill();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        reminder_rows(&app, &id).await,
        vec![("pending".into(), None)]
    );
    running = start_all();
    // The processor publishes it, the notifiers are killed again as the first deliveries
    // happen and come back once more.
    let mails = mailpit::wait_for_messages(&d.email, 2, Duration::from_secs(60)).await;
    running.0.kill();
    running.1.kill();
    running.2.kill();
    let _again = start_all();
    recorder.wait_for(&phone, 2, Duration::from_secs(60)).await;
    assert_eq!(reminders(&mails), 1);

    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        reminders(&mailpit::messages_to(&d.email).await),
        1,
        "one reminder email"
    );
    let sms: Vec<_> = recorder
        .messages_to(&phone)
        .into_iter()
        .filter(|m| m.body.contains("Recordatorio"))
        .collect();
    assert_eq!(sms.len(), 1, "one reminder SMS");
    assert_eq!(reminder_events(&app, &id).await, 1);
    assert_eq!(reminder_rows(&app, &id).await, vec![("sent".into(), None)]);
}

/// The offsets the reminders of `booking_id` were scheduled at, longest first.
async fn scheduled_offsets(app: &TestApp, booking_id: &str) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT offset_minutes FROM reminders WHERE booking_id = $1::uuid
          ORDER BY offset_minutes DESC",
    )
    .bind(booking_id)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn patch_center(app: &TestApp, center: Uuid, body: Value) -> (u16, Value) {
    let response = app
        .request_as(
            &app.admin_token,
            reqwest::Method::PATCH,
            &format!("/centers/{center}"),
            Some(&body),
        )
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_center_sets_its_own_reminder_offsets_through_the_api() {
    let app = TestApp::spawn_with(Services::no_email(), |_| {}).await;
    let (mut d, _) = directory(&app).await;
    // Created with its own offsets: stored distinct, longest first.
    let response = app
        .post(
            "/centers",
            &json!({"name": format!("Clínica Recordatorios {}", Uuid::new_v4().simple()),
                    "address": "Calle Mayor 1, Madrid", "timezone": "Europe/Madrid",
                    "reminder_offsets_minutes": [60, 120, 60]}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let center: Value = response.json().await.unwrap();
    assert_eq!(center["reminder_offsets_minutes"], json!([120, 60]));
    d.center = Uuid::parse_str(center["id"].as_str().unwrap()).unwrap();
    // A visit 25 h ahead gets the center's offsets, not the platform's 24 h.
    let start = whole_minute_in(25 * 60);
    let first = confirmed(&app, &d, start).await;
    assert_eq!(scheduled_offsets(&app, &first).await, [120, 60]);

    // Out of range or too many: 422, nothing changed.
    for bad in [
        json!([0]),
        json!([43201]),
        json!((1..=11).collect::<Vec<i64>>()),
    ] {
        let (status, body) =
            patch_center(&app, d.center, json!({"reminder_offsets_minutes": bad})).await;
        assert_eq!(status, 422, "{body}");
    }
    // None at all, then back to the platform's (null): each applies to visits confirmed after.
    let (status, body) =
        patch_center(&app, d.center, json!({"reminder_offsets_minutes": []})).await;
    assert_eq!(
        (status, &body["reminder_offsets_minutes"]),
        (200, &json!([]))
    );
    let second = confirmed(&app, &d, start + TimeDelta::hours(1)).await;
    assert!(scheduled_offsets(&app, &second).await.is_empty());
    let (status, body) =
        patch_center(&app, d.center, json!({"reminder_offsets_minutes": null})).await;
    assert_eq!(
        (status, &body["reminder_offsets_minutes"]),
        (200, &Value::Null)
    );
    let third = confirmed(&app, &d, start + TimeDelta::hours(2)).await;
    assert_eq!(scheduled_offsets(&app, &third).await, [24 * 60]);
    // A change of something else leaves them as they are; the first visit kept its own.
    let (_, body) = patch_center(&app, d.center, json!({"reminder_offsets_minutes": [30]})).await;
    assert_eq!(body["reminder_offsets_minutes"], json!([30]));
    let (status, body) = patch_center(&app, d.center, json!({"language": "en"})).await;
    assert_eq!(
        (status, &body["reminder_offsets_minutes"]),
        (200, &json!([30]))
    );
    assert_eq!(scheduled_offsets(&app, &first).await, [120, 60]);
}
