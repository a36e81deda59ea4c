//! Confluent wire format: `[0][schema id: u32 BE][Avro binary datum]`.
//!
//! Encoding registers the type's `.avsc` under the topic's subject on first use. Decoding
//! reads with the writer's schema (looked up by id) resolved to ours, so records written with
//! an older or newer compatible schema still decode.

use std::{marker::PhantomData, sync::Arc};

use apache_avro::{
    Schema, from_value, reader::datum::GenericDatumReader, writer::datum::GenericDatumWriter,
};
use tokio::sync::OnceCell;

use crate::{AvroRecord, RegistryClient, RegistryError, value_subject};

const MAGIC: u8 = 0;

/// Why a value could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("value does not fit its schema: {0}")]
    Avro(String),
}

impl EncodeError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, EncodeError::Registry(e) if e.is_transient())
    }
}

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("record is not in the Confluent wire format ({0})")]
    NotWireFormat(&'static str),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("record does not decode with schema {id}: {message}")]
    Avro { id: u32, message: String },
}

impl DecodeError {
    /// Whether trying again later may succeed (only when the registry was unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(self, DecodeError::Registry(e) if e.is_transient())
    }
}

/// Encoder/decoder of one record type on one topic.
pub struct AvroCodec<T> {
    registry: RegistryClient,
    subject: String,
    schema: Arc<Schema>,
    /// Shared by every clone: handlers clone their state per request or per partition, and a
    /// clone made before the first encode must not register the schema again on its own.
    id: Arc<OnceCell<u32>>,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for AvroCodec<T> {
    fn clone(&self) -> Self {
        Self {
            registry: self.registry.clone(),
            subject: self.subject.clone(),
            schema: self.schema.clone(),
            id: self.id.clone(),
            _type: PhantomData,
        }
    }
}

impl<T: AvroRecord> AvroCodec<T> {
    /// A codec for `T` on `topic`, registering under `<topic>-value`.
    pub fn new(registry: RegistryClient, topic: &str) -> Self {
        let schema = Schema::parse_str(T::AVSC).expect("embedded .avsc files are valid (tested)");
        Self {
            registry,
            subject: value_subject(topic),
            schema: Arc::new(schema),
            id: Arc::new(OnceCell::new()),
            _type: PhantomData,
        }
    }

    /// The schema this codec writes with and reads into.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The registry id of our schema, registering it on first call.
    pub async fn schema_id(&self) -> Result<u32, RegistryError> {
        self.id
            .get_or_try_init(|| self.registry.register(&self.subject, T::AVSC, &self.schema))
            .await
            .copied()
    }

    /// Encodes `value` in the Confluent wire format.
    pub async fn encode(&self, value: &T) -> Result<Vec<u8>, EncodeError> {
        let id = self.schema_id().await?;
        let mut out = Vec::with_capacity(256);
        out.push(MAGIC);
        out.extend_from_slice(&id.to_be_bytes());
        let writer = GenericDatumWriter::builder(&self.schema)
            .build()
            .map_err(|e| EncodeError::Avro(e.to_string()))?;
        writer
            .write_ser(&mut out, value)
            .map_err(|e| EncodeError::Avro(e.to_string()))?;
        Ok(out)
    }

    /// Decodes a record in the Confluent wire format into `T`.
    pub async fn decode(&self, bytes: &[u8]) -> Result<T, DecodeError> {
        let (id, mut datum) = split_header(bytes)?;
        let writer_schema = self.registry.schema_by_id(id).await?;
        let avro_err = |e: apache_avro::Error| DecodeError::Avro {
            id,
            message: e.to_string(),
        };
        let reader = GenericDatumReader::builder(&writer_schema)
            .reader_schema(&self.schema)
            .build()
            .map_err(avro_err)?;
        let value = reader.read_value(&mut datum).map_err(avro_err)?;
        from_value(&value).map_err(avro_err)
    }
}

/// Splits a Confluent-framed record into its schema id and Avro datum.
pub fn split_header(bytes: &[u8]) -> Result<(u32, &[u8]), DecodeError> {
    match bytes {
        [] => Err(DecodeError::NotWireFormat("empty payload")),
        [MAGIC, a, b, c, d, rest @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), rest)),
        [MAGIC, ..] => Err(DecodeError::NotWireFormat("shorter than the 5-byte header")),
        _ => Err(DecodeError::NotWireFormat("magic byte is not 0")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_magic_then_big_endian_id() {
        let (id, rest) = split_header(&[0, 0, 0, 1, 2, 42]).unwrap();
        assert_eq!(id, 258);
        assert_eq!(rest, &[42]);
    }

    #[test]
    fn rejects_what_is_not_wire_format() {
        assert!(matches!(
            split_header(&[]),
            Err(DecodeError::NotWireFormat(_))
        ));
        assert!(matches!(
            split_header(&[0, 0, 1]),
            Err(DecodeError::NotWireFormat(_))
        ));
        assert!(matches!(
            split_header(b"{\"json\":1}"),
            Err(DecodeError::NotWireFormat(_))
        ));
        assert!(!DecodeError::NotWireFormat("x").is_transient());
    }

    #[test]
    fn clones_share_the_schema_id() {
        let registry =
            RegistryClient::new("http://127.0.0.1:9", std::time::Duration::from_secs(1)).unwrap();
        let codec = AvroCodec::<crate::BookingCommand>::new(registry, "booking.requests");
        // Cloned before the id is known, as per-request state is.
        let clone = codec.clone();
        codec.id.set(42).unwrap();
        assert_eq!(clone.id.get(), Some(&42));
    }
}
