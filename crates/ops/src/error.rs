//! Errors of transformations, worded for a model that must fix its call.

use polars::error::PolarsError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpsError {
    /// A column that is not in the table; carries the nearest names.
    #[error("column '{name}' not found{}", suggest(.suggestions, .available))]
    UnknownColumn {
        name: String,
        suggestions: Vec<String>,
        available: Vec<String>,
    },

    /// A strategy or operation that does not fit a column's type.
    #[error("{0}")]
    WrongType(String),

    /// A SQL expression or query that could not be parsed or run.
    #[error("invalid SQL: {message}")]
    BadSql { message: String },

    /// SQL that tries to do something not allowed here (read files, write).
    #[error("refused SQL: {0}")]
    RefusedSql(String),

    /// Arguments that do not make sense together.
    #[error("{0}")]
    InvalidArgument(String),

    /// Strict cast that would lose values.
    #[error("{0}")]
    CastFailed(String),

    /// A request that would need more than a configured bound (SQL too
    /// long or too deep, a result too large): refused before the work starts.
    #[error("{message}")]
    LimitExceeded { limit: Limit, message: String },

    #[error("{0}")]
    Polars(#[from] PolarsError),
}

/// Which bound a request hit (see [`crate::sql::QueryLimits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    SqlBytes,
    SqlOperators,
    SqlSetOperations,
    QueryRows,
    QueryBytes,
}

fn suggest(suggestions: &[String], available: &[String]) -> String {
    let mut out = String::new();
    if !suggestions.is_empty() {
        out.push_str(&format!(
            "; did you mean {}?",
            suggestions
                .iter()
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    }
    const SHOWN: usize = 30;
    if available.is_empty() {
        out.push_str(" (the table has no columns)");
    } else {
        let shown: Vec<&str> = available.iter().take(SHOWN).map(String::as_str).collect();
        out.push_str(&format!(" Columns: {}", shown.join(", ")));
        if available.len() > SHOWN {
            out.push_str(&format!(" … and {} more", available.len() - SHOWN));
        }
    }
    out
}

pub type Result<T, E = OpsError> = std::result::Result<T, E>;
