//! `/centers`: the clinics of the network. Admins manage them; every signed-in user can read
//! them (patients need them to book).

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
};
use crate::{domain, state::AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_center, list_centers))
        .routes(routes!(create_centers))
        .routes(routes!(get_center, update_center))
        .routes(routes!(deactivate_center))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCenter {
    #[schema(schema_with = domain::schema::name_field)]
    pub name: String,
    #[schema(schema_with = domain::schema::address_field)]
    pub address: String,
    /// IANA time zone, e.g. `Europe/Madrid`.
    #[schema(schema_with = domain::schema::time_zone_field)]
    pub timezone: String,
    /// Language of notifications for patients without one (`es` or `en`).
    #[schema(schema_with = domain::schema::language_change)]
    pub language: Option<String>,
}

#[derive(Debug, Serialize, FromRow, ToSchema)]
pub struct Center {
    pub id: Uuid,
    pub name: String,
    pub address: String,
    pub timezone: String,
    pub language: Option<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, name, address, timezone, language, active, created_at";

async fn create_one(state: &AppState, body: NewCenter) -> Result<Uuid, ApiError> {
    let mut errors = Vec::new();
    let name = domain::required_text("name", &body.name, domain::MAX_NAME_CHARS, &mut errors);
    let address = domain::required_text(
        "address",
        &body.address,
        domain::MAX_ADDRESS_CHARS,
        &mut errors,
    );
    let timezone = domain::time_zone("timezone", &body.timezone, &mut errors);
    let language = domain::language("language", body.language.as_deref(), &mut errors);
    domain::collect(errors)?;
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO centers (id, name, address, timezone, language) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(name)
    .bind(address)
    .bind(timezone)
    .bind(language)
    .execute(&state.pool)
    .await?;
    Ok(id)
}

async fn load(state: &AppState, id: Uuid) -> Result<Option<Center>, ApiError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM centers WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&state.pool)
    .await?)
}

/// Create a center (admin).
#[utoipa::path(post, path = "/centers", tag = "centers", security(("bearer" = [])),
    request_body = NewCenter,
    responses((status = 201, body = Center), (status = 403, body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn create_center(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<NewCenter>,
) -> Result<(StatusCode, Json<Center>), ApiError> {
    user.require(&[Role::Admin])?;
    let id = create_one(&state, body).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            load(&state, id)
                .await?
                .ok_or(ApiError::NotFound("center"))?,
        ),
    ))
}

/// Create many centers; each item gets its own result (admin).
///
/// Each item is meant to be a `NewCenter`; an item that is not (wrong fields or types, invalid
/// values, a taken name) is not created and its result says why, with the code, message and
/// details a single create would answer.
#[utoipa::path(post, path = "/centers/bulk", tag = "centers", security(("bearer" = [])),
    request_body(content = BulkBody, description = "`NewCenter` items"),
    responses((status = 200, body = BulkResult), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_centers(
    State(state): State<AppState>,
    user: AuthUser,
    AppJsonArray(items): AppJsonArray,
) -> Result<Json<BulkResult>, ApiError> {
    user.require(&[Role::Admin])?;
    bulk::run(items, |body: NewCenter| create_one(&state, body)).await
}

/// A center by id.
#[utoipa::path(get, path = "/centers/{id}", tag = "centers", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Center)))]
async fn get_center(
    State(state): State<AppState>,
    _user: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<Center>, ApiError> {
    load(&state, id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("center"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CenterFilter {
    /// Part of the name.
    #[param(schema_with = domain::schema::query_filter)]
    pub q: Option<String>,
    pub active: Option<bool>,
    /// 1-based page number (default 1).
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    /// Items per page (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub per_page: Option<i64>,
}

/// List centers, paginated and filterable.
#[utoipa::path(get, path = "/centers", tag = "centers", security(("bearer" = [])),
    params(CenterFilter), responses((status = 200, body = Page<Center>)))]
async fn list_centers(
    State(state): State<AppState>,
    _user: AuthUser,
    AppQuery(filter): AppQuery<CenterFilter>,
) -> Result<Json<Page<Center>>, ApiError> {
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
    };
    pagination::fetch(
        &state.pool,
        "centers",
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
pub struct CenterUpdate {
    #[schema(schema_with = domain::schema::name_change)]
    pub name: Option<String>,
    #[schema(schema_with = domain::schema::address_change)]
    pub address: Option<String>,
    #[schema(schema_with = domain::schema::time_zone_change)]
    pub timezone: Option<String>,
    #[schema(schema_with = domain::schema::language_change)]
    pub language: Option<String>,
    pub active: Option<bool>,
}

/// Update a center (admin).
#[utoipa::path(patch, path = "/centers/{id}", tag = "centers", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = CenterUpdate,
    responses((status = 200, body = Center), (status = 403, body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn update_center(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<CenterUpdate>,
) -> Result<Json<Center>, ApiError> {
    user.require(&[Role::Admin])?;
    let mut errors = Vec::new();
    let name = body
        .name
        .as_deref()
        .and_then(|v| domain::required_text("name", v, domain::MAX_NAME_CHARS, &mut errors));
    let address = body
        .address
        .as_deref()
        .and_then(|v| domain::required_text("address", v, domain::MAX_ADDRESS_CHARS, &mut errors));
    let timezone = body
        .timezone
        .as_deref()
        .and_then(|v| domain::time_zone("timezone", v, &mut errors));
    let language = domain::language("language", body.language.as_deref(), &mut errors);
    domain::collect(errors)?;
    let updated: Option<Center> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE centers SET name = COALESCE($2, name), address = COALESCE($3, address),
                timezone = COALESCE($4, timezone), language = COALESCE($5, language),
                active = COALESCE($6, active), updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(name)
    .bind(address)
    .bind(timezone)
    .bind(language)
    .bind(body.active)
    .fetch_optional(&state.pool)
    .await?;
    updated.map(Json).ok_or(ApiError::NotFound("center"))
}

/// Deactivate a center: new bookings there are rejected (admin).
#[utoipa::path(post, path = "/centers/{id}/deactivate", tag = "centers", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Center), (status = 403, body = ErrorBody)))]
async fn deactivate_center(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<Center>, ApiError> {
    user.require(&[Role::Admin])?;
    let updated: Option<Center> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE centers SET active = false, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .fetch_optional(&state.pool)
    .await?;
    updated.map(Json).ok_or(ApiError::NotFound("center"))
}
