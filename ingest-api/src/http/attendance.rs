//! `POST /bookings/{id}/attendance`: staff record whether the patient came to a visit that
//! has started. Like a cancel, it is a command on `booking.requests` (`MARK_ATTENDED`,
//! `MARK_NO_SHOW`) decided by booking-processor in the doctor's order, which writes the
//! appointment and publishes `ATTENDED` / `NO_SHOW`; this module checks what it can first so
//! the caller hears why at once (409 `not_confirmed`, `not_started`, `already_marked`).

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use citaflow_booking_store::Attendance;
use citaflow_schemas::{BookingCommand, BookingCommandKind};
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    auth::{AuthUser, Role},
    bookings::{self, Accepted, Booking},
    error::{ApiError, AppJson, AppPath, ErrorBody},
    idempotency::{self, Prior},
};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(mark_attendance))
}

/// Who may record attendance: staff, and a doctor for their own agenda (the one who knows
/// whether the patient came). Patients may not.
const MARKERS: &[Role] = &[Role::Admin, Role::Secretary, Role::Doctor];

/// What staff record about a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Attended,
    NoShow,
}

impl From<Outcome> for Attendance {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Attended => Attendance::Attended,
            Outcome::NoShow => Attendance::NoShow,
        }
    }
}

/// Body of `POST /bookings/{id}/attendance`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttendanceMark {
    pub outcome: Outcome,
}

/// The schema of [`Booking::attendance`]: `attended`, `no_show` or null.
pub fn attendance_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::{
        ObjectBuilder,
        schema::{SchemaType, Type},
    };
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some([
            Some(Attendance::Attended.as_str()),
            Some(Attendance::NoShow.as_str()),
            None,
        ]))
        .build()
        .into()
}

/// Why the attendance of `booking` cannot be recorded now as `outcome`, if it cannot.
fn refusal(booking: &Booking, outcome: Attendance, now: DateTime<Utc>) -> Option<ApiError> {
    refusal_of(
        &booking.status,
        booking.starts_at,
        booking.attendance.as_deref(),
        outcome,
        now,
    )
}

fn refusal_of(
    status: &str,
    starts_at: DateTime<Utc>,
    attendance: Option<&str>,
    outcome: Attendance,
    now: DateTime<Utc>,
) -> Option<ApiError> {
    if status != "confirmed" {
        return Some(ApiError::conflict(
            "not_confirmed",
            format!(
                "This booking is {status}; attendance is recorded only for confirmed appointments."
            ),
        ));
    }
    if starts_at > now {
        return Some(ApiError::conflict(
            "not_started",
            "The appointment has not started yet; attendance is recorded once it has.",
        ));
    }
    if attendance == Some(outcome.as_str()) {
        return Some(ApiError::conflict(
            "already_marked",
            format!("This appointment is already marked {}.", outcome.as_str()),
        ));
    }
    None
}

/// Record whether the patient came (`attended`) or not (`no_show`) to a confirmed appointment
/// whose start has passed. Admins and secretaries for any booking, a doctor for their own
/// agenda (others' bookings answer 404, as reading them does); patients get 403. A later mark
/// with the other outcome corrects the first (a new event); once marked, the booking can no
/// longer be cancelled or moved. Answers 202; with `Prefer: wait=N`, 200 with the booking once
/// it is recorded. 409 `not_confirmed` (pending, rejected or cancelled), `not_started` (its
/// start is still ahead), `already_marked` (with this outcome). With an `Idempotency-Key`, a
/// retry answers the first answer (a first 202 as 200 once recorded).
#[utoipa::path(post, path = "/bookings/{id}/attendance", tag = "bookings", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("Prefer" = Option<String>, Header, description = "`wait=N`"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Any 1–255 visible ASCII characters, new for each intended action (e.g. a UUID). A retry with the same key and the same request answers the first one's outcome (header `Idempotent-Replayed: true`); keys are kept 24 hours per user")),
    request_body = AttendanceMark,
    responses((status = 202, body = Accepted), (status = 200, description = "Recorded (Prefer: wait)", body = Booking),
        (status = 403, description = "Patients cannot record attendance", body = ErrorBody),
        (status = 404, description = "No such booking, or (for a doctor) not on their agenda", body = ErrorBody),
        (status = 409, description = "`not_confirmed`, `not_started`, `already_marked`, or `idempotency_key_in_use`", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the Idempotency-Key was used for a different request", body = ErrorBody),
        (status = 429, description = "Too many booking commands from this user; retry after `Retry-After` seconds", body = ErrorBody)))]
async fn mark_attendance(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<AttendanceMark>,
) -> Result<Response, ApiError> {
    user.require(MARKERS)?;
    let outcome = Attendance::from(body.outcome);
    let key =
        idempotency::Key::from_headers(&headers, user.user_id, &format!("attendance {id}"), &body)?;
    bookings::limit_rate(&state, &user)?;
    let booking = bookings::load(&state, id)
        .await?
        .filter(|b| bookings::visible_to(&user, b))
        .ok_or(ApiError::NotFound("booking"))?;
    let recorded = move |b: &Booking| b.attendance.as_deref() == Some(outcome.as_str());
    // Recording the same outcome twice changes nothing, so a first request that died
    // unanswered is simply sent again.
    let mut take_over = false;
    if let Some(key) = &key {
        match idempotency::lookup(&state, key).await? {
            None => {}
            Some(Prior::InFlight {
                abandoned: true, ..
            }) => take_over = true,
            Some(Prior::InFlight { .. }) => return Err(idempotency::in_use()),
            Some(Prior::Answered {
                status: StatusCode::ACCEPTED,
                body,
                ..
            }) => {
                let response = match Some(booking).filter(recorded) {
                    Some(b) => (StatusCode::OK, Json(b)).into_response(),
                    None => (StatusCode::ACCEPTED, Json(body)).into_response(),
                };
                return Ok(idempotency::replayed(response));
            }
            Some(Prior::Answered { status, body, .. }) => {
                return Ok(idempotency::replayed((status, Json(body)).into_response()));
            }
        }
    }
    if let Some(refusal) = refusal(&booking, outcome, Utc::now()) {
        return Err(refusal);
    }
    let wait = bookings::preferred_wait(&headers, state.settings.api.max_wait_secs);
    let span = tracing::info_span!("mark_attendance", booking_id = %id);
    async {
        let command = BookingCommand {
            command_id: Uuid::new_v4().to_string(),
            kind: match outcome {
                Attendance::Attended => BookingCommandKind::MarkAttended,
                Attendance::NoShow => BookingCommandKind::MarkNoShow,
            },
            booking_id: id.to_string(),
            doctor_id: booking.doctor_id.to_string(),
            patient_id: Some(booking.patient_id.to_string()),
            center_id: Some(booking.center_id.to_string()),
            starts_at: None,
            ends_at: None,
            reason: None,
            previous_booking_id: None,
            requested_by: Some(user.user_id.to_string()),
            requested_at: Utc::now().timestamp_millis(),
            // The processor reads the rest from the appointment row.
            service_id: None,
        };
        bookings::send_about_existing(
            &state,
            key.as_ref(),
            take_over,
            &command,
            &booking,
            wait,
            "attendance",
            recorded,
        )
        .await
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn code(
        status: &str,
        starts_in_minutes: i64,
        marked: Option<&str>,
        outcome: Attendance,
    ) -> &'static str {
        let now = Utc::now();
        let starts_at = now + Duration::minutes(starts_in_minutes);
        match refusal_of(status, starts_at, marked, outcome, now) {
            Some(ApiError::Conflict { code, .. }) => code,
            Some(other) => panic!("{other:?}"),
            None => "ok",
        }
    }

    #[test]
    fn only_a_confirmed_visit_that_started_is_marked_and_a_mark_can_be_corrected() {
        use Attendance::*;
        assert_eq!(code("confirmed", -5, None, NoShow), "ok");
        assert_eq!(code("confirmed", 5, None, NoShow), "not_started");
        assert_eq!(code("cancelled", -5, None, Attended), "not_confirmed");
        assert_eq!(code("pending", 5, None, Attended), "not_confirmed");
        assert_eq!(
            code("confirmed", -60, Some("no_show"), NoShow),
            "already_marked"
        );
        assert_eq!(code("confirmed", -60, Some("no_show"), Attended), "ok");
    }

    #[test]
    fn the_outcome_reads_as_the_store_writes_it() {
        for outcome in [Outcome::Attended, Outcome::NoShow] {
            let json = serde_json::to_value(outcome).unwrap();
            assert_eq!(json, Attendance::from(outcome).as_str());
        }
    }
}
