//! The wire contract evolves compatibly, on the real registry and Kafka: a command written by
//! a producer still on the previous schema (`schemas/avro/history/`) is decided by today's
//! processor, an analytics consumer still on the previous event schema decodes today's
//! events, and the registry refuses a change that would break the readers (our subjects are
//! held to BACKWARD compatibility).

use std::time::Duration;

use apache_avro::{
    Schema, reader::datum::GenericDatumReader, types::Value, writer::datum::GenericDatumWriter,
};
use citaflow_schemas::{
    BOOKING_COMMAND_AVSC, BOOKING_EVENT_AVSC, BookingCommandKind, BookingEventKind, RegistryClient,
    RegistryError, split_header, value_subject,
};
use citaflow_tests::{Services, Stack, TestApp, in_hours, read_all};
use rdkafka::{Message, producer::FutureRecord};
use serde::Serialize;
use uuid::Uuid;

const COMMAND_V1: &str = include_str!("../../schemas/avro/history/booking_command.v1.avsc");
const EVENT_V1: &str = include_str!("../../schemas/avro/history/booking_event.v1.avsc");
const COMMAND_V2: &str = include_str!("../../schemas/avro/history/booking_command.v2.avsc");
const EVENT_V2: &str = include_str!("../../schemas/avro/history/booking_event.v2.avsc");
const COMMAND_V3: &str = include_str!("../../schemas/avro/history/booking_command.v3.avsc");
const EVENT_V3: &str = include_str!("../../schemas/avro/history/booking_event.v3.avsc");
const EVENT_V4: &str = include_str!("../../schemas/avro/history/booking_event.v4.avsc");

/// A `BookingCommand` as a producer built against v1 writes it: no `service_id`.
#[derive(Serialize)]
struct CommandV1 {
    command_id: String,
    kind: BookingCommandKind,
    booking_id: String,
    doctor_id: String,
    patient_id: Option<String>,
    center_id: Option<String>,
    starts_at: Option<i64>,
    ends_at: Option<i64>,
    reason: Option<String>,
    previous_booking_id: Option<String>,
    requested_by: Option<String>,
    requested_at: i64,
}

fn registry() -> RegistryClient {
    // A client of its own, with an empty cache: schemas by id come from the registry.
    RegistryClient::new(&Stack::get().registry, Duration::from_secs(5)).unwrap()
}

fn field_names(schema: &Schema) -> Vec<String> {
    match schema {
        Schema::Record(record) => record.fields.iter().map(|f| f.name.clone()).collect(),
        other => panic!("expected a record schema, got {other:?}"),
    }
}

fn field<'a>(record: &'a [(String, Value)], name: &str) -> &'a Value {
    &record
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no field {name} in {record:?}"))
        .1
}

#[tokio::test]
async fn a_command_written_with_the_previous_schema_is_still_decided() {
    let app = TestApp::spawn_with(Services::no_email(), |_| {}).await;
    let dir = app.directory().await;
    let v1 = Schema::parse_str(COMMAND_V1).unwrap();
    assert!(
        !field_names(&v1).contains(&"service_id".to_owned()),
        "the fixture is the schema before service_id"
    );

    // The old producer registers its own schema under the topic's subject, as a stock
    // Confluent serializer does, and frames its datum with that id.
    let subject = value_subject(&app.settings.topics.requests);
    let id = registry()
        .register(&subject, COMMAND_V1, &v1)
        .await
        .expect("v1 registers under the requests subject");
    let stored = registry().schema_by_id(id).await.unwrap();
    assert_eq!(
        field_names(&stored),
        field_names(&v1),
        "schema {id} is the v1 command schema"
    );

    let booking_id = Uuid::new_v4();
    let starts_at = in_hours(40);
    let command = CommandV1 {
        command_id: Uuid::new_v4().to_string(),
        kind: BookingCommandKind::Create,
        booking_id: booking_id.to_string(),
        doctor_id: dir.doctor.to_string(),
        patient_id: Some(dir.patient.to_string()),
        center_id: Some(dir.center.to_string()),
        starts_at: Some(starts_at.timestamp_millis()),
        ends_at: Some((starts_at + chrono::Duration::minutes(30)).timestamp_millis()),
        reason: Some("Revisión".into()),
        previous_booking_id: None,
        requested_by: None,
        requested_at: chrono::Utc::now().timestamp_millis(),
    };
    let mut payload = vec![0];
    payload.extend_from_slice(&id.to_be_bytes());
    GenericDatumWriter::builder(&v1)
        .build()
        .unwrap()
        .write_ser(&mut payload, &command)
        .expect("the command fits v1");

    let producer = citaflow_platform::kafka::producer(&app.settings.kafka, "old-producer").unwrap();
    producer
        .send(
            FutureRecord::to(&app.settings.topics.requests)
                .key(&command.doctor_id)
                .payload(&payload),
            Duration::from_secs(5),
        )
        .await
        .expect("produce the v1 command");

    // No pending row: the processor's decision writes the booking (an upsert on its id).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM appointments WHERE id = $1")
                .bind(booking_id)
                .fetch_optional(&app.pool)
                .await
                .unwrap();
        if status.as_deref().is_some_and(|s| s != "pending") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the v1 command was not decided within 30 s (status {status:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let booking = app
        .wait_for_decision(&booking_id.to_string(), Duration::from_secs(5))
        .await;
    assert_eq!(booking["status"], "confirmed", "{booking}");
    assert_eq!(booking["doctor_id"], dir.doctor.to_string(), "{booking}");

    let topic = app.settings.topics.events.clone();
    let records = tokio::task::spawn_blocking(move || read_all(&topic, 1, Duration::from_secs(20)))
        .await
        .unwrap();
    let events = app.decode_events(&records).await;
    let confirmed: Vec<_> = events
        .iter()
        .filter(|e| e.booking_id == booking_id.to_string())
        .collect();
    assert_eq!(confirmed.len(), 1, "{events:?}");
    assert_eq!(confirmed[0].kind, BookingEventKind::Confirmed);
    assert_eq!(confirmed[0].service_id, None);
}

#[tokio::test]
async fn an_analytics_consumer_on_the_previous_schema_still_decodes_new_events() {
    let app = TestApp::spawn_with(Services::no_email(), |_| {}).await;
    let dir = app.directory().await;
    let response = app.book(&dir, in_hours(50), 30).await;
    assert_eq!(response.status(), 202);
    let body: serde_json::Value = response.json().await.unwrap();
    let booking_id = body["booking_id"].as_str().unwrap().to_owned();
    let decided = app
        .wait_for_decision(&booking_id, Duration::from_secs(30))
        .await;
    assert_eq!(decided["status"], "confirmed", "{decided}");

    let topic = app.settings.topics.events.clone();
    let records = tokio::task::spawn_blocking(move || read_all(&topic, 1, Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "one event for one booking");
    let (id, mut datum) = split_header(records[0].payload().unwrap()).unwrap();

    // The consumer knows only v1; the writer's schema comes from the registry by id.
    let writer = registry().schema_by_id(id).await.unwrap();
    assert_eq!(
        field_names(&writer),
        field_names(&Schema::parse_str(BOOKING_EVENT_AVSC).unwrap()),
        "the event was written with the current schema"
    );
    let v1 = Schema::parse_str(EVENT_V1).unwrap();
    let value = GenericDatumReader::builder(&writer)
        .reader_schema(&v1)
        .build()
        .unwrap()
        .read_value(&mut datum)
        .expect("a v1 reader resolves the current writer's event");
    let Value::Record(fields) = value else {
        panic!("an event is a record, got {value:?}")
    };
    assert_eq!(
        fields.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        field_names(&v1),
        "read as v1, without the fields v1 does not know"
    );
    assert_eq!(
        field(&fields, "booking_id"),
        &Value::String(booking_id.clone())
    );
    assert_eq!(
        field(&fields, "doctor_id"),
        &Value::String(dir.doctor.to_string())
    );
    assert!(
        matches!(field(&fields, "status"), Value::Enum(_, s) if s == "CONFIRMED"),
        "{fields:?}"
    );
    assert!(
        matches!(field(&fields, "kind"), Value::Enum(_, s) if s == "CONFIRMED"),
        "{fields:?}"
    );
}

#[tokio::test]
async fn the_registry_refuses_an_incompatible_change() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let stack = Stack::get();
    let client = registry();
    let subject = format!("t{}.schema-evolution-value", Uuid::new_v4().simple());
    let v1 = Schema::parse_str(EVENT_V1).unwrap();
    let v1_id = client
        .register(&subject, EVENT_V1, &v1)
        .await
        .expect("the first version registers");

    // `register` had the registry hold the subject to BACKWARD before registering.
    let config: serde_json::Value = reqwest::get(format!("{}/config/{subject}", stack.registry))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["compatibilityLevel"], "BACKWARD", "{config}");

    let mut with_required_field: serde_json::Value = serde_json::from_str(EVENT_V1).unwrap();
    with_required_field["fields"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "service_id", "type": "string"}));
    let mut with_changed_type: serde_json::Value = serde_json::from_str(EVENT_V1).unwrap();
    with_changed_type["fields"][2]["type"] = "long".into();
    assert_eq!(with_changed_type["fields"][2]["name"], "booking_id");
    for (what, text) in [
        ("a required field without default", with_required_field),
        ("booking_id changed to long", with_changed_type),
    ] {
        let text = text.to_string();
        let schema = Schema::parse_str(&text).unwrap();
        match client.register(&subject, &text, &schema).await {
            Err(RegistryError::Refused(message)) => {
                assert!(message.contains("409"), "{what}: {message}")
            }
            other => panic!("{what}: the registry should refuse it, answered {other:?}"),
        }
    }

    let current = Schema::parse_str(BOOKING_EVENT_AVSC).unwrap();
    let current_id = client
        .register(&subject, BOOKING_EVENT_AVSC, &current)
        .await
        .expect("the current schema (service_id optional, default null) is accepted");
    assert_ne!(current_id, v1_id);
    let versions: Vec<u32> =
        reqwest::get(format!("{}/subjects/{subject}/versions", stack.registry))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(versions.len(), 2, "v1 and the current one: {versions:?}");
}

/// Each schema's versions, registered in order on a subject held to BACKWARD, as a registry
/// that has seen every release: each is accepted (command v3 and event v3 append the
/// attendance symbols, event v4 REMINDER_DUE, the current event the waitlist's kinds and
/// fields; the current command is v3). A service rolled back to v2 still starts: registering
/// v2 again answers its id.
#[tokio::test]
async fn every_version_registers_after_the_previous_one() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = registry();
    for (name, versions) in [
        (
            "command",
            vec![COMMAND_V1, COMMAND_V2, COMMAND_V3, BOOKING_COMMAND_AVSC],
        ),
        (
            "event",
            vec![EVENT_V1, EVENT_V2, EVENT_V3, EVENT_V4, BOOKING_EVENT_AVSC],
        ),
    ] {
        let subject = format!("t{}.{name}-versions-value", Uuid::new_v4().simple());
        let mut ids = Vec::new();
        for (i, text) in versions.iter().enumerate() {
            let schema = Schema::parse_str(text).unwrap();
            let id = client
                .register(&subject, text, &schema)
                .await
                .unwrap_or_else(|e| panic!("{name} v{} is refused after v{i}: {e}", i + 1));
            ids.push(id);
        }
        assert_eq!(ids.len(), versions.len());
        // Every event version is new; the command schema did not change after v3, so the
        // registry answers v3's id again for the current one.
        let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
        let expected = if name == "event" { ids.len() } else { 3 };
        assert_eq!(distinct.len(), expected, "{name}: {ids:?}");
        // A fresh client (empty cache), so the registry itself answers.
        let v2 = Schema::parse_str(versions[1]).unwrap();
        match registry().register(&subject, versions[1], &v2).await {
            // The registry knows this exact schema already: it answers its id.
            Ok(id) => assert_eq!(id, ids[1], "{name}"),
            Err(e) => panic!("{name} v2 again: {e}"),
        }
    }
}

/// The analytics consumer of the README (a stock Confluent deserializer: the writer's schema
/// by id from the registry, no reader schema of its own) decodes the attendance events, and
/// one still reading into v2 reads the other kinds as before. The same for the reminders and the waitlist's kinds.
#[tokio::test]
async fn an_analytics_consumer_decodes_the_attendance_kinds() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let registry_client = registry();
    let subject = format!("t{}.attendance-value", Uuid::new_v4().simple());
    let current = Schema::parse_str(BOOKING_EVENT_AVSC).unwrap();
    let id = registry_client
        .register(&subject, BOOKING_EVENT_AVSC, &current)
        .await
        .unwrap();
    let writer = registry().schema_by_id(id).await.unwrap();
    let v2 = Schema::parse_str(EVENT_V2).unwrap();
    for (kind, symbol) in [
        (BookingEventKind::Attended, "ATTENDED"),
        (BookingEventKind::NoShow, "NO_SHOW"),
        (BookingEventKind::ReminderDue, "REMINDER_DUE"),
        (BookingEventKind::WaitlistOffered, "WAITLIST_OFFERED"),
        (BookingEventKind::WaitlistExpired, "WAITLIST_EXPIRED"),
        (BookingEventKind::Confirmed, "CONFIRMED"),
    ] {
        let event = citaflow_schemas::BookingEvent {
            event_id: Uuid::new_v4().to_string(),
            kind,
            booking_id: Uuid::new_v4().to_string(),
            command_id: Uuid::new_v4().to_string(),
            doctor_id: Uuid::new_v4().to_string(),
            patient_id: Uuid::new_v4().to_string(),
            center_id: Uuid::new_v4().to_string(),
            starts_at: 1_900_000_000_000,
            ends_at: 1_900_001_800_000,
            status: citaflow_schemas::BookingStatus::Confirmed,
            reason_code: None,
            reason_message: None,
            previous_booking_id: None,
            occurred_at: 1_900_000_100_000,
            service_id: None,
            waitlist_offer_id: Some(Uuid::new_v4().to_string()),
            waitlist_entry_id: Some(Uuid::new_v4().to_string()),
            hold_until: Some(1_900_000_900_000),
        };
        let datum = GenericDatumWriter::builder(&current)
            .build()
            .unwrap()
            .write_ser_to_vec(&event)
            .unwrap();
        let value = GenericDatumReader::builder(&writer)
            .build()
            .unwrap()
            .read_value(&mut datum.as_slice())
            .expect("the writer's schema decodes every kind");
        let Value::Record(fields) = value else {
            panic!("an event is a record")
        };
        assert!(
            matches!(field(&fields, "kind"), Value::Enum(_, s) if s == symbol),
            "{fields:?}"
        );
        let as_v2 = GenericDatumReader::builder(&writer)
            .reader_schema(&v2)
            .build()
            .unwrap()
            .read_value(&mut datum.as_slice());
        match kind {
            BookingEventKind::Confirmed => {
                as_v2.expect("a v2 reader reads the kinds it knows");
            }
            _ => assert!(
                as_v2.is_err(),
                "a v2 reader cannot know {symbol}: it must fail, not misread"
            ),
        }
    }
}
