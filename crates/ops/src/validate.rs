//! Data checks: rules that a column's values must follow (present, unique,
//! in a range, among allowed values, matching a pattern, readable as a type)
//! and a report of how many rows break each one, with a few of them.
//!
//! Missing values break only `not_null`: every other rule checks the values
//! that are present, so "in range" and "present" stay separate questions.
//! Cells marked intentionally missing do not break `not_null` either; they
//! are counted apart.

use std::collections::{BTreeMap, HashSet};

use polars::prelude::*;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::columns::{marks_of, resolve};
use crate::error::{OpsError, Result};
use crate::transform::cast_columns;
use crate::values::{cut, display, to_json};

/// Longest text shown for an example value.
const EXAMPLE_CHARS: usize = 200;
/// Allowed values listed in a rule's description before "… and N more".
const DESCRIBED_VALUES: usize = 10;

/// One rule on one column, e.g.
/// `{"column": "price", "rule": "range", "min": 0, "max": 100}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub column: String,
    #[serde(flatten)]
    pub check: Check,
}

/// What a rule requires of each value. Missing values break only
/// `not_null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Check {
    /// Every cell has a value (intentionally missing cells are allowed).
    NotNull,
    /// No value occurs twice.
    Unique,
    /// Values between `min` and `max`, both inclusive, either optional:
    /// numbers for numeric columns, ISO strings ("2024-01-31",
    /// "2024-01-31 12:00:00") for date and datetime columns.
    Range {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<Value>,
    },
    /// Values among `values`: compared as numbers on numeric columns, as
    /// text otherwise (1 matches "1" in a text column).
    Allowed { values: Vec<Value> },
    /// The whole value matches `pattern` (Rust regex syntax; no need for
    /// `^…$`). Non-text columns are matched through their text form.
    Regex { pattern: String },
    /// Values can be read as `type`: on a text column, a value that a
    /// non-strict cast would turn into null breaks the rule; on a column of
    /// that type, none does.
    Type {
        #[serde(rename = "type")]
        expected: ValueType,
    },
}

/// Types a `type` rule can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    #[serde(alias = "integer")]
    Int,
    #[serde(alias = "number", alias = "numeric")]
    Float,
    #[serde(alias = "boolean")]
    Bool,
    Date,
    #[serde(alias = "timestamp")]
    Datetime,
    #[serde(alias = "text", alias = "str")]
    String,
}

impl ValueType {
    fn name(self) -> &'static str {
        match self {
            ValueType::Int => "int",
            ValueType::Float => "float",
            ValueType::Bool => "bool",
            ValueType::Date => "date",
            ValueType::Datetime => "datetime",
            ValueType::String => "string",
        }
    }

    /// The name [`crate::transform::parse_dtype`] reads, so that "readable
    /// as" means exactly what a cast would do.
    fn cast_name(self) -> &'static str {
        match self {
            ValueType::Int => "int64",
            ValueType::Float => "float64",
            ValueType::Bool => "boolean",
            ValueType::Date => "date",
            ValueType::Datetime => "datetime",
            ValueType::String => "string",
        }
    }
}

/// A row that breaks a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    /// 0-based row index.
    pub row: usize,
    pub value: Value,
}

/// The outcome of one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleReport {
    pub rule: Rule,
    pub description: String,
    /// Rows that break the rule.
    pub violations: usize,
    /// Rows the rule looked at: every row for `not_null`, the non-missing
    /// ones otherwise.
    pub checked: usize,
    /// `not_null` only: missing cells marked intentional (not violations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intentional_missing: Option<usize>,
    /// `unique` only: distinct values that occur more than once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicated_values: Option<usize>,
    /// The first rows that break the rule, in row order.
    pub examples: Vec<Violation>,
}

/// The outcome of [`validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationReport {
    pub rows: usize,
    pub rules: Vec<RuleReport>,
    /// No rule has a violation.
    pub passed: bool,
}

/// Checks every rule against `df`, reporting up to `examples` offending rows
/// per rule. Missing values break only `not_null` (and not when marked
/// intentional). One bad rule (unknown column, bad pattern) fails the whole
/// call, so a report never silently covers fewer rules than asked.
pub fn validate(df: &DataFrame, rules: &[Rule], examples: usize) -> Result<ValidationReport> {
    if rules.is_empty() {
        return Err(OpsError::InvalidArgument(
            "give at least one rule, e.g. {\"column\": \"price\", \"rule\": \"range\", \"min\": 0}"
                .into(),
        ));
    }
    let columns: Vec<String> = rules.iter().map(|r| r.column.clone()).collect();
    resolve(df, &columns)?;
    let reports = rules
        .iter()
        .map(|rule| check_rule(df, rule, examples))
        .collect::<Result<Vec<_>>>()?;
    Ok(ValidationReport {
        rows: df.height(),
        passed: reports.iter().all(|r| r.violations == 0),
        rules: reports,
    })
}

/// Which rows break a rule (`true`), plus what only some rules report.
struct Outcome {
    broken: Vec<bool>,
    checked: usize,
    intentional_missing: Option<usize>,
    duplicated_values: Option<usize>,
}

impl Outcome {
    fn of_present(s: &Series, broken: Vec<bool>) -> Outcome {
        Outcome {
            broken,
            checked: s.len() - s.null_count(),
            intentional_missing: None,
            duplicated_values: None,
        }
    }
}

fn check_rule(df: &DataFrame, rule: &Rule, examples: usize) -> Result<RuleReport> {
    let name = rule.column.as_str();
    let s = df.column(name)?.as_materialized_series().rechunk();
    let outcome = match &rule.check {
        Check::NotNull => not_null(df, name, &s),
        Check::Unique => unique(&s)?,
        Check::Range { min, max } => Outcome::of_present(&s, range(&s, name, min, max)?),
        Check::Allowed { values } => Outcome::of_present(&s, allowed(&s, name, values)?),
        Check::Regex { pattern } => Outcome::of_present(&s, matches(&s, pattern)?),
        Check::Type { expected } => Outcome::of_present(&s, unreadable(&s, *expected)?),
    };
    let violations = outcome.broken.iter().filter(|b| **b).count();
    let shown = outcome
        .broken
        .iter()
        .enumerate()
        .filter(|(_, b)| **b)
        .take(examples)
        .map(|(row, _)| {
            Ok(Violation {
                row,
                value: to_json(&s.get(row)?, EXAMPLE_CHARS),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RuleReport {
        rule: rule.clone(),
        description: describe(rule),
        violations,
        checked: outcome.checked,
        intentional_missing: outcome.intentional_missing,
        duplicated_values: outcome.duplicated_values,
        examples: shown,
    })
}

fn describe(rule: &Rule) -> String {
    let c = &rule.column;
    match &rule.check {
        Check::NotNull => {
            format!("'{c}' must have a value (cells marked intentionally missing are allowed)")
        }
        Check::Unique => format!("'{c}' values must be unique"),
        Check::Range { min, max } => match (min, max) {
            (Some(lo), Some(hi)) => format!(
                "'{c}' must be between {} and {} (inclusive)",
                bound_text(lo),
                bound_text(hi)
            ),
            (Some(lo), None) => format!("'{c}' must be at least {}", bound_text(lo)),
            (None, Some(hi)) => format!("'{c}' must be at most {}", bound_text(hi)),
            (None, None) => format!("'{c}' must be in a range"),
        },
        Check::Allowed { values } => {
            let mut listed: Vec<String> = values
                .iter()
                .take(DESCRIBED_VALUES)
                .map(|v| cut(&v.to_string(), 60))
                .collect();
            if values.len() > DESCRIBED_VALUES {
                listed.push(format!("… and {} more", values.len() - DESCRIBED_VALUES));
            }
            format!("'{c}' must be one of: {}", listed.join(", "))
        }
        Check::Regex { pattern } => {
            format!("'{c}' must match the pattern {pattern:?} (the whole value)")
        }
        Check::Type { expected } => {
            format!("'{c}' values must be readable as {}", expected.name())
        }
    }
}

fn bound_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn not_null(df: &DataFrame, name: &str, s: &Series) -> Outcome {
    let marks = marks_of(df, name);
    let nulls = s.is_null();
    let mut intentional = 0;
    let broken = nulls
        .iter()
        .enumerate()
        .map(|(i, null)| {
            if null != Some(true) {
                return false;
            }
            let marked = marks.as_ref().and_then(|m| m.get(i)).unwrap_or(false);
            if marked {
                intentional += 1;
            }
            !marked
        })
        .collect();
    Outcome {
        broken,
        checked: s.len(),
        intentional_missing: Some(intentional),
        duplicated_values: None,
    }
}

fn unique(s: &Series) -> Result<Outcome> {
    if s.null_count() == s.len() {
        return Ok(Outcome {
            duplicated_values: Some(0),
            ..Outcome::of_present(s, vec![false; s.len()])
        });
    }
    let one = DataFrame::new(s.len(), vec![s.clone().into_column()])?;
    // Nulls group together, but a repeated missing value is not a repeated
    // value: only present ones count.
    let repeated = &one.is_duplicated()? & &s.is_not_null();
    let duplicated = s.filter(&repeated)?.n_unique()?;
    let broken = repeated.iter().map(|b| b == Some(true)).collect();
    Ok(Outcome {
        duplicated_values: Some(duplicated),
        ..Outcome::of_present(s, broken)
    })
}

fn range(s: &Series, name: &str, min: &Option<Value>, max: &Option<Value>) -> Result<Vec<bool>> {
    if min.is_none() && max.is_none() {
        return Err(OpsError::InvalidArgument(format!(
            "the range rule on '{name}' needs min, max or both, e.g. {{\"column\": \"{name}\", \"rule\": \"range\", \"min\": 0, \"max\": 100}}"
        )));
    }
    let dtype = s.dtype();
    if dtype == &DataType::Null {
        return Ok(vec![false; s.len()]);
    }
    if dtype.is_primitive_numeric() || dtype.is_decimal() {
        let lo = min
            .as_ref()
            .map(|v| number_bound(v, "min", name))
            .transpose()?;
        let hi = max
            .as_ref()
            .map(|v| number_bound(v, "max", name))
            .transpose()?;
        if let (Some(lo), Some(hi)) = (lo, hi)
            && lo > hi
        {
            return Err(OpsError::InvalidArgument(format!(
                "the range rule on '{name}' has min {lo} above max {hi}; every value would break it. Swap them"
            )));
        }
        // NaN is in no range: it breaks the rule rather than slipping by.
        return numbers(s, |v| {
            v.is_nan() || lo.is_some_and(|lo| v < lo) || hi.is_some_and(|hi| v > hi)
        });
    }
    if matches!(dtype, DataType::Date | DataType::Datetime(..)) {
        let lo = min
            .as_ref()
            .map(|v| temporal_bound(v, dtype, "min", name))
            .transpose()?;
        let hi = max
            .as_ref()
            .map(|v| temporal_bound(v, dtype, "max", name))
            .transpose()?;
        if let (Some(lo), Some(hi)) = (lo, hi)
            && lo > hi
        {
            return Err(OpsError::InvalidArgument(format!(
                "the range rule on '{name}' has min {} after max {}; every value would break it. Swap them",
                bound_text(min.as_ref().unwrap_or(&Value::Null)),
                bound_text(max.as_ref().unwrap_or(&Value::Null)),
            )));
        }
        // Dates and datetimes compare as their physical integers (days, or
        // ticks of the column's unit), which the bounds were parsed into.
        let physical = s.to_physical_repr().cast(&DataType::Int64)?;
        return Ok(physical
            .i64()?
            .iter()
            .map(|v| v.is_some_and(|v| lo.is_some_and(|lo| v < lo) || hi.is_some_and(|hi| v > hi)))
            .collect());
    }
    Err(OpsError::WrongType(format!(
        "a range needs a numeric, date or datetime column, but '{name}' is {dtype}; cast it first (e.g. to float64 or date), or use an allowed or regex rule"
    )))
}

fn number_bound(v: &Value, which: &str, name: &str) -> Result<f64> {
    let parsed = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| !f.is_nan()),
        _ => None,
    };
    parsed.ok_or_else(|| {
        OpsError::InvalidArgument(format!(
            "{which} {v} of the range rule on '{name}' is not a number; '{name}' is numeric, so give a number such as 0"
        ))
    })
}

/// A bound as the physical integer of `dtype` (days for dates, ticks of the
/// column's unit for datetimes, in its time zone).
fn temporal_bound(v: &Value, dtype: &DataType, which: &str, name: &str) -> Result<i64> {
    let example = match dtype {
        DataType::Date => "\"2024-01-31\"",
        _ => "\"2024-01-31\" or \"2024-01-31 13:45:00\"",
    };
    let fail = || {
        OpsError::InvalidArgument(format!(
            "{which} {v} of the range rule on '{name}' is not a {}; give an ISO string such as {example}",
            if dtype == &DataType::Date {
                "date"
            } else {
                "datetime"
            }
        ))
    };
    let Value::String(text) = v else {
        return Err(fail());
    };
    let text = text.trim();
    let date_only =
        matches!(dtype, DataType::Datetime(..)) && parse_temporal(text, &DataType::Date).is_some();
    let attempt = match (date_only, which) {
        // A date alone bounds a datetime column by the whole day: "max
        // 2024-01-31" keeps the afternoon of the 31st.
        (true, "max") => format!("{text} 23:59:59.999999999"),
        (true, _) => format!("{text} 00:00:00"),
        (false, _) => text.to_string(),
    };
    parse_temporal(&attempt, dtype).ok_or_else(fail)
}

fn parse_temporal(text: &str, dtype: &DataType) -> Option<i64> {
    let options = StrptimeOptions {
        format: None,
        strict: false,
        exact: true,
        cache: false,
    };
    let expr = match dtype {
        DataType::Date => col("v").str().to_date(options),
        DataType::Datetime(tu, tz) => {
            col("v")
                .str()
                .to_datetime(Some(*tu), tz.clone(), options, lit("raise"))
        }
        _ => return None,
    };
    let frame = DataFrame::new(1, vec![Column::new("v".into(), [text])]).ok()?;
    let out = frame.lazy().select([expr]).collect().ok()?;
    let parsed = out.columns().first()?.as_materialized_series();
    if parsed.dtype() != dtype {
        return None;
    }
    let physical = parsed.to_physical_repr().cast(&DataType::Int64).ok()?;
    physical.i64().ok()?.get(0)
}

fn allowed(s: &Series, name: &str, values: &[Value]) -> Result<Vec<bool>> {
    let dtype = s.dtype();
    if dtype.is_primitive_numeric() || dtype.is_decimal() {
        let mut set = HashSet::new();
        for v in values {
            let n = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(t) => t.trim().parse::<f64>().ok(),
                Value::Null => continue,
                _ => None,
            };
            let Some(n) = n else {
                return Err(OpsError::InvalidArgument(format!(
                    "allowed value {v} is not a number, but '{name}' is numeric ({dtype}); list numbers, or cast '{name}' to string first"
                )));
            };
            set.insert(number_key(n));
        }
        return numbers(s, |v| !set.contains(&number_key(v)));
    }
    let set: HashSet<String> = values
        .iter()
        .filter(|v| !v.is_null())
        .map(bound_text)
        .collect();
    texts(s, |v| !set.contains(v))
}

/// Bits of a float with -0 folded into 0, so equal numbers hash equal; NaN
/// gets no key any allowed value can have, so it is never allowed.
fn number_key(v: f64) -> u64 {
    if v == 0.0 { 0 } else { v.to_bits() }
}

fn matches(s: &Series, pattern: &str) -> Result<Vec<bool>> {
    // Anchored around a group so that alternations ("a|b") are anchored as a
    // whole, not only their first and last branch.
    let re = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
        OpsError::InvalidArgument(format!(
            "invalid regex {pattern:?}: {e}. Use Rust regex syntax (no look-around or backreferences)"
        ))
    })?;
    texts(s, |v| !re.is_match(v))
}

fn unreadable(s: &Series, expected: ValueType) -> Result<Vec<bool>> {
    let dtype = s.dtype();
    let none = || Ok(vec![false; s.len()]);
    let fits = match expected {
        ValueType::String => true,
        ValueType::Int => dtype.is_integer(),
        ValueType::Float => dtype.is_primitive_numeric() || dtype.is_decimal(),
        ValueType::Bool => dtype == &DataType::Boolean,
        ValueType::Date => dtype == &DataType::Date,
        // A date reads as midnight of that day.
        ValueType::Datetime => matches!(dtype, DataType::Datetime(..) | DataType::Date),
    };
    if fits || dtype == &DataType::Null {
        return none();
    }
    if expected == ValueType::Int && (dtype.is_float() || dtype.is_decimal()) {
        // A float reads as an int when it is whole (and fits).
        return numbers(s, |v| {
            !(v.is_finite() && v.fract() == 0.0 && v.abs() < 9.2e18)
        });
    }
    let text: Series = if dtype == &DataType::String {
        s.clone()
    } else if dtype.is_categorical() {
        s.cast(&DataType::String)?
    } else {
        // Other types are read through the text a person sees.
        let shown: StringChunked = (0..s.len())
            .map(|i| match s.get(i) {
                Ok(AnyValue::Null) | Err(_) => None,
                Ok(v) => Some(display(&v)),
            })
            .collect();
        shown.into_series()
    };
    let converted = match cast_text(&text, expected) {
        Ok(converted) => converted,
        Err(_) if matches!(expected, ValueType::Date | ValueType::Datetime) => {
            // The format is inferred from the first value: when that one is
            // not a date, the whole cast fails. Infer it from the first value
            // that is one instead, put in front.
            match readable_sample(&text, expected)? {
                Some(sample) => {
                    let mut with_sample = Series::new("v".into(), [sample.as_str()]);
                    with_sample.append(&text)?;
                    cast_text(&with_sample, expected)?.slice(1, text.len())
                }
                None => Series::full_null("v".into(), text.len(), &DataType::Null),
            }
        }
        Err(e) => return Err(e),
    };
    let failed = &text.is_not_null() & &converted.is_null();
    Ok(failed.iter().map(|b| b == Some(true)).collect())
}

/// Distinct values tried one by one to find one that reads as a date: a
/// bound, since each try is a cast of its own.
const SAMPLE_TRIES: usize = 100;

fn readable_sample(text: &Series, expected: ValueType) -> Result<Option<String>> {
    let mut tried = HashSet::new();
    for v in text.str()?.iter().flatten() {
        if tried.len() == SAMPLE_TRIES {
            break;
        }
        if !tried.insert(v) {
            continue;
        }
        let one = Series::new("v".into(), [v]);
        if cast_text(&one, expected).is_ok_and(|c| c.null_count() == 0) {
            return Ok(Some(v.to_string()));
        }
    }
    Ok(None)
}

/// Text cast as the cast tool casts it (trimmed numbers, yes/no booleans,
/// inferred date formats), unreadable values becoming null.
fn cast_text(text: &Series, expected: ValueType) -> Result<Series> {
    let one = DataFrame::new(
        text.len(),
        vec![text.clone().with_name("v".into()).into_column()],
    )?;
    let casts = BTreeMap::from([("v".to_string(), expected.cast_name().to_string())]);
    let (cast, _) = cast_columns(&one, &casts, None, false)?;
    Ok(cast.column("v")?.as_materialized_series().clone())
}

/// Marks the present values of a numeric column for which `broken` holds.
fn numbers(s: &Series, broken: impl Fn(f64) -> bool) -> Result<Vec<bool>> {
    let f = s.cast(&DataType::Float64)?;
    Ok(f.f64()?.iter().map(|v| v.is_some_and(&broken)).collect())
}

/// Marks the present values for which `broken` holds of their text: the
/// value itself for text columns, the text a person sees otherwise.
fn texts(s: &Series, broken: impl Fn(&str) -> bool) -> Result<Vec<bool>> {
    let dtype = s.dtype();
    if dtype == &DataType::String || dtype.is_categorical() {
        let text = s.cast(&DataType::String)?;
        return Ok(text.str()?.iter().map(|v| v.is_some_and(&broken)).collect());
    }
    Ok((0..s.len())
        .map(|i| match s.get(i) {
            Ok(AnyValue::Null) | Err(_) => false,
            Ok(v) => broken(&display(&v)),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::missing::mark_intentional_missing;

    /// Six rows covering nulls, NaN, unicode and each column type.
    fn frame() -> DataFrame {
        let df = df!(
            "id" => [Some(1i64), Some(2), Some(2), None, Some(3), Some(3)],
            "price" => [Some(10.0), Some(-5.0), Some(50.0), Some(f64::NAN), None, Some(100.0)],
            "status" => [Some("open"), Some("closed"), Some("OPEN"), None, Some("pending"), Some("🚀")],
            "code" => [Some("ABC"), Some("AB1"), Some("ÉTÉ"), Some("abc"), None, Some("東京")],
            "qty" => [Some("1"), Some(" 2 "), Some("x"), Some("3.5"), None, Some("")],
            "flag" => [Some(true), Some(false), None, Some(true), Some(true), Some(false)],
            "empty" => [None::<f64>, None, None, None, None, None],
            "day" => [Some("2024-01-01"), Some("2024-02-15"), None, Some("2023-12-31"), Some("2024-03-01"), Some("2024-02-29")],
        )
        .unwrap();
        let casts = BTreeMap::from([("day".to_string(), "date".to_string())]);
        cast_columns(&df, &casts, None, false).unwrap().0
    }

    fn rule(v: serde_json::Value) -> Rule {
        serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    #[test]
    fn each_rule_counts_and_shows_rows() {
        // (rule, violations, checked, example rows and values (first 2))
        type Case = (
            serde_json::Value,
            usize,
            usize,
            Vec<(usize, serde_json::Value)>,
        );
        let cases: Vec<Case> = vec![
            (
                json!({"column": "id", "rule": "not_null"}),
                1,
                6,
                vec![(3, json!(null))],
            ),
            (
                json!({"column": "price", "rule": "not_null"}),
                1,
                6,
                vec![(4, json!(null))],
            ),
            (
                json!({"column": "empty", "rule": "not_null"}),
                6,
                6,
                vec![(0, json!(null)), (1, json!(null))],
            ),
            (
                json!({"column": "day", "rule": "not_null"}),
                1,
                6,
                vec![(2, json!(null))],
            ),
            (
                json!({"column": "id", "rule": "unique"}),
                4,
                5,
                vec![(1, json!(2)), (2, json!(2))],
            ),
            (json!({"column": "status", "rule": "unique"}), 0, 5, vec![]),
            (json!({"column": "empty", "rule": "unique"}), 0, 0, vec![]),
            // NaN is in no range.
            (
                json!({"column": "price", "rule": "range", "min": 0, "max": 100}),
                2,
                5,
                vec![(1, json!(-5.0)), (3, json!("NaN"))],
            ),
            (
                json!({"column": "price", "rule": "range", "max": 50}),
                2,
                5,
                vec![(3, json!("NaN")), (5, json!(100.0))],
            ),
            (
                json!({"column": "price", "rule": "range", "min": "-5"}),
                1,
                5,
                vec![(3, json!("NaN"))],
            ),
            (
                json!({"column": "id", "rule": "range", "min": 2, "max": 2}),
                3,
                5,
                vec![(0, json!(1)), (4, json!(3))],
            ),
            (
                json!({"column": "empty", "rule": "range", "min": 0}),
                0,
                0,
                vec![],
            ),
            (
                json!({"column": "day", "rule": "range", "min": "2024-01-01", "max": "2024-02-29"}),
                2,
                5,
                vec![(3, json!("2023-12-31")), (4, json!("2024-03-01"))],
            ),
            (
                json!({"column": "day", "rule": "range", "min": "2024-02-15"}),
                2,
                5,
                vec![(0, json!("2024-01-01")), (3, json!("2023-12-31"))],
            ),
            (
                json!({"column": "status", "rule": "allowed", "values": ["open", "closed", "pending"]}),
                2,
                5,
                vec![(2, json!("OPEN")), (5, json!("🚀"))],
            ),
            (
                json!({"column": "status", "rule": "allowed", "values": ["🚀"]}),
                4,
                5,
                vec![(0, json!("open")), (1, json!("closed"))],
            ),
            (
                json!({"column": "id", "rule": "allowed", "values": [1, "2", 2.0]}),
                2,
                5,
                vec![(4, json!(3)), (5, json!(3))],
            ),
            (
                json!({"column": "price", "rule": "allowed", "values": [10, 50.0, 100, -5]}),
                1,
                5,
                vec![(3, json!("NaN"))],
            ),
            (
                json!({"column": "flag", "rule": "allowed", "values": [true]}),
                2,
                5,
                vec![(1, json!(false)), (5, json!(false))],
            ),
            (
                json!({"column": "day", "rule": "allowed", "values": ["2024-01-01", "2024-02-15"]}),
                3,
                5,
                vec![(3, json!("2023-12-31")), (4, json!("2024-03-01"))],
            ),
            (
                json!({"column": "code", "rule": "regex", "pattern": "[A-Z]{3}"}),
                4,
                5,
                vec![(1, json!("AB1")), (2, json!("ÉTÉ"))],
            ),
            (
                json!({"column": "code", "rule": "regex", "pattern": "\\p{Lu}+"}),
                3,
                5,
                vec![(1, json!("AB1")), (3, json!("abc"))],
            ),
            // Anchored as a whole: "A|abc" does not accept "ABC" by its "A".
            (
                json!({"column": "code", "rule": "regex", "pattern": "A|abc"}),
                4,
                5,
                vec![(0, json!("ABC")), (1, json!("AB1"))],
            ),
            (
                json!({"column": "code", "rule": "regex", "pattern": "\\p{Han}+"}),
                4,
                5,
                vec![(0, json!("ABC")), (1, json!("AB1"))],
            ),
            (
                json!({"column": "id", "rule": "regex", "pattern": "[12]"}),
                2,
                5,
                vec![(4, json!(3)), (5, json!(3))],
            ),
            (
                json!({"column": "day", "rule": "regex", "pattern": "2024-.*"}),
                1,
                5,
                vec![(3, json!("2023-12-31"))],
            ),
            (
                json!({"column": "qty", "rule": "type", "type": "int"}),
                3,
                5,
                vec![(2, json!("x")), (3, json!("3.5"))],
            ),
            (
                json!({"column": "qty", "rule": "type", "type": "float"}),
                2,
                5,
                vec![(2, json!("x")), (5, json!(""))],
            ),
            (
                json!({"column": "qty", "rule": "type", "type": "string"}),
                0,
                5,
                vec![],
            ),
            (
                json!({"column": "qty", "rule": "type", "type": "date"}),
                5,
                5,
                vec![(0, json!("1")), (1, json!(" 2 "))],
            ),
            (
                json!({"column": "code", "rule": "type", "type": "bool"}),
                5,
                5,
                vec![(0, json!("ABC")), (1, json!("AB1"))],
            ),
            (
                json!({"column": "price", "rule": "type", "type": "float"}),
                0,
                5,
                vec![],
            ),
            (
                json!({"column": "price", "rule": "type", "type": "int"}),
                1,
                5,
                vec![(3, json!("NaN"))],
            ),
            (
                json!({"column": "id", "rule": "type", "type": "int"}),
                0,
                5,
                vec![],
            ),
            (
                json!({"column": "id", "rule": "type", "type": "float"}),
                0,
                5,
                vec![],
            ),
            (
                json!({"column": "day", "rule": "type", "type": "datetime"}),
                0,
                5,
                vec![],
            ),
            (
                json!({"column": "flag", "rule": "type", "type": "int"}),
                5,
                5,
                vec![(0, json!(true)), (1, json!(false))],
            ),
            (
                json!({"column": "flag", "rule": "type", "type": "boolean"}),
                0,
                5,
                vec![],
            ),
            (
                json!({"column": "empty", "rule": "type", "type": "date"}),
                0,
                0,
                vec![],
            ),
        ];
        let df = frame();
        for (spec, violations, checked, examples) in cases {
            let report = validate(&df, &[rule(spec.clone())], 2).unwrap();
            let r = &report.rules[0];
            assert_eq!(r.violations, violations, "{spec}");
            assert_eq!(r.checked, checked, "{spec}");
            let got: Vec<(usize, serde_json::Value)> = r
                .examples
                .iter()
                .map(|e| (e.row, e.value.clone()))
                .collect();
            assert_eq!(got, examples, "{spec}");
            assert_eq!(report.passed, violations == 0, "{spec}");
            assert_eq!(report.rows, 6);
            assert!(
                r.description.contains(&format!("'{}'", r.rule.column)),
                "{}",
                r.description
            );
        }
    }

    #[test]
    fn unique_counts_duplicated_values() {
        let report = validate(
            &frame(),
            &[rule(json!({"column": "id", "rule": "unique"}))],
            10,
        )
        .unwrap();
        let r = &report.rules[0];
        assert_eq!(r.duplicated_values, Some(2));
        assert_eq!(
            r.examples.iter().map(|e| e.row).collect::<Vec<_>>(),
            [1, 2, 4, 5]
        );
        assert_eq!(r.intentional_missing, None);
    }

    #[test]
    fn intentional_missing_is_not_a_violation() {
        let (df, _) = mark_intentional_missing(&frame(), &["id".into()], None, false).unwrap();
        let rules = [
            rule(json!({"column": "id", "rule": "not_null"})),
            rule(json!({"column": "price", "rule": "not_null"})),
        ];
        let report = validate(&df, &rules, 5).unwrap();
        assert_eq!(report.rules[0].violations, 0);
        assert_eq!(report.rules[0].intentional_missing, Some(1));
        assert!(report.rules[0].examples.is_empty());
        assert_eq!(report.rules[1].violations, 1);
        assert_eq!(report.rules[1].intentional_missing, Some(0));
        assert!(!report.passed);
    }

    #[test]
    fn datetime_ranges_take_dates_and_datetimes() {
        let ts = Series::new(
            "ts".into(),
            [
                Some("2024-01-01 00:00:00"),
                Some("2024-01-01 12:00:00"),
                Some("2024-01-01 12:00:01"),
                None,
                Some("2023-12-31 23:59:59"),
            ],
        );
        let one = DataFrame::new(5, vec![ts.into_column()]).unwrap();
        let casts = BTreeMap::from([("ts".to_string(), "datetime".to_string())]);
        let (df, _) = cast_columns(&one, &casts, None, false).unwrap();
        let cases = [
            (
                json!({"column": "ts", "rule": "range", "min": "2024-01-01", "max": "2024-01-01 12:00:00"}),
                2,
                vec![2, 4],
            ),
            (
                json!({"column": "ts", "rule": "range", "min": "2024-01-01T12:00:00"}),
                2,
                vec![0, 4],
            ),
            (
                json!({"column": "ts", "rule": "range", "max": "2023-12-31"}),
                3,
                vec![0, 1, 2],
            ),
        ];
        for (spec, violations, rows) in cases {
            let report = validate(&df, &[rule(spec.clone())], 5).unwrap();
            assert_eq!(report.rules[0].violations, violations, "{spec}");
            assert_eq!(report.rules[0].checked, 4, "{spec}");
            let got: Vec<usize> = report.rules[0].examples.iter().map(|e| e.row).collect();
            assert_eq!(got, rows, "{spec}");
        }
    }

    #[test]
    fn dates_in_text_are_read_like_the_cast_reads_them() {
        // The first value is not a date: the format comes from the next one.
        let df = df!("d" => [Some("x"), Some("2024-01-01"), Some("2024-02-30"), None, Some("2024-03-01")]).unwrap();
        let cases = [
            ("date", 2, vec![0, 2]),
            ("datetime", 2, vec![0, 2]),
            ("int", 4, vec![0, 1, 2, 4]),
        ];
        for (ty, violations, rows) in cases {
            let spec = json!({"column": "d", "rule": "type", "type": ty});
            let report = validate(&df, &[rule(spec.clone())], 5).unwrap();
            assert_eq!(report.rules[0].violations, violations, "{spec}");
            let got: Vec<usize> = report.rules[0].examples.iter().map(|e| e.row).collect();
            assert_eq!(got, rows, "{spec}");
        }
    }

    #[test]
    fn errors_say_what_to_fix() {
        // (rules, text the error must contain)
        let cases: Vec<(Vec<serde_json::Value>, &str)> = vec![
            (
                vec![json!({"column": "prcie", "rule": "not_null"})],
                "did you mean 'price'",
            ),
            (
                vec![json!({"column": "nope", "rule": "unique"})],
                "Columns: id, price",
            ),
            (
                vec![json!({"column": "code", "rule": "regex", "pattern": "[A-"})],
                "invalid regex \"[A-\"",
            ),
            (
                vec![json!({"column": "price", "rule": "range"})],
                "needs min, max or both",
            ),
            (
                vec![json!({"column": "price", "rule": "range", "min": null, "max": null})],
                "needs min, max or both",
            ),
            (
                vec![json!({"column": "price", "rule": "range", "min": 10, "max": 0})],
                "above max",
            ),
            (
                vec![json!({"column": "price", "rule": "range", "min": "cheap"})],
                "not a number",
            ),
            (
                vec![json!({"column": "status", "rule": "range", "min": 0})],
                "cast it first",
            ),
            (
                vec![json!({"column": "day", "rule": "range", "min": "2024-13-45"})],
                "not a date",
            ),
            (
                vec![json!({"column": "day", "rule": "range", "min": 5})],
                "ISO string",
            ),
            (
                vec![
                    json!({"column": "day", "rule": "range", "min": "2024-03-01", "max": "2024-01-01"}),
                ],
                "Swap them",
            ),
            (
                vec![json!({"column": "id", "rule": "allowed", "values": [1, "one"]})],
                "not a number",
            ),
            // One bad rule among good ones fails the call.
            (
                vec![
                    json!({"column": "id", "rule": "unique"}),
                    json!({"column": "x", "rule": "unique"}),
                ],
                "'x' not found",
            ),
            (vec![], "at least one rule"),
        ];
        let df = frame();
        for (specs, expected) in cases {
            let rules: Vec<Rule> = specs.into_iter().map(rule).collect();
            let err = validate(&df, &rules, 3).err().unwrap().to_string();
            assert!(err.contains(expected), "{expected:?} not in {err:?}");
        }
    }

    #[test]
    fn bad_rule_shapes_do_not_parse() {
        for spec in [
            json!({"column": "a", "rule": "between"}),
            json!({"column": "a", "rule": "allowed"}),
            json!({"column": "a", "rule": "type", "type": "money"}),
            json!({"rule": "unique"}),
        ] {
            assert!(
                serde_json::from_value::<Rule>(spec.clone()).is_err(),
                "{spec}"
            );
        }
    }

    #[test]
    fn empty_frames_pass() {
        let df = frame().head(Some(0));
        let rules: Vec<Rule> = [
            json!({"column": "id", "rule": "not_null"}),
            json!({"column": "id", "rule": "unique"}),
            json!({"column": "price", "rule": "range", "min": 0}),
            json!({"column": "status", "rule": "allowed", "values": ["open"]}),
            json!({"column": "code", "rule": "regex", "pattern": "x"}),
            json!({"column": "qty", "rule": "type", "type": "int"}),
            json!({"column": "day", "rule": "range", "max": "2024-01-01"}),
        ]
        .into_iter()
        .map(rule)
        .collect();
        let report = validate(&df, &rules, 3).unwrap();
        assert!(report.passed);
        assert_eq!(report.rows, 0);
        assert!(
            report
                .rules
                .iter()
                .all(|r| r.checked == 0 && r.examples.is_empty())
        );
    }

    #[test]
    fn null_typed_and_categorical_columns() {
        let nothing = Series::full_null("nothing".into(), 3, &DataType::Null);
        let cat = Series::new("cat".into(), [Some("a"), None, Some("b")])
            .cast(&DataType::from_categories(Categories::global()))
            .unwrap();
        let df = DataFrame::new(3, vec![nothing.into_column(), cat.into_column()]).unwrap();
        // (rule, violations, checked)
        let cases = [
            (json!({"column": "nothing", "rule": "not_null"}), 3, 3),
            (json!({"column": "nothing", "rule": "unique"}), 0, 0),
            (
                json!({"column": "nothing", "rule": "range", "min": 1}),
                0,
                0,
            ),
            (
                json!({"column": "nothing", "rule": "allowed", "values": [1]}),
                0,
                0,
            ),
            (
                json!({"column": "nothing", "rule": "regex", "pattern": "x"}),
                0,
                0,
            ),
            (
                json!({"column": "nothing", "rule": "type", "type": "date"}),
                0,
                0,
            ),
            (
                json!({"column": "cat", "rule": "allowed", "values": ["a"]}),
                1,
                2,
            ),
            (
                json!({"column": "cat", "rule": "regex", "pattern": "[a-z]"}),
                0,
                2,
            ),
            (json!({"column": "cat", "rule": "unique"}), 0, 2),
            (
                json!({"column": "cat", "rule": "type", "type": "int"}),
                2,
                2,
            ),
        ];
        for (spec, violations, checked) in cases {
            let report = validate(&df, &[rule(spec.clone())], 3).unwrap();
            assert_eq!(report.rules[0].violations, violations, "{spec}");
            assert_eq!(report.rules[0].checked, checked, "{spec}");
        }
    }

    #[test]
    fn report_shape() {
        let spec = json!({"column": "price", "rule": "range", "min": 0, "max": 100});
        let report = validate(&frame(), &[rule(spec.clone())], 1).unwrap();
        let v = serde_json::to_value(&report).unwrap();
        assert_eq!(v["rules"][0]["rule"], spec);
        assert_eq!(
            v["rules"][0]["description"],
            "'price' must be between 0 and 100 (inclusive)"
        );
        assert_eq!(
            v["rules"][0]["examples"],
            json!([{"row": 1, "value": -5.0}])
        );
        assert_eq!(v["passed"], false);
        assert!(v["rules"][0].get("intentional_missing").is_none());
        // Zero examples asked: counts only.
        let report = validate(&frame(), &[rule(spec)], 0).unwrap();
        assert_eq!(report.rules[0].violations, 2);
        assert!(report.rules[0].examples.is_empty());
    }
}
