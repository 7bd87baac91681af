//! Cell values as JSON, for previews and query results.

use polars::prelude::*;
use serde_json::{Number, Value};

/// Converts one cell to JSON: numbers stay numbers, temporal values become
/// ISO strings, nested values their text form. Strings longer than
/// `max_chars` are cut and end with `…`.
pub fn to_json(value: &AnyValue<'_>, max_chars: usize) -> Value {
    match value {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(*b),
        AnyValue::String(s) => Value::String(cut(s, max_chars)),
        AnyValue::StringOwned(s) => Value::String(cut(s, max_chars)),
        AnyValue::Int8(v) => (*v).into(),
        AnyValue::Int16(v) => (*v).into(),
        AnyValue::Int32(v) => (*v).into(),
        AnyValue::Int64(v) => (*v).into(),
        AnyValue::UInt8(v) => (*v).into(),
        AnyValue::UInt16(v) => (*v).into(),
        AnyValue::UInt32(v) => (*v).into(),
        AnyValue::UInt64(v) => (*v).into(),
        AnyValue::Float32(v) => float(*v as f64),
        AnyValue::Float64(v) => float(*v),
        other => Value::String(cut(&display(other), max_chars)),
    }
}

fn float(v: f64) -> Value {
    match Number::from_f64(v) {
        Some(n) => Value::Number(n),
        // JSON has no NaN or infinity.
        None => Value::String(v.to_string()),
    }
}

/// The text a person would expect for a cell (dates as ISO, strings bare).
pub fn display(value: &AnyValue<'_>) -> String {
    match value {
        AnyValue::Null => String::new(),
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        // Shortest form that reads back the same: 99 rather than 99.0.
        AnyValue::Float64(v) => v.to_string(),
        AnyValue::Float32(v) => v.to_string(),
        AnyValue::Datetime(..) | AnyValue::DatetimeOwned(..) => {
            let s = value.to_string();
            s.trim_matches('"').to_string()
        }
        other => other.to_string().trim_matches('"').to_string(),
    }
}

pub fn cut(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Rows of a frame as JSON arrays (row-major), cells cut at `max_chars`.
pub fn rows_as_json(df: &DataFrame, max_chars: usize) -> Vec<Vec<Value>> {
    let columns: Vec<&Series> = df
        .columns()
        .iter()
        .map(|c| c.as_materialized_series())
        .collect();
    (0..df.height())
        .map(|i| {
            columns
                .iter()
                .map(|s| {
                    s.get(i)
                        .map(|v| to_json(&v, max_chars))
                        .unwrap_or(Value::Null)
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells() {
        assert_eq!(to_json(&AnyValue::Int64(3), 10), Value::from(3));
        assert_eq!(
            to_json(&AnyValue::Float64(f64::NAN), 10),
            Value::from("NaN")
        );
        assert_eq!(to_json(&AnyValue::String("abcdef"), 4), Value::from("abc…"));
        assert_eq!(to_json(&AnyValue::Date(0), 40), Value::from("1970-01-01"));
        assert_eq!(to_json(&AnyValue::Null, 4), Value::Null);
    }
}
