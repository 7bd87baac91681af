//! Mutating operations as data: what a history records and what can be
//! replayed on another table.

use std::collections::BTreeMap;

use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::Result;
use crate::fuzzy::{MergeGroup, merge_values};
use crate::missing::{FillStrategy, How, drop_missing, fill_missing, mark_intentional_missing};
use crate::outliers::{Action as OutlierAction, Method as OutlierMethod, describe, outliers};
use crate::reshape::{AggFn, Aggregate, group_aggregate, pivot, unpivot};
use crate::sql::{filter_rows, set_column};
use crate::text::{
    TextCleaning, clean_text, merge_columns, parse_dates, resolved_formats, split_column,
};
use crate::transform::{
    Keep, SortKey, cast_columns, drop_columns, drop_duplicates, rename_columns, sort_rows,
};

/// Table metadata travelling with each version (same shape as the store's).
pub type Meta = Map<String, Value>;

/// A mutating operation on one table, with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Operation {
    FillMissing {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        columns: Option<Vec<String>>,
        strategy: FillStrategy,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    DropMissing {
        #[serde(default)]
        how: How,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subset: Option<Vec<String>>,
    },
    DropDuplicates {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subset: Option<Vec<String>>,
        #[serde(default)]
        keep: Keep,
    },
    MarkIntentionalMissing {
        columns: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        condition: Option<String>,
        #[serde(default)]
        clear: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    RenameColumns {
        mapping: BTreeMap<String, String>,
    },
    DropColumns {
        columns: Vec<String>,
    },
    CastColumns {
        casts: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format: Option<String>,
        #[serde(default)]
        strict: bool,
    },
    FilterRows {
        condition: String,
    },
    SortRows {
        by: Vec<SortKey>,
        #[serde(default)]
        nulls_first: bool,
    },
    AddColumn {
        column: String,
        expression: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        condition: Option<String>,
    },
    UpdateColumn {
        column: String,
        expression: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        condition: Option<String>,
    },
    CleanText {
        /// Every text column when empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        columns: Vec<String>,
        #[serde(flatten)]
        how: TextCleaning,
    },
    ParseDates {
        columns: Vec<String>,
        /// Detected per column when empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        formats: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        day_first: Option<bool>,
    },
    SplitColumn {
        column: String,
        separator: String,
        into: Vec<String>,
        #[serde(default)]
        drop_original: bool,
    },
    MergeColumns {
        columns: Vec<String>,
        into: String,
        #[serde(default)]
        separator: String,
        #[serde(default = "yes")]
        skip_missing: bool,
        #[serde(default)]
        drop_originals: bool,
    },
    /// Flags or nulls outliers (a report alone is not an operation).
    #[serde(rename = "find_outliers")]
    Outliers {
        columns: Vec<String>,
        #[serde(default)]
        method: OutlierMethod,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        threshold: Option<f64>,
        /// flag or null.
        then: OutlierAction,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        flag_column: Option<String>,
    },
    MergeDuplicates {
        column: String,
        groups: Vec<MergeGroup>,
    },
    GroupAggregate {
        #[serde(default)]
        by: Vec<String>,
        aggregates: Vec<Aggregate>,
    },
    Pivot {
        index: Vec<String>,
        columns: String,
        values: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        function: Option<AggFn>,
    },
    Unpivot {
        index: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        columns: Vec<String>,
        #[serde(default = "variable")]
        variable_name: String,
        #[serde(default = "value")]
        value_name: String,
    },
}

fn yes() -> bool {
    true
}

fn variable() -> String {
    "variable".into()
}

fn value() -> String {
    "value".into()
}

/// The outcome of applying an operation.
#[derive(Debug, Clone)]
pub struct Applied {
    pub df: DataFrame,
    pub meta: Meta,
    /// One line for the history, e.g. "Filled 15 missing values in Price with mean 23.4".
    pub summary: String,
    /// Structured details for the caller (per-column reports…).
    pub details: Value,
    /// False when the operation found nothing to do: then `df` and `meta`
    /// are the inputs themselves (the same arrays), so a store sees no new
    /// version.
    pub changed: bool,
    /// The operation as it should be recorded and replayed, when applying
    /// settled something the caller left open (the date formats detected).
    pub resolved: Option<Operation>,
}

const REASONS: &str = "intentional_missing_reasons";

impl Operation {
    /// The action name (also the tool name).
    pub fn action(&self) -> &'static str {
        match self {
            Operation::FillMissing { .. } => "fill_missing",
            Operation::DropMissing { .. } => "drop_missing",
            Operation::DropDuplicates { .. } => "drop_duplicates",
            Operation::MarkIntentionalMissing { .. } => "mark_intentional_missing",
            Operation::RenameColumns { .. } => "rename_columns",
            Operation::DropColumns { .. } => "drop_columns",
            Operation::CastColumns { .. } => "cast_columns",
            Operation::FilterRows { .. } => "filter_rows",
            Operation::SortRows { .. } => "sort_rows",
            Operation::AddColumn { .. } => "add_column",
            Operation::UpdateColumn { .. } => "update_column",
            Operation::CleanText { .. } => "clean_text",
            Operation::ParseDates { .. } => "parse_dates",
            Operation::SplitColumn { .. } => "split_column",
            Operation::MergeColumns { .. } => "merge_columns",
            Operation::Outliers { .. } => "find_outliers",
            Operation::MergeDuplicates { .. } => "merge_duplicates",
            Operation::GroupAggregate { .. } => "group_aggregate",
            Operation::Pivot { .. } => "pivot",
            Operation::Unpivot { .. } => "unpivot",
        }
    }

    /// The parameters as JSON (everything but the action tag).
    pub fn params(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(map) = v.as_object_mut() {
            map.remove("action");
        }
        v
    }

    /// Applies the operation to a frame and its metadata. Pure: the inputs
    /// are not changed.
    pub fn apply(&self, df: &DataFrame, meta: &Meta) -> Result<Applied> {
        let rows = df.height();
        let original = meta;
        let mut meta = meta.clone();
        let mut resolved = None;
        let (out, summary, details, noop) = match self {
            Operation::FillMissing {
                columns,
                strategy,
                value,
                limit,
            } => {
                let filled =
                    fill_missing(df, columns.as_deref(), *strategy, value.as_ref(), *limit)?;
                let total: usize = filled.reports.iter().map(|r| r.filled).sum();
                let touched: Vec<String> = filled
                    .reports
                    .iter()
                    .filter(|r| r.filled > 0)
                    .map(|r| match &r.value {
                        Some(v) => format!("{} with {} {v}", r.column, strategy.name()),
                        None => format!("{} by {}", r.column, strategy.name()),
                    })
                    .collect();
                let summary = match touched.len() {
                    0 => format!("Filled no missing values ({} fill)", strategy.name()),
                    _ => format!(
                        "Filled {total} missing value{} in {}",
                        plural(total),
                        touched.join("; ")
                    ),
                };
                let skipped: Vec<Value> = filled
                    .skipped
                    .iter()
                    .map(|(c, why)| json!({ "column": c, "reason": why }))
                    .collect();
                (
                    filled.df,
                    summary,
                    json!({ "filled_total": total, "columns": filled.reports, "skipped": skipped }),
                    total == 0,
                )
            }
            Operation::DropMissing { how, subset } => {
                let (out, dropped) = drop_missing(df, *how, subset.as_deref())?;
                let scope = match subset {
                    Some(s) if !s.is_empty() => format!(" in {}", s.join(", ")),
                    _ => String::new(),
                };
                let rule = match how {
                    How::Any => "with a missing value",
                    How::All => "with every value missing",
                };
                (
                    out,
                    format!("Dropped {dropped} row{} {rule}{scope}", plural(dropped)),
                    json!({ "rows_dropped": dropped }),
                    dropped == 0,
                )
            }
            Operation::DropDuplicates { subset, keep } => {
                let (out, removed) = drop_duplicates(df, subset.as_deref(), *keep)?;
                let scope = match subset {
                    Some(s) if !s.is_empty() => format!(" (judged on {})", s.join(", ")),
                    _ => String::new(),
                };
                (
                    out,
                    format!("Removed {removed} duplicate row{}{scope}", plural(removed)),
                    json!({ "rows_removed": removed }),
                    removed == 0,
                )
            }
            Operation::MarkIntentionalMissing {
                columns,
                condition,
                clear,
                reason,
            } => {
                let (out, reports) =
                    mark_intentional_missing(df, columns, condition.as_deref(), *clear)?;
                let reasons = meta
                    .entry(REASONS)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(map) = reasons.as_object_mut() {
                    for r in &reports {
                        match (clear, r.marked, reason) {
                            (_, 0, _) => {
                                map.remove(&r.column);
                            }
                            (false, _, Some(reason)) => {
                                map.insert(r.column.clone(), Value::String(reason.clone()));
                            }
                            _ => {}
                        }
                    }
                }
                let changed: usize = reports.iter().map(|r| r.changed).sum();
                let verb = if *clear { "Unmarked" } else { "Marked" };
                let summary = format!(
                    "{verb} {changed} missing value{} in {} as {}intentional{}",
                    plural(changed),
                    columns.join(", "),
                    if *clear { "no longer " } else { "" },
                    condition
                        .as_ref()
                        .map(|c| format!(" where {c}"))
                        .unwrap_or_default()
                );
                (out, summary, json!({ "columns": reports }), changed == 0)
            }
            Operation::RenameColumns { mapping } => {
                let out = rename_columns(df, mapping)?;
                let pairs: Vec<String> =
                    mapping.iter().map(|(a, b)| format!("{a} → {b}")).collect();
                if let Some(Value::Object(reasons)) = meta.get_mut(REASONS) {
                    for (old, new) in mapping {
                        if let Some(v) = reasons.remove(old) {
                            reasons.insert(new.clone(), v);
                        }
                    }
                }
                (
                    out,
                    format!("Renamed {}", pairs.join(", ")),
                    json!({ "renamed": mapping }),
                    mapping.iter().all(|(a, b)| a == b),
                )
            }
            Operation::DropColumns { columns } => {
                let out = drop_columns(df, columns)?;
                if let Some(Value::Object(reasons)) = meta.get_mut(REASONS) {
                    for c in columns {
                        reasons.remove(c);
                    }
                }
                (
                    out,
                    format!(
                        "Dropped column{} {}",
                        plural(columns.len()),
                        columns.join(", ")
                    ),
                    json!({ "dropped": columns }),
                    false,
                )
            }
            Operation::CastColumns {
                casts,
                format,
                strict,
            } => {
                let (out, reports) = cast_columns(df, casts, format.as_deref(), *strict)?;
                let parts: Vec<String> = reports
                    .iter()
                    .map(|r| {
                        let failed = if r.failed > 0 {
                            format!(
                                " ({} value{} failed and became missing)",
                                r.failed,
                                plural(r.failed)
                            )
                        } else {
                            String::new()
                        };
                        format!("{} from {} to {}{failed}", r.column, r.from, r.to)
                    })
                    .collect();
                let same_types = reports.iter().all(|r| r.from == r.to);
                (
                    out,
                    format!("Cast {}", parts.join("; ")),
                    json!({ "columns": reports }),
                    same_types,
                )
            }
            Operation::AddColumn {
                column,
                expression,
                condition,
            }
            | Operation::UpdateColumn {
                column,
                expression,
                condition,
            } => {
                let create = matches!(self, Operation::AddColumn { .. });
                let (out, changed) =
                    set_column(df, column, expression, condition.as_deref(), create)?;
                let dtype = out.column(column)?.dtype().to_string();
                let place = condition
                    .as_deref()
                    .map(|c| format!(" where {c}"))
                    .unwrap_or_default();
                let summary = if create {
                    format!("Added column {column} ({dtype}) = {expression}{place}")
                } else {
                    format!(
                        "Set {column} = {expression}{place}: {changed} of {rows} row{} changed",
                        plural(rows)
                    )
                };
                (
                    out,
                    summary,
                    json!({ "column": column, "dtype": dtype, "rows_changed": changed }),
                    !create && changed == 0,
                )
            }
            Operation::CleanText { columns, how } => {
                let (out, reports) = clean_text(df, columns, how)?;
                let total: usize = reports.iter().map(|r| r.changed).sum();
                let touched: Vec<String> = reports
                    .iter()
                    .filter(|r| r.changed > 0)
                    .map(|r| format!("{} ({})", r.column, r.changed))
                    .collect();
                (
                    out,
                    format!(
                        "Cleaned text ({}): {total} value{} changed{}",
                        how.steps().join(", "),
                        plural(total),
                        if touched.is_empty() {
                            String::new()
                        } else {
                            format!(" in {}", touched.join(", "))
                        }
                    ),
                    json!({ "values_changed": total, "columns": reports }),
                    total == 0,
                )
            }
            Operation::ParseDates {
                columns,
                formats,
                day_first,
            } => {
                let (out, reports) = parse_dates(df, columns, formats, *day_first)?;
                if formats.is_empty()
                    && let Some(found) = resolved_formats(&reports)
                {
                    resolved = Some(Operation::ParseDates {
                        columns: columns.clone(),
                        formats: found,
                        day_first: *day_first,
                    });
                }
                let parts: Vec<String> = reports
                    .iter()
                    .map(|r| {
                        if r.already {
                            return format!("{} is {} already (left as it is)", r.column, r.to);
                        }
                        let mut p = format!(
                            "{} as {} ({}): {} read",
                            r.column,
                            r.to,
                            r.formats.join(" | "),
                            r.parsed
                        );
                        if r.failed > 0 {
                            p.push_str(&format!(", {} unreadable became missing", r.failed));
                        }
                        if r.ambiguous.is_some() {
                            p.push_str(", ambiguous day/month");
                        }
                        p
                    })
                    .collect();
                let mut warnings: Vec<String> = reports
                    .iter()
                    .filter_map(|r| r.ambiguous.as_ref().map(|a| format!("{}: {a}", r.column)))
                    .collect();
                warnings.extend(reports.iter().filter(|r| r.failed > 0).map(|r| {
                    format!(
                        "{}: {} value{} no format read became missing (e.g. {}); undo and pass formats to read them",
                        r.column,
                        r.failed,
                        plural(r.failed),
                        r.failed_examples
                            .iter()
                            .map(|e| format!("'{e}'"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }));
                (
                    out,
                    format!("Parsed dates: {}", parts.join("; ")),
                    json!({ "columns": reports, "warnings": warnings }),
                    reports.iter().all(|r| r.already),
                )
            }
            Operation::SplitColumn {
                column,
                separator,
                into,
                drop_original,
            } => {
                let (out, report) = split_column(df, column, separator, into, *drop_original)?;
                if *drop_original && let Some(Value::Object(reasons)) = meta.get_mut(REASONS) {
                    reasons.remove(column);
                }
                (
                    out,
                    format!(
                        "Split {column} at \"{separator}\" into {} ({} row{} split){}",
                        into.join(", "),
                        report.rows_split,
                        plural(report.rows_split),
                        if *drop_original {
                            ", dropped the original"
                        } else {
                            ""
                        }
                    ),
                    json!(report),
                    false,
                )
            }
            Operation::MergeColumns {
                columns,
                into,
                separator,
                skip_missing,
                drop_originals,
            } => {
                let (out, missing) =
                    merge_columns(df, columns, into, separator, *skip_missing, *drop_originals)?;
                if *drop_originals && let Some(Value::Object(reasons)) = meta.get_mut(REASONS) {
                    for c in columns {
                        reasons.remove(c);
                    }
                }
                (
                    out,
                    format!(
                        "Merged {} into {into} with \"{separator}\" ({missing} row{} missing){}",
                        columns.join(", "),
                        plural(missing),
                        if *drop_originals {
                            ", dropped the originals"
                        } else {
                            ""
                        }
                    ),
                    json!({ "rows_missing": missing }),
                    false,
                )
            }
            Operation::Outliers {
                columns,
                method,
                threshold,
                then: action,
                flag_column,
            } => {
                if *action == OutlierAction::Report {
                    return Err(crate::OpsError::InvalidArgument(
                        "a report of outliers changes nothing; choose action flag or null to change the table".into(),
                    ));
                }
                let (out, reports) = outliers(
                    df,
                    columns,
                    *method,
                    *threshold,
                    *action,
                    flag_column.as_deref(),
                )?;
                let total: usize = reports.iter().map(|r| r.outliers).sum();
                let what = match action {
                    OutlierAction::Flag => format!(
                        "Flagged {total} outlier{} in column {}",
                        plural(total),
                        flag_column.as_deref().unwrap_or("is_outlier")
                    ),
                    _ => format!("Made {total} outlier{} missing", plural(total)),
                };
                (
                    out,
                    format!("{what}: {}", describe(&reports, *method, *threshold)),
                    json!({ "outliers": total, "columns": reports, "warnings": code_warnings(&reports) }),
                    *action == OutlierAction::Null && total == 0,
                )
            }
            Operation::MergeDuplicates { column, groups } => {
                let (out, changed) = merge_values(df, column, groups)?;
                (
                    out,
                    format!(
                        "Merged {} group{} of similar values in {column}: {changed} cell{} changed",
                        groups.len(),
                        plural(groups.len()),
                        plural(changed)
                    ),
                    json!({ "cells_changed": changed }),
                    changed == 0,
                )
            }
            Operation::GroupAggregate { by, aggregates } => {
                let out = group_aggregate(df, by, aggregates)?;
                meta.remove(REASONS);
                let names: Vec<String> = aggregates.iter().map(|a| a.output_name()).collect();
                (
                    out.clone(),
                    format!(
                        "Grouped {rows} rows{} into {} group{} with {}",
                        if by.is_empty() {
                            String::new()
                        } else {
                            format!(" by {}", by.join(", "))
                        },
                        out.height(),
                        plural(out.height()),
                        names.join(", ")
                    ),
                    json!({ "groups": out.height() }),
                    false,
                )
            }
            Operation::Pivot {
                index,
                columns,
                values,
                function,
            } => {
                let out = pivot(df, index, columns, values, *function)?;
                meta.remove(REASONS);
                (
                    out.clone(),
                    format!(
                        "Pivoted {values} by {} (rows) and {columns} (columns, {} of them){}",
                        index.join(", "),
                        out.width() - index.len(),
                        function
                            .map(|f| format!(", {} of each pair", f.name()))
                            .unwrap_or_default()
                    ),
                    json!({ "rows": out.height(), "columns": out.width() }),
                    false,
                )
            }
            Operation::Unpivot {
                index,
                columns,
                variable_name,
                value_name,
            } => {
                let out = unpivot(df, index, columns, variable_name, value_name)?;
                meta.remove(REASONS);
                let n = crate::columns::visible_names(df).len() - index.len();
                (
                    out.clone(),
                    format!(
                        "Unpivoted {} column{} into {variable_name}/{value_name}: {} rows",
                        if columns.is_empty() { n } else { columns.len() },
                        plural(if columns.is_empty() { n } else { columns.len() }),
                        out.height()
                    ),
                    json!({ "rows": out.height() }),
                    false,
                )
            }
            Operation::FilterRows { condition } => {
                let (out, removed) = filter_rows(df, condition)?;
                (
                    out.clone(),
                    format!(
                        "Kept {} of {rows} rows where {condition} (removed {removed})",
                        out.height()
                    ),
                    json!({ "rows_kept": out.height(), "rows_removed": removed }),
                    removed == 0,
                )
            }
            Operation::SortRows { by, nulls_first } => {
                let out = sort_rows(df, by, *nulls_first)?;
                let keys: Vec<String> = by
                    .iter()
                    .map(|k| {
                        format!(
                            "{}{}",
                            k.column,
                            if k.descending { " descending" } else { "" }
                        )
                    })
                    .collect();
                let already = out.equals_missing(df);
                (
                    out,
                    format!("Sorted rows by {}", keys.join(", ")),
                    json!({}),
                    already,
                )
            }
        };
        let unchanged = noop && &meta == original;
        Ok(Applied {
            df: if unchanged { df.clone() } else { out },
            meta: if unchanged { original.clone() } else { meta },
            summary,
            details,
            changed: !unchanged,
            resolved,
        })
    }
}

/// An outlying value seen many times is more often a code for "missing"
/// (-999, 9999) than a measurement: say so.
pub fn code_warnings(reports: &[crate::outliers::OutlierReport]) -> Vec<String> {
    reports
        .iter()
        .flat_map(|r| {
            r.frequent.iter().filter(|(_, n)| *n >= 3).map(move |(v, n)| {
                format!(
                    "{}: the outlier {v} occurs {n} times; if it stands for \"missing\", make it missing (update_column … where {} = {v}) and mark_intentional_missing if meaningful",
                    r.column, r.column
                )
            })
        })
        .collect()
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use polars::prelude::*;

    use super::*;
    use crate::transform::{Keep, SortKey};

    #[test]
    fn operations_round_trip_as_json_and_replay() {
        let op = Operation::FillMissing {
            columns: Some(vec!["Price".into()]),
            strategy: FillStrategy::Mean,
            value: None,
            limit: None,
        };
        let json = serde_json::to_value(&op).unwrap();
        assert_eq!(json["action"], "fill_missing");
        let back: Operation = serde_json::from_value(json).unwrap();
        assert_eq!(back, op);

        let df = df!("Price" => [Some(10.0), None, Some(36.8)]).unwrap();
        let applied = back.apply(&df, &Meta::new()).unwrap();
        assert_eq!(
            applied.summary,
            "Filled 1 missing value in Price with mean 23.4"
        );
        // Replaying on another table gives that table's own mean.
        let other = df!("Price" => [Some(1.0), None]).unwrap();
        assert_eq!(
            op.apply(&other, &Meta::new()).unwrap().summary,
            "Filled 1 missing value in Price with mean 1"
        );
    }

    #[test]
    fn no_ops_hand_back_the_same_arrays() {
        let df = df!("Price" => [1.0, 2.0], "b" => [2, 1]).unwrap();
        let same_arrays = |out: &DataFrame| {
            out.columns().iter().zip(df.columns()).all(|(a, b)| {
                a.as_materialized_series().chunks()[0].as_ref() as *const _ as *const ()
                    == b.as_materialized_series().chunks()[0].as_ref() as *const _ as *const ()
            })
        };
        let noops = [
            Operation::FillMissing {
                columns: None,
                strategy: FillStrategy::Mean,
                value: None,
                limit: None,
            },
            Operation::FilterRows {
                condition: "Price > 0".into(),
            },
            Operation::DropDuplicates {
                subset: None,
                keep: Keep::First,
            },
            Operation::SortRows {
                by: vec![SortKey {
                    column: "Price".into(),
                    descending: false,
                }],
                nulls_first: false,
            },
        ];
        for op in noops {
            let applied = op.apply(&df, &Meta::new()).unwrap();
            assert!(!applied.changed, "{op:?}");
            assert!(same_arrays(&applied.df), "{op:?}");
        }
        let sort = Operation::SortRows {
            by: vec![SortKey {
                column: "b".into(),
                descending: false,
            }],
            nulls_first: false,
        };
        assert!(sort.apply(&df, &Meta::new()).unwrap().changed);
    }

    #[test]
    fn reasons_follow_renames() {
        let df = df!("a" => [None, Some(1)]).unwrap();
        let mark = Operation::MarkIntentionalMissing {
            columns: vec!["a".into()],
            condition: None,
            clear: false,
            reason: Some("not applicable".into()),
        };
        let marked = mark.apply(&df, &Meta::new()).unwrap();
        assert_eq!(marked.meta[REASONS]["a"], "not applicable");
        let mut mapping = BTreeMap::new();
        mapping.insert("a".to_string(), "b".to_string());
        let renamed = Operation::RenameColumns { mapping }
            .apply(&marked.df, &marked.meta)
            .unwrap();
        assert_eq!(renamed.meta[REASONS]["b"], "not applicable");
    }
}
