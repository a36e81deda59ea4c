//! `/doctors`: creating a doctor creates its `doctor` user. Admins manage them; every
//! signed-in user can read them.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, Postgres, QueryBuilder};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{
    auth::{AuthUser, Role},
    bulk::{self, BulkBody, BulkResult},
    error::{ApiError, AppJson, AppJsonArray, AppPath, AppQuery, ErrorBody},
    pagination::{self, Page, PageParams},
    users,
};
use crate::{domain, state::AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_doctor, list_doctors))
        .routes(routes!(create_doctors))
        .routes(routes!(get_doctor, update_doctor))
        .routes(routes!(deactivate_doctor))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDoctor {
    #[schema(schema_with = domain::schema::name_field)]
    pub name: String,
    #[schema(schema_with = domain::schema::specialty_field)]
    pub specialty: String,
    /// Username of the doctor's user (default `doctor-<first 8 characters of the id>`).
    #[schema(schema_with = domain::schema::username_change)]
    pub username: Option<String>,
    /// Password of the doctor's user; without one the doctor cannot log in until it is set.
    #[schema(schema_with = domain::schema::password_change)]
    pub password: Option<String>,
}

#[derive(Debug, Serialize, FromRow, ToSchema)]
pub struct Doctor {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub name: String,
    pub specialty: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, user_id, name, specialty, active, created_at";

async fn create_one(state: &AppState, body: NewDoctor) -> Result<Uuid, ApiError> {
    let mut errors = Vec::new();
    let name = domain::required_text("name", &body.name, domain::MAX_NAME_CHARS, &mut errors);
    let specialty = domain::required_text(
        "specialty",
        &body.specialty,
        domain::MAX_SPECIALTY_CHARS,
        &mut errors,
    );
    let id = Uuid::new_v4();
    let username = match &body.username {
        Some(u) => users::username(u, &mut errors),
        None => Some(format!("doctor-{}", &id.simple().to_string()[..8])),
    };
    let password = users::optional_password(body.password, &mut errors);
    domain::collect(errors)?;
    let mut tx = state.pool.begin().await?;
    let user_id = users::insert_user(
        &mut tx,
        &username.expect("validated"),
        password,
        Role::Doctor,
    )
    .await?;
    sqlx::query("INSERT INTO doctors (id, user_id, name, specialty) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(user_id)
        .bind(name)
        .bind(specialty)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}

async fn load(state: &AppState, id: Uuid) -> Result<Option<Doctor>, ApiError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM doctors WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&state.pool)
    .await?)
}

/// Create a doctor and its user (admin).
#[utoipa::path(post, path = "/doctors", tag = "doctors", security(("bearer" = [])),
    request_body = NewDoctor,
    responses((status = 201, body = Doctor), (status = 403, body = ErrorBody),
        (status = 409, description = "The username is taken", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn create_doctor(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<NewDoctor>,
) -> Result<(StatusCode, Json<Doctor>), ApiError> {
    user.require(&[Role::Admin])?;
    let id = create_one(&state, body).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            load(&state, id)
                .await?
                .ok_or(ApiError::NotFound("doctor"))?,
        ),
    ))
}

/// Create many doctors; each item gets its own result (admin).
///
/// Each item is meant to be a `NewDoctor`; an item that is not (wrong fields or types, invalid
/// values, a taken username) is not created and its result says why, with the code, message
/// and details a single create would answer.
#[utoipa::path(post, path = "/doctors/bulk", tag = "doctors", security(("bearer" = [])),
    request_body(content = BulkBody, description = "`NewDoctor` items"),
    responses((status = 200, body = BulkResult), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_doctors(
    State(state): State<AppState>,
    user: AuthUser,
    AppJsonArray(items): AppJsonArray,
) -> Result<Json<BulkResult>, ApiError> {
    user.require(&[Role::Admin])?;
    bulk::run(items, |body: NewDoctor| create_one(&state, body)).await
}

/// A doctor by id.
#[utoipa::path(get, path = "/doctors/{id}", tag = "doctors", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Doctor)))]
async fn get_doctor(
    State(state): State<AppState>,
    _user: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<Doctor>, ApiError> {
    load(&state, id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("doctor"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DoctorFilter {
    /// Part of the name.
    #[param(schema_with = domain::schema::query_filter)]
    pub q: Option<String>,
    /// The specialty, in any case.
    #[param(schema_with = domain::schema::query_filter)]
    pub specialty: Option<String>,
    pub active: Option<bool>,
    /// 1-based page number (default 1).
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    /// Items per page (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub per_page: Option<i64>,
}

/// List doctors, paginated and filterable.
#[utoipa::path(get, path = "/doctors", tag = "doctors", security(("bearer" = [])),
    params(DoctorFilter), responses((status = 200, body = Page<Doctor>)))]
async fn list_doctors(
    State(state): State<AppState>,
    _user: AuthUser,
    AppQuery(filter): AppQuery<DoctorFilter>,
) -> Result<Json<Page<Doctor>>, ApiError> {
    let params = PageParams {
        page: filter.page,
        per_page: filter.per_page,
    };
    let conditions = |qb: &mut QueryBuilder<Postgres>| {
        qb.push(" WHERE true");
        if let Some(active) = filter.active {
            qb.push(" AND active = ").push_bind(active);
        }
        if let Some(specialty) = &filter.specialty {
            qb.push(" AND lower(specialty) = lower(")
                .push_bind(specialty.clone())
                .push(")");
        }
        if let Some(q) = &filter.q {
            qb.push(" AND name ILIKE ")
                .push_bind(format!("%{}%", domain::like_escape(q)));
        }
    };
    pagination::fetch(
        &state.pool,
        "doctors",
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
pub struct DoctorUpdate {
    #[schema(schema_with = domain::schema::name_change)]
    pub name: Option<String>,
    #[schema(schema_with = domain::schema::specialty_change)]
    pub specialty: Option<String>,
    pub active: Option<bool>,
}

/// Update a doctor (admin). Their user follows an `active` given: `false` deactivates it and
/// revokes its tokens, as `POST /doctors/{id}/deactivate` does; `true` activates it (earlier
/// tokens stay revoked; the doctor logs in again).
#[utoipa::path(patch, path = "/doctors/{id}", tag = "doctors", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = DoctorUpdate,
    responses((status = 200, body = Doctor), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_doctor(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<DoctorUpdate>,
) -> Result<Json<Doctor>, ApiError> {
    user.require(&[Role::Admin])?;
    let mut errors = Vec::new();
    let name = body
        .name
        .as_deref()
        .and_then(|v| domain::required_text("name", v, domain::MAX_NAME_CHARS, &mut errors));
    let specialty = body.specialty.as_deref().and_then(|v| {
        domain::required_text("specialty", v, domain::MAX_SPECIALTY_CHARS, &mut errors)
    });
    domain::collect(errors)?;
    let mut tx = state.pool.begin().await?;
    let updated: Option<Doctor> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE doctors SET name = COALESCE($2, name), specialty = COALESCE($3, specialty),
                active = COALESCE($4, active), updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(name)
    .bind(specialty)
    .bind(body.active)
    .fetch_optional(&mut *tx)
    .await?;
    let doctor = updated.ok_or(ApiError::NotFound("doctor"))?;
    // The user follows an `active` given, in the same transaction: false cuts access and
    // revokes the user's tokens as the deactivate route does.
    if let (Some(active), Some(user_id)) = (body.active, doctor.user_id) {
        users::set_active(&mut tx, user_id, active).await?;
    }
    tx.commit().await?;
    Ok(Json(doctor))
}

/// Deactivate a doctor and its user: new bookings with them are rejected, and the user can no
/// longer log in and their tokens are revoked, for good (admin).
#[utoipa::path(post, path = "/doctors/{id}/deactivate", tag = "doctors", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Doctor), (status = 403, body = ErrorBody)))]
async fn deactivate_doctor(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<Doctor>, ApiError> {
    user.require(&[Role::Admin])?;
    let mut tx = state.pool.begin().await?;
    let updated: Option<Doctor> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE doctors SET active = false, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let doctor = updated.ok_or(ApiError::NotFound("doctor"))?;
    if let Some(user_id) = doctor.user_id {
        users::set_active(&mut tx, user_id, false).await?;
    }
    tx.commit().await?;
    Ok(Json(doctor))
}
