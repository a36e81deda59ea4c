//! Page-number pagination with totals, shared by every list endpoint.

use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, QueryBuilder, postgres::PgRow};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, FieldError};

pub const MAX_PER_PAGE: i64 = 200;

/// `?page=1&per_page=50`.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1-based page number (default 1).
    pub page: Option<i64>,
    /// Items per page (default 50, at most 200).
    pub per_page: Option<i64>,
}

impl PageParams {
    /// `(limit, offset, page, per_page)` after checking bounds.
    pub fn resolve(&self) -> Result<(i64, i64, i64, i64), ApiError> {
        let page = self.page.unwrap_or(1);
        let per_page = self.per_page.unwrap_or(50);
        let mut errors = Vec::new();
        if !(1..=1_000_000).contains(&page) {
            errors.push(FieldError::new("page", "must be between 1 and 1000000"));
        }
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            errors.push(FieldError::new(
                "per_page",
                format!("must be between 1 and {MAX_PER_PAGE}"),
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok((per_page, (page - 1) * per_page, page, per_page))
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: i64,
    pub per_page: i64,
    /// Items matching the filters, over all pages.
    pub total: i64,
}

/// One page of `SELECT columns FROM table`, filtered by `conditions` (which push their own
/// ` WHERE …`, applied to the count and to the page alike) and sorted by `order_by` (ending in
/// a unique column, so pages are stable), with the total.
pub async fn fetch<T>(
    pool: &PgPool,
    table: &str,
    columns: &str,
    conditions: impl Fn(&mut QueryBuilder<Postgres>),
    order_by: &str,
    params: PageParams,
) -> Result<Page<T>, ApiError>
where
    T: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
{
    let (limit, offset, page, per_page) = params.resolve()?;
    let mut count = QueryBuilder::new(format!("SELECT count(*) FROM {table}"));
    conditions(&mut count);
    let total: i64 = count.build_query_scalar().fetch_one(pool).await?;
    let mut select = QueryBuilder::new(format!("SELECT {columns} FROM {table}"));
    conditions(&mut select);
    select
        .push(format!(" ORDER BY {order_by} LIMIT "))
        .push_bind(limit)
        .push(" OFFSET ")
        .push_bind(offset);
    let items = select.build_query_as().fetch_all(pool).await?;
    Ok(Page {
        items,
        page,
        per_page,
        total,
    })
}
