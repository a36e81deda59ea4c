//! Create-many: every item is parsed and created on its own and gets its own result, so one
//! bad row never sinks the others and nothing fails silently.

use std::future::Future;

use axum::Json;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, ErrorDetail, from_object};

/// Most items accepted in one request.
pub const MAX_ITEMS: usize = 5_000;

/// Body of a create-many request: 1 to [`MAX_ITEMS`] items, each meant to be the body of the
/// single create. Items are checked one by one, so any item is taken and an invalid one gets
/// an `error` result.
/// (Documents the body; handlers read it as `AppJsonArray`.)
pub struct BulkBody;

impl utoipa::PartialSchema for BulkBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::{ArrayBuilder, ObjectBuilder, schema::SchemaType};
        ArrayBuilder::new()
            .items(ObjectBuilder::new().schema_type(SchemaType::AnyValue))
            .min_items(Some(1))
            .max_items(Some(MAX_ITEMS))
            .into()
    }
}

impl ToSchema for BulkBody {}

/// Outcome of a create-many request.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResult {
    pub created: usize,
    pub failed: usize,
    pub results: Vec<BulkItem>,
}

/// Outcome of one item, by its position in the request (`index`, from 0).
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum BulkItem {
    /// The item was created with this id.
    Created { index: usize, id: Uuid },
    /// The item was not created, for this reason (the same code, message and details a
    /// single create would answer).
    Error { index: usize, error: ErrorDetail },
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
        let outcome = match from_object::<T>(item, "item") {
            Ok(parsed) => create(parsed).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(id) => {
                created += 1;
                results.push(BulkItem::Created { index, id });
            }
            Err(err) => {
                let (_, code, message, details) = err.parts();
                results.push(BulkItem::Error {
                    index,
                    error: ErrorDetail {
                        code: code.into(),
                        message,
                        details,
                    },
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
