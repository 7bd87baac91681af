//! A recipe as code a person can read and run without this server: a Python
//! script for polars, and one SQL query (CTEs, one per step) for polars' SQL.
//!
//! The script mirrors what each operation does here, rules included (which
//! columns a fill without columns touches, integer columns that become
//! floats to hold a mean, trimming text before parsing numbers, the words
//! read as booleans). Intentional-missing marks are this server's own and
//! have no counterpart: the code says so where a step uses them.

use std::fmt::Write as _;

use crate::missing::{FillStrategy, How};
use crate::operation::Operation;
use crate::recipe::Recipe;
use crate::transform::Keep;

/// A Python string literal.
fn py(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn py_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items.iter().map(|i| py(i)).collect::<Vec<_>>().join(", ")
    )
}

fn py_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "None".into(),
        serde_json::Value::Bool(true) => "True".into(),
        serde_json::Value::Bool(false) => "False".into(),
        other => other.to_string(),
    }
}

/// The polars (Python) dtype of one of this server's type names.
fn py_dtype(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    let (base, arg) = match lower.split_once(['[', '(']) {
        Some((b, _)) => {
            let original = name.trim();
            let start = original.find(['[', '(']).map_or(0, |i| i + 1);
            let zone = original[start..].trim_end_matches([']', ')']).trim();
            (b.trim().to_string(), Some(zone.to_string()))
        }
        None => (lower.clone(), None),
    };
    match base.as_str() {
        "int" | "integer" | "int64" | "i64" | "bigint" | "long" => "pl.Int64".into(),
        "int32" | "i32" => "pl.Int32".into(),
        "int16" | "i16" => "pl.Int16".into(),
        "int8" | "i8" => "pl.Int8".into(),
        "uint64" | "u64" => "pl.UInt64".into(),
        "uint32" | "u32" => "pl.UInt32".into(),
        "uint16" | "u16" => "pl.UInt16".into(),
        "uint8" | "u8" => "pl.UInt8".into(),
        "float32" | "f32" | "real" => "pl.Float32".into(),
        "float" | "float64" | "f64" | "double" | "number" | "numeric" | "decimal" => {
            "pl.Float64".into()
        }
        "string" | "str" | "text" | "utf8" | "varchar" => "pl.String".into(),
        "bool" | "boolean" => "pl.Boolean".into(),
        "date" => "pl.Date".into(),
        "datetime" | "timestamp" => match arg.filter(|a| !a.is_empty()) {
            Some(zone) => format!("pl.Datetime(\"us\", {})", py(&zone)),
            None => "pl.Datetime(\"us\")".into(),
        },
        "time" => "pl.Time".into(),
        "duration" => "pl.Duration(\"us\")".into(),
        "category" | "categorical" => "pl.Categorical".into(),
        _ => format!("None  # unknown type {}", py(name)),
    }
}

/// Helpers the script defines, each mirroring an operation of this server.
const PY_HELPERS: &str = r#"
NUMERIC = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64,
           pl.Float32, pl.Float64)


def fits(strategy, dtype):
    numeric = dtype in NUMERIC
    if strategy in ("mean", "median", "zero", "interpolate"):
        return numeric
    if strategy in ("min", "max"):
        return numeric or dtype.is_temporal() or dtype == pl.String
    return True


def fill_missing(df, columns, strategy, value=None, limit=None):
    """Fills the missing values of `columns` (default: every column with
    missing values the strategy fits)."""
    explicit = bool(columns)
    for name in columns or df.columns:
        s = df[name]
        if not explicit and s.null_count() == 0:
            continue
        if not fits(strategy, s.dtype):
            if explicit:
                raise ValueError(f"strategy {strategy} does not fit {name} ({s.dtype})")
            continue
        if strategy in ("forward", "backward"):
            s = s.fill_null(strategy=strategy, limit=limit)
        elif strategy == "interpolate":
            s = s.interpolate()
        elif strategy in ("mean", "median"):
            v = s.mean() if strategy == "mean" else s.median()
            if v is None:
                continue
            if s.dtype.is_integer() and v != int(v):
                s = s.cast(pl.Float64)
            s = s.fill_null(pl.Series([v]).cast(s.dtype)[0])
        elif strategy == "zero":
            s = s.fill_null(pl.Series([0]).cast(s.dtype)[0])
        elif strategy in ("min", "max"):
            v = s.min() if strategy == "min" else s.max()
            if v is None:
                continue
            s = s.fill_null(v)
        elif strategy == "mode":
            present = s.drop_nulls()
            if present.len() == 0:
                continue
            s = s.fill_null(present.mode(maintain_order=True)[0])
        elif strategy == "constant":
            s = s.fill_null(pl.Series([value]).cast(s.dtype)[0])
        df = df.with_columns(s.alias(name))
    return df


def drop_missing(df, subset, how):
    names = subset or df.columns
    missing = [pl.col(n).is_null() for n in names]
    drop = pl.any_horizontal(missing) if how == "any" else pl.all_horizontal(missing)
    return df.filter(~drop)


BOOLEANS = {"true": True, "t": True, "yes": True, "y": True, "1": True, "on": True,
            "false": False, "f": False, "no": False, "n": False, "0": False, "off": False}


def cast(df, name, dtype, fmt=None):
    """Casts as the server does: text is trimmed before numbers, read as
    booleans by common words, parsed into dates with `fmt`; values that do
    not convert become missing."""
    c = pl.col(name)
    if df[name].dtype == pl.String:
        if dtype == pl.Boolean:
            e = c.str.strip_chars().str.to_lowercase().replace_strict(
                BOOLEANS, default=None, return_dtype=pl.Boolean)
        elif dtype == pl.Date:
            e = c.str.to_date(fmt, strict=False, exact=True)
        elif dtype == pl.Time:
            e = c.str.to_time(fmt, strict=False)
        elif isinstance(dtype, pl.Datetime):
            e = c.str.to_datetime(fmt, time_unit="us", time_zone=dtype.time_zone,
                                  strict=False, exact=True)
        elif dtype in NUMERIC:
            e = c.str.strip_chars().cast(dtype, strict=False)
        else:
            e = c.cast(dtype, strict=False)
    else:
        e = c.cast(dtype, strict=False)
    return df.with_columns(e.alias(name))
"#;

/// The recipe as a Python script for polars: `apply(df)` runs the steps,
/// and run as a program it reads a CSV or Parquet file and writes one.
pub fn to_polars(recipe: &Recipe) -> String {
    let mut body = String::new();
    for (i, step) in recipe.steps.iter().enumerate() {
        let n = i + 1;
        let _ = writeln!(
            body,
            "    # {n}. {}{}",
            step.op.action(),
            step.summary
                .as_deref()
                .map(|s| format!(": {s}"))
                .unwrap_or_default()
        );
        let line = match &step.op {
            Operation::FillMissing {
                columns,
                strategy,
                value,
                limit,
            } => format!(
                "df = fill_missing(df, {}, {}, value={}, limit={})",
                columns.as_deref().map_or("None".into(), py_list),
                py(strategy.name()),
                value.as_ref().map_or("None".into(), py_value),
                limit.map_or("None".into(), |l| l.to_string())
            ),
            Operation::DropMissing { how, subset } => format!(
                "df = drop_missing(df, {}, {})",
                subset.as_deref().map_or("None".into(), py_list),
                py(match how {
                    How::Any => "any",
                    How::All => "all",
                })
            ),
            Operation::DropDuplicates { subset, keep } => format!(
                "df = df.unique(subset={}, keep={}, maintain_order=True)",
                subset.as_deref().map_or("None".into(), py_list),
                py(match keep {
                    Keep::First => "first",
                    Keep::Last => "last",
                    Keep::None => "none",
                })
            ),
            Operation::MarkIntentionalMissing { columns, .. } => format!(
                "# Marks missing values of {} as intentional: polars has no such marks, so\n    # later fills and drops will touch them here.",
                py_list(columns)
            ),
            Operation::RenameColumns { mapping } => format!(
                "df = df.rename({{{}}})",
                mapping
                    .iter()
                    .map(|(k, v)| format!("{}: {}", py(k), py(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Operation::DropColumns { columns } => format!("df = df.drop({})", py_list(columns)),
            Operation::CastColumns { casts, format, .. } => casts
                .iter()
                .map(|(name, to)| {
                    format!(
                        "df = cast(df, {}, {}, {})",
                        py(name),
                        py_dtype(to),
                        format.as_deref().map_or("None".into(), py)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n    "),
            Operation::FilterRows { condition } => {
                format!(
                    "df = df.filter(pl.sql_expr({}).fill_null(False))",
                    py(condition)
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
                let value = format!("pl.sql_expr({})", py(expression));
                let value = match condition {
                    Some(cond) => format!(
                        "pl.when(pl.sql_expr({})).then({value}).otherwise({})",
                        py(cond),
                        if matches!(step.op, Operation::AddColumn { .. }) {
                            "None".to_string()
                        } else {
                            format!("pl.col({})", py(column))
                        }
                    ),
                    None => value,
                };
                format!("df = df.with_columns({value}.alias({}))", py(column))
            }
            Operation::SortRows { by, nulls_first } => format!(
                "df = df.sort({}, descending=[{}], nulls_last={}, maintain_order=True)",
                py_list(&by.iter().map(|k| k.column.clone()).collect::<Vec<_>>()),
                by.iter()
                    .map(|k| if k.descending { "True" } else { "False" })
                    .collect::<Vec<_>>()
                    .join(", "),
                if *nulls_first { "False" } else { "True" }
            ),
        };
        let _ = writeln!(body, "    {line}");
    }
    let source = recipe
        .source
        .as_ref()
        .map(|s| format!(" from {s}"))
        .unwrap_or_default();
    format!(
        "\"\"\"A dataframe-mcp recipe{source}, as polars code.\n\nRun: python this.py input.csv output.csv (or .parquet).\n\"\"\"\nimport sys\n\nimport polars as pl\n{PY_HELPERS}\n\ndef apply(df: pl.DataFrame) -> pl.DataFrame:\n{body}    return df\n\n\nif __name__ == \"__main__\":\n    source, target = sys.argv[1], sys.argv[2]\n    df = pl.read_parquet(source) if source.endswith(\".parquet\") else pl.read_csv(source)\n    out = apply(df)\n    if target.endswith(\".parquet\"):\n        out.write_parquet(target)\n    else:\n        out.write_csv(target)\n"
    )
}

/// The row-number column a sort adds and drops.
const ROW: &str = "__dfmcp_row";

/// A SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn sql_literal(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("'{}'", s.replace('\'', "''")),
        serde_json::Value::Null => "NULL".into(),
        other => other.to_string(),
    }
}

/// Casts SQL says exactly: to text (numbers and dates print as they do
/// here). Casts from text trim and read words as booleans here, which a
/// plain SQL cast does not.
fn sql_type(name: &str) -> Option<&'static str> {
    match name.trim().to_ascii_lowercase().as_str() {
        "string" | "str" | "text" | "utf8" | "varchar" => Some("VARCHAR"),
        _ => None,
    }
}

/// The recipe as one SQL query over `table` (polars' SQL dialect, as
/// query_sql runs it): one CTE per step. Steps SQL cannot say exactly
/// (forward/backward fills, interpolation, mode, keeping the last or no
/// duplicate, casts to types SQL lacks, marks) are listed instead of
/// guessed: the notes (second value) list them, and anything else the
/// query does not do exactly alike; no notes means an exact query.
pub fn to_sql(recipe: &Recipe, table: &str) -> (String, Vec<String>) {
    let mut ctes = Vec::new();
    let mut notes = Vec::new();
    let mut previous = ident(table);
    for (i, step) in recipe.steps.iter().enumerate() {
        let n = i + 1;
        let from = previous.clone();
        let select = match &step.op {
            Operation::FillMissing {
                columns: Some(columns),
                strategy,
                value,
                limit: None,
            } => {
                let fill = |c: &String| -> Option<String> {
                    let q = ident(c);
                    let with = match strategy {
                        FillStrategy::Mean => format!("AVG({q}) OVER ()"),
                        FillStrategy::Min => format!("MIN({q}) OVER ()"),
                        FillStrategy::Max => format!("MAX({q}) OVER ()"),
                        FillStrategy::Zero => "0".into(),
                        FillStrategy::Constant => sql_literal(value.as_ref()?),
                        _ => return None,
                    };
                    Some(format!("COALESCE({q}, {with}) AS {q}"))
                };
                let replaced: Option<Vec<String>> = columns.iter().map(fill).collect();
                // A mean of whole numbers fills an integer column as it is
                // here only if the mean is whole; SQL cannot decide that per
                // column, so means of integer columns are left to polars.
                replaced
                    .filter(|_| *strategy != FillStrategy::Mean)
                    .map(|r| format!("SELECT * REPLACE ({}) FROM {from}", r.join(", ")))
            }
            Operation::DropMissing {
                how,
                subset: Some(subset),
            } => {
                let tests: Vec<String> = subset
                    .iter()
                    .map(|c| format!("{} IS NULL", ident(c)))
                    .collect();
                let joined = tests.join(match how {
                    How::Any => " OR ",
                    How::All => " AND ",
                });
                Some(format!("SELECT * FROM {from} WHERE NOT ({joined})"))
            }
            // Whole-row duplicates are identical: which one stays does not
            // matter, and DISTINCT keeps the order of first appearance.
            Operation::DropDuplicates {
                subset: None,
                keep: Keep::First | Keep::Last,
            } => Some(format!("SELECT DISTINCT * FROM {from}")),
            Operation::RenameColumns { mapping } => Some(format!(
                "SELECT * RENAME ({}) FROM {from}",
                mapping
                    .iter()
                    .map(|(k, v)| format!("{} AS {}", ident(k), ident(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Operation::DropColumns { columns } => Some(format!(
                "SELECT * EXCLUDE ({}) FROM {from}",
                columns
                    .iter()
                    .map(|c| ident(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Operation::CastColumns {
                casts,
                format: None,
                ..
            } => {
                let replaced: Option<Vec<String>> = casts
                    .iter()
                    .map(|(c, to)| {
                        sql_type(to).map(|t| format!("CAST({} AS {t}) AS {}", ident(c), ident(c)))
                    })
                    .collect();
                replaced.map(|r| format!("SELECT * REPLACE ({}) FROM {from}", r.join(", ")))
            }
            Operation::FilterRows { condition } => {
                Some(format!("SELECT * FROM {from} WHERE {condition}"))
            }
            Operation::AddColumn {
                column,
                expression,
                condition,
            } => {
                let value = match condition {
                    Some(cond) => format!("CASE WHEN {cond} THEN {expression} END"),
                    None => format!("({expression})"),
                };
                Some(format!(
                    "SELECT *, {value} AS {} FROM {from}",
                    ident(column)
                ))
            }
            Operation::UpdateColumn {
                column,
                expression,
                condition,
            } => {
                let q = ident(column);
                let value = match condition {
                    Some(cond) => format!("CASE WHEN {cond} THEN {expression} ELSE {q} END"),
                    None => format!("({expression})"),
                };
                Some(format!("SELECT * REPLACE ({value} AS {q}) FROM {from}"))
            }
            // ORDER BY alone may reorder rows equal in the keys; numbering
            // the rows first and sorting by that number last keeps them in
            // the order they came, as sorting here does.
            Operation::SortRows { by, nulls_first } => {
                let keys = by
                    .iter()
                    .map(|k| {
                        format!(
                            "{} {} NULLS {}",
                            ident(&k.column),
                            if k.descending { "DESC" } else { "ASC" },
                            if *nulls_first { "FIRST" } else { "LAST" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let row = ident(ROW);
                ctes.push(format!(
                    "  step{n}_numbered AS (SELECT *, ROW_NUMBER() OVER () AS {row} FROM {from})"
                ));
                ctes.push(format!(
                    "  step{n}_sorted AS (SELECT * FROM step{n}_numbered ORDER BY {keys}, {row})"
                ));
                Some(format!("SELECT * EXCLUDE ({row}) FROM step{n}_sorted"))
            }
            _ => None,
        };
        match select {
            Some(select) => {
                let name = format!("step{n}");
                ctes.push(format!(
                    "  -- {n}. {}\n  {name} AS ({select})",
                    step.summary.as_deref().unwrap_or(step.op.action())
                ));
                previous = name;
            }
            None => notes.push(format!(
                "step {n} ({}) has no exact SQL here; use the polars version for it",
                step.op.action()
            )),
        }
    }
    let query = if ctes.is_empty() {
        format!("SELECT * FROM {previous}")
    } else {
        format!("WITH\n{}\nSELECT * FROM {previous}", ctes.join(",\n"))
    };
    (query, notes)
}
