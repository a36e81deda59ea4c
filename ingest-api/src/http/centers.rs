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
    /// When this center's patients are reminded of a visit, in minutes before it (at most 10,
    /// each 1 to 43200 = 30 days; `[]`: no reminders). Omitted or null: the platform's
    /// `processor.reminder_offsets_minutes`.
    #[serde(default)]
    #[schema(schema_with = reminder_offsets_schema)]
    pub reminder_offsets_minutes: Option<Vec<Minutes>>,
}

/// A number of minutes, given as any JSON whole number (`60` or `60.0`).
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Minutes(#[serde(deserialize_with = "domain::whole_number")] pub i64);

/// Longest reminder offset, in minutes (30 days).
pub const MAX_REMINDER_OFFSET_MINUTES: i64 = 30 * 24 * 60;
/// Most reminder offsets per center (the database's check says the same).
pub const MAX_REMINDER_OFFSETS: usize = 10;

fn reminder_offsets_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::{
        ArrayBuilder, ObjectBuilder,
        schema::{SchemaType, Type},
    };
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(MAX_REMINDER_OFFSET_MINUTES)),
        )
        .max_items(Some(MAX_REMINDER_OFFSETS))
        .build()
        .into()
}

/// Checks reminder offsets (distinct, sorted longest first, as they are stored).
fn reminder_offsets(
    field: &str,
    offsets: Option<Vec<Minutes>>,
    errors: &mut Vec<super::error::FieldError>,
) -> Option<Vec<i32>> {
    let mut offsets: Vec<i64> = offsets?.into_iter().map(|Minutes(m)| m).collect();
    if offsets.len() > MAX_REMINDER_OFFSETS
        || offsets
            .iter()
            .any(|o| !(1..=MAX_REMINDER_OFFSET_MINUTES).contains(o))
    {
        errors.push(super::error::FieldError::new(
            field,
            format!(
                "at most {MAX_REMINDER_OFFSETS} offsets, each between 1 and {MAX_REMINDER_OFFSET_MINUTES} minutes"
            ),
        ));
        return None;
    }
    offsets.sort_unstable_by(|a, b| b.cmp(a));
    offsets.dedup();
    Some(offsets.into_iter().map(|o| o as i32).collect())
}

/// A field that tells "absent" (`None`) from "null" (`Some(None)`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Serialize, FromRow, ToSchema)]
pub struct Center {
    pub id: Uuid,
    pub name: String,
    pub address: String,
    pub timezone: String,
    pub language: Option<String>,
    pub active: bool,
    /// The center's own reminder offsets (minutes before a visit, longest first); null: the
    /// platform's.
    pub reminder_offsets_minutes: Option<Vec<i32>>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, name, address, timezone, language, active, reminder_offsets_minutes, created_at";

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
    let offsets = reminder_offsets(
        "reminder_offsets_minutes",
        body.reminder_offsets_minutes,
        &mut errors,
    );
    domain::collect(errors)?;
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO centers (id, name, address, timezone, language, reminder_offsets_minutes)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(name)
    .bind(address)
    .bind(timezone)
    .bind(language)
    .bind(offsets)
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
    /// The center's reminder offsets, as on create; null: back to the platform's; omitted:
    /// unchanged.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = reminder_offsets_schema)]
    pub reminder_offsets_minutes: Option<Option<Vec<Minutes>>>,
}

/// Update a center (admin). `reminder_offsets_minutes` applies to visits confirmed from now
/// on (reminders already scheduled keep their times).
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
    let offsets_given = body.reminder_offsets_minutes.is_some();
    let offsets = reminder_offsets(
        "reminder_offsets_minutes",
        body.reminder_offsets_minutes.flatten(),
        &mut errors,
    );
    domain::collect(errors)?;
    let updated: Option<Center> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE centers SET name = COALESCE($2, name), address = COALESCE($3, address),
                timezone = COALESCE($4, timezone), language = COALESCE($5, language),
                active = COALESCE($6, active),
                reminder_offsets_minutes = CASE WHEN $7 THEN $8 ELSE reminder_offsets_minutes END,
                updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(name)
    .bind(address)
    .bind(timezone)
    .bind(language)
    .bind(body.active)
    .bind(offsets_given)
    .bind(offsets)
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
