//! Recipes: the operations that made a table, as data that can be replayed
//! on another table — next month's file, a copy, a table whose columns have
//! other names.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use sqlparser::ast::{Expr, Ident, Visit, VisitMut, Visitor, VisitorMut};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use crate::error::{OpsError, Result};
use crate::operation::{Meta, Operation};
use crate::reshape::Aggregate;
use crate::transform::SortKey;

/// The version of the recipe format.
pub const RECIPE_FORMAT: u32 = 1;

/// Operations to replay, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    pub format: u32,
    /// Where the recipe came from (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<serde_json::Value>,
    pub steps: Vec<Step>,
}

/// One operation of a recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    #[serde(flatten)]
    pub op: Operation,
    /// The columns the step reads (informational; recomputed when applied).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reads: Vec<String>,
    /// What the step did when it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

impl Step {
    pub fn new(op: Operation, summary: Option<String>) -> Self {
        let reads = op.reads();
        Step { op, reads, summary }
    }
}

/// What one step did (or would do) to a table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepEffect {
    pub rows_before: u64,
    pub rows_after: u64,
    pub columns_before: u64,
    pub columns_after: u64,
    /// Cells whose value changed, when the step kept the rows and columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cells_changed: Option<u64>,
    pub summary: String,
    pub changed: bool,
}

/// A step that cannot apply: which (1-based) and why.
#[derive(Debug)]
pub struct StepFailure {
    pub step: usize,
    pub action: &'static str,
    pub error: OpsError,
}

impl Operation {
    /// An operation from a history record's action and parameters.
    pub fn from_parts(action: &str, params: &serde_json::Value) -> Result<Operation> {
        let mut tagged = match params {
            serde_json::Value::Object(map) => map.clone(),
            serde_json::Value::Null => serde_json::Map::new(),
            _ => {
                return Err(OpsError::InvalidArgument(format!(
                    "the parameters of '{action}' are not an object"
                )));
            }
        };
        tagged.insert("action".into(), action.into());
        serde_json::from_value(serde_json::Value::Object(tagged)).map_err(|e| {
            OpsError::InvalidArgument(format!("'{action}' is not a replayable operation: {e}"))
        })
    }

    /// The columns the operation reads by name (an operation on every column
    /// names none).
    pub fn reads(&self) -> Vec<String> {
        let mut out: Vec<String> = match self {
            Operation::FillMissing { columns, .. } => columns.clone().unwrap_or_default(),
            Operation::DropMissing { subset, .. } | Operation::DropDuplicates { subset, .. } => {
                subset.clone().unwrap_or_default()
            }
            Operation::MarkIntentionalMissing {
                columns, condition, ..
            } => {
                let mut c = columns.clone();
                c.extend(condition.as_deref().map(sql_columns).unwrap_or_default());
                c
            }
            Operation::RenameColumns { mapping } => mapping.keys().cloned().collect(),
            Operation::DropColumns { columns } => columns.clone(),
            Operation::CastColumns { casts, .. } => casts.keys().cloned().collect(),
            Operation::FilterRows { condition } => sql_columns(condition),
            Operation::SortRows { by, .. } => by.iter().map(|k| k.column.clone()).collect(),
            Operation::AddColumn {
                expression,
                condition,
                ..
            } => {
                let mut c = sql_columns(expression);
                c.extend(condition.as_deref().map(sql_columns).unwrap_or_default());
                c
            }
            Operation::UpdateColumn {
                column,
                expression,
                condition,
            } => {
                let mut c = vec![column.clone()];
                c.extend(sql_columns(expression));
                c.extend(condition.as_deref().map(sql_columns).unwrap_or_default());
                c
            }
            Operation::CleanText { columns, .. }
            | Operation::ParseDates { columns, .. }
            | Operation::MergeColumns { columns, .. }
            | Operation::Outliers { columns, .. } => columns.clone(),
            Operation::SplitColumn { column, .. } | Operation::MergeDuplicates { column, .. } => {
                vec![column.clone()]
            }
            Operation::GroupAggregate { by, aggregates } => {
                let mut c = by.clone();
                c.extend(aggregates.iter().filter_map(|a| a.column.clone()));
                c
            }
            Operation::Pivot {
                index,
                columns,
                values,
                ..
            } => {
                let mut c = index.clone();
                c.push(columns.clone());
                c.push(values.clone());
                c
            }
            Operation::Unpivot { index, columns, .. } => {
                let mut c = index.clone();
                c.extend(columns.iter().cloned());
                c
            }
        };
        let mut seen = std::collections::HashSet::new();
        out.retain(|c| seen.insert(c.clone()));
        out
    }

    /// The same operation reading `mapping[c]` wherever it read column `c`
    /// (in SQL conditions too). New names it gives (a rename's targets) are
    /// kept.
    pub fn map_columns(&self, mapping: &BTreeMap<String, String>) -> Result<Operation> {
        let map = |c: &String| mapping.get(c).cloned().unwrap_or_else(|| c.clone());
        let map_all = |cs: &[String]| cs.iter().map(map).collect::<Vec<_>>();
        Ok(match self.clone() {
            Operation::FillMissing {
                columns,
                strategy,
                value,
                limit,
            } => Operation::FillMissing {
                columns: columns.map(|c| map_all(&c)),
                strategy,
                value,
                limit,
            },
            Operation::DropMissing { how, subset } => Operation::DropMissing {
                how,
                subset: subset.map(|c| map_all(&c)),
            },
            Operation::DropDuplicates { subset, keep } => Operation::DropDuplicates {
                subset: subset.map(|c| map_all(&c)),
                keep,
            },
            Operation::MarkIntentionalMissing {
                columns,
                condition,
                clear,
                reason,
            } => Operation::MarkIntentionalMissing {
                columns: map_all(&columns),
                condition: condition
                    .map(|c| map_sql_columns(&c, mapping))
                    .transpose()?,
                clear,
                reason,
            },
            Operation::RenameColumns { mapping: renames } => Operation::RenameColumns {
                mapping: renames.into_iter().map(|(k, v)| (map(&k), v)).collect(),
            },
            Operation::DropColumns { columns } => Operation::DropColumns {
                columns: map_all(&columns),
            },
            Operation::CastColumns {
                casts,
                format,
                strict,
            } => Operation::CastColumns {
                casts: casts.into_iter().map(|(k, v)| (map(&k), v)).collect(),
                format,
                strict,
            },
            Operation::FilterRows { condition } => Operation::FilterRows {
                condition: map_sql_columns(&condition, mapping)?,
            },
            Operation::SortRows { by, nulls_first } => Operation::SortRows {
                by: by
                    .into_iter()
                    .map(|k| SortKey {
                        column: map(&k.column),
                        descending: k.descending,
                    })
                    .collect(),
                nulls_first,
            },
            // The new column keeps the recipe's name; what it reads is mapped.
            Operation::AddColumn {
                column,
                expression,
                condition,
            } => Operation::AddColumn {
                column,
                expression: map_sql_columns(&expression, mapping)?,
                condition: condition
                    .map(|c| map_sql_columns(&c, mapping))
                    .transpose()?,
            },
            Operation::UpdateColumn {
                column,
                expression,
                condition,
            } => Operation::UpdateColumn {
                column: map(&column),
                expression: map_sql_columns(&expression, mapping)?,
                condition: condition
                    .map(|c| map_sql_columns(&c, mapping))
                    .transpose()?,
            },
            Operation::CleanText { columns, how } => Operation::CleanText {
                columns: map_all(&columns),
                how,
            },
            Operation::ParseDates {
                columns,
                formats,
                day_first,
            } => Operation::ParseDates {
                columns: map_all(&columns),
                formats,
                day_first,
            },
            // New columns keep the recipe's names.
            Operation::SplitColumn {
                column,
                separator,
                into,
                drop_original,
            } => Operation::SplitColumn {
                column: map(&column),
                separator,
                into,
                drop_original,
            },
            Operation::MergeColumns {
                columns,
                into,
                separator,
                skip_missing,
                drop_originals,
            } => Operation::MergeColumns {
                columns: map_all(&columns),
                into,
                separator,
                skip_missing,
                drop_originals,
            },
            Operation::Outliers {
                columns,
                method,
                threshold,
                then,
                flag_column,
            } => Operation::Outliers {
                columns: map_all(&columns),
                method,
                threshold,
                then,
                flag_column,
            },
            Operation::MergeDuplicates { column, groups } => Operation::MergeDuplicates {
                column: map(&column),
                groups,
            },
            // An aggregate keeps the name the recipe gave it, so later steps
            // find it.
            Operation::GroupAggregate { by, aggregates } => Operation::GroupAggregate {
                by: map_all(&by),
                aggregates: aggregates
                    .into_iter()
                    .map(|a| Aggregate {
                        alias: Some(a.output_name()),
                        column: a.column.as_ref().map(map),
                        function: a.function,
                    })
                    .collect(),
            },
            Operation::Pivot {
                index,
                columns,
                values,
                function,
            } => Operation::Pivot {
                index: map_all(&index),
                columns: map(&columns),
                values: map(&values),
                function,
            },
            Operation::Unpivot {
                index,
                columns,
                variable_name,
                value_name,
            } => Operation::Unpivot {
                index: map_all(&index),
                columns: map_all(&columns),
                variable_name,
                value_name,
            },
        })
    }
}

impl Recipe {
    /// The steps with their columns renamed by `mapping` (recipe name →
    /// table name). A mapping ends where the recipe itself renames or drops
    /// the column, or gives its name to another one: later steps mean the
    /// recipe's column by then.
    pub fn mapped(&self, mapping: &BTreeMap<String, String>) -> Result<Vec<Operation>> {
        let mut active = mapping.clone();
        let mut out = Vec::with_capacity(self.steps.len());
        for step in &self.steps {
            out.push(step.op.map_columns(&active)?);
            match &step.op {
                Operation::RenameColumns { mapping } => {
                    for (old, new) in mapping {
                        active.remove(old);
                        active.remove(new);
                    }
                }
                Operation::DropColumns { columns } => {
                    for c in columns {
                        active.remove(c);
                    }
                }
                // From here on the name means the column the recipe made.
                Operation::AddColumn { column, .. } => {
                    active.remove(column);
                }
                Operation::SplitColumn {
                    column,
                    into,
                    drop_original,
                    ..
                } => {
                    for c in into {
                        active.remove(c);
                    }
                    if *drop_original {
                        active.remove(column);
                    }
                }
                Operation::MergeColumns {
                    columns,
                    into,
                    drop_originals,
                    ..
                } => {
                    active.remove(into);
                    if *drop_originals {
                        for c in columns {
                            active.remove(c);
                        }
                    }
                }
                Operation::Outliers {
                    flag_column,
                    then: crate::outliers::Action::Flag,
                    ..
                } => {
                    active.remove(flag_column.as_deref().unwrap_or("is_outlier"));
                }
                // The table is new: only the keys keep their (mapped) names.
                Operation::GroupAggregate { by, .. } => active.retain(|k, _| by.contains(k)),
                Operation::Pivot { index, .. } => active.retain(|k, _| index.contains(k)),
                Operation::Unpivot { index, .. } => active.retain(|k, _| index.contains(k)),
                _ => {}
            }
        }
        Ok(out)
    }
}

/// Applies `ops` in turn to a frame, without keeping anything: what each
/// would do, or the first that cannot apply.
pub fn dry_run(
    df: &DataFrame,
    meta: &Meta,
    ops: &[Operation],
) -> std::result::Result<(Vec<StepEffect>, DataFrame), StepFailure> {
    let mut df = df.clone();
    let mut meta = meta.clone();
    let mut effects = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let fail = |error| StepFailure {
            step: i + 1,
            action: op.action(),
            error,
        };
        let applied = op.apply(&df, &meta).map_err(fail)?;
        let cells = cells_changed(&df, &applied.df).map_err(fail)?;
        effects.push(StepEffect {
            rows_before: df.height() as u64,
            rows_after: applied.df.height() as u64,
            columns_before: crate::columns::visible(&df).width() as u64,
            columns_after: crate::columns::visible(&applied.df).width() as u64,
            cells_changed: cells,
            summary: applied.summary,
            changed: applied.changed,
        });
        df = applied.df;
        meta = applied.meta;
    }
    Ok((effects, df))
}

/// Cells that differ between two frames of the same shape (visible columns
/// compared by position, so a rename changes none), or `None` when the shape
/// changed.
fn cells_changed(before: &DataFrame, after: &DataFrame) -> Result<Option<u64>> {
    let (before, after) = (
        crate::columns::visible(before),
        crate::columns::visible(after),
    );
    if before.height() != after.height() || before.width() != after.width() {
        return Ok(None);
    }
    let mut changed = 0u64;
    for (a, b) in before.columns().iter().zip(after.columns()) {
        let (a, b) = (a.as_materialized_series(), b.as_materialized_series());
        if a.dtype() != b.dtype() {
            // A cast: count the cells whose text form changed.
            let (a, b) = (a.cast(&DataType::String)?, b.cast(&DataType::String)?);
            changed += count_differ(&a, &b)?;
        } else {
            changed += count_differ(a, b)?;
        }
    }
    Ok(Some(changed))
}

fn count_differ(a: &Series, b: &Series) -> Result<u64> {
    let same = a.equal_missing(b)?;
    Ok((same.len() - same.sum().unwrap_or(0) as usize) as u64)
}

fn parse_condition(condition: &str) -> Result<Expr> {
    Parser::new(&GenericDialect)
        .try_with_sql(condition)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| OpsError::BadSql {
            message: e.to_string(),
        })
}

/// The column names a SQL condition reads (empty if it does not parse).
fn sql_columns(condition: &str) -> Vec<String> {
    struct Names(Vec<String>);
    impl Visitor for Names {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            match expr {
                Expr::Identifier(ident) => self.0.push(ident.value.clone()),
                Expr::CompoundIdentifier(parts) => {
                    if let Some(last) = parts.last() {
                        self.0.push(last.value.clone());
                    }
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let Ok(expr) = parse_condition(condition) else {
        return Vec::new();
    };
    let mut names = Names(Vec::new());
    let _ = expr.visit(&mut names);
    names.0
}

/// The condition with its column names mapped, printed back as SQL (mapped
/// names quoted).
fn map_sql_columns(condition: &str, mapping: &BTreeMap<String, String>) -> Result<String> {
    if mapping.is_empty() {
        return Ok(condition.to_string());
    }
    struct Rename<'a>(&'a BTreeMap<String, String>);
    impl VisitorMut for Rename<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let rename = |ident: &mut Ident, map: &BTreeMap<String, String>| {
                if let Some(new) = map.get(&ident.value) {
                    *ident = Ident::with_quote('"', new.clone());
                }
            };
            match expr {
                Expr::Identifier(ident) => rename(ident, self.0),
                Expr::CompoundIdentifier(parts) => {
                    if let Some(last) = parts.last_mut() {
                        rename(last, self.0);
                    }
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let mut expr = parse_condition(condition)?;
    let _ = VisitMut::visit(&mut expr, &mut Rename(mapping));
    Ok(expr.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::missing::FillStrategy;

    fn frame() -> DataFrame {
        df!(
            "Price" => [Some(10.0), None, Some(30.0), Some(30.0)],
            "Region" => ["EU", "US", "EU", "EU"],
        )
        .unwrap()
    }

    #[test]
    fn operations_round_trip_through_history_records() {
        let op = Operation::FillMissing {
            columns: Some(vec!["price".into()]),
            strategy: FillStrategy::Mean,
            value: None,
            limit: None,
        };
        assert_eq!(
            Operation::from_parts(op.action(), &op.params()).unwrap(),
            op
        );
        let e = Operation::from_parts("initialize_data_table", &serde_json::json!({}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a replayable operation"), "{e}");
    }

    #[test]
    fn steps_serialize_flat_with_what_they_read() {
        let step = Step::new(
            Operation::FilterRows {
                condition: "price > 10 AND \"the region\" = 'EU'".into(),
            },
            None,
        );
        assert_eq!(step.reads, ["price", "the region"]);
        let json = serde_json::to_value(&step).unwrap();
        assert_eq!(json["action"], "filter_rows");
        assert_eq!(json["reads"][1], "the region");
        let back: Step = serde_json::from_value(json).unwrap();
        assert_eq!(back, step);
    }

    #[test]
    fn mapping_reaches_sql_and_ends_at_a_rename() {
        let recipe = Recipe {
            format: RECIPE_FORMAT,
            source: None,
            steps: vec![
                Step::new(
                    Operation::FilterRows {
                        condition: "price > 10 AND region = 'EU'".into(),
                    },
                    None,
                ),
                Step::new(
                    Operation::RenameColumns {
                        mapping: [("price".to_string(), "amount".to_string())].into(),
                    },
                    None,
                ),
                Step::new(
                    Operation::SortRows {
                        by: vec![SortKey {
                            column: "amount".into(),
                            descending: true,
                        }],
                        nulls_first: false,
                    },
                    None,
                ),
            ],
        };
        let mapping: BTreeMap<String, String> = [
            ("price".to_string(), "Price".to_string()),
            ("region".to_string(), "Region".to_string()),
        ]
        .into();
        let ops = recipe.mapped(&mapping).unwrap();
        assert_eq!(
            ops[0],
            Operation::FilterRows {
                condition: "\"Price\" > 10 AND \"Region\" = 'EU'".into()
            }
        );
        assert_eq!(
            ops[1],
            Operation::RenameColumns {
                mapping: [("Price".to_string(), "amount".to_string())].into()
            }
        );
        assert_eq!(ops[2], recipe.steps[2].op);
        let (effects, out) = dry_run(&frame(), &Meta::new(), &ops).unwrap();
        assert_eq!(out.height(), 2);
        assert_eq!((effects[0].rows_before, effects[0].rows_after), (4, 2));
        assert_eq!(effects[0].cells_changed, None);
        assert_eq!(effects[1].cells_changed, Some(0));
    }

    #[test]
    fn dry_runs_count_cells_and_name_the_failing_step() {
        let ops = vec![
            Operation::FillMissing {
                columns: Some(vec!["Price".into()]),
                strategy: FillStrategy::Zero,
                value: None,
                limit: None,
            },
            Operation::DropColumns {
                columns: vec!["nope".into()],
            },
        ];
        let failure = dry_run(&frame(), &Meta::new(), &ops).unwrap_err();
        assert_eq!((failure.step, failure.action), (2, "drop_columns"));
        assert!(failure.error.to_string().contains("'nope' not found"));
        let (effects, _) = dry_run(&frame(), &Meta::new(), &ops[..1]).unwrap();
        assert_eq!(effects[0].cells_changed, Some(1));
        assert!(effects[0].changed);
    }

    /// Regression: a flag step without flag_column makes `is_outlier`, but
    /// the mapping of that name stayed active for later steps.
    #[test]
    fn the_default_flag_column_ends_a_mapping() {
        let recipe = Recipe {
            format: RECIPE_FORMAT,
            source: None,
            steps: vec![
                Step::new(
                    Operation::Outliers {
                        columns: vec!["x".into()],
                        method: crate::outliers::Method::Iqr,
                        threshold: None,
                        then: crate::outliers::Action::Flag,
                        flag_column: None,
                    },
                    None,
                ),
                Step::new(
                    Operation::FilterRows {
                        condition: "is_outlier".into(),
                    },
                    None,
                ),
            ],
        };
        let mut mapping = BTreeMap::new();
        mapping.insert("is_outlier".to_string(), "Flag".to_string());
        let ops = recipe.mapped(&mapping).unwrap();
        assert_eq!(
            ops[1],
            Operation::FilterRows {
                condition: "is_outlier".into()
            }
        );
    }
}
