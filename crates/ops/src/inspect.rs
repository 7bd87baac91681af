//! Read-only views: column summaries, row previews, value counts.

use polars::prelude::*;
use serde::Serialize;

use crate::columns::{marks_of, resolve, resolve_or_all, visible, visible_names};
use crate::error::{OpsError, Result};
use crate::missing::fmt_num;
use crate::values::{cut, display};

/// Statistics of a numeric column.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NumericStats {
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    pub median: Option<f64>,
    pub q25: Option<f64>,
    pub q75: Option<f64>,
    pub zeros: usize,
    pub negatives: usize,
}

/// One frequent value and how often it occurs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TopValue {
    pub value: String,
    pub count: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TextStats {
    pub top: Vec<TopValue>,
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    pub empty_strings: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RangeStats {
    pub min: Option<String>,
    pub max: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BoolStats {
    pub true_count: usize,
    pub false_count: usize,
}

/// Summary of one column.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ColumnSummary {
    pub name: String,
    pub dtype: String,
    pub non_null: usize,
    /// Missing cells not marked intentional.
    pub missing: usize,
    pub missing_pct: f64,
    /// Missing cells marked intentional (reported apart).
    pub intentional_missing: usize,
    pub distinct: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numeric: Option<NumericStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextStats>,
    /// Range of dates, datetimes, times and durations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<RangeStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boolean: Option<BoolStats>,
}

/// Summary of a table: shape plus one page of column summaries.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TableSummary {
    pub rows: usize,
    pub columns: usize,
    pub duplicate_rows: usize,
    pub memory_bytes: usize,
    /// Index of the first column summarised.
    pub column_offset: usize,
    /// Column summaries on this page.
    pub column_summaries: Vec<ColumnSummary>,
    /// Offset of the next page, when there are more columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_column_offset: Option<usize>,
}

/// Summarises the table; `columns` restricts, `offset`/`limit` page through
/// the (visible) columns.
pub fn summarize(
    df: &DataFrame,
    columns: Option<&[String]>,
    offset: usize,
    limit: usize,
    top_n: usize,
) -> Result<TableSummary> {
    let names = resolve_or_all(df, columns)?;
    let page: Vec<&String> = names.iter().skip(offset).take(limit.max(1)).collect();
    let shown = visible(df);
    let duplicate_rows = if shown.width() == 0 || shown.height() == 0 {
        0
    } else {
        shown.is_duplicated()?.sum().unwrap_or(0) as usize
    };
    let mut summaries = Vec::with_capacity(page.len());
    for name in &page {
        summaries.push(summarize_column(df, name, top_n)?);
    }
    let end = offset + page.len();
    Ok(TableSummary {
        rows: df.height(),
        columns: visible_names(df).len(),
        duplicate_rows,
        memory_bytes: shown.estimated_size(),
        column_offset: offset,
        column_summaries: summaries,
        next_column_offset: (end < names.len()).then_some(end),
    })
}

fn summarize_column(df: &DataFrame, name: &str, top_n: usize) -> Result<ColumnSummary> {
    let s = df.column(name)?.as_materialized_series();
    let len = s.len();
    let nulls = s.null_count();
    let intentional = marks_of(df, name)
        .map(|m| (&m & &s.is_null()).sum().unwrap_or(0) as usize)
        .unwrap_or(0);
    let missing = nulls - intentional;
    let dtype = s.dtype().clone();
    let distinct = s.drop_nulls().n_unique().unwrap_or(0);
    let mut summary = ColumnSummary {
        name: name.to_string(),
        dtype: dtype.to_string(),
        non_null: len - nulls,
        missing,
        missing_pct: if len == 0 {
            0.0
        } else {
            (missing as f64 * 1000.0 / len as f64).round() / 10.0
        },
        intentional_missing: intentional,
        distinct,
        numeric: None,
        text: None,
        range: None,
        boolean: None,
    };
    if dtype.is_primitive_numeric() {
        let as_f = s.cast(&DataType::Float64)?;
        let ca = as_f.f64()?;
        summary.numeric = Some(NumericStats {
            min: ca.min(),
            max: ca.max(),
            mean: ca.mean(),
            std: ca.std(1),
            median: ca.median(),
            q25: ca.quantile(0.25, QuantileMethod::Linear).ok().flatten(),
            q75: ca.quantile(0.75, QuantileMethod::Linear).ok().flatten(),
            zeros: ca.equal(0.0).sum().unwrap_or(0) as usize,
            negatives: ca.lt(0.0).sum().unwrap_or(0) as usize,
        });
    } else if dtype.is_temporal() {
        summary.range = Some(RangeStats {
            min: s
                .min_reduce()
                .ok()
                .map(|v| display(v.value()))
                .filter(|v| !v.is_empty()),
            max: s
                .max_reduce()
                .ok()
                .map(|v| display(v.value()))
                .filter(|v| !v.is_empty()),
        });
    } else if dtype == DataType::Boolean {
        let ca = s.bool()?;
        let t = ca.sum().unwrap_or(0) as usize;
        summary.boolean = Some(BoolStats {
            true_count: t,
            false_count: len - nulls - t,
        });
    } else if dtype == DataType::String || dtype.is_categorical() {
        let text = s.cast(&DataType::String)?;
        let ca = text.str()?;
        let lengths: Vec<usize> = ca.iter().flatten().map(|v| v.chars().count()).collect();
        summary.text = Some(TextStats {
            top: top_values(&text, top_n)?,
            min_length: lengths.iter().min().copied(),
            max_length: lengths.iter().max().copied(),
            empty_strings: ca.iter().flatten().filter(|v| v.is_empty()).count(),
        });
    }
    Ok(summary)
}

fn top_values(s: &Series, n: usize) -> Result<Vec<TopValue>> {
    let counted = counts(s)?;
    let values = counted.columns()[0].as_materialized_series();
    let count_col = counted.columns()[1]
        .as_materialized_series()
        .cast(&DataType::UInt64)?;
    let count_ca = count_col.u64()?;
    Ok((0..counted.height().min(n))
        .map(|i| TopValue {
            value: cut(&values.get(i).map(|v| display(&v)).unwrap_or_default(), 80),
            count: count_ca.get(i).unwrap_or(0) as usize,
        })
        .collect())
}

/// Non-null values with their counts, most frequent first (ties by value).
fn counts(s: &Series) -> Result<DataFrame> {
    let non_null = s.drop_nulls();
    let counted = non_null.value_counts(true, true, "count".into(), false)?;
    let name = counted.columns()[0].name().clone();
    Ok(counted.sort(
        ["count", name.as_str()],
        SortMultipleOptions::default()
            .with_order_descending_multi([true, false])
            .with_maintain_order(true),
    )?)
}

/// Which rows a preview shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowWindow {
    Head(usize),
    Tail(usize),
    Slice { offset: usize, limit: usize },
}

/// Rows for display: a window of rows and a subset of columns (hidden columns
/// never shown).
pub fn preview(
    df: &DataFrame,
    window: RowWindow,
    columns: Option<&[String]>,
) -> Result<(DataFrame, usize)> {
    let names = resolve_or_all(df, columns)?;
    let selected = df.select(names)?;
    let height = selected.height();
    let (offset, limit) = match window {
        RowWindow::Head(n) => (0, n),
        RowWindow::Tail(n) => (height.saturating_sub(n), n),
        RowWindow::Slice { offset, limit } => (offset, limit),
    };
    if offset > height {
        return Err(OpsError::InvalidArgument(format!(
            "offset {offset} is past the end of the table ({height} rows)"
        )));
    }
    Ok((selected.slice(offset as i64, limit), offset))
}

/// Result of [`value_counts`].
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ValueCounts {
    pub column: String,
    pub rows: usize,
    pub missing: usize,
    pub distinct: usize,
    pub values: Vec<ValueCount>,
    /// Distinct values not listed (beyond the limit).
    pub others: usize,
    pub others_count: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ValueCount {
    pub value: serde_json::Value,
    pub count: usize,
    pub percent: f64,
}

/// The most frequent values of a column.
pub fn value_counts(df: &DataFrame, column: &str, limit: usize) -> Result<ValueCounts> {
    resolve(df, &[column.to_string()])?;
    let s = df.column(column)?.as_materialized_series();
    let counted = counts(s)?;
    let values = counted.columns()[0].as_materialized_series();
    let count_col = counted.columns()[1]
        .as_materialized_series()
        .cast(&DataType::UInt64)?;
    let count_ca = count_col.u64()?;
    let rows = s.len();
    let shown = counted.height().min(limit);
    let listed: Vec<ValueCount> = (0..shown)
        .map(|i| {
            let count = count_ca.get(i).unwrap_or(0) as usize;
            ValueCount {
                value: values
                    .get(i)
                    .map(|v| crate::values::to_json(&v, 200))
                    .unwrap_or(serde_json::Value::Null),
                count,
                percent: if rows == 0 {
                    0.0
                } else {
                    fmt_num(count as f64 * 100.0 / rows as f64)
                        .parse()
                        .unwrap_or(0.0)
                },
            }
        })
        .collect();
    let listed_total: usize = listed.iter().map(|v| v.count).sum();
    Ok(ValueCounts {
        column: column.to_string(),
        rows,
        missing: s.null_count(),
        distinct: counted.height(),
        others: counted.height() - shown,
        others_count: rows - s.null_count() - listed_total,
        values: listed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> DataFrame {
        df!(
            "price" => [Some(1.0), Some(2.0), None, Some(4.0)],
            "city" => [Some("Oslo"), Some("Rome"), Some("Oslo"), None],
            "ok" => [true, false, true, true],
        )
        .unwrap()
    }

    #[test]
    fn summary_numbers_text_bools() {
        let s = summarize(&frame(), None, 0, 50, 3).unwrap();
        assert_eq!((s.rows, s.columns), (4, 3));
        let price = &s.column_summaries[0];
        assert_eq!(price.missing, 1);
        assert_eq!(price.missing_pct, 25.0);
        let n = price.numeric.as_ref().unwrap();
        assert_eq!((n.min, n.max, n.median), (Some(1.0), Some(4.0), Some(2.0)));
        let city = &s.column_summaries[1];
        assert_eq!(
            city.text.as_ref().unwrap().top[0],
            TopValue {
                value: "Oslo".into(),
                count: 2
            }
        );
        assert_eq!(
            s.column_summaries[2].boolean.as_ref().unwrap().true_count,
            3
        );
    }

    #[test]
    fn summary_pages_columns() {
        let s = summarize(&frame(), None, 1, 1, 3).unwrap();
        assert_eq!(s.column_summaries.len(), 1);
        assert_eq!(s.column_summaries[0].name, "city");
        assert_eq!(s.next_column_offset, Some(2));
    }

    #[test]
    fn previews() {
        let (tail, offset) = preview(&frame(), RowWindow::Tail(2), Some(&["city".into()])).unwrap();
        assert_eq!((tail.height(), tail.width(), offset), (2, 1, 2));
        assert!(
            preview(
                &frame(),
                RowWindow::Slice {
                    offset: 9,
                    limit: 1
                },
                None
            )
            .is_err()
        );
    }

    #[test]
    fn counts_values() {
        let v = value_counts(&frame(), "city", 1).unwrap();
        assert_eq!(v.values[0].count, 2);
        assert_eq!(v.values[0].percent, 50.0);
        assert_eq!(
            (v.missing, v.distinct, v.others, v.others_count),
            (1, 2, 1, 1)
        );
    }
}
