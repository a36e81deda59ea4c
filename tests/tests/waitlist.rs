//! The waitlist against the real stack: two patients wait for a doctor's Tuesday; the booked
//! patient cancels; the first to join is offered the slot (event, email and SMS with the link),
//! takes it and is confirmed, and the second is never offered it; when the first lets the hold
//! lapse instead, the second is offered it, never both at once. And the API's rules: who may
//! join for whom, dates, duplicates, leaving, and offers only their patient (or staff) sees.

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc, Weekday};
use citaflow_platform::Settings;
use citaflow_schemas::{BookingEvent, BookingEventKind};
use citaflow_tests::{Services, TestApp, mailpit, read_all, sms::SmsRecorder};
use serde_json::{Value, json};
use uuid::Uuid;

const PASSWORD: &str = "a-long-enough-password";
/// Seconds a slot is held for the patient offered it.
const HOLD_SECS: u64 = 8;

fn short_hold(s: &mut Settings) {
    s.processor.waitlist_hold_secs = HOLD_SECS;
    s.processor.waitlist_poll_interval_ms = 300;
    s.notifier.public_base_url = "https://citas.example.test".into();
}

/// A Tuesday at least two days ahead.
fn next_tuesday() -> NaiveDate {
    let mut day = Utc::now().date_naive() + chrono::Duration::days(2);
    while day.weekday() != Weekday::Tue {
        day = day.succ_opt().unwrap();
    }
    day
}

fn madrid(date: NaiveDate, hour: u32) -> DateTime<Utc> {
    chrono_tz::Europe::Madrid
        .from_local_datetime(&date.and_hms_opt(hour, 0, 0).unwrap())
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

async fn created(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

fn id(v: &Value) -> Uuid {
    Uuid::parse_str(v["id"].as_str().unwrap()).unwrap()
}

/// A patient who logs in, with their own email and phone.
struct Patient {
    id: Uuid,
    email: String,
    phone: String,
    token: String,
}

async fn patient(app: &TestApp, name: &str) -> Patient {
    let email = format!("waiting-{}@waitlist.example.test", Uuid::new_v4().simple());
    let phone = format!("+3462{:07}", Uuid::new_v4().as_u128() % 10_000_000);
    let body = json!({"name": name, "email": email, "phone": phone, "language": "es",
                      "password": PASSWORD});
    let id = id(&created(app.post("/patients", &body).await).await);
    let token = app.login(&email, PASSWORD).await;
    Patient {
        id,
        email,
        phone,
        token,
    }
}

/// A center and a doctor who offers a 30-minute service there on Tuesdays 09–14.
struct Clinic {
    center: Uuid,
    doctor: Uuid,
    service: Uuid,
}

async fn clinic(app: &TestApp) -> Clinic {
    let center = app.create_center().await;
    let doctor = app.create_doctor().await;
    let body = json!({"name": format!("Revisión {}", Uuid::new_v4().simple()),
                      "duration_minutes": 30, "doctor_ids": [doctor]});
    let service = id(&created(app.post("/services", &body).await).await);
    let body = json!({"doctor_id": doctor, "center_id": center, "weekday": "tuesday",
                      "start": "09:00", "end": "14:00"});
    created(app.post("/working-hours", &body).await).await;
    Clinic {
        center,
        doctor,
        service,
    }
}

/// `method path` as `token` with a JSON body (or none), answering (status, body).
async fn call(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let response = app.request_as(token, method, path, body).await;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// The patient of `clinic` booked at `start` (confirmed), answering the booking id.
async fn booked(app: &TestApp, clinic: &Clinic, who: &Patient, start: DateTime<Utc>) -> String {
    let body = json!({"patient_id": who.id, "doctor_id": clinic.doctor,
                      "center_id": clinic.center, "service_id": clinic.service,
                      "start": start.to_rfc3339()});
    let response = app
        .http
        .post(app.url("/bookings"))
        .bearer_auth(&who.token)
        .header("Prefer", "wait=10")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "book: {body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn join(app: &TestApp, clinic: &Clinic, who: &Patient, day: NaiveDate) -> Value {
    let body = json!({"service_id": clinic.service, "center_id": clinic.center,
                      "doctor_id": clinic.doctor, "from": day, "to": day});
    let (status, entry) = call(
        app,
        &who.token,
        reqwest::Method::POST,
        "/waitlist",
        Some(&body),
    )
    .await;
    assert_eq!(status, 201, "join: {entry}");
    assert_eq!(entry["status"], "waiting");
    entry
}

async fn cancel(app: &TestApp, who: &Patient, booking: &str) {
    let (status, body) = call(
        app,
        &who.token,
        reqwest::Method::POST,
        &format!("/bookings/{booking}/cancel"),
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, 202, "cancel: {body}");
}

/// The waitlist events on this test's events topic.
async fn waitlist_events(app: &TestApp) -> Vec<BookingEvent> {
    let records = read_all(&app.settings.topics.events, 1, Duration::from_secs(2));
    app.decode_events(&records)
        .await
        .into_iter()
        .filter(|e| {
            matches!(
                e.kind,
                BookingEventKind::WaitlistOffered | BookingEventKind::WaitlistExpired
            )
        })
        .collect()
}

/// The entry as `who` reads it now.
async fn entry_now(app: &TestApp, who: &Patient, entry: &Value) -> Value {
    let path = format!("/waitlist/{}", entry["id"].as_str().unwrap());
    let (status, now) = call(app, &who.token, reqwest::Method::GET, &path, None).await;
    assert_eq!(status, 200, "{now}");
    now
}

/// The offer `id` as `who` reads it now.
async fn offer_now(app: &TestApp, who: &Patient, id: &str) -> Value {
    let path = format!("/waitlist/offers/{id}");
    let (status, offer) = call(app, &who.token, reqwest::Method::GET, &path, None).await;
    assert_eq!(status, 200, "{offer}");
    offer
}

/// `POST /waitlist/offers/{id}/accept` as `who` (without waiting), answering (status, body).
async fn accept(app: &TestApp, who: &Patient, id: &str) -> (u16, Value) {
    let path = format!("/waitlist/offers/{id}/accept");
    call(app, &who.token, reqwest::Method::POST, &path, None).await
}

/// `who` takes offer `id`, waiting for the decision: answers the booking, confirmed (201).
async fn taken(app: &TestApp, who: &Patient, id: &str) -> Value {
    let response = app
        .http
        .post(app.url(&format!("/waitlist/offers/{id}/accept")))
        .bearer_auth(&who.token)
        .header("Prefer", "wait=10")
        .send()
        .await
        .unwrap();
    let status = response.status();
    let booking: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "accept: {booking}");
    booking
}

/// Waits for the entry's held offer, answering it.
async fn offer_for(app: &TestApp, who: &Patient, entry: &Value, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(offer) = entry_now(app, who, entry).await["offer_id"].as_str() {
            return offer_now(app, who, offer).await;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no offer for {entry} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// (entry, status, made, closed) of an offer.
type OfferRow = (Uuid, String, DateTime<Utc>, Option<DateTime<Utc>>);

/// Every offer ever made of the doctor's slot at `start`, oldest first.
async fn offers_of_slot(app: &TestApp, doctor: Uuid, start: DateTime<Utc>) -> Vec<Value> {
    let rows: Vec<OfferRow> = sqlx::query_as(
        "SELECT entry_id, status, created_at, closed_at FROM waitlist_offers
          WHERE doctor_id = $1 AND starts_at = $2 ORDER BY created_at",
    )
    .bind(doctor)
    .bind(start)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(entry, status, created, closed)| {
            json!({"entry": entry, "status": status, "created": created, "closed": closed})
        })
        .collect()
}

/// A booked Tuesday slot, two patients waiting for that Tuesday (`first` joined first), and the
/// booking cancelled.
struct Scene {
    clinic: Clinic,
    start: DateTime<Utc>,
    booking: String,
    first: Patient,
    second: Patient,
    first_entry: Value,
    second_entry: Value,
}

async fn two_waiting_then_a_cancel(app: &TestApp, hour: u32) -> Scene {
    let clinic = clinic(app).await;
    let tuesday = next_tuesday();
    let start = madrid(tuesday, hour);
    let holder = patient(app, "Carmen Ortiz").await;
    let first = patient(app, "Lucía Pérez").await;
    let second = patient(app, "Pablo Gil").await;
    let booking = booked(app, &clinic, &holder, start).await;
    let first_entry = join(app, &clinic, &first, tuesday).await;
    let second_entry = join(app, &clinic, &second, tuesday).await;
    cancel(app, &holder, &booking).await;
    Scene {
        clinic,
        start,
        booking,
        first,
        second,
        first_entry,
        second_entry,
    }
}

#[tokio::test]
async fn the_first_waiting_patient_is_offered_a_freed_slot_takes_it_and_the_second_is_not_offered_it()
 {
    let recorder = SmsRecorder::start().await;
    let app = TestApp::spawn_with(
        Services {
            sms: true,
            ..Services::default()
        },
        |s| {
            recorder.configure(s);
            short_hold(s);
        },
    )
    .await;
    let Scene {
        clinic,
        start,
        booking,
        first,
        second,
        first_entry,
        second_entry,
    } = two_waiting_then_a_cancel(&app, 10).await;
    let offer = offer_for(&app, &first, &first_entry, Duration::from_secs(20)).await;
    assert_eq!(offer["status"], "open");
    assert_eq!(offer["patient_id"], first.id.to_string());
    assert_eq!(
        DateTime::parse_from_rfc3339(offer["start"].as_str().unwrap()).unwrap(),
        start
    );
    let offer_id = offer["id"].as_str().unwrap().to_owned();
    // The second patient is not offered it, nor can they see or take the first one's offer.
    let second_now = entry_now(&app, &second, &second_entry).await;
    assert!(second_now["offer_id"].is_null(), "{second_now}");
    for path in [
        format!("/waitlist/offers/{offer_id}"),
        format!("/waitlist/{}", first_entry["id"].as_str().unwrap()),
    ] {
        let (status, _) = call(&app, &second.token, reqwest::Method::GET, &path, None).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = accept(&app, &second, &offer_id).await;
    assert_eq!(status, 404);

    // The offer reaches the first patient by email and SMS, with its link.
    let link = format!("https://citas.example.test/app/waitlist/offers/{offer_id}");
    let mails = mailpit::wait_for_messages(&first.email, 1, Duration::from_secs(20)).await;
    let offered: Vec<_> = mails
        .iter()
        .filter(|m| m.subject.starts_with("Se ha liberado una cita"))
        .collect();
    assert_eq!(
        offered.len(),
        1,
        "{:?}",
        mails.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    assert!(offered[0].text.contains(&link), "{}", offered[0].text);
    let sms = recorder
        .wait_for(&first.phone, 1, Duration::from_secs(20))
        .await;
    assert!(sms.iter().any(|m| m.body.contains(&link)), "{sms:?}");

    // Taken: a normal booking, confirmed.
    let taken = taken(&app, &first, &offer_id).await;
    assert_eq!(taken["status"], "confirmed");
    assert_eq!(taken["patient_id"], first.id.to_string());
    assert_eq!(taken["service_id"], clinic.service.to_string());
    // Taking it twice is refused.
    let (status, again) = accept(&app, &first, &offer_id).await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (409, Some("offer_closed"))
    );

    // The entry closes booked and the offer taken, once the stream has the confirmation.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let entry = entry_now(&app, &first, &first_entry).await;
        if entry["status"] == "booked" {
            assert_eq!(entry["booking_id"], taken["id"]);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{entry}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let offer = offer_now(&app, &first, &offer_id).await;
    assert_eq!(offer["status"], "taken", "{offer}");

    // Longer than a hold: the second patient is still waiting and was never offered it.
    tokio::time::sleep(Duration::from_secs(HOLD_SECS + 2)).await;
    let second_now = entry_now(&app, &second, &second_entry).await;
    assert_eq!(second_now["status"], "waiting");
    assert!(second_now["offer_id"].is_null(), "{second_now}");
    let events = waitlist_events(&app).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, BookingEventKind::WaitlistOffered);
    assert_eq!(events[0].patient_id, first.id.to_string());
    assert_eq!(
        events[0].waitlist_offer_id.as_deref(),
        Some(offer_id.as_str())
    );
    assert_eq!(events[0].booking_id, booking);
    assert!(
        mailpit::messages_to(&second.email)
            .await
            .iter()
            .all(|m| !m.subject.starts_with("Se ha liberado")),
        "the second patient got an offer"
    );
}

#[tokio::test]
async fn a_lapsed_hold_goes_to_the_next_patient_never_to_both_at_once() {
    let app = TestApp::spawn_with(Services::default(), short_hold).await;
    let Scene {
        clinic,
        start,
        booking,
        first,
        second,
        first_entry,
        second_entry,
    } = two_waiting_then_a_cancel(&app, 11).await;
    let first_offer = offer_for(&app, &first, &first_entry, Duration::from_secs(20)).await;
    let first_offer_id = first_offer["id"].as_str().unwrap().to_owned();
    // The first lets it lapse: the second is offered it.
    let second_offer = offer_for(
        &app,
        &second,
        &second_entry,
        Duration::from_secs(HOLD_SECS + 20),
    )
    .await;
    assert_eq!(second_offer["status"], "open");
    assert_ne!(second_offer["id"], first_offer["id"]);
    let lapsed = offer_now(&app, &first, &first_offer_id).await;
    assert_eq!(lapsed["status"], "expired", "{lapsed}");
    let (status, late) = accept(&app, &first, &first_offer_id).await;
    assert_eq!(
        (status, late["error"]["code"].as_str()),
        (409, Some("offer_closed"))
    );
    // The first keeps their place for the next freed slot.
    let first_now = entry_now(&app, &first, &first_entry).await;
    assert_eq!(first_now["status"], "waiting");

    // Never both at once: the second offer was made after the first one closed.
    let offers = offers_of_slot(&app, clinic.doctor, start).await;
    assert_eq!(offers.len(), 2, "{offers:?}");
    let closed: DateTime<Utc> = serde_json::from_value(offers[0]["closed"].clone()).unwrap();
    let made: DateTime<Utc> = serde_json::from_value(offers[1]["created"].clone()).unwrap();
    assert!(closed <= made, "{offers:?}");

    let taken = taken(&app, &second, second_offer["id"].as_str().unwrap()).await;
    assert_eq!(taken["patient_id"], second.id.to_string());

    // On the stream: offered to the first, expired, offered to the second, in that order.
    let events = waitlist_events(&app).await;
    let seen: Vec<(BookingEventKind, String)> = events
        .iter()
        .map(|e| (e.kind, e.patient_id.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            (BookingEventKind::WaitlistOffered, first.id.to_string()),
            (BookingEventKind::WaitlistExpired, first.id.to_string()),
            (BookingEventKind::WaitlistOffered, second.id.to_string()),
        ],
        "{events:?}"
    );
    // Each names the freed booking and holds the slot for a while.
    assert!(
        events
            .iter()
            .all(|e| e.booking_id == booking && e.hold_until.is_some()),
        "{events:?}"
    );
}

#[tokio::test]
async fn joining_follows_the_rules_and_only_the_patient_and_staff_see_an_entry() {
    let app = TestApp::spawn_with(Services::api_only(), |_| {}).await;
    let clinic = clinic(&app).await;
    let tuesday = next_tuesday();
    let ana = patient(&app, "Ana").await;
    let other = patient(&app, "Otro").await;
    let body = |patient: Option<Uuid>, from: NaiveDate, to: NaiveDate| {
        json!({"patient_id": patient, "service_id": clinic.service, "center_id": clinic.center,
               "from": from, "to": to})
    };
    let post = reqwest::Method::POST;

    // A patient joins for themselves only; staff name the patient.
    let (status, _) = call(
        &app,
        &ana.token,
        post.clone(),
        "/waitlist",
        Some(&body(Some(other.id), tuesday, tuesday)),
    )
    .await;
    assert_eq!(status, 403);
    let (status, missing) = call(
        &app,
        &app.admin_token,
        post.clone(),
        "/waitlist",
        Some(&body(None, tuesday, tuesday)),
    )
    .await;
    assert_eq!(status, 422, "{missing}");
    // Dates and directory checked, every field at fault named.
    let (status, bad) = call(
        &app,
        &ana.token,
        post.clone(),
        "/waitlist",
        Some(
            &json!({"service_id": Uuid::new_v4(), "center_id": clinic.center,
                     "doctor_id": Uuid::new_v4(), "from": tuesday,
                     "to": tuesday - chrono::Duration::days(1)}),
        ),
    )
    .await;
    assert_eq!(status, 422, "{bad}");
    let fields: Vec<&str> = bad["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    for field in ["to", "service_id", "doctor_id"] {
        assert!(fields.contains(&field), "{bad}");
    }
    let (status, _) = call(
        &app,
        &ana.token,
        post.clone(),
        "/waitlist",
        Some(
            &json!({"service_id": "not-a-uuid", "center_id": clinic.center,
                     "from": tuesday, "to": tuesday}),
        ),
    )
    .await;
    assert!(status == 400 || status == 422, "{status}");

    // Any doctor over a week; the same again overlaps: 409.
    let week_later = tuesday + chrono::Duration::days(7);
    let (status, entry) = call(
        &app,
        &ana.token,
        post.clone(),
        "/waitlist",
        Some(&body(None, tuesday, week_later)),
    )
    .await;
    assert_eq!(status, 201, "{entry}");
    assert!(entry["doctor_id"].is_null());
    let (status, twice) = call(
        &app,
        &app.admin_token,
        post.clone(),
        "/waitlist",
        Some(&body(Some(ana.id), week_later, week_later)),
    )
    .await;
    assert_eq!(
        (status, twice["error"]["code"].as_str()),
        (409, Some("already_waiting"))
    );

    // Seen by its patient and staff, listed for them; not by another patient.
    let path = format!("/waitlist/{}", entry["id"].as_str().unwrap());
    let get = reqwest::Method::GET;
    assert_eq!(
        call(&app, &ana.token, get.clone(), &path, None).await.0,
        200
    );
    assert_eq!(
        call(&app, &app.admin_token, get.clone(), &path, None)
            .await
            .0,
        200
    );
    assert_eq!(
        call(&app, &other.token, get.clone(), &path, None).await.0,
        404
    );
    let (_, mine) = call(&app, &ana.token, get.clone(), "/waitlist", None).await;
    assert_eq!(mine["total"], 1, "{mine}");
    let (_, theirs) = call(&app, &other.token, get.clone(), "/waitlist", None).await;
    assert_eq!(theirs["total"], 0, "{theirs}");
    let (_, by_staff) = call(
        &app,
        &app.admin_token,
        get.clone(),
        &format!("/waitlist?patient_id={}&status=waiting", ana.id),
        None,
    )
    .await;
    assert_eq!(by_staff["total"], 1, "{by_staff}");
    let (status, _) = call(&app, &app.admin_token, get, "/waitlist?status=nope", None).await;
    assert_eq!(status, 422);

    // Leaving closes it once; another patient cannot.
    let delete = reqwest::Method::DELETE;
    assert_eq!(
        call(&app, &other.token, delete.clone(), &path, None)
            .await
            .0,
        404
    );
    let (status, left) = call(&app, &ana.token, delete.clone(), &path, None).await;
    assert_eq!((status, left["status"].as_str()), (200, Some("left")));
    let (status, again) = call(&app, &ana.token, delete, &path, None).await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (409, Some("not_waiting"))
    );
}
