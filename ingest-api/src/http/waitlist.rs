//! The waitlist: a patient (or a secretary for them) waits for a service at a center, with one
//! doctor or any, within a range of dates. booking-processor's waitlist worker offers freed
//! slots to the entries in the order they joined, one patient at a time, each held for
//! `processor.waitlist_hold_secs`; the patient takes one here with a normal booking command
//! (every rule and the no-overlap constraint apply), declines it, or lets the hold lapse and
//! the next patient is offered it. An entry closes when its patient books a visit it asked for.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, QueryBuilder};
use tracing::Instrument;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    auth::{AuthUser, Role},
    bookings::{self, Accepted, Booking, BookingRequest},
    error::{ApiError, AppJson, AppPath, AppQuery, ErrorBody, FieldError},
    pagination::{self, Page, PageParams},
};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(join_waitlist, list_entries))
        .routes(routes!(get_entry, leave_waitlist))
        .routes(routes!(get_offer))
        .routes(routes!(accept_offer))
        .routes(routes!(decline_offer))
}

/// Who may use the waitlist: patients for themselves, admins and secretaries for anyone.
const WAITERS: &[Role] = &[Role::Admin, Role::Secretary, Role::Patient];
/// Longest range of dates one entry may wait over.
pub const MAX_RANGE_DAYS: i64 = 92;
/// Most entries one patient may have waiting at once.
pub const MAX_WAITING_PER_PATIENT: u64 = 10;

/// Body of `POST /waitlist`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEntry {
    /// The patient who waits. A patient may omit it (themselves) and may not name another;
    /// staff must give it.
    #[serde(default)]
    pub patient_id: Option<Uuid>,
    /// The kind of visit wanted (`GET /services`).
    pub service_id: Uuid,
    pub center_id: Uuid,
    /// One doctor; omitted or null: any doctor of the center who offers the service.
    #[serde(default)]
    pub doctor_id: Option<Uuid>,
    /// First local date at the center the patient could come (`YYYY-MM-DD`).
    pub from: NaiveDate,
    /// Last such date, at most 92 days after `from`.
    pub to: NaiveDate,
}

/// A place on the waitlist.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Entry {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub service_id: Uuid,
    pub center_id: Uuid,
    /// Null: any doctor.
    pub doctor_id: Option<Uuid>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// `waiting`; `booked` (a visit it asked for was confirmed: `booking_id`), `left` (taken off
    /// the list), `lapsed` (its dates went by).
    pub status: String,
    pub booking_id: Option<Uuid>,
    /// The offer held for this entry now, if any (`GET /waitlist/offers/{id}`).
    pub offer_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

const ENTRY_COLUMNS: &str = "id, patient_id, service_id, center_id, doctor_id,
    date_from AS \"from\", date_to AS \"to\", status, booking_id,
    (SELECT f.id FROM waitlist_offers f
      WHERE f.entry_id = waitlist_entries.id AND f.status = 'open') AS offer_id,
    created_at, closed_at";

/// A freed slot offered to a waiting patient.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Offer {
    pub id: Uuid,
    pub entry_id: Uuid,
    pub patient_id: Uuid,
    pub doctor_id: Uuid,
    pub center_id: Uuid,
    pub service_id: Uuid,
    /// The visit offered.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Until when the slot is held for the patient; then it is offered to the next one.
    pub hold_until: DateTime<Utc>,
    /// `open` (held: accept or decline it); `accepted` (its booking, `booking_id`, is being
    /// decided), `taken` (confirmed), `failed` (the booking was rejected, e.g. someone else
    /// booked the time first); `declined`, `expired` (the hold lapsed).
    pub status: String,
    pub booking_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

const OFFER_COLUMNS: &str = "id, entry_id, patient_id, doctor_id, center_id, service_id,
    starts_at AS start, ends_at AS \"end\", hold_until, status, booking_id, created_at";

fn may_see(user: &AuthUser, patient_id: Uuid) -> bool {
    user.is_staff() || (user.role == Role::Patient && user.patient_id == Some(patient_id))
}

async fn load_entry(state: &AppState, id: Uuid) -> Result<Option<Entry>, ApiError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ENTRY_COLUMNS} FROM waitlist_entries WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&state.pool)
    .await?)
}

async fn load_offer(state: &AppState, id: Uuid) -> Result<Option<Offer>, ApiError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {OFFER_COLUMNS} FROM waitlist_offers WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&state.pool)
    .await?)
}

/// The entry `id` if `user` may see it (its patient, staff), else 404.
async fn visible_entry(state: &AppState, user: &AuthUser, id: Uuid) -> Result<Entry, ApiError> {
    load_entry(state, id)
        .await?
        .filter(|e| may_see(user, e.patient_id))
        .ok_or(ApiError::NotFound("waitlist entry"))
}

/// The offer `id` if `user` may see it (its patient, staff), else 404.
async fn visible_offer(state: &AppState, user: &AuthUser, id: Uuid) -> Result<Offer, ApiError> {
    load_offer(state, id)
        .await?
        .filter(|o| may_see(user, o.patient_id))
        .ok_or(ApiError::NotFound("waitlist offer"))
}

/// The checks of a new entry that need no database: the dates.
fn check_dates(body: &NewEntry, today: NaiveDate, horizon_days: u32) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if body.to < body.from {
        errors.push(FieldError::new("to", "must not be before `from`"));
    } else if (body.to - body.from).num_days() > MAX_RANGE_DAYS {
        errors.push(FieldError::new(
            "to",
            format!("must be at most {MAX_RANGE_DAYS} days after `from`"),
        ));
    }
    // A day of slack either side: the center's local date may differ from UTC's.
    if body.to < today - Duration::days(1) {
        errors.push(FieldError::new("to", "must not be in the past"));
    }
    if body.from > today + Duration::days(i64::from(horizon_days)) {
        errors.push(FieldError::new(
            "from",
            format!("must be at most {horizon_days} days ahead (the booking horizon)"),
        ));
    }
    errors
}

/// Join the waitlist. A patient for themselves (`patient_id` omitted or their own), admins and
/// secretaries for any active patient (`patient_id` required); doctors get 403. The service
/// must be active, the center active, and the doctor, if named, active and offering the
/// service (422 with the fields at fault). 409 `already_waiting` when the patient already waits
/// for the same service, center and doctor over overlapping dates; 409 `too_many_entries`
/// past 10 waiting entries. Freed slots are then offered by email and SMS in the order
/// patients joined.
#[utoipa::path(post, path = "/waitlist", tag = "waitlist", security(("bearer" = [])),
    request_body = NewEntry,
    responses((status = 201, body = Entry),
        (status = 403, description = "Doctors cannot join; patients only for themselves", body = ErrorBody),
        (status = 409, description = "`already_waiting` or `too_many_entries`", body = ErrorBody),
        (status = 422, description = "Invalid dates, unknown or inactive service, center, doctor or patient, or a doctor who does not offer the service", body = ErrorBody)))]
async fn join_waitlist(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<NewEntry>,
) -> Result<(StatusCode, Json<Entry>), ApiError> {
    user.require(WAITERS)?;
    let patient_id = match (user.role, body.patient_id) {
        (Role::Patient, None) => user.patient_id.ok_or(ApiError::Forbidden)?,
        (Role::Patient, Some(id)) if user.patient_id == Some(id) => id,
        (Role::Patient, Some(_)) => return Err(ApiError::Forbidden),
        (_, Some(id)) => id,
        (_, None) => return Err(ApiError::validation("patient_id", "is required for staff")),
    };
    let mut errors = check_dates(
        &body,
        Utc::now().date_naive(),
        state.settings.api.booking_horizon_days,
    );
    let (patient, service, center, doctor, offered): (
        Option<bool>,
        Option<bool>,
        Option<bool>,
        Option<bool>,
        bool,
    ) = sqlx::query_as(
        "SELECT (SELECT status = 'ACTIVE' FROM patients WHERE id = $1),
                (SELECT active FROM services WHERE id = $2),
                (SELECT active FROM centers WHERE id = $3),
                (SELECT active FROM doctors WHERE id = $4),
                $4::uuid IS NULL OR EXISTS (SELECT 1 FROM doctor_services
                                             WHERE doctor_id = $4 AND service_id = $2)",
    )
    .bind(patient_id)
    .bind(body.service_id)
    .bind(body.center_id)
    .bind(body.doctor_id)
    .fetch_one(&state.pool)
    .await?;
    let mut check = |field: &str, found: Option<bool>, what: &str| match found {
        None => errors.push(FieldError::new(field, format!("no such {what}"))),
        Some(false) => errors.push(FieldError::new(field, format!("the {what} is not active"))),
        Some(true) => {}
    };
    check("patient_id", patient, "patient");
    check("service_id", service, "service");
    check("center_id", center, "center");
    if body.doctor_id.is_some() {
        check("doctor_id", doctor, "doctor");
        if doctor.is_some() && !offered {
            errors.push(FieldError::new(
                "doctor_id",
                "the doctor does not offer this service",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }

    let mut tx = state.pool.begin().await?;
    // One patient's joins one at a time, so the checks below hold when the row is written.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('waitlist:' || $1::text, 0))")
        .bind(patient_id)
        .execute(&mut *tx)
        .await?;
    let (waiting, overlapping): (i64, bool) = sqlx::query_as(
        "SELECT count(*),
                coalesce(bool_or(service_id = $2 AND center_id = $3
                                 AND doctor_id IS NOT DISTINCT FROM $4
                                 AND date_from <= $6 AND date_to >= $5), false)
           FROM waitlist_entries WHERE patient_id = $1 AND status = 'waiting'",
    )
    .bind(patient_id)
    .bind(body.service_id)
    .bind(body.center_id)
    .bind(body.doctor_id)
    .bind(body.from)
    .bind(body.to)
    .fetch_one(&mut *tx)
    .await?;
    if overlapping {
        return Err(ApiError::conflict(
            "already_waiting",
            "The patient already waits for this service, center and doctor on some of these dates.",
        ));
    }
    if waiting as u64 >= MAX_WAITING_PER_PATIENT {
        return Err(ApiError::LimitReached {
            code: "too_many_entries",
            message: format!(
                "The patient already waits on {MAX_WAITING_PER_PATIENT} waitlist entries, the most allowed."
            ),
            limit: MAX_WAITING_PER_PATIENT,
        });
    }
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO waitlist_entries (id, patient_id, service_id, center_id, doctor_id,
                                       date_from, date_to, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(patient_id)
    .bind(body.service_id)
    .bind(body.center_id)
    .bind(body.doctor_id)
    .bind(body.from)
    .bind(body.to)
    .bind(user.user_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    metrics::counter!("citaflow_api_waitlist_joined_total").increment(1);
    let entry = load_entry(&state, id)
        .await?
        .ok_or(ApiError::NotFound("waitlist entry"))?;
    Ok((StatusCode::CREATED, Json(entry)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EntryFilter {
    /// Staff: one patient's entries (a patient always sees only their own).
    pub patient_id: Option<Uuid>,
    pub center_id: Option<Uuid>,
    pub service_id: Option<Uuid>,
    /// `waiting`, `booked`, `left` or `lapsed`.
    #[param(schema_with = entry_status)]
    pub status: Option<String>,
    /// 1-based page number (default 1).
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    /// Items per page (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub per_page: Option<i64>,
}

const ENTRY_STATUSES: [&str; 4] = ["waiting", "booked", "left", "lapsed"];

fn entry_status() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(ENTRY_STATUSES))
        .build()
}

/// List waitlist entries in the order they joined (the order freed slots are offered in):
/// a patient their own, admins and secretaries everyone's (filterable); doctors get 403.
#[utoipa::path(get, path = "/waitlist", tag = "waitlist", security(("bearer" = [])),
    params(EntryFilter),
    responses((status = 200, body = Page<Entry>),
        (status = 403, description = "Doctors", body = ErrorBody),
        (status = 422, description = "Invalid filter", body = ErrorBody)))]
async fn list_entries(
    State(state): State<AppState>,
    user: AuthUser,
    AppQuery(filter): AppQuery<EntryFilter>,
) -> Result<Json<Page<Entry>>, ApiError> {
    user.require(WAITERS)?;
    if let Some(status) = &filter.status
        && !ENTRY_STATUSES.contains(&status.as_str())
    {
        return Err(ApiError::validation(
            "status",
            format!("must be one of {}", ENTRY_STATUSES.join(", ")),
        ));
    }
    let patient = if user.role == Role::Patient {
        Some(user.patient_id.ok_or(ApiError::Forbidden)?)
    } else {
        filter.patient_id
    };
    let params = PageParams {
        page: filter.page,
        per_page: filter.per_page,
    };
    let conditions = |qb: &mut QueryBuilder<Postgres>| {
        qb.push(" WHERE true");
        if let Some(patient) = patient {
            qb.push(" AND patient_id = ").push_bind(patient);
        }
        if let Some(center) = filter.center_id {
            qb.push(" AND center_id = ").push_bind(center);
        }
        if let Some(service) = filter.service_id {
            qb.push(" AND service_id = ").push_bind(service);
        }
        if let Some(status) = &filter.status {
            qb.push(" AND status = ").push_bind(status.clone());
        }
    };
    pagination::fetch(
        &state.pool,
        "waitlist_entries",
        ENTRY_COLUMNS,
        conditions,
        "created_at, id",
        params,
    )
    .await
    .map(Json)
}

/// One waitlist entry: its patient and staff; anyone else gets 404.
#[utoipa::path(get, path = "/waitlist/{id}", tag = "waitlist", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Entry), (status = 404, body = ErrorBody)))]
async fn get_entry(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<Entry>, ApiError> {
    visible_entry(&state, &user, id).await.map(Json)
}

/// Leave the waitlist: the entry closes `left`, and an offer held for it is declined (the slot
/// goes to the next patient). 409 `not_waiting` once the entry is closed.
#[utoipa::path(delete, path = "/waitlist/{id}", tag = "waitlist", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Entry), (status = 404, body = ErrorBody),
        (status = 409, description = "`not_waiting`", body = ErrorBody)))]
async fn leave_waitlist(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<Entry>, ApiError> {
    let entry = visible_entry(&state, &user, id).await?;
    let mut tx = state.pool.begin().await?;
    let left = sqlx::query(
        "UPDATE waitlist_entries SET status = 'left', closed_at = now()
          WHERE id = $1 AND status = 'waiting'",
    )
    .bind(entry.id)
    .execute(&mut *tx)
    .await?;
    if left.rows_affected() == 0 {
        return Err(ApiError::conflict(
            "not_waiting",
            format!("This entry is {}; it is no longer waiting.", entry.status),
        ));
    }
    sqlx::query(
        "UPDATE waitlist_offers SET status = 'declined', closed_at = now()
          WHERE entry_id = $1 AND status = 'open'",
    )
    .bind(entry.id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    load_entry(&state, id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("waitlist entry"))
}

/// One offer: its patient and staff; anyone else gets 404.
#[utoipa::path(get, path = "/waitlist/offers/{id}", tag = "waitlist", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Offer), (status = 404, body = ErrorBody)))]
async fn get_offer(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<Offer>, ApiError> {
    visible_offer(&state, &user, id).await.map(Json)
}

/// Why an offer that is not `open` (or whose hold lapsed) cannot be answered.
fn closed(offer: &Offer, now: DateTime<Utc>) -> ApiError {
    if offer.status == "open" && offer.hold_until <= now {
        return ApiError::conflict(
            "hold_lapsed",
            "The time held for you has run out; the slot is being offered to the next patient.",
        );
    }
    ApiError::conflict(
        "offer_closed",
        format!("This offer is {}; it can no longer be taken.", offer.status),
    )
}

/// Take an offered slot: books it for the offer's patient with a normal booking command (the
/// service's duration; every booking rule applies), while the hold lasts. Answers as
/// `POST /bookings`: 202, or with `Prefer: wait=N` 201 once confirmed and 409
/// `booking_rejected` if it was not (e.g. someone booked the time first; the patient stays on
/// the waitlist). 409 `hold_lapsed` or `offer_closed` when the offer is no longer open.
#[utoipa::path(post, path = "/waitlist/offers/{id}/accept", tag = "waitlist", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("Prefer" = Option<String>, Header, description = "`wait=N`: wait up to N seconds for the decision")),
    responses((status = 202, body = Accepted), (status = 201, description = "Confirmed (Prefer: wait)", body = Booking),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`hold_lapsed`, `offer_closed`, `booking_rejected` (Prefer: wait) or `too_many_bookings`", body = ErrorBody),
        (status = 429, description = "Too many booking commands from this user", body = ErrorBody)))]
async fn accept_offer(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
) -> Result<Response, ApiError> {
    let offer = visible_offer(&state, &user, id).await?;
    bookings::limit_rate(&state, &user)?;
    let now = Utc::now();
    let booking_id = Uuid::new_v4();
    // Only one taker: the hold and the status are checked in the statement that claims it.
    let claimed = sqlx::query(
        "UPDATE waitlist_offers SET status = 'accepted', booking_id = $2
          WHERE id = $1 AND status = 'open' AND hold_until > now() AND starts_at > now()",
    )
    .bind(offer.id)
    .bind(booking_id)
    .execute(&state.pool)
    .await?;
    if claimed.rows_affected() == 0 {
        let now_offer = load_offer(&state, id).await?.unwrap_or(offer);
        return Err(closed(&now_offer, now));
    }
    let request = BookingRequest {
        patient_id: offer.patient_id,
        doctor_id: offer.doctor_id,
        center_id: offer.center_id,
        starts_at: offer.start,
        ends_at: offer.end,
        reason: None,
        service_id: Some(offer.service_id),
    };
    let wait = bookings::preferred_wait(&headers, state.settings.api.max_wait_secs);
    let span =
        tracing::info_span!("accept_waitlist_offer", offer_id = %id, booking_id = %booking_id);
    let answer = bookings::request_new(&state, &user, booking_id, &request, wait, None)
        .instrument(span)
        .await;
    if answer.is_err() {
        // Not accepted (e.g. the broker is away, or the patient's booking cap): the hold
        // goes on as it was.
        sqlx::query(
            "UPDATE waitlist_offers SET status = 'open', booking_id = NULL
              WHERE id = $1 AND status = 'accepted' AND booking_id = $2",
        )
        .bind(offer.id)
        .bind(booking_id)
        .execute(&state.pool)
        .await?;
    } else {
        metrics::counter!("citaflow_api_waitlist_offers_accepted_total").increment(1);
    }
    answer
}

/// Decline an offered slot: it goes to the next patient waiting, and this entry keeps its
/// place for the next freed slot. 409 `offer_closed` / `hold_lapsed` when no longer open.
#[utoipa::path(post, path = "/waitlist/offers/{id}/decline", tag = "waitlist", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Offer), (status = 404, body = ErrorBody),
        (status = 409, description = "`hold_lapsed` or `offer_closed`", body = ErrorBody)))]
async fn decline_offer(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Response, ApiError> {
    let offer = visible_offer(&state, &user, id).await?;
    let declined = sqlx::query(
        "UPDATE waitlist_offers SET status = 'declined', closed_at = now()
          WHERE id = $1 AND status = 'open' AND hold_until > now()",
    )
    .bind(offer.id)
    .execute(&state.pool)
    .await?;
    let now_offer = load_offer(&state, id).await?.unwrap_or(offer);
    if declined.rows_affected() == 0 {
        return Err(closed(&now_offer, Utc::now()));
    }
    Ok((StatusCode::OK, Json(now_offer)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(from: &str, to: &str) -> NewEntry {
        NewEntry {
            patient_id: None,
            service_id: Uuid::nil(),
            center_id: Uuid::nil(),
            doctor_id: None,
            from: from.parse().unwrap(),
            to: to.parse().unwrap(),
        }
    }

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn an_entry_waits_over_a_real_range_ahead_within_the_horizon() {
        let today: NaiveDate = "2026-12-01".parse().unwrap();
        assert!(check_dates(&entry("2026-12-01", "2026-12-31"), today, 365).is_empty());
        // Yesterday still counts (the center may be a day behind UTC).
        assert!(check_dates(&entry("2026-11-30", "2026-11-30"), today, 365).is_empty());
        assert_eq!(
            fields(check_dates(&entry("2026-12-10", "2026-12-01"), today, 365)),
            ["to"]
        );
        assert_eq!(
            fields(check_dates(&entry("2026-12-01", "2027-06-01"), today, 365)),
            ["to"]
        );
        assert_eq!(
            fields(check_dates(&entry("2026-11-01", "2026-11-20"), today, 365)),
            ["to"]
        );
        assert_eq!(
            fields(check_dates(&entry("2028-01-01", "2028-01-02"), today, 365)),
            ["from"]
        );
    }
}
