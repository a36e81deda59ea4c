//! `/users`: staff accounts (admins and secretaries) and passwords; admin only. Doctors' and
//! patients' users are created with their directory records.

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
use crate::{domain, passwords, state::AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_user, list_users))
        .routes(routes!(create_users))
        .routes(routes!(get_user, update_user))
        .routes(routes!(set_password))
        .routes(routes!(deactivate_user))
}

/// A new staff user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schema(schema_with = domain::schema::username_field)]
    pub username: String,
    #[schema(schema_with = domain::schema::password_field)]
    pub password: String,
    /// `admin` or `secretary` (doctors and patients get users with their records).
    #[schema(schema_with = staff_role)]
    pub role: Role,
}

/// The roles a staff user can have (doctors and patients get users with their records).
fn staff_role() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some([Role::Admin.as_str(), Role::Secretary.as_str()]))
        .build()
}

#[derive(Debug, Serialize, FromRow, ToSchema)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub role: Role,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

const USER_COLUMNS: &str = "id, username, role, active, created_at";

/// Length of a username, in characters.
pub const USERNAME_CHARS: std::ops::RangeInclusive<usize> = 3..=100;

/// Validates and normalises a username.
pub fn username(value: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    // Checked before lower-casing, so only ASCII is taken (the Kelvin sign lower-cases to `k`).
    let value = value.trim();
    let valid = USERNAME_CHARS.contains(&value.chars().count())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@+".contains(c));
    if valid {
        Some(value.to_ascii_lowercase())
    } else {
        errors.push(FieldError::new(
            "username",
            "must be 3 to 100 characters: letters, digits, and . _ - @ +",
        ));
        None
    }
}

/// Inserts a user; `password` may be absent (the user cannot log in until one is set).
pub async fn insert_user(
    conn: &mut PgConnection,
    username: &str,
    password: Option<String>,
    role: Role,
) -> Result<Uuid, ApiError> {
    let hash = match password {
        Some(p) => Some(passwords::hash(p).await?),
        None => None,
    };
    let id = Uuid::new_v4();
    sqlx::query("INSERT INTO users (id, username, password_hash, role) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(username)
        .bind(hash)
        .bind(role.as_str())
        .execute(conn)
        .await?;
    Ok(id)
}

/// Checks an optional password for a new doctor or patient user.
pub fn optional_password(value: Option<String>, errors: &mut Vec<FieldError>) -> Option<String> {
    let password = value?;
    if let Some(why) = passwords::weakness(&password) {
        errors.push(FieldError::new("password", why));
        return None;
    }
    Some(password)
}

async fn create_one(state: &AppState, body: NewUser) -> Result<Uuid, ApiError> {
    let mut errors = Vec::new();
    let name = username(&body.username, &mut errors);
    if let Some(why) = passwords::weakness(&body.password) {
        errors.push(FieldError::new("password", why));
    }
    if !matches!(body.role, Role::Admin | Role::Secretary) {
        errors.push(FieldError::new(
            "role",
            "must be admin or secretary; doctors and patients are created with their records",
        ));
    }
    domain::collect(errors)?;
    let mut conn = state.pool.acquire().await?;
    insert_user(
        &mut conn,
        &name.expect("validated"),
        Some(body.password),
        body.role,
    )
    .await
}

/// Create a staff user (admin only).
#[utoipa::path(post, path = "/users", tag = "users", security(("bearer" = [])),
    request_body = NewUser,
    responses((status = 201, body = User), (status = 403, body = ErrorBody),
        (status = 409, description = "The username is taken", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn create_user(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    user.require(&[Role::Admin])?;
    let id = create_one(&state, body).await?;
    Ok((
        StatusCode::CREATED,
        Json(load(&state, id).await?.ok_or(ApiError::NotFound("user"))?),
    ))
}

/// Create many staff users; each item gets its own result (admin only).
///
/// Each item is meant to be a `NewUser`; an item that is not (wrong fields or types, invalid
/// values, a taken username) is not created and its result says why, with the code, message
/// and details a single create would answer.
#[utoipa::path(post, path = "/users/bulk", tag = "users", security(("bearer" = [])),
    request_body(content = BulkBody, description = "`NewUser` items"),
    responses((status = 200, body = BulkResult), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_users(
    State(state): State<AppState>,
    user: AuthUser,
    AppJsonArray(items): AppJsonArray,
) -> Result<Json<BulkResult>, ApiError> {
    user.require(&[Role::Admin])?;
    bulk::run(items, |body: NewUser| create_one(&state, body)).await
}

async fn load(state: &AppState, id: Uuid) -> Result<Option<User>, ApiError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&state.pool)
    .await?)
}

/// A user by id (admin only).
#[utoipa::path(get, path = "/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = User), (status = 403, body = ErrorBody)))]
async fn get_user(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<User>, ApiError> {
    user.require(&[Role::Admin])?;
    load(&state, id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("user"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UserFilter {
    pub role: Option<Role>,
    pub active: Option<bool>,
    /// Part of the username.
    #[param(schema_with = domain::schema::query_filter)]
    pub q: Option<String>,
    /// 1-based page number (default 1).
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    /// Items per page (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub per_page: Option<i64>,
}

/// List users (admin only), paginated and filterable.
#[utoipa::path(get, path = "/users", tag = "users", security(("bearer" = [])),
    params(UserFilter), responses((status = 200, body = Page<User>), (status = 403, body = ErrorBody)))]
async fn list_users(
    State(state): State<AppState>,
    user: AuthUser,
    AppQuery(filter): AppQuery<UserFilter>,
) -> Result<Json<Page<User>>, ApiError> {
    user.require(&[Role::Admin])?;
    let params = PageParams {
        page: filter.page,
        per_page: filter.per_page,
    };
    let conditions = |qb: &mut QueryBuilder<Postgres>| {
        qb.push(" WHERE true");
        if let Some(role) = filter.role {
            qb.push(" AND role = ").push_bind(role.as_str());
        }
        if let Some(active) = filter.active {
            qb.push(" AND active = ").push_bind(active);
        }
        if let Some(q) = &filter.q {
            qb.push(" AND username ILIKE ")
                .push_bind(format!("%{}%", domain::like_escape(q)));
        }
    };
    pagination::fetch(
        &state.pool,
        "users",
        USER_COLUMNS,
        conditions,
        "username, id",
        params,
    )
    .await
    .map(Json)
}

/// Changes to a user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    #[schema(schema_with = domain::schema::username_change)]
    pub username: Option<String>,
    pub active: Option<bool>,
}

/// Update a user (admin only). Deactivating (`active: false`) revokes the user's tokens, as
/// `POST /users/{id}/deactivate` does.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = UserUpdate,
    responses((status = 200, body = User), (status = 403, body = ErrorBody),
        (status = 409, description = "The username is taken (`duplicate`), the user is the last active admin (`last_admin`), or an admin deactivating themselves (`self_deactivation`)", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn update_user(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<UserUpdate>,
) -> Result<Json<User>, ApiError> {
    user.require(&[Role::Admin])?;
    let mut errors = Vec::new();
    let name = body
        .username
        .as_deref()
        .and_then(|u| username(u, &mut errors));
    domain::collect(errors)?;
    let mut tx = state.pool.begin().await?;
    if body.active == Some(false) {
        check_deactivation(&mut tx, &user, id).await?;
    }
    let updated: Option<User> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE users SET username = COALESCE($2, username), active = COALESCE($3, active),
                token_generation = token_generation + CASE WHEN $3 = false THEN 1 ELSE 0 END,
                updated_at = now()
          WHERE id = $1 RETURNING {USER_COLUMNS}"
    )))
    .bind(id)
    .bind(name)
    .bind(body.active)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    updated.map(Json).ok_or(ApiError::NotFound("user"))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    #[schema(schema_with = domain::schema::password_field)]
    pub password: String,
}

/// Set a user's password (admin only). Every token issued to the user before is revoked
/// (theirs included when admins set their own: they log in again).
#[utoipa::path(post, path = "/users/{id}/password", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = NewPassword,
    responses((status = 204, description = "The password is set"), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_password(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<NewPassword>,
) -> Result<StatusCode, ApiError> {
    user.require(&[Role::Admin])?;
    if let Some(why) = passwords::weakness(&body.password) {
        return Err(ApiError::validation("password", why));
    }
    let hash = passwords::hash(body.password).await?;
    let updated = sqlx::query(
        "UPDATE users SET password_hash = $2, token_generation = token_generation + 1,
                    updated_at = now()
              WHERE id = $1",
    )
    .bind(id)
    .bind(hash)
    .execute(&state.pool)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(ApiError::NotFound("user"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Refuses a deactivation of user `id` by `caller` that would leave the clinic without an
/// active admin (409 `last_admin`) or that is the caller's own (409 `self_deactivation`).
///
/// Run it in the transaction that then deactivates `id`: deactivating an admin locks every
/// active admin's row (in id order, so concurrent calls queue rather than deadlock) until that
/// transaction ends. Two admins deactivating each other at once are thus decided one after the
/// other, and the second sees the first's change: one of them stays active.
async fn check_deactivation(
    conn: &mut PgConnection,
    caller: &AuthUser,
    id: Uuid,
) -> Result<(), ApiError> {
    // Roles never change, so the target's role needs no lock.
    let role: Option<Role> = sqlx::query_scalar("SELECT role FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let role = role.ok_or(ApiError::NotFound("user"))?;
    if role == Role::Admin {
        let active_admins: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM users WHERE role = 'admin' AND active ORDER BY id FOR UPDATE",
        )
        .fetch_all(&mut *conn)
        .await?;
        if !active_admins.iter().any(|admin| *admin != id) {
            return Err(ApiError::conflict(
                "last_admin",
                "This is the last active admin; activate or create another admin first.",
            ));
        }
    }
    if id == caller.user_id {
        return Err(ApiError::conflict(
            "self_deactivation",
            "You cannot deactivate yourself.",
        ));
    }
    Ok(())
}

/// Sets the active flag of user `id`; deactivating also bumps the user's token generation, so
/// every token issued before is revoked and stays so after a re-activation. For the records
/// that carry a user (a doctor's `active`, a patient's `status`), in their transaction.
pub async fn set_active(conn: &mut PgConnection, id: Uuid, active: bool) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE users SET active = $2,
                token_generation = token_generation + CASE WHEN $2 THEN 0 ELSE 1 END,
                updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(active)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deactivate a user: they can no longer log in and their tokens are revoked, for good (admin
/// only).
#[utoipa::path(post, path = "/users/{id}/deactivate", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = User), (status = 403, body = ErrorBody),
        (status = 409, description = "The user is the last active admin (`last_admin`), or an admin deactivating themselves (`self_deactivation`)", body = ErrorBody)))]
async fn deactivate_user(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<User>, ApiError> {
    user.require(&[Role::Admin])?;
    let mut tx = state.pool.begin().await?;
    check_deactivation(&mut tx, &user, id).await?;
    set_active(&mut tx, id, false).await?;
    let updated = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    updated.map(Json).ok_or(ApiError::NotFound("user"))
}
