//! `/bookings`: accept booking requests as commands on Kafka and answer their state.
//!
//! Acceptance order keeps "a GET right after a 202 never answers 404": the `pending` row is
//! written first, then the command is produced (`acks=all`), then 202 is answered. If the
//! produce fails the row is closed as `rejected` (unless the processor already decided it)
//! and the client gets 503, so nothing is half-accepted.

use std::time::Duration as StdDuration;

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderName, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Duration, Timelike, Utc};
use citaflow_booking_store::{self as store, NewAppointment};
use citaflow_schemas::{BookingCommand, BookingCommandKind};
use rdkafka::producer::FutureRecord;
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, Postgres, QueryBuilder};
use tracing::Instrument;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    auth::{AuthUser, Role},
    error::{
        ApiError, AppJson, AppPath, AppQuery, ErrorBody, ErrorDetails, FieldError, Rejection,
        error_body,
    },
    idempotency::{self, Prior},
    pagination::{self, Page, PageParams},
};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_booking, list_bookings))
        .routes(routes!(get_booking))
        .routes(routes!(cancel_booking))
        .routes(routes!(reschedule_booking))
}

/// Who may book, cancel and move appointments.
const BOOKERS: &[Role] = &[Role::Admin, Role::Secretary, Role::Patient];

/// Whether `user` may see or change `booking`; others get 404 so ids reveal nothing.
pub(super) fn visible_to(user: &AuthUser, booking: &Booking) -> bool {
    may_see(user, booking.doctor_id, booking.patient_id)
}

/// Whether `user` may see a booking of `doctor_id` with `patient_id`: staff all, a doctor
/// their own agenda, a patient their own.
pub(super) fn may_see(user: &AuthUser, doctor_id: Uuid, patient_id: Uuid) -> bool {
    match user.role {
        Role::Admin | Role::Secretary => true,
        Role::Patient => user.patient_id == Some(patient_id),
        Role::Doctor => user.doctor_id == Some(doctor_id),
    }
}

/// Body of `POST /bookings`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBooking {
    pub patient_id: Uuid,
    pub doctor_id: Uuid,
    pub center_id: Uuid,
    /// RFC 3339 with an offset, e.g. `2026-12-01T09:30:00+01:00`: on a whole minute (seconds
    /// and fractions zero), in the future and within the booking horizon
    /// (`api.booking_horizon_days`, 365 by default).
    pub start: DateTime<Utc>,
    /// Between the configured bounds (`minimum`/`maximum` here). With a `service_id` the
    /// duration is the service's: only staff (admin, secretary) may give another one (a
    /// patient who gives one gets 422). Without a service it is required.
    #[serde(
        default,
        deserialize_with = "crate::domain::optional_whole_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub duration_minutes: Option<i64>,
    #[schema(schema_with = crate::domain::schema::booking_reason)]
    pub reason: Option<String>,
    /// The kind of visit (`GET /services`): it sets the duration and the buffers the visit
    /// keeps the doctor busy for. Unknown or inactive: 422.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<Uuid>,
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
    pub service_id: Option<Uuid>,
}

/// What the directory says about the service a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceTerms {
    /// The request names no service.
    None,
    /// No such service.
    Unknown,
    /// The service exists but is no longer offered.
    Inactive,
    /// An active service, with the duration of its visits.
    Active { id: Uuid, duration_minutes: i64 },
}

impl ServiceTerms {
    /// Looks up the service `id` names, if any.
    pub async fn of(pool: &sqlx::PgPool, id: Option<Uuid>) -> Result<Self, ApiError> {
        let Some(id) = id else {
            return Ok(ServiceTerms::None);
        };
        let row: Option<(i32, bool)> =
            sqlx::query_as("SELECT duration_minutes, active FROM services WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
        Ok(match row {
            None => ServiceTerms::Unknown,
            Some((_, false)) => ServiceTerms::Inactive,
            Some((minutes, true)) => ServiceTerms::Active {
                id,
                duration_minutes: i64::from(minutes),
            },
        })
    }
}

/// Who asks, as far as the duration rules care: staff (admins, secretaries) may set the
/// duration of a visit of a service; patients may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Staff,
    Patient,
}

impl Caller {
    pub fn of(user: &AuthUser) -> Self {
        if user.is_staff() {
            Caller::Staff
        } else {
            Caller::Patient
        }
    }
}

/// Longest booking reason, in characters once trimmed.
pub const MAX_REASON_CHARS: usize = 500;

/// What a requested slot must meet, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct SlotRules {
    pub min_minutes: i64,
    pub max_minutes: i64,
    /// How far ahead a start may be, in days.
    pub horizon_days: u32,
}

impl SlotRules {
    pub fn from_settings(settings: &citaflow_platform::Settings) -> Self {
        Self {
            min_minutes: settings.processor.min_duration_minutes,
            max_minutes: settings.processor.max_duration_minutes,
            horizon_days: settings.api.booking_horizon_days,
        }
    }
}

impl BookingRequest {
    /// Parses a request body, collecting every problem at once. A start is exact to the
    /// minute (so a slot is exactly its duration: a leap second `:60` or `:59.5` is refused,
    /// never rounded) and within the horizon (so no start in the year 9999 reaches the
    /// processor or the events, whose readers cannot decode such dates).
    ///
    /// The duration is the service's when the request names one (staff may give another;
    /// a patient who gives one is refused), else the request's, which is then required.
    pub fn parse(
        body: NewBooking,
        now: DateTime<Utc>,
        rules: SlotRules,
        service: ServiceTerms,
        caller: Caller,
    ) -> Result<Self, Vec<FieldError>> {
        let (min_minutes, max_minutes) = (rules.min_minutes, rules.max_minutes);
        let mut errors = Vec::new();
        match service {
            ServiceTerms::Unknown => errors.push(FieldError::new("service_id", "no such service")),
            ServiceTerms::Inactive => {
                errors.push(FieldError::new("service_id", "the service is not active"));
            }
            ServiceTerms::None | ServiceTerms::Active { .. } => {}
        }
        let duration_minutes = match (service, body.duration_minutes) {
            (ServiceTerms::Active { .. }, Some(_)) if caller == Caller::Patient => {
                errors.push(FieldError::new(
                    "duration_minutes",
                    "must not be given with a service_id: the service sets the duration",
                ));
                None
            }
            (_, Some(minutes)) => Some(minutes),
            (
                ServiceTerms::Active {
                    duration_minutes, ..
                },
                None,
            ) => Some(duration_minutes),
            (ServiceTerms::None, None) => {
                errors.push(FieldError::new(
                    "duration_minutes",
                    "is required without a service_id",
                ));
                None
            }
            (ServiceTerms::Unknown | ServiceTerms::Inactive, None) => None,
        };
        if body.start <= now {
            errors.push(FieldError::new("start", "must be in the future"));
        } else if body.start > now + Duration::days(i64::from(rules.horizon_days)) {
            errors.push(FieldError::new(
                "start",
                format!(
                    "must be at most {} days ahead (the booking horizon)",
                    rules.horizon_days
                ),
            ));
        }
        if body.start.second() != 0 || body.start.nanosecond() != 0 {
            errors.push(FieldError::new(
                "start",
                "must be on a whole minute (seconds and fractions of a second must be 0)",
            ));
        }
        if duration_minutes.is_some_and(|m| m < min_minutes || m > max_minutes) {
            errors.push(FieldError::new(
                "duration_minutes",
                format!("must be between {min_minutes} and {max_minutes}"),
            ));
        }
        let reason = body
            .reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        if reason
            .as_ref()
            .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
        {
            errors.push(FieldError::new(
                "reason",
                format!("must be at most {MAX_REASON_CHARS} characters"),
            ));
        }
        let Some(duration_minutes) = duration_minutes.filter(|_| errors.is_empty()) else {
            return Err(errors);
        };
        Ok(Self {
            patient_id: body.patient_id,
            doctor_id: body.doctor_id,
            center_id: body.center_id,
            starts_at: body.start,
            ends_at: body.start + Duration::minutes(duration_minutes),
            reason,
            service_id: match service {
                ServiceTerms::Active { id, .. } => Some(id),
                _ => None,
            },
        })
    }
}

/// Answer of a request whose outcome is not known yet (202).
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub booking_id: Uuid,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_booking_id: Option<Uuid>,
}

/// `Prefer: wait=N` (RFC 7240): how long the client is willing to wait for the outcome.
pub(super) fn preferred_wait(headers: &HeaderMap, max_secs: u64) -> Option<StdDuration> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .filter_map(|pref| {
            let (name, value) = pref.trim().split_once('=')?;
            (name.trim().eq_ignore_ascii_case("wait"))
                .then(|| value.trim().trim_matches('"').parse::<u64>().ok())
                .flatten()
        })
        .next()
        .map(|secs| StdDuration::from_secs(secs.min(max_secs)))
}

/// Reads a booking, or waits up to `wait` for it to satisfy `done`.
pub(super) async fn await_booking(
    state: &AppState,
    id: Uuid,
    wait: StdDuration,
    done: impl Fn(&Booking) -> bool,
) -> Result<Option<Booking>, ApiError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Subscribe before reading so a decision in between still wakes us.
        let subscription = state.outcomes.subscribe(id);
        let booking = load(state, id).await?;
        if let Some(booking) = booking.filter(|b| done(b)) {
            return Ok(Some(booking));
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        // Re-read at least every 250 ms in case a notification was lost.
        subscription
            .wait((deadline - now).min(StdDuration::from_millis(250)))
            .await;
    }
}

fn is_decided(b: &Booking) -> bool {
    b.status != "pending"
}

/// The answer once a new booking (create or reschedule) is decided, or 202 meanwhile.
fn decided_response(
    booking: Option<Booking>,
    accepted: Accepted,
    waited: Option<StdDuration>,
) -> Response {
    let applied = waited.map(|w| {
        [(
            HeaderName::from_static("preference-applied"),
            format!("wait={}", w.as_secs()),
        )]
    });
    let location = [(
        header::LOCATION,
        format!("/bookings/{}", accepted.booking_id),
    )];
    match booking {
        Some(b) if b.status == "confirmed" => {
            (StatusCode::CREATED, location, applied, Json(b)).into_response()
        }
        Some(b) if b.status == "rejected" || b.status == "cancelled" => {
            let message = b
                .reason_message
                .clone()
                .unwrap_or_else(|| "The booking was not confirmed.".into());
            let code = b.reason_code.clone().unwrap_or_default();
            let body = error_body(
                "booking_rejected",
                &message,
                Some(ErrorDetails::Rejection(Rejection {
                    reason_code: code,
                    booking: Box::new(b),
                })),
            );
            (StatusCode::CONFLICT, location, applied, Json(body)).into_response()
        }
        _ => (StatusCode::ACCEPTED, location, applied, Json(accepted)).into_response(),
    }
}

/// Request a booking. Answers 202 `pending`; with `Prefer: wait=N` (N ≤ 30) answers the
/// outcome when it comes in time: 201 confirmed or 409 rejected with the reason.
/// Patients book for themselves; secretaries and admins for anyone.
///
/// Beyond the schema: `start` must be in the future, within the booking horizon and on a
/// whole minute (else 422); a `service_id` must name an active service, and then sets the
/// duration (a patient who also gives `duration_minutes` gets 422; staff may), while without
/// one `duration_minutes` is required (else 422); the patient may hold only so many future
/// bookings (else 409 `too_many_bookings`, with `details.limit`); a user (admins excepted) may
/// send only so many booking commands a second (else 429 with `Retry-After`). Whether the slot
/// is free, within the doctor's working hours at that center and not during their time off,
/// whether the doctor offers the service, and whether the doctor, patient and center exist
/// and are active is decided after acceptance: the booking is then `rejected` with a
/// `reason_code`.
///
/// With an `Idempotency-Key`, a retry of the same request answers the first one's outcome
/// with the same booking id: 201 or 409 as first answered; a first 202 as the booking is now
/// (202 pending, 201 or 409 once decided). The same key with another body is 422
/// `idempotency_key_reused`; a retry while the first request is still running is 409
/// `idempotency_key_in_use`.
#[utoipa::path(post, path = "/bookings", tag = "bookings", security(("bearer" = [])),
    request_body = NewBooking,
    params(("Prefer" = Option<String>, Header, description = "`wait=N`: wait up to N seconds for the outcome"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Any 1–255 visible ASCII characters, new for each intended action (e.g. a UUID). A retry with the same key and the same request answers the first one's outcome (header `Idempotent-Replayed: true`); keys are kept 24 hours per user")),
    responses(
        (status = 202, description = "Accepted, not decided yet", body = Accepted),
        (status = 201, description = "Confirmed (Prefer: wait)", body = Booking),
        (status = 403, description = "Doctors cannot book; patients book only for themselves", body = ErrorBody),
        (status = 409, description = "Rejected (Prefer: wait, `booking_rejected`), `too_many_bookings`: the patient already holds the most future bookings allowed (`details.limit`), or `idempotency_key_in_use`: a request with this Idempotency-Key is still in flight", body = ErrorBody),
        (status = 422, description = "Invalid fields, e.g. a start that is not in the future, beyond the booking horizon or not on a whole minute, an unknown or inactive `service_id`, `duration_minutes` missing without a service or given by a patient with one; or `idempotency_key_reused`: the Idempotency-Key was used for a different request", body = ErrorBody),
        (status = 429, description = "Too many booking commands from this user; retry after `Retry-After` seconds", body = ErrorBody),
    ))]
async fn create_booking(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppJson(body): AppJson<NewBooking>,
) -> Result<Response, ApiError> {
    user.require(BOOKERS)?;
    if user.role == Role::Patient && user.patient_id != Some(body.patient_id) {
        return Err(ApiError::Forbidden);
    }
    let key = idempotency::Key::from_headers(&headers, user.user_id, "create", &body)?;
    if let Some(key) = &key
        && let Some(prior) = idempotency::lookup(&state, key).await?
    {
        return replay_new(&state, prior).await;
    }
    limit_rate(&state, &user)?;
    let service = ServiceTerms::of(&state.pool, body.service_id).await?;
    let request = BookingRequest::parse(
        body,
        Utc::now(),
        SlotRules::from_settings(&state.settings),
        service,
        Caller::of(&user),
    )
    .map_err(ApiError::Validation)?;
    let wait = preferred_wait(&headers, state.settings.api.max_wait_secs);
    let booking_id = Uuid::new_v4();
    let span = tracing::info_span!("create_booking", booking_id = %booking_id);
    request_new(&state, &user, booking_id, &request, wait, key.as_ref())
        .instrument(span)
        .await
}

/// Records and publishes the new booking `booking_id` of `request`, waits up to `wait` for its
/// decision and answers as `POST /bookings` does (202, or 201/409 once decided).
pub(super) async fn request_new(
    state: &AppState,
    user: &AuthUser,
    booking_id: Uuid,
    request: &BookingRequest,
    wait: Option<StdDuration>,
    key: Option<&idempotency::Key>,
) -> Result<Response, ApiError> {
    accept_new(
        state,
        user,
        booking_id,
        request,
        BookingCommandKind::Create,
        None,
        key,
    )
    .await?;
    let booking = match wait {
        Some(wait) => await_booking(state, booking_id, wait, is_decided).await?,
        None => None,
    };
    let accepted = Accepted {
        booking_id,
        status: "pending".into(),
        previous_booking_id: None,
    };
    Ok(answer(state, key, decided_response(booking, accepted, wait)).await)
}

/// Records a new pending booking, then publishes the command that decides it. The row comes
/// first so a GET right after the 202 finds it; with an Idempotency-Key, the key is claimed in
/// the row's transaction.
async fn accept_new(
    state: &AppState,
    user: &AuthUser,
    booking_id: Uuid,
    request: &BookingRequest,
    kind: BookingCommandKind,
    previous_booking_id: Option<Uuid>,
    key: Option<&idempotency::Key>,
) -> Result<(), ApiError> {
    // Refused before anything is written while Kafka is known to be away.
    if !state.broker.is_up() {
        return Err(broker_unreachable());
    }
    let command_id = Uuid::new_v4();
    let requested_at = Utc::now();
    let pending = NewAppointment {
        id: booking_id,
        command_id,
        doctor_id: request.doctor_id,
        patient_id: request.patient_id,
        center_id: request.center_id,
        starts_at: request.starts_at,
        ends_at: request.ends_at,
        reason: request.reason.as_deref(),
        previous_booking_id,
        requested_by: Some(user.user_id),
        requested_at,
        service_id: request.service_id,
    };
    super::timed("pending_insert", insert_within_cap(state, &pending, key)).await?;

    let command = BookingCommand {
        command_id: command_id.to_string(),
        kind,
        booking_id: booking_id.to_string(),
        doctor_id: request.doctor_id.to_string(),
        patient_id: Some(request.patient_id.to_string()),
        center_id: Some(request.center_id.to_string()),
        starts_at: Some(request.starts_at.timestamp_millis()),
        ends_at: Some(request.ends_at.timestamp_millis()),
        reason: request.reason.clone(),
        previous_booking_id: previous_booking_id.map(|id| id.to_string()),
        requested_by: Some(user.user_id.to_string()),
        requested_at: requested_at.timestamp_millis(),
        service_id: request.service_id.map(|id| id.to_string()),
    };
    if let Err(err) = super::timed("publish", publish(state, &command)).await {
        close_unpublished(state, booking_id).await;
        if let Some(key) = key {
            idempotency::release(state, key, false).await;
        }
        return Err(err);
    }
    let kind = if previous_booking_id.is_some() {
        "reschedule"
    } else {
        "create"
    };
    metrics::counter!("citaflow_api_bookings_accepted_total", "kind" => kind).increment(1);
    tracing::info!(kind, "booking accepted");
    Ok(())
}

/// Records the answer under the request's Idempotency-Key, if it has one.
pub(super) async fn answer(
    state: &AppState,
    key: Option<&idempotency::Key>,
    response: Response,
) -> Response {
    match key {
        Some(key) => idempotency::record(state, key, response).await,
        None => response,
    }
}

/// A create or reschedule retried with its Idempotency-Key, same booking id: a decided first
/// answer (201, 409) as it was; a first 202, or a first request that died before answering,
/// as the booking is now (202 while pending, 201 or 409 once decided; the processor's pending
/// sweep closes a booking whose command never reached Kafka).
async fn replay_new(state: &AppState, prior: Prior) -> Result<Response, ApiError> {
    let response = match prior {
        Prior::InFlight {
            abandoned: false, ..
        } => return Err(idempotency::in_use()),
        Prior::Answered {
            booking_id,
            status,
            body,
        } if status != StatusCode::ACCEPTED => {
            let location = [(header::LOCATION, format!("/bookings/{booking_id}"))];
            (status, location, Json(body)).into_response()
        }
        Prior::Answered { booking_id, .. } | Prior::InFlight { booking_id, .. } => {
            let booking = load(state, booking_id).await?;
            let accepted = Accepted {
                booking_id,
                status: "pending".into(),
                previous_booking_id: booking.as_ref().and_then(|b| b.previous_booking_id),
            };
            decided_response(booking.filter(is_decided), accepted, None)
        }
    };
    Ok(idempotency::replayed(response))
}

/// A cancel retried with its Idempotency-Key: the first answer, a 202 as 200 once the booking
/// is cancelled.
async fn replay_cancel(state: &AppState, prior: Prior) -> Result<Response, ApiError> {
    let response = match prior {
        Prior::InFlight { .. } => return Err(idempotency::in_use()),
        Prior::Answered {
            booking_id,
            status: StatusCode::ACCEPTED,
            body,
        } => match load(state, booking_id)
            .await?
            .filter(|b| b.status == "cancelled")
        {
            Some(b) => (StatusCode::OK, Json(b)).into_response(),
            None => (StatusCode::ACCEPTED, Json(body)).into_response(),
        },
        Prior::Answered { status, body, .. } => (status, Json(body)).into_response(),
    };
    Ok(idempotency::replayed(response))
}

/// Takes a booking command from `user`'s token bucket, or refuses it with 429. Admins (the
/// operators, imports and the load generator) are not limited.
pub(super) fn limit_rate(state: &AppState, user: &AuthUser) -> Result<(), ApiError> {
    if user.role == Role::Admin {
        return Ok(());
    }
    state
        .booking_limiter
        .check(user.user_id)
        .map_err(|retry_after_secs| {
            metrics::counter!("citaflow_api_booking_commands_limited_total").increment(1);
            ApiError::TooManyRequests { retry_after_secs }
        })
}

/// Namespace of the advisory locks that serialize one patient's new bookings.
const PATIENT_BOOKINGS_LOCK: i32 = 0x0B00_C0DE;

/// Writes the pending row unless the patient already holds the most future bookings allowed
/// (`api.max_future_bookings_per_patient`; a reschedule does not count the booking it moves).
/// The count and the insert run under a per-patient advisory lock, so concurrent requests of
/// one patient are counted one after another and the cap is exact, not merely likely.
///
/// An Idempotency-Key is claimed in the same transaction, which then commits durably: the
/// key row and the pending row exist together or not at all, so a retry never makes a second
/// booking (a pending row alone may be lost in a crash; the processor recreates it from its
/// command, but a lost key would let the retry book again).
async fn insert_within_cap(
    state: &AppState,
    pending: &NewAppointment<'_>,
    key: Option<&idempotency::Key>,
) -> Result<(), ApiError> {
    let cap = state.settings.api.max_future_bookings_per_patient;
    if cap == 0 && key.is_none() {
        store::insert_pending(&state.pool, pending).await?;
        return Ok(());
    }
    let mut tx = state.pool.begin().await?;
    if let Some(key) = key {
        idempotency::claim(&mut tx, state, key, pending.id, false).await?;
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2::text))")
        .bind(PATIENT_BOOKINGS_LOCK)
        .bind(pending.patient_id)
        .execute(&mut *tx)
        .await?;
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM appointments
          WHERE patient_id = $1 AND status IN ('pending', 'confirmed') AND starts_at > now()
            AND id IS DISTINCT FROM $2",
    )
    .bind(pending.patient_id)
    .bind(pending.previous_booking_id)
    .fetch_one(&mut *tx)
    .await?;
    if cap > 0 && held >= i64::from(cap) {
        return Err(ApiError::LimitReached {
            code: "too_many_bookings",
            message: format!(
                "This patient already has {held} upcoming bookings, the most allowed is {cap}: cancel one first."
            ),
            limit: u64::from(cap),
        });
    }
    store::insert_pending(&mut *tx, pending).await?;
    if key.is_some() {
        sqlx::query("SELECT set_config('synchronous_commit', 'on', true)")
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Produces a command keyed by its doctor, so one doctor's commands stay in order.
pub(super) async fn publish(state: &AppState, command: &BookingCommand) -> Result<(), ApiError> {
    let payload = state.commands.encode(command).await?;
    let record = FutureRecord::to(&state.settings.topics.requests)
        .key(command.doctor_id.as_bytes())
        .payload(&payload);
    // Subscribe first, so an outage seen while the produce waits is not missed.
    let went_down = state.broker.went_down();
    tokio::pin!(went_down);
    if !state.broker.is_up() {
        return Err(broker_unreachable());
    }
    tokio::select! {
        sent = state.producer.send(record, std::time::Duration::from_secs(5)) => {
            sent.map_err(|(err, _)| {
                ApiError::Unavailable(anyhow::anyhow!("producing command: {err}"))
            })?;
        }
        () = &mut went_down => return Err(broker_unreachable()),
    }
    Ok(())
}

fn broker_unreachable() -> ApiError {
    ApiError::Unavailable(anyhow::anyhow!("Kafka is unreachable"))
}

/// Closes a booking whose command never reached Kafka, unless it was decided meanwhile.
async fn close_unpublished(state: &AppState, booking_id: Uuid) {
    if let Err(err) = store::close_not_accepted(&state.pool, booking_id, Utc::now()).await {
        tracing::error!(error = %err, %booking_id, "could not close an unpublished booking");
    }
}

/// A booking as clients see it.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
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
    /// `attended` or `no_show` once staff recorded it (`POST /bookings/{id}/attendance`); the
    /// status stays `confirmed`.
    #[schema(schema_with = super::attendance::attendance_schema)]
    pub attendance: Option<String>,
    /// The kind of visit, when the request named one.
    pub service_id: Option<Uuid>,
}

pub const BOOKING_COLUMNS: &str = "id, status, doctor_id, patient_id, center_id, starts_at,
    ends_at, reason, reason_code, reason_message, previous_booking_id, requested_at, decided_at,
    cancelled_at, attendance, service_id";

pub(super) async fn load(state: &AppState, id: Uuid) -> Result<Option<Booking>, ApiError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {BOOKING_COLUMNS} FROM appointments WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&state.pool)
    .await?)
}

/// A booking by id. Patients and doctors see only their own (others answer 404).
#[utoipa::path(get, path = "/bookings/{id}", tag = "bookings", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Booking),
        (status = 404, description = "No such booking, or not the caller's", body = ErrorBody)))]
async fn get_booking(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<Booking>, ApiError> {
    load(&state, id)
        .await?
        .filter(|b| visible_to(&user, b))
        .map(Json)
        .ok_or(ApiError::NotFound("booking"))
}

/// Filters of `GET /bookings`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BookingFilter {
    pub doctor_id: Option<Uuid>,
    pub center_id: Option<Uuid>,
    pub patient_id: Option<Uuid>,
    /// `pending`, `confirmed`, `rejected` or `cancelled`.
    #[param(schema_with = booking_status)]
    pub status: Option<String>,
    /// Appointments starting at or after this time (RFC 3339) or day (`YYYY-MM-DD`, UTC).
    #[param(schema_with = date_or_time)]
    pub from: Option<String>,
    /// Appointments starting before this time (RFC 3339) or the end of this day.
    #[param(schema_with = date_or_time)]
    pub to: Option<String>,
    /// `starts_at` (default) or `-starts_at`.
    #[param(schema_with = booking_sort)]
    pub sort: Option<String>,
    /// 1-based page number (default 1).
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    /// Items per page (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub per_page: Option<i64>,
}

/// The states of a booking, as `status` filters take them.
const STATUSES: [&str; 4] = ["pending", "confirmed", "rejected", "cancelled"];
/// The orders of `GET /bookings`.
const SORTS: [&str; 2] = ["starts_at", "-starts_at"];

fn booking_status() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(STATUSES))
        .build()
}

fn booking_sort() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(SORTS))
        .build()
}

/// What [`parse_bound`] takes: a day or an RFC 3339 time.
fn date_or_time() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::{KnownFormat, ObjectBuilder, SchemaFormat, schema::Type};
    let string = |format| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
            .build()
    };
    utoipa::openapi::schema::OneOfBuilder::new()
        .item(string(KnownFormat::Date))
        .item(string(KnownFormat::DateTime))
        .build()
        .into()
}

/// `2026-12-01` or an RFC 3339 time; `end_of_day` moves a bare day to its end.
fn parse_bound(field: &str, value: &str, end_of_day: bool) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    match chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        Ok(day) => {
            let day = if end_of_day {
                day.succ_opt().unwrap_or(day)
            } else {
                day
            };
            Ok(day.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
        }
        Err(_) => Err(ApiError::validation(
            field,
            "must be a date (YYYY-MM-DD) or an RFC 3339 time",
        )),
    }
}

/// List bookings, paginated, sorted by start time. Doctors see only their agenda, patients
/// only their own bookings; secretaries and admins filter by doctor, center, patient, status
/// and dates.
#[utoipa::path(get, path = "/bookings", tag = "bookings", security(("bearer" = [])),
    params(BookingFilter, ("If-None-Match" = Option<String>, Header, description = "The `ETag` of an earlier answer: 304 while the page is unchanged")),
    responses((status = 200, body = Page<Booking>, headers(("ETag" = String, description = "Weak validator of this page"))),
        (status = 304, description = "Unchanged since the `ETag` in `If-None-Match`", headers(("ETag" = String))),
        (status = 403, description = "A doctor or patient filtered by someone else", body = ErrorBody)))]
async fn list_bookings(
    State(state): State<AppState>,
    user: AuthUser,
    headers: axum::http::HeaderMap,
    AppQuery(mut filter): AppQuery<BookingFilter>,
) -> Result<axum::response::Response, ApiError> {
    match user.role {
        Role::Admin | Role::Secretary => {}
        Role::Doctor => {
            if filter.doctor_id.is_some_and(|d| Some(d) != user.doctor_id) {
                return Err(ApiError::Forbidden);
            }
            filter.doctor_id = Some(user.doctor_id.ok_or(ApiError::Forbidden)?);
        }
        Role::Patient => {
            if filter
                .patient_id
                .is_some_and(|p| Some(p) != user.patient_id)
            {
                return Err(ApiError::Forbidden);
            }
            filter.patient_id = Some(user.patient_id.ok_or(ApiError::Forbidden)?);
        }
    }
    let params = PageParams {
        page: filter.page,
        per_page: filter.per_page,
    };
    let from = filter
        .from
        .as_deref()
        .map(|v| parse_bound("from", v, false))
        .transpose()?;
    let to = filter
        .to
        .as_deref()
        .map(|v| parse_bound("to", v, true))
        .transpose()?;
    if let Some(status) = &filter.status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(ApiError::validation(
            "status",
            "must be pending, confirmed, rejected or cancelled",
        ));
    }
    // Ties broken by id, so pages are stable.
    let order_by = match filter.sort.as_deref() {
        None | Some("starts_at") => "starts_at, id",
        Some("-starts_at") => "starts_at DESC, id DESC",
        Some(_) => {
            return Err(ApiError::validation(
                "sort",
                "must be starts_at or -starts_at",
            ));
        }
    };
    let conditions = |qb: &mut QueryBuilder<Postgres>| {
        qb.push(" WHERE true");
        if let Some(v) = filter.doctor_id {
            qb.push(" AND doctor_id = ").push_bind(v);
        }
        if let Some(v) = filter.center_id {
            qb.push(" AND center_id = ").push_bind(v);
        }
        if let Some(v) = filter.patient_id {
            qb.push(" AND patient_id = ").push_bind(v);
        }
        if let Some(v) = &filter.status {
            qb.push(" AND status = ").push_bind(v.clone());
        }
        if let Some(v) = from {
            qb.push(" AND starts_at >= ").push_bind(v);
        }
        if let Some(v) = to {
            qb.push(" AND starts_at < ").push_bind(v);
        }
    };
    pagination::fetch(
        &state.pool,
        "appointments",
        BOOKING_COLUMNS,
        conditions,
        order_by,
        params,
    )
    .await
    .map(|page: Page<Booking>| super::etag::json(&headers, &page))
}

/// Whether a booking may still be cancelled or moved: pending, or confirmed with no
/// attendance recorded (the processor holds the same rule, `Existing::is_active`).
fn is_active(booking: &Booking) -> bool {
    matches!(booking.status.as_str(), "pending" | "confirmed") && booking.attendance.is_none()
}

/// Why a booking cannot be cancelled or moved any more.
fn not_active(booking: &Booking, action: &str) -> ApiError {
    if booking.attendance.is_some() {
        return ApiError::conflict(
            "attendance_recorded",
            format!("The visit is over (its attendance is recorded); it cannot be {action}."),
        );
    }
    match booking.status.as_str() {
        "cancelled" => {
            ApiError::conflict("already_cancelled", "This booking is already cancelled.")
        }
        _ => ApiError::conflict(
            "not_active",
            format!(
                "This booking is {}; only pending or confirmed bookings can be {action}.",
                booking.status
            ),
        ),
    }
}

/// Cancel a pending or confirmed booking (patients their own; secretaries, admins any).
/// Answers 202, or with `Prefer: wait=N` 200 with the cancelled booking; 409 when it is
/// already cancelled or no longer active. With an `Idempotency-Key`, a retry answers the first
/// answer (a first 202 as 200 once the booking is cancelled); 422 `idempotency_key_reused`
/// and 409 `idempotency_key_in_use` as for a new booking.
#[utoipa::path(post, path = "/bookings/{id}/cancel", tag = "bookings", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("Prefer" = Option<String>, Header, description = "`wait=N`"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Any 1–255 visible ASCII characters, new for each intended action (e.g. a UUID). A retry with the same key and the same request answers the first one's outcome (header `Idempotent-Replayed: true`); keys are kept 24 hours per user")),
    responses((status = 202, body = Accepted), (status = 200, body = Booking),
        (status = 403, description = "Doctors cannot cancel", body = ErrorBody),
        (status = 404, description = "No such booking, or not the caller's", body = ErrorBody),
        (status = 409, description = "Already cancelled, no longer active, `attendance_recorded` (the visit is over), or `idempotency_key_in_use`", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the Idempotency-Key was used for a different request", body = ErrorBody),
        (status = 429, description = "Too many booking commands from this user; retry after `Retry-After` seconds", body = ErrorBody)))]
async fn cancel_booking(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
) -> Result<Response, ApiError> {
    user.require(BOOKERS)?;
    let key = idempotency::Key::from_headers(&headers, user.user_id, &format!("cancel {id}"), &())?;
    limit_rate(&state, &user)?;
    let booking = load(&state, id)
        .await?
        .filter(|b| visible_to(&user, b))
        .ok_or(ApiError::NotFound("booking"))?;
    // A cancel whose first request died unanswered is sent again: cancelling is idempotent.
    let mut take_over = false;
    if let Some(key) = &key {
        match idempotency::lookup(&state, key).await? {
            None => {}
            Some(Prior::InFlight {
                abandoned: true, ..
            }) => take_over = true,
            Some(prior) => return replay_cancel(&state, prior).await,
        }
    }
    if !is_active(&booking) {
        return Err(not_active(&booking, "cancelled"));
    }
    let wait = preferred_wait(&headers, state.settings.api.max_wait_secs);
    let span = tracing::info_span!("cancel_booking", booking_id = %id);
    async {
        let command = BookingCommand {
            command_id: Uuid::new_v4().to_string(),
            kind: BookingCommandKind::Cancel,
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
            service_id: booking.service_id.map(|id| id.to_string()),
        };
        send_about_existing(
            &state,
            key.as_ref(),
            take_over,
            &command,
            &booking,
            wait,
            "cancel",
            |b| b.status == "cancelled",
        )
        .await
    }
    .instrument(span)
    .await
}

/// Sends a command about an existing booking (a cancel, an attendance mark) and answers it:
/// the Idempotency-Key is claimed before the publish and released if the publish fails; with
/// `Prefer: wait`, 200 with the booking once `done` holds, else 202; the answer is recorded
/// under the key.
#[allow(clippy::too_many_arguments)]
pub(super) async fn send_about_existing(
    state: &AppState,
    key: Option<&idempotency::Key>,
    take_over: bool,
    command: &BookingCommand,
    booking: &Booking,
    wait: Option<StdDuration>,
    kind: &'static str,
    done: impl Fn(&Booking) -> bool,
) -> Result<Response, ApiError> {
    if let Some(key) = key {
        idempotency::claim_alone(state, key, booking.id, take_over).await?;
    }
    if let Err(err) = publish(state, command).await {
        if let Some(key) = key {
            idempotency::release(state, key, true).await;
        }
        return Err(err);
    }
    metrics::counter!("citaflow_api_bookings_accepted_total", "kind" => kind).increment(1);
    tracing::info!(kind, "command accepted");
    let decided = match wait {
        Some(wait) => await_booking(state, booking.id, wait, done).await?,
        None => None,
    };
    let applied = wait.map(|w| {
        [(
            HeaderName::from_static("preference-applied"),
            format!("wait={}", w.as_secs()),
        )]
    });
    let response = match decided {
        Some(b) => (StatusCode::OK, applied, Json(b)).into_response(),
        None => {
            let accepted = Accepted {
                booking_id: booking.id,
                status: booking.status.clone(),
                previous_booking_id: None,
            };
            (StatusCode::ACCEPTED, applied, Json(accepted)).into_response()
        }
    };
    Ok(answer(state, key, response).await)
}

/// Body of `POST /bookings/{id}/reschedule`: the new time, and optionally another doctor or
/// center.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reschedule {
    pub start: DateTime<Utc>,
    /// Between the configured bounds (`minimum`/`maximum` here); default: the old booking's
    /// duration. The new booking keeps the old one's service; when it has one, only staff
    /// may give a duration (as for a new booking).
    #[serde(default, deserialize_with = "crate::domain::optional_whole_number")]
    pub duration_minutes: Option<i64>,
    pub doctor_id: Option<Uuid>,
    pub center_id: Option<Uuid>,
    #[schema(schema_with = crate::domain::schema::booking_reason)]
    pub reason: Option<String>,
}

/// Move a booking to a new time (and optionally another doctor or center). The old booking is
/// cancelled only when the new slot is confirmed, in the same decision; otherwise it stays and
/// the answer says why. Answers 202 with the new booking id; with `Prefer: wait=N`, 201 or 409.
///
/// Beyond the schema: `start` must be in the future, within the booking horizon and on a
/// whole minute (else 422); the patient's future bookings are capped as for a new booking
/// (the booking being moved does not count) and so is the rate of booking commands (429); the
/// slot is decided after acceptance, as for a new booking. `Idempotency-Key` works as for a
/// new booking (the retry answers the same new booking id).
#[utoipa::path(post, path = "/bookings/{id}/reschedule", tag = "bookings", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("Prefer" = Option<String>, Header, description = "`wait=N`"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Any 1–255 visible ASCII characters, new for each intended action (e.g. a UUID). A retry with the same key and the same request answers the first one's outcome (header `Idempotent-Replayed: true`); keys are kept 24 hours per user")),
    request_body = Reschedule,
    responses((status = 202, body = Accepted), (status = 201, description = "Confirmed (Prefer: wait)", body = Booking),
        (status = 403, description = "Doctors cannot reschedule", body = ErrorBody),
        (status = 404, description = "No such booking, or not the caller's", body = ErrorBody),
        (status = 409, description = "No longer active, the new slot was rejected (Prefer: wait), `too_many_bookings` (`details.limit`), or `idempotency_key_in_use`", body = ErrorBody),
        (status = 422, description = "Invalid fields, e.g. a start that is not in the future, beyond the booking horizon or not on a whole minute; or `idempotency_key_reused`", body = ErrorBody),
        (status = 429, description = "Too many booking commands from this user; retry after `Retry-After` seconds", body = ErrorBody)))]
async fn reschedule_booking(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<Reschedule>,
) -> Result<Response, ApiError> {
    user.require(BOOKERS)?;
    let key =
        idempotency::Key::from_headers(&headers, user.user_id, &format!("reschedule {id}"), &body)?;
    limit_rate(&state, &user)?;
    let old = load(&state, id)
        .await?
        .filter(|b| visible_to(&user, b))
        .ok_or(ApiError::NotFound("booking"))?;
    if let Some(key) = &key
        && let Some(prior) = idempotency::lookup(&state, key).await?
    {
        return replay_new(&state, prior).await;
    }
    if !is_active(&old) {
        return Err(not_active(&old, "rescheduled"));
    }
    // The service moves with the booking, and so does the length agreed for it (a duration
    // staff set stays); whether the service is still offered is the processor's to decide
    // (`service_inactive`, `service_not_offered`), and the old booking then stays.
    let old_minutes = (old.ends_at - old.starts_at).num_minutes();
    let (service, duration) = match old.service_id {
        Some(id) => (
            ServiceTerms::Active {
                id,
                duration_minutes: old_minutes,
            },
            body.duration_minutes,
        ),
        None => (
            ServiceTerms::None,
            Some(body.duration_minutes.unwrap_or(old_minutes)),
        ),
    };
    let request = BookingRequest::parse(
        NewBooking {
            patient_id: old.patient_id,
            doctor_id: body.doctor_id.unwrap_or(old.doctor_id),
            center_id: body.center_id.unwrap_or(old.center_id),
            start: body.start,
            duration_minutes: duration,
            reason: body.reason.or(old.reason.clone()),
            service_id: old.service_id,
        },
        Utc::now(),
        SlotRules::from_settings(&state.settings),
        service,
        Caller::of(&user),
    )
    .map_err(ApiError::Validation)?;
    let wait = preferred_wait(&headers, state.settings.api.max_wait_secs);
    let new_id = Uuid::new_v4();
    let span =
        tracing::info_span!("reschedule_booking", booking_id = %new_id, previous_booking_id = %id);
    async {
        accept_new(
            &state,
            &user,
            new_id,
            &request,
            BookingCommandKind::Reschedule,
            Some(id),
            key.as_ref(),
        )
        .await?;
        let booking = match wait {
            Some(wait) => await_booking(&state, new_id, wait, is_decided).await?,
            None => None,
        };
        let accepted = Accepted {
            booking_id: new_id,
            status: "pending".into(),
            previous_booking_id: Some(id),
        };
        Ok(answer(
            &state,
            key.as_ref(),
            decided_response(booking, accepted, wait),
        )
        .await)
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: SlotRules = SlotRules {
        min_minutes: 5,
        max_minutes: 480,
        horizon_days: 365,
    };

    /// A whole minute `hours` from `now`.
    fn at(now: DateTime<Utc>, hours: i64) -> DateTime<Utc> {
        let t = now + Duration::hours(hours);
        DateTime::from_timestamp(t.timestamp() - t.timestamp() % 60, 0).unwrap()
    }

    #[test]
    fn starts_beyond_the_horizon_or_off_the_minute_are_refused() {
        let now = Utc::now();
        let field_errors =
            |start: DateTime<Utc>| parse(body(start, 30), now).err().unwrap_or_default();
        assert!(field_errors(at(now, 24 * 364)).is_empty());
        let far = field_errors(at(now, 24 * 366));
        assert_eq!(far.len(), 1);
        assert!(far[0].message.contains("365 days"), "{far:?}");
        let year_9999: DateTime<Utc> = "9999-12-31T23:45:00Z".parse().unwrap();
        assert_eq!(field_errors(year_9999)[0].field, "start");
        let seconds = at(now, 2) + Duration::seconds(30);
        assert!(field_errors(seconds)[0].message.contains("whole minute"));
        let fraction = at(now, 2) + Duration::milliseconds(1);
        assert!(field_errors(fraction)[0].message.contains("whole minute"));
        // chrono reads a leap second as 59 s plus a second's worth of nanoseconds.
        let day = (now + Duration::days(2)).format("%Y-%m-%d");
        let leap: DateTime<Utc> =
            serde_json::from_value(serde_json::json!(format!("{day}T23:59:60Z"))).unwrap();
        let errors = field_errors(leap);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains("whole minute"));
    }

    fn body(start: DateTime<Utc>, minutes: i64) -> NewBooking {
        NewBooking {
            patient_id: Uuid::new_v4(),
            doctor_id: Uuid::new_v4(),
            center_id: Uuid::new_v4(),
            start,
            duration_minutes: Some(minutes),
            reason: Some("  checkup ".into()),
            service_id: None,
        }
    }

    /// A request without a service, as staff send it.
    fn parse(body: NewBooking, now: DateTime<Utc>) -> Result<BookingRequest, Vec<FieldError>> {
        BookingRequest::parse(body, now, RULES, ServiceTerms::None, Caller::Staff)
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_service_sets_the_duration_and_only_staff_may_change_it() {
        let now = Utc::now();
        let start = at(now, 2);
        let id = Uuid::new_v4();
        let cleaning = ServiceTerms::Active {
            id,
            duration_minutes: 45,
        };
        let mut named = body(start, 30);
        named.service_id = Some(id);
        named.duration_minutes = None;
        for caller in [Caller::Staff, Caller::Patient] {
            let r =
                BookingRequest::parse(named_copy(&named), now, RULES, cleaning, caller).unwrap();
            assert_eq!(r.ends_at - r.starts_at, Duration::minutes(45));
            assert_eq!(r.service_id, Some(id));
        }
        named.duration_minutes = Some(60);
        let staff =
            BookingRequest::parse(named_copy(&named), now, RULES, cleaning, Caller::Staff).unwrap();
        assert_eq!(staff.ends_at - staff.starts_at, Duration::minutes(60));
        let patient =
            BookingRequest::parse(named_copy(&named), now, RULES, cleaning, Caller::Patient)
                .unwrap_err();
        assert_eq!(fields(&patient), ["duration_minutes"]);
        // Staff still meet the bounds.
        named.duration_minutes = Some(481);
        let long = BookingRequest::parse(named_copy(&named), now, RULES, cleaning, Caller::Staff)
            .unwrap_err();
        assert_eq!(fields(&long), ["duration_minutes"]);
    }

    fn named_copy(b: &NewBooking) -> NewBooking {
        NewBooking {
            reason: b.reason.clone(),
            ..*b
        }
    }

    #[test]
    fn without_a_usable_service_the_request_says_why() {
        let now = Utc::now();
        let mut b = body(at(now, 2), 30);
        b.duration_minutes = None;
        let missing = parse(named_copy(&b), now).unwrap_err();
        assert_eq!(fields(&missing), ["duration_minutes"]);
        assert!(missing[0].message.contains("required"), "{missing:?}");
        b.service_id = Some(Uuid::new_v4());
        for terms in [ServiceTerms::Unknown, ServiceTerms::Inactive] {
            let errors = BookingRequest::parse(named_copy(&b), now, RULES, terms, Caller::Patient)
                .unwrap_err();
            assert_eq!(fields(&errors), ["service_id"], "{terms:?}");
        }
    }

    #[test]
    fn a_valid_request_gets_its_end_time() {
        let now = Utc::now();
        let start = at(now, 2);
        let r = parse(body(start, 30), now).unwrap();
        assert_eq!(r.ends_at - r.starts_at, Duration::minutes(30));
        assert_eq!(r.reason.as_deref(), Some("checkup"));
    }

    #[test]
    fn past_start_and_bad_duration_are_both_reported() {
        let now = Utc::now();
        let errors = parse(body(at(now, -1), 0), now).unwrap_err();
        assert_eq!(fields(&errors), ["start", "duration_minutes"]);
    }

    #[test]
    fn prefer_wait_is_parsed_and_capped() {
        let mut h = HeaderMap::new();
        assert_eq!(preferred_wait(&h, 30), None);
        h.insert("prefer", "respond-async, wait=5".parse().unwrap());
        assert_eq!(preferred_wait(&h, 30), Some(StdDuration::from_secs(5)));
        h.insert("prefer", "wait=120".parse().unwrap());
        assert_eq!(preferred_wait(&h, 30), Some(StdDuration::from_secs(30)));
        h.insert("prefer", "wait=soon".parse().unwrap());
        assert_eq!(preferred_wait(&h, 30), None);
    }

    #[test]
    fn overlong_reason_is_refused() {
        let now = Utc::now();
        let mut b = body(at(now, 1), 30);
        b.reason = Some("x".repeat(501));
        let errors = parse(b, now).unwrap_err();
        assert_eq!(errors[0].field, "reason");
    }
}
