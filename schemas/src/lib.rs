//! The wire contract of Citaflow.
//!
//! The `.avsc` files in `schemas/avro/` are the single source of truth; this crate embeds them,
//! mirrors them as Rust types ([`BookingCommand`], [`BookingEvent`]) and encodes/decodes them in
//! the Confluent wire format (magic byte `0`, 4-byte big-endian schema id, Avro binary datum)
//! against a Confluent-compatible schema registry.
//!
//! Subject strategy: *topic name* (`<topic>-value`). Each topic carries exactly one record type,
//! so any Kafka client with a stock Confluent deserializer can read it.

mod codec;
mod registry;
mod types;

pub use codec::{AvroCodec, DecodeError, EncodeError, split_header};
pub use registry::{COMPATIBILITY, RegistryClient, RegistryError};
pub use types::{
    BookingCommand, BookingCommandKind, BookingEvent, BookingEventKind, BookingStatus,
};

/// Schema of the commands on `booking.requests`.
pub const BOOKING_COMMAND_AVSC: &str = include_str!("../avro/booking_command.avsc");
/// Schema of the events on `booking.events`.
pub const BOOKING_EVENT_AVSC: &str = include_str!("../avro/booking_event.avsc");

/// A Rust type that is the mirror of one `.avsc` record.
pub trait AvroRecord: serde::Serialize + serde::de::DeserializeOwned {
    /// The `.avsc` text this type is written and read with.
    const AVSC: &'static str;
}

impl AvroRecord for BookingCommand {
    const AVSC: &'static str = BOOKING_COMMAND_AVSC;
}

impl AvroRecord for BookingEvent {
    const AVSC: &'static str = BOOKING_EVENT_AVSC;
}

/// The registry subject of a topic's record values (topic name strategy).
pub fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}
