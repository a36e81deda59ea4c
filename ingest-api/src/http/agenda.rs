//! `/working-hours` and `/agenda-exceptions`: when each doctor works where. Weekly hours are
//! written in the center's local terms (a weekday, `HH:MM` times) and exceptions on one local
//! date (time off, or an extra opening at one center); `citaflow-agenda` turns them into
//! instants with each center's time zone.
//!
//! The guarantee kept here: a doctor is never due at two places at once. A new range that
//! meets (in real time, so across time zones) another range of the same doctor, or an extra
//! opening that meets the doctor's open time at another center, is 409 `hours_overlap`. The
//! check and the insert run in one transaction under a per-doctor advisory lock, so two
//! overlapping ranges sent at once cannot both land.
//!
//! Admins and secretaries manage the agenda; a doctor reads their own; patients read the free
//! slots (`/availability`), not the agenda.

use std::collections::{HashMap, HashSet};

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Duration, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;
use citaflow_agenda::{
    Agenda, DayRange, ExceptionKind, Interval, WeeklyHours, local_date, weekly_conflict,
};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder, Row, postgres::PgRow};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    auth::{AuthUser, Role},
    bulk::{self, BulkBody, BulkResult},
    error::{ApiError, AppJson, AppJsonArray, AppPath, AppQuery, ErrorBody, FieldError},
    pagination::{self, Page, PageParams},
};
use crate::{domain, state::AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_hours, list_hours))
        .routes(routes!(create_many_hours))
        .routes(routes!(delete_hours))
        .routes(routes!(create_exception, list_exceptions))
        .routes(routes!(create_exceptions))
        .routes(routes!(delete_exception))
}

/// Weekday names, ISO order: index + 1 is the number stored (1 = Monday .. 7 = Sunday).
pub const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Longest exception note, in characters once trimmed.
pub const MAX_NOTE_CHARS: usize = 500;

/// Namespace of the advisory locks that serialise one doctor's agenda changes.
const AGENDA_LOCK: i64 = 11;

/// The last date the API takes (dates have four-digit years).
fn last_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(9999, 12, 31).expect("a date")
}

fn weekday_name(iso: i16) -> &'static str {
    usize::try_from(iso - 1)
        .ok()
        .and_then(|i| WEEKDAYS.get(i))
        .copied()
        .unwrap_or("monday")
}

fn iso_weekday(iso: i16) -> Weekday {
    Weekday::try_from(u8::try_from(iso - 1).unwrap_or(0)).unwrap_or(Weekday::Mon)
}

fn weekday(field: &str, value: &str, errors: &mut Vec<FieldError>) -> Option<i16> {
    match WEEKDAYS.iter().position(|d| *d == value) {
        Some(i) => i16::try_from(i + 1).ok(),
        None => {
            errors.push(FieldError::new(field, "must be monday .. sunday"));
            None
        }
    }
}

/// `HH:MM` (00:00 to 24:00) as minutes since local midnight.
fn minute(field: &str, value: &str, errors: &mut Vec<FieldError>) -> Option<u16> {
    let shaped = value.len() == 5
        && value.bytes().enumerate().all(|(i, b)| match i {
            2 => b == b':',
            _ => b.is_ascii_digit(),
        });
    match shaped.then(|| DayRange::parse_minute(value)).flatten() {
        Some(m) => Some(m),
        None => {
            errors.push(FieldError::new(
                field,
                "must be a time HH:MM (00:00 to 24:00)",
            ));
            None
        }
    }
}

/// `YYYY-MM-DD`.
fn date(field: &str, value: &str, errors: &mut Vec<FieldError>) -> Option<NaiveDate> {
    let shaped = value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    match shaped
        .then(|| NaiveDate::parse_from_str(value, "%Y-%m-%d").ok())
        .flatten()
    {
        Some(d) => Some(d),
        None => {
            errors.push(FieldError::new(field, "must be a date YYYY-MM-DD"));
            None
        }
    }
}

/// A range from `start` to `end` (both valid minutes), if `start < end`.
fn day_range(
    start: Option<u16>,
    end: Option<u16>,
    errors: &mut Vec<FieldError>,
) -> Option<DayRange> {
    let (start, end) = (start?, end?);
    let range = DayRange::new(start, end);
    if range.is_none() {
        errors.push(FieldError::new("end", "must be after start"));
    }
    range
}

/// The field rules above as JSON Schemas for the OpenAPI document.
mod schema {
    use utoipa::openapi::{KnownFormat, Object, SchemaFormat};

    pub const TIME_PATTERN: &str = "^(?:(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00)$";
    pub const DATE_PATTERN: &str = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$";

    use crate::domain::schema::string;

    fn time(nullable: bool) -> Object {
        string(nullable)
            .pattern(Some(TIME_PATTERN))
            .description(Some("Local time of day `HH:MM`, 00:00 to 24:00."))
            .build()
    }

    fn date(nullable: bool) -> Object {
        string(nullable)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
            .pattern(Some(DATE_PATTERN))
            .description(Some("Local date of the center, `YYYY-MM-DD`."))
            .build()
    }

    pub fn weekday() -> Object {
        string(false)
            .enum_values(Some(super::WEEKDAYS))
            .description(Some("Day of the week, in the center's time zone."))
            .build()
    }

    pub fn kind() -> Object {
        string(false)
            .enum_values(Some(["time_off", "extra"]))
            .description(Some(
                "`time_off`: not available (at one center, or every center without `center_id`; the whole day without times); `extra`: an opening at one center.",
            ))
            .build()
    }

    pub fn time_field() -> Object {
        time(false)
    }

    pub fn time_change() -> Object {
        time(true)
    }

    pub fn date_field() -> Object {
        date(false)
    }

    pub fn date_change() -> Object {
        date(true)
    }

    pub fn date_query() -> Object {
        string(false)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
            .pattern(Some(DATE_PATTERN))
            .build()
    }

    pub fn note() -> Object {
        crate::domain::schema::free_text(super::MAX_NOTE_CHARS, true)
    }
}

/// Who may read whose agenda: staff anyone's (optionally one doctor's), a doctor only their
/// own (asking for another doctor's is 403, as with bookings), a patient nobody's.
fn readable_doctor(user: &AuthUser, asked: Option<Uuid>) -> Result<Option<Uuid>, ApiError> {
    match user.role {
        Role::Admin | Role::Secretary => Ok(asked),
        Role::Doctor => {
            if asked.is_some_and(|d| Some(d) != user.doctor_id) {
                return Err(ApiError::Forbidden);
            }
            Ok(Some(user.doctor_id.ok_or(ApiError::Forbidden)?))
        }
        Role::Patient => Err(ApiError::Forbidden),
    }
}

/// Serialises every agenda change of one doctor until the transaction ends (other doctors are
/// never held up), so the overlap check always sees what committed before it.
async fn lock_doctor(conn: &mut PgConnection, doctor_id: Uuid) -> Result<(), ApiError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, $2))")
        .bind(doctor_id)
        .bind(AGENDA_LOCK)
        .execute(conn)
        .await?;
    Ok(())
}

/// 422 on `doctor_id` unless it is a doctor, and on `center_id` unless it is a center.
async fn check_references(
    conn: &mut PgConnection,
    doctor_id: Uuid,
    center_id: Option<Uuid>,
) -> Result<(), ApiError> {
    let (doctor, center): (bool, bool) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM doctors WHERE id = $1),
                $2::uuid IS NULL OR EXISTS (SELECT 1 FROM centers WHERE id = $2)",
    )
    .bind(doctor_id)
    .bind(center_id)
    .fetch_one(conn)
    .await?;
    let mut errors = Vec::new();
    if !doctor {
        errors.push(FieldError::new("doctor_id", "no such doctor"));
    }
    if !center {
        errors.push(FieldError::new("center_id", "no such center"));
    }
    domain::collect(errors)
}

/// A center's name and time zone.
struct Place {
    name: String,
    tz: Tz,
}

/// The name and time zone of each of `ids` that is a center.
async fn places(conn: &mut PgConnection, ids: &[Uuid]) -> Result<HashMap<Uuid, Place>, ApiError> {
    let rows = sqlx::query("SELECT id, name, timezone FROM centers WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(conn)
        .await?;
    let mut places = HashMap::with_capacity(rows.len());
    for row in rows {
        let timezone: String = row.try_get("timezone")?;
        // Every stored zone was parsed when the center was written.
        let tz: Tz = timezone.parse().map_err(|_| {
            ApiError::Internal(anyhow::anyhow!("center time zone {timezone:?} is unknown"))
        })?;
        places.insert(
            row.try_get("id")?,
            Place {
                name: row.try_get("name")?,
                tz,
            },
        );
    }
    Ok(places)
}

/// The doctor's agenda with their exceptions on `from..=to`.
async fn agenda_of(
    conn: &mut PgConnection,
    doctor_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Agenda, ApiError> {
    let mut agendas = citaflow_agenda::load(conn, &[doctor_id], from, to).await?;
    Ok(agendas.remove(&doctor_id).unwrap_or_default())
}

fn overlap(message: String) -> ApiError {
    ApiError::conflict("hours_overlap", message)
}

/// `HH:MM–HH:MM` of an interval, in `tz`.
fn local_span(interval: &Interval, tz: Tz) -> String {
    format!(
        "{} to {}",
        interval.start.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
        interval.end.with_timezone(&tz).format("%Y-%m-%d %H:%M")
    )
}

// ---------------------------------------------------------------------------------------------
// Working hours

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkingHours {
    pub doctor_id: Uuid,
    pub center_id: Uuid,
    #[schema(schema_with = schema::weekday)]
    pub weekday: String,
    #[schema(schema_with = schema::time_field)]
    pub start: String,
    /// After `start`; `24:00` is the end of the day.
    #[schema(schema_with = schema::time_field)]
    pub end: String,
    /// First local date these hours apply (default: always).
    #[schema(schema_with = schema::date_change)]
    pub valid_from: Option<String>,
    /// Last local date these hours apply, inclusive (default: always).
    #[schema(schema_with = schema::date_change)]
    pub valid_until: Option<String>,
}

/// Weekly hours of a doctor at a center, in the center's time zone.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkingHours {
    pub id: Uuid,
    pub doctor_id: Uuid,
    pub center_id: Uuid,
    #[schema(schema_with = schema::weekday)]
    pub weekday: String,
    #[schema(schema_with = schema::time_field)]
    pub start: String,
    #[schema(schema_with = schema::time_field)]
    pub end: String,
    pub valid_from: Option<NaiveDate>,
    pub valid_until: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
}

const HOURS_COLUMNS: &str = "id, doctor_id, center_id, weekday, start_minute, end_minute,
    valid_from, valid_until, created_at";

fn minute_text(row: &PgRow, column: &str) -> Result<Option<String>, sqlx::Error> {
    let minute: Option<i16> = row.try_get(column)?;
    Ok(minute.map(|m| DayRange::format_minute(u16::try_from(m).unwrap_or(0))))
}

impl<'r> FromRow<'r, PgRow> for WorkingHours {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            doctor_id: row.try_get("doctor_id")?,
            center_id: row.try_get("center_id")?,
            weekday: weekday_name(row.try_get("weekday")?).to_owned(),
            start: minute_text(row, "start_minute")?.unwrap_or_default(),
            end: minute_text(row, "end_minute")?.unwrap_or_default(),
            valid_from: row.try_get("valid_from")?,
            valid_until: row.try_get("valid_until")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// A request's hours, checked.
struct Hours {
    doctor_id: Uuid,
    center_id: Uuid,
    weekday: i16,
    range: DayRange,
    valid_from: Option<NaiveDate>,
    valid_until: Option<NaiveDate>,
}

impl TryFrom<NewWorkingHours> for Hours {
    type Error = ApiError;

    fn try_from(body: NewWorkingHours) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        let day = weekday("weekday", &body.weekday, &mut errors);
        let start = minute("start", &body.start, &mut errors);
        let end = minute("end", &body.end, &mut errors);
        let range = day_range(start, end, &mut errors);
        let valid_from = body
            .valid_from
            .as_deref()
            .and_then(|v| date("valid_from", v, &mut errors));
        let valid_until = body
            .valid_until
            .as_deref()
            .and_then(|v| date("valid_until", v, &mut errors));
        if let (Some(from), Some(until)) = (valid_from, valid_until)
            && from > until
        {
            errors.push(FieldError::new(
                "valid_until",
                "must not be before valid_from",
            ));
        }
        domain::collect(errors)?;
        Ok(Self {
            doctor_id: body.doctor_id,
            center_id: body.center_id,
            weekday: day.expect("validated"),
            range: range.expect("validated"),
            valid_from,
            valid_until,
        })
    }
}

/// Refuses `new` if it meets, in time, another range of the doctor or one of their extra
/// openings at another center.
fn check_hours(
    new: &WeeklyHours,
    agenda: &Agenda,
    places: &HashMap<Uuid, Place>,
    today: NaiveDate,
) -> Result<(), ApiError> {
    let place = |id: &Uuid| {
        places
            .get(id)
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("center {id} not loaded")))
    };
    let here = place(&new.center_id)?;
    for other in &agenda.hours {
        let there = place(&other.center_id)?;
        if let Some(first) = weekly_conflict(new, here.tz, other, there.tz, today) {
            return Err(overlap(format!(
                "These hours meet the doctor's hours at {} on {} from {} to {} (first on {first}).",
                there.name,
                WEEKDAYS[other.weekday.num_days_from_monday() as usize],
                DayRange::format_minute(other.range.start),
                DayRange::format_minute(other.range.end),
            )));
        }
    }
    // Extra openings elsewhere, against these hours as they would be open (time off applies).
    let with_new = Agenda {
        hours: vec![new.clone()],
        exceptions: agenda
            .exceptions
            .iter()
            .filter(|e| e.kind == ExceptionKind::TimeOff)
            .cloned()
            .collect(),
    };
    for extra in agenda.exceptions.iter().filter(|e| {
        e.kind == ExceptionKind::Extra && e.center_id.is_some_and(|c| c != new.center_id)
    }) {
        let (Some(center), Some(range)) = (extra.center_id, extra.range) else {
            continue;
        };
        let there = place(&center)?;
        let span = range.on(there.tz, extra.date);
        let open = with_new.open(
            new.center_id,
            here.tz,
            extra.date - Duration::days(1),
            extra.date + Duration::days(1),
        );
        if open.iter().any(|i| i.overlaps(&span)) {
            return Err(overlap(format!(
                "These hours meet the doctor's extra opening at {} on {} from {} to {}.",
                there.name,
                extra.date,
                DayRange::format_minute(range.start),
                DayRange::format_minute(range.end),
            )));
        }
    }
    Ok(())
}

async fn create_hours_one(state: &AppState, body: NewWorkingHours) -> Result<Uuid, ApiError> {
    let hours = Hours::try_from(body)?;
    let mut tx = state.pool.begin().await?;
    lock_doctor(&mut tx, hours.doctor_id).await?;
    check_references(&mut tx, hours.doctor_id, Some(hours.center_id)).await?;
    // A day back: a range that began yesterday somewhere may still be running.
    let today = Utc::now().date_naive() - Duration::days(1);
    let agenda = agenda_of(&mut tx, hours.doctor_id, today, last_date()).await?;
    let mut centers: HashSet<Uuid> = agenda.hours.iter().map(|h| h.center_id).collect();
    centers.extend(agenda.exceptions.iter().filter_map(|e| e.center_id));
    centers.insert(hours.center_id);
    let places = places(&mut tx, &centers.into_iter().collect::<Vec<_>>()).await?;
    let id = Uuid::new_v4();
    let new = WeeklyHours {
        id,
        center_id: hours.center_id,
        weekday: iso_weekday(hours.weekday),
        range: hours.range,
        valid_from: hours.valid_from,
        valid_until: hours.valid_until,
    };
    check_hours(&new, &agenda, &places, today)?;
    sqlx::query(
        "INSERT INTO working_hours (id, doctor_id, center_id, weekday, start_minute, end_minute,
                                    valid_from, valid_until)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(hours.doctor_id)
    .bind(hours.center_id)
    .bind(hours.weekday)
    .bind(hours.range.start as i16)
    .bind(hours.range.end as i16)
    .bind(hours.valid_from)
    .bind(hours.valid_until)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

async fn load_hours(state: &AppState, id: Uuid) -> Result<Option<WorkingHours>, ApiError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {HOURS_COLUMNS} FROM working_hours WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&state.pool)
    .await?)
}

/// Add weekly working hours of a doctor at a center (admin, secretary).
///
/// Times are the center's local time, so a 09:00 start stays 09:00 on both sides of a daylight
/// saving change. Hours that meet another range of the same doctor in real time (at any
/// center, time zones taken into account), or one of the doctor's extra openings at another
/// center, are refused with 409 `hours_overlap`, naming the other range and the first date
/// they meet. Ranges that only touch (one ends as the other starts) do not overlap.
#[utoipa::path(post, path = "/working-hours", tag = "agenda", security(("bearer" = [])),
    request_body = NewWorkingHours,
    responses((status = 201, body = WorkingHours), (status = 403, body = ErrorBody),
        (status = 409, description = "`hours_overlap`: the doctor is already due elsewhere then", body = ErrorBody),
        (status = 422, description = "Invalid values (e.g. `end` not after `start`), or an unknown doctor or center", body = ErrorBody)))]
async fn create_hours(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<NewWorkingHours>,
) -> Result<(StatusCode, Json<WorkingHours>), ApiError> {
    user.require(&[Role::Admin, Role::Secretary])?;
    let id = create_hours_one(&state, body).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            load_hours(&state, id)
                .await?
                .ok_or(ApiError::NotFound("working hours"))?,
        ),
    ))
}

/// Add many weekly ranges; each item gets its own result, in order (admin, secretary).
///
/// Each item is meant to be a `NewWorkingHours` and is checked like a single create, against
/// the ranges created before it too.
#[utoipa::path(post, path = "/working-hours/bulk", tag = "agenda", security(("bearer" = [])),
    request_body(content = BulkBody, description = "`NewWorkingHours` items"),
    responses((status = 200, body = BulkResult), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_many_hours(
    State(state): State<AppState>,
    user: AuthUser,
    AppJsonArray(items): AppJsonArray,
) -> Result<Json<BulkResult>, ApiError> {
    user.require(&[Role::Admin, Role::Secretary])?;
    bulk::run(items, |body: NewWorkingHours| {
        create_hours_one(&state, body)
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HoursFilter {
    /// One doctor's hours (a doctor always sees only their own).
    pub doctor_id: Option<Uuid>,
    /// Hours at one center.
    pub center_id: Option<Uuid>,
    /// 1-based page number (default 1).
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    /// Items per page (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub per_page: Option<i64>,
}

/// List weekly working hours, sorted by weekday and start, paginated (admin, secretary; a
/// doctor their own).
#[utoipa::path(get, path = "/working-hours", tag = "agenda", security(("bearer" = [])),
    params(HoursFilter),
    responses((status = 200, body = Page<WorkingHours>),
        (status = 403, description = "A patient, or a doctor asking for another doctor's", body = ErrorBody)))]
async fn list_hours(
    State(state): State<AppState>,
    user: AuthUser,
    AppQuery(filter): AppQuery<HoursFilter>,
) -> Result<Json<Page<WorkingHours>>, ApiError> {
    let doctor = readable_doctor(&user, filter.doctor_id)?;
    let params = PageParams {
        page: filter.page,
        per_page: filter.per_page,
    };
    let conditions = |qb: &mut QueryBuilder<Postgres>| {
        qb.push(" WHERE true");
        if let Some(v) = doctor {
            qb.push(" AND doctor_id = ").push_bind(v);
        }
        if let Some(v) = filter.center_id {
            qb.push(" AND center_id = ").push_bind(v);
        }
    };
    pagination::fetch(
        &state.pool,
        "working_hours",
        HOURS_COLUMNS,
        conditions,
        "weekday, start_minute, center_id, id",
        params,
    )
    .await
    .map(Json)
}

/// Remove a weekly range (admin, secretary). Bookings already confirmed stay.
#[utoipa::path(delete, path = "/working-hours/{id}", tag = "agenda", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204, description = "Removed"), (status = 403, body = ErrorBody)))]
async fn delete_hours(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    user.require(&[Role::Admin, Role::Secretary])?;
    let deleted = sqlx::query("DELETE FROM working_hours WHERE id = $1")
        .bind(id)
        .execute(&state.pool)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(ApiError::NotFound("working hours"));
    }
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Exceptions

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgendaException {
    pub doctor_id: Uuid,
    #[schema(schema_with = schema::kind)]
    pub kind: String,
    #[schema(schema_with = schema::date_field)]
    pub date: String,
    /// Required for `extra`; a `time_off` without one applies at every center.
    pub center_id: Option<Uuid>,
    /// With `end`; required for `extra`; a `time_off` without times is the whole day.
    #[schema(schema_with = schema::time_change)]
    pub start: Option<String>,
    /// With `start`, after it.
    #[schema(schema_with = schema::time_change)]
    pub end: Option<String>,
    #[schema(schema_with = schema::note)]
    pub note: Option<String>,
}

/// An exception to a doctor's weekly hours on one local date.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgendaException {
    pub id: Uuid,
    pub doctor_id: Uuid,
    /// `null`: at every center (time off only).
    pub center_id: Option<Uuid>,
    #[schema(schema_with = schema::kind)]
    pub kind: String,
    pub date: NaiveDate,
    /// `null` with `end`: the whole day (time off only).
    #[schema(schema_with = schema::time_change)]
    pub start: Option<String>,
    #[schema(schema_with = schema::time_change)]
    pub end: Option<String>,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
}

const EXCEPTION_COLUMNS: &str =
    "id, doctor_id, center_id, kind, date, start_minute, end_minute, note, created_at";

impl<'r> FromRow<'r, PgRow> for AgendaException {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            doctor_id: row.try_get("doctor_id")?,
            center_id: row.try_get("center_id")?,
            kind: row.try_get("kind")?,
            date: row.try_get("date")?,
            start: minute_text(row, "start_minute")?,
            end: minute_text(row, "end_minute")?,
            note: row.try_get("note")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// A request's exception, checked.
struct Exception {
    doctor_id: Uuid,
    kind: ExceptionKind,
    date: NaiveDate,
    center_id: Option<Uuid>,
    range: Option<DayRange>,
    note: Option<String>,
}

impl TryFrom<NewAgendaException> for Exception {
    type Error = ApiError;

    fn try_from(body: NewAgendaException) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        let kind = ExceptionKind::parse(&body.kind);
        if kind.is_none() {
            errors.push(FieldError::new("kind", "must be time_off or extra"));
        }
        let day = date("date", &body.date, &mut errors);
        let start = body
            .start
            .as_deref()
            .and_then(|v| minute("start", v, &mut errors));
        let end = body
            .end
            .as_deref()
            .and_then(|v| minute("end", v, &mut errors));
        match (&body.start, &body.end) {
            (Some(_), None) => errors.push(FieldError::new("end", "is required with start")),
            (None, Some(_)) => errors.push(FieldError::new("start", "is required with end")),
            _ => {}
        }
        if kind == Some(ExceptionKind::Extra) {
            if body.center_id.is_none() {
                errors.push(FieldError::new(
                    "center_id",
                    "is required for an extra opening",
                ));
            }
            if body.start.is_none() && body.end.is_none() {
                errors.push(FieldError::new(
                    "start",
                    "is required for an extra opening (with end)",
                ));
            }
        }
        let range = day_range(start, end, &mut errors);
        let note = body
            .note
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty());
        if let Some(note) = &note {
            if note.chars().count() > MAX_NOTE_CHARS {
                errors.push(FieldError::new(
                    "note",
                    format!("must be at most {MAX_NOTE_CHARS} characters"),
                ));
            } else if note.contains('\0') {
                errors.push(FieldError::new("note", "must not contain NUL characters"));
            }
        }
        domain::collect(errors)?;
        Ok(Self {
            doctor_id: body.doctor_id,
            kind: kind.expect("validated"),
            date: day.expect("validated"),
            center_id: body.center_id,
            range,
            note,
        })
    }
}

/// Refuses an extra opening at `center` that meets the doctor's open time (hours and extras,
/// less time off) at another center, on the neighbouring dates too.
fn check_extra(
    center: Uuid,
    date: NaiveDate,
    range: DayRange,
    agenda: &Agenda,
    places: &HashMap<Uuid, Place>,
) -> Result<(), ApiError> {
    let here = places
        .get(&center)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("center {center} not loaded")))?;
    let span = range.on(here.tz, date);
    let mut others: Vec<Uuid> = agenda
        .hours
        .iter()
        .map(|h| h.center_id)
        .chain(agenda.exceptions.iter().filter_map(|e| e.center_id))
        .filter(|c| *c != center)
        .collect();
    others.sort();
    others.dedup();
    for other in others {
        let Some(there) = places.get(&other) else {
            continue;
        };
        let open = agenda.open(
            other,
            there.tz,
            date - Duration::days(1),
            date + Duration::days(1),
        );
        if let Some(meets) = open.iter().find(|i| i.overlaps(&span)) {
            return Err(overlap(format!(
                "This opening meets the doctor's time at {} from {} (local time there), on {}.",
                there.name,
                local_span(meets, there.tz),
                local_date(there.tz, meets.start.max(span.start)),
            )));
        }
    }
    Ok(())
}

async fn create_exception_one(
    state: &AppState,
    body: NewAgendaException,
) -> Result<Uuid, ApiError> {
    let exception = Exception::try_from(body)?;
    let mut tx = state.pool.begin().await?;
    lock_doctor(&mut tx, exception.doctor_id).await?;
    check_references(&mut tx, exception.doctor_id, exception.center_id).await?;
    if let (ExceptionKind::Extra, Some(center), Some(range)) =
        (exception.kind, exception.center_id, exception.range)
    {
        let (from, to) = (
            exception.date - Duration::days(1),
            exception.date + Duration::days(1),
        );
        let agenda = agenda_of(&mut tx, exception.doctor_id, from, to).await?;
        let mut centers: Vec<Uuid> = agenda
            .hours
            .iter()
            .map(|h| h.center_id)
            .chain(agenda.exceptions.iter().filter_map(|e| e.center_id))
            .collect();
        centers.push(center);
        let places = places(&mut tx, &centers).await?;
        check_extra(center, exception.date, range, &agenda, &places)?;
    }
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO agenda_exceptions (id, doctor_id, center_id, kind, date, start_minute,
                                        end_minute, note)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(exception.doctor_id)
    .bind(exception.center_id)
    .bind(exception.kind.as_str())
    .bind(exception.date)
    .bind(exception.range.map(|r| r.start as i16))
    .bind(exception.range.map(|r| r.end as i16))
    .bind(exception.note)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

async fn load_exception(state: &AppState, id: Uuid) -> Result<Option<AgendaException>, ApiError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {EXCEPTION_COLUMNS} FROM agenda_exceptions WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&state.pool)
    .await?)
}

/// Add an exception to a doctor's hours on one local date (admin, secretary).
///
/// `time_off`: the doctor is not available (at `center_id`, or at every center without one;
/// from `start` to `end`, or the whole day without them). `extra`: an opening at `center_id`
/// from `start` to `end`, outside the weekly hours; one that meets the doctor's open time at
/// another center (time zones taken into account) is refused with 409 `hours_overlap`.
#[utoipa::path(post, path = "/agenda-exceptions", tag = "agenda", security(("bearer" = [])),
    request_body = NewAgendaException,
    responses((status = 201, body = AgendaException), (status = 403, body = ErrorBody),
        (status = 409, description = "`hours_overlap`: an extra opening while the doctor is due elsewhere", body = ErrorBody),
        (status = 422, description = "Invalid values (an `extra` without `center_id` or times, `start` without `end`, ...), or an unknown doctor or center", body = ErrorBody)))]
async fn create_exception(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<NewAgendaException>,
) -> Result<(StatusCode, Json<AgendaException>), ApiError> {
    user.require(&[Role::Admin, Role::Secretary])?;
    let id = create_exception_one(&state, body).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            load_exception(&state, id)
                .await?
                .ok_or(ApiError::NotFound("agenda exception"))?,
        ),
    ))
}

/// Add many exceptions; each item gets its own result, in order (admin, secretary).
///
/// Each item is meant to be a `NewAgendaException` and is checked like a single create.
#[utoipa::path(post, path = "/agenda-exceptions/bulk", tag = "agenda", security(("bearer" = [])),
    request_body(content = BulkBody, description = "`NewAgendaException` items"),
    responses((status = 200, body = BulkResult), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_exceptions(
    State(state): State<AppState>,
    user: AuthUser,
    AppJsonArray(items): AppJsonArray,
) -> Result<Json<BulkResult>, ApiError> {
    user.require(&[Role::Admin, Role::Secretary])?;
    bulk::run(items, |body: NewAgendaException| {
        create_exception_one(&state, body)
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExceptionFilter {
    /// One doctor's exceptions (a doctor always sees only their own).
    pub doctor_id: Option<Uuid>,
    /// Exceptions at this center, and time off at every center.
    pub center_id: Option<Uuid>,
    /// On or after this local date.
    #[param(schema_with = schema::date_query)]
    pub from: Option<String>,
    /// On or before this local date.
    #[param(schema_with = schema::date_query)]
    pub to: Option<String>,
    /// 1-based page number (default 1).
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    /// Items per page (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub per_page: Option<i64>,
}

/// List exceptions, sorted by date and start, paginated (admin, secretary; a doctor their own).
#[utoipa::path(get, path = "/agenda-exceptions", tag = "agenda", security(("bearer" = [])),
    params(ExceptionFilter),
    responses((status = 200, body = Page<AgendaException>),
        (status = 403, description = "A patient, or a doctor asking for another doctor's", body = ErrorBody)))]
async fn list_exceptions(
    State(state): State<AppState>,
    user: AuthUser,
    AppQuery(filter): AppQuery<ExceptionFilter>,
) -> Result<Json<Page<AgendaException>>, ApiError> {
    let doctor = readable_doctor(&user, filter.doctor_id)?;
    let mut errors = Vec::new();
    let from = filter
        .from
        .as_deref()
        .and_then(|v| date("from", v, &mut errors));
    let to = filter
        .to
        .as_deref()
        .and_then(|v| date("to", v, &mut errors));
    domain::collect(errors)?;
    let params = PageParams {
        page: filter.page,
        per_page: filter.per_page,
    };
    let conditions = |qb: &mut QueryBuilder<Postgres>| {
        qb.push(" WHERE true");
        if let Some(v) = doctor {
            qb.push(" AND doctor_id = ").push_bind(v);
        }
        if let Some(v) = filter.center_id {
            qb.push(" AND (center_id IS NULL OR center_id = ")
                .push_bind(v)
                .push(")");
        }
        if let Some(v) = from {
            qb.push(" AND date >= ").push_bind(v);
        }
        if let Some(v) = to {
            qb.push(" AND date <= ").push_bind(v);
        }
    };
    pagination::fetch(
        &state.pool,
        "agenda_exceptions",
        EXCEPTION_COLUMNS,
        conditions,
        "date, start_minute NULLS FIRST, id",
        params,
    )
    .await
    .map(Json)
}

/// Remove an exception (admin, secretary). Bookings already confirmed stay.
#[utoipa::path(delete, path = "/agenda-exceptions/{id}", tag = "agenda", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204, description = "Removed"), (status = 403, body = ErrorBody)))]
async fn delete_exception(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    user.require(&[Role::Admin, Role::Secretary])?;
    let deleted = sqlx::query("DELETE FROM agenda_exceptions WHERE id = $1")
        .bind(id)
        .execute(&state.pool)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(ApiError::NotFound("agenda exception"));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_rules_agree_with_their_schemas() {
        let time = regex::Regex::new(schema::TIME_PATTERN).unwrap();
        for sample in [
            "09:00",
            "24:00",
            "23:59",
            "00:00",
            "24:01",
            "9:00",
            "+9:00",
            "09:60",
            "25:00",
            "0900",
            " 09:00",
            "09:00 ",
            "٠٩:٠٠",
        ] {
            let parsed = minute("t", sample, &mut Vec::new()).is_some();
            assert_eq!(time.is_match(sample), parsed, "{sample:?}");
        }
        let day = regex::Regex::new(schema::DATE_PATTERN).unwrap();
        for sample in [
            "2027-03-26",
            "2027-3-26",
            "+2027-03-26",
            "27-03-26",
            "2027-03-26T",
        ] {
            let parsed = date("d", sample, &mut Vec::new()).is_some();
            assert_eq!(day.is_match(sample), parsed, "{sample:?}");
        }
        // The pattern is the shape; the calendar is the format's.
        assert!(date("d", "2027-02-30", &mut Vec::new()).is_none());
        for (i, name) in WEEKDAYS.iter().enumerate() {
            let iso = weekday("w", name, &mut Vec::new()).unwrap();
            assert_eq!(iso as usize, i + 1);
            assert_eq!(weekday_name(iso), *name);
            assert_eq!(iso_weekday(iso).num_days_from_monday() as usize, i);
        }
        assert!(weekday("w", "Monday", &mut Vec::new()).is_none());
    }

    #[test]
    fn exceptions_take_times_in_pairs_and_extras_need_a_place() {
        let body =
            |kind: &str, center: bool, start: Option<&str>, end: Option<&str>| NewAgendaException {
                doctor_id: Uuid::new_v4(),
                kind: kind.into(),
                date: "2027-03-26".into(),
                center_id: center.then(Uuid::new_v4),
                start: start.map(Into::into),
                end: end.map(Into::into),
                note: None,
            };
        let fields = |body| match Exception::try_from(body) {
            Err(ApiError::Validation(errors)) => {
                errors.into_iter().map(|e| e.field).collect::<Vec<_>>()
            }
            Err(other) => panic!("{other:?}"),
            Ok(_) => vec![],
        };
        assert_eq!(
            fields(body("time_off", false, None, None)),
            Vec::<String>::new()
        );
        assert_eq!(
            fields(body("time_off", false, Some("10:00"), None)),
            ["end"]
        );
        assert_eq!(
            fields(body("time_off", true, None, Some("10:00"))),
            ["start"]
        );
        assert_eq!(
            fields(body("extra", false, Some("16:00"), Some("18:00"))),
            ["center_id"]
        );
        assert_eq!(fields(body("extra", true, None, None)), ["start"]);
        assert_eq!(
            fields(body("extra", true, Some("18:00"), Some("16:00"))),
            ["end"]
        );
        assert_eq!(fields(body("holiday", true, None, None)), ["kind"]);
    }
}
