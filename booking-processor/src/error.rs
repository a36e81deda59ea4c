//! Processing errors carry a retry hint, and that hint alone decides between a delay topic
//! (try again later) and the dead-letter topic (never).

use citaflow_schemas::{DecodeError, EncodeError};

/// Why a command could not be decided.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The database, broker or registry failed in a way that may pass: retry later.
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// The record itself is unusable (not Avro, unknown schema, invalid ids): never retry.
    #[error("permanent: {0:#}")]
    Permanent(anyhow::Error),
}

impl ProcessError {
    pub fn is_transient(&self) -> bool {
        matches!(self, ProcessError::Transient(_))
    }

    /// The error with its retry hint.
    fn hinted(transient: bool, err: anyhow::Error) -> Self {
        if transient {
            ProcessError::Transient(err)
        } else {
            ProcessError::Permanent(err)
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        ProcessError::Permanent(anyhow::anyhow!(message.into()))
    }
}

impl From<EncodeError> for ProcessError {
    fn from(err: EncodeError) -> Self {
        Self::hinted(err.is_transient(), err.into())
    }
}

impl From<DecodeError> for ProcessError {
    fn from(err: DecodeError) -> Self {
        Self::hinted(err.is_transient(), err.into())
    }
}

impl From<sqlx::Error> for ProcessError {
    fn from(err: sqlx::Error) -> Self {
        Self::hinted(citaflow_platform::db::is_transient(&err), err.into())
    }
}
