//! The delivery log, `notification_deliveries`: one row per event and channel, which is what
//! makes each notification go out once per channel even when an event is delivered again, a
//! process dies mid-send, or two replicas briefly own the same partition during a rebalance.
//!
//! A row is `sending` until it is closed as `sent`, `failed` or `skipped`. While it is
//! `sending`, `detail` says how the last attempt ended:
//! - `NULL`: it has not ended (it is running, or its process died): it may have delivered;
//! - `not_sent: …`: the provider did not take the message;
//! - `in_doubt: …`: the provider may have taken it (connection lost after handing it over).
//!
//! The send itself happens while the row is locked (`SELECT … FOR UPDATE` in an open
//! transaction): a second sender gives up at once and retries later, by which time the row is
//! closed. A process that dies loses its connection and with it the lock, so nobody waits for
//! a dead sender.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// The outcome recorded when a row is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closing {
    /// Delivered; the provider's reference (Message-ID, message SID).
    Sent(String),
    Failed(String),
    Skipped(&'static str),
}

impl Closing {
    fn status(&self) -> &'static str {
        match self {
            Closing::Sent(_) => "sent",
            Closing::Failed(_) => "failed",
            Closing::Skipped(_) => "skipped",
        }
    }

    fn detail(&self) -> String {
        match self {
            Closing::Sent(reference) => reference.clone(),
            Closing::Failed(reason) => reason.clone(),
            Closing::Skipped(reason) => (*reason).to_owned(),
        }
    }
}

/// The state of a row when an attempt starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Already closed: nothing to do.
    Closed,
    /// Ours to work on.
    Open {
        attempts: i32,
        /// An earlier attempt may already have delivered the message.
        in_doubt: bool,
        /// When the first attempt started (a provider's log is searched from there).
        since: DateTime<Utc>,
    },
}

/// Starts an attempt: creates the row or, if it is still `sending`, counts one more attempt.
/// The attempt is committed before anything is sent, so that a crash during the send leaves a
/// trace (`detail` NULL) the next attempt reads as "in doubt".
pub async fn claim(
    pool: &PgPool,
    event_id: Uuid,
    channel: &str,
    booking_id: Uuid,
) -> Result<Claim, sqlx::Error> {
    /// attempts, first attempt's time, previous status and detail
    type ClaimRow = (i32, DateTime<Utc>, Option<String>, Option<String>);
    let row: Option<ClaimRow> = sqlx::query_as(
        "WITH previous AS (
             SELECT status, detail FROM notification_deliveries WHERE event_id = $1 AND channel = $2
         )
         INSERT INTO notification_deliveries (event_id, channel, booking_id, status, attempts)
         VALUES ($1, $2, $3, 'sending', 1)
         ON CONFLICT (event_id, channel) DO UPDATE
            SET attempts = notification_deliveries.attempts + 1, detail = NULL, updated_at = now()
          WHERE notification_deliveries.status = 'sending'
         RETURNING attempts, created_at,
                   (SELECT status FROM previous), (SELECT detail FROM previous)",
    )
    .bind(event_id)
    .bind(channel)
    .bind(booking_id)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        None => Claim::Closed,
        Some((attempts, since, previous_status, previous_detail)) => Claim::Open {
            attempts,
            in_doubt: previous_status.as_deref() == Some("sending")
                && previous_detail
                    .as_deref()
                    .is_none_or(|d| d.starts_with("in_doubt")),
            since,
        },
    })
}

/// Why a row could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another sender is working on this notification right now")]
    Busy,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A locked, still `sending` row: the right to send, held until [`Locked::close`] or
/// [`Locked::note_retry`] commits (or the connection drops).
pub struct Locked {
    tx: Transaction<'static, Postgres>,
    event_id: Uuid,
    channel: &'static str,
}

/// Locks the row without waiting. `Ok(None)` when it was closed meanwhile.
pub async fn lock(
    pool: &PgPool,
    event_id: Uuid,
    channel: &'static str,
) -> Result<Option<Locked>, LockError> {
    let mut tx = pool.begin().await?;
    let status: Option<String> = sqlx::query_scalar(
        "SELECT status FROM notification_deliveries
          WHERE event_id = $1 AND channel = $2 FOR UPDATE NOWAIT",
    )
    .bind(event_id)
    .bind(channel)
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| match &e {
        // lock_not_available
        sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03") => LockError::Busy,
        _ => LockError::Database(e),
    })?;
    if status.as_deref() != Some("sending") {
        return Ok(None);
    }
    Ok(Some(Locked {
        tx,
        event_id,
        channel,
    }))
}

impl Locked {
    /// Closes the row with its outcome and lets go of it.
    pub async fn close(mut self, closing: &Closing) -> Result<(), sqlx::Error> {
        update(
            &mut self.tx,
            self.event_id,
            self.channel,
            Some(closing.status()),
            &closing.detail(),
        )
        .await?;
        self.tx.commit().await
    }

    /// Records how a failed attempt ended (the row stays `sending`) and lets go of it.
    pub async fn note_retry(mut self, in_doubt: bool, reason: &str) -> Result<(), sqlx::Error> {
        let detail = format!(
            "{}: {reason}",
            if in_doubt { "in_doubt" } else { "not_sent" }
        );
        update(&mut self.tx, self.event_id, self.channel, None, &detail).await?;
        self.tx.commit().await
    }
}

/// Closes a row outside a lock: for an outcome known but not yet recorded (the database went
/// away right after a send). Only a `sending` row changes.
pub async fn close(
    pool: &PgPool,
    event_id: Uuid,
    channel: &str,
    closing: &Closing,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    update(
        &mut tx,
        event_id,
        channel,
        Some(closing.status()),
        &closing.detail(),
    )
    .await?;
    tx.commit().await
}

async fn update(
    tx: &mut Transaction<'static, Postgres>,
    event_id: Uuid,
    channel: &str,
    status: Option<&str>,
    detail: &str,
) -> Result<(), sqlx::Error> {
    let detail: String = detail.chars().take(500).collect();
    sqlx::query(
        "UPDATE notification_deliveries
            SET status = COALESCE($3, status), detail = $4, updated_at = now()
          WHERE event_id = $1 AND channel = $2 AND status = 'sending'",
    )
    .bind(event_id)
    .bind(channel)
    .bind(status)
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
