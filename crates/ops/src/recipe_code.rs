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

fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
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


def no_accents(v):
    """Accents off Latin and Greek letters only, recomposed."""
    import unicodedata
    out, after_latin = [], False
    for c in unicodedata.normalize("NFD", v):
        if unicodedata.category(c).startswith("M"):
            if not after_latin:
                out.append(c)
            continue
        after_latin = c < "\u0400" or "\u1e00" <= c <= "\u1fff"
        out.append(c)
    return unicodedata.normalize("NFC", "".join(out))


def clean_text(df, columns, replace=None, repl="", strip_accents=False, strip_punctuation=False,
               collapse_spaces=False, trim=False, case=None, empty_as_missing=False):
    """Cleans text columns (every text column when none are named), steps in
    the server's order."""
    import unicodedata
    names = columns or [n for n, t in df.schema.items() if t == pl.String]
    exprs = []
    for name in names:
        e = pl.col(name)
        if replace is not None:
            e = e.str.replace_all(replace, repl)
        if strip_accents:
            e = e.map_elements(no_accents, return_dtype=pl.String)
        if strip_punctuation:
            e = e.str.replace_all(r"\p{P}", "")
        if collapse_spaces:
            e = e.str.replace_all(r"\s+", " ")
        if trim:
            e = e.str.strip_chars()
        if case == "lower":
            e = e.str.to_lowercase()
        elif case == "upper":
            e = e.str.to_uppercase()
        elif case == "title":
            e = e.str.to_titlecase()
        if empty_as_missing:
            e = pl.when(e == "").then(None).otherwise(e)
        exprs.append(e.alias(name))
    return df.with_columns(exprs)


TIME_CODES = ("%H", "%I", "%M", "%S", "%T", "%R")


def parse_dates(df, columns, formats):
    """Reads dates from text: the first format that reads a value wins."""
    timed = any(code in f for f in formats for code in TIME_CODES)
    for name in columns:
        if df[name].dtype.is_temporal():
            continue  # already dates: left as they are
        c = pl.col(name).str.strip_chars()
        parts = []
        for f in formats:
            if not timed:
                parts.append(c.str.to_date(f, strict=False, exact=True))
            elif any(code in f for code in TIME_CODES):
                parts.append(c.str.to_datetime(f, time_unit="us", strict=False, exact=True))
            else:
                parts.append(c.str.to_date(f, strict=False, exact=True).cast(pl.Datetime("us")))
        df = df.with_columns(pl.coalesce(parts).alias(name))
    return df


def split_column(df, name, sep, into, drop):
    tmp = "__dfmcp_split"
    df = df.rename({name: tmp})
    parts = df.select(pl.col(tmp).str.splitn(sep, len(into)).struct.rename_fields(into)).unnest(tmp)
    order = []
    for c in df.columns:
        order.append(c)
        if c == tmp:
            order.extend(into)
    df = pl.concat([df, parts], how="horizontal").select(order)
    return df.drop(tmp) if drop else df.rename({tmp: name})


def merge_columns(df, columns, into, sep, skip_missing, drop):
    e = pl.concat_str([pl.col(c).cast(pl.String) for c in columns], separator=sep,
                      ignore_nulls=skip_missing)
    if skip_missing:
        e = pl.when(pl.all_horizontal([pl.col(c).is_null() for c in columns])).then(None).otherwise(e)
    if drop:
        order = [into if c == columns[0] else c for c in df.columns
                 if c == columns[0] or c not in columns]
    else:
        last = max(df.columns.index(c) for c in columns)
        order = list(df.columns)
        order.insert(last + 1, into)
    return df.with_columns(e.alias("__dfmcp_merged")).drop(
        [c for c in columns if drop and c != columns[0]] + ([columns[0]] if drop else [])
    ).rename({"__dfmcp_merged": into}).select(order)


def outliers(df, columns, method, k, action, flag):
    masks = []
    for name in columns:
        s = df[name].cast(pl.Float64)
        finite = s.filter(s.is_finite())
        if finite.len() < 2:
            lo, hi = float("-inf"), float("inf")
        elif method == "iqr":
            q1, q3 = finite.quantile(0.25, "linear"), finite.quantile(0.75, "linear")
            lo, hi = q1 - k * (q3 - q1), q3 + k * (q3 - q1)
        else:
            lo, hi = finite.mean() - k * finite.std(), finite.mean() + k * finite.std()
        mask = (s.is_finite() & ((s < lo) | (s > hi))).fill_null(False)
        masks.append(mask)
        if action == "null":
            df = df.with_columns(pl.when(mask).then(None).otherwise(pl.col(name)).alias(name))
    if action == "flag":
        any_ = masks[0]
        for m in masks[1:]:
            any_ = any_ | m
        df = df.with_columns(any_.alias(flag))
    return df


def pivot(df, index, on, values, fn):
    heads = df[on].unique().sort(nulls_last=True)
    names = heads.cast(pl.String)
    taken = set(index)
    exprs = []
    for v, text in zip(heads, names):
        name = "(missing)" if v is None else text
        if name.startswith("__dfmcp_intentional_missing__"):
            name = name.lstrip("_")
        while name in taken:
            name += "_"
        taken.add(name)
        sel = pl.col(on).is_null() if v is None else (pl.col(on) == v)
        picked = pl.col(values).filter(sel)
        if fn == "count":
            e = picked.count()
        else:
            agg = picked.std() if fn == "std" else getattr(picked, fn or "first")()
            e = pl.when(sel.any()).then(agg).otherwise(None)
        exprs.append(e.alias(name))
    return df.group_by(index).agg(exprs).sort(index, nulls_last=True, maintain_order=True)


INTEGERS = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32)


def unpivot(df, index, columns, variable_name, value_name):
    """Columns to rows, values of different types read as the server does:
    whole numbers as Int64 (Float64 with UInt64), numbers as Float64, else text."""
    columns = columns or [c for c in df.columns if c not in index]
    types = {df[c].dtype for c in columns}
    only = next(iter(types))
    if len(types) == 1 and not isinstance(only, (pl.Categorical, pl.Enum)):
        common = only
    elif all(t in INTEGERS for t in types):
        common = pl.Int64
    elif all(t in NUMERIC for t in types):
        common = pl.Float64
    else:
        common = pl.String
    parts = [df.select([pl.col(i) for i in index]
                       + [pl.lit(c).alias(variable_name), pl.col(c).cast(common).alias(value_name)])
             for c in columns]
    return pl.concat(parts)
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
            Operation::CleanText { columns, how } => {
                let mut args = vec![py_list(columns)];
                if let Some(r) = &how.replace {
                    args.push(format!("replace={}, repl={}", py(&r.pattern), py(&r.with)));
                }
                for (on, name) in [
                    (how.strip_accents, "strip_accents"),
                    (how.strip_punctuation, "strip_punctuation"),
                    (how.collapse_spaces, "collapse_spaces"),
                    (how.trim, "trim"),
                    (how.empty_as_missing, "empty_as_missing"),
                ] {
                    if on {
                        args.push(format!("{name}=True"));
                    }
                }
                if let Some(case) = how.case {
                    let name = serde_json::to_value(case).unwrap_or_default();
                    args.push(format!("case={}", py(name.as_str().unwrap_or("lower"))));
                }
                format!("df = clean_text(df, {})", args.join(", "))
            }
            Operation::ParseDates {
                columns, formats, ..
            } if !formats.is_empty() => format!(
                "df = parse_dates(df, {}, {})",
                py_list(columns),
                py_list(formats)
            ),
            Operation::ParseDates { columns, .. } => format!(
                "# The formats were detected per column when this was recorded; polars guesses here.\n    df = df.with_columns([pl.col(c).str.strip_chars().str.to_date(strict=False) for c in {}])",
                py_list(columns)
            ),
            Operation::SplitColumn {
                column,
                separator,
                into,
                drop_original,
            } => format!(
                "df = split_column(df, {}, {}, {}, {})",
                py(column),
                py(separator),
                py_list(into),
                py_bool(*drop_original)
            ),
            Operation::MergeColumns {
                columns,
                into,
                separator,
                skip_missing,
                drop_originals,
            } => format!(
                "df = merge_columns(df, {}, {}, {}, {}, {})",
                py_list(columns),
                py(into),
                py(separator),
                py_bool(*skip_missing),
                py_bool(*drop_originals)
            ),
            Operation::Outliers {
                columns,
                method,
                threshold,
                then: action,
                flag_column,
            } => format!(
                "df = outliers(df, {}, {}, {}, {}, {})",
                py_list(columns),
                py(if *method == crate::outliers::Method::Iqr {
                    "iqr"
                } else {
                    "zscore"
                }),
                threshold.unwrap_or(method.default_threshold()),
                py(if *action == crate::outliers::Action::Flag {
                    "flag"
                } else {
                    "null"
                }),
                py(flag_column.as_deref().unwrap_or("is_outlier"))
            ),
            Operation::MergeDuplicates { column, groups } => format!(
                "df = df.with_columns(pl.col({}).replace({{{}}}))",
                py(column),
                groups
                    .iter()
                    .flat_map(|g| g.values.iter().map(move |v| format!(
                        "{}: {}",
                        py(v),
                        py(&g.into)
                    )))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Operation::GroupAggregate { by, aggregates } => {
                let exprs: Vec<String> = aggregates
                    .iter()
                    .map(|a| {
                        let e = match (&a.column, a.function) {
                            (None, _) => "pl.len()".to_string(),
                            (Some(c), f) => format!("pl.col({}).{}()", py(c), f.name()),
                        };
                        format!("{e}.alias({})", py(&a.output_name()))
                    })
                    .collect();
                if by.is_empty() {
                    format!("df = df.select([{}])", exprs.join(", "))
                } else {
                    format!(
                        "df = df.group_by({}).agg([{}]).sort({}, nulls_last=True, maintain_order=True)",
                        py_list(by),
                        exprs.join(", "),
                        py_list(by)
                    )
                }
            }
            Operation::Pivot {
                index,
                columns,
                values,
                function,
            } => format!(
                "df = pivot(df, {}, {}, {}, {})",
                py_list(index),
                py(columns),
                py(values),
                function.map_or("None".into(), |f| py(f.name()))
            ),
            Operation::Unpivot {
                index,
                columns,
                variable_name,
                value_name,
            } => format!(
                "df = unpivot(df, {}, {}, {}, {})",
                py_list(index),
                if columns.is_empty() {
                    "None".into()
                } else {
                    py_list(columns)
                },
                py(variable_name),
                py(value_name)
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
            // Case and empty-as-missing have SQL twins; SQL's TRIM takes
            // spaces only (here every Unicode space), and regular
            // expressions, accents and punctuation are left to polars.
            Operation::CleanText { columns, how }
                if !columns.is_empty()
                    && !how.trim
                    && how.replace.is_none()
                    && !how.strip_accents
                    && !how.strip_punctuation
                    && !how.collapse_spaces
                    && how.case != Some(crate::text::Case::Title) =>
            {
                let replaced: Vec<String> = columns
                    .iter()
                    .map(|c| {
                        let mut e = ident(c);
                        match how.case {
                            Some(crate::text::Case::Lower) => e = format!("LOWER({e})"),
                            Some(crate::text::Case::Upper) => e = format!("UPPER({e})"),
                            _ => {}
                        }
                        if how.empty_as_missing {
                            e = format!("NULLIF({e}, '')");
                        }
                        format!("{e} AS {}", ident(c))
                    })
                    .collect();
                Some(format!(
                    "SELECT * REPLACE ({}) FROM {from}",
                    replaced.join(", ")
                ))
            }
            Operation::GroupAggregate { by, aggregates } if !by.is_empty() => {
                use crate::reshape::AggFn;
                let exprs: Option<Vec<String>> = aggregates
                    .iter()
                    .map(|a| {
                        let c = a.column.as_deref().map(ident);
                        let e = match (a.function, c) {
                            (AggFn::Count, None) => "COUNT(*)".to_string(),
                            (AggFn::Count, Some(c)) => format!("COUNT({c})"),
                            (AggFn::Sum, Some(c)) => format!("SUM({c})"),
                            (AggFn::Mean, Some(c)) => format!("AVG({c})"),
                            (AggFn::Median, Some(c)) => format!("MEDIAN({c})"),
                            (AggFn::Min, Some(c)) => format!("MIN({c})"),
                            (AggFn::Max, Some(c)) => format!("MAX({c})"),
                            (AggFn::Std, Some(c)) => format!("STDDEV({c})"),
                            _ => return None,
                        };
                        Some(format!("{e} AS {}", ident(&a.output_name())))
                    })
                    .collect();
                let keys: Vec<String> = by.iter().map(|c| ident(c)).collect();
                exprs.map(|e| {
                    format!(
                        "SELECT {}, {} FROM {from} GROUP BY {} ORDER BY {}",
                        keys.join(", "),
                        e.join(", "),
                        keys.join(", "),
                        keys.iter()
                            .map(|k| format!("{k} NULLS LAST"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
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
