//! The clinic directory: centers, doctors and patients.

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use uuid::Uuid;

use super::error::{ApiError, AppJson, AppPath, FieldError};
use crate::{domain, state::AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/centers", post(create_center))
        .route("/centers/{id}", get(get_center))
        .route("/doctors", post(create_doctor))
        .route("/doctors/{id}", get(get_doctor))
        .route("/patients", post(create_patient))
        .route("/patients/{id}", get(get_patient))
}

fn collect(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() { Ok(()) } else { Err(ApiError::Validation(errors)) }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCenter {
    pub name: String,
    pub address: String,
    /// IANA time zone, e.g. `Europe/Madrid`.
    pub timezone: String,
    /// Language of notifications for patients without one (`es` or `en`).
    pub language: Option<String>,
}

#[derive(Debug, Serialize, FromRow)]
pub struct Center {
    pub id: Uuid,
    pub name: String,
    pub address: String,
    pub timezone: String,
    pub language: Option<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

async fn create_center(
    State(state): State<AppState>,
    AppJson(body): AppJson<NewCenter>,
) -> Result<(StatusCode, Json<Center>), ApiError> {
    let mut errors = Vec::new();
    let name = domain::required_text("name", &body.name, 200, &mut errors);
    let address = domain::required_text("address", &body.address, 300, &mut errors);
    let timezone = domain::time_zone("timezone", &body.timezone, &mut errors);
    let language = domain::language("language", body.language.as_deref(), &mut errors);
    collect(errors)?;
    let center: Center = sqlx::query_as(
        "INSERT INTO centers (id, name, address, timezone, language) VALUES ($1, $2, $3, $4, $5)
         RETURNING id, name, address, timezone, language, active, created_at",
    )
    .bind(Uuid::new_v4())
    .bind(name)
    .bind(address)
    .bind(timezone)
    .bind(language)
    .fetch_one(&state.pool)
    .await?;
    Ok((StatusCode::CREATED, Json(center)))
}

async fn get_center(
    State(state): State<AppState>,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<Center>, ApiError> {
    sqlx::query_as(
        "SELECT id, name, address, timezone, language, active, created_at FROM centers WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&state.pool)
    .await?
    .map(Json)
    .ok_or(ApiError::NotFound("center"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDoctor {
    pub name: String,
    pub specialty: String,
}

#[derive(Debug, Serialize, FromRow)]
pub struct Doctor {
    pub id: Uuid,
    pub name: String,
    pub specialty: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

async fn create_doctor(
    State(state): State<AppState>,
    AppJson(body): AppJson<NewDoctor>,
) -> Result<(StatusCode, Json<Doctor>), ApiError> {
    let mut errors = Vec::new();
    let name = domain::required_text("name", &body.name, 200, &mut errors);
    let specialty = domain::required_text("specialty", &body.specialty, 100, &mut errors);
    collect(errors)?;
    let doctor: Doctor = sqlx::query_as(
        "INSERT INTO doctors (id, name, specialty) VALUES ($1, $2, $3)
         RETURNING id, name, specialty, active, created_at",
    )
    .bind(Uuid::new_v4())
    .bind(name)
    .bind(specialty)
    .fetch_one(&state.pool)
    .await?;
    Ok((StatusCode::CREATED, Json(doctor)))
}

async fn get_doctor(
    State(state): State<AppState>,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<Doctor>, ApiError> {
    sqlx::query_as("SELECT id, name, specialty, active, created_at FROM doctors WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.pool)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("doctor"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPatient {
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub language: Option<String>,
    pub status: Option<String>,
}

#[derive(Debug, Serialize, FromRow)]
pub struct Patient {
    pub id: Uuid,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub language: Option<String>,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

async fn create_patient(
    State(state): State<AppState>,
    AppJson(body): AppJson<NewPatient>,
) -> Result<(StatusCode, Json<Patient>), ApiError> {
    let mut errors = Vec::new();
    let name = domain::required_text("name", &body.name, 200, &mut errors);
    let phone = body.phone.as_deref().and_then(|p| domain::phone("phone", p, &mut errors));
    let email = body.email.as_deref().and_then(|e| domain::email("email", e, &mut errors));
    let language = domain::language("language", body.language.as_deref(), &mut errors);
    let status = domain::patient_status("status", body.status.as_deref(), &mut errors);
    collect(errors)?;
    let patient: Patient = sqlx::query_as(
        "INSERT INTO patients (id, name, phone, email, language, status)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id, name, phone, email, language, status, created_at",
    )
    .bind(Uuid::new_v4())
    .bind(name)
    .bind(phone)
    .bind(email)
    .bind(language)
    .bind(status)
    .fetch_one(&state.pool)
    .await?;
    Ok((StatusCode::CREATED, Json(patient)))
}

async fn get_patient(
    State(state): State<AppState>,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<Patient>, ApiError> {
    sqlx::query_as(
        "SELECT id, name, phone, email, language, status, created_at FROM patients WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&state.pool)
    .await?
    .map(Json)
    .ok_or(ApiError::NotFound("patient"))
}
