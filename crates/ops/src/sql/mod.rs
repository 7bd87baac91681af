//! SQL over the session's tables, and SQL boolean conditions, with guards:
//! only `SELECT` queries over registered tables run; table functions that read
//! files (`read_csv`, `read_parquet`, …) and subqueries in conditions are refused.

use std::ops::ControlFlow;

use polars::prelude::*;
use polars::sql::{SQLContext, sql_expr};
use sqlparser::ast::{Statement, TableFactor, Visit, Visitor};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use crate::columns::{explain_polars, visible};
use crate::error::{OpsError, Result};

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
                "table functions such as {name}(...) are not allowed: query the session's tables by name (list_tables shows them); to bring in a file, use initialize_data_table"
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
                "subqueries are not allowed in a row condition; use query_sql with save_as for that".into(),
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
                "only SELECT queries run here (WITH … SELECT included); to change a table use the cleaning tools, or save_as to store a query result".into(),
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
    let out = df
        .clone()
        .lazy()
        .select([expr.alias("__cond")])
        .collect()
        .map_err(|e| explain_polars(df, e))?;
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
    let out = df.filter(&mask)?;
    let removed = df.height() - out.height();
    Ok((out, removed))
}

/// Runs a SELECT over named frames (hidden columns are not visible to SQL).
/// With `limit`, at most `limit + 1` rows are produced, so the caller can tell
/// that there were more.
pub fn query(tables: &[(String, DataFrame)], sql: &str, limit: Option<usize>) -> Result<DataFrame> {
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
    lf.collect().map_err(|e| sql_error(tables, e))
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
        let out = query(
            &tables,
            "SELECT region, SUM(price) AS total FROM sales GROUP BY region ORDER BY region",
            None,
        )
        .unwrap();
        assert_eq!(out.height(), 2);
        let limited = query(&tables, "SELECT * FROM sales", Some(1)).unwrap();
        assert_eq!(
            limited.height(),
            2,
            "limit + 1 rows tell the caller there is more"
        );
        let err = query(&tables, "SELECT * FROM nope", None).err().unwrap();
        assert!(err.to_string().contains("sales"), "{err}");
    }
}
