//! Processing errors carry a retry hint, and that hint alone decides between a delay topic
//! (try again later) and the dead-letter topic (never).

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

    pub fn permanent(message: impl Into<String>) -> Self {
        ProcessError::Permanent(anyhow::anyhow!(message.into()))
    }
}

impl From<sqlx::Error> for ProcessError {
    fn from(err: sqlx::Error) -> Self {
        if citaflow_platform::db::is_transient(&err) {
            ProcessError::Transient(err.into())
        } else {
            ProcessError::Permanent(err.into())
        }
    }
}
