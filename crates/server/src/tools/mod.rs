//! The tools, one router per domain; handlers parse, call, render.

mod clean;
mod history;
mod inspect;
mod query;
mod sessions;

/// Checks a user-given table name: it must already be a safe identifier.
pub(crate) fn check_table_name(name: &str) -> Result<String, String> {
    let safe = dfmcp_ingest::naming::sanitize_table_name(name);
    if safe == name {
        Ok(safe)
    } else {
        Err(format!(
            "'{name}' is not a usable table name: use letters, digits and _ and start with a letter (for example '{safe}')"
        ))
    }
}

pub(crate) fn column_list(
    df: &polars::prelude::DataFrame,
    max: usize,
) -> Vec<crate::wire::ColumnInfo> {
    dfmcp_ops::columns::visible(df)
        .columns()
        .iter()
        .take(max)
        .map(|c| crate::wire::ColumnInfo {
            name: c.name().to_string(),
            dtype: c.dtype().to_string(),
        })
        .collect()
}
