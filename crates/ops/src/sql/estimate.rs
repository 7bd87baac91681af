//! An upper bound of what a query plan will build, computed before it runs.
//!
//! polars materialises every intermediate result of an in-memory plan (a
//! join, a grouped aggregate, a string concatenation), and a machine that runs
//! out of memory aborts the whole process. So before collecting, the
//! optimized plan is walked bottom-up and each node gets an upper bound of
//! its rows and bytes: scans know their size, filters only shrink, joins are
//! counted from their key frequencies (exactly, when the keys come straight
//! from a table; as the cartesian product otherwise), and expressions that
//! grow strings (concatenation, padding, aggregation into one string) carry
//! their width through. The largest node is compared with the limits.

use std::collections::HashMap;
use std::sync::Arc;

use polars::prelude::*;
use polars_plan::dsl::JoinTypeOptionsIR;
use polars_plan::plans::expr_ir::ExprIR;
use polars_plan::plans::{
    AExpr, FunctionIR, IR, IRAggExpr, IRFunctionExpr, IRListFunction, IRStringFunction,
};
use polars_plan::prelude::{Arena, Node};

use crate::error::{Limit, OpsError, Result};

/// Bounds of a query's intermediate and final results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Largest SQL text, in bytes (default 256 KiB).
    pub max_sql_bytes: usize,
    /// Most binary operators (AND, OR, =, +, ||, …) in one statement
    /// (default 2,000): long chains become deep trees that are walked
    /// recursively.
    pub max_operators: usize,
    /// Most UNION/INTERSECT/EXCEPT in one statement (default 256).
    pub max_set_operations: usize,
    /// Most rows any step of a query may produce (default 100 million).
    pub max_rows: u64,
    /// Most bytes any step of a query may hold (default 2 GiB).
    pub max_bytes: u64,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_sql_bytes: 256 << 10,
            max_operators: 2_000,
            max_set_operations: 256,
            max_rows: 100_000_000,
            max_bytes: 2 << 30,
        }
    }
}

/// The largest step of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub rows: f64,
    pub bytes: f64,
    /// What that step is, for messages ("a cross join of 50,000 × 50,000 rows").
    pub step: String,
}

/// Where a column's values come from unchanged: a registered frame's column.
type Origin = (Arc<DataFrame>, PlSmallStr);

#[derive(Clone, Default)]
struct NodeEst {
    rows: f64,
    /// Bytes per row of each output column.
    widths: HashMap<PlSmallStr, f64>,
    origins: HashMap<PlSmallStr, Origin>,
}

impl NodeEst {
    fn row_bytes(&self) -> f64 {
        self.widths.values().sum::<f64>().max(1.0)
    }
}

/// The largest step of `lf`'s optimized plan; an error when it is over the
/// limits (or when the plan reads files).
pub fn check(lf: &LazyFrame, limits: &QueryLimits) -> Result<Estimate> {
    let plan = lf.clone().to_alp_optimized()?;
    let lp = &plan.lp_arena;
    let ea = &plan.expr_arena;
    let mut memo: HashMap<Node, NodeEst> = HashMap::new();
    let mut largest = Estimate {
        rows: 0.0,
        bytes: 0.0,
        step: "nothing".into(),
    };
    // Post-order with an explicit stack: plans can be deep, and they are DAGs
    // (common subplans are shared through cache nodes).
    let mut stack = vec![(plan.lp_top, false)];
    while let Some((node, inputs_done)) = stack.pop() {
        if memo.contains_key(&node) {
            continue;
        }
        let ir = lp.get(node);
        if !inputs_done {
            stack.push((node, true));
            for input in ir.inputs() {
                if !memo.contains_key(&input) {
                    stack.push((input, false));
                }
            }
            continue;
        }
        let inputs: Vec<&NodeEst> = ir.inputs().filter_map(|n| memo.get(&n)).collect();
        let (est, step) = estimate_node(ir, &inputs, ea)?;
        let bytes = est.rows * est.row_bytes();
        // A scan reads a table that is already in memory: no new memory.
        let allocates = !matches!(ir, IR::DataFrameScan { .. });
        if allocates && bytes > largest.bytes || (bytes == largest.bytes && est.rows > largest.rows)
        {
            largest = Estimate {
                rows: est.rows,
                bytes,
                step,
            };
        }
        memo.insert(node, est);
    }
    if largest.rows > limits.max_rows as f64 {
        return Err(OpsError::LimitExceeded {
            limit: Limit::QueryRows,
            message: format!(
                "this query would build about {} rows in one step ({}), over the limit of {} rows",
                approx(largest.rows),
                largest.step,
                approx(limits.max_rows as f64)
            ),
        });
    }
    if largest.bytes > limits.max_bytes as f64 {
        return Err(OpsError::LimitExceeded {
            limit: Limit::QueryBytes,
            message: format!(
                "this query would hold about {} in one step ({}), over the limit of {}",
                approx_bytes(largest.bytes),
                largest.step,
                approx_bytes(limits.max_bytes as f64)
            ),
        });
    }
    Ok(largest)
}

fn estimate_node(ir: &IR, inputs: &[&NodeEst], ea: &Arena<AExpr>) -> Result<(NodeEst, String)> {
    let first = || inputs.first().map(|e| (*e).clone()).unwrap_or_default();
    Ok(match ir {
        IR::DataFrameScan {
            df,
            schema,
            output_schema,
        } => {
            let names = output_schema.as_ref().unwrap_or(schema);
            let rows = df.height() as f64;
            let mut est = NodeEst {
                rows,
                ..NodeEst::default()
            };
            for name in names.iter_names() {
                if let Ok(column) = df.column(name) {
                    let bytes = dfmcp_memory::column_bytes(column) as f64;
                    est.widths
                        .insert(name.clone(), (bytes / rows.max(1.0)).max(1.0));
                    est.origins.insert(name.clone(), (df.clone(), name.clone()));
                }
            }
            (est, format!("a table of {} rows", approx(rows)))
        }
        IR::Scan { .. } => {
            return Err(OpsError::RefusedSql(
                "reading files from SQL is not allowed; query the session's tables by name".into(),
            ));
        }
        IR::Slice { len, .. } => {
            let mut est = first();
            est.rows = est.rows.min(*len as f64);
            (est, "a LIMIT".into())
        }
        IR::Filter { .. } | IR::Cache { .. } | IR::Sink { .. } | IR::Gather { .. } => {
            (first(), ir.name().to_string())
        }
        IR::SimpleProjection { columns, .. } => {
            let input = first();
            let mut est = NodeEst {
                rows: input.rows,
                ..NodeEst::default()
            };
            for name in columns.iter_names() {
                carry(&mut est, &input, name, name);
            }
            (est, "a projection".into())
        }
        IR::Sort { slice, .. } => {
            let mut est = first();
            if let Some((_, len, _)) = slice {
                est.rows = est.rows.min(*len as f64);
            }
            (est, "a sort".into())
        }
        IR::Distinct { options, .. } => {
            let mut est = first();
            if let Some((_, len)) = options.slice {
                est.rows = est.rows.min(len as f64);
            }
            (est, "a DISTINCT".into())
        }
        IR::Select { expr, .. } => {
            let input = first();
            let scalar = expr.iter().all(|e| e.is_scalar(ea));
            let mut est = NodeEst {
                rows: if scalar { 1.0 } else { input.rows },
                ..NodeEst::default()
            };
            project(&mut est, &input, expr, ea, input.rows);
            (est, "a SELECT".into())
        }
        IR::HStack { exprs, .. } => {
            let input = first();
            let mut est = input.clone();
            project(&mut est, &input, exprs, ea, input.rows);
            (est, "computed columns".into())
        }
        IR::GroupBy {
            keys,
            aggs,
            options,
            ..
        } => {
            let input = first();
            let mut rows = if keys.is_empty() { 1.0 } else { input.rows };
            if let Some((_, len)) = options.slice {
                rows = rows.min(len as f64);
            }
            let mut est = NodeEst {
                rows,
                ..NodeEst::default()
            };
            project(&mut est, &input, keys, ea, input.rows);
            project(&mut est, &input, aggs, ea, input.rows);
            (est, format!("a GROUP BY of {} rows", approx(input.rows)))
        }
        IR::Join {
            left_on,
            right_on,
            options,
            schema,
            ..
        } => {
            let left = inputs.first().copied().cloned().unwrap_or_default();
            let right = inputs.get(1).copied().cloned().unwrap_or_default();
            let product = left.rows * right.rows.max(1.0);
            let fused_cross = matches!(
                options.options,
                Some(JoinTypeOptionsIR::CrossAndFilter { .. })
            );
            let pairs = || {
                left_on
                    .first()
                    .zip(right_on.first())
                    .and_then(|(l, r)| key_pairs(&left, &right, l, r, ea, options.args.nulls_equal))
                    .unwrap_or(product)
            };
            let (mut rows, step) = match options.args.how {
                JoinType::Semi | JoinType::Anti => (left.rows, "a semi/anti join".to_string()),
                JoinType::Inner if !fused_cross => (pairs(), "a join".into()),
                JoinType::Left if !fused_cross => (pairs() + left.rows, "a left join".into()),
                JoinType::Right if !fused_cross => (pairs() + right.rows, "a right join".into()),
                JoinType::Full if !fused_cross => {
                    (pairs() + left.rows + right.rows, "a full join".into())
                }
                _ => (
                    product,
                    format!(
                        "a cross join of {} × {} rows",
                        approx(left.rows),
                        approx(right.rows)
                    ),
                ),
            };
            if let Some((_, len)) = options.args.slice {
                rows = rows.min(len as f64);
            }
            let mut est = NodeEst {
                rows,
                ..NodeEst::default()
            };
            for name in schema.iter_names() {
                let source = if left.widths.contains_key(name) {
                    &left
                } else {
                    &right
                };
                let base = strip_suffix(name, source);
                carry(&mut est, source, &base, name);
            }
            (est, step)
        }
        IR::Union { options, .. } => {
            let mut est = first();
            est.rows = inputs.iter().map(|e| e.rows).sum();
            for other in inputs.iter().skip(1) {
                for (name, w) in &other.widths {
                    let slot = est.widths.entry(name.clone()).or_insert(0.0);
                    *slot = slot.max(*w);
                }
            }
            est.origins.clear();
            if let Some((_, len)) = options.slice {
                est.rows = est.rows.min(len as f64);
            }
            (est, format!("a UNION of {} inputs", inputs.len()))
        }
        IR::HConcat { .. } => {
            let mut est = NodeEst::default();
            for input in inputs {
                est.rows = est.rows.max(input.rows);
                est.widths.extend(input.widths.clone());
            }
            (est, "a horizontal concatenation".into())
        }
        IR::MapFunction { function, .. } => {
            let mut est = first();
            if matches!(function, FunctionIR::Explode { .. }) {
                // Each list element becomes a row: at most one per byte.
                est.rows = (est.rows * est.row_bytes()).max(est.rows);
                (est, "an UNNEST".into())
            } else {
                (est, "a transformation".into())
            }
        }
        _ => {
            let mut est = NodeEst::default();
            for input in inputs {
                est.rows = est.rows.max(input.rows);
                est.widths.extend(input.widths.clone());
            }
            (est, ir.name().to_string())
        }
    })
}

/// Output columns of `exprs`, each with its width (and its origin when it
/// is a plain column reference).
fn project(
    est: &mut NodeEst,
    input: &NodeEst,
    exprs: &[ExprIR],
    ea: &Arena<AExpr>,
    group_rows: f64,
) {
    for e in exprs {
        let name = e.output_name().clone();
        est.widths
            .insert(name.clone(), width(e.node(), ea, input, group_rows));
        if let AExpr::Column(source) = ea.get(e.node())
            && let Some(origin) = input.origins.get(source)
        {
            est.origins.insert(name, origin.clone());
        }
    }
}

fn carry(est: &mut NodeEst, from: &NodeEst, source: &PlSmallStr, name: &PlSmallStr) {
    est.widths.insert(
        name.clone(),
        from.widths.get(source).copied().unwrap_or(8.0),
    );
    if let Some(origin) = from.origins.get(source) {
        est.origins.insert(name.clone(), origin.clone());
    }
}

/// A join output name without polars' suffix for clashing right-side names.
fn strip_suffix(name: &PlSmallStr, source: &NodeEst) -> PlSmallStr {
    if source.widths.contains_key(name) {
        return name.clone();
    }
    name.strip_suffix("_right")
        .map(PlSmallStr::from)
        .unwrap_or_else(|| name.clone())
}

/// Bytes per row of an expression's output, an upper estimate; `group_rows`
/// is how many input rows one output row can gather (aggregations).
fn width(node: Node, ea: &Arena<AExpr>, input: &NodeEst, group_rows: f64) -> f64 {
    let w = |n: Node| width(n, ea, input, group_rows);
    let inputs_max = |nodes: &mut dyn Iterator<Item = Node>| nodes.map(w).fold(8.0, f64::max);
    match ea.get(node) {
        AExpr::Column(name) => input.widths.get(name).copied().unwrap_or(8.0),
        AExpr::Literal(value) => value.extract_str().map_or(8.0, |s| s.len() as f64),
        AExpr::BinaryExpr { left, op, right } => match op {
            // String concatenation before the optimizer turns it into concat.
            Operator::Plus => w(*left) + w(*right),
            _ => w(*left).max(w(*right)),
        },
        AExpr::Cast { expr, dtype, .. } => match dtype {
            DataType::String => w(*expr).max(24.0),
            other => fixed_width(other),
        },
        AExpr::Agg(agg) => match agg {
            IRAggExpr::Implode { input, .. } => group_rows * w(*input),
            IRAggExpr::Count { .. } | IRAggExpr::NUnique(_) => 8.0,
            IRAggExpr::Min { input, .. } | IRAggExpr::Max { input, .. } => w(*input),
            IRAggExpr::First(n)
            | IRAggExpr::FirstNonNull(n)
            | IRAggExpr::Last(n)
            | IRAggExpr::LastNonNull(n)
            | IRAggExpr::Median(n)
            | IRAggExpr::Mean(n)
            | IRAggExpr::Sum(n) => w(*n),
            IRAggExpr::AggGroups(_) => group_rows * 8.0,
            _ => 8.0,
        },
        AExpr::Len => 8.0,
        AExpr::Ternary { truthy, falsy, .. } => w(*truthy).max(w(*falsy)),
        AExpr::Over { function, .. } => w(*function),
        AExpr::Function {
            input: args,
            function,
            ..
        } => {
            let arg = |i: usize| args.get(i).map(|e| w(e.node())).unwrap_or(8.0);
            let literal = |i: usize| {
                args.get(i).and_then(|e| match ea.get(e.node()) {
                    AExpr::Literal(value) => Some(value),
                    _ => None,
                })
            };
            match function {
                IRFunctionExpr::StringExpr(IRStringFunction::ConcatHorizontal {
                    delimiter,
                    ..
                }) => {
                    args.iter().map(|e| w(e.node())).sum::<f64>()
                        + delimiter.len() as f64 * args.len().saturating_sub(1) as f64
                }
                IRFunctionExpr::StringExpr(IRStringFunction::ConcatVertical {
                    delimiter, ..
                }) => group_rows * (arg(0) + delimiter.len() as f64),
                IRFunctionExpr::StringExpr(IRStringFunction::PadStart { .. })
                | IRFunctionExpr::StringExpr(IRStringFunction::PadEnd { .. }) => {
                    let length = literal(1)
                        .and_then(|v| v.extract_usize().ok())
                        .map_or(arg(1), |n| n as f64);
                    // A padding character can take 4 bytes.
                    arg(0).max(length * 4.0)
                }
                IRFunctionExpr::StringExpr(IRStringFunction::Replace { .. }) => {
                    let from = literal(1).and_then(|v| v.extract_str()).map_or(1, str::len);
                    let to = literal(2)
                        .and_then(|v| v.extract_str())
                        .map_or(arg(2) as usize, str::len);
                    arg(0) * ((to as f64 / from.max(1) as f64).max(1.0))
                }
                IRFunctionExpr::ListExpr(IRListFunction::Join(_)) => arg(0) + group_rows * arg(1),
                _ => args.iter().map(|e| w(e.node())).fold(8.0, f64::max),
            }
        }
        other => {
            let mut children = Vec::new();
            other.inputs_rev(&mut children);
            inputs_max(&mut children.into_iter())
        }
    }
}

/// Σ over join keys of (left rows with the key) × (right rows with the
/// key), when both keys are columns taken unchanged from a table; filters
/// in between only make the real count smaller.
fn key_pairs(
    left: &NodeEst,
    right: &NodeEst,
    lk: &ExprIR,
    rk: &ExprIR,
    ea: &Arena<AExpr>,
    nulls_equal: bool,
) -> Option<f64> {
    let (AExpr::Column(ln), AExpr::Column(rn)) = (ea.get(lk.node()), ea.get(rk.node())) else {
        return None;
    };
    let (ldf, lcol) = left.origins.get(ln)?;
    let (rdf, rcol) = right.origins.get(rn)?;
    let counts =
        |df: &DataFrame, col: &PlSmallStr, dtype: Option<&DataType>| -> Option<DataFrame> {
            let mut s = df.column(col).ok()?.as_materialized_series().clone();
            if let Some(dtype) = dtype {
                s = s.strict_cast(dtype).ok()?;
            }
            if !nulls_equal {
                s = s.drop_nulls();
            }
            let s = s.with_name("k".into());
            s.value_counts(false, false, "n".into(), false).ok()
        };
    let lcounts = counts(ldf, lcol, None)?;
    let ldtype = ldf.column(lcol).ok()?.dtype().clone();
    let rcounts = counts(rdf, rcol, Some(&ldtype))?;
    let joined = lcounts
        .lazy()
        .join(
            rcounts.lazy(),
            [col("k")],
            [col("k")],
            JoinArgs::new(JoinType::Inner).with_suffix(Some("_r".into())),
        )
        .select([
            (col("n").cast(DataType::Float64) * col("n_r").cast(DataType::Float64))
                .sum()
                .alias("pairs"),
        ])
        .collect()
        .ok()?;
    joined.column("pairs").ok()?.get(0).ok()?.extract::<f64>()
}

/// Bytes per value of a fixed-width type (nested and variable types: a guess
/// that only needs to be the right order of magnitude).
fn fixed_width(dtype: &DataType) -> f64 {
    match dtype {
        DataType::Boolean | DataType::Int8 | DataType::UInt8 => 1.0,
        DataType::Int16 | DataType::UInt16 => 2.0,
        DataType::Int32 | DataType::UInt32 | DataType::Float32 | DataType::Date => 4.0,
        DataType::Decimal(..) => 16.0,
        _ => 8.0,
    }
}

fn approx(n: f64) -> String {
    if n >= 1e9 {
        format!("{:.1} billion", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} million", n / 1e6)
    } else {
        let n = n.round() as u64;
        let s = n.to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    }
}

fn approx_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KB", "MB", "GB", "TB"];
    let mut value = b;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
