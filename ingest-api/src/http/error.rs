//! The one error type of the HTTP boundary and its JSON shape:
//! `{"error": {"code": "...", "message": "...", "details": ...}}`.
//!
//! Internal failures are logged with their cause and answered with a generic message; the
//! client never sees SQL, Kafka or stack details.

use axum::{
    Json,
    extract::{
        FromRequest, Request,
        rejection::{JsonRejection, PathRejection, QueryRejection},
    },
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use citaflow_schemas::EncodeError;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use utoipa::ToSchema;

use super::bookings::Booking;

/// Everything a handler can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        message: String,
        details: Option<ErrorDetails>,
    },
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    /// A well-formed request that cannot be processed as sent (422 with its own `code`).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("authentication required")]
    Unauthorized,
    #[error("not allowed")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A configured limit was reached (409 with the limit in `details`).
    #[error("{message}")]
    LimitReached {
        code: &'static str,
        message: String,
        limit: u64,
    },
    #[error("this method is not allowed on this route")]
    MethodNotAllowed,
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    /// A dependency (database, Kafka, registry) is unavailable: the request was not accepted
    /// and may be retried.
    #[error("service temporarily unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// One invalid field and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    /// A 400 `code` whose details say what was wrong, e.g. which field has the wrong type.
    pub fn malformed(code: &'static str, message: impl Into<String>, reason: String) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
            details: Some(ErrorDetails::Reason(Reason { reason })),
        }
    }

    fn status_code_details(&self) -> (StatusCode, &'static str, Option<ErrorDetails>) {
        match self {
            ApiError::BadRequest { code, details, .. } => {
                (StatusCode::BAD_REQUEST, code, details.clone())
            }
            ApiError::Validation(fields) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                Some(ErrorDetails::Fields(fields.clone())),
            ),
            ApiError::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code, None),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", None),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden", None),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", None),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code, None),
            ApiError::LimitReached { code, limit, .. } => (
                StatusCode::CONFLICT,
                code,
                Some(ErrorDetails::Limit(Limit { limit: *limit })),
            ),
            ApiError::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", None)
            }
            ApiError::PayloadTooLarge(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", None)
            }
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                None,
            ),
            ApiError::TooManyRequests { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_requests", None)
            }
            ApiError::Unavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", None)
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error", None),
        }
    }
}

/// The shape of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `validation_failed`, `not_found`, `booking_rejected`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Extra information by `code`: the invalid fields (`validation_failed`), what was wrong
    /// (`invalid_body`, `malformed_json`, `invalid_path`, `invalid_query`), the decision
    /// (`booking_rejected`), the limit reached (`too_many_bookings`); `null` otherwise.
    pub details: Option<ErrorDetails>,
}

/// The `details` of an error, one shape per kind of error.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ErrorDetails {
    /// Every invalid field (`validation_failed`).
    Fields(Vec<FieldError>),
    /// What was wrong with a malformed request.
    Reason(Reason),
    /// Why a booking was not confirmed (`booking_rejected`).
    Rejection(Rejection),
    /// The configured limit that was reached (`too_many_bookings`).
    Limit(Limit),
}

/// A configured limit, e.g. the most future bookings a patient may hold.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Limit {
    pub limit: u64,
}

/// What was wrong with a malformed request, in the request's own terms.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Reason {
    pub reason: String,
}

/// Why a booking was not confirmed, and the booking as decided.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Rejection {
    /// `slot_taken`, `doctor_inactive`, `patient_inactive`, `slot_in_past`, ...
    pub reason_code: String,
    pub booking: Box<Booking>,
}

/// The JSON body of an error.
pub fn error_body(code: &str, message: &str, details: Option<ErrorDetails>) -> ErrorBody {
    ErrorBody {
        error: ErrorDetail {
            code: code.to_owned(),
            message: message.to_owned(),
            details,
        },
    }
}

impl ApiError {
    /// Status, code, client-facing message and details; internal causes are logged here and
    /// never returned.
    pub fn parts(&self) -> (StatusCode, &'static str, String, Option<ErrorDetails>) {
        let (status, code, details) = self.status_code_details();
        match self {
            ApiError::Internal(e) => tracing::error!(error = ?e, "request failed"),
            ApiError::Unavailable(e) => tracing::warn!(error = ?e, "dependency unavailable"),
            _ => {}
        }
        let message = match self {
            ApiError::Unavailable(_) => {
                "A dependency is temporarily unavailable; nothing was changed. Try again shortly."
                    .to_string()
            }
            ApiError::Unauthorized => "Missing, invalid or expired credentials.".to_string(),
            ApiError::Forbidden => "You are not allowed to do this.".to_string(),
            other => other.to_string(),
        };
        (status, code, message, details)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, details) = self.parts();
        let mut response = (status, Json(error_body(code, &message, details))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let ApiError::TooManyRequests { retry_after_secs } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
                "Expected a JSON body with `Content-Type: application/json`.".into(),
            ),
            // Where the text stops being JSON (line and column of the body).
            JsonRejection::JsonSyntaxError(e) => ApiError::malformed(
                "malformed_json",
                "The body is not valid JSON.",
                e.body_text(),
            ),
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge("The request body is too large.".into())
            }
            // Only a body that is valid JSON but not a `Value` could get here: none.
            _ => ApiError::malformed(
                "invalid_body",
                "The body could not be read.",
                "the body could not be read".into(),
            ),
        }
    }
}

/// Parses one JSON object into `T`. Anything but an object is refused (a derived
/// `Deserialize` would otherwise take an array as the fields in order), and errors name the
/// field and what was expected, never the Rust type.
pub fn from_object<T: DeserializeOwned>(value: Value, what: &str) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::malformed(
            "invalid_body",
            format!("The {what} must be a JSON object."),
            format!("expected a JSON object, got {}", json_kind(&value)),
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let reason = if path == "." {
            inner
        } else {
            format!("`{path}`: {inner}")
        };
        ApiError::malformed(
            "invalid_body",
            format!("The {what} does not have the expected fields or types."),
            reason,
        )
    })
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::malformed(
            "invalid_path",
            "A path parameter is not valid (ids are UUIDs).",
            rejection.body_text(),
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::malformed(
            "invalid_query",
            "A query parameter is not valid.",
            rejection.body_text(),
        )
    }
}

/// A command that cannot be encoded: the registry may come back (503); a value that does not
/// fit the schema is our bug (500).
impl From<EncodeError> for ApiError {
    fn from(err: EncodeError) -> Self {
        if err.is_transient() {
            ApiError::Unavailable(err.into())
        } else {
            ApiError::Internal(err.into())
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        if citaflow_platform::db::is_transient(&err) {
            return ApiError::Unavailable(err.into());
        }
        if let Some(db) = err.as_database_error() {
            if db.is_unique_violation() {
                return ApiError::conflict("duplicate", duplicate_message(db.constraint()));
            }
            if db.is_foreign_key_violation() {
                return ApiError::bad_request(
                    "unknown_reference",
                    "A referenced record does not exist.",
                );
            }
            if db.is_check_violation() {
                return ApiError::bad_request(
                    "invalid_value",
                    "A value is outside what is allowed.",
                );
            }
            // Class 22 (data exception): the input itself cannot be stored, e.g. a NUL
            // character in text or a number out of range.
            if db.code().is_some_and(|c| c.starts_with("22")) {
                return ApiError::bad_request(
                    "invalid_value",
                    "A value cannot be stored (e.g. it contains a NUL character or is out of range).",
                );
            }
        }
        ApiError::Internal(err.into())
    }
}

/// Duplicate messages by constraint name, so clients learn which field clashed.
pub fn duplicate_message(constraint: Option<&str>) -> String {
    match constraint {
        Some("users_username_key") => "A user with this username already exists.".into(),
        Some("centers_name_key") => "A center with this name already exists.".into(),
        Some("patients_email_key") => "A patient with this email already exists.".into(),
        Some("appointments_pkey") => "This booking already exists.".into(),
        Some("doctors_user_id_key") | Some("patients_user_id_key") => {
            "This user is already linked to another record.".into()
        }
        _ => "This record already exists.".into(),
    }
}

/// JSON object extractor whose rejections use [`ApiError`]'s shape: the body must be a JSON
/// object with the fields of `T` (see [`from_object`]).
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<Value>::from_request(req, state).await?;
        from_object(value, "body").map(AppJson)
    }
}

/// JSON array extractor (create-many bodies) whose rejections use [`ApiError`]'s shape; the
/// items are parsed one by one by their handler.
pub struct AppJsonArray(pub Vec<Value>);

impl<S: Send + Sync> FromRequest<S> for AppJsonArray {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<Value>::from_request(req, state).await? {
            Json(Value::Array(items)) => Ok(AppJsonArray(items)),
            Json(other) => Err(ApiError::malformed(
                "invalid_body",
                "The body must be a JSON array of items.",
                format!("expected a JSON array, got {}", json_kind(&other)),
            )),
        }
    }
}

/// Path extractor whose rejections use [`ApiError`]'s shape.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct AppPath<T>(pub T);

/// Query extractor whose rejections use [`ApiError`]'s shape.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct AppQuery<T>(pub T);

/// Unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}
