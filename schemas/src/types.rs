//! Rust mirrors of the `.avsc` records. Field names and order follow the schema files; the
//! tests at the bottom fail when the two drift apart.

use serde::{Deserialize, Serialize};

/// What a [`BookingCommand`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BookingCommandKind {
    Create,
    Cancel,
    Reschedule,
    /// Close the booking if it is still pending (its request never reached the processor).
    Expire,
    /// Record that the patient came to a confirmed appointment that has started.
    MarkAttended,
    /// Record that the patient did not come to a confirmed appointment that has started.
    MarkNoShow,
}

/// A command on `booking.requests` (schema `com.citaflow.booking.v1.BookingCommand`).
/// Ids are UUID strings and times are Unix epoch milliseconds, as on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingCommand {
    pub command_id: String,
    pub kind: BookingCommandKind,
    pub booking_id: String,
    pub doctor_id: String,
    pub patient_id: Option<String>,
    pub center_id: Option<String>,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub reason: Option<String>,
    pub previous_booking_id: Option<String>,
    pub requested_by: Option<String>,
    pub requested_at: i64,
    /// UUID of the service (kind of visit) booked; `None` for bookings made without one.
    pub service_id: Option<String>,
}

/// What a [`BookingEvent`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BookingEventKind {
    Confirmed,
    Rejected,
    Cancelled,
    Rescheduled,
    /// The patient came (recorded by staff once the visit started; the status stays
    /// `CONFIRMED`). A later `NoShow` for the same booking corrects it, and the other way round.
    Attended,
    /// The patient did not come (recorded by staff once the visit started).
    NoShow,
    /// A confirmed visit is one of its reminder offsets away: the notifiers remind the
    /// patient. `reason_code` names the offset (`reminder_1440m`); the status stays
    /// `CONFIRMED`. One per booking and offset, its event id derived from both.
    ReminderDue,
    /// A freed slot is held for a waiting patient until `hold_until`: the notifiers send the
    /// offer. `booking_id` is the cancelled booking that freed it, `patient_id` the waiting
    /// patient, `starts_at`/`ends_at` the visit offered; the offer's and entry's ids are set.
    WaitlistOffered,
    /// The hold of an offer lapsed untaken (same fields): the slot goes to the next patient.
    WaitlistExpired,
}

/// Status of a booking after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BookingStatus {
    Pending,
    Confirmed,
    Rejected,
    Cancelled,
}

/// An event on `booking.events` (schema `com.citaflow.booking.v1.BookingEvent`). It carries no
/// personal data: consumers resolve contact details from the directory when they need them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingEvent {
    pub event_id: String,
    pub kind: BookingEventKind,
    pub booking_id: String,
    pub command_id: String,
    pub doctor_id: String,
    pub patient_id: String,
    pub center_id: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub status: BookingStatus,
    pub reason_code: Option<String>,
    pub reason_message: Option<String>,
    pub previous_booking_id: Option<String>,
    pub occurred_at: i64,
    /// UUID of the service (kind of visit) booked; `None` for bookings made without one.
    pub service_id: Option<String>,
    /// `WaitlistOffered`, `WaitlistExpired`: the offer (also the offered event's id).
    pub waitlist_offer_id: Option<String>,
    /// `WaitlistOffered`, `WaitlistExpired`: the waitlist entry offered the slot.
    pub waitlist_entry_id: Option<String>,
    /// `WaitlistOffered`, `WaitlistExpired`: until when the slot is held (epoch milliseconds).
    pub hold_until: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AvroRecord;
    use apache_avro::{Schema, types::Value};

    fn command() -> BookingCommand {
        BookingCommand {
            command_id: "0c5e7f7e-8f1d-4c55-9d7c-2d0c7a0f3b11".into(),
            kind: BookingCommandKind::Reschedule,
            booking_id: "4b1d2c9e-5f8a-4e6b-9c1d-7a2b3c4d5e6f".into(),
            doctor_id: "a3c1e2f4-0000-4000-8000-000000000001".into(),
            patient_id: Some("a3c1e2f4-0000-4000-8000-000000000002".into()),
            center_id: Some("a3c1e2f4-0000-4000-8000-000000000003".into()),
            starts_at: Some(1_900_000_000_000),
            ends_at: Some(1_900_001_800_000),
            reason: Some("revisión".into()),
            previous_booking_id: Some("a3c1e2f4-0000-4000-8000-000000000004".into()),
            requested_by: None,
            requested_at: 1_899_000_000_000,
            service_id: Some("a3c1e2f4-0000-4000-8000-000000000005".into()),
        }
    }

    fn event() -> BookingEvent {
        BookingEvent {
            event_id: "e0000000-0000-4000-8000-000000000001".into(),
            kind: BookingEventKind::Rejected,
            booking_id: "4b1d2c9e-5f8a-4e6b-9c1d-7a2b3c4d5e6f".into(),
            command_id: "0c5e7f7e-8f1d-4c55-9d7c-2d0c7a0f3b11".into(),
            doctor_id: "a3c1e2f4-0000-4000-8000-000000000001".into(),
            patient_id: "a3c1e2f4-0000-4000-8000-000000000002".into(),
            center_id: "a3c1e2f4-0000-4000-8000-000000000003".into(),
            starts_at: 1_900_000_000_000,
            ends_at: 1_900_001_800_000,
            status: BookingStatus::Rejected,
            reason_code: Some("slot_taken".into()),
            reason_message: Some("The doctor already has an appointment then.".into()),
            previous_booking_id: None,
            occurred_at: 1_899_000_000_500,
            service_id: Some("a3c1e2f4-0000-4000-8000-000000000005".into()),
            waitlist_offer_id: Some("a3c1e2f4-0000-4000-8000-000000000006".into()),
            waitlist_entry_id: Some("a3c1e2f4-0000-4000-8000-000000000007".into()),
            hold_until: Some(1_899_000_900_000),
        }
    }

    /// Field names of the record in the `.avsc`, in order.
    fn schema_fields(avsc: &str) -> Vec<String> {
        match Schema::parse_str(avsc).expect("the .avsc parses") {
            Schema::Record(record) => record.fields.iter().map(|f| f.name.clone()).collect(),
            other => panic!("expected a record schema, got {other:?}"),
        }
    }

    /// Field names the Rust type produces, in order.
    fn rust_fields<T: serde::Serialize>(value: &T) -> Vec<String> {
        match apache_avro::to_value(value).expect("serializes") {
            Value::Record(fields) => fields.into_iter().map(|(name, _)| name).collect(),
            other => panic!("expected a record, got {other:?}"),
        }
    }

    fn round_trip<T: AvroRecord + PartialEq + std::fmt::Debug>(value: &T) {
        let schema = Schema::parse_str(T::AVSC).unwrap();
        let bytes = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
            .build()
            .unwrap()
            .write_ser_to_vec(value)
            .expect("the Rust value is valid for the .avsc");
        let decoded = apache_avro::reader::datum::GenericDatumReader::builder(&schema)
            .build()
            .unwrap()
            .read_value(&mut bytes.as_slice())
            .unwrap();
        let back: T = apache_avro::from_value(&decoded).unwrap();
        assert_eq!(&back, value);
    }

    #[test]
    fn command_type_matches_its_avsc() {
        assert_eq!(
            rust_fields(&command()),
            schema_fields(crate::BOOKING_COMMAND_AVSC)
        );
        round_trip(&command());
    }

    #[test]
    fn event_type_matches_its_avsc() {
        assert_eq!(
            rust_fields(&event()),
            schema_fields(crate::BOOKING_EVENT_AVSC)
        );
        round_trip(&event());
    }

    #[test]
    fn optional_fields_round_trip_as_null() {
        let mut c = command();
        c.kind = BookingCommandKind::Cancel;
        c.patient_id = None;
        c.center_id = None;
        c.starts_at = None;
        c.ends_at = None;
        c.reason = None;
        c.previous_booking_id = None;
        c.service_id = None;
        round_trip(&c);
        let mut e = event();
        e.service_id = None;
        e.waitlist_offer_id = None;
        e.waitlist_entry_id = None;
        e.hold_until = None;
        round_trip(&e);
    }

    #[test]
    fn enum_symbols_match_the_rust_variants() {
        for kind in [
            BookingEventKind::Confirmed,
            BookingEventKind::Rejected,
            BookingEventKind::Cancelled,
            BookingEventKind::Rescheduled,
            BookingEventKind::Attended,
            BookingEventKind::NoShow,
            BookingEventKind::ReminderDue,
            BookingEventKind::WaitlistOffered,
            BookingEventKind::WaitlistExpired,
        ] {
            let mut e = event();
            e.kind = kind;
            round_trip(&e);
        }
        for status in [
            BookingStatus::Pending,
            BookingStatus::Confirmed,
            BookingStatus::Rejected,
            BookingStatus::Cancelled,
        ] {
            let mut e = event();
            e.status = status;
            round_trip(&e);
        }
        for kind in [
            BookingCommandKind::Create,
            BookingCommandKind::Cancel,
            BookingCommandKind::Reschedule,
            BookingCommandKind::Expire,
            BookingCommandKind::MarkAttended,
            BookingCommandKind::MarkNoShow,
        ] {
            let mut c = command();
            c.kind = kind;
            round_trip(&c);
        }
    }

    /// Every earlier version of each schema, oldest first: (name, text, the current schema).
    const HISTORY: [(&str, &str, &str); 7] = [
        (
            "booking_command.v1",
            include_str!("../avro/history/booking_command.v1.avsc"),
            crate::BOOKING_COMMAND_AVSC,
        ),
        (
            "booking_event.v1",
            include_str!("../avro/history/booking_event.v1.avsc"),
            crate::BOOKING_EVENT_AVSC,
        ),
        (
            "booking_command.v2",
            include_str!("../avro/history/booking_command.v2.avsc"),
            crate::BOOKING_COMMAND_AVSC,
        ),
        (
            "booking_event.v2",
            include_str!("../avro/history/booking_event.v2.avsc"),
            crate::BOOKING_EVENT_AVSC,
        ),
        (
            "booking_command.v3",
            include_str!("../avro/history/booking_command.v3.avsc"),
            crate::BOOKING_COMMAND_AVSC,
        ),
        (
            "booking_event.v3",
            include_str!("../avro/history/booking_event.v3.avsc"),
            crate::BOOKING_EVENT_AVSC,
        ),
        (
            "booking_event.v4",
            include_str!("../avro/history/booking_event.v4.avsc"),
            crate::BOOKING_EVENT_AVSC,
        ),
    ];

    /// Symbols the current enums gained after `version` (v3 added the attendance kinds, v4 the
    /// reminders, the current one the waitlist's). A reader
    /// still on an earlier version cannot read a record that uses one (Avro resolves an
    /// unknown symbol only to a reader's enum default, and those enums have none): it reads
    /// every other record, and a consumer that reads with the writer's schema from the
    /// registry (a stock Confluent deserializer) reads them all.
    fn symbols_added_after(version: &str) -> &'static [&'static str] {
        match version {
            "v1" | "v2" => &[
                "MARK_ATTENDED",
                "MARK_NO_SHOW",
                "ATTENDED",
                "NO_SHOW",
                "REMINDER_DUE",
                "WAITLIST_OFFERED",
                "WAITLIST_EXPIRED",
            ],
            "v3" => &["REMINDER_DUE", "WAITLIST_OFFERED", "WAITLIST_EXPIRED"],
            "v4" => &["WAITLIST_OFFERED", "WAITLIST_EXPIRED"],
            _ => &[],
        }
    }

    /// The registry enforces BACKWARD (the current schema reads what every previous one
    /// wrote); consumers still on a previous version must also read what we write now, except
    /// the records that use an enum symbol added since (see [`symbols_added_after`] and the
    /// next test). Checked here first, so a change that breaks either fails before it reaches
    /// a registry.
    #[test]
    fn the_current_schemas_and_their_previous_versions_read_each_other() {
        use apache_avro::schema_compatibility::SchemaCompatibility;
        for (name, previous, current) in HISTORY {
            let previous = Schema::parse_str(previous).expect("the history .avsc parses");
            let current = Schema::parse_str(current).unwrap();
            if let Err(e) = SchemaCompatibility::can_read(&previous, &current) {
                panic!("the current schema cannot read {name} records: {e}");
            }
            // apache-avro's schema check accepts an enum that gained symbols either way; what
            // an older reader makes of the new symbols is held by the next test.
            if let Err(e) = SchemaCompatibility::can_read(&current, &previous) {
                panic!("a {name} reader cannot read current records: {e}");
            }
        }
    }

    /// Writes `value` with the current schema and reads it with `reader` (an older version).
    fn read_with<T: AvroRecord>(value: &T, reader: &Schema) -> Result<Value, apache_avro::Error> {
        let writer = Schema::parse_str(T::AVSC).unwrap();
        let bytes = apache_avro::writer::datum::GenericDatumWriter::builder(&writer)
            .build()
            .unwrap()
            .write_ser_to_vec(value)
            .unwrap();
        apache_avro::reader::datum::GenericDatumReader::builder(&writer)
            .reader_schema(reader)
            .build()
            .unwrap()
            .read_value(&mut bytes.as_slice())
    }

    /// A reader still on v1 or v2 reads every current record whose kind it knows, and fails
    /// loudly (never misreads) on the kinds added since.
    #[test]
    fn readers_on_earlier_versions_read_the_kinds_they_know() {
        let kind_of = |v: &Value| match v {
            Value::Record(fields) => match &fields.iter().find(|(n, _)| n == "kind").unwrap().1 {
                Value::Enum(_, symbol) => symbol.clone(),
                other => panic!("kind is an enum, got {other:?}"),
            },
            other => panic!("a record, got {other:?}"),
        };
        for (name, text, _) in HISTORY {
            let reader = Schema::parse_str(text).unwrap();
            let added = symbols_added_after(name.rsplit('.').next().unwrap());
            if name.starts_with("booking_event") {
                for kind in [
                    BookingEventKind::Confirmed,
                    BookingEventKind::Rejected,
                    BookingEventKind::Cancelled,
                    BookingEventKind::Rescheduled,
                    BookingEventKind::Attended,
                    BookingEventKind::NoShow,
                    BookingEventKind::ReminderDue,
                    BookingEventKind::WaitlistOffered,
                    BookingEventKind::WaitlistExpired,
                ] {
                    let e = BookingEvent { kind, ..event() };
                    let Value::String(symbol) = apache_avro::to_value(kind).unwrap() else {
                        panic!("an enum serializes as its symbol")
                    };
                    match read_with(&e, &reader) {
                        Ok(v) => assert_eq!(kind_of(&v), symbol, "{name}"),
                        Err(_) => assert!(added.contains(&symbol.as_str()), "{name}: {symbol}"),
                    }
                    if added.contains(&symbol.as_str()) {
                        assert!(read_with(&e, &reader).is_err(), "{name} reads {symbol}?");
                    }
                }
            } else {
                for kind in [
                    BookingCommandKind::Create,
                    BookingCommandKind::Cancel,
                    BookingCommandKind::Reschedule,
                    BookingCommandKind::Expire,
                    BookingCommandKind::MarkAttended,
                    BookingCommandKind::MarkNoShow,
                ] {
                    let c = BookingCommand { kind, ..command() };
                    let Value::String(symbol) = apache_avro::to_value(kind).unwrap() else {
                        panic!("an enum serializes as its symbol")
                    };
                    match read_with(&c, &reader) {
                        Ok(v) => assert_eq!(kind_of(&v), symbol, "{name}"),
                        Err(_) => assert!(added.contains(&symbol.as_str()), "{name}: {symbol}"),
                    }
                    if added.contains(&symbol.as_str()) {
                        assert!(read_with(&c, &reader).is_err(), "{name} reads {symbol}?");
                    }
                }
            }
        }
    }

    /// A command written by a producer still on v1 (no `service_id`) reads as the current
    /// type, `service_id` taking its default.
    #[test]
    fn a_v1_command_reads_as_the_current_type() {
        let v1 = Schema::parse_str(HISTORY[0].1).unwrap();
        let current = Schema::parse_str(crate::BOOKING_COMMAND_AVSC).unwrap();
        let Value::Record(mut fields) = apache_avro::to_value(command()).unwrap() else {
            panic!("a command is a record")
        };
        fields.retain(|(name, _)| name != "service_id");
        let v1_value = Value::Record(fields)
            .resolve(&v1)
            .expect("a v1 record without service_id");
        let bytes = apache_avro::writer::datum::GenericDatumWriter::builder(&v1)
            .build()
            .unwrap()
            .write_value_to_vec(v1_value)
            .unwrap();
        let decoded = apache_avro::reader::datum::GenericDatumReader::builder(&v1)
            .reader_schema(&current)
            .build()
            .unwrap()
            .read_value(&mut bytes.as_slice())
            .unwrap();
        let back: BookingCommand = apache_avro::from_value(&decoded).unwrap();
        assert_eq!(
            back,
            BookingCommand {
                service_id: None,
                ..command()
            }
        );
    }

    #[test]
    fn events_have_no_field_for_personal_data() {
        for field in schema_fields(crate::BOOKING_EVENT_AVSC) {
            for banned in ["name", "email", "phone", "reason"] {
                assert!(
                    !(field.contains(banned)
                        && field != "reason_code"
                        && field != "reason_message"),
                    "booking.events must not carry `{field}`"
                );
            }
        }
    }
}
