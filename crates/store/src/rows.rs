//! Reading columns out of `AnyRow`s with errors instead of panics.

use crate::{Result, Row, StoreError};
use serde::de::DeserializeOwned;
use sqlx::Row as _;

pub(crate) fn text(row: &Row, column: &str) -> Result<String> {
    Ok(row.try_get::<String, _>(column)?)
}

pub(crate) fn opt_text(row: &Row, column: &str) -> Result<Option<String>> {
    Ok(row.try_get::<Option<String>, _>(column)?)
}

pub(crate) fn int(row: &Row, column: &str) -> Result<i64> {
    Ok(row.try_get::<i64, _>(column)?)
}

pub(crate) fn opt_int(row: &Row, column: &str) -> Result<Option<i64>> {
    Ok(row.try_get::<Option<i64>, _>(column)?)
}

pub(crate) fn json<T: DeserializeOwned>(row: &Row, column: &str) -> Result<T> {
    let raw = text(row, column)?;
    serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

pub(crate) fn parsed<T: std::str::FromStr<Err = String>>(row: &Row, column: &str) -> Result<T> {
    text(row, column)?.parse().map_err(StoreError::Corrupt)
}
