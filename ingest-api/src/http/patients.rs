//! `/patients`: creating a patient creates its `patient` user. Admins and secretaries manage
//! them; a patient reads only their own record (others answer 404, revealing nothing).

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
        .routes(routes!(create_patient, list_patients))
        .routes(routes!(create_patients))
        .routes(routes!(get_patient, update_patient))
        .routes(routes!(deactivate_patient))
}

const STAFF: &[Role] = &[Role::Admin, Role::Secretary];

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPatient {
    #[schema(schema_with = domain::schema::name_field)]
    pub name: String,
    /// E.164, e.g. `+34600123456`.
    #[schema(schema_with = domain::schema::phone_change)]
    pub phone: Option<String>,
    #[schema(schema_with = domain::schema::email_change)]
    pub email: Option<String>,
    /// `es` or `en`.
    #[schema(schema_with = domain::schema::language_change)]
    pub language: Option<String>,
    /// `ACTIVE` (default) or `INACTIVE`.
    #[schema(schema_with = domain::schema::patient_status_change)]
    pub status: Option<String>,
    /// Username of the patient's user (default: the email, else `patient-<id prefix>`).
    #[schema(schema_with = domain::schema::username_change)]
    pub username: Option<String>,
    /// Password of the patient's user; without one the patient cannot log in until it is set.
    #[schema(schema_with = domain::schema::password_change)]
    pub password: Option<String>,
}

#[derive(Debug, Serialize, FromRow, ToSchema)]
pub struct Patient {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub language: Option<String>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    /// Appointments the patient did not come to (`no_show`); in `GET /patients/{id}` for
    /// staff only.
    #[sqlx(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_show_count: Option<i64>,
}

const COLUMNS: &str = "id, user_id, name, phone, email, language, status, created_at";

async fn create_one(state: &AppState, body: NewPatient) -> Result<Uuid, ApiError> {
    create(state, body, false).await
}

/// Creates a patient and its user; with `welcome`, also the welcome email's outbox row
/// (`welcome_emails`), in the same transaction.
pub(super) async fn create(
    state: &AppState,
    body: NewPatient,
    welcome: bool,
) -> Result<Uuid, ApiError> {
    let mut errors = Vec::new();
    let name = domain::required_text("name", &body.name, domain::MAX_NAME_CHARS, &mut errors);
    let phone = body
        .phone
        .as_deref()
        .and_then(|p| domain::phone("phone", p, &mut errors));
    let email = body
        .email
        .as_deref()
        .and_then(|e| domain::email("email", e, &mut errors));
    let language = domain::language("language", body.language.as_deref(), &mut errors);
    let status = domain::patient_status("status", body.status.as_deref(), &mut errors);
    let id = Uuid::new_v4();
    let username = match (&body.username, &email) {
        (Some(u), _) => users::username(u, &mut errors),
        (None, Some(email)) => Some(email.clone()),
        (None, None) => Some(format!("patient-{}", &id.simple().to_string()[..8])),
    };
    let password = users::optional_password(body.password, &mut errors);
    domain::collect(errors)?;
    let username_is_email = body.username.is_none() && email.is_some();
    let mut tx = state.pool.begin().await?;
    let user_id = users::insert_user(
        &mut tx,
        &username.expect("validated"),
        password,
        Role::Patient,
    )
    .await
    .map_err(|err| match err {
        // The username defaulted to the email: say what the client sent.
        ApiError::Conflict {
            code: "duplicate", ..
        } if username_is_email => {
            ApiError::conflict("duplicate", "A patient with this email already exists.")
        }
        other => other,
    })?;
    sqlx::query(
        "INSERT INTO patients (id, user_id, name, phone, email, language, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(user_id)
    .bind(name)
    .bind(phone)
    .bind(email)
    .bind(language)
    .bind(status)
    .execute(&mut *tx)
    .await?;
    if welcome {
        sqlx::query("INSERT INTO welcome_emails (patient_id) VALUES ($1)")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // Delivered on commit.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(citaflow_platform::db::WELCOME_CHANNEL)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(id)
}

async fn load(state: &AppState, id: Uuid) -> Result<Option<Patient>, ApiError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM patients WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&state.pool)
    .await?)
}

/// Create a patient and its user (admin, secretary).
#[utoipa::path(post, path = "/patients", tag = "patients", security(("bearer" = [])),
    request_body = NewPatient,
    responses((status = 201, body = Patient), (status = 403, body = ErrorBody),
        (status = 409, description = "The email or username is taken", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn create_patient(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<NewPatient>,
) -> Result<(StatusCode, Json<Patient>), ApiError> {
    user.require(STAFF)?;
    let id = create_one(&state, body).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            load(&state, id)
                .await?
                .ok_or(ApiError::NotFound("patient"))?,
        ),
    ))
}

/// Create many patients; each item gets its own result (admin, secretary).
///
/// Each item is meant to be a `NewPatient`; an item that is not (wrong fields or types,
/// invalid values, a taken email or username) is not created and its result says why, with
/// the code, message and details a single create would answer.
#[utoipa::path(post, path = "/patients/bulk", tag = "patients", security(("bearer" = [])),
    request_body(content = BulkBody, description = "`NewPatient` items"),
    responses((status = 200, body = BulkResult), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_patients(
    State(state): State<AppState>,
    user: AuthUser,
    AppJsonArray(items): AppJsonArray,
) -> Result<Json<BulkResult>, ApiError> {
    user.require(STAFF)?;
    bulk::run(items, |body: NewPatient| create_one(&state, body)).await
}

/// A patient by id (staff; a patient only themselves). Staff also see `no_show_count`.
#[utoipa::path(get, path = "/patients/{id}", tag = "patients", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Patient), (status = 403, description = "Doctors cannot read patients", body = ErrorBody),
        (status = 404, description = "No such patient, or (for a patient) not their own record", body = ErrorBody)))]
async fn get_patient(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<Patient>, ApiError> {
    match user.role {
        Role::Admin | Role::Secretary => {}
        Role::Patient if user.patient_id == Some(id) => {}
        Role::Patient => return Err(ApiError::NotFound("patient")),
        Role::Doctor => return Err(ApiError::Forbidden),
    }
    let mut patient = load(&state, id)
        .await?
        .ok_or(ApiError::NotFound("patient"))?;
    if user.is_staff() {
        patient.no_show_count = Some(
            sqlx::query_scalar(
                "SELECT count(*) FROM appointments WHERE patient_id = $1 AND attendance = 'no_show'",
            )
            .bind(id)
            .fetch_one(&state.pool)
            .await?,
        );
    }
    Ok(Json(patient))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PatientFilter {
    /// Part of the name, the email or the phone.
    #[param(schema_with = domain::schema::query_filter)]
    pub q: Option<String>,
    /// The email, in any case.
    #[param(schema_with = domain::schema::query_filter)]
    pub email: Option<String>,
    /// `ACTIVE` or `INACTIVE`, in any case (other values match nothing).
    #[param(schema_with = domain::schema::query_filter)]
    pub status: Option<String>,
    /// 1-based page number (default 1).
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    /// Items per page (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub per_page: Option<i64>,
}

/// List patients, paginated and filterable (admin, secretary).
#[utoipa::path(get, path = "/patients", tag = "patients", security(("bearer" = [])),
    params(PatientFilter), responses((status = 200, body = Page<Patient>), (status = 403, body = ErrorBody)))]
async fn list_patients(
    State(state): State<AppState>,
    user: AuthUser,
    AppQuery(filter): AppQuery<PatientFilter>,
) -> Result<Json<Page<Patient>>, ApiError> {
    user.require(STAFF)?;
    let params = PageParams {
        page: filter.page,
        per_page: filter.per_page,
    };
    let conditions = |qb: &mut QueryBuilder<Postgres>| {
        qb.push(" WHERE true");
        if let Some(status) = &filter.status {
            qb.push(" AND status = ")
                .push_bind(status.trim().to_uppercase());
        }
        if let Some(email) = &filter.email {
            qb.push(" AND lower(email) = lower(")
                .push_bind(email.trim().to_owned())
                .push(")");
        }
        if let Some(q) = &filter.q {
            // The desk finds a patient by whatever they say: name, email or phone.
            let like = format!("%{}%", domain::like_escape(q));
            qb.push(" AND (name ILIKE ")
                .push_bind(like.clone())
                .push(" OR email ILIKE ")
                .push_bind(like.clone())
                .push(" OR phone LIKE ")
                .push_bind(like.replace(' ', ""))
                .push(")");
        }
    };
    pagination::fetch(
        &state.pool,
        "patients",
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
pub struct PatientUpdate {
    #[schema(schema_with = domain::schema::name_change)]
    pub name: Option<String>,
    #[schema(schema_with = domain::schema::phone_change)]
    pub phone: Option<String>,
    #[schema(schema_with = domain::schema::email_change)]
    pub email: Option<String>,
    #[schema(schema_with = domain::schema::language_change)]
    pub language: Option<String>,
    #[schema(schema_with = domain::schema::patient_status_change)]
    pub status: Option<String>,
}

/// Update a patient (admin, secretary). Their user follows a `status` given: `INACTIVE`
/// deactivates it and revokes its tokens, as `POST /patients/{id}/deactivate` does; `ACTIVE`
/// activates it (earlier tokens stay revoked; the patient logs in again).
#[utoipa::path(patch, path = "/patients/{id}", tag = "patients", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = PatientUpdate,
    responses((status = 200, body = Patient), (status = 403, body = ErrorBody),
        (status = 409, description = "The email is taken", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn update_patient(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<PatientUpdate>,
) -> Result<Json<Patient>, ApiError> {
    user.require(STAFF)?;
    let mut errors = Vec::new();
    let name = body
        .name
        .as_deref()
        .and_then(|v| domain::required_text("name", v, domain::MAX_NAME_CHARS, &mut errors));
    let phone = body
        .phone
        .as_deref()
        .and_then(|p| domain::phone("phone", p, &mut errors));
    let email = body
        .email
        .as_deref()
        .and_then(|e| domain::email("email", e, &mut errors));
    let language = domain::language("language", body.language.as_deref(), &mut errors);
    let status = body
        .status
        .as_deref()
        .map(|s| domain::patient_status("status", Some(s), &mut errors));
    domain::collect(errors)?;
    let mut tx = state.pool.begin().await?;
    let updated: Option<Patient> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE patients SET name = COALESCE($2, name), phone = COALESCE($3, phone),
                email = COALESCE($4, email), language = COALESCE($5, language),
                status = COALESCE($6, status), updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(name)
    .bind(phone)
    .bind(email)
    .bind(language)
    .bind(&status)
    .fetch_optional(&mut *tx)
    .await?;
    let patient = updated.ok_or(ApiError::NotFound("patient"))?;
    // The user follows the status it is given, in the same transaction: INACTIVE cuts access
    // and revokes the user's tokens as the deactivate route does; ACTIVE lets them log in again.
    if let (Some(_), Some(user_id)) = (&status, patient.user_id) {
        users::set_active(&mut tx, user_id, patient.status == "ACTIVE").await?;
    }
    tx.commit().await?;
    Ok(Json(patient))
}

/// Deactivate a patient and their user: new bookings for them are rejected, and the user can no
/// longer log in and their tokens are revoked, for good (admin, secretary).
#[utoipa::path(post, path = "/patients/{id}/deactivate", tag = "patients", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Patient), (status = 403, body = ErrorBody)))]
async fn deactivate_patient(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<Patient>, ApiError> {
    user.require(STAFF)?;
    let mut tx = state.pool.begin().await?;
    let updated: Option<Patient> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE patients SET status = 'INACTIVE', updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let patient = updated.ok_or(ApiError::NotFound("patient"))?;
    if let Some(user_id) = patient.user_id {
        users::set_active(&mut tx, user_id, false).await?;
    }
    tx.commit().await?;
    Ok(Json(patient))
}
