//! SQL over a session's tables, and exports to files.

use std::fs;
use std::io::BufWriter;

use dfmcp_ops::columns::visible;
use dfmcp_storage::{Edit, OpRecord, TableMeta};
use polars::prelude::*;
use rmcp::handler::server::tool::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};
use serde_json::json;

use super::check_table_name;
use super::inspect::bounded_rows;
use crate::render::{fail, ok, thousands};
use crate::server::DataFrameServer;
use crate::wire::*;

fn write_frame(
    df: &mut DataFrame,
    path: &std::path::Path,
    format: ExportFormat,
) -> PolarsResult<()> {
    let file = fs::File::create(path)?;
    let mut out = BufWriter::new(file);
    match format {
        ExportFormat::Csv => CsvWriter::new(&mut out).include_header(true).finish(df)?,
        ExportFormat::Tsv => CsvWriter::new(&mut out)
            .include_header(true)
            .with_separator(b'\t')
            .finish(df)?,
        ExportFormat::Parquet => {
            ParquetWriter::new(&mut out).finish(df)?;
        }
        ExportFormat::Json => JsonWriter::new(&mut out)
            .with_json_format(JsonFormat::Json)
            .finish(df)?,
        ExportFormat::Ndjson => JsonWriter::new(&mut out)
            .with_json_format(JsonFormat::JsonLines)
            .finish(df)?,
    }
    let file = out.into_inner().map_err(|e| PolarsError::IO {
        error: std::sync::Arc::new(e.into_error()),
        msg: None,
    })?;
    file.sync_all()?;
    Ok(())
}

fn format_from_extension(path: &std::path::Path) -> Option<ExportFormat> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "csv" | "txt" => Some(ExportFormat::Csv),
        "tsv" | "tab" => Some(ExportFormat::Tsv),
        "parquet" | "pq" => Some(ExportFormat::Parquet),
        "json" => Some(ExportFormat::Json),
        "ndjson" | "jsonl" => Some(ExportFormat::Ndjson),
        _ => None,
    }
}

#[tool_router(router = query_tools, vis = "pub(crate)")]
impl DataFrameServer {
    #[tool(
        description = "Run one SQL SELECT over the session's tables (by table name; quote names with spaces in double quotes). Supports joins, GROUP BY, window functions, CTEs. Returns a bounded number of rows; save_as stores the full result as a new table. Functions that read files (read_csv, read_parquet, …) are refused.",
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<QueryResponse>()
    )]
    async fn query_sql(&self, Parameters(req): Parameters<QueryRequest>) -> CallToolResult {
        if let Err(e) = dfmcp_ops::sql::check_query(&req.sql) {
            return fail(e.to_string());
        }
        if let Some(name) = &req.save_as
            && let Err(e) = check_table_name(name)
        {
            return fail(e);
        }
        let referenced = match dfmcp_ops::sql::referenced_tables(&req.sql) {
            Ok(r) => r,
            Err(e) => return fail(e.to_string()),
        };
        let existing = match self.store().list_tables(&req.session_id).await {
            Ok(t) => t,
            Err(e) => return fail(self.explain(e).await),
        };
        let mut tables = Vec::new();
        for name in referenced {
            if existing.iter().any(|t| t.name == name) {
                match self.store().load(&req.session_id, &name).await {
                    Ok(l) => tables.push((name, l.df)),
                    Err(e) => return fail(self.explain(e).await),
                }
            }
        }
        let limit = req.limit.unwrap_or(50).clamp(1, 1000);
        let sql = req.sql.clone();
        let full = req.save_as.is_some();
        let result = match self
            .store()
            .blocking(move || dfmcp_ops::sql::query(&tables, &sql, (!full).then_some(limit)))
            .await
        {
            Ok(Ok(df)) => df,
            Ok(Err(e)) => return fail(e.to_string()),
            Err(e) => return fail(e.to_string()),
        };
        let mut saved_as = None;
        let mut text = String::new();
        if let Some(name) = &req.save_as {
            let summary = format!(
                "Created from SQL ({} rows × {} columns): {}",
                thousands(result.height() as u64),
                result.width(),
                dfmcp_ops::values::cut(&req.sql, 200)
            );
            let edit = Edit {
                df: result.clone(),
                meta: TableMeta::new(),
                op: OpRecord::new(
                    "query_sql",
                    json!({ "sql": req.sql, "save_as": name }),
                    summary,
                ),
            };
            if let Err(e) = self.store().create_table(&req.session_id, name, edit).await {
                return fail(self.explain(e).await);
            }
            text.push_str(&format!(
                "Saved the result as table `{name}` ({} rows × {} columns).\n",
                thousands(result.height() as u64),
                result.width()
            ));
            saved_as = Some(name.clone());
        }
        // Without save_as the query produced at most limit + 1 rows: one more
        // than shown means there are more.
        let has_more = !full && result.height() > limit;
        let total = if full {
            result.height()
        } else {
            result.height().min(limit) + has_more as usize
        };
        let budget = self.max_chars().saturating_sub(4000);
        let saved = req.save_as.clone();
        let rendered = self
            .store()
            .blocking(move || {
                let shown = result.head(Some(limit));
                bounded_rows(&shown, 0, total, budget, |next| match &saved {
                    Some(name) => format!("The full result is in table `{name}`; use preview_rows with offset={next}."),
                    None => "Raise limit, add LIMIT/OFFSET to the query, or use save_as to keep the full result.".to_string(),
                })
            })
            .await;
        let (mut rows, body) = match rendered {
            Ok(r) => r,
            Err(e) => return fail(e.to_string()),
        };
        if has_more && !rows.truncated {
            rows.truncated = true;
            rows.next = Some(
                "More rows exist: raise limit, page with LIMIT/OFFSET, or use save_as.".into(),
            );
        }
        text.push_str(&body);
        if has_more {
            text.push_str(&format!("More than {limit} rows matched.\n"));
        }
        let response = QueryResponse {
            session_id: req.session_id,
            rows,
            saved_as,
        };
        ok(text, &response, self.max_chars())
    }

    #[tool(
        description = "Write a table to a file: csv, tsv, parquet, json (array of records) or ndjson (format from the extension unless given). Refuses to replace an existing file unless overwrite=true.",
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<ExportResponse>()
    )]
    async fn export_table(&self, Parameters(req): Parameters<ExportRequest>) -> CallToolResult {
        let path = match self.state.paths.check_write(&req.path) {
            Ok(p) => p,
            Err(e) => return fail(e.0),
        };
        let Some(format) = req.format.or_else(|| format_from_extension(&path)) else {
            return fail(format!(
                "cannot tell the format from '{}'; pass format: csv, tsv, parquet, json or ndjson",
                path.display()
            ));
        };
        if path.exists() && !req.overwrite.unwrap_or(false) {
            return fail(format!(
                "{} already exists; pass overwrite=true to replace it, or choose another path",
                path.display()
            ));
        }
        let loaded = match self.store().load(&req.session_id, &req.table).await {
            Ok(l) => l,
            Err(e) => return fail(self.explain(e).await),
        };
        let target = path.clone();
        let written = self
            .store()
            .blocking(move || -> Result<(u64, u64, u64), String> {
                let mut df = visible(&loaded.df);
                // Write beside the target, then rename: a reader never sees a
                // half-written file, and a failure leaves the old file intact.
                let tmp = target.with_file_name(format!(
                    ".{}.{}.tmp",
                    target
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    dfmcp_storage::new_uid()
                ));
                let outcome = write_frame(&mut df, &tmp, format)
                    .map_err(|e| e.to_string())
                    .and_then(|_| fs::rename(&tmp, &target).map_err(|e| e.to_string()));
                if let Err(e) = outcome {
                    let _ = fs::remove_file(&tmp);
                    return Err(format!("writing {} failed: {e}", target.display()));
                }
                let bytes = fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
                Ok((df.height() as u64, df.width() as u64, bytes))
            })
            .await;
        let (rows, columns, bytes) = match written {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return fail(e),
            Err(e) => return fail(e.to_string()),
        };
        let format_name = format!("{format:?}").to_lowercase();
        let text = format!(
            "Wrote table `{}` ({} rows × {columns} columns) to {} as {format_name} ({}).",
            req.table,
            thousands(rows),
            path.display(),
            dfmcp_ingest::human_bytes(bytes)
        );
        let response = ExportResponse {
            session_id: req.session_id,
            table: req.table,
            path: path.display().to_string(),
            format: format_name,
            rows,
            columns,
            bytes,
        };
        ok(text, &response, self.max_chars())
    }
}
