//! Create-many: every item is parsed and created on its own and gets its own result, so one
//! bad row never sinks the others and nothing fails silently.

use std::future::Future;

use axum::Json;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, ErrorDetail};

/// Most items accepted in one request.
pub const MAX_ITEMS: usize = 5_000;

/// Outcome of a create-many request.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResult {
    pub created: usize,
    pub failed: usize,
    pub results: Vec<BulkItem>,
}

/// Outcome of one item, by its position in the request.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkItem {
    pub index: usize,
    /// `created` or `error`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// Parses each item as `T` and creates it with `create`, in order.
pub async fn run<T, F, Fut>(items: Vec<Value>, create: F) -> Result<Json<BulkResult>, ApiError>
where
    T: DeserializeOwned,
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<Uuid, ApiError>>,
{
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(ApiError::validation(
            "items",
            format!("send between 1 and {MAX_ITEMS} items"),
        ));
    }
    let mut results = Vec::with_capacity(items.len());
    let mut created = 0;
    for (index, item) in items.into_iter().enumerate() {
        let outcome = match serde_json::from_value::<T>(item) {
            Ok(parsed) => create(parsed).await,
            Err(e) => Err(ApiError::BadRequest {
                code: "invalid_body",
                message: "The item does not have the expected fields or types.".into(),
                details: Some(serde_json::json!({ "reason": e.to_string() })),
            }),
        };
        match outcome {
            Ok(id) => {
                created += 1;
                results.push(BulkItem {
                    index,
                    status: "created",
                    id: Some(id),
                    error: None,
                });
            }
            Err(err) => {
                let (_, code, message, details) = err.parts();
                results.push(BulkItem {
                    index,
                    status: "error",
                    id: None,
                    error: Some(ErrorDetail {
                        code: code.into(),
                        message,
                        details,
                    }),
                });
            }
        }
    }
    let failed = results.len() - created;
    Ok(Json(BulkResult {
        created,
        failed,
        results,
    }))
}
