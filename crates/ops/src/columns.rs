//! Column lookup with suggestions, and the hidden columns that carry
//! intentional-missing marks with their rows.

use polars::prelude::*;

use crate::error::{OpsError, Result};

/// Prefix of the hidden boolean columns marking intentionally missing cells:
/// `<prefix><column>` is true where that column's null is meaningful. Being
/// columns, marks follow their rows through filters, sorts and deduplication.
pub const MARK_PREFIX: &str = "__dfmcp_intentional_missing__";

pub fn mark_column(column: &str) -> String {
    format!("{MARK_PREFIX}{column}")
}

pub fn is_hidden(name: &str) -> bool {
    name.starts_with(MARK_PREFIX)
}

/// Refuses a new column name in the reserved prefix: such a column would
/// vanish from view as a mark column.
pub fn refuse_reserved(name: &str) -> Result<()> {
    if is_hidden(name) {
        return Err(OpsError::InvalidArgument(format!(
            "'{name}' cannot be a column name: its prefix is reserved"
        )));
    }
    Ok(())
}

/// Names of the columns a user sees.
pub fn visible_names(df: &DataFrame) -> Vec<String> {
    df.get_column_names()
        .into_iter()
        .filter(|n| !is_hidden(n))
        .map(|n| n.to_string())
        .collect()
}

/// The frame without its hidden columns.
pub fn visible(df: &DataFrame) -> DataFrame {
    if !df.get_column_names().iter().any(|n| is_hidden(n)) {
        return df.clone();
    }
    let keep: Vec<Column> = df
        .columns()
        .iter()
        .filter(|c| !is_hidden(c.name()))
        .cloned()
        .collect();
    // Same height, fewer columns: cannot fail.
    DataFrame::new(df.height(), keep).unwrap_or_else(|_| df.clone())
}

/// Renames columns whose names are reserved for bookkeeping (they start with
/// [`MARK_PREFIX`]) so that user data never passes for it: the name loses one
/// leading underscore per round until it is free. Returns the frame and the
/// renames made.
pub fn quarantine(df: DataFrame) -> (DataFrame, Vec<(String, String)>) {
    if !df.get_column_names().iter().any(|n| is_hidden(n)) {
        return (df, Vec::new());
    }
    let mut taken: std::collections::HashSet<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let mut renames = Vec::new();
    let columns: Vec<Column> = df
        .columns()
        .iter()
        .map(|c| {
            let name = c.name().to_string();
            if !is_hidden(&name) {
                return c.clone();
            }
            let mut new = name.clone();
            while is_hidden(&new) || taken.contains(&new) {
                new = match new.strip_prefix('_') {
                    Some(rest) if !rest.is_empty() => rest.to_string(),
                    _ => format!("{new}_"),
                };
            }
            taken.insert(new.clone());
            renames.push((name, new.clone()));
            c.clone().with_name(new.into())
        })
        .collect();
    match DataFrame::new(df.height(), columns) {
        Ok(out) => (out, renames),
        Err(_) => (df, Vec::new()),
    }
}

/// The intentional-missing mask of a column, if it has one.
pub fn marks_of(df: &DataFrame, column: &str) -> Option<BooleanChunked> {
    df.column(&mark_column(column))
        .ok()
        .and_then(|c| c.as_materialized_series().bool().ok().cloned())
}

/// Up to three visible names closest to `wanted` (case-insensitive match first).
pub fn nearest(wanted: &str, available: &[String]) -> Vec<String> {
    let lower = wanted.to_lowercase();
    if let Some(exact) = available.iter().find(|a| a.to_lowercase() == lower) {
        return vec![exact.clone()];
    }
    let mut scored: Vec<(f64, &String)> = available
        .iter()
        .map(|a| (strsim::jaro_winkler(&lower, &a.to_lowercase()), a))
        .filter(|(score, a)| {
            *score >= 0.75 || a.to_lowercase().contains(&lower) || lower.contains(&a.to_lowercase())
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(3).map(|(_, a)| a.clone()).collect()
}

/// Checks that every name is a visible column; the first unknown one is an
/// error carrying the nearest names.
pub fn resolve(df: &DataFrame, names: &[String]) -> Result<Vec<String>> {
    let available = visible_names(df);
    for name in names {
        if is_hidden(name) || !available.iter().any(|a| a == name) {
            return Err(OpsError::UnknownColumn {
                name: name.clone(),
                suggestions: nearest(name, &available),
                available,
            });
        }
    }
    Ok(names.to_vec())
}

/// The given columns, or every visible column when none are given.
pub fn resolve_or_all(df: &DataFrame, names: Option<&[String]>) -> Result<Vec<String>> {
    match names {
        Some(names) if !names.is_empty() => resolve(df, names),
        _ => Ok(visible_names(df)),
    }
}

/// Maps a polars "column not found" error (possibly wrapped in context) to
/// [`OpsError::UnknownColumn`].
pub fn explain_polars(df: &DataFrame, err: PolarsError) -> OpsError {
    let text = err.to_string();
    let first = text.lines().next().unwrap_or("");
    let missing = matches!(err, PolarsError::ColumnNotFound(_))
        || first.contains("unable to find column")
        || first.contains("not found");
    if missing && let Some(name) = first.split('"').nth(1) {
        let available = visible_names(df);
        if !available.iter().any(|a| a == name) {
            return OpsError::UnknownColumn {
                suggestions: nearest(name, &available),
                name: name.to_string(),
                available,
            };
        }
    }
    OpsError::Polars(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a file column named like a hidden mark vanished from the
    /// schema.
    #[test]
    fn reserved_names_are_renamed() {
        let name = format!("{MARK_PREFIX}id");
        let df = DataFrame::new(
            1,
            vec![
                Column::new(name.as_str().into(), [1]),
                Column::new("x".into(), [2]),
            ],
        )
        .unwrap();
        let (out, renames) = quarantine(df);
        assert_eq!(renames.len(), 1);
        assert!(!is_hidden(&renames[0].1));
        assert_eq!(visible_names(&out).len(), 2);
    }

    #[test]
    fn suggestions() {
        let cols: Vec<String> = ["Price", "Quantity", "Product Name", "Date"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(nearest("price", &cols), ["Price"]);
        assert_eq!(nearest("Prce", &cols)[0], "Price");
        assert_eq!(nearest("product", &cols)[0], "Product Name");
        assert!(nearest("zzzz", &cols).is_empty());
    }
}
