//! The whole path through every real part: REST → Avro on Kafka → decision in PostgreSQL →
//! event on Kafka → email in Mailpit.

use std::time::Duration;

use apache_avro::Schema;
use citaflow_schemas::{BOOKING_COMMAND_AVSC, BOOKING_EVENT_AVSC, split_header};
use citaflow_tests::{TestApp, in_hours, mailpit, read_all};
use rdkafka::Message;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_is_confirmed_and_the_patient_gets_an_email() {
    let app = TestApp::spawn().await;
    let directory = app.directory().await;

    let response = app.book(&directory, in_hours(48), 30).await;
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let accepted: Value = response.json().await.unwrap();
    assert_eq!(accepted["status"], "pending");
    let booking_id = accepted["booking_id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/bookings/{booking_id}"));

    // Right after the 202 the booking is there, whatever its state.
    let immediately = app.get(&location).await;
    assert_eq!(immediately.status(), 200);

    let booking = app
        .wait_for_decision(&booking_id, Duration::from_secs(5))
        .await;
    assert_eq!(booking["status"], "confirmed", "{booking}");
    assert_eq!(booking["doctor_id"], directory.doctor.to_string());

    let mails = mailpit::wait_for_messages(&directory.email, 1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1, "exactly one email");
    let mail = &mails[0];
    assert!(
        mail.subject.starts_with("Cita confirmada"),
        "subject: {}",
        mail.subject
    );
    assert!(mail.text.contains("Calle Mayor 1, Madrid"));
    assert!(!mail.html.is_empty());
    let ics = mail
        .attachments
        .iter()
        .find(|a| {
            a["ContentType"]
                .as_str()
                .unwrap_or_default()
                .starts_with("text/calendar")
        })
        .expect("an .ics attachment");
    let ics = mailpit::part(&mail.id, ics["PartID"].as_str().unwrap()).await;
    assert!(ics.contains("BEGIN:VEVENT"));
    assert!(ics.contains(&format!("UID:{booking_id}@citaflow")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_on_the_wire_are_confluent_avro_with_a_registered_schema() {
    let app = TestApp::spawn().await;
    let directory = app.directory().await;
    let response = app.book(&directory, in_hours(30), 20).await;
    assert_eq!(response.status(), 202);
    let booking: Value = response.json().await.unwrap();
    let booking_id = booking["booking_id"].as_str().unwrap().to_string();
    app.wait_for_decision(&booking_id, Duration::from_secs(5))
        .await;

    let topic = app.settings.topics.requests.clone();
    let records = tokio::task::spawn_blocking(move || read_all(&topic, 1, Duration::from_secs(15)))
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(
        record.key(),
        Some(directory.doctor.to_string().as_bytes()),
        "keyed by doctor"
    );
    let payload = record.payload().unwrap();
    assert_eq!(payload[0], 0, "magic byte");
    let (schema_id, _) = split_header(payload).unwrap();

    // The registry resolves the id to exactly our .avsc.
    let registry = &citaflow_tests::Stack::get().registry;
    let body: Value = reqwest::get(format!("{registry}/schemas/ids/{schema_id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = body["schema"].as_str().unwrap();
    assert!(
        text.contains("timestamp-millis"),
        "logical types survive registration: {text}"
    );
    let registered = Schema::parse_str(text).unwrap();
    assert_eq!(registered, Schema::parse_str(BOOKING_COMMAND_AVSC).unwrap());

    // Under the topic name strategy.
    let subjects: Vec<String> = reqwest::get(format!("{registry}/subjects"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(subjects.contains(&format!("{}-value", app.settings.topics.requests)));

    // And the outcome event is Avro with the event schema.
    let events_topic = app.settings.topics.events.clone();
    let events =
        tokio::task::spawn_blocking(move || read_all(&events_topic, 1, Duration::from_secs(15)))
            .await
            .unwrap();
    assert_eq!(events.len(), 1);
    let (event_schema_id, _) = split_header(events[0].payload().unwrap()).unwrap();
    let body: Value = reqwest::get(format!("{registry}/schemas/ids/{event_schema_id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let registered = Schema::parse_str(body["schema"].as_str().unwrap()).unwrap();
    assert_eq!(registered, Schema::parse_str(BOOKING_EVENT_AVSC).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlapping_request_is_rejected_with_slot_taken() {
    let app = TestApp::spawn().await;
    let directory = app.directory().await;
    let start = in_hours(72);
    let first: Value = app.book(&directory, start, 30).await.json().await.unwrap();
    let first = app
        .wait_for_decision(
            first["booking_id"].as_str().unwrap(),
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(first["status"], "confirmed");

    let overlapping = start + chrono::Duration::minutes(15);
    let second: Value = app
        .book(&directory, overlapping, 30)
        .await
        .json()
        .await
        .unwrap();
    let second = app
        .wait_for_decision(
            second["booking_id"].as_str().unwrap(),
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(second["status"], "rejected");
    assert_eq!(second["reason_code"], "slot_taken");

    // Back to back is fine: slots are half-open.
    let adjacent: Value = app
        .book(&directory, start + chrono::Duration::minutes(30), 30)
        .await
        .json()
        .await
        .unwrap();
    let adjacent = app
        .wait_for_decision(
            adjacent["booking_id"].as_str().unwrap(),
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(adjacent["status"], "confirmed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_report_ready_and_expose_metrics() {
    let app = TestApp::spawn().await;
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["postgres"], "up");
    assert_eq!(body["checks"]["kafka"], "up");
    assert_eq!(app.get("/health/live").await.status(), 200);

    let port = app.processor_port.unwrap();
    let processor_ready = reqwest::get(format!("http://127.0.0.1:{port}/health/ready"))
        .await
        .unwrap();
    assert_eq!(processor_ready.status(), 200);

    // The API's metrics are on its ops listener, not on the public port.
    let metrics = reqwest::get(format!("{}/metrics", app.api_ops_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("citaflow_http_requests_total"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors_never_500() {
    let app = TestApp::spawn().await;

    let malformed = app
        .http
        .post(app.url("/bookings"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["error"]["code"], "malformed_json");

    let no_content_type = app
        .http
        .post(app.url("/bookings"))
        .bearer_auth(&app.admin_token)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(no_content_type.status(), 415);
    let body: Value = no_content_type.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_media_type");

    let unknown_field = app
        .post(
            "/doctors",
            &serde_json::json!({"name": "A", "specialty": "B", "salary": 1}),
        )
        .await;
    assert_eq!(unknown_field.status(), 400);

    let past = app
        .post(
            "/bookings",
            &serde_json::json!({
                "patient_id": uuid::Uuid::new_v4(), "doctor_id": uuid::Uuid::new_v4(),
                "center_id": uuid::Uuid::new_v4(), "start": "2001-01-01T10:00:00Z",
                "duration_minutes": 30
            }),
        )
        .await;
    assert_eq!(past.status(), 422);
    let body: Value = past.json().await.unwrap();
    assert_eq!(body["error"]["details"][0]["field"], "start");

    let bad_id = app.get("/bookings/not-a-uuid").await;
    assert_eq!(bad_id.status(), 400);
    let missing = app
        .get(&format!("/bookings/{}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    let unknown_route = app.get("/nope").await;
    assert_eq!(unknown_route.status(), 404);
    assert!(unknown_route.json::<Value>().await.unwrap()["error"]["message"].is_string());

    let wrong_method = app
        .http
        .delete(app.url("/bookings"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(
        wrong_method.json::<Value>().await.unwrap()["error"]["code"],
        "method_not_allowed"
    );

    let huge = "x".repeat(3 * 1024 * 1024);
    let too_big = app
        .http
        .post(app.url("/doctors"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/json")
        .body(format!("{{\"name\":\"{huge}\",\"specialty\":\"x\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);
    assert_eq!(
        too_big.json::<Value>().await.unwrap()["error"]["code"],
        "payload_too_large"
    );
}
