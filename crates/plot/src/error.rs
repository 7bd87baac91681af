use plotters::drawing::DrawingAreaErrorKind;
use polars::prelude::PolarsError;

/// Why a chart could not be drawn. Every message says what went wrong and
/// what the caller can do about it, because the reader is usually a model
/// choosing its next tool call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    #[error("column `{name}` not found{suggestion}; the columns are: {available}")]
    ColumnNotFound {
        name: String,
        /// Either empty or "; did you mean `price`?".
        suggestion: String,
        available: String,
    },

    #[error("kind={kind} needs `{field}`: {what}")]
    MissingField {
        kind: &'static str,
        field: &'static str,
        what: &'static str,
    },

    #[error("kind={kind} does not use `{field}`: {hint}")]
    FieldNotUsed {
        kind: &'static str,
        field: &'static str,
        hint: &'static str,
    },

    #[error("{kind} needs {expected} column as `{field}`, but `{column}` is {actual}: {hint}")]
    WrongType {
        kind: &'static str,
        field: &'static str,
        column: String,
        expected: &'static str,
        actual: String,
        hint: String,
    },

    #[error("`{field}` = {value} is out of range: use a value from {min} to {max}")]
    OutOfRange {
        field: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },

    #[error(
        "reading the data for the chart failed: {0}; check the column's values, or cast it to a number or a date first"
    )]
    Data(#[from] PolarsError),

    #[error(
        "drawing the chart failed: {0}; try another size or kind of chart, and report this if it persists"
    )]
    Render(String),
}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for PlotError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        PlotError::Render(e.to_string())
    }
}
