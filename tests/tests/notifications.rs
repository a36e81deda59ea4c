//! Notifications on the real stack: every booking event reaches the patient once by email
//! (Mailpit, through its API) and once by SMS (the recorder in `citaflow_tests::sms`), in the
//! patient's language, surviving a notifier killed mid-burst and an SMTP server that goes away;
//! and nothing a data team or a log reader sees carries the patient's name, email or phone.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use chrono::{DateTime, Duration as Minutes, Utc};
use citaflow_platform::{Settings, settings::Channel};
use citaflow_tests::{
    Directory, Services, Stack, TestApp, in_hours, mailpit, process, process::ServiceProcess,
    read_all, sms::SmsRecorder,
};
use futures_util::{StreamExt, future::join_all};
use notifier::deliveries::{self, Claim, Closing, LockError};
use rdkafka::Message;
use serde_json::{Value, json};
use uuid::Uuid;

/// A patient created through the API, with contact details unique to the test.
#[derive(Debug, Clone)]
struct Person {
    id: Uuid,
    name: String,
    email: String,
    phone: String,
}

fn random_digits(n: usize) -> String {
    Uuid::new_v4()
        .as_u128()
        .to_string()
        .chars()
        .rev()
        .take(n)
        .collect()
}

/// `+346` and eight random digits: a Spanish mobile number nobody else in the test has.
fn unique_phone() -> String {
    format!("+346{}", random_digits(8))
}

async fn create_person(app: &TestApp, language: &str, name: &str, email: String) -> Person {
    let phone = unique_phone();
    let response = app
        .post(
            "/patients",
            &json!({ "name": name, "email": email, "phone": phone, "language": language }),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "create patient: {body}");
    let id = Uuid::parse_str(body["id"].as_str().unwrap()).unwrap();
    Person {
        id,
        name: name.to_owned(),
        email,
        phone,
    }
}

/// A center whose time zone is UTC all year (so the expected local times are plain UTC) but
/// is not the default one (so a message using the wrong zone shows).
async fn create_center(app: &TestApp) -> Uuid {
    let body = json!({
        "name": format!("Clínica Norte {}", Uuid::new_v4().simple()),
        "address": "Calle Mayor 1, Madrid",
        "timezone": "Atlantic/Reykjavik",
    });
    let response = app.post("/centers", &body).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "create center: {body}");
    Uuid::parse_str(body["id"].as_str().unwrap()).unwrap()
}

fn directory(doctor: Uuid, center: Uuid, person: &Person) -> Directory {
    Directory {
        doctor,
        center,
        patient: person.id,
        email: person.email.clone(),
    }
}

async fn accepted_id(response: reqwest::Response) -> String {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(
        status == 202 || status == 201 || status == 200,
        "unexpected {status}: {body}"
    );
    body["booking_id"]
        .as_str()
        .or(body["id"].as_str())
        .unwrap()
        .to_string()
}

async fn wait_for_status(app: &TestApp, id: &str, status: &str, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let booking: Value = app
            .get(&format!("/bookings/{id}"))
            .await
            .json()
            .await
            .unwrap();
        if booking["status"] == status {
            return booking;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "booking {id} not {status}: {booking}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `(event_id, kind)` of a booking's events, in order.
async fn events_of(app: &TestApp, booking_id: &str) -> Vec<(Uuid, String)> {
    sqlx::query_as("SELECT event_id, kind FROM booking_events WHERE booking_id = $1 ORDER BY seq")
        .bind(Uuid::parse_str(booking_id).unwrap())
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

/// A delivery log row: (status, detail, attempts).
type Row = (String, Option<String>, i32);

async fn delivery(app: &TestApp, event_id: Uuid, channel: &str) -> Option<Row> {
    sqlx::query_as("SELECT status, detail, attempts FROM notification_deliveries WHERE event_id = $1 AND channel = $2")
        .bind(event_id)
        .bind(channel)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
}

/// Waits until the delivery log has closed the event on `channel`.
async fn wait_for_delivery(app: &TestApp, event_id: Uuid, channel: &str, within: Duration) -> Row {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let row = delivery(app, event_id, channel).await;
        if let Some(row) = &row
            && row.0 != "sending"
        {
            return row.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{channel} delivery of {event_id} not closed: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn message_id(event_id: Uuid) -> String {
    // Mailpit shows it without the angle brackets.
    notifier::message_id(event_id, "citaflow.local")
        .trim_matches(['<', '>'])
        .to_owned()
}

/// Mailpit summaries matching `query`, every page.
async fn mailpit_search(query: &str) -> Vec<Value> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut out = Vec::new();
    loop {
        let page: Value = http
            .get(format!("{}/api/v1/search", Stack::get().mailpit))
            .query(&[
                ("query", query.to_owned()),
                ("start", out.len().to_string()),
                ("limit", "250".into()),
            ])
            .send()
            .await
            .expect("Mailpit search")
            .json()
            .await
            .expect("Mailpit JSON");
        let messages = page["messages"].as_array().cloned().unwrap_or_default();
        let total = page["messages_count"].as_u64().unwrap_or(0) as usize;
        let empty = messages.is_empty();
        out.extend(messages);
        if empty || out.len() >= total {
            return out;
        }
    }
}

/// The `Message-ID` Mailpit stored for a message.
async fn stored_message_id(id: &str) -> String {
    let full: Value = reqwest::get(format!("{}/api/v1/message/{id}", Stack::get().mailpit))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    full["MessageID"].as_str().unwrap_or_default().to_owned()
}

/// The calendar part of a message, raw.
async fn calendar_part(mail: &mailpit::Mail) -> String {
    let part = mail
        .attachments
        .iter()
        .find(|a| {
            a["ContentType"]
                .as_str()
                .unwrap_or_default()
                .starts_with("text/calendar")
        })
        .unwrap_or_else(|| panic!("no text/calendar part in {:?}", mail.attachments));
    mailpit::part(&mail.id, part["PartID"].as_str().unwrap()).await
}

/// Checks an iCalendar object the way a strict calendar app would (RFC 5545: CRLF line ends,
/// 75-octet lines, one VEVENT with UID, DTSTAMP, DTSTART and DTEND in UTC) and answers its
/// properties by name (`METHOD` from the calendar, the rest from the event).
fn parse_ics(ics: &str) -> HashMap<String, String> {
    assert!(ics.ends_with("\r\n"), "ends with CRLF: {ics:?}");
    let without_crlf = ics.replace("\r\n", "");
    assert!(
        !without_crlf.contains('\n') && !without_crlf.contains('\r'),
        "only CRLF line ends: {ics:?}"
    );
    let mut lines: Vec<String> = Vec::new();
    for raw in ics.split("\r\n").filter(|l| !l.is_empty()) {
        assert!(raw.len() <= 75, "line over 75 octets: {raw:?}");
        match raw.strip_prefix([' ', '\t']) {
            Some(rest) => lines
                .last_mut()
                .expect("no continuation first")
                .push_str(rest),
            None => lines.push(raw.to_owned()),
        }
    }
    assert_eq!(
        lines.first().map(String::as_str),
        Some("BEGIN:VCALENDAR"),
        "{lines:#?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("END:VCALENDAR"),
        "{lines:#?}"
    );
    assert!(lines.contains(&"VERSION:2.0".to_owned()), "{lines:#?}");
    assert!(lines.iter().any(|l| l.starts_with("PRODID:")), "{lines:#?}");
    assert_eq!(
        lines.iter().filter(|l| *l == "BEGIN:VEVENT").count(),
        1,
        "{lines:#?}"
    );
    let begin = lines.iter().position(|l| l == "BEGIN:VEVENT").unwrap();
    let end = lines
        .iter()
        .position(|l| l == "END:VEVENT")
        .expect("END:VEVENT");
    let mut props: HashMap<String, String> = HashMap::new();
    for line in lines[..begin].iter().filter(|l| l.starts_with("METHOD:")) {
        props.insert("METHOD".into(), line["METHOD:".len()..].to_owned());
    }
    for line in &lines[begin + 1..end] {
        let (name_and_params, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("not a content line: {line}"));
        let name = name_and_params.split(';').next().unwrap().to_owned();
        assert!(
            props.insert(name.clone(), value.to_owned()).is_none(),
            "{name} twice"
        );
    }
    for required in ["UID", "DTSTAMP", "DTSTART", "DTEND"] {
        let value = props
            .get(required)
            .unwrap_or_else(|| panic!("{required} missing: {lines:#?}"));
        if required != "UID" {
            assert!(
                value.len() == 16 && value.ends_with('Z') && value.as_bytes()[8] == b'T',
                "{required} not a UTC date-time: {value}"
            );
        }
    }
    assert!(props["DTEND"] > props["DTSTART"], "DTEND after DTSTART");
    props
}

fn ics_time(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

// ---------------------------------------------------------------------------------------------

async fn a_confirmed_booking_reaches_the_patient_once_by_email_and_sms(language: &str) {
    let recorder = SmsRecorder::start().await;
    let app = TestApp::spawn_with(
        Services {
            sms: true,
            ..Services::default()
        },
        |s| recorder.configure(s),
    )
    .await;
    // Messages link to the web app at this address.
    let web = app.settings.notifier.public_base_url.clone();
    let doctor = app.create_doctor().await;
    let center = create_center(&app).await;
    let person = create_person(
        &app,
        language,
        "Lucía Pérez",
        format!(
            "confirmed-{language}-{}@notifications.example.test",
            Uuid::new_v4().simple()
        ),
    )
    .await;
    // Mid-morning, so the appointment does not run past midnight.
    let start = in_hours(72)
        .date_naive()
        .and_hms_opt(10, 30, 0)
        .unwrap()
        .and_utc();
    let id = accepted_id(
        app.book(&directory(doctor, center, &person), start, 30)
            .await,
    )
    .await;
    assert_eq!(
        app.wait_for_decision(&id, Duration::from_secs(10)).await["status"],
        "confirmed"
    );
    let events = events_of(&app, &id).await;
    assert_eq!(events.len(), 1);
    let event_id = events[0].0;

    let mails = mailpit::wait_for_messages(&person.email, 1, Duration::from_secs(20)).await;
    assert_eq!(mails.len(), 1, "exactly one email");
    let mail = &mails[0];
    let (day, time) = (
        start.format("%-d").to_string(),
        start.format("%H:%M").to_string(),
    );
    let end_time = (start + Minutes::minutes(30)).format("%H:%M").to_string();
    match language {
        "en" => {
            assert!(
                mail.subject.starts_with("Appointment confirmed: "),
                "{}",
                mail.subject
            );
            assert!(
                mail.subject.ends_with(&format!(
                    " {day} {} {}, {time}",
                    start.format("%B"),
                    start.format("%Y")
                )),
                "{}",
                mail.subject
            );
            assert!(mail.text.starts_with("Hello Lucía Pérez,"), "{}", mail.text);
            assert!(
                mail.text
                    .contains(&format!("{time}–{end_time} (Reykjavik time)")),
                "{}",
                mail.text
            );
        }
        _ => {
            assert!(
                mail.subject.starts_with("Cita confirmada: "),
                "{}",
                mail.subject
            );
            assert!(
                mail.subject.ends_with(&format!(", {time}")),
                "{}",
                mail.subject
            );
            assert!(mail.text.starts_with("Hola, Lucía Pérez:"), "{}", mail.text);
            assert!(
                mail.text
                    .contains(&format!("de {time} a {end_time} (hora de Reykjavik)")),
                "{}",
                mail.text
            );
        }
    }
    assert!(
        mail.text.contains("Dra. Marta Ruiz") && mail.text.contains("Calle Mayor 1, Madrid"),
        "{}",
        mail.text
    );
    assert!(mail.html.contains("Lucía Pérez"), "{}", mail.html);
    assert_eq!(
        stored_message_id(&mail.id).await,
        message_id(event_id),
        "the stable Message-ID"
    );

    let ics = parse_ics(&calendar_part(mail).await);
    assert_eq!(ics["METHOD"], "PUBLISH");
    assert_eq!(ics["UID"], format!("{id}@citaflow"));
    assert_eq!(ics["DTSTART"], ics_time(start));
    assert_eq!(ics["DTEND"], ics_time(start + Minutes::minutes(30)));
    assert_eq!(ics["STATUS"], "CONFIRMED");
    assert_eq!(ics["SEQUENCE"], "0");

    let sms = recorder
        .wait_for(&person.phone, 1, Duration::from_secs(20))
        .await;
    assert_eq!(sms.len(), 1, "exactly one SMS: {sms:?}");
    let when = start.format("%d/%m/%Y %H:%M");
    let expected = match language {
        "en" => "Citaflow: Appointment confirmed with Dra. Marta Ruiz at Clinica Norte ",
        _ => "Citaflow: Cita confirmada con Dra. Marta Ruiz en Clinica Norte ",
    };
    assert!(sms[0].body.starts_with(expected), "{}", sms[0].body);
    // It ends with the link to the appointment's page in the web app.
    assert!(
        sms[0]
            .body
            .ends_with(&format!(" {when}. {web}/app/appointments/{id}")),
        "{}",
        sms[0].body
    );
    assert!(
        mail.text.contains(&format!("{web}/app/appointments/{id}")),
        "{}",
        mail.text
    );
    assert_eq!(sms[0].from, app.settings.sms.from);
    assert!(!sms[0].body.contains("Lucía"), "no name on a lock screen");

    for channel in ["email", "sms"] {
        let (status, detail, attempts) =
            wait_for_delivery(&app, event_id, channel, Duration::from_secs(5)).await;
        assert_eq!((status.as_str(), attempts), ("sent", 1), "{channel}");
        let detail = detail.unwrap_or_default();
        match channel {
            "email" => assert_eq!(detail, notifier::message_id(event_id, "citaflow.local")),
            _ => assert_eq!(detail, sms[0].sid, "the provider's reference is kept"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_booking_reaches_an_english_patient_once_by_email_and_sms() {
    a_confirmed_booking_reaches_the_patient_once_by_email_and_sms("en").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_booking_reaches_a_spanish_patient_once_by_email_and_sms() {
    a_confirmed_booking_reaches_the_patient_once_by_email_and_sms("es").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_cancellations_and_moves_are_announced_on_both_channels() {
    let recorder = SmsRecorder::start().await;
    let app = TestApp::spawn_with(
        Services {
            sms: true,
            ..Services::default()
        },
        |s| recorder.configure(s),
    )
    .await;
    // Messages link to the web app at this address.
    let web = app.settings.notifier.public_base_url.clone();
    let doctor = app.create_doctor().await;
    let center = create_center(&app).await;
    let person = create_person(
        &app,
        "es",
        "Lucía Pérez",
        format!(
            "kinds-{}@notifications.example.test",
            Uuid::new_v4().simple()
        ),
    )
    .await;
    let d = directory(doctor, center, &person);
    let mut seen = 0;
    // Waits for the next message on both channels and answers (email, calendar, SMS body).
    let next = |count: usize| {
        let (recorder, person) = (&recorder, &person);
        async move {
            let mails =
                mailpit::wait_for_messages(&person.email, count, Duration::from_secs(20)).await;
            assert_eq!(
                mails.len(),
                count,
                "one email per event: {:?}",
                mails.iter().map(|m| &m.subject).collect::<Vec<_>>()
            );
            let sms = recorder
                .wait_for(&person.phone, count, Duration::from_secs(20))
                .await;
            assert_eq!(sms.len(), count, "one SMS per event: {sms:?}");
            let newest = mails[0].clone();
            let ics = if newest.attachments.is_empty() {
                None
            } else {
                Some(parse_ics(&calendar_part(&newest).await))
            };
            (newest, ics, sms[count - 1].body.clone())
        }
    };
    let (t1, t2, t3, t4) = (in_hours(30), in_hours(33), in_hours(36), in_hours(40));
    let short = |t: DateTime<Utc>| t.format("%d/%m/%Y %H:%M").to_string();
    let time = |t: DateTime<Utc>| t.format("%H:%M").to_string();

    // Confirmed.
    let first = accepted_id(app.book(&d, t1, 30).await).await;
    assert_eq!(
        app.wait_for_decision(&first, Duration::from_secs(10)).await["status"],
        "confirmed"
    );
    seen += 1;
    let (mail, _, _) = next(seen).await;
    assert!(
        mail.subject.starts_with("Cita confirmada: "),
        "{}",
        mail.subject
    );

    // Rejected: the doctor is busy then.
    let clash = accepted_id(app.book(&d, t1 + Minutes::minutes(15), 30).await).await;
    let rejected = app.wait_for_decision(&clash, Duration::from_secs(10)).await;
    assert_eq!(
        (
            rejected["status"].as_str(),
            rejected["reason_code"].as_str()
        ),
        (Some("rejected"), Some("slot_taken"))
    );
    seen += 1;
    let (mail, ics, sms) = next(seen).await;
    assert!(
        mail.subject
            .starts_with("No hemos podido confirmar su cita del "),
        "{}",
        mail.subject
    );
    assert!(
        mail.text.contains("el médico ya tiene una cita a esa hora"),
        "{}",
        mail.text
    );
    assert!(
        mail.text.contains("Puede solicitar otra hora"),
        "{}",
        mail.text
    );
    assert!(ics.is_none(), "nothing to put in a calendar");
    assert_eq!(
        sms,
        format!(
            "Citaflow: No pudimos confirmar su cita del {} en Clinica Norte {}: el médico ya tiene una cita a esa hora. {web}/app/",
            short(t1 + Minutes::minutes(15)),
            center_suffix(&mail)
        )
    );

    // Cancelled: the calendar entry goes away.
    let response = app
        .post(&format!("/bookings/{first}/cancel"), &json!({}))
        .await;
    assert!(response.status().is_success(), "{}", response.status());
    wait_for_status(&app, &first, "cancelled", Duration::from_secs(10)).await;
    seen += 1;
    let (mail, ics, sms) = next(seen).await;
    assert!(
        mail.subject.starts_with("Cita cancelada: "),
        "{}",
        mail.subject
    );
    assert!(mail.subject.ends_with(&time(t1)), "{}", mail.subject);
    assert!(mail.text.contains("ha sido cancelada"), "{}", mail.text);
    let ics = ics.expect("a cancellation for the calendar");
    assert_eq!(
        (ics["METHOD"].as_str(), ics["STATUS"].as_str()),
        ("CANCEL", "CANCELLED")
    );
    assert_eq!(ics["UID"], format!("{first}@citaflow"));
    assert_eq!(ics["SEQUENCE"], "1", "above the confirmation's");
    assert!(
        sms.starts_with(&format!(
            "Citaflow: Su cita del {} con Dra. Marta Ruiz en Clinica Norte",
            short(t1)
        )),
        "{sms}"
    );
    assert!(
        sms.ends_with(&format!("ha sido cancelada. {web}/app/")),
        "{sms}"
    );

    // Moved: one message, from the old time to the new, updating the same calendar entry.
    let second = accepted_id(app.book(&d, t2, 30).await).await;
    assert_eq!(
        app.wait_for_decision(&second, Duration::from_secs(10))
            .await["status"],
        "confirmed"
    );
    seen += 1;
    next(seen).await;
    let moved = accepted_id(
        app.post(
            &format!("/bookings/{second}/reschedule"),
            &json!({"start": t3.to_rfc3339()}),
        )
        .await,
    )
    .await;
    assert_eq!(
        app.wait_for_decision(&moved, Duration::from_secs(10)).await["status"],
        "confirmed"
    );
    wait_for_status(&app, &second, "cancelled", Duration::from_secs(5)).await;
    seen += 1;
    let (mail, ics, sms) = next(seen).await;
    assert!(
        mail.subject.starts_with("Cita cambiada: "),
        "{}",
        mail.subject
    );
    assert!(mail.subject.ends_with(&time(t3)), "{}", mail.subject);
    assert!(
        mail.text.contains(&format!(", {} al ", time(t2))),
        "says from when: {}",
        mail.text
    );
    let ics = ics.expect("the moved appointment for the calendar");
    assert_eq!(ics["METHOD"], "PUBLISH");
    assert_eq!(
        ics["UID"],
        format!("{second}@citaflow"),
        "the same calendar entry as before the move"
    );
    assert_eq!(ics["SEQUENCE"], "1");
    assert_eq!(ics["DTSTART"], ics_time(t3));
    assert_eq!(
        sms,
        format!(
            "Citaflow: Su cita con Dra. Marta Ruiz en Clinica Norte {} se ha cambiado del {} al {}. {web}/app/appointments/{moved}",
            center_suffix(&mail),
            short(t2),
            short(t3)
        )
    );
    // The old booking's cancellation is part of the move: recorded, not sent.
    let old_events = events_of(&app, &second).await;
    let (cancel_event, kind) = old_events.last().unwrap().clone();
    assert_eq!(kind, "CANCELLED");
    for channel in ["email", "sms"] {
        let (status, detail, _) =
            wait_for_delivery(&app, cancel_event, channel, Duration::from_secs(5)).await;
        assert_eq!(
            (status.as_str(), detail.as_deref()),
            ("skipped", Some("superseded_by_reschedule")),
            "{channel}"
        );
    }

    // A move that cannot happen: the old appointment stays, and the patient is told so.
    let blocker = accepted_id(app.book(&d, t4, 30).await).await;
    assert_eq!(
        app.wait_for_decision(&blocker, Duration::from_secs(10))
            .await["status"],
        "confirmed"
    );
    seen += 1;
    next(seen).await;
    let refused = accepted_id(
        app.post(
            &format!("/bookings/{moved}/reschedule"),
            &json!({"start": t4.to_rfc3339()}),
        )
        .await,
    )
    .await;
    assert_eq!(
        app.wait_for_decision(&refused, Duration::from_secs(10))
            .await["status"],
        "rejected"
    );
    seen += 1;
    let (mail, ics, sms) = next(seen).await;
    assert_eq!(mail.subject, "No hemos podido cambiar su cita");
    assert!(
        mail.text.contains(&format!(", {} sigue en pie.", time(t3))),
        "{}",
        mail.text
    );
    assert!(ics.is_none());
    assert!(
        sms.starts_with(&format!(
            "Citaflow: No pudimos cambiar su cita al {}",
            short(t4)
        )),
        "{sms}"
    );
    assert!(
        sms.ends_with(&format!(
            "Su cita del {} se mantiene. {web}/app/appointments/{moved}",
            short(t3)
        )),
        "{sms}"
    );

    // Nothing else went out.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mailpit::messages_to(&person.email).await.len(), seen);
    assert_eq!(recorder.messages_to(&person.phone).len(), seen);
}

/// The unique tail of the test center's name as it appears in a message (`Clínica Norte <hex>`).
fn center_suffix(mail: &mailpit::Mail) -> String {
    let after = mail
        .text
        .split("Clínica Norte ")
        .nth(1)
        .expect("the center's name");
    after
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_log_lets_one_sender_at_a_time_and_spots_attempts_in_doubt() {
    let app = TestApp::spawn_with(
        Services {
            api: false,
            processor: false,
            email: false,
            ..Services::default()
        },
        |_| {},
    )
    .await;
    let (event, booking) = (Uuid::new_v4(), Uuid::new_v4());
    let claim = deliveries::claim(&app.pool, event, "email", booking)
        .await
        .unwrap();
    assert!(
        matches!(
            claim,
            Claim::Open {
                attempts: 1,
                in_doubt: false,
                ..
            }
        ),
        "{claim:?}"
    );
    // The process died after claiming: whoever comes next cannot know whether it sent.
    let claim = deliveries::claim(&app.pool, event, "email", booking)
        .await
        .unwrap();
    assert!(
        matches!(
            claim,
            Claim::Open {
                attempts: 2,
                in_doubt: true,
                ..
            }
        ),
        "{claim:?}"
    );

    // One sender at a time; the other is told at once, not made to wait.
    let first = deliveries::lock(&app.pool, event, "email")
        .await
        .unwrap()
        .expect("open");
    let started = std::time::Instant::now();
    let second = deliveries::lock(&app.pool, event, "email").await;
    assert!(
        matches!(second, Err(LockError::Busy)),
        "{:?}",
        second.as_ref().err()
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    first.note_retry(false, "SMTP said 451").await.unwrap();

    // A failure that certainly did not deliver is not in doubt.
    let claim = deliveries::claim(&app.pool, event, "email", booking)
        .await
        .unwrap();
    assert!(
        matches!(
            claim,
            Claim::Open {
                attempts: 3,
                in_doubt: false,
                ..
            }
        ),
        "{claim:?}"
    );
    let locked = deliveries::lock(&app.pool, event, "email")
        .await
        .unwrap()
        .expect("open");
    locked.note_retry(true, "connection reset").await.unwrap();
    let claim = deliveries::claim(&app.pool, event, "email", booking)
        .await
        .unwrap();
    assert!(
        matches!(
            claim,
            Claim::Open {
                attempts: 4,
                in_doubt: true,
                ..
            }
        ),
        "{claim:?}"
    );

    let locked = deliveries::lock(&app.pool, event, "email")
        .await
        .unwrap()
        .expect("open");
    locked.close(&Closing::Sent("<ref>".into())).await.unwrap();
    assert_eq!(
        deliveries::claim(&app.pool, event, "email", booking)
            .await
            .unwrap(),
        Claim::Closed
    );
    assert!(
        deliveries::lock(&app.pool, event, "email")
            .await
            .unwrap()
            .is_none()
    );
    // A late close from a stale sender changes nothing.
    deliveries::close(&app.pool, event, "email", &Closing::Failed("late".into()))
        .await
        .unwrap();
    assert_eq!(
        delivery(&app, event, "email").await,
        Some(("sent".into(), Some("<ref>".into()), 4))
    );
    // The other channel is another row.
    assert!(matches!(
        deliveries::claim(&app.pool, event, "sms", booking)
            .await
            .unwrap(),
        Claim::Open { attempts: 1, .. }
    ));
}

/// A sender that died after handing an email over leaves its delivery row `sending` with no
/// outcome. The next sender searches the mail system's log for the email's Message-ID: found,
/// the row is closed without sending; not found (the server never took it), it is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_in_doubt_is_looked_up_in_the_mail_log_before_it_is_sent_again() {
    let app = TestApp::spawn_with(Services::default(), |_| {}).await;
    let doctor = app.create_doctor().await;
    let center = create_center(&app).await;
    let domain = format!("doubt-{}.example.test", app.id);
    let taken = create_person(&app, "es", "Ana Gil", format!("taken@{domain}")).await;
    let lost = create_person(&app, "es", "Luis Mora", format!("lost@{domain}")).await;
    let base = in_hours(30);
    let mut events = Vec::new();
    for (person, start) in [(&taken, base), (&lost, base + Minutes::minutes(60))] {
        let id = accepted_id(
            app.book(&directory(doctor, center, person), start, 30)
                .await,
        )
        .await;
        wait_for_status(&app, &id, "confirmed", Duration::from_secs(20)).await;
        let (event_id, _) = events_of(&app, &id).await[0];
        let row = wait_for_delivery(&app, event_id, "email", Duration::from_secs(20)).await;
        assert_eq!(row.0, "sent");
        events.push(event_id);
    }
    mailpit::wait_for_messages(&lost.email, 1, Duration::from_secs(10)).await;
    let taken_mail = mailpit::wait_for_messages(&taken.email, 1, Duration::from_secs(10)).await;

    // As if each sender had died mid-send: both rows open again with no outcome. The server
    // had taken the first email; the second never reached it (removed from Mailpit).
    sqlx::query(
        "UPDATE notification_deliveries SET status = 'sending', detail = NULL
          WHERE channel = 'email' AND event_id = ANY($1)",
    )
    .bind(&events)
    .execute(&app.pool)
    .await
    .unwrap();
    let lost_mail = mailpit::messages_to(&lost.email).await;
    let removed = reqwest::Client::new()
        .delete(format!("{}/api/v1/messages", Stack::get().mailpit))
        .json(&json!({ "IDs": lost_mail.iter().map(|m| m.id.clone()).collect::<Vec<_>>() }))
        .send()
        .await
        .unwrap();
    assert!(removed.status().is_success());
    assert!(mailpit::messages_to(&lost.email).await.is_empty());

    // A second email sender (another consumer group, so it reads the events again).
    let mut settings = app.settings.clone();
    settings.notifier.channel = Channel::Email;
    settings.notifier.group_id = Some(format!("t{}-notifier-email-again", app.id));
    let again = ServiceProcess::start("notifier", &settings);
    for event_id in &events {
        let row = wait_for_delivery(&app, *event_id, "email", Duration::from_secs(30)).await;
        assert_eq!(
            row,
            (
                "sent".into(),
                Some(format!("<{}>", message_id(*event_id))),
                2
            )
        );
    }
    // The one the server had is not sent again; the one it never had is.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let taken_now = mailpit::messages_to(&taken.email).await;
    assert_eq!(taken_now.len(), 1, "sent again although the log had it");
    assert_eq!(taken_now[0].id, taken_mail[0].id);
    let lost_now = mailpit::messages_to(&lost.email).await;
    assert_eq!(lost_now.len(), 1, "the email the server never took is sent");
    assert_eq!(
        stored_message_id(&lost_now[0].id).await,
        message_id(events[1])
    );
    drop(again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_provider_outages_are_retried_and_refusals_recorded_without_blocking_others() {
    let recorder = SmsRecorder::start().await;
    let app = TestApp::spawn_with(
        Services {
            email: false,
            sms: true,
            ..Services::default()
        },
        |s| recorder.configure(s),
    )
    .await;
    let doctor = app.create_doctor().await;
    let center = create_center(&app).await;
    let mut people = Vec::new();
    for tag in ["retried", "refused", "national", "none"] {
        let email = format!(
            "sms-{tag}-{}@notifications.example.test",
            Uuid::new_v4().simple()
        );
        people.push(create_person(&app, "en", "Ana Gil", email).await);
    }
    let [retried, refused, national, none] = <[Person; 4]>::try_from(people).unwrap();
    // Rows written before the API checked numbers, or imported: the notifier checks again.
    sqlx::query("UPDATE patients SET phone = '600 123 456' WHERE id = $1")
        .bind(national.id)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE patients SET phone = NULL WHERE id = $1")
        .bind(none.id)
        .execute(&app.pool)
        .await
        .unwrap();
    recorder.refuse_number(&refused.phone);
    let base = in_hours(30);
    // All with one doctor: one partition, in order.
    let book = |person: &Person, hour: i64| {
        let d = directory(doctor, center, person);
        let app = &app;
        async move {
            let id = accepted_id(app.book(&d, base + Minutes::hours(hour), 30).await).await;
            assert_eq!(
                app.wait_for_decision(&id, Duration::from_secs(10)).await["status"],
                "confirmed"
            );
            events_of(app, &id).await[0].0
        }
    };

    // The provider answers 503 for a while: the SMS waits and goes out once it is back.
    recorder.set_unavailable(true);
    let event = book(&retried, 0).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let (status, detail, attempts) = loop {
        let row = delivery(&app, event, "sms").await;
        if recorder.unavailable_answers() >= 3
            && let Some(row @ (_, Some(_), _)) = row
        {
            break row;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no retries seen: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, "sending");
    assert!(
        detail
            .unwrap_or_default()
            .starts_with("not_sent: SMS provider answered 503")
    );
    assert!(attempts >= 3);
    assert!(recorder.messages_to(&retried.phone).is_empty());
    recorder.set_unavailable(false);
    let sms = recorder
        .wait_for(&retried.phone, 1, Duration::from_secs(20))
        .await;
    assert_eq!(sms.len(), 1, "{sms:?}");
    let (status, _, attempts) = wait_for_delivery(&app, event, "sms", Duration::from_secs(5)).await;
    assert_eq!(status, "sent");
    assert!(attempts >= 4, "{attempts}");

    // The provider refuses a number: failed for good, with the reason, and tried once.
    let before = recorder.requests();
    let event = book(&refused, 1).await;
    let (status, detail, attempts) =
        wait_for_delivery(&app, event, "sms", Duration::from_secs(10)).await;
    let detail = detail.unwrap_or_default();
    assert_eq!((status.as_str(), attempts), ("failed", 1));
    assert_eq!(
        detail,
        "SMS provider answered 400 (code 21211): The 'To' number [phone] is not a valid phone number."
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(recorder.requests() - before, 1, "a refusal is not retried");

    // A stored number that is not E.164 never reaches the provider.
    let before = recorder.requests();
    let event = book(&national, 2).await;
    let (status, detail, _) = wait_for_delivery(&app, event, "sms", Duration::from_secs(10)).await;
    assert_eq!(status, "failed");
    assert_eq!(
        detail.as_deref(),
        Some("invalid_phone: the phone number has no international prefix (+ and country code)")
    );
    // No phone at all: nothing to do.
    let event = book(&none, 3).await;
    let (status, detail, _) = wait_for_delivery(&app, event, "sms", Duration::from_secs(10)).await;
    assert_eq!(
        (status.as_str(), detail.as_deref()),
        ("skipped", Some("no_phone"))
    );
    assert_eq!(recorder.requests(), before, "the provider was not asked");

    // And the channel goes on.
    book(&retried, 4).await;
    assert_eq!(
        recorder
            .wait_for(&retried.phone, 2, Duration::from_secs(10))
            .await
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_mailpit_is_down_sms_goes_on_and_every_email_arrives_once_it_is_back() {
    let recorder = SmsRecorder::start().await;
    let app = TestApp::spawn_with(
        Services {
            sms: true,
            smtp_proxy: true,
            ..Services::default()
        },
        |s| recorder.configure(s),
    )
    .await;
    let domain = format!("outage-{}.example.test", app.id);
    let center = create_center(&app).await;
    let doctors: Vec<Uuid> = join_all((0..4).map(|_| app.create_doctor())).await;
    let people: Vec<Person> = join_all((0..21).map(|i| {
        let email = format!("p{i}@{domain}");
        let app = &app;
        async move { create_person(app, "es", "Ana Gil", email).await }
    }))
    .await;

    // Everything flows; the SMTP connection is open.
    let warm_up = accepted_id(
        app.book(&directory(doctors[0], center, &people[0]), in_hours(20), 30)
            .await,
    )
    .await;
    app.wait_for_decision(&warm_up, Duration::from_secs(10))
        .await;
    mailpit::wait_for_messages(&people[0].email, 1, Duration::from_secs(20)).await;
    recorder
        .wait_for(&people[0].phone, 1, Duration::from_secs(20))
        .await;

    // Mailpit "stops" for 20 s, and a burst of bookings comes in.
    let proxy = app.smtp_proxy.as_ref().unwrap();
    proxy.down();
    let down_at = tokio::time::Instant::now();
    let ids: Vec<String> = join_all(people[1..].iter().enumerate().map(|(i, person)| {
        let d = directory(doctors[i % doctors.len()], center, person);
        let app = &app;
        async move {
            accepted_id(
                app.book(&d, in_hours(24) + Minutes::hours(i as i64), 30)
                    .await,
            )
            .await
        }
    }))
    .await;
    for id in &ids {
        assert_eq!(
            app.wait_for_decision(id, Duration::from_secs(10)).await["status"],
            "confirmed"
        );
    }
    // SMS is not held up by email.
    loop {
        let missing = people[1..]
            .iter()
            .filter(|p| recorder.messages_to(&p.phone).is_empty())
            .count();
        if missing == 0 {
            break;
        }
        assert!(
            down_at.elapsed() < Duration::from_secs(18),
            "{missing} SMS still missing while email is down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let during = mailpit_search(&format!("to:\"@{domain}\"")).await;
    assert_eq!(
        during.len(),
        1,
        "only the warm-up email got through while Mailpit was down"
    );
    tokio::time::sleep_until(down_at + Duration::from_secs(20)).await;
    proxy.up();

    // Every email arrives, once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while mailpit_search(&format!("to:\"@{domain}\"")).await.len() < people.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "emails missing after Mailpit came back"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mails = mailpit_search(&format!("to:\"@{domain}\"")).await;
    let mut per_address: HashMap<String, usize> = HashMap::new();
    for mail in &mails {
        *per_address
            .entry(mail["To"][0]["Address"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_address.len(), people.len(), "{per_address:?}");
    assert!(
        per_address.values().all(|n| *n == 1),
        "exactly one email each: {per_address:?}"
    );
    for person in &people {
        assert_eq!(
            recorder.messages_to(&person.phone).len(),
            1,
            "exactly one SMS each"
        );
    }
    let retried: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notification_deliveries WHERE channel = 'email' AND status = 'sent' AND attempts > 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(retried >= 1, "the first email after the cut was retried");
    let metrics = citaflow_platform::ops::metrics_handle().render();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("citaflow_notifications_total{")
                && l.contains("channel=\"email\"")
                && l.contains("outcome=\"retried\"")),
        "retries are counted: {metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notifiers_killed_mid_burst_still_send_every_notification_once() {
    let app = TestApp::spawn_with(Services::no_email(), |_| {}).await;
    // The child processes get their settings from the environment `process` builds, which has
    // the SMS base URL but not the credentials: the recorder expects the defaults.
    let defaults = Settings::default();
    let recorder = SmsRecorder::start_with(defaults.sms.account_sid.clone(), None).await;
    let notifier_settings = |channel: Channel| {
        let mut s = app.settings.clone();
        s.notifier.channel = channel;
        s.notifier.group_id = Some(format!("t{}-notifier-{}", app.id, channel.as_str()));
        s.sms.base_url = recorder.base_url.clone();
        s
    };
    let domain = format!("burst-{}.example.test", app.id);
    let total = 500usize;
    let center = create_center(&app).await;
    let doctors: Vec<Uuid> = join_all((0..25).map(|_| app.create_doctor())).await;
    let people: Vec<Person> = futures_util::stream::iter(0..total)
        .map(|i| {
            let app = &app;
            let email = format!("p{i}@{domain}");
            async move { create_person(app, "es", "Ana Gil", email).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;

    let mut email = ServiceProcess::start("notifier", &notifier_settings(Channel::Email));
    let mut sms = ServiceProcess::start("notifier", &notifier_settings(Channel::Sms));
    let base = in_hours(48);
    let burst = futures_util::stream::iter(people.iter().enumerate())
        .map(|(i, person)| {
            let d = directory(doctors[i % doctors.len()], center, person);
            // Each doctor's appointments follow one another: all are confirmed.
            let start = base + Minutes::minutes((i / doctors.len()) as i64 * 30);
            let app = &app;
            async move {
                (
                    person.email.clone(),
                    accepted_id(app.book(&d, start, 30).await).await,
                )
            }
        })
        .buffer_unordered(24)
        .collect::<Vec<(String, String)>>();
    // Kill each notifier while it is delivering, then start it again.
    let killer = async {
        let (e, s) = tokio::join!(
            kill_mid_delivery(&app, &mut email, notifier_settings(Channel::Email), 150),
            kill_mid_delivery(&app, &mut sms, notifier_settings(Channel::Sms), 250),
        );
        HashMap::from([e, s])
    };
    let (booked, killed_at) = tokio::join!(burst, killer);
    assert_eq!(booked.len(), total);
    app.wait_until_none_pending(Duration::from_secs(120)).await;
    assert_eq!(
        app.status_counts().await.get("confirmed"),
        Some(&(total as i64))
    );

    // Every event is closed as sent on both channels.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let sent: Vec<(String, i64)> = sqlx::query_as(
            "SELECT channel, count(*) FROM notification_deliveries WHERE status = 'sent' GROUP BY channel ORDER BY channel",
        )
        .fetch_all(&app.pool)
        .await
        .unwrap();
        if sent
            == [
                ("email".to_owned(), total as i64),
                ("sms".to_owned(), total as i64),
            ]
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all sent: {sent:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for (channel, (at, _)) in &killed_at {
        assert!(
            (*at as usize) < total,
            "{channel} was killed with deliveries still to do ({at})"
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The event of each patient, and how many attempts its email took.
    let event_of: HashMap<String, (Uuid, i32)> = {
        let by_booking: HashMap<Uuid, (Uuid, i32)> = sqlx::query_as::<_, (Uuid, Uuid, i32)>(
            "SELECT e.booking_id, e.event_id, d.attempts FROM booking_events e
               JOIN notification_deliveries d ON d.event_id = e.event_id AND d.channel = 'email'",
        )
        .fetch_all(&app.pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(booking, event, attempts)| (booking, (event, attempts)))
        .collect();
        booked
            .iter()
            .map(|(email, id)| (email.clone(), by_booking[&Uuid::parse_str(id).unwrap()]))
            .collect()
    };

    // SMS: exactly one per patient, even for the one in flight when its notifier died (the
    // provider's log is checked before sending again).
    let messages = recorder.messages();
    let mut per_phone: HashMap<&str, usize> = HashMap::new();
    for m in &messages {
        *per_phone.entry(m.to.as_str()).or_default() += 1;
    }
    let phones: HashSet<&str> = people.iter().map(|p| p.phone.as_str()).collect();
    assert_eq!(per_phone.len(), total, "an SMS for every patient");
    assert!(per_phone.keys().all(|p| phones.contains(p)));
    let repeated: Vec<_> = per_phone.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "SMS sent twice: {repeated:?}");

    // Email: exactly one message per event, with the event's own Message-ID, even for the one
    // in flight when its notifier died: SMTP cannot say whether that one was taken, so the
    // mail system's message log is searched for its Message-ID before sending it again.
    let mails = mailpit_search(&format!("to:\"@{domain}\"")).await;
    let mut copies: HashMap<String, Vec<String>> = HashMap::new();
    for mail in &mails {
        let to = mail["To"][0]["Address"].as_str().unwrap().to_owned();
        copies
            .entry(to)
            .or_default()
            .push(mail["MessageID"].as_str().unwrap().to_owned());
    }
    assert_eq!(copies.len(), total, "an email for every patient");
    assert_eq!(mails.len(), total, "one email per patient");
    let mut emails_again = 0;
    for (address, ids) in &copies {
        let (event_id, attempts) = event_of[address];
        assert_eq!(ids, &[message_id(event_id)], "{address}");
        if attempts > 1 {
            emails_again += 1;
        }
    }
    // How the SMS in flight at the kill was settled: found in the provider's log (delivered
    // before the kill) or sent after the restart.
    let sms_again: Vec<String> = sqlx::query_scalar(
        "SELECT detail FROM notification_deliveries WHERE channel = 'sms' AND attempts > 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let sms_killed_at = killed_at["sms"].1;
    let found_in_log = sms_again
        .iter()
        .filter(|sid| {
            messages
                .iter()
                .any(|m| &m.sid == *sid && m.received_at < sms_killed_at)
        })
        .count();
    eprintln!(
        "killed at {killed_at:?}; {} emails for {total} events ({emails_again} attempted again); {} SMS; {} SMS attempted again, {found_in_log} of them found delivered in the provider's log ({} look-ups)",
        mails.len(),
        messages.len(),
        sms_again.len(),
        recorder.lookups(),
    );
    drop((email, sms));
}

/// Waits until the delivery log has `threshold` rows on the process's channel, SIGKILLs it and
/// starts it again; answers the channel, the row count and the time when it was killed.
async fn kill_mid_delivery(
    app: &TestApp,
    process: &mut ServiceProcess,
    settings: Settings,
    threshold: i64,
) -> (&'static str, (i64, DateTime<Utc>)) {
    let channel = settings.notifier.channel.as_str();
    let at = loop {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM notification_deliveries WHERE channel = $1")
                .bind(channel)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        if n >= threshold {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    process.kill();
    let killed_at = Utc::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    *process = ServiceProcess::start("notifier", &settings);
    (channel, (at, killed_at))
}

/// A notifier child process whose logs (JSON, info and up, debug for the notifier itself) go
/// to a file the test reads afterwards.
struct LoggedNotifier {
    child: Child,
    log: PathBuf,
}

impl LoggedNotifier {
    fn start(settings: &Settings, recorder: &SmsRecorder, log: PathBuf) -> LoggedNotifier {
        let mut command = Command::new(process::binary("notifier"));
        for (key, _) in std::env::vars() {
            if key.starts_with("CITAFLOW__") || key == "CITAFLOW_CONFIG" {
                command.env_remove(key);
            }
        }
        let file = std::fs::File::create(&log).unwrap();
        command
            .envs(process::environment(settings))
            .env("CITAFLOW__LOG__LEVEL", "info,notifier=debug")
            .env("CITAFLOW__LOG__FORMAT", "json")
            .env("CITAFLOW__SMS__ACCOUNT_SID", &recorder.account_sid)
            .env(
                "CITAFLOW__SMS__AUTH_TOKEN",
                recorder.auth_token.clone().unwrap_or_default(),
            )
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        LoggedNotifier {
            child: command.spawn().expect("start notifier"),
            log,
        }
    }

    /// Stops it with SIGTERM (so everything is flushed) and answers its log.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "the notifier did not stop"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for LoggedNotifier {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booking_events_and_notifier_logs_carry_no_personal_data() {
    let app = TestApp::spawn_with(Services::no_email(), |_| {}).await;
    let recorder = SmsRecorder::start().await;
    let logs = std::env::temp_dir().join(format!("citaflow-notifier-logs-{}", app.id));
    std::fs::create_dir_all(&logs).unwrap();
    let notifier = |channel: Channel| {
        let mut s = app.settings.clone();
        s.notifier.channel = channel;
        s.notifier.group_id = Some(format!("t{}-notifier-{}", app.id, channel.as_str()));
        recorder.configure(&mut s);
        LoggedNotifier::start(
            &s,
            &recorder,
            logs.join(format!("{}.log", channel.as_str())),
        )
    };
    let (email, sms) = (notifier(Channel::Email), notifier(Channel::Sms));

    let doctor = app.create_doctor().await;
    let center = create_center(&app).await;
    let tag = random_digits(6);
    let mut people = Vec::new();
    for (i, surname) in ["Quintanilla", "Villaescusa", "Arrieta"]
        .into_iter()
        .enumerate()
    {
        let name = format!("Zoraida {surname}{tag}");
        let email = format!(
            "zoraida.{}{tag}{i}@privacy.example.test",
            surname.to_lowercase()
        );
        people.push(create_person(&app, "es", &name, email).await);
    }
    // The provider refuses the second one's number, echoing it back; the third one's address
    // cannot be parsed. Both failures are logged: without the number or the address.
    recorder.refuse_number(&people[1].phone);
    let broken_email = format!("zoraida.arrieta{tag}@@privacy.example.test");
    sqlx::query("UPDATE patients SET email = $2 WHERE id = $1")
        .bind(people[2].id)
        .bind(&broken_email)
        .execute(&app.pool)
        .await
        .unwrap();

    let start = in_hours(30);
    let d = directory(doctor, center, &people[0]);
    let first = accepted_id(app.book(&d, start, 30).await).await;
    app.wait_for_decision(&first, Duration::from_secs(10)).await;
    let clash = accepted_id(app.book(&d, start, 30).await).await;
    app.wait_for_decision(&clash, Duration::from_secs(10)).await;
    app.post(&format!("/bookings/{first}/cancel"), &json!({}))
        .await;
    wait_for_status(&app, &first, "cancelled", Duration::from_secs(10)).await;
    for (i, person) in people[1..].iter().enumerate() {
        let id = accepted_id(
            app.book(
                &directory(doctor, center, person),
                start + Minutes::hours(i as i64 + 1),
                30,
            )
            .await,
        )
        .await;
        app.wait_for_decision(&id, Duration::from_secs(10)).await;
    }
    let events: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM booking_events")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(events.len(), 5);
    for event in &events {
        for channel in ["email", "sms"] {
            wait_for_delivery(&app, *event, channel, Duration::from_secs(30)).await;
        }
    }
    let failed: Vec<(String, String)> = sqlx::query_as(
        "SELECT channel, detail FROM notification_deliveries WHERE status = 'failed' ORDER BY channel",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(failed.len(), 2, "{failed:?}");

    // What could identify a patient, in every spelling a careless writer might use.
    let mut secrets: Vec<String> = Vec::new();
    for person in &people {
        let national = person.phone.trim_start_matches("+34").to_owned();
        secrets.extend([
            person.name.clone(),
            person.name.split(' ').nth(1).unwrap().to_owned(),
            person.email.clone(),
            person.email.split('@').next().unwrap().to_owned(),
            person.phone.clone(),
            person.phone.trim_start_matches('+').to_owned(),
            national,
        ]);
    }
    secrets.push(broken_email.clone());
    let contains = |haystack: &[u8], needle: &str| {
        let needle = needle.to_lowercase();
        haystack
            .to_ascii_lowercase()
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    };

    // The events topic, raw: keys, values and headers.
    let topic = app.settings.topics.events.clone();
    let records = tokio::task::spawn_blocking(move || read_all(&topic, 5, Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(records.len(), 5);
    let mut patient_seen = false;
    for record in &records {
        let mut bytes = record.payload().unwrap_or_default().to_vec();
        bytes.extend_from_slice(record.key().unwrap_or_default());
        if let Some(headers) = record.headers() {
            use rdkafka::message::Headers;
            for header in headers.iter() {
                bytes.extend_from_slice(header.key.as_bytes());
                bytes.extend_from_slice(header.value.unwrap_or_default());
            }
        }
        patient_seen |= people.iter().any(|p| contains(&bytes, &p.id.to_string()));
        for secret in &secrets {
            assert!(
                !contains(&bytes, secret),
                "{secret:?} found in an event on {}",
                app.settings.topics.events
            );
        }
    }
    assert!(
        patient_seen,
        "the search reads the records (they carry the patient id)"
    );

    // The notifier's logs, failures included.
    let logs = [email.stop(), sms.stop()];
    for log in &logs {
        let handled = log
            .lines()
            .filter(|l| l.contains("notification handled"))
            .count();
        assert_eq!(handled, 5, "every event logged once per channel:\n{log}");
        assert!(
            log.lines()
                .all(|l| serde_json::from_str::<Value>(l).is_ok()),
            "JSON lines:\n{log}"
        );
        for secret in &secrets {
            assert!(
                !contains(log.as_bytes(), secret),
                "{secret:?} found in the logs:\n{log}"
            );
        }
    }
    assert!(
        logs[1].contains("[phone]"),
        "the provider's refusal is logged, redacted:\n{}",
        logs[1]
    );
    assert!(
        logs[0].contains("invalid recipient address"),
        "the bad address is logged, not shown:\n{}",
        logs[0]
    );
    let _ = std::fs::remove_dir_all(
        std::env::temp_dir().join(format!("citaflow-notifier-logs-{}", app.id)),
    );
}
