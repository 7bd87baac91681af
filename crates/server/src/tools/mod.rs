//! The tools, one router per domain. Each handler reads parse → call →
//! render: the wire request becomes library arguments, one function does the
//! work and returns a typed response, and `reply` renders it.

mod clean;
mod history;
mod inspect;
mod plot;
mod quality;
mod query;
mod recipes;
mod sessions;
mod shape;

pub(crate) use sessions::SESSION_COUNT;

use dfmcp_ops::values::rows_as_json;
use polars::prelude::DataFrame;

use crate::error::ToolError;
use crate::render::rows_that_fit;
use crate::wire::{Cell, ColumnInfo, RowsResponse};

/// Cells longer than this are cut in row views.
const CELL_CHARS: usize = 200;

/// Checks a user-given table name: it must already be a safe identifier.
pub(crate) fn check_table_name(name: &str) -> Result<String, ToolError> {
    let safe = dfmcp_ingest::naming::sanitize_table_name(name);
    if safe == name {
        Ok(safe)
    } else {
        Err(ToolError::invalid(format!(
            "'{name}' is not a usable table name: use letters, digits and _ and start with a letter (for example '{safe}')"
        )))
    }
}

pub(crate) fn column_list(df: &DataFrame, max: usize) -> Vec<ColumnInfo> {
    dfmcp_ops::columns::visible(df)
        .columns()
        .iter()
        .take(max)
        .map(|c| ColumnInfo {
            name: c.name().to_string(),
            dtype: c.dtype().to_string(),
        })
        .collect()
}

/// Rows of `df` (a window starting at `offset` of a result of `total` rows,
/// `None` when only a lower bound is known) as a response that fits in
/// `budget` characters.
pub(crate) fn bounded_rows(
    df: &DataFrame,
    offset: usize,
    total: Option<usize>,
    budget: usize,
    more_hint: impl Fn(usize) -> String,
) -> RowsResponse {
    let columns = column_list(df, usize::MAX);
    let mut rows = rows_as_json(df, CELL_CHARS);
    let fit = rows_that_fit(&rows, budget);
    rows.truncate(fit);
    let shown_end = offset + rows.len();
    let truncated = total.is_none_or(|t| shown_end < t);
    RowsResponse {
        columns,
        rows: rows
            .into_iter()
            .map(|r| r.into_iter().map(Cell).collect())
            .collect(),
        offset,
        total_rows: total,
        truncated,
        next: truncated.then(|| more_hint(shown_end)),
    }
}
