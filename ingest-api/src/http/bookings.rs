//! `/bookings`: accept booking requests as commands on Kafka and answer their state.
//!
//! Acceptance order keeps "a GET right after a 202 never answers 404": the `pending` row is
//! written first, then the command is produced (`acks=all`), then 202 is answered. If the
//! produce fails the row is closed as `rejected` (unless the processor already decided it)
//! and the client gets 503, so nothing is half-accepted.

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::{DateTime, Duration, Utc};
use citaflow_schemas::{BookingCommand, BookingCommandKind};
use rdkafka::producer::FutureRecord;
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use tracing::Instrument;
use uuid::Uuid;

use super::error::{ApiError, AppJson, AppPath, FieldError};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/bookings", post(create_booking))
        .route("/bookings/{id}", get(get_booking))
}

/// Body of `POST /bookings`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBooking {
    pub patient_id: Uuid,
    pub doctor_id: Uuid,
    pub center_id: Uuid,
    /// RFC 3339 with an offset, e.g. `2026-12-01T09:30:00+01:00`.
    pub start: DateTime<Utc>,
    pub duration_minutes: i64,
    pub reason: Option<String>,
}

/// A validated booking request.
#[derive(Debug, Clone)]
pub struct BookingRequest {
    pub patient_id: Uuid,
    pub doctor_id: Uuid,
    pub center_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: Option<String>,
}

const MAX_REASON_CHARS: usize = 500;

impl BookingRequest {
    /// Parses a request body, collecting every problem at once.
    pub fn parse(
        body: NewBooking,
        now: DateTime<Utc>,
        min_minutes: i64,
        max_minutes: i64,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        if body.start <= now {
            errors.push(FieldError::new("start", "must be in the future"));
        }
        if body.duration_minutes < min_minutes || body.duration_minutes > max_minutes {
            errors.push(FieldError::new(
                "duration_minutes",
                format!("must be between {min_minutes} and {max_minutes}"),
            ));
        }
        let reason = body.reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
        if reason.as_ref().is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
            errors.push(FieldError::new(
                "reason",
                format!("must be at most {MAX_REASON_CHARS} characters"),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            patient_id: body.patient_id,
            doctor_id: body.doctor_id,
            center_id: body.center_id,
            starts_at: body.start,
            ends_at: body.start + Duration::minutes(body.duration_minutes),
            reason,
        })
    }
}

/// Answer of `POST /bookings` while the outcome is not known yet.
#[derive(Debug, Serialize)]
pub struct Accepted {
    pub booking_id: Uuid,
    pub status: &'static str,
}

async fn create_booking(
    State(state): State<AppState>,
    AppJson(body): AppJson<NewBooking>,
) -> Result<Response, ApiError> {
    let processor = &state.settings.processor;
    let request = BookingRequest::parse(
        body,
        Utc::now(),
        processor.min_duration_minutes,
        processor.max_duration_minutes,
    )
    .map_err(ApiError::Validation)?;

    let booking_id = Uuid::new_v4();
    let span = tracing::info_span!("create_booking", booking_id = %booking_id);
    accept_create(&state, booking_id, request).instrument(span).await?;

    let location = format!("/bookings/{booking_id}");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(Accepted { booking_id, status: "pending" }),
    )
        .into_response())
}

/// Records the pending booking, then publishes its CREATE command.
async fn accept_create(
    state: &AppState,
    booking_id: Uuid,
    request: BookingRequest,
) -> Result<(), ApiError> {
    let command_id = Uuid::new_v4();
    let requested_at = Utc::now();
    sqlx::query(
        "INSERT INTO appointments (id, command_id, doctor_id, patient_id, center_id, starts_at,
                                   ends_at, reason, status, requested_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(booking_id)
    .bind(command_id)
    .bind(request.doctor_id)
    .bind(request.patient_id)
    .bind(request.center_id)
    .bind(request.starts_at)
    .bind(request.ends_at)
    .bind(&request.reason)
    .bind(requested_at)
    .execute(&state.pool)
    .await?;

    let command = BookingCommand {
        command_id: command_id.to_string(),
        kind: BookingCommandKind::Create,
        booking_id: booking_id.to_string(),
        doctor_id: request.doctor_id.to_string(),
        patient_id: Some(request.patient_id.to_string()),
        center_id: Some(request.center_id.to_string()),
        starts_at: Some(request.starts_at.timestamp_millis()),
        ends_at: Some(request.ends_at.timestamp_millis()),
        reason: request.reason,
        previous_booking_id: None,
        requested_by: None,
        requested_at: requested_at.timestamp_millis(),
    };
    if let Err(err) = publish(state, &command).await {
        close_unpublished(state, booking_id).await;
        return Err(err);
    }
    metrics::counter!("citaflow_api_bookings_accepted_total", "kind" => "create").increment(1);
    tracing::info!("booking accepted");
    Ok(())
}

/// Produces a command keyed by its doctor, so one doctor's commands stay in order.
async fn publish(state: &AppState, command: &BookingCommand) -> Result<(), ApiError> {
    let payload = state.commands.encode(command).await.map_err(|e| {
        if e.is_transient() {
            ApiError::Unavailable(e.into())
        } else {
            ApiError::Internal(e.into())
        }
    })?;
    let record = FutureRecord::to(&state.settings.topics.requests)
        .key(command.doctor_id.as_bytes())
        .payload(&payload);
    state
        .producer
        .send(record, std::time::Duration::from_secs(5))
        .await
        .map_err(|(err, _)| ApiError::Unavailable(anyhow::anyhow!("producing command: {err}")))?;
    Ok(())
}

/// Marks a booking whose command never reached Kafka as rejected, unless it was decided.
async fn close_unpublished(state: &AppState, booking_id: Uuid) {
    let result = sqlx::query(
        "UPDATE appointments
            SET status = 'rejected', reason_code = 'not_accepted',
                reason_message = 'The request could not be queued; it was not processed.',
                decided_at = now(), updated_at = now()
          WHERE id = $1 AND status = 'pending'",
    )
    .bind(booking_id)
    .execute(&state.pool)
    .await;
    if let Err(err) = result {
        tracing::error!(error = %err, %booking_id, "could not close an unpublished booking");
    }
}

/// A booking as clients see it.
#[derive(Debug, Serialize, FromRow)]
pub struct Booking {
    pub id: Uuid,
    pub status: String,
    pub doctor_id: Uuid,
    pub patient_id: Uuid,
    pub center_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: Option<String>,
    pub reason_code: Option<String>,
    pub reason_message: Option<String>,
    pub previous_booking_id: Option<Uuid>,
    pub requested_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

pub const BOOKING_COLUMNS: &str = "id, status, doctor_id, patient_id, center_id, starts_at,
    ends_at, reason, reason_code, reason_message, previous_booking_id, requested_at, decided_at,
    cancelled_at";

async fn get_booking(
    State(state): State<AppState>,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<Booking>, ApiError> {
    let booking: Option<Booking> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {BOOKING_COLUMNS} FROM appointments WHERE id = $1")))
            .bind(id)
            .fetch_optional(&state.pool)
            .await?;
    booking.map(Json).ok_or(ApiError::NotFound("booking"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(start: DateTime<Utc>, minutes: i64) -> NewBooking {
        NewBooking {
            patient_id: Uuid::new_v4(),
            doctor_id: Uuid::new_v4(),
            center_id: Uuid::new_v4(),
            start,
            duration_minutes: minutes,
            reason: Some("  checkup ".into()),
        }
    }

    #[test]
    fn a_valid_request_gets_its_end_time() {
        let now = Utc::now();
        let start = now + Duration::hours(2);
        let r = BookingRequest::parse(body(start, 30), now, 5, 480).unwrap();
        assert_eq!(r.ends_at - r.starts_at, Duration::minutes(30));
        assert_eq!(r.reason.as_deref(), Some("checkup"));
    }

    #[test]
    fn past_start_and_bad_duration_are_both_reported() {
        let now = Utc::now();
        let errors = BookingRequest::parse(body(now - Duration::hours(1), 0), now, 5, 480)
            .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["start", "duration_minutes"]);
    }

    #[test]
    fn overlong_reason_is_refused() {
        let now = Utc::now();
        let mut b = body(now + Duration::hours(1), 30);
        b.reason = Some("x".repeat(501));
        let errors = BookingRequest::parse(b, now, 5, 480).unwrap_err();
        assert_eq!(errors[0].field, "reason");
    }
}
