//! Bearer tokens: HS256 JWTs with `sub` (user id), `role`, `iss`, `aud`, `iat`, `exp`, `gen`
//! (the user's token generation, see [`Claims::generation`]) and the linked patient or doctor
//! id. Only HS256 is accepted (so `alg: none` and algorithm confusion
//! fail), and issuer and audience must match.

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

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
    /// The user's `token_generation` when the token was issued; the token is accepted only
    /// while the user still has it (a password change or a deactivation bumps it). Tokens
    /// issued before the claim existed count as generation 0, the column's default.
    #[serde(rename = "gen", default)]
    pub generation: i32,
}

/// Whom a token is issued to.
#[derive(Debug, Clone, Copy)]
pub struct Subject {
    pub user_id: Uuid,
    pub role: Role,
    pub patient_id: Option<Uuid>,
    pub doctor_id: Option<Uuid>,
    /// The user's current token generation.
    pub generation: i32,
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

    /// A signed token for `subject` and how many seconds it lives.
    pub fn issue(&self, subject: Subject) -> jsonwebtoken::errors::Result<(String, i64)> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: subject.user_id,
            role: subject.role,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + self.ttl_secs,
            patient_id: subject.patient_id,
            doctor_id: subject.doctor_id,
            generation: subject.generation,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok((token, self.ttl_secs))
    }

    pub fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role) -> Subject {
        Subject {
            user_id: Uuid::new_v4(),
            role,
            patient_id: None,
            doctor_id: None,
            generation: 3,
        }
    }

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", "citaflow", "api", 60);
        let (token, _) = keys.issue(user(Role::Patient)).unwrap();
        let claims = keys.verify(&token).unwrap();
        assert_eq!(claims.role, Role::Patient);
        assert_eq!(claims.generation, 3, "the generation round-trips as `gen`");

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
            sub: claims_user.user_id,
            role: Role::Admin,
            iss: "citaflow".into(),
            aud: "api".into(),
            iat: now - 100,
            exp: now - 60,
            patient_id: None,
            doctor_id: None,
            generation: 0,
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap();
        assert!(keys.verify(&token).is_none());
    }
}
