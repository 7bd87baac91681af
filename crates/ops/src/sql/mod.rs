//! SQL over the session's tables, and SQL boolean conditions, with guards:
//! only `SELECT` queries over registered tables run; table functions that read
//! files (`read_csv`, `read_parquet`, …) and subqueries in conditions are refused;
//! text that would parse into a tree too deep to walk is refused before
//! parsing; and a query whose plan would build more than the limits allow is
//! refused before it runs ([`estimate`]).
//!
//! Parsing and planning recurse over the expression tree: call these from a
//! thread with a large stack (the store's compute pool has one).

pub mod estimate;

use std::ops::ControlFlow;

use polars::prelude::*;
use polars::sql::{SQLContext, sql_expr};
use sqlparser::ast::{Statement, TableFactor, Visit, Visitor};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

pub use estimate::{Estimate, QueryLimits};

use crate::columns::{explain_polars, quarantine, visible};
use crate::error::{Limit, OpsError, Result};

/// Checks the size and shape of SQL text before it is parsed: long operator
/// chains (`a OR b OR …`) and UNION chains parse into trees as deep as they
/// are long, and walking (or even dropping) such a tree recursively can
/// overflow any stack.
pub fn check_text(sql: &str, limits: &QueryLimits) -> Result<()> {
    if sql.len() > limits.max_sql_bytes {
        return Err(OpsError::LimitExceeded {
            limit: Limit::SqlBytes,
            message: format!(
                "the SQL is {} bytes, over the limit of {} bytes; for long lists of values use IN ('a', 'b', …), or split the work into several steps",
                sql.len(),
                limits.max_sql_bytes
            ),
        });
    }
    let tokens = Tokenizer::new(&GenericDialect, sql)
        .tokenize()
        .map_err(parse_error)?;
    let mut operators = 0usize;
    let mut set_operations = 0usize;
    for token in &tokens {
        match token {
            Token::Word(w) => match w.value.to_ascii_uppercase().as_str() {
                "AND" | "OR" => operators += 1,
                "UNION" | "INTERSECT" | "EXCEPT" => set_operations += 1,
                _ => {}
            },
            Token::Eq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::StringConcat => operators += 1,
            _ => {}
        }
    }
    if operators > limits.max_operators {
        return Err(OpsError::LimitExceeded {
            limit: Limit::SqlOperators,
            message: format!(
                "the SQL has {operators} operators (AND, OR, =, +, || …), over the limit of {}; for many alternatives of one column use IN ('a', 'b', …) instead of a chain of OR",
                limits.max_operators
            ),
        });
    }
    if set_operations > limits.max_set_operations {
        return Err(OpsError::LimitExceeded {
            limit: Limit::SqlSetOperations,
            message: format!(
                "the SQL combines {} SELECTs with UNION/INTERSECT/EXCEPT, over the limit of {}; combine fewer at a time and keep the parts as tables",
                set_operations + 1,
                limits.max_set_operations + 1
            ),
        });
    }
    Ok(())
}

struct Guard {
    allow_queries: bool,
}

impl Visitor for Guard {
    type Break = String;

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<String> {
        match factor {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            } => ControlFlow::Break(format!(
                "table functions such as {name}(...) are not allowed: query the session's tables by name; files are loaded as tables first"
            )),
            TableFactor::Table { name, .. }
                if name.to_string().to_ascii_lowercase().starts_with("read_") =>
            {
                ControlFlow::Break(format!(
                    "'{name}' looks like a file-reading function; only the session's tables can be queried"
                ))
            }
            TableFactor::TableFunction { .. } | TableFactor::Function { .. } => ControlFlow::Break(
                "table functions are not allowed: query the session's tables by name".into(),
            ),
            _ => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_query(&mut self, _query: &sqlparser::ast::Query) -> ControlFlow<String> {
        if self.allow_queries {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(
                "subqueries are not allowed in a row condition; run a query that stores its result as a table instead".into(),
            )
        }
    }
}

fn parse_error(e: impl std::fmt::Display) -> OpsError {
    OpsError::BadSql {
        message: e.to_string(),
    }
}

/// Checks that `sql` is one read-only SELECT without table functions.
pub fn check_query(sql: &str) -> Result<()> {
    check_text(sql, &QueryLimits::default())?;
    let statements = Parser::parse_sql(&GenericDialect, sql).map_err(parse_error)?;
    match statements.as_slice() {
        [Statement::Query(_)] => {}
        [] => {
            return Err(OpsError::BadSql {
                message: "the query is empty".into(),
            });
        }
        [_] => {
            return Err(OpsError::RefusedSql(
                "only SELECT queries run here (WITH … SELECT included); tables are changed by operations, and a query result can be stored as a new table".into(),
            ));
        }
        _ => {
            return Err(OpsError::RefusedSql("send one statement at a time".into()));
        }
    }
    if let ControlFlow::Break(why) = statements.visit(&mut Guard {
        allow_queries: true,
    }) {
        return Err(OpsError::RefusedSql(why));
    }
    Ok(())
}

/// Names of the tables a query reads (CTE names included), in order of
/// first appearance.
pub fn referenced_tables(sql: &str) -> Result<Vec<String>> {
    let statements = Parser::parse_sql(&GenericDialect, sql).map_err(parse_error)?;
    let mut names: Vec<String> = Vec::new();
    let _ = sqlparser::ast::visit_relations(&statements, |relation| {
        let name = relation
            .0
            .last()
            .and_then(|part| part.as_ident())
            .map(|ident| ident.value.clone())
            .unwrap_or_else(|| relation.to_string());
        if !names.contains(&name) {
            names.push(name);
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(names)
}

/// Checks a boolean row condition: an expression, no subqueries.
pub fn check_condition(condition: &str) -> Result<()> {
    check_text(condition, &QueryLimits::default())?;
    let expr = Parser::new(&GenericDialect)
        .try_with_sql(condition)
        .and_then(|mut p| p.parse_expr())
        .map_err(parse_error)?;
    if let ControlFlow::Break(why) = expr.visit(&mut Guard {
        allow_queries: false,
    }) {
        return Err(OpsError::RefusedSql(why));
    }
    Ok(())
}

/// Evaluates a SQL boolean condition per row (nulls count as false).
pub fn eval_condition(df: &DataFrame, condition: &str) -> Result<BooleanChunked> {
    check_condition(condition)?;
    let expr = sql_expr(condition).map_err(parse_error)?;
    let lf = df.clone().lazy().select([expr.alias("__cond")]);
    estimate::check(&lf, &QueryLimits::default()).map_err(|e| match e {
        OpsError::Polars(p) => explain_polars(df, p),
        other => other,
    })?;
    let out = lf.collect().map_err(|e| explain_polars(df, e))?;
    let col = out.column("__cond")?.as_materialized_series();
    let mask = col.bool().map_err(|_| {
        OpsError::WrongType(format!(
            "the condition '{condition}' gives {} values, not true/false; write a comparison such as price > 10",
            col.dtype()
        ))
    })?;
    let mask = if mask.len() == 1 && df.height() != 1 {
        BooleanChunked::full("cond".into(), mask.get(0).unwrap_or(false), df.height())
    } else {
        mask.clone()
    };
    Ok(mask.fill_null_with_values(false)?)
}

/// Keeps the rows where `condition` holds. Returns the frame and rows removed.
pub fn filter_rows(df: &DataFrame, condition: &str) -> Result<(DataFrame, usize)> {
    if condition.trim().is_empty() {
        return Err(OpsError::InvalidArgument(
            "the condition is empty; write a SQL boolean expression such as \"price > 10 AND region = 'EU'\"".into(),
        ));
    }
    let mask = eval_condition(df, condition)?;
    let out = crate::keep_rows(df, &mask)?;
    let removed = df.height() - out.height();
    Ok((out, removed))
}

/// Sets column `column` from a SQL expression, in every row or only where
/// `condition` holds (elsewhere an existing column keeps its value and a new
/// one is missing). `create`: the column must not exist yet; otherwise it
/// must. Returns the frame and the rows whose value changed.
pub fn set_column(
    df: &DataFrame,
    column: &str,
    expression: &str,
    condition: Option<&str>,
    create: bool,
) -> Result<(DataFrame, usize)> {
    if expression.trim().is_empty() {
        return Err(OpsError::InvalidArgument(
            "the expression is empty; write a SQL expression such as \"price * quantity\"".into(),
        ));
    }
    let exists = df.get_column_index(column).is_some();
    if create && exists {
        return Err(OpsError::InvalidArgument(format!(
            "column '{column}' already exists; use update_column to change it, or choose another name"
        )));
    }
    if !create && !exists {
        crate::columns::resolve(df, &[column.to_string()])?;
    }
    if column.starts_with(crate::columns::MARK_PREFIX) || column.trim().is_empty() {
        return Err(OpsError::InvalidArgument(format!(
            "'{column}' cannot be a column name here"
        )));
    }
    check_condition(expression)?;
    let value = sql_expr(expression).map_err(parse_error)?;
    let new = match condition {
        Some(cond) if !cond.trim().is_empty() => {
            check_condition(cond)?;
            let test = sql_expr(cond).map_err(parse_error)?;
            let otherwise = if exists { col(column) } else { lit(NULL) };
            when(test).then(value).otherwise(otherwise)
        }
        _ => value,
    };
    let lf = df.clone().lazy().select([new.alias("__value")]);
    estimate::check(&lf, &QueryLimits::default()).map_err(|e| match e {
        OpsError::Polars(p) => explain_polars(df, p),
        other => other,
    })?;
    let out = lf.collect().map_err(|e| explain_polars(df, e))?;
    let mut values = out.columns()[0].as_materialized_series().clone();
    if values.len() == 1 && df.height() != 1 {
        values = values.new_from_index(0, df.height());
    }
    let values = values.with_name(column.into());
    let changed = if exists {
        let old = df.column(column)?.as_materialized_series();
        if old.dtype() == values.dtype() {
            let same = old.equal_missing(&values)?;
            same.len() - same.sum().unwrap_or(0) as usize
        } else {
            // A new type changes every row, whatever the values print as.
            df.height()
        }
    } else {
        df.height()
    };
    let mut result = df.clone();
    result.with_column(values.into_column())?;
    Ok((result, changed))
}

/// Runs a SELECT over named frames (hidden columns are not visible to SQL).
/// With `limit`, at most `limit + 1` rows are produced, so the caller can tell
/// that there were more. The plan is checked against `limits` before it runs.
/// Result columns with reserved names are renamed (see
/// [`crate::columns::quarantine`]).
pub fn query(
    tables: &[(String, DataFrame)],
    sql: &str,
    limit: Option<usize>,
    limits: &QueryLimits,
) -> Result<DataFrame> {
    check_text(sql, limits)?;
    check_query(sql)?;
    let mut ctx = SQLContext::new();
    for (name, df) in tables {
        ctx.register(name, visible(df).lazy());
    }
    let lf = ctx.execute(sql).map_err(|e| sql_error(tables, e))?;
    let lf = match limit {
        Some(n) => lf.limit((n + 1) as IdxSize),
        None => lf,
    };
    estimate::check(&lf, limits).map_err(|e| match e {
        OpsError::Polars(p) => sql_error(tables, p),
        other => other,
    })?;
    let df = lf.collect().map_err(|e| sql_error(tables, e))?;
    Ok(quarantine(df).0)
}

fn sql_error(tables: &[(String, DataFrame)], e: PolarsError) -> OpsError {
    match &e {
        PolarsError::ColumnNotFound(_) => {
            // Suggest among the columns of every table.
            let mut all = DataFrame::empty();
            for (_, df) in tables {
                for c in visible(df).columns() {
                    if all.column(c.name()).is_err() {
                        let _ = all.with_column(c.clear().into_column());
                    }
                }
            }
            explain_polars(&all, e)
        }
        _ => {
            let msg = e.to_string();
            if msg.contains("relation") && msg.contains("not found") {
                let names: Vec<&str> = tables.iter().map(|(n, _)| n.as_str()).collect();
                OpsError::BadSql {
                    message: format!("{msg}; tables in this session: {}", names.join(", ")),
                }
            } else {
                OpsError::BadSql { message: msg }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Columns cut into chunks of their own lengths, as a stored table's
    /// are, keep the right rows.
    #[test]
    fn filter_keeps_rows_across_unaligned_chunks() {
        let n = 10_000i64;
        let chunked = |s: Series, rows: i64| {
            let mut out = s.slice(0, rows as usize);
            for start in (rows..n).step_by(rows as usize) {
                out.append(&s.slice(start, rows as usize)).unwrap();
            }
            out.into_column()
        };
        let df = DataFrame::new_infer_height(vec![
            chunked(Series::new("id".into(), (0..n).collect::<Vec<_>>()), 1024),
            chunked(
                Series::new(
                    "half".into(),
                    (0..n).map(|i| i as f64 / 2.0).collect::<Vec<_>>(),
                ),
                700,
            ),
            chunked(
                Series::new(
                    "code".into(),
                    (0..n).map(|i| format!("c{i}")).collect::<Vec<_>>(),
                ),
                333,
            ),
        ])
        .unwrap();
        assert!(
            df.columns()
                .iter()
                .all(|c| c.as_materialized_series().chunks().len() > 1)
        );
        let (out, removed) = filter_rows(&df, "id % 3 = 0").unwrap();
        let kept: Vec<i64> = (0..n).filter(|i| i % 3 == 0).collect();
        assert_eq!(removed, n as usize - kept.len());
        let ids: Vec<i64> = out
            .column("id")
            .unwrap()
            .i64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(ids, kept);
        let halves: Vec<f64> = out
            .column("half")
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(
            halves,
            kept.iter().map(|i| *i as f64 / 2.0).collect::<Vec<_>>()
        );
        let codes: Vec<String> = out
            .column("code")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect();
        assert_eq!(
            codes,
            kept.iter().map(|i| format!("c{i}")).collect::<Vec<_>>()
        );
    }

    /// (frame, column, expression, where, create) → expected column and rows
    /// changed, or the start of the error.
    #[test]
    fn set_column_cases() {
        fn frame() -> DataFrame {
            df!(
                "price" => [Some(10.0), None, Some(30.0)],
                "qty" => [Some(2i64), Some(1), None],
                "name" => ["  Ana ", "Zoë", "bob"],
                "region" => [Some("EU"), None, Some("US")],
            )
            .unwrap()
        }
        fn empty() -> DataFrame {
            frame().head(Some(0))
        }
        type Case = (
            fn() -> DataFrame,
            &'static str,
            &'static str,
            Option<&'static str>,
            bool,
            std::result::Result<(Series, usize), &'static str>,
        );
        let cases: Vec<Case> = vec![
            // A new column: nulls propagate.
            (
                frame,
                "total",
                "price * qty",
                None,
                true,
                Ok((Series::new("total".into(), [Some(20.0), None, None]), 3)),
            ),
            // Only where the condition holds; elsewhere missing (a null
            // condition counts as false).
            (
                frame,
                "eu",
                "price",
                Some("region = 'EU'"),
                true,
                Ok((Series::new("eu".into(), [Some(10.0), None, None]), 3)),
            ),
            // A scalar fills every row.
            (
                frame,
                "one",
                "1",
                None,
                true,
                Ok((Series::new("one".into(), [1i32, 1, 1]), 3)),
            ),
            // Unicode text functions.
            (
                frame,
                "name",
                "UPPER(TRIM(name))",
                None,
                false,
                Ok((Series::new("name".into(), ["ANA", "ZOË", "BOB"]), 3)),
            ),
            // An update where a condition holds keeps the rest.
            (
                frame,
                "price",
                "price * 2",
                Some("region = 'US'"),
                false,
                Ok((
                    Series::new("price".into(), [Some(10.0), None, Some(60.0)]),
                    1,
                )),
            ),
            // Nothing changes: zero rows changed.
            (
                frame,
                "price",
                "price",
                None,
                false,
                Ok((
                    Series::new("price".into(), [Some(10.0), None, Some(30.0)]),
                    0,
                )),
            ),
            // Empty tables work.
            (
                empty,
                "total",
                "price * qty",
                None,
                true,
                Ok((Series::new("total".into(), Vec::<Option<f64>>::new()), 0)),
            ),
            (
                frame,
                "price",
                "1",
                None,
                true,
                Err("column 'price' already exists"),
            ),
            (
                frame,
                "nope",
                "1",
                None,
                false,
                Err("column 'nope' not found"),
            ),
            (frame, "x", "price +", None, true, Err("invalid SQL")),
            (frame, "x", "(SELECT 1)", None, true, Err("refused SQL")),
            (frame, "x", " ", None, true, Err("the expression is empty")),
        ];
        for (make, column, expression, condition, create, expected) in cases {
            let got = set_column(&make(), column, expression, condition, create);
            match (got, expected) {
                (Ok((df, changed)), Ok((series, rows))) => {
                    let got = df.column(column).unwrap().as_materialized_series();
                    assert!(
                        got.equals_missing(&series),
                        "{column} = {expression}: {got:?} != {series:?}"
                    );
                    assert_eq!(changed, rows, "{column} = {expression}");
                }
                (Err(e), Err(start)) => {
                    assert!(e.to_string().starts_with(start), "{expression}: {e}")
                }
                (got, expected) => panic!("{expression}: {got:?} vs {expected:?}"),
            }
        }
    }

    #[test]
    fn guards() {
        assert!(check_query("SELECT * FROM sales WHERE x > 1").is_ok());
        assert!(check_query("WITH t AS (SELECT 1 AS a) SELECT * FROM t").is_ok());
        for refused in [
            "SELECT * FROM read_csv('/etc/passwd')",
            "SELECT * FROM sales JOIN read_parquet('x.parquet') p ON true",
            "SELECT * FROM (SELECT * FROM read_json('y'))",
            "DROP TABLE sales",
            "CREATE TABLE x AS SELECT 1",
            "SELECT 1; SELECT 2",
        ] {
            let err = check_query(refused)
                .err()
                .unwrap_or_else(|| panic!("{refused} passed"));
            assert!(matches!(err, OpsError::RefusedSql(_)), "{refused}: {err}");
        }
        assert_eq!(
            referenced_tables(
                "WITH t AS (SELECT * FROM a) SELECT * FROM t JOIN \"My Table\" m ON true"
            )
            .unwrap(),
            ["a", "t", "My Table"]
        );
        assert!(check_condition("price > 10 AND region = 'EU'").is_ok());
        assert!(check_condition("id IN (SELECT id FROM read_csv('/etc/passwd'))").is_err());
        assert!(matches!(
            check_condition("price >"),
            Err(OpsError::BadSql { .. })
        ));
    }

    #[test]
    fn filters() {
        let df = df!("price" => [1, 5, 10], "region" => ["EU", "US", "EU"]).unwrap();
        let (out, removed) = filter_rows(&df, "price > 2 AND region = 'EU'").unwrap();
        assert_eq!((out.height(), removed), (1, 2));
        let err = filter_rows(&df, "prise > 2").err().unwrap();
        assert!(err.to_string().contains("did you mean 'price'"), "{err}");
        let err = filter_rows(&df, "price + 1").err().unwrap();
        assert!(matches!(err, OpsError::WrongType(_)), "{err}");
    }

    #[test]
    fn queries() {
        let df = df!("price" => [1, 5, 10], "region" => ["EU", "US", "EU"]).unwrap();
        let tables = vec![("sales".to_string(), df)];
        let limits = QueryLimits::default();
        let out = query(
            &tables,
            "SELECT region, SUM(price) AS total FROM sales GROUP BY region ORDER BY region",
            None,
            &limits,
        )
        .unwrap();
        assert_eq!(out.height(), 2);
        let limited = query(&tables, "SELECT * FROM sales", Some(1), &limits).unwrap();
        assert_eq!(
            limited.height(),
            2,
            "limit + 1 rows tell the caller there is more"
        );
        let err = query(&tables, "SELECT * FROM nope", None, &limits)
            .err()
            .unwrap();
        assert!(err.to_string().contains("sales"), "{err}");
    }

    /// Runs `f` on a thread with a stack like the compute pool's.
    fn on_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap()
    }

    fn limited(sql: &str, limits: &QueryLimits) -> Limit {
        let df = df!("a" => (0..50_000i64).collect::<Vec<_>>(), "g" => vec![1i64; 50_000], "s" => vec!["abcdefgh"; 50_000]).unwrap();
        let tables = vec![("t".to_string(), df)];
        match query(&tables, sql, None, limits) {
            Err(OpsError::LimitExceeded { limit, message }) => {
                assert!(message.contains("limit"), "{message}");
                limit
            }
            other => panic!(
                "{sql}: expected a limit, got {:?}",
                other.map(|d| d.shape())
            ),
        }
    }

    /// Regression: these aborted the process (memory or stack) instead of
    /// failing.
    #[test]
    fn hostile_queries_are_refused_before_they_run() {
        on_big_stack(hostile_queries)
    }

    fn hostile_queries() {
        let limits = QueryLimits {
            max_rows: 10_000_000,
            max_bytes: 1 << 30,
            ..QueryLimits::default()
        };
        assert_eq!(
            limited("SELECT COUNT(*) FROM t a CROSS JOIN t b", &limits),
            Limit::QueryRows
        );
        assert_eq!(
            limited("SELECT COUNT(*) FROM t a JOIN t b ON a.g = b.g", &limits),
            Limit::QueryRows
        );
        assert_eq!(
            limited(
                "SELECT a.g, COUNT(*) FROM t a JOIN t b ON a.g = b.g GROUP BY a.g",
                &limits
            ),
            Limit::QueryRows
        );
        // A CTE chain that doubles a string 30 times (8 bytes → 8 GB).
        let ctes: Vec<String> = (0..30)
            .map(|i| {
                let from = if i == 0 {
                    "t".to_string()
                } else {
                    format!("x{}", i - 1)
                };
                format!("x{i} AS (SELECT s || s AS s FROM {from})")
            })
            .collect();
        let doubling = format!("WITH {} SELECT s FROM x29", ctes.join(", "));
        assert_eq!(limited(&doubling, &limits), Limit::QueryBytes);
        // One string of every value: 450 KB from 50,000 rows of 8 bytes.
        let small = QueryLimits {
            max_bytes: 200_000,
            ..limits
        };
        assert_eq!(
            limited("SELECT string_agg(s, ',') FROM t", &small),
            Limit::QueryBytes
        );
        assert_eq!(
            limited("SELECT g, string_agg(s, ',') FROM t GROUP BY g", &small),
            Limit::QueryBytes
        );
        assert_eq!(
            limited("SELECT lpad(s, 100000000) FROM t", &limits),
            Limit::QueryBytes
        );
        let union = vec!["SELECT 1 AS x"; 1000].join(" UNION ALL ");
        assert_eq!(limited(&union, &limits), Limit::SqlSetOperations);
        let ors = (0..100_000)
            .map(|i| format!("a = {i}"))
            .collect::<Vec<_>>()
            .join(" OR ");
        assert_eq!(
            limited(&format!("SELECT * FROM t WHERE {ors}"), &limits),
            Limit::SqlBytes
        );
        let ors = (0..3_000)
            .map(|i| format!("a={i}"))
            .collect::<Vec<_>>()
            .join(" OR ");
        assert_eq!(
            limited(&format!("SELECT * FROM t WHERE {ors}"), &limits),
            Limit::SqlOperators
        );
    }

    #[test]
    fn ordinary_joins_pass_the_estimate() {
        let left =
            df!("id" => (0..100_000i64).collect::<Vec<_>>(), "v" => vec![1.0; 100_000]).unwrap();
        let right =
            df!("id" => (0..100_000i64).collect::<Vec<_>>(), "w" => vec!["x"; 100_000]).unwrap();
        let tables = vec![("l".to_string(), left), ("r".to_string(), right)];
        let limits = QueryLimits {
            max_rows: 1_000_000,
            ..QueryLimits::default()
        };
        let out = query(
            &tables,
            "SELECT COUNT(*) AS n FROM l JOIN r ON l.id = r.id",
            None,
            &limits,
        )
        .unwrap();
        assert_eq!(
            out.column("n").unwrap().get(0).unwrap().extract::<i64>(),
            Some(100_000)
        );
    }

    #[test]
    fn deep_conditions_fail_cleanly() {
        on_big_stack(deep_conditions)
    }

    fn deep_conditions() {
        let df = df!("a" => [1i64, 2, 3]).unwrap();
        let ors = (0..100_000)
            .map(|i| format!("a = {i}"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let err = filter_rows(&df, &ors).unwrap_err();
        assert!(matches!(err, OpsError::LimitExceeded { .. }), "{err}");
        let ors = (0..900)
            .map(|i| format!("a = {i}"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let (out, _) = filter_rows(&df, &ors).unwrap();
        assert_eq!(out.height(), 3, "a chain under the limit still works");
    }
}
