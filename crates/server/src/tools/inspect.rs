//! Read-only views of a table: summary, rows, value counts.

use dfmcp_ops::inspect::{RowWindow, preview, summarize, value_counts};
use dfmcp_ops::values::rows_as_json;
use rmcp::handler::server::tool::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};

use super::column_list;
use crate::render::{fail, ok, rows_that_fit, table, thousands};
use crate::server::DataFrameServer;
use crate::wire::*;

/// Cells longer than this are cut in row views.
const CELL_CHARS: usize = 200;

fn opt_f(v: Option<f64>) -> String {
    v.map(dfmcp_ops::missing::fmt_num)
        .unwrap_or_else(|| "–".into())
}

/// Rows as a bounded response: as many as fit in `budget` characters.
pub(crate) fn bounded_rows(
    df: &polars::prelude::DataFrame,
    offset: usize,
    total_rows: usize,
    budget: usize,
    more_hint: impl Fn(usize) -> String,
) -> (RowsResponse, String) {
    let columns = column_list(df, usize::MAX);
    let mut rows = rows_as_json(df, CELL_CHARS);
    let fit = rows_that_fit(&rows, budget);
    let cut_by_budget = fit < rows.len();
    rows.truncate(fit);
    let shown_end = offset + rows.len();
    let truncated = shown_end < total_rows;
    let next = truncated.then(|| more_hint(shown_end));
    let headers: Vec<String> = columns
        .iter()
        .map(|c| format!("{} ({})", c.name, c.dtype))
        .collect();
    let mut text = if rows.is_empty() {
        "(no rows)\n".to_string()
    } else {
        table(&headers, &rows)
    };
    if truncated {
        text.push_str(&format!(
            "Showing rows {}–{} of {}{}. {}\n",
            offset + 1,
            shown_end,
            thousands(total_rows as u64),
            if cut_by_budget {
                " (cut to fit the response size limit)"
            } else {
                ""
            },
            next.clone().unwrap_or_default()
        ));
    } else {
        text.push_str(&format!(
            "{} of {} rows shown.\n",
            rows.len(),
            thousands(total_rows as u64)
        ));
    }
    (
        RowsResponse {
            columns,
            rows: rows
                .into_iter()
                .map(|r| r.into_iter().map(Cell).collect())
                .collect(),
            offset,
            total_rows,
            truncated,
            next,
        },
        text,
    )
}

#[tool_router(router = inspect_tools, vis = "pub(crate)")]
impl DataFrameServer {
    #[tool(
        description = "Summarise a table: rows, columns, duplicate rows, and per column its type, missing count and %, intentionally-missing count, distinct values, and min/max/mean/std/median/quartiles for numbers, top values for text, ranges for dates. Wide tables are paged by column (column_offset, column_limit).",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<SummaryResponse>()
    )]
    async fn get_table_summary(
        &self,
        Parameters(req): Parameters<SummaryRequest>,
    ) -> CallToolResult {
        let loaded = match self.store().load(&req.session_id, &req.table).await {
            Ok(l) => l,
            Err(e) => return fail(self.explain(e).await),
        };
        let offset = req.column_offset.unwrap_or(0);
        let limit = req.column_limit.unwrap_or(25).clamp(1, 200);
        let top = req.top_values.unwrap_or(5).min(20);
        let columns = req.columns.clone();
        let df = loaded.df.clone();
        let summary = match self
            .store()
            .blocking(move || summarize(&df, columns.as_deref(), offset, limit, top))
            .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return fail(e.to_string()),
            Err(e) => return fail(e.to_string()),
        };
        let mut text = format!(
            "Table `{}` (version {}): {} rows × {} columns, {} duplicate rows, {} in memory.\n",
            req.table,
            loaded.state.head.version,
            thousands(summary.rows as u64),
            summary.columns,
            thousands(summary.duplicate_rows as u64),
            dfmcp_ingest::human_bytes(summary.memory_bytes as u64)
        );
        let headers: Vec<String> = ["column", "type", "missing", "distinct", "stats"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let rows: Vec<Vec<serde_json::Value>> = summary
            .column_summaries
            .iter()
            .map(|c| {
                let missing = if c.intentional_missing > 0 {
                    format!(
                        "{} ({}%) + {} intentional",
                        c.missing, c.missing_pct, c.intentional_missing
                    )
                } else {
                    format!("{} ({}%)", c.missing, c.missing_pct)
                };
                let stats = if let Some(n) = &c.numeric {
                    format!(
                        "min {} · q25 {} · median {} · mean {} · q75 {} · max {} · std {}",
                        opt_f(n.min),
                        opt_f(n.q25),
                        opt_f(n.median),
                        opt_f(n.mean),
                        opt_f(n.q75),
                        opt_f(n.max),
                        opt_f(n.std)
                    )
                } else if let Some(t) = &c.text {
                    let top: Vec<String> = t
                        .top
                        .iter()
                        .map(|v| format!("{} ({})", v.value, v.count))
                        .collect();
                    format!("top: {}", top.join(", "))
                } else if let Some(r) = &c.range {
                    format!(
                        "{} … {}",
                        r.min.clone().unwrap_or_default(),
                        r.max.clone().unwrap_or_default()
                    )
                } else if let Some(b) = &c.boolean {
                    format!("true {} · false {}", b.true_count, b.false_count)
                } else {
                    String::new()
                };
                vec![
                    c.name.clone().into(),
                    c.dtype.clone().into(),
                    missing.into(),
                    c.distinct.into(),
                    stats.into(),
                ]
            })
            .collect();
        text.push_str(&table(&headers, &rows));
        if let Some(next) = summary.next_column_offset {
            text.push_str(&format!(
                "Columns {}–{} of {} shown; call again with column_offset={next} for more.\n",
                offset + 1,
                next,
                summary.columns
            ));
        }
        let reasons = loaded.meta.get("intentional_missing_reasons").cloned();
        if let Some(serde_json::Value::Object(r)) = &reasons
            && !r.is_empty()
        {
            let list: Vec<String> = r
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or("")))
                .collect();
            text.push_str(&format!("Intentionally missing: {}\n", list.join("; ")));
        }
        let response = SummaryResponse {
            session_id: req.session_id,
            table: req.table,
            version: loaded.state.head.version,
            summary: object(serde_json::to_value(&summary).unwrap_or_default()),
            intentional_missing_reasons: reasons.map(object),
        };
        ok(text, &response, self.max_chars())
    }

    #[tool(
        description = "Show rows of a table: the first (head) or last (tail) rows, or from an offset; optionally only some columns. Results are capped; the response says how to get more.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<PreviewResponse>()
    )]
    async fn preview_rows(&self, Parameters(req): Parameters<PreviewRequest>) -> CallToolResult {
        let loaded = match self.store().load(&req.session_id, &req.table).await {
            Ok(l) => l,
            Err(e) => return fail(self.explain(e).await),
        };
        let limit = req.limit.unwrap_or(10).clamp(1, 500);
        let window = match (req.offset, req.position.unwrap_or_default()) {
            (Some(offset), _) => RowWindow::Slice { offset, limit },
            (None, Position::Head) => RowWindow::Head(limit),
            (None, Position::Tail) => RowWindow::Tail(limit),
        };
        let total = loaded.df.height();
        let (session_id, table_name) = (req.session_id.clone(), req.table.clone());
        let budget = self.max_chars().saturating_sub(4000);
        let columns = req.columns.clone();
        let df = loaded.df.clone();
        // On the blocking pool: polars work there cannot stall the runtime,
        // and a polars panic becomes an error result instead of a lost reply.
        let rendered = self
            .store()
            .blocking(move || {
                let (slice, offset) = preview(&df, window, columns.as_deref())?;
                Ok::<_, dfmcp_ops::OpsError>(bounded_rows(&slice, offset, total, budget, |next| {
                    format!("Call preview_rows with offset={next} to continue.")
                }))
            })
            .await;
        let (rows, body) = match rendered {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return fail(e.to_string()),
            Err(e) => return fail(e.to_string()),
        };
        let text = format!(
            "Table `{table_name}` (version {}), {} rows:\n{body}",
            loaded.state.head.version,
            thousands(total as u64)
        );
        let response = PreviewResponse {
            session_id,
            table: table_name,
            version: loaded.state.head.version,
            rows,
        };
        ok(text, &response, self.max_chars())
    }

    #[tool(
        description = "Count the distinct values of a column, most frequent first, with percentages; also the missing count.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<ValueCountsResponse>()
    )]
    async fn value_counts(
        &self,
        Parameters(req): Parameters<ValueCountsRequest>,
    ) -> CallToolResult {
        let loaded = match self.store().load(&req.session_id, &req.table).await {
            Ok(l) => l,
            Err(e) => return fail(self.explain(e).await),
        };
        let limit = req.limit.unwrap_or(20).clamp(1, 500);
        let column = req.column.clone();
        let df = loaded.df.clone();
        let counts = match self
            .store()
            .blocking(move || value_counts(&df, &column, limit))
            .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return fail(e.to_string()),
            Err(e) => return fail(e.to_string()),
        };
        let rows: Vec<Vec<serde_json::Value>> = counts
            .values
            .iter()
            .map(|v| {
                vec![
                    v.value.clone(),
                    v.count.into(),
                    format!("{}%", v.percent).into(),
                ]
            })
            .collect();
        let mut text = format!(
            "`{}` in `{}`: {} distinct values, {} missing of {} rows.\n",
            counts.column,
            req.table,
            thousands(counts.distinct as u64),
            thousands(counts.missing as u64),
            thousands(counts.rows as u64)
        );
        text.push_str(&table(
            &["value".into(), "count".into(), "percent".into()],
            &rows,
        ));
        if counts.others > 0 {
            text.push_str(&format!(
                "… and {} other values ({} rows); raise limit to see more.\n",
                thousands(counts.others as u64),
                thousands(counts.others_count as u64)
            ));
        }
        let response = ValueCountsResponse {
            session_id: req.session_id,
            table: req.table,
            counts: object(serde_json::to_value(&counts).unwrap_or_default()),
        };
        ok(text, &response, self.max_chars())
    }
}
