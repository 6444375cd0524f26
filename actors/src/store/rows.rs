//! Reading rows into the catalog's types, with every surprise a [`StoreError::Decode`].
//!
//! The queries are runtime-checked, so a column's type is only known when a row arrives; these
//! helpers turn a wrong type, an unknown status name or a half-written failure into a Fatal
//! error that names what could not be read, instead of a panic.

use super::StoreError;
use artel_messages::{Failure, Timestamp};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;
use std::str::FromStr;

/// Column `column` of `row`, decoded as `T`.
pub(super) fn get<'r, T>(row: &'r PgRow, column: &'static str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column).map_err(|err| StoreError::Decode {
        what: column,
        reason: err.to_string(),
    })
}

/// A text column holding one of a closed set of names (a status, a kind).
pub(super) fn name<T>(row: &PgRow, column: &'static str) -> Result<T, StoreError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let text: String = get(row, column)?;
    text.parse().map_err(|err: T::Err| StoreError::Decode {
        what: column,
        reason: err.to_string(),
    })
}

/// A `timestamptz` column.
pub(super) fn time(row: &PgRow, column: &'static str) -> Result<Timestamp, StoreError> {
    get::<DateTime<Utc>>(row, column).map(Timestamp::from_datetime)
}

/// A nullable `timestamptz` column.
pub(super) fn time_opt(row: &PgRow, column: &'static str) -> Result<Option<Timestamp>, StoreError> {
    get::<Option<DateTime<Utc>>>(row, column).map(|t| t.map(Timestamp::from_datetime))
}

/// A non-negative integer column read as `u32`.
pub(super) fn count(row: &PgRow, column: &'static str) -> Result<u32, StoreError> {
    let value: i32 = get(row, column)?;
    u32::try_from(value).map_err(|_| StoreError::Decode {
        what: column,
        reason: format!("expected a non-negative number, got {value}"),
    })
}

/// The `error_class`/`error_reason` column pair as a [`Failure`].
pub(super) fn failure(row: &PgRow) -> Result<Option<Failure>, StoreError> {
    let class: Option<String> = get(row, "error_class")?;
    let reason: Option<String> = get(row, "error_reason")?;
    match (class.as_deref(), reason) {
        (None, None) => Ok(None),
        (Some("retryable"), Some(reason)) => Ok(Some(Failure::retryable(reason))),
        (Some("fatal"), Some(reason)) => Ok(Some(Failure::fatal(reason))),
        (class, reason) => Err(StoreError::Decode {
            what: "error",
            reason: format!(
                "unreadable class {class:?} with reason present: {}",
                reason.is_some()
            ),
        }),
    }
}

/// A failure's class as stored in `error_class`.
pub(super) fn class_name(failure: Option<&Failure>) -> Option<&'static str> {
    failure.map(|f| f.class.as_str())
}
