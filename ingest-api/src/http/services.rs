//! `/services`: the kinds of visit a clinic offers (a check-up, a cleaning), how long each
//! takes with the time it keeps the doctor busy before and after, and which doctors offer it.
//! Admins manage them; every signed-in user can read them (patients pick one to book).

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};
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
        .routes(routes!(create_service, list_services))
        .routes(routes!(create_services))
        .routes(routes!(get_service, update_service))
        .routes(routes!(set_service_doctors))
}

/// Longest buffer before or after a visit, in minutes.
pub const MAX_BUFFER_MINUTES: i64 = 240;
/// Most doctors named in one request.
pub const MAX_DOCTOR_IDS: usize = 1_000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewService {
    #[schema(schema_with = domain::schema::name_field)]
    pub name: String,
    /// Length of the visit (within the configured booking duration bounds).
    #[serde(deserialize_with = "domain::whole_number")]
    pub duration_minutes: i64,
    /// Time the doctor is kept busy before the visit (preparation); default 0.
    #[serde(default, deserialize_with = "domain::optional_whole_number")]
    #[schema(minimum = 0, maximum = 240)]
    pub buffer_before_minutes: Option<i64>,
    /// Time the doctor is kept busy after the visit (cleaning, notes); default 0.
    #[serde(default, deserialize_with = "domain::optional_whole_number")]
    #[schema(minimum = 0, maximum = 240)]
    pub buffer_after_minutes: Option<i64>,
    /// Default true; inactive services cannot be booked.
    pub active: Option<bool>,
    /// The doctors who offer it (every id must be a doctor).
    #[schema(max_items = 1000)]
    pub doctor_ids: Option<Vec<Uuid>>,
}

#[derive(Debug, Serialize, FromRow, ToSchema)]
pub struct Service {
    pub id: Uuid,
    pub name: String,
    pub duration_minutes: i32,
    pub buffer_before_minutes: i32,
    pub buffer_after_minutes: i32,
    pub active: bool,
    /// The doctors who offer it, sorted.
    pub doctor_ids: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, name, duration_minutes, buffer_before_minutes, buffer_after_minutes,
    active, array(SELECT ds.doctor_id FROM doctor_services ds
                   WHERE ds.service_id = services.id ORDER BY ds.doctor_id) AS doctor_ids,
    created_at, updated_at";

/// The duration, checked against the configured booking bounds.
fn duration(state: &AppState, minutes: i64, errors: &mut Vec<FieldError>) -> Option<i32> {
    let (min, max) = (
        state.settings.processor.min_duration_minutes,
        state.settings.processor.max_duration_minutes,
    );
    if (min..=max).contains(&minutes) {
        i32::try_from(minutes).ok()
    } else {
        errors.push(FieldError::new(
            "duration_minutes",
            format!("must be between {min} and {max}"),
        ));
        None
    }
}

fn buffer(field: &str, minutes: i64, errors: &mut Vec<FieldError>) -> Option<i32> {
    if (0..=MAX_BUFFER_MINUTES).contains(&minutes) {
        i32::try_from(minutes).ok()
    } else {
        errors.push(FieldError::new(
            field,
            format!("must be between 0 and {MAX_BUFFER_MINUTES}"),
        ));
        None
    }
}

/// The distinct doctor ids, if there are not too many.
fn doctor_list(ids: Vec<Uuid>, errors: &mut Vec<FieldError>) -> Vec<Uuid> {
    if ids.len() > MAX_DOCTOR_IDS {
        errors.push(FieldError::new(
            "doctor_ids",
            format!("must name at most {MAX_DOCTOR_IDS} doctors"),
        ));
        return Vec::new();
    }
    let mut ids = ids;
    ids.sort();
    ids.dedup();
    ids
}

/// 422 on `doctor_ids` unless every id is a doctor.
async fn check_doctors(conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), ApiError> {
    if ids.is_empty() {
        return Ok(());
    }
    let known: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM doctors WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    let unknown: Vec<String> = ids
        .iter()
        .filter(|id| !known.contains(id))
        .map(Uuid::to_string)
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(
            "doctor_ids",
            format!("no such doctor: {}", unknown.join(", ")),
        ))
    }
}

/// A taken name is 409 `duplicate` with a message that names the field.
fn named(err: sqlx::Error) -> ApiError {
    let taken = err
        .as_database_error()
        .is_some_and(|db| db.is_unique_violation() && db.constraint() == Some("services_name_key"));
    if taken {
        ApiError::conflict("duplicate", "A service with this name already exists.")
    } else {
        err.into()
    }
}

/// Makes exactly `doctor_ids` the doctors who offer the service (those kept keep their row).
async fn replace_doctors(
    conn: &mut PgConnection,
    service_id: Uuid,
    doctor_ids: &[Uuid],
) -> Result<(), ApiError> {
    sqlx::query("DELETE FROM doctor_services WHERE service_id = $1 AND NOT (doctor_id = ANY($2))")
        .bind(service_id)
        .bind(doctor_ids)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO doctor_services (doctor_id, service_id)
         SELECT unnest($2::uuid[]), $1 ON CONFLICT DO NOTHING",
    )
    .bind(service_id)
    .bind(doctor_ids)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn create_one(state: &AppState, body: NewService) -> Result<Uuid, ApiError> {
    let mut errors = Vec::new();
    let name = domain::required_text("name", &body.name, domain::MAX_NAME_CHARS, &mut errors);
    let duration = duration(state, body.duration_minutes, &mut errors);
    let before = buffer(
        "buffer_before_minutes",
        body.buffer_before_minutes.unwrap_or(0),
        &mut errors,
    );
    let after = buffer(
        "buffer_after_minutes",
        body.buffer_after_minutes.unwrap_or(0),
        &mut errors,
    );
    let doctor_ids = doctor_list(body.doctor_ids.unwrap_or_default(), &mut errors);
    domain::collect(errors)?;
    let mut tx = state.pool.begin().await?;
    check_doctors(&mut tx, &doctor_ids).await?;
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO services (id, name, duration_minutes, buffer_before_minutes,
                               buffer_after_minutes, active)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(name)
    .bind(duration)
    .bind(before)
    .bind(after)
    .bind(body.active.unwrap_or(true))
    .execute(&mut *tx)
    .await
    .map_err(named)?;
    replace_doctors(&mut tx, id, &doctor_ids).await?;
    tx.commit().await?;
    Ok(id)
}

async fn load(state: &AppState, id: Uuid) -> Result<Option<Service>, ApiError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM services WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&state.pool)
    .await?)
}

/// Create a service, optionally with the doctors who offer it (admin).
#[utoipa::path(post, path = "/services", tag = "services", security(("bearer" = [])),
    request_body = NewService,
    responses((status = 201, body = Service), (status = 403, body = ErrorBody),
        (status = 409, description = "The name is taken (names are compared ignoring case)", body = ErrorBody),
        (status = 422, description = "Invalid values, or a `doctor_ids` entry that is no doctor", body = ErrorBody)))]
async fn create_service(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<NewService>,
) -> Result<(StatusCode, Json<Service>), ApiError> {
    user.require(&[Role::Admin])?;
    let id = create_one(&state, body).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            load(&state, id)
                .await?
                .ok_or(ApiError::NotFound("service"))?,
        ),
    ))
}

/// Create many services; each item gets its own result (admin).
///
/// Each item is meant to be a `NewService`; an item that is not (wrong fields or types, invalid
/// values, a taken name, an unknown doctor) is not created and its result says why, with the
/// code, message and details a single create would answer.
#[utoipa::path(post, path = "/services/bulk", tag = "services", security(("bearer" = [])),
    request_body(content = BulkBody, description = "`NewService` items"),
    responses((status = 200, body = BulkResult), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_services(
    State(state): State<AppState>,
    user: AuthUser,
    AppJsonArray(items): AppJsonArray,
) -> Result<Json<BulkResult>, ApiError> {
    user.require(&[Role::Admin])?;
    bulk::run(items, |body: NewService| create_one(&state, body)).await
}

/// A service by id.
#[utoipa::path(get, path = "/services/{id}", tag = "services", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Service)))]
async fn get_service(
    State(state): State<AppState>,
    _user: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<Service>, ApiError> {
    load(&state, id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("service"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ServiceFilter {
    /// Part of the name.
    #[param(schema_with = domain::schema::query_filter)]
    pub q: Option<String>,
    pub active: Option<bool>,
    /// Only the services this doctor offers.
    pub doctor_id: Option<Uuid>,
    /// 1-based page number (default 1).
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    /// Items per page (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub per_page: Option<i64>,
}

/// List services by name, paginated and filterable.
#[utoipa::path(get, path = "/services", tag = "services", security(("bearer" = [])),
    params(ServiceFilter), responses((status = 200, body = Page<Service>)))]
async fn list_services(
    State(state): State<AppState>,
    _user: AuthUser,
    AppQuery(filter): AppQuery<ServiceFilter>,
) -> Result<Json<Page<Service>>, ApiError> {
    let params = PageParams {
        page: filter.page,
        per_page: filter.per_page,
    };
    let conditions = |qb: &mut QueryBuilder<Postgres>| {
        qb.push(" WHERE true");
        if let Some(active) = filter.active {
            qb.push(" AND active = ").push_bind(active);
        }
        if let Some(q) = &filter.q {
            qb.push(" AND name ILIKE ")
                .push_bind(format!("%{}%", domain::like_escape(q)));
        }
        if let Some(doctor) = filter.doctor_id {
            qb.push(
                " AND EXISTS (SELECT 1 FROM doctor_services o
                               WHERE o.service_id = services.id AND o.doctor_id = ",
            )
            .push_bind(doctor)
            .push(")");
        }
    };
    pagination::fetch(
        &state.pool,
        "services",
        COLUMNS,
        conditions,
        "name, id",
        params,
    )
    .await
    .map(Json)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceUpdate {
    #[schema(schema_with = domain::schema::name_change)]
    pub name: Option<String>,
    /// Within the configured booking duration bounds.
    #[serde(default, deserialize_with = "domain::optional_whole_number")]
    pub duration_minutes: Option<i64>,
    #[serde(default, deserialize_with = "domain::optional_whole_number")]
    #[schema(minimum = 0, maximum = 240)]
    pub buffer_before_minutes: Option<i64>,
    #[serde(default, deserialize_with = "domain::optional_whole_number")]
    #[schema(minimum = 0, maximum = 240)]
    pub buffer_after_minutes: Option<i64>,
    pub active: Option<bool>,
}

/// Update a service (admin). Bookings already made keep the time they were given.
#[utoipa::path(patch, path = "/services/{id}", tag = "services", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = ServiceUpdate,
    responses((status = 200, body = Service), (status = 403, body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn update_service(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<ServiceUpdate>,
) -> Result<Json<Service>, ApiError> {
    user.require(&[Role::Admin])?;
    let mut errors = Vec::new();
    let name = body
        .name
        .as_deref()
        .and_then(|v| domain::required_text("name", v, domain::MAX_NAME_CHARS, &mut errors));
    let duration = body
        .duration_minutes
        .and_then(|v| duration(&state, v, &mut errors));
    let before = body
        .buffer_before_minutes
        .and_then(|v| buffer("buffer_before_minutes", v, &mut errors));
    let after = body
        .buffer_after_minutes
        .and_then(|v| buffer("buffer_after_minutes", v, &mut errors));
    domain::collect(errors)?;
    let updated: Option<Service> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE services SET name = COALESCE($2, name),
                duration_minutes = COALESCE($3, duration_minutes),
                buffer_before_minutes = COALESCE($4, buffer_before_minutes),
                buffer_after_minutes = COALESCE($5, buffer_after_minutes),
                active = COALESCE($6, active), updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(name)
    .bind(duration)
    .bind(before)
    .bind(after)
    .bind(body.active)
    .fetch_optional(&state.pool)
    .await
    .map_err(named)?;
    updated.map(Json).ok_or(ApiError::NotFound("service"))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceDoctors {
    /// Exactly the doctors who offer the service from now on (empty: nobody).
    #[schema(max_items = 1000)]
    pub doctor_ids: Vec<Uuid>,
}

/// Replace the doctors who offer a service (admin).
#[utoipa::path(put, path = "/services/{id}/doctors", tag = "services", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = ServiceDoctors,
    responses((status = 200, body = Service), (status = 403, body = ErrorBody),
        (status = 422, description = "A `doctor_ids` entry that is no doctor", body = ErrorBody)))]
async fn set_service_doctors(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<ServiceDoctors>,
) -> Result<Json<Service>, ApiError> {
    user.require(&[Role::Admin])?;
    let mut errors = Vec::new();
    let doctor_ids = doctor_list(body.doctor_ids, &mut errors);
    domain::collect(errors)?;
    let mut tx = state.pool.begin().await?;
    // The service's row is locked, so two replacements run one after the other and the last
    // one is what stays.
    let found: Option<Uuid> =
        sqlx::query_scalar("UPDATE services SET updated_at = now() WHERE id = $1 RETURNING id")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    if found.is_none() {
        return Err(ApiError::NotFound("service"));
    }
    check_doctors(&mut tx, &doctor_ids).await?;
    replace_doctors(&mut tx, id, &doctor_ids).await?;
    tx.commit().await?;
    load(&state, id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("service"))
}
