//! SQL over a session's tables, and exports to files.

use std::io::{BufWriter, Write};

use dfmcp_ops::columns::visible;
use dfmcp_storage::{Edit, Intent, OpRecord, TableMeta};
use polars::prelude::*;
use rmcp::handler::server::tool::{Extension, schema_for_output};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Resource};
use rmcp::{tool, tool_router};
use serde_json::json;

use super::{bounded_rows, check_table_name};
use crate::caller::Caller;
use crate::error::ToolError;
use crate::render::thousands;
use crate::server::{BaseUrl, DataFrameServer};
use crate::wire::*;

/// Rows written at a time by an export.
const EXPORT_SLICE_ROWS: usize = 1 << 18;

/// The frame in slices of [`EXPORT_SLICE_ROWS`], each with its columns'
/// chunks aligned. A stored table's columns are chunked differently (parts
/// follow each column's width), and the writers would otherwise align the
/// whole frame first: a full copy of the table in memory.
fn aligned_slices(df: &DataFrame) -> impl Iterator<Item = DataFrame> + '_ {
    (0..df.height()).step_by(EXPORT_SLICE_ROWS).map(|offset| {
        let mut slice = df.slice(offset as i64, EXPORT_SLICE_ROWS);
        slice.rechunk_mut_par();
        slice
    })
}

fn write_frame(df: &mut DataFrame, out: impl Write, format: ExportFormat) -> PolarsResult<()> {
    let mut out = BufWriter::new(out);
    match format {
        ExportFormat::Csv | ExportFormat::Tsv => {
            let separator = if format == ExportFormat::Tsv {
                b'\t'
            } else {
                b','
            };
            let mut writer = CsvWriter::new(&mut out)
                .include_header(true)
                .with_separator(separator)
                .batched(df.schema())?;
            for slice in aligned_slices(df) {
                writer.write_batch(&slice)?;
            }
            writer.finish()?;
        }
        ExportFormat::Parquet => {
            let mut writer = ParquetWriter::new(&mut out).batched(df.schema())?;
            for slice in aligned_slices(df) {
                writer.write_batch(&slice)?;
            }
            writer.finish()?;
        }
        ExportFormat::Json => JsonWriter::new(&mut out)
            .with_json_format(JsonFormat::Json)
            .finish(df)?,
        ExportFormat::Ndjson => JsonWriter::new(&mut out)
            .with_json_format(JsonFormat::JsonLines)
            .finish(df)?,
    }
    out.flush()?;
    Ok(())
}

fn mime_type(format: &str) -> &'static str {
    match format {
        "csv" => "text/csv",
        "tsv" => "text/tab-separated-values",
        "parquet" => "application/vnd.apache.parquet",
        "json" => "application/json",
        "ndjson" => "application/x-ndjson",
        _ => "application/octet-stream",
    }
}

fn extension(format: ExportFormat) -> &'static str {
    match format {
        ExportFormat::Csv => "csv",
        ExportFormat::Tsv => "tsv",
        ExportFormat::Parquet => "parquet",
        ExportFormat::Json => "json",
        ExportFormat::Ndjson => "ndjson",
    }
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
        description = "Run one SQL SELECT over the session's tables (by name; double-quote names with spaces): joins, GROUP BY, window functions, CTEs. Returns bounded rows; save_as keeps the full result as a table. File access is refused.",
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<QueryResponse>()
    )]
    async fn query_sql(
        &self,
        Parameters(req): Parameters<QueryRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let result = self.query(&caller, req).await?;
        Ok(self.reply(&result))
    }

    #[tool(
        description = "Write a table to a file: csv, tsv, parquet, json (records) or ndjson (from the extension unless format is given); overwrite=true replaces a file. Over HTTP, omit path for a download link.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn export_table(
        &self,
        Parameters(req): Parameters<ExportRequest>,
        Extension(caller): Extension<Caller>,
        Extension(base): Extension<BaseUrl>,
    ) -> Result<CallToolResult, ToolError> {
        if req.path.is_some() {
            let written = self.export(&caller, req).await?;
            let mut result = self.reply(&written);
            let file = written
                .path
                .as_deref()
                .and_then(|p| url::Url::from_file_path(p).ok());
            if let Some(file) = file {
                let name = file
                    .path_segments()
                    .and_then(|mut s| s.next_back())
                    .unwrap_or("export")
                    .to_string();
                let link = Resource::new(file.to_string(), name)
                    .with_mime_type(mime_type(&written.format))
                    .with_size(written.bytes);
                result.content.push(ContentBlock::resource_link(link));
            }
            return Ok(result);
        }
        let Some(base) = base.0 else {
            return Err(ToolError::invalid(
                "give path: where to write the file (download links exist only over HTTP)",
            ));
        };
        let (written, name) = self.export_download(&caller, req, &base).await?;
        let mut result = self.reply(&written);
        if let Some(url) = &written.url {
            let link = Resource::new(url.clone(), name)
                .with_mime_type(mime_type(&written.format))
                .with_size(written.bytes);
            result.content.push(ContentBlock::resource_link(link));
        }
        Ok(result)
    }
}

impl DataFrameServer {
    async fn query(&self, caller: &Caller, req: QueryRequest) -> Result<QueryResponse, ToolError> {
        let session = caller.stored(&req.session_id)?;
        if let Some(name) = &req.save_as {
            if self.state.read_only {
                return Err(ToolError::invalid(
                    "this server is read-only: query_sql cannot save_as; run the query without save_as to see its rows",
                ));
            }
            check_table_name(name)?;
        }
        let limits = self.state.query;
        let sql = req.sql.clone();
        let referenced = self
            .store()
            .compute(&session, move |_| {
                dfmcp_ops::sql::check_text(&sql, &limits)?;
                dfmcp_ops::sql::check_query(&sql)?;
                dfmcp_ops::sql::referenced_tables(&sql)
            })
            .await??;
        crate::progress::phase("loading the tables the query reads");
        let existing = self.store().list_tables(&session).await?;
        let mut tables = Vec::new();
        for name in referenced {
            if existing.iter().any(|t| t.name == name) {
                let loaded = self.store().load(&session, &name).await?;
                tables.push((name, loaded.df));
            }
        }
        let limit = req.limit.unwrap_or(50).clamp(1, 1000);
        let full = req.save_as.is_some();
        let sql = req.sql.clone();
        crate::progress::phase("running the query");
        let result = self
            .store()
            .compute(&session, move |_| {
                dfmcp_ops::sql::query(&tables, &sql, (!full).then_some(limit), &limits)
            })
            .await??;
        let mut saved_as = None;
        if let Some(name) = &req.save_as {
            crate::progress::phase(format!(
                "saving {} rows as table `{name}`",
                crate::render::thousands(result.height() as u64)
            ));
            let intent = match &req.request_id {
                Some(id) => {
                    Intent::with_op_id(format!("r:{}", crate::server::check_request_id(id)?))
                }
                None => Intent::new(),
            }
            .by(caller.actor.clone());
            let retried = self
                .store()
                .tables_with_ops(&session, std::slice::from_ref(&intent.op_id))
                .await?
                .values()
                .any(|t| &t.name == name);
            if !retried {
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
                self.store()
                    .create_table(&session, name, edit, &intent)
                    .await?;
            }
            saved_as = Some(name.clone());
        }
        // Without save_as the query produced at most limit + 1 rows: one more
        // than shown means there are more, but not how many.
        let has_more = !full && result.height() > limit;
        let total = (!has_more).then_some(result.height());
        let budget = self.state.max_chars.saturating_sub(4000);
        let saved = req.save_as.clone();
        let rows = self
            .store()
            .compute(&session, move |_| {
                let shown = result.head(Some(limit));
                bounded_rows(&shown, 0, total, budget, |next| match &saved {
                    Some(name) => format!(
                        "The full result is in table `{name}`; use preview_rows with offset={next}."
                    ),
                    None => "Raise limit, add LIMIT/OFFSET to the query, or use save_as to keep the full result.".to_string(),
                })
            })
            .await?;
        Ok(QueryResponse {
            session_id: req.session_id,
            rows,
            saved_as,
        })
    }

    async fn export(
        &self,
        caller: &Caller,
        req: ExportRequest,
    ) -> Result<ExportResponse, ToolError> {
        let session = caller.stored(&req.target.session_id)?;
        let target = self
            .state
            .paths
            .open_write(req.path.as_deref().unwrap_or_default())?;
        let Some(format) = req.format.or_else(|| format_from_extension(&target.path)) else {
            return Err(ToolError::invalid(format!(
                "cannot tell the format from '{}'; pass format: csv, tsv, parquet, json or ndjson",
                target.path.display()
            )));
        };
        if target.exists() && !req.overwrite.unwrap_or(false) {
            return Err(ToolError::invalid(format!(
                "{} already exists; pass overwrite=true to replace it, or choose another path",
                target.path.display()
            )));
        }
        let loaded = self.store().load(&session, &req.target.table).await?;
        let path = target.path.display().to_string();
        crate::progress::phase(format!(
            "writing {} rows of `{}` to {path}",
            crate::render::thousands(loaded.df.height() as u64),
            req.target.table
        ));
        let written = self
            .store()
            .compute(&session, move |_| -> Result<(u64, u64, u64), String> {
                let mut df = visible(&loaded.df);
                // Write beside the target, then rename: a reader never sees a
                // half-written file, and a failure leaves the old file intact.
                let shown = target.path.display().to_string();
                let (file, temp) = target
                    .create_temp()
                    .map_err(|e| format!("writing {shown} failed: {e}"))?;
                let outcome = write_frame(&mut df, &file, format)
                    .map_err(|e| e.to_string())
                    .and_then(|_| file.sync_all().map_err(|e| e.to_string()))
                    .and_then(|_| target.replace_with(&temp).map_err(|e| e.to_string()));
                if let Err(e) = outcome {
                    let _ = std::fs::remove_file(&temp);
                    return Err(format!("writing {shown} failed: {e}"));
                }
                Ok((df.height() as u64, df.width() as u64, target.size()))
            })
            .await?
            .map_err(ToolError::invalid)?;
        let (rows, columns, bytes) = written;
        Ok(ExportResponse {
            session_id: req.target.session_id,
            table: req.target.table,
            path: Some(path),
            url: None,
            format: format!("{format:?}").to_lowercase(),
            rows,
            columns,
            bytes,
        })
    }

    /// Exports into the session's store, for download over HTTP; returns
    /// the response (with its URL) and the file's name.
    async fn export_download(
        &self,
        caller: &Caller,
        req: ExportRequest,
        base: &str,
    ) -> Result<(ExportResponse, String), ToolError> {
        let session = caller.stored(&req.target.session_id)?;
        let format = req.format.unwrap_or(ExportFormat::Csv);
        let loaded = self.store().load(&session, &req.target.table).await?;
        let (bytes, rows, columns) = self
            .store()
            .compute(&session, move |_| -> Result<(Vec<u8>, u64, u64), String> {
                let mut df = visible(&loaded.df);
                let mut bytes = Vec::new();
                write_frame(&mut df, &mut bytes, format).map_err(|e| e.to_string())?;
                Ok((bytes, df.height() as u64, df.width() as u64))
            })
            .await?
            .map_err(|e| ToolError::invalid(format!("writing the export failed: {e}")))?;
        let name = format!("{}.{}", req.target.table, extension(format));
        let size = bytes.len() as u64;
        let id = self.store().put_export(&session, &name, bytes).await?;
        let url = format!(
            "{}/v1/exports/{}.{id}",
            base.trim_end_matches('/'),
            req.target.session_id
        );
        Ok((
            ExportResponse {
                session_id: req.target.session_id,
                table: req.target.table,
                path: None,
                url: Some(url),
                format: extension(format).into(),
                rows,
                columns,
                bytes: size,
            },
            name,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Columns chunked differently, more rows than one slice: every format
    /// reads back the same frame.
    #[test]
    fn exports_write_misaligned_frames_in_slices() {
        let rows = EXPORT_SLICE_ROWS + 1000;
        let mut a = Series::new("a".into(), (0..100_000i64).collect::<Vec<_>>());
        a.append(&Series::new(
            "a".into(),
            (100_000..rows as i64).collect::<Vec<_>>(),
        ))
        .unwrap();
        let b = Series::new(
            "b".into(),
            (0..rows as i64).map(|i| i * 2).collect::<Vec<_>>(),
        );
        let mut df = DataFrame::new(rows, vec![a.into_column(), b.into_column()]).unwrap();
        assert_ne!(
            df.columns()[0].as_materialized_series().n_chunks(),
            df.columns()[1].as_materialized_series().n_chunks()
        );
        let mut parquet = Vec::new();
        write_frame(&mut df, &mut parquet, ExportFormat::Parquet).unwrap();
        let back = ParquetReader::new(std::io::Cursor::new(parquet))
            .finish()
            .unwrap();
        assert!(back.equals(&df));
        let mut csv = Vec::new();
        write_frame(&mut df, &mut csv, ExportFormat::Csv).unwrap();
        let text = String::from_utf8(csv).unwrap();
        assert_eq!(text.lines().count(), rows + 1);
        assert_eq!(text.lines().nth(1), Some("0,0"));
        let mut empty = df.head(Some(0));
        let mut header = Vec::new();
        write_frame(&mut empty, &mut header, ExportFormat::Tsv).unwrap();
        assert_eq!(String::from_utf8(header).unwrap(), "a\tb\n");
    }
}
