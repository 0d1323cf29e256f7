//! Route handlers. Handlers are thin: they extract, check the scope, call
//! the store or the authority, and shape the answer. Errors go through
//! [`crate::error::ApiError`].

pub mod artifacts;
pub mod exports;
pub mod ops;
pub mod policy;
pub mod providers;
pub mod reports;
pub mod token;
pub mod verify;
pub mod vex;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use uuid::Uuid;

use crate::error::{ApiError, FieldError};

/// Page size when a list route is given no `limit`.
pub(crate) const DEFAULT_PAGE: u32 = 100;
/// Largest `limit` a list route accepts.
pub(crate) const MAX_PAGE: u32 = 500;

/// A query string that did not parse, as a 400 `INVALID_QUERY` problem.
pub(crate) fn bad_query(r: QueryRejection) -> ApiError {
    ApiError::BadRequest {
        code: "INVALID_QUERY",
        detail: r.body_text(),
    }
}

/// The page size of a list request: `limit` or [`DEFAULT_PAGE`], refused
/// outside 1..=[`MAX_PAGE`] with a field error on `limit`.
pub(crate) fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::Validation(vec![FieldError::new(
            "limit",
            "OUT_OF_RANGE",
            "limit must be 1-500",
        )]))
    }
}

/// The refusal of a `cursor` that is not a `nextCursor` value.
pub(crate) fn invalid_cursor() -> ApiError {
    ApiError::Validation(vec![FieldError::new(
        "cursor",
        "INVALID_CURSOR",
        "cursor must be a nextCursor value",
    )])
}

/// A UUID `cursor` (the id of the last row of the previous page).
pub(crate) fn uuid_cursor(cursor: Option<&str>) -> Result<Option<Uuid>, ApiError> {
    cursor
        .map(|c| Uuid::parse_str(c).map_err(|_| invalid_cursor()))
        .transpose()
}

/// A JSON body that did not parse, as a 400 `INVALID_BODY` problem.
pub(crate) fn bad_body(r: JsonRejection) -> ApiError {
    ApiError::BadRequest {
        code: "INVALID_BODY",
        detail: r.body_text(),
    }
}
