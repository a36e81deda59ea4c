//! `POST /auth/signup`: a patient creates their own account (the seeds' self-registration):
//! a patient record and its `patient` user, signed in at once, and a welcome email (an outbox
//! row in the same transaction, sent by the email notifier: `migrations/0010_welcome_emails.sql`). Limited per address like login
//! (`api.signups_per_address_per_hour`; every attempt counts, so the endpoint cannot be used
//! to probe which emails have accounts faster than a person types).

use std::net::SocketAddr;

use axum::{
    Json,
    extract::{ConnectInfo, State},
    http::StatusCode,
};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    auth::{Role, TokenResponse},
    error::{ApiError, AppJson, ErrorBody},
    patients::{self, NewPatient},
};
use crate::{domain, state::AppState, tokens::Subject};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(signup))
}

/// A new patient's own details. The email is the username.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUp {
    #[schema(schema_with = domain::schema::name_field)]
    pub name: String,
    /// The username too; the welcome email goes here.
    #[schema(format = "email", max_length = 254)]
    pub email: String,
    /// E.164, e.g. `+34600123456`: reminders by SMS.
    #[schema(schema_with = domain::schema::phone_change)]
    pub phone: Option<String>,
    /// `es` or `en`: the language of emails and SMS.
    #[schema(schema_with = domain::schema::language_change)]
    pub language: Option<String>,
    #[schema(min_length = 10, max_length = 256)]
    pub password: String,
}

/// Create a patient account and sign in (no token needed).
#[utoipa::path(
    post, path = "/auth/signup", tag = "auth",
    request_body = SignUp,
    responses(
        (status = 201, description = "Created and signed in", body = TokenResponse),
        (status = 409, description = "`duplicate`: an account with this email exists", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, description = "Too many sign-ups from this address; see Retry-After", body = ErrorBody),
    )
)]
async fn signup(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    AppJson(body): AppJson<SignUp>,
) -> Result<(StatusCode, Json<TokenResponse>), ApiError> {
    state
        .signup_limiter
        .check("signup", peer.ip())
        .map_err(|retry_after_secs| ApiError::TooManyRequests { retry_after_secs })?;
    state.signup_limiter.failed("signup", peer.ip());
    let mut errors = Vec::new();
    // A password is required here (staff may create patients without one).
    if body.password.is_empty() {
        errors.push(super::error::FieldError::new("password", "is required"));
    }
    let email = domain::email("email", &body.email, &mut errors);
    domain::collect(errors)?;
    let id = patients::create(
        &state,
        NewPatient {
            name: body.name,
            phone: body.phone,
            email,
            language: body.language,
            status: None,
            username: None,
            password: Some(body.password),
        },
        true,
    )
    .await?;
    let user_id: uuid::Uuid = sqlx::query_scalar("SELECT user_id FROM patients WHERE id = $1")
        .bind(id)
        .fetch_one(&state.pool)
        .await?;
    let (access_token, expires_in) = state
        .tokens
        .issue(Subject {
            user_id,
            role: Role::Patient,
            patient_id: Some(id),
            doctor_id: None,
            generation: 0,
        })
        .map_err(|e| ApiError::Internal(e.into()))?;
    tracing::info!(%user_id, patient_id = %id, "patient signed up");
    Ok((
        StatusCode::CREATED,
        Json(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in,
            user_id,
            role: Role::Patient,
            patient_id: Some(id),
            doctor_id: None,
        }),
    ))
}
