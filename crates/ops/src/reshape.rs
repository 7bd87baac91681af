//! Reshaping: group and aggregate, pivot, unpivot, join. Each gives a new
//! frame, which the server saves as a new table.

use std::collections::HashSet;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::columns::{resolve, visible, visible_names};
use crate::error::{Limit, OpsError, Result};

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggFn {
    Count,
    Sum,
    Mean,
    Median,
    Min,
    Max,
    Std,
    NUnique,
    First,
    Last,
}

impl AggFn {
    pub fn name(self) -> &'static str {
        match self {
            AggFn::Count => "count",
            AggFn::Sum => "sum",
            AggFn::Mean => "mean",
            AggFn::Median => "median",
            AggFn::Min => "min",
            AggFn::Max => "max",
            AggFn::Std => "std",
            AggFn::NUnique => "n_unique",
            AggFn::First => "first",
            AggFn::Last => "last",
        }
    }

    fn numeric_only(self) -> bool {
        matches!(self, AggFn::Sum | AggFn::Mean | AggFn::Median | AggFn::Std)
    }

    fn expr(self, e: Expr) -> Expr {
        match self {
            AggFn::Count => e.count(),
            AggFn::Sum => e.sum(),
            AggFn::Mean => e.mean(),
            AggFn::Median => e.median(),
            AggFn::Min => e.min(),
            AggFn::Max => e.max(),
            AggFn::Std => e.std(1),
            AggFn::NUnique => e.n_unique(),
            AggFn::First => e.first(),
            AggFn::Last => e.last(),
        }
    }
}

/// One aggregate of a group: `function` of `column` (rows of the group
/// when `column` is absent and the function is count), named `as`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub function: AggFn,
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

impl Aggregate {
    pub fn output_name(&self) -> String {
        match (&self.alias, &self.column) {
            (Some(a), _) => a.clone(),
            (None, Some(c)) => format!("{c}_{}", self.function.name()),
            (None, None) => self.function.name().to_string(),
        }
    }
}

fn numeric_check(df: &DataFrame, column: &str, function: AggFn) -> Result<()> {
    let dtype = df.column(column)?.dtype();
    if function.numeric_only() && !(dtype.is_primitive_numeric() || dtype.is_bool()) {
        return Err(OpsError::WrongType(format!(
            "{} needs a numeric column; '{column}' is {dtype}. Use count, n_unique, min, max, first or last, or cast it first",
            function.name()
        )));
    }
    Ok(())
}

/// Groups rows by `by` (all rows when empty) and computes the aggregates;
/// groups come out sorted by their keys, missing keys last.
pub fn group_aggregate(
    df: &DataFrame,
    by: &[String],
    aggregates: &[Aggregate],
) -> Result<DataFrame> {
    if aggregates.is_empty() {
        return Err(OpsError::InvalidArgument(
            "give at least one aggregate, e.g. [{\"column\": \"price\", \"function\": \"sum\"}] or [{\"function\": \"count\"}]".into(),
        ));
    }
    resolve(df, by)?;
    let mut names: Vec<String> = by.to_vec();
    let mut exprs = Vec::new();
    for a in aggregates {
        let e = match &a.column {
            Some(c) => {
                resolve(df, std::slice::from_ref(c))?;
                numeric_check(df, c, a.function)?;
                a.function.expr(col(c.as_str()))
            }
            None if a.function == AggFn::Count => len(),
            None => {
                return Err(OpsError::InvalidArgument(format!(
                    "{} needs a column; only count may go without one (it counts rows)",
                    a.function.name()
                )));
            }
        };
        let name = a.output_name();
        crate::columns::refuse_reserved(&name)?;
        if names.contains(&name) {
            return Err(OpsError::InvalidArgument(format!(
                "two output columns would be named '{name}'; give one of them \"as\""
            )));
        }
        names.push(name.clone());
        exprs.push(e.alias(name.as_str()));
    }
    let lf = visible(df).lazy();
    let out = if by.is_empty() {
        lf.select(exprs).collect()?
    } else {
        let keys: Vec<Expr> = by.iter().map(|c| col(c.as_str())).collect();
        lf.group_by(keys)
            .agg(exprs)
            .sort(
                by.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                SortMultipleOptions::default()
                    .with_nulls_last(true)
                    .with_maintain_order(true),
            )
            .collect()?
    };
    Ok(out)
}

/// Most columns a pivot may make.
pub const MAX_PIVOT_COLUMNS: usize = 200;

/// Most rows an unpivot, and most cells a pivot, may make: checked before
/// the work, wherever the operation runs (a tool, a recipe, a dry run). A
/// server may hold its tools to less.
pub const MAX_RESHAPE_CELLS: u64 = 100_000_000;

fn too_large(what: String) -> OpsError {
    OpsError::LimitExceeded {
        limit: Limit::QueryRows,
        message: what,
    }
}

/// One row per distinct `index`, one column per distinct value of
/// `columns` (sorted), each cell `function` of `values` in that pair. With
/// no function, each pair must hold at most one row.
pub fn pivot(
    df: &DataFrame,
    index: &[String],
    columns: &str,
    values: &str,
    function: Option<AggFn>,
) -> Result<DataFrame> {
    pivot_within(df, index, columns, values, function, MAX_RESHAPE_CELLS)
}

fn pivot_within(
    df: &DataFrame,
    index: &[String],
    columns: &str,
    values: &str,
    function: Option<AggFn>,
    max_cells: u64,
) -> Result<DataFrame> {
    if index.is_empty() {
        return Err(OpsError::InvalidArgument(
            "index needs at least one column: the rows of the pivot".into(),
        ));
    }
    resolve(df, index)?;
    resolve(df, &[columns.to_string(), values.to_string()])?;
    if index.iter().any(|i| i == columns || i == values) {
        return Err(OpsError::InvalidArgument(
            "index, columns and values must be different columns".into(),
        ));
    }
    let keys: Vec<Expr> = index.iter().map(|c| col(c.as_str())).collect();
    let function = match function {
        Some(f) => {
            numeric_check(df, values, f)?;
            f
        }
        None => {
            let mut all = keys.clone();
            all.push(col(columns));
            let most = df
                .clone()
                .lazy()
                .group_by(all)
                .agg([len().alias("n")])
                .select([col("n").max()])
                .collect()?;
            let most = most.columns()[0]
                .as_materialized_series()
                .cast(&DataType::UInt64)?;
            if most.u64()?.get(0).unwrap_or(0) > 1 {
                return Err(OpsError::InvalidArgument(format!(
                    "several rows share the same {} and {columns}: choose function (sum, mean, count, min, max, first, last) to combine them",
                    index.join(", ")
                )));
            }
            AggFn::First
        }
    };
    let header = df.column(columns)?.as_materialized_series().clone();
    let distinct = header
        .unique()?
        .sort(SortOptions::default().with_nulls_last(true))?;
    if distinct.len() > MAX_PIVOT_COLUMNS {
        return Err(OpsError::LimitExceeded {
            limit: Limit::QueryBytes,
            message: format!(
                "pivoting on '{columns}' would make {} columns (at most {MAX_PIVOT_COLUMNS}); filter rows first or pivot on a column with fewer distinct values",
                distinct.len()
            ),
        });
    }
    let groups = df
        .clone()
        .lazy()
        .group_by(keys.clone())
        .agg([len().alias("n")])
        .select([len()])
        .collect()?;
    let groups = groups.columns()[0]
        .as_materialized_series()
        .cast(&DataType::UInt64)?
        .u64()?
        .get(0)
        .unwrap_or(0);
    let cells = groups.saturating_mul(distinct.len() as u64);
    if cells > max_cells {
        return Err(too_large(format!(
            "this pivot would make {groups} rows × {} columns = {cells} cells, more than {max_cells}; aggregate first (group_aggregate) or filter rows",
            distinct.len()
        )));
    }
    // Names are polars' text of each value, as the generated code's cast
    // gives them.
    let names = distinct.cast(&DataType::String)?;
    let names = names.str()?;
    let mut taken: HashSet<String> = index.iter().cloned().collect();
    let mut exprs = Vec::new();
    for i in 0..distinct.len() {
        let v = distinct.get(i)?;
        let (mut name, selected) = if v.is_null() {
            ("(missing)".to_string(), col(columns).is_null())
        } else {
            let text = names.get(i).unwrap_or_default().to_string();
            let lit_value = distinct.slice(i as i64, 1);
            (text, col(columns).eq(lit(lit_value).first()))
        };
        if crate::columns::is_hidden(&name) {
            name = name.trim_start_matches('_').to_string();
        }
        while taken.contains(&name) {
            name.push('_');
        }
        taken.insert(name.clone());
        let picked = col(values).filter(selected.clone());
        let e = match function {
            // A pair with no rows is missing, not 0, except for counts.
            AggFn::Count => picked.count(),
            f => when(selected.any(false))
                .then(f.expr(picked))
                .otherwise(lit(NULL)),
        };
        exprs.push(e.alias(name.as_str()));
    }
    let out = visible(df)
        .lazy()
        .group_by(keys)
        .agg(exprs)
        .sort(
            index.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            SortMultipleOptions::default()
                .with_nulls_last(true)
                .with_maintain_order(true),
        )
        .collect()?;
    Ok(out)
}

/// The columns an unpivot turns into rows (every visible column not in
/// `index` when none are named), refused when the rows they would make are
/// more than `max_rows`: a caller with a lower limit checks with it first.
pub fn unpivot_columns(
    df: &DataFrame,
    index: &[String],
    columns: &[String],
    max_rows: u64,
) -> Result<Vec<String>> {
    resolve(df, index)?;
    let columns: Vec<String> = if columns.is_empty() {
        visible_names(df)
            .into_iter()
            .filter(|c| !index.contains(c))
            .collect()
    } else {
        resolve(df, columns)?
    };
    if columns.is_empty() {
        return Err(OpsError::InvalidArgument(
            "no columns left to unpivot: every column is in index".into(),
        ));
    }
    let rows = (df.height() as u64).saturating_mul(columns.len() as u64);
    if rows > max_rows {
        return Err(too_large(format!(
            "unpivoting {} columns of {} rows would make {rows} rows, more than {max_rows}; name fewer columns or filter rows first",
            columns.len(),
            df.height()
        )));
    }
    Ok(columns)
}

/// Turns columns into rows: for each row and each of `columns` (every
/// column not in `index` when empty) one row of the index columns, the
/// column's name and its value. Values of different types are read as text.
pub fn unpivot(
    df: &DataFrame,
    index: &[String],
    columns: &[String],
    variable_name: &str,
    value_name: &str,
) -> Result<DataFrame> {
    unpivot_within(
        df,
        index,
        columns,
        variable_name,
        value_name,
        MAX_RESHAPE_CELLS,
    )
}

fn unpivot_within(
    df: &DataFrame,
    index: &[String],
    columns: &[String],
    variable_name: &str,
    value_name: &str,
    max_rows: u64,
) -> Result<DataFrame> {
    let columns = unpivot_columns(df, index, columns, max_rows)?;
    crate::columns::refuse_reserved(variable_name)?;
    crate::columns::refuse_reserved(value_name)?;
    if variable_name == value_name || index.iter().any(|i| i == variable_name || i == value_name) {
        return Err(OpsError::InvalidArgument(format!(
            "variable_name '{variable_name}' and value_name '{value_name}' must differ from each other and from the index columns"
        )));
    }
    let mut dtype = df.column(&columns[0])?.dtype().clone();
    for c in &columns[1..] {
        let next = df.column(c)?.dtype();
        dtype = common_type(&dtype, next);
    }
    if matches!(dtype, DataType::Categorical(..) | DataType::Enum(..)) {
        dtype = DataType::String;
    }
    let frames: Vec<LazyFrame> = columns
        .iter()
        .map(|c| {
            let mut exprs: Vec<Expr> = index.iter().map(|i| col(i.as_str())).collect();
            exprs.push(lit(c.as_str()).alias(variable_name));
            exprs.push(col(c.as_str()).cast(dtype.clone()).alias(value_name));
            df.clone().lazy().select(exprs)
        })
        .collect();
    Ok(concat(frames, UnionArgs::default())?.collect()?)
}

/// A type both can be read as: themselves when equal, a number type for
/// numbers (whole numbers stay whole), text otherwise.
fn common_type(a: &DataType, b: &DataType) -> DataType {
    if a == b {
        a.clone()
    } else if a.is_integer() && b.is_integer() && a != &DataType::UInt64 && b != &DataType::UInt64 {
        // Int64 holds every other integer type; a UInt64 beyond i64::MAX
        // would become missing, so with UInt64 the common type is Float64.
        DataType::Int64
    } else if a.is_primitive_numeric() && b.is_primitive_numeric() {
        DataType::Float64
    } else {
        DataType::String
    }
}

/// How rows of two tables are matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinHow {
    #[default]
    Inner,
    Left,
    Right,
    Full,
}

/// Rows a join of `left` and `right` on these keys will have, counted from
/// the key counts alone (missing keys never match), so that a join too
/// large to hold is refused before it is made.
pub fn join_size(
    left: &DataFrame,
    right: &DataFrame,
    left_on: &[String],
    right_on: &[String],
    how: JoinHow,
) -> Result<u64> {
    let counts = |df: &DataFrame, on: &[String], name: &str| -> Result<LazyFrame> {
        let keys: Vec<Expr> = on
            .iter()
            .enumerate()
            .map(|(i, c)| col(c.as_str()).alias(format!("k{i}")))
            .collect();
        let filter = on
            .iter()
            .map(|c| col(c.as_str()).is_not_null())
            .reduce(|a, b| a.and(b))
            .expect("one key at least");
        Ok(df
            .clone()
            .lazy()
            .filter(filter)
            .group_by(keys)
            .agg([len().cast(DataType::UInt64).alias(name)]))
    };
    let keys: Vec<Expr> = (0..left_on.len()).map(|i| col(format!("k{i}"))).collect();
    let matched = counts(left, left_on, "l")?
        .join(
            counts(right, right_on, "r")?,
            keys.clone(),
            keys,
            JoinArgs::new(JoinType::Inner),
        )
        .select([
            (col("l") * col("r")).sum().alias("pairs"),
            col("l").sum().alias("left_matched"),
            col("r").sum().alias("right_matched"),
        ])
        .collect()?;
    let get = |name: &str| -> Result<u64> {
        let s = matched
            .column(name)?
            .as_materialized_series()
            .cast(&DataType::UInt64)?;
        Ok(s.u64()?.get(0).unwrap_or(0))
    };
    let (pairs, lm, rm) = (get("pairs")?, get("left_matched")?, get("right_matched")?);
    let (l, r) = (left.height() as u64, right.height() as u64);
    Ok(match how {
        JoinHow::Inner => pairs,
        JoinHow::Left => pairs + (l - lm),
        JoinHow::Right => pairs + (r - rm),
        JoinHow::Full => pairs + (l - lm) + (r - rm),
    })
}

/// Joins two frames on key columns. Keys of different numeric types are
/// compared as their common type; other type differences are refused.
/// Right-side columns whose names are taken get `suffix`. A full join keeps
/// one key column, filled from whichever side has the row.
pub fn join(
    left: &DataFrame,
    right: &DataFrame,
    left_on: &[String],
    right_on: &[String],
    how: JoinHow,
    suffix: &str,
    max_rows: u64,
) -> Result<DataFrame> {
    if left_on.is_empty() || left_on.len() != right_on.len() {
        return Err(OpsError::InvalidArgument(
            "give the key columns: on (same names in both tables) or left_on and right_on of the same length".into(),
        ));
    }
    resolve(left, left_on)?;
    resolve(right, right_on)?;
    let mut left = visible(left);
    let mut right = visible(right);
    for (l, r) in left_on.iter().zip(right_on) {
        let (lt, rt) = (left.column(l)?.dtype(), right.column(r)?.dtype());
        let common = if lt == rt {
            lt.clone()
        } else if lt.is_primitive_numeric() && rt.is_primitive_numeric() {
            common_type(lt, rt)
        } else {
            return Err(OpsError::WrongType(format!(
                "key '{l}' is {lt} but '{r}' is {rt}; cast one of them (cast_columns) so both have the same type"
            )));
        };
        // Cast in the frames, not in the join: a key given as an expression
        // would be kept twice.
        if lt != &common {
            let cast = left.column(l)?.cast(&common)?;
            left.with_column(cast)?;
        }
        if rt != &common {
            let cast = right.column(r)?.cast(&common)?;
            right.with_column(cast)?;
        }
    }
    let left_keys: Vec<Expr> = left_on.iter().map(|c| col(c.as_str())).collect();
    let right_keys: Vec<Expr> = right_on.iter().map(|c| col(c.as_str())).collect();
    let rows = join_size(&left, &right, left_on, right_on, how)?;
    if rows > max_rows {
        return Err(OpsError::LimitExceeded {
            limit: Limit::QueryRows,
            message: format!(
                "this join would make {rows} rows, more than this server's limit of {max_rows}: keys repeat on both sides. Deduplicate a side (drop_duplicates on the key) or aggregate it first (group_aggregate)"
            ),
        });
    }
    let args = JoinArgs::new(match how {
        JoinHow::Inner => JoinType::Inner,
        JoinHow::Left => JoinType::Left,
        JoinHow::Right => JoinType::Right,
        JoinHow::Full => JoinType::Full,
    })
    .with_suffix(Some(suffix.into()))
    .with_coalesce(JoinCoalesce::CoalesceColumns);
    Ok(left
        .lazy()
        .join(right.lazy(), left_keys, right_keys, args)
        .collect()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(df: &DataFrame) -> Vec<String> {
        df.get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect()
    }

    fn sales() -> DataFrame {
        df!(
            "region" => [Some("EU"), Some("US"), Some("EU"), None, Some("US"), Some("EU")],
            "month" => ["Jan", "Jan", "Feb", "Jan", "Feb", "Jan"],
            "amount" => [Some(10.0), Some(20.0), Some(5.0), Some(1.0), None, Some(2.5)],
            "who" => ["a", "b", "a", "c", "b", "d"]
        )
        .unwrap()
    }

    fn col_f64(df: &DataFrame, name: &str) -> Vec<Option<f64>> {
        let s = df
            .column(name)
            .unwrap()
            .as_materialized_series()
            .cast(&DataType::Float64)
            .unwrap();
        s.f64().unwrap().iter().collect()
    }

    fn col_str(df: &DataFrame, name: &str) -> Vec<Option<String>> {
        let s = df
            .column(name)
            .unwrap()
            .as_materialized_series()
            .cast(&DataType::String)
            .unwrap();
        s.str()
            .unwrap()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }

    #[test]
    fn group_aggregate_cases() {
        let aggs = vec![
            Aggregate {
                column: Some("amount".into()),
                function: AggFn::Sum,
                alias: None,
            },
            Aggregate {
                column: None,
                function: AggFn::Count,
                alias: Some("rows".into()),
            },
            Aggregate {
                column: Some("amount".into()),
                function: AggFn::Count,
                alias: None,
            },
            Aggregate {
                column: Some("who".into()),
                function: AggFn::NUnique,
                alias: None,
            },
            Aggregate {
                column: Some("who".into()),
                function: AggFn::Max,
                alias: None,
            },
        ];
        let out = group_aggregate(&sales(), &["region".into()], &aggs).unwrap();
        assert_eq!(
            names(&out),
            [
                "region",
                "amount_sum",
                "rows",
                "amount_count",
                "who_n_unique",
                "who_max"
            ]
        );
        assert_eq!(
            col_str(&out, "region"),
            vec![Some("EU".into()), Some("US".into()), None]
        );
        assert_eq!(
            col_f64(&out, "amount_sum"),
            vec![Some(17.5), Some(20.0), Some(1.0)]
        );
        assert_eq!(col_f64(&out, "rows"), vec![Some(3.0), Some(2.0), Some(1.0)]);
        assert_eq!(
            col_f64(&out, "amount_count"),
            vec![Some(3.0), Some(1.0), Some(1.0)]
        );
        assert_eq!(
            col_f64(&out, "who_n_unique"),
            vec![Some(2.0), Some(1.0), Some(1.0)]
        );
        assert_eq!(
            col_str(&out, "who_max"),
            vec![Some("d".into()), Some("b".into()), Some("c".into())]
        );
        let whole = group_aggregate(
            &sales(),
            &[],
            &[Aggregate {
                column: Some("amount".into()),
                function: AggFn::Median,
                alias: None,
            }],
        )
        .unwrap();
        assert_eq!(col_f64(&whole, "amount_median"), vec![Some(5.0)]);
        let e = group_aggregate(
            &sales(),
            &["region".into()],
            &[Aggregate {
                column: Some("who".into()),
                function: AggFn::Mean,
                alias: None,
            }],
        )
        .unwrap_err();
        assert!(e.to_string().contains("numeric"), "{e}");
        assert!(group_aggregate(&sales(), &["nope".into()], &aggs).is_err());
        assert!(group_aggregate(&sales(), &["region".into()], &[]).is_err());
        let empty = sales().head(Some(0));
        assert_eq!(
            group_aggregate(&empty, &["region".into()], &aggs)
                .unwrap()
                .height(),
            0
        );
    }

    #[test]
    fn pivot_cases() {
        let out = pivot(
            &sales(),
            &["region".into()],
            "month",
            "amount",
            Some(AggFn::Sum),
        )
        .unwrap();
        assert_eq!(names(&out), ["region", "Feb", "Jan"]);
        // US has a February row whose amount is missing: its sum is 0, as
        // polars and pandas sum nothing; no row at all is missing.
        assert_eq!(col_f64(&out, "Feb"), vec![Some(5.0), Some(0.0), None]);
        assert_eq!(
            col_f64(&out, "Jan"),
            vec![Some(12.5), Some(20.0), Some(1.0)]
        );
        let e = pivot(&sales(), &["region".into()], "month", "amount", None).unwrap_err();
        assert!(e.to_string().contains("choose function"), "{e}");
        let counts = pivot(
            &sales(),
            &["region".into()],
            "month",
            "who",
            Some(AggFn::Count),
        )
        .unwrap();
        assert_eq!(
            col_f64(&counts, "Feb"),
            vec![Some(1.0), Some(1.0), Some(0.0)]
        );
        let unique = df!("id" => [1, 1, 2], "k" => ["x", "y", "x"], "v" => [1, 2, 3]).unwrap();
        let out = pivot(&unique, &["id".into()], "k", "v", None).unwrap();
        assert_eq!(col_f64(&out, "y"), vec![Some(2.0), None]);
        let wide = df!("id" => (0..300).collect::<Vec<i32>>(), "k" => (0..300).collect::<Vec<i32>>(), "v" => (0..300).collect::<Vec<i32>>()).unwrap();
        let e = pivot(&wide, &["id".into()], "k", "v", None).unwrap_err();
        assert!(e.to_string().contains("300 columns"), "{e}");
    }

    #[test]
    fn unpivot_cases() {
        let df = df!("id" => [1, 2], "a" => [Some(1), None], "b" => [3.5, 4.0]).unwrap();
        let out = unpivot(&df, &["id".into()], &[], "variable", "value").unwrap();
        assert_eq!(names(&out), ["id", "variable", "value"]);
        assert_eq!(
            col_str(&out, "variable"),
            ["a", "a", "b", "b"].map(|s| Some(s.to_string())).to_vec()
        );
        assert_eq!(
            col_f64(&out, "value"),
            vec![Some(1.0), None, Some(3.5), Some(4.0)]
        );
        let mixed = df!("id" => [1], "a" => [1], "s" => ["x"]).unwrap();
        let out = unpivot(&mixed, &["id".into()], &[], "k", "v").unwrap();
        assert_eq!(col_str(&out, "v"), vec![Some("1".into()), Some("x".into())]);
        assert!(unpivot(&df, &["id".into()], &[], "id", "v").is_err());
        assert!(unpivot(&df, &["id".into(), "a".into(), "b".into()], &[], "k", "v").is_err());
    }

    #[test]
    fn join_cases_and_size_bound() {
        let left =
            df!("id" => [Some(1i64), Some(2), Some(2), None], "x" => ["a", "b", "c", "d"]).unwrap();
        let right = df!("key" => [Some(2i32), Some(2), Some(3), None], "x" => ["p", "q", "r", "s"])
            .unwrap();
        let on_l = ["id".to_string()];
        let on_r = ["key".to_string()];
        for (how, rows) in [
            (JoinHow::Inner, 4),
            (JoinHow::Left, 6),
            (JoinHow::Right, 6),
            (JoinHow::Full, 8),
        ] {
            assert_eq!(
                join_size(&left, &right, &on_l, &on_r, how).unwrap(),
                rows,
                "{how:?}"
            );
            let out = join(&left, &right, &on_l, &on_r, how, "_right", 100).unwrap();
            assert_eq!(out.height() as u64, rows, "{how:?}");
        }
        let out = join(&left, &right, &on_l, &on_r, JoinHow::Inner, "_right", 100).unwrap();
        assert_eq!(names(&out), ["id", "x", "x_right"]);
        let e = join(&left, &right, &on_l, &on_r, JoinHow::Inner, "_right", 3).unwrap_err();
        assert!(e.to_string().contains("would make 4 rows"), "{e}");
        let text = df!("key" => ["2"]).unwrap();
        let e = join(&left, &text, &on_l, &on_r, JoinHow::Inner, "_r", 100).unwrap_err();
        assert!(e.to_string().contains("cast"), "{e}");
    }

    #[test]
    fn reshapes_are_bounded_before_they_run() {
        let df = df!("id" => [1, 2, 3], "k" => ["a", "b", "c"], "v" => [1, 2, 3]).unwrap();
        let e = pivot_within(&df, &["id".into()], "k", "v", None, 8).unwrap_err();
        assert!(
            e.to_string().contains("3 rows × 3 columns = 9 cells"),
            "{e}"
        );
        assert!(pivot_within(&df, &["id".into()], "k", "v", None, 9).is_ok());
        let e = unpivot_within(&df, &["id".into()], &[], "k2", "v2", 5).unwrap_err();
        assert!(e.to_string().contains("would make 6 rows"), "{e}");
        let e = unpivot(
            &df,
            &["id".into()],
            &[],
            "__dfmcp_intentional_missing__k",
            "v2",
        )
        .unwrap_err();
        assert!(e.to_string().contains("reserved"), "{e}");
    }

    /// Regression: Int64 and UInt64 values were cast to Int64, and a UInt64
    /// beyond i64::MAX became missing without a word.
    #[test]
    fn large_unsigned_values_survive_a_common_type() {
        let df = df!("id" => [1], "a" => [u64::MAX], "b" => [-1i64]).unwrap();
        let out = unpivot(&df, &["id".into()], &[], "k", "v").unwrap();
        assert_eq!(out.column("v").unwrap().dtype(), &DataType::Float64);
        assert_eq!(out.column("v").unwrap().null_count(), 0);
    }
}
