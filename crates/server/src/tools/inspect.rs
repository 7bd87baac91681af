//! Read-only views of a table: summary, rows, value counts.

use dfmcp_ops::inspect::{self, RowWindow};
use rmcp::handler::server::tool::{Extension, schema_for_output};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};

use super::bounded_rows;
use crate::caller::Caller;
use crate::error::ToolError;
use crate::server::DataFrameServer;
use crate::summaries::SummaryAsk;
use crate::wire::*;

/// Most values value_counts lists.
const MAX_VALUE_COUNTS: usize = 500;

impl From<inspect::ColumnSummary> for ColumnSummary {
    fn from(c: inspect::ColumnSummary) -> Self {
        ColumnSummary {
            name: c.name,
            dtype: c.dtype,
            non_null: c.non_null,
            missing: c.missing,
            missing_pct: c.missing_pct,
            intentional_missing: c.intentional_missing,
            distinct: c.distinct,
            numeric: c.numeric.map(|n| NumericStats {
                min: n.min,
                max: n.max,
                mean: n.mean,
                std: n.std,
                median: n.median,
                q25: n.q25,
                q75: n.q75,
                zeros: n.zeros,
                negatives: n.negatives,
            }),
            text: c.text.map(|t| TextStats {
                top: t
                    .top
                    .into_iter()
                    .map(|v| TopValue {
                        value: v.value,
                        count: v.count,
                    })
                    .collect(),
                min_length: t.min_length,
                max_length: t.max_length,
                empty_strings: t.empty_strings,
            }),
            range: c.range.map(|r| RangeStats {
                min: r.min,
                max: r.max,
            }),
            boolean: c.boolean.map(|b| BoolStats {
                true_count: b.true_count,
                false_count: b.false_count,
            }),
        }
    }
}

#[tool_router(router = inspect_tools, vis = "pub(crate)")]
impl DataFrameServer {
    #[tool(
        description = "Summarise a table: rows, duplicate rows; per column type, missing (and intentional), distinct values, min/max/mean/std/quartiles, top values, date ranges. Paged by column.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<SummaryResponse>()
    )]
    async fn get_table_summary(
        &self,
        Parameters(req): Parameters<SummaryRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let summary = self.summary(&caller, req).await?;
        Ok(self.reply(&summary))
    }

    #[tool(
        description = "Show rows of a table: head, tail or from an offset; optionally some columns. Capped; the response says how to get more.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<PreviewResponse>()
    )]
    async fn preview_rows(
        &self,
        Parameters(req): Parameters<PreviewRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let preview = self.preview(&caller, req).await?;
        Ok(self.reply(&preview))
    }

    #[tool(
        description = "Count the distinct values of a column, most frequent first, with percentages; also the missing count.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<ValueCountsResponse>()
    )]
    async fn value_counts(
        &self,
        Parameters(req): Parameters<ValueCountsRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let counts = self.counts(&caller, req).await?;
        Ok(self.reply(&counts))
    }
}

impl DataFrameServer {
    async fn summary(
        &self,
        caller: &Caller,
        req: SummaryRequest,
    ) -> Result<SummaryResponse, ToolError> {
        let session = caller.stored(&req.target.session_id)?;
        let loaded = self.store().load(&session, &req.target.table).await?;
        let offset = req.column_offset.unwrap_or(0);
        let limit = req.column_limit.unwrap_or(25).clamp(1, 200);
        let top = req.top_values.unwrap_or(5).min(20);
        let columns = req.columns.clone();
        let df = loaded.df.clone();
        let cache = self.state.summaries.clone();
        let version = loaded.state.head.manifest.clone();
        let column_ids = loaded.column_ids.clone();
        crate::progress::phase(format!(
            "summarising `{}` ({} rows × {} columns)",
            req.target.table,
            crate::render::thousands(df.height() as u64),
            df.width()
        ));
        let (summary, _) = self
            .store()
            .compute(&session, move |_| {
                let ask = SummaryAsk {
                    columns: columns.as_deref(),
                    offset,
                    limit,
                    top,
                };
                cache.summarize(&version, &column_ids, &df, &ask)
            })
            .await??;
        let reasons = loaded
            .meta
            .get("intentional_missing_reasons")
            .and_then(|v| v.as_object())
            .map(|r| {
                r.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(SummaryResponse {
            session_id: req.target.session_id,
            table: req.target.table,
            version: loaded.state.head.version,
            rows: summary.rows,
            columns: summary.columns,
            duplicate_rows: summary.duplicate_rows,
            memory_bytes: summary.memory_bytes,
            column_offset: summary.column_offset,
            column_summaries: summary
                .column_summaries
                .into_iter()
                .map(ColumnSummary::from)
                .collect(),
            next_column_offset: summary.next_column_offset,
            intentional_missing_reasons: reasons,
        })
    }

    pub(crate) async fn preview(
        &self,
        caller: &Caller,
        req: PreviewRequest,
    ) -> Result<PreviewResponse, ToolError> {
        let session = caller.stored(&req.target.session_id)?;
        let loaded = self.store().load(&session, &req.target.table).await?;
        let limit = req.limit.unwrap_or(10).clamp(1, 500);
        let window = match (req.offset, req.position.unwrap_or_default()) {
            (Some(offset), _) => RowWindow::Slice { offset, limit },
            (None, Position::Head) => RowWindow::Head(limit),
            (None, Position::Tail) => RowWindow::Tail(limit),
        };
        let total = loaded.df.height();
        let budget = self.state.max_chars.saturating_sub(4000);
        let columns = req.columns.clone();
        let df = loaded.df.clone();
        let rows = self
            .store()
            .compute(&session, move |_| {
                let (slice, offset) = inspect::preview(&df, window, columns.as_deref())?;
                Ok::<_, dfmcp_ops::OpsError>(bounded_rows(
                    &slice,
                    offset,
                    Some(total),
                    budget,
                    |next| format!("Call preview_rows with offset={next} to continue."),
                ))
            })
            .await??;
        Ok(PreviewResponse {
            session_id: req.target.session_id,
            table: req.target.table,
            version: loaded.state.head.version,
            rows,
        })
    }

    async fn counts(
        &self,
        caller: &Caller,
        req: ValueCountsRequest,
    ) -> Result<ValueCountsResponse, ToolError> {
        let session = caller.stored(&req.target.session_id)?;
        let loaded = self.store().load(&session, &req.target.table).await?;
        let limit = req.limit.unwrap_or(20).clamp(1, MAX_VALUE_COUNTS);
        let column = req.column.clone();
        let df = loaded.df.clone();
        let counts = self
            .store()
            .compute(&session, move |_| {
                inspect::value_counts(&df, &column, limit)
            })
            .await??;
        Ok(ValueCountsResponse {
            session_id: req.target.session_id,
            table: req.target.table,
            column: counts.column,
            rows: counts.rows,
            missing: counts.missing,
            distinct: counts.distinct,
            values: counts
                .values
                .into_iter()
                .map(|v| ValueCount {
                    value: Cell(v.value),
                    count: v.count,
                    percent: v.percent,
                })
                .collect(),
            others: counts.others,
            others_count: counts.others_count,
            max_limit: limit == MAX_VALUE_COUNTS,
        })
    }
}
