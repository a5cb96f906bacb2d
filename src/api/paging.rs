//! Cursor pagination shared by every list operation: `limit` (1–100, default 50) and an
//! opaque `cursor` naming the last row seen by its `(time, id)`.

use super::problem::{ApiError, ApiResult};
use super::views::{decode_cursor, encode_cursor};

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 100;

pub fn page_limit(limit: Option<u32>) -> ApiResult<i64> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(i64::from(limit))
    } else {
        Err(ApiError::bad_request("invalid_field", Some("limit"), format!("limit must be 1 to {MAX_PAGE}")))
    }
}

pub fn page_cursor(cursor: Option<String>) -> ApiResult<Option<(i64, String)>> {
    cursor
        .map(|c| {
            decode_cursor(&c).ok_or_else(|| ApiError::bad_request("invalid_field", Some("cursor"), "malformed cursor"))
        })
        .transpose()
}

pub fn page_args(limit: Option<u32>, cursor: Option<String>) -> ApiResult<(i64, Option<(i64, String)>)> {
    Ok((page_limit(limit)?, page_cursor(cursor)?))
}

/// Cuts a page fetched with `limit + 1` rows to `limit` and gives the cursor of its last row.
pub fn paginate<T>(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> (i64, &str)) -> (Vec<T>, Option<String>) {
    if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        let next = rows.last().map(|row| {
            let (at, id) = key(row);
            encode_cursor(at, id)
        });
        (rows, next)
    } else {
        (rows, None)
    }
}
