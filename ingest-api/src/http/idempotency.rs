//! `Idempotency-Key` on the booking commands (create, cancel, reschedule): a client that does
//! not know whether its request arrived sends it again with the same key and gets the first
//! request's outcome, never a second booking. Every statement on `idempotency_keys` lives here.
//!
//! - A key belongs to its caller (the user id) and lives [`KEY_TTL_HOURS`]; a caller's expired
//!   keys are deleted lazily, when that caller next sends a key.
//! - The request is fingerprinted (operation, path id, parsed body): the same key with another
//!   fingerprint is 422 `idempotency_key_reused`.
//! - A create's (or reschedule's) key row is claimed in the transaction that writes its
//!   pending booking ([`claim`]), committed durably, so a request cut off at any point leaves
//!   both rows or neither: the retry answers the one booking, or makes it.
//! - Until the first request has answered, its row has no status: a duplicate gets 409
//!   `idempotency_key_in_use`. A row still unanswered after the in-flight lease (the longest
//!   a request can take, plus a margin) belongs to a request that died: a create's retry then
//!   answers the booking's current state (the processor's pending sweep closes it if its
//!   command never reached Kafka), a cancel's retry sends the cancel again.

use axum::{
    body::{Body, to_bytes},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::Response,
};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::error::ApiError;
use crate::state::AppState;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Set on an answer replayed from an earlier request with the same key.
pub const REPLAYED: &str = "idempotent-replayed";
/// How long a key is kept (and a retry recognised).
pub const KEY_TTL_HOURS: i64 = 24;
/// Longest key, in characters.
pub const MAX_KEY_CHARS: usize = 255;

/// A caller's key for one request: who, which key, and what the request was.
#[derive(Debug, Clone)]
pub struct Key {
    user_id: Uuid,
    key: String,
    request_hash: Vec<u8>,
}

impl Key {
    /// The `Idempotency-Key` of a request, if it has one: 1–255 visible ASCII characters
    /// (else 400 `invalid_idempotency_key`). `operation` names the command and its path id, so
    /// one key used on two operations counts as two requests.
    pub fn from_headers(
        headers: &HeaderMap,
        user_id: Uuid,
        operation: &str,
        body: &impl Serialize,
    ) -> Result<Option<Self>, ApiError> {
        let mut values = headers.get_all(HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        let key = parse(value).filter(|_| values.next().is_none()).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_idempotency_key",
                format!(
                    "Idempotency-Key must be sent once, 1 to {MAX_KEY_CHARS} visible ASCII characters."
                ),
            )
        })?;
        Ok(Some(Self {
            user_id,
            key,
            request_hash: fingerprint(operation, body),
        }))
    }
}

fn parse(value: &HeaderValue) -> Option<String> {
    let bytes = value.as_bytes();
    (!bytes.is_empty()
        && bytes.len() <= MAX_KEY_CHARS
        && bytes.iter().all(|b| (0x21..=0x7e).contains(b)))
    .then(|| String::from_utf8_lossy(bytes).into_owned())
}

/// SHA-256 of the operation and the body as parsed (so spacing and key order do not matter).
fn fingerprint(operation: &str, body: &impl Serialize) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(operation.as_bytes());
    hasher.update([0]);
    hasher.update(serde_json::to_vec(body).unwrap_or_default());
    hasher.finalize().to_vec()
}

/// What an earlier request with the same key left.
#[derive(Debug)]
pub enum Prior {
    /// It answered `status` with `body`.
    Answered {
        booking_id: Uuid,
        status: StatusCode,
        body: Value,
    },
    /// It has not answered; `abandoned` once past the in-flight lease.
    InFlight { booking_id: Uuid, abandoned: bool },
}

/// How long a request may stay unanswered before it counts as dead: the longest wait a
/// client may ask for, the produce timeout and a margin.
fn lease_secs(state: &AppState) -> f64 {
    (state.settings.api.max_wait_secs + 30) as f64
}

pub fn in_use() -> ApiError {
    ApiError::conflict(
        "idempotency_key_in_use",
        "A request with this Idempotency-Key is still being processed; retry shortly.",
    )
}

fn reused() -> ApiError {
    ApiError::Unprocessable {
        code: "idempotency_key_reused",
        message: "This Idempotency-Key was already used for a different request.".into(),
    }
}

/// The earlier request with `key`, if any (422 if it was a different request). Deletes the
/// caller's expired keys first.
pub async fn lookup(state: &AppState, key: &Key) -> Result<Option<Prior>, ApiError> {
    sqlx::query(
        "DELETE FROM idempotency_keys
          WHERE user_id = $1 AND created_at < now() - make_interval(hours => $2)",
    )
    .bind(key.user_id)
    .bind(KEY_TTL_HOURS as i32)
    .execute(&state.pool)
    .await?;
    let row = sqlx::query(
        "SELECT request_hash, booking_id, status, response,
                created_at < now() - make_interval(secs => $3) AS abandoned
           FROM idempotency_keys WHERE user_id = $1 AND key = $2",
    )
    .bind(key.user_id)
    .bind(&key.key)
    .bind(lease_secs(state))
    .fetch_optional(&state.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let hash: Vec<u8> = row.try_get("request_hash")?;
    if hash != key.request_hash {
        return Err(reused());
    }
    let booking_id = row.try_get("booking_id")?;
    let status: Option<i16> = row.try_get("status")?;
    Ok(Some(match status {
        Some(status) => Prior::Answered {
            booking_id,
            status: u16::try_from(status)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::ACCEPTED),
            body: row
                .try_get::<Option<Value>, _>("response")?
                .unwrap_or(Value::Null),
        },
        None => Prior::InFlight {
            booking_id,
            abandoned: row.try_get("abandoned")?,
        },
    }))
}

/// Claims `key` for a request acting on `booking_id`, on `conn` (for a create, the
/// transaction that writes the pending booking, so both commit or neither). With
/// `take_over_abandoned`, a row of the same request left unanswered past the lease is claimed
/// anew. Another claim of the key answers 409 `idempotency_key_in_use` (or 422 when it is a
/// different request); a concurrent claim waits here for the first one's transaction.
pub async fn claim(
    conn: &mut PgConnection,
    state: &AppState,
    key: &Key,
    booking_id: Uuid,
    take_over_abandoned: bool,
) -> Result<(), ApiError> {
    let claimed = sqlx::query(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, booking_id)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, key) DO UPDATE SET created_at = now()
          WHERE $5 AND idempotency_keys.status IS NULL
            AND idempotency_keys.request_hash = EXCLUDED.request_hash
            AND idempotency_keys.booking_id = EXCLUDED.booking_id
            AND idempotency_keys.created_at < now() - make_interval(secs => $6)
         RETURNING 1",
    )
    .bind(key.user_id)
    .bind(&key.key)
    .bind(&key.request_hash)
    .bind(booking_id)
    .bind(take_over_abandoned)
    .bind(lease_secs(state))
    .fetch_optional(&mut *conn)
    .await?;
    if claimed.is_some() {
        return Ok(());
    }
    let hash: Option<Vec<u8>> = sqlx::query_scalar(
        "SELECT request_hash FROM idempotency_keys WHERE user_id = $1 AND key = $2",
    )
    .bind(key.user_id)
    .bind(&key.key)
    .fetch_optional(&mut *conn)
    .await?;
    match hash {
        Some(hash) if hash != key.request_hash => Err(reused()),
        _ => Err(in_use()),
    }
}

/// Claims `key` in a transaction of its own (commands that write no row here: cancel).
pub async fn claim_alone(
    state: &AppState,
    key: &Key,
    booking_id: Uuid,
    take_over_abandoned: bool,
) -> Result<(), ApiError> {
    let mut conn = state.pool.acquire().await?;
    claim(&mut conn, state, key, booking_id, take_over_abandoned).await
}

/// Records the answer to the request that claimed `key`, and passes it on. A failure to
/// record is logged, not answered: the outcome stands, and a retry then answers the
/// booking's current state once the lease has passed.
pub async fn record(state: &AppState, key: &Key, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = match to_bytes(body, 1 << 20).await {
        Ok(bytes) => bytes,
        Err(err) => {
            tracing::error!(error = %err, "could not buffer an answer to record");
            return Response::from_parts(parts, Body::empty());
        }
    };
    let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let done = sqlx::query(
        "UPDATE idempotency_keys SET status = $3, response = $4
          WHERE user_id = $1 AND key = $2",
    )
    .bind(key.user_id)
    .bind(&key.key)
    .bind(parts.status.as_u16() as i16)
    .bind(json)
    .execute(&state.pool)
    .await;
    if let Err(err) = done {
        tracing::error!(error = %err, "could not record an idempotent answer");
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Forgets `key` after its request failed without effect, so a retry with the key tries
/// again: a cancel whose command was never sent (`nothing_sent`), or a create whose booking
/// was closed `not_accepted` (a booking decided meanwhile keeps its key).
pub async fn release(state: &AppState, key: &Key, nothing_sent: bool) {
    let done = sqlx::query(
        "DELETE FROM idempotency_keys k
          WHERE k.user_id = $1 AND k.key = $2 AND k.status IS NULL
            AND ($3 OR NOT EXISTS (SELECT 1 FROM appointments a
                                    WHERE a.id = k.booking_id
                                      AND a.reason_code IS DISTINCT FROM 'not_accepted'))",
    )
    .bind(key.user_id)
    .bind(&key.key)
    .bind(nothing_sent)
    .execute(&state.pool)
    .await;
    if let Err(err) = done {
        tracing::error!(error = %err, "could not release an idempotency key");
    }
}

/// Marks an answer as replayed.
pub fn replayed(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(value: &str) -> Result<Option<Key>, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_str(value).unwrap());
        Key::from_headers(&headers, Uuid::nil(), "create", &1)
    }

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        assert!(key_of("a").unwrap().is_some());
        assert!(key_of(&"k".repeat(255)).unwrap().is_some());
        assert!(key_of(&"k".repeat(256)).is_err());
        assert!(key_of("").is_err());
        assert!(key_of("has space").is_err());
        assert!(key_of("tab\t").is_err());
        assert!(
            Key::from_headers(&HeaderMap::new(), Uuid::nil(), "create", &1)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn the_fingerprint_names_the_operation_and_the_body() {
        let a = fingerprint("create", &serde_json::json!({"a": 1, "b": 2}));
        assert_eq!(
            a,
            fingerprint("create", &serde_json::json!({"b": 2, "a": 1}))
        );
        assert_ne!(
            a,
            fingerprint("create", &serde_json::json!({"a": 1, "b": 3}))
        );
        assert_ne!(
            a,
            fingerprint("cancel", &serde_json::json!({"a": 1, "b": 2}))
        );
    }
}
