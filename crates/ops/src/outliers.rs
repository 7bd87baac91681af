//! Outliers of numeric columns: found by the interquartile range or the
//! z-score, reported, flagged into a boolean column or turned into missing
//! values.

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::columns::{marks_of, resolve};
use crate::error::{OpsError, Result};
use crate::missing::fmt_num;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Outside [Q1 − k·IQR, Q3 + k·IQR] (k default 1.5).
    #[default]
    Iqr,
    /// More than k sample standard deviations from the mean (k default 3).
    Zscore,
}

impl Method {
    pub fn default_threshold(self) -> f64 {
        match self {
            Method::Iqr => 1.5,
            Method::Zscore => 3.0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::Iqr => "IQR",
            Method::Zscore => "z-score",
        }
    }
}

/// What to do with the outliers found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Only report them.
    #[default]
    Report,
    /// Add (or replace) a boolean column, true in rows with an outlier.
    Flag,
    /// Make them missing (ordinary, not intentional, missing values).
    Null,
}

/// The outliers of one column.
#[derive(Debug, Clone, Serialize)]
pub struct OutlierReport {
    pub column: String,
    pub lower: f64,
    pub upper: f64,
    pub outliers: usize,
    /// Values present and checked.
    pub checked: usize,
    pub missing: usize,
    /// Of the missing: marked intentional (they stay as they are).
    pub intentional_missing: usize,
    /// The outlying values seen most often, with counts: a value repeated
    /// many times (-999, 9999) is often a code for "missing".
    pub frequent: Vec<(Value, usize)>,
    /// Up to five row positions (0-based) holding an outlier.
    pub example_rows: Vec<usize>,
}

fn quantile_linear(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The bounds of normal values in a column and the mask of outliers.
fn find(
    df: &DataFrame,
    column: &str,
    method: Method,
    k: f64,
) -> Result<(OutlierReport, BooleanChunked)> {
    let series = df.column(column)?.as_materialized_series();
    if !series.dtype().is_primitive_numeric() {
        return Err(OpsError::WrongType(format!(
            "find_outliers needs numeric columns; '{column}' is {}. Convert it with cast_columns first",
            series.dtype()
        )));
    }
    let values = series.cast(&DataType::Float64)?;
    let values = values.f64()?;
    let mut finite: Vec<f64> = values.iter().flatten().filter(|v| v.is_finite()).collect();
    let missing = series.null_count();
    // A mark counts only on a cell that is missing.
    let intentional = marks_of(df, column).map_or(0, |m| {
        m.iter()
            .zip(series.is_null().iter())
            .filter(|(m, null)| *m == Some(true) && *null == Some(true))
            .count()
    });
    let (lower, upper) = if finite.len() < 2 {
        (f64::NEG_INFINITY, f64::INFINITY)
    } else {
        match method {
            Method::Iqr => {
                finite.sort_by(f64::total_cmp);
                let (q1, q3) = (
                    quantile_linear(&finite, 0.25),
                    quantile_linear(&finite, 0.75),
                );
                let iqr = q3 - q1;
                (q1 - k * iqr, q3 + k * iqr)
            }
            Method::Zscore => {
                let n = finite.len() as f64;
                let mean = finite.iter().sum::<f64>() / n;
                let var = finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
                let sd = var.sqrt();
                (mean - k * sd, mean + k * sd)
            }
        }
    };
    let mask: BooleanChunked = values
        .iter()
        .map(|v| Some(v.is_some_and(|v| v.is_finite() && (v < lower || v > upper))))
        .collect();
    // Every outlying value counted: a code like -999 may first appear after
    // thousands of genuine outliers.
    let mut by_bits: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    let mut example_rows = Vec::new();
    for (i, (v, out)) in values.iter().zip(mask.iter()).enumerate() {
        if out == Some(true) {
            *by_bits.entry(v.unwrap_or_default().to_bits()).or_default() += 1;
            if example_rows.len() < 5 {
                example_rows.push(i);
            }
        }
    }
    let mut counts: Vec<(f64, usize)> = by_bits
        .into_iter()
        .map(|(bits, n)| (f64::from_bits(bits), n))
        .collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.total_cmp(&b.0)));
    let integer = series.dtype().is_integer();
    let frequent = counts
        .into_iter()
        .take(3)
        .map(|(v, n)| {
            let v = if integer {
                Value::from(v as i64)
            } else {
                serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
            };
            (v, n)
        })
        .collect();
    Ok((
        OutlierReport {
            column: column.to_string(),
            lower,
            upper,
            outliers: mask.sum().unwrap_or(0) as usize,
            checked: finite.len(),
            missing,
            intentional_missing: intentional,
            frequent,
            example_rows,
        },
        mask,
    ))
}

/// Finds outliers in numeric columns and applies `action`. `flag_column`
/// names the boolean column of [`Action::Flag`] (default `is_outlier`).
/// Bounds come from the values present; missing values are never outliers.
pub fn outliers(
    df: &DataFrame,
    columns: &[String],
    method: Method,
    threshold: Option<f64>,
    action: Action,
    flag_column: Option<&str>,
) -> Result<(DataFrame, Vec<OutlierReport>)> {
    if columns.is_empty() {
        return Err(OpsError::InvalidArgument(
            "name the numeric columns to look for outliers in".into(),
        ));
    }
    resolve(df, columns)?;
    let k = threshold.unwrap_or(method.default_threshold());
    if !(k.is_finite() && k > 0.0) {
        return Err(OpsError::InvalidArgument(format!(
            "threshold must be a positive number (default {} for {})",
            method.default_threshold(),
            method.name()
        )));
    }
    let mut reports = Vec::new();
    let mut any: Option<BooleanChunked> = None;
    let mut out = df.clone();
    for column in columns {
        let (report, mask) = find(df, column, method, k)?;
        if action == Action::Null && report.outliers > 0 {
            let s = out.column(column)?.as_materialized_series().clone();
            let nulled = s.zip_with(&!&mask, &Series::full_null("".into(), s.len(), s.dtype()))?;
            out.with_column(nulled.with_name(column.as_str().into()).into_column())?;
        }
        any = Some(match any {
            None => mask,
            Some(a) => &a | &mask,
        });
        reports.push(report);
    }
    if action == Action::Flag {
        let name = flag_column.unwrap_or("is_outlier");
        if let Ok(existing) = df.column(name)
            && existing.dtype() != &DataType::Boolean
        {
            return Err(OpsError::InvalidArgument(format!(
                "column '{name}' exists and is {}, not boolean; choose another flag_column",
                existing.dtype()
            )));
        }
        crate::columns::refuse_reserved(name)?;
        if name.trim().is_empty() {
            return Err(OpsError::InvalidArgument(format!(
                "'{name}' cannot be a column name"
            )));
        }
        let flags = any.expect("one column at least").with_name(name.into());
        out.with_column(flags.into_series().into_column())?;
    }
    Ok((out, reports))
}

/// One line per column, e.g. "price: 3 outliers outside [1.5, 90] (IQR × 1.5)".
pub fn describe(reports: &[OutlierReport], method: Method, threshold: Option<f64>) -> String {
    let k = threshold.unwrap_or(method.default_threshold());
    reports
        .iter()
        .map(|r| {
            format!(
                "{}: {} outlier{} outside [{}, {}] ({} × {})",
                r.column,
                r.outliers,
                if r.outliers == 1 { "" } else { "s" },
                fmt_num(r.lower),
                fmt_num(r.upper),
                method.name(),
                fmt_num(k)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> DataFrame {
        df!(
            "x" => [Some(1.0), Some(2.0), Some(3.0), Some(4.0), Some(100.0), None, Some(-999.0), Some(-999.0)],
            "n" => [1i64, 1, 1, 1, 1, 1, 1, 50],
            "s" => ["a", "b", "c", "d", "e", "f", "g", "h"]
        )
        .unwrap()
    }

    #[test]
    fn iqr_and_zscore_bounds_and_counts() {
        struct C {
            column: &'static str,
            method: Method,
            threshold: Option<f64>,
            lower: f64,
            upper: f64,
            outliers: usize,
        }
        let cases = [
            // Sorted present values: -999 -999 1 2 3 4 100 → Q1 = -499, Q3 = 3.5.
            C {
                column: "x",
                method: Method::Iqr,
                threshold: None,
                lower: -499.0 - 1.5 * 502.5,
                upper: 3.5 + 1.5 * 502.5,
                outliers: 0,
            },
            C {
                column: "x",
                method: Method::Iqr,
                threshold: Some(0.1),
                lower: -499.0 - 50.25,
                upper: 3.5 + 50.25,
                outliers: 3,
            },
            C {
                column: "n",
                method: Method::Iqr,
                threshold: None,
                lower: 1.0,
                upper: 1.0,
                outliers: 1,
            },
        ];
        for c in cases {
            let (_, r) = outliers(
                &frame(),
                &[c.column.into()],
                c.method,
                c.threshold,
                Action::Report,
                None,
            )
            .unwrap();
            assert!((r[0].lower - c.lower).abs() < 1e-9, "{:?}", r[0]);
            assert!((r[0].upper - c.upper).abs() < 1e-9, "{:?}", r[0]);
            assert_eq!(r[0].outliers, c.outliers, "{:?}", r[0]);
        }
        let (_, r) = outliers(
            &frame(),
            &["x".into()],
            Method::Zscore,
            Some(1.0),
            Action::Report,
            None,
        )
        .unwrap();
        // mean = -1887/7 ≈ -269.57, sd ≈ 480.6: the two -999 are beyond one sd.
        assert_eq!(r[0].outliers, 2);
        assert_eq!(r[0].frequent, vec![(serde_json::json!(-999.0), 2)]);
        assert_eq!(r[0].example_rows, vec![6, 7]);
        assert_eq!(r[0].missing, 1);
        assert_eq!(r[0].checked, 7);
    }

    #[test]
    fn flag_and_null() {
        let df = frame();
        let (flagged, _) = outliers(
            &df,
            &["x".into(), "n".into()],
            Method::Iqr,
            Some(0.1),
            Action::Flag,
            None,
        )
        .unwrap();
        let flags: Vec<Option<bool>> = flagged
            .column("is_outlier")
            .unwrap()
            .bool()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(
            flags,
            [false, false, false, false, true, false, true, true]
                .map(Some)
                .to_vec()
        );
        let (nulled, r) = outliers(
            &df,
            &["x".into()],
            Method::Iqr,
            Some(0.1),
            Action::Null,
            None,
        )
        .unwrap();
        assert_eq!(nulled.column("x").unwrap().null_count(), 1 + r[0].outliers);
        assert_eq!(nulled.column("n").unwrap(), df.column("n").unwrap());
        let e = outliers(&df, &["s".into()], Method::Iqr, None, Action::Report, None).unwrap_err();
        assert!(e.to_string().contains("numeric"), "{e}");
        let e = outliers(
            &df,
            &["x".into()],
            Method::Iqr,
            None,
            Action::Flag,
            Some("s"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("not boolean"), "{e}");
        assert!(
            outliers(
                &df,
                &["x".into()],
                Method::Iqr,
                Some(-1.0),
                Action::Report,
                None
            )
            .is_err()
        );
    }

    #[test]
    fn empty_and_all_null_columns_have_no_outliers() {
        let df = df!("x" => [None::<f64>, None]).unwrap();
        let (_, r) = outliers(
            &df,
            &["x".into()],
            Method::Zscore,
            None,
            Action::Report,
            None,
        )
        .unwrap();
        assert_eq!(r[0].outliers, 0);
        let df = df!("x" => Vec::<f64>::new()).unwrap();
        let (out, r) = outliers(&df, &["x".into()], Method::Iqr, None, Action::Flag, None).unwrap();
        assert_eq!(r[0].outliers, 0);
        assert_eq!(out.width(), 2);
    }

    /// Regression: only the first 1,000 distinct outlying values were
    /// counted, so a code after them was never reported.
    #[test]
    fn a_code_after_many_outliers_is_still_counted() {
        let mut values: Vec<f64> = vec![0.0; 10_000];
        values.extend((0..2_000).map(|i| 1e6 + i as f64));
        values.extend(std::iter::repeat_n(-999.0, 50));
        let df = df!("x" => values).unwrap();
        let (_, r) = outliers(&df, &["x".into()], Method::Iqr, None, Action::Report, None).unwrap();
        assert_eq!(r[0].frequent[0], (serde_json::json!(-999.0), 50));
    }
}
