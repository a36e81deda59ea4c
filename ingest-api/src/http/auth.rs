//! Authentication: `POST /auth/login` issues HS256 JWTs; [`AuthUser`] checks them on every
//! protected endpoint and answers one uniform 401 for every kind of bad token.
//!
//! Tokens carry `sub` (user id), `role`, `iss`, `aud`, `iat`, `exp`, and the linked patient or
//! doctor id. Only HS256 is accepted (so `alg: none` and algorithm confusion fail), issuer and
//! audience must match, and the user must still be active.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{
    Json,
    extract::{ConnectInfo, FromRef, FromRequestParts, State},
    http::request::Parts,
};
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::error::{ApiError, AppJson};
use crate::{passwords, state::AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(login))
}

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum Role {
    Admin,
    Secretary,
    Doctor,
    Patient,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Secretary => "secretary",
            Role::Doctor => "doctor",
            Role::Patient => "patient",
        }
    }
}

/// JWT claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doctor_id: Option<Uuid>,
}

/// Signing and verification keys with the token rules.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_secs: i64,
}

impl TokenKeys {
    pub fn new(secret: &[u8], issuer: &str, audience: &str, ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl_secs: ttl_secs as i64,
        }
    }

    pub fn issue(&self, user: &LoginUser) -> Result<(String, i64), ApiError> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user.id,
            role: user.role,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + self.ttl_secs,
            patient_id: user.patient_id,
            doctor_id: user.doctor_id,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(e.into()))?;
        Ok((token, self.ttl_secs))
    }

    pub fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
    }
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
        // A deactivated user's tokens stop working at once.
        let active: Option<bool> = super::timed(
            "auth_active_check",
            sqlx::query_scalar("SELECT active FROM users WHERE id = $1 AND role = $2")
                .bind(claims.sub)
                .bind(claims.role.as_str())
                .fetch_optional(&state.pool),
        )
        .await?;
        if active != Some(true) {
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
        (status = 429, description = "Too many failed attempts; see Retry-After", body = super::error::ErrorBody),
    )
)]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    AppJson(body): AppJson<Login>,
) -> Result<Json<TokenResponse>, ApiError> {
    let username = body.username.trim().to_lowercase();
    state.login_limiter.check(&username, peer.ip())?;
    let user: Option<LoginUser> = sqlx::query_as(
        "SELECT u.id, u.role, u.password_hash, u.active, p.id AS patient_id, d.id AS doctor_id
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
            state.login_limiter.succeeded(&username);
            let (access_token, expires_in) = state.tokens.issue(&user)?;
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

/// Slows down password guessing: after `max_per_user` failures for one username, or
/// `max_per_address` from one address, within `window`, further attempts get 429 until the
/// window passes. Kept per API replica.
pub struct LoginLimiter {
    window: Duration,
    max_per_user: usize,
    max_per_address: usize,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginLimiter {
    pub fn new(window: Duration, max_per_user: usize, max_per_address: usize) -> Self {
        Self {
            window,
            max_per_user,
            max_per_address,
            failures: Mutex::default(),
        }
    }

    fn keys(username: &str, ip: IpAddr) -> [String; 2] {
        [format!("user:{username}"), format!("addr:{ip}")]
    }

    pub fn check(&self, username: &str, ip: IpAddr) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut failures = self.failures.lock().expect("limiter lock");
        let [user_key, addr_key] = Self::keys(username, ip);
        for (key, max) in [
            (user_key, self.max_per_user),
            (addr_key, self.max_per_address),
        ] {
            if let Some(times) = failures.get_mut(&key) {
                times.retain(|t| now.duration_since(*t) < self.window);
                if times.len() >= max {
                    let oldest = times[0];
                    let retry = self.window.saturating_sub(now.duration_since(oldest));
                    return Err(ApiError::TooManyRequests {
                        retry_after_secs: retry.as_secs().max(1),
                    });
                }
            }
        }
        // Keep the map from growing without bound under a spray of usernames.
        if failures.len() > 100_000 {
            failures.retain(|_, times| times.iter().any(|t| now.duration_since(*t) < self.window));
        }
        Ok(())
    }

    pub fn failed(&self, username: &str, ip: IpAddr) {
        let now = Instant::now();
        let mut failures = self.failures.lock().expect("limiter lock");
        for key in Self::keys(username, ip) {
            failures.entry(key).or_default().push(now);
        }
    }

    pub fn succeeded(&self, username: &str) {
        self.failures
            .lock()
            .expect("limiter lock")
            .remove(&format!("user:{username}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role) -> LoginUser {
        LoginUser {
            id: Uuid::new_v4(),
            role,
            password_hash: None,
            active: true,
            patient_id: None,
            doctor_id: None,
        }
    }

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", "citaflow", "api", 60);
        let (token, _) = keys.issue(&user(Role::Patient)).unwrap();
        assert_eq!(keys.verify(&token).unwrap().role, Role::Patient);

        let other = TokenKeys::new(b"fedcba9876543210fedcba9876543210", "citaflow", "api", 60);
        assert!(other.verify(&token).is_none(), "wrong key");
        let wrong_audience =
            TokenKeys::new(b"0123456789abcdef0123456789abcdef", "citaflow", "other", 60);
        assert!(wrong_audience.verify(&token).is_none(), "wrong audience");

        let mut parts: Vec<&str> = token.split('.').collect();
        let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
        parts[0] = none_header;
        assert!(
            keys.verify(&format!("{}.{}.", parts[0], parts[1]))
                .is_none(),
            "alg none"
        );
    }

    #[test]
    fn expired_tokens_are_refused() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", "citaflow", "api", 0);
        let mut claims_user = user(Role::Admin);
        claims_user.role = Role::Admin;
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: claims_user.id,
            role: Role::Admin,
            iss: "citaflow".into(),
            aud: "api".into(),
            iat: now - 100,
            exp: now - 60,
            patient_id: None,
            doctor_id: None,
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap();
        assert!(keys.verify(&token).is_none());
    }

    #[test]
    fn the_limiter_blocks_after_repeated_failures_and_forgives_success() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 3, 10);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.check("ana", ip).is_ok());
            limiter.failed("ana", ip);
        }
        assert!(matches!(
            limiter.check("ana", ip),
            Err(ApiError::TooManyRequests { .. })
        ));
        assert!(
            limiter.check("luis", ip).is_ok(),
            "other users are not blocked by one's failures"
        );
        limiter.succeeded("ana");
        assert!(limiter.check("ana", ip).is_ok());
    }
}
