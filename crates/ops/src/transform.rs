//! Shape and type changes: rename, drop, cast, sort, deduplicate.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::columns::{is_hidden, mark_column, resolve, resolve_or_all, visible_names};
use crate::error::{OpsError, Result};
use crate::values::display;

/// Renames columns (`old → new`); intentional-missing marks follow.
pub fn rename_columns(df: &DataFrame, mapping: &BTreeMap<String, String>) -> Result<DataFrame> {
    if mapping.is_empty() {
        return Err(OpsError::InvalidArgument(
            "give at least one rename, e.g. {\"old name\": \"new_name\"}".into(),
        ));
    }
    let olds: Vec<String> = mapping.keys().cloned().collect();
    resolve(df, &olds)?;
    let mut final_names: Vec<String> = visible_names(df)
        .into_iter()
        .map(|n| mapping.get(&n).cloned().unwrap_or(n))
        .collect();
    for new in mapping.values() {
        if new.trim().is_empty() {
            return Err(OpsError::InvalidArgument(
                "a new column name is empty".into(),
            ));
        }
        if is_hidden(new) {
            return Err(OpsError::InvalidArgument(format!(
                "'{new}' is a reserved name"
            )));
        }
    }
    final_names.sort();
    if let Some(dup) = final_names.windows(2).find(|w| w[0] == w[1]) {
        return Err(OpsError::InvalidArgument(format!(
            "the renames would give two columns the name '{}'; choose distinct names",
            dup[0]
        )));
    }
    // Rebuilt in one pass (no temporary names, which could collide with the
    // table's own columns), so swaps (a→b, b→a) work too.
    let columns: Vec<Column> = df
        .columns()
        .iter()
        .map(|c| {
            let name = c.name().as_str();
            if let Some(new) = mapping.get(name) {
                return c.clone().with_name(new.as_str().into());
            }
            let renamed_mark = olds
                .iter()
                .find(|old| mark_column(old) == name)
                .map(|old| mark_column(&mapping[old]));
            match renamed_mark {
                Some(mark) => c.clone().with_name(mark.into()),
                None => c.clone(),
            }
        })
        .collect();
    Ok(DataFrame::new(df.height(), columns)?)
}

/// Drops columns (and their marks). Refuses to drop every column.
pub fn drop_columns(df: &DataFrame, columns: &[String]) -> Result<DataFrame> {
    if columns.is_empty() {
        return Err(OpsError::InvalidArgument(
            "name at least one column to drop".into(),
        ));
    }
    let names = resolve(df, columns)?;
    if visible_names(df).iter().all(|n| names.contains(n)) {
        return Err(OpsError::InvalidArgument(
            "that would drop every column; drop the whole table instead".into(),
        ));
    }
    let mut drop: Vec<String> = names.clone();
    drop.extend(
        names
            .iter()
            .map(|n| mark_column(n))
            .filter(|m| df.column(m).is_ok()),
    );
    Ok(df.drop_many(drop))
}

/// Which duplicate to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    #[default]
    First,
    Last,
    /// Drop every row that has a duplicate.
    None,
}

/// Removes duplicate rows, judged on `subset` (default: all columns).
pub fn drop_duplicates(
    df: &DataFrame,
    subset: Option<&[String]>,
    keep: Keep,
) -> Result<(DataFrame, usize)> {
    let names = resolve_or_all(df, subset)?;
    if names.is_empty() {
        return Ok((df.clone(), 0));
    }
    let strategy = match keep {
        Keep::First => UniqueKeepStrategy::First,
        Keep::Last => UniqueKeepStrategy::Last,
        Keep::None => UniqueKeepStrategy::None,
    };
    let out = df.unique_stable(Some(&names), strategy, None)?;
    let removed = df.height() - out.height();
    Ok((out, removed))
}

/// One sort key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortKey {
    pub column: String,
    #[serde(default)]
    pub descending: bool,
}

/// Sorts rows by the keys in order; nulls go last unless `nulls_first`.
/// Stable: equal rows keep their order.
pub fn sort_rows(df: &DataFrame, keys: &[SortKey], nulls_first: bool) -> Result<DataFrame> {
    if keys.is_empty() {
        return Err(OpsError::InvalidArgument(
            "give at least one column to sort by".into(),
        ));
    }
    let names: Vec<String> = keys.iter().map(|k| k.column.clone()).collect();
    resolve(df, &names)?;
    let descending: Vec<bool> = keys.iter().map(|k| k.descending).collect();
    let options = SortMultipleOptions::default()
        .with_order_descending_multi(descending)
        .with_nulls_last(!nulls_first)
        .with_maintain_order(true);
    Ok(df.sort(names, options)?)
}

/// A target type for `cast_columns`, parsed from a name people use.
pub fn parse_dtype(name: &str) -> Result<DataType> {
    let lower = name.trim().to_ascii_lowercase();
    let (base, arg) = match lower.split_once(['[', '(']) {
        Some((b, rest)) => (b.trim(), Some(rest.trim_end_matches([']', ')']).trim())),
        None => (lower.as_str(), None),
    };
    let tz = |arg: Option<&str>| -> Option<PlSmallStr> {
        arg.filter(|a| !a.is_empty()).map(|_| {
            // Keep the zone's own case (e.g. Europe/Paris).
            let original = name.trim();
            let start = original.find(['[', '(']).map_or(0, |i| i + 1);
            original[start..]
                .trim_end_matches([']', ')'])
                .trim()
                .to_string()
                .into()
        })
    };
    Ok(match base {
        "int" | "integer" | "int64" | "i64" | "bigint" | "long" => DataType::Int64,
        "int32" | "i32" => DataType::Int32,
        "int16" | "i16" => DataType::Int16,
        "int8" | "i8" => DataType::Int8,
        "uint64" | "u64" => DataType::UInt64,
        "uint32" | "u32" => DataType::UInt32,
        "uint16" | "u16" => DataType::UInt16,
        "uint8" | "u8" => DataType::UInt8,
        "float" | "float64" | "f64" | "double" | "number" | "numeric" | "decimal" => {
            DataType::Float64
        }
        "float32" | "f32" | "real" => DataType::Float32,
        "string" | "str" | "text" | "utf8" | "varchar" => DataType::String,
        "bool" | "boolean" => DataType::Boolean,
        "date" => DataType::Date,
        "datetime" | "timestamp" => DataType::Datetime(
            TimeUnit::Microseconds,
            tz(arg).map(parse_time_zone).transpose()?,
        ),
        "time" => DataType::Time,
        "duration" => DataType::Duration(TimeUnit::Microseconds),
        "category" | "categorical" => DataType::from_categories(Categories::global()),
        _ => {
            return Err(OpsError::InvalidArgument(format!(
                "unknown type '{name}'; use one of int64, int32, float64, float32, string, boolean, date, datetime, datetime[<time zone>], time, duration, categorical"
            )));
        }
    })
}

fn parse_time_zone(zone: PlSmallStr) -> Result<TimeZone> {
    TimeZone::opt_try_new(Some(zone.clone()))
        .ok()
        .flatten()
        .ok_or_else(|| {
            OpsError::InvalidArgument(format!(
                "unknown time zone '{zone}'; use an IANA name such as UTC or Europe/Paris"
            ))
        })
}

/// What a cast did to one column.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CastReport {
    pub column: String,
    pub from: String,
    pub to: String,
    /// Values that could not be converted (they became null).
    pub failed: usize,
    /// A few of those values.
    pub failed_examples: Vec<String>,
}

/// Casts columns. Values that do not convert become null and are counted;
/// with `strict`, any such value aborts the whole call instead. `format`
/// (strftime) parses text into dates and datetimes.
pub fn cast_columns(
    df: &DataFrame,
    casts: &BTreeMap<String, String>,
    format: Option<&str>,
    strict: bool,
) -> Result<(DataFrame, Vec<CastReport>)> {
    if casts.is_empty() {
        return Err(OpsError::InvalidArgument(
            "give at least one cast, e.g. {\"price\": \"float64\"}".into(),
        ));
    }
    let names: Vec<String> = casts.keys().cloned().collect();
    resolve(df, &names)?;
    let mut out = df.clone();
    let mut reports = Vec::new();
    for (name, target) in casts {
        let to = parse_dtype(target)?;
        let s = df.column(name)?.as_materialized_series().clone();
        let converted = convert(&s, &to, format)?;
        let failed_mask = &s.is_not_null() & &converted.is_null();
        let failed = failed_mask.sum().unwrap_or(0) as usize;
        let failed_examples: Vec<String> = if failed > 0 {
            let bad = s.filter(&failed_mask)?;
            let mut seen = Vec::new();
            for i in 0..bad.len() {
                let v = display(&bad.get(i)?);
                if !seen.contains(&v) {
                    seen.push(v);
                }
                if seen.len() == 3 {
                    break;
                }
            }
            seen
        } else {
            Vec::new()
        };
        if strict && failed > 0 {
            return Err(OpsError::CastFailed(format!(
                "{failed} value(s) in '{name}' cannot be converted to {to} (e.g. {}); nothing was changed. Fix or filter them first, or pass strict=false to turn them into nulls",
                failed_examples
                    .iter()
                    .map(|v| format!("'{v}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        reports.push(CastReport {
            column: name.clone(),
            from: s.dtype().to_string(),
            to: converted.dtype().to_string(),
            failed,
            failed_examples,
        });
        out.with_column(converted.with_name(name.as_str().into()).into_column())?;
    }
    Ok((out, reports))
}

fn convert(s: &Series, to: &DataType, format: Option<&str>) -> Result<Series> {
    if s.dtype() == &DataType::String {
        let ca = s.str()?;
        match to {
            DataType::Boolean => return Ok(parse_bools(ca).into_series()),
            DataType::Date | DataType::Datetime(..) | DataType::Time => {
                let options = StrptimeOptions {
                    format: format.map(Into::into),
                    strict: false,
                    exact: true,
                    cache: true,
                };
                let expr = match to {
                    DataType::Date => col("v").str().to_date(options),
                    DataType::Time => col("v").str().to_time(options),
                    DataType::Datetime(tu, tz) => {
                        col("v")
                            .str()
                            .to_datetime(Some(*tu), tz.clone(), options, lit("raise"))
                    }
                    _ => unreachable!(),
                };
                let frame =
                    DataFrame::new(s.len(), vec![s.clone().with_name("v".into()).into_column()])?;
                let out = frame.lazy().select([expr]).collect()?;
                return Ok(out.columns()[0].as_materialized_series().clone());
            }
            t if t.is_primitive_numeric() => {
                // Spaces around numbers are common in exports; they should not
                // make a value fail.
                let trimmed: StringChunked =
                    ca.apply_values(|v| std::borrow::Cow::Owned(v.trim().to_string()));
                return Ok(trimmed.into_series().cast(to)?);
            }
            _ => {}
        }
    }
    if format.is_some() && !matches!(to, DataType::Date | DataType::Datetime(..) | DataType::Time) {
        return Err(OpsError::InvalidArgument(
            "format is used only to parse text into date, datetime or time".into(),
        ));
    }
    Ok(s.cast(to)?)
}

fn parse_bools(ca: &StringChunked) -> BooleanChunked {
    ca.iter()
        .map(|v| {
            v.and_then(|v| match v.trim().to_ascii_lowercase().as_str() {
                "true" | "t" | "yes" | "y" | "1" | "on" => Some(true),
                "false" | "f" | "no" | "n" | "0" | "off" => Some(false),
                _ => None,
            })
        })
        .collect::<BooleanChunked>()
        .with_name(ca.name().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> DataFrame {
        df!(
            "a" => [1, 2, 2, 3],
            "b" => ["x", "y", "y", "z"],
            "n" => [" 1.5", "2", "abc", "4"],
        )
        .unwrap()
    }

    #[test]
    fn renames_swap() {
        let mut m = BTreeMap::new();
        m.insert("a".to_string(), "b".to_string());
        m.insert("b".to_string(), "a".to_string());
        let out = rename_columns(&frame(), &m).unwrap();
        assert_eq!(out.column("a").unwrap().dtype(), &DataType::String);
        let mut clash = BTreeMap::new();
        clash.insert("a".to_string(), "b".to_string());
        assert!(rename_columns(&frame(), &clash).is_err());
    }

    /// Regression: a column named `__dfmcp_tmp_0` made every rename fail.
    #[test]
    fn renames_ignore_names_that_look_internal() {
        let df = df!("__dfmcp_tmp_0" => [1], "a" => [2]).unwrap();
        let mut m = BTreeMap::new();
        m.insert("a".to_string(), "b".to_string());
        let out = rename_columns(&df, &m).unwrap();
        assert_eq!(visible_names(&out), ["__dfmcp_tmp_0", "b"]);
    }

    #[test]
    fn drops_and_dedupes() {
        assert!(drop_columns(&frame(), &["a".into(), "b".into(), "n".into()]).is_err());
        assert_eq!(drop_columns(&frame(), &["a".into()]).unwrap().width(), 2);
        let (out, removed) =
            drop_duplicates(&frame(), Some(&["a".into(), "b".into()]), Keep::First).unwrap();
        assert_eq!((out.height(), removed), (3, 1));
        let (out, _) = drop_duplicates(&frame(), Some(&["a".into()]), Keep::None).unwrap();
        assert_eq!(out.height(), 2);
    }

    #[test]
    fn casts_count_failures() {
        let mut m = BTreeMap::new();
        m.insert("n".to_string(), "float".to_string());
        let (out, reports) = cast_columns(&frame(), &m, None, false).unwrap();
        assert_eq!(reports[0].failed, 1);
        assert_eq!(reports[0].failed_examples, ["abc"]);
        assert_eq!(
            out.column("n").unwrap().get(0).unwrap(),
            AnyValue::Float64(1.5)
        );
        let err = cast_columns(&frame(), &m, None, true).err().unwrap();
        assert!(err.to_string().contains("'abc'"), "{err}");
    }

    #[test]
    fn dates_with_format() {
        let df = df!("d" => ["31/01/2024", "15/02/2024", "bad"]).unwrap();
        let mut m = BTreeMap::new();
        m.insert("d".to_string(), "date".to_string());
        let (out, reports) = cast_columns(&df, &m, Some("%d/%m/%Y"), false).unwrap();
        assert_eq!(out.column("d").unwrap().dtype(), &DataType::Date);
        assert_eq!(reports[0].failed, 1);
    }

    #[test]
    fn dtype_names() {
        assert_eq!(parse_dtype("Float").unwrap(), DataType::Float64);
        assert!(matches!(
            parse_dtype("datetime[Europe/Paris]").unwrap(),
            DataType::Datetime(_, Some(tz)) if tz.as_str() == "Europe/Paris"
        ));
        assert!(parse_dtype("datetime[Mars/Olympus]").is_err());
        assert!(parse_dtype("blob").is_err());
    }

    #[test]
    fn sorting() {
        let keys = [SortKey {
            column: "a".into(),
            descending: true,
        }];
        let out = sort_rows(&frame(), &keys, false).unwrap();
        assert_eq!(out.column("a").unwrap().get(0).unwrap(), AnyValue::Int32(3));
        let bad = [SortKey {
            column: "A ".into(),
            descending: false,
        }];
        assert!(sort_rows(&frame(), &bad, false).is_err());
    }
}
