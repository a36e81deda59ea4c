//! Authentication: `POST /auth/login` issues HS256 JWTs; [`AuthUser`] checks them on every
//! protected endpoint and answers one uniform 401 for every kind of bad token.
//!
//! Tokens are made and checked by [`crate::tokens`]; here the user must also still be active and
//! still have the token's generation (a password change or a deactivation bumps it, which
//! revokes every earlier token for good).

use std::net::SocketAddr;

use axum::{
    Json,
    extract::{ConnectInfo, FromRef, FromRequestParts, State},
    http::request::Parts,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::error::{ApiError, AppJson};
pub use crate::tokens::Role;
use crate::{passwords, state::AppState, tokens::Subject};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(login))
}

/// The authenticated caller.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub user_id: Uuid,
    pub role: Role,
    pub patient_id: Option<Uuid>,
    pub doctor_id: Option<Uuid>,
}

impl AuthUser {
    /// Refuses (403) unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }

    pub fn is_staff(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Secretary)
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or(ApiError::Unauthorized)?;
        let claims = state
            .tokens
            .verify(token.trim())
            .ok_or(ApiError::Unauthorized)?;
        // A deactivated user's tokens stop working at once, and so do tokens issued before the
        // user's last password change or deactivation (one query: active flag and generation).
        let valid: Option<bool> = super::timed(
            "auth_active_check",
            sqlx::query_scalar(
                "SELECT active AND token_generation = $3 FROM users WHERE id = $1 AND role = $2",
            )
            .bind(claims.sub)
            .bind(claims.role.as_str())
            .bind(claims.generation)
            .fetch_optional(&state.pool),
        )
        .await?;
        if valid != Some(true) {
            return Err(ApiError::Unauthorized);
        }
        Ok(AuthUser {
            user_id: claims.sub,
            role: claims.role,
            patient_id: claims.patient_id,
            doctor_id: claims.doctor_id,
        })
    }
}

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub username: String,
    pub password: String,
}

/// A bearer token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub user_id: Uuid,
    pub role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doctor_id: Option<Uuid>,
}

/// A user as login needs it.
#[derive(Debug, sqlx::FromRow)]
pub struct LoginUser {
    pub id: Uuid,
    pub role: Role,
    pub password_hash: Option<String>,
    pub active: bool,
    pub token_generation: i32,
    pub patient_id: Option<Uuid>,
    pub doctor_id: Option<Uuid>,
}

/// Log in and receive a bearer token.
#[utoipa::path(
    post, path = "/auth/login", tag = "auth",
    request_body = Login,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "Wrong credentials", body = super::error::ErrorBody),
        (status = 429, description = "Too many failed attempts from this address (for this username, or for any); see Retry-After. Failures elsewhere never lock the account: they only slow down attempts from addresses the user has not signed in from", body = super::error::ErrorBody),
    )
)]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    AppJson(body): AppJson<Login>,
) -> Result<Json<TokenResponse>, ApiError> {
    let username = body.username.trim().to_lowercase();
    let delay = state
        .login_limiter
        .check(&username, peer.ip())
        .map_err(|retry_after_secs| ApiError::TooManyRequests { retry_after_secs })?;
    if !delay.is_zero() {
        // Guesses spread over many addresses: slowed down, never locked (see login_limiter).
        tokio::time::sleep(delay).await;
    }
    let user: Option<LoginUser> = sqlx::query_as(
        "SELECT u.id, u.role, u.password_hash, u.active, u.token_generation, p.id AS patient_id, d.id AS doctor_id
           FROM users u
           LEFT JOIN patients p ON p.user_id = u.id
           LEFT JOIN doctors d ON d.user_id = u.id
          WHERE lower(u.username) = $1",
    )
    .bind(&username)
    .fetch_optional(&state.pool)
    .await?;
    // Verify against a dummy hash when the user does not exist, so timing does not reveal it.
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let valid = passwords::verify(body.password, hash).await;
    match user {
        Some(user) if valid && user.active => {
            state.login_limiter.succeeded(&username, peer.ip());
            let subject = Subject {
                user_id: user.id,
                role: user.role,
                patient_id: user.patient_id,
                doctor_id: user.doctor_id,
                generation: user.token_generation,
            };
            let (access_token, expires_in) = state
                .tokens
                .issue(subject)
                .map_err(|e| ApiError::Internal(e.into()))?;
            tracing::info!(user_id = %user.id, role = user.role.as_str(), "login");
            Ok(Json(TokenResponse {
                access_token,
                token_type: "Bearer",
                expires_in,
                user_id: user.id,
                role: user.role,
                patient_id: user.patient_id,
                doctor_id: user.doctor_id,
            }))
        }
        _ => {
            state.login_limiter.failed(&username, peer.ip());
            metrics::counter!("citaflow_api_login_failures_total").increment(1);
            Err(ApiError::Unauthorized)
        }
    }
}
