//! Sessions and tables: load, inspect files, list, rename, drop, delete.

use std::collections::HashSet;

use dfmcp_ingest::{LoadOptions, naming};
use dfmcp_storage::{Edit, OpRecord, StoreError, TableMeta};
use rmcp::handler::server::tool::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};
use serde_json::json;

use super::{check_table_name, column_list};
use crate::render::{fail, ok, table, thousands, time};
use crate::server::DataFrameServer;
use crate::wire::*;

fn parse_delimiter(raw: Option<&str>) -> Result<Option<char>, String> {
    let Some(raw) = raw else { return Ok(None) };
    let d = match raw {
        "\\t" | "\t" | "tab" | "TAB" => '\t',
        s if s.chars().count() == 1 => s.chars().next().unwrap_or(','),
        "comma" => ',',
        "semicolon" => ';',
        "pipe" => '|',
        other => {
            return Err(format!(
                "delimiter must be one character (or \\t), got '{other}'"
            ));
        }
    };
    if !d.is_ascii() {
        return Err(format!("delimiter must be an ASCII character, got '{d}'"));
    }
    Ok(Some(d))
}

#[tool_router(router = session_tools, vis = "pub(crate)")]
impl DataFrameServer {
    #[tool(
        description = "Load a tabular file (CSV/TSV/TXT in any common dialect and encoding, Excel xlsx/xlsm/xlsb/xls, ODS, Parquet, Arrow/Feather, JSON, NDJSON) into a session: every table it holds (every sheet), each as a named table. Creates a new session (returns its session_id) unless session_id is given. Or copy tables from source_session_id. One bad sheet does not fail the others: it is reported under problems.",
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false),
        output_schema = schema_for_output::<InitializeResponse>()
    )]
    async fn initialize_data_table(
        &self,
        Parameters(req): Parameters<InitializeRequest>,
    ) -> CallToolResult {
        match (&req.file_path, &req.source_session_id) {
            (Some(_), Some(_)) => {
                return fail(
                    "give either file_path (load a file) or source_session_id (copy tables), not both",
                );
            }
            (None, None) => {
                return fail(
                    "give file_path: the path of a file to load (or source_session_id to copy tables from another session)",
                );
            }
            _ => {}
        }
        if let Some(name) = &req.table_name
            && let Err(e) = check_table_name(name)
        {
            return fail(e);
        }
        if req.source_session_id.is_some() {
            return self.copy_tables(req).await;
        }
        let file_path = req.file_path.clone().unwrap_or_default();
        let path = match self.state.paths.check_read(&file_path) {
            Ok(p) => p,
            Err(e) => return fail(e.0),
        };
        let delimiter = match parse_delimiter(req.delimiter.as_deref()) {
            Ok(d) => d,
            Err(e) => return fail(e),
        };
        let options = LoadOptions {
            table_name: req.table_name.clone(),
            sheets: req.sheets.clone(),
            delimiter,
            encoding: req.encoding.clone(),
            has_header: req.has_header,
            skip_rows: req.skip_rows.unwrap_or(0),
            max_rows: req.max_rows,
            null_values: req.null_values.clone(),
            decimal_comma: req.decimal_comma.unwrap_or(false),
        };
        let limits = self.state.limits;
        let load_path = path.clone();
        let loaded = match self
            .store()
            .blocking(move || dfmcp_ingest::load(&load_path, &options, &limits))
            .await
        {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => return fail(e.to_string()),
            Err(e) => return fail(e.to_string()),
        };

        // The session: the given one (created if new) or a fresh one.
        let (session_id, created) = match self.target_session(req.session_id.as_deref()).await {
            Ok(found) => found,
            Err(text) => return fail(text),
        };
        let mut taken: HashSet<String> = match self.store().list_tables(&session_id).await {
            Ok(tables) => tables.into_iter().map(|t| t.name).collect(),
            Err(e) => return fail(self.explain(e).await),
        };
        let single = loaded.tables.len() == 1;
        let mut tables = Vec::new();
        let mut problems: Vec<ProblemInfo> = loaded
            .problems
            .iter()
            .map(|p| ProblemInfo {
                source: p.source.clone(),
                message: p.message.clone(),
            })
            .collect();
        let file_name = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        for t in loaded.tables {
            let explicit = single && req.table_name.is_some();
            if explicit && taken.contains(&t.name) {
                problems.push(ProblemInfo {
                    source: t.source.clone(),
                    message: format!(
                        "table '{}' already exists in session {session_id}; choose another table_name, or drop_table it first",
                        t.name
                    ),
                });
                continue;
            }
            let name = naming::unique_name(&t.name, &mut taken);
            let mut notes = t.notes.clone();
            if name != t.name {
                notes.push(format!(
                    "named '{name}' because '{}' already exists in the session",
                    t.name
                ));
            }
            let rows = t.df.height() as u64;
            let width = t.df.width();
            let summary = format!(
                "Loaded {} rows × {width} columns from {file_name}{}",
                thousands(rows),
                if loaded.format.is_workbook() {
                    format!(" ({})", t.source)
                } else {
                    String::new()
                }
            );
            let mut params = json!({
                "file_path": path.display().to_string(),
                "source": t.source,
                "format": loaded.format,
                "sheets": req.sheets,
                "delimiter": req.delimiter,
                "encoding": req.encoding,
                "has_header": req.has_header,
                "skip_rows": req.skip_rows,
                "max_rows": req.max_rows,
                "null_values": req.null_values,
                "decimal_comma": req.decimal_comma,
            });
            // Only the options that were given: the history stays readable.
            if let Some(map) = params.as_object_mut() {
                map.retain(|_, v| !v.is_null());
            }
            let schema = column_list(&t.df, 40);
            let edit = Edit {
                df: t.df,
                meta: TableMeta::new(),
                op: OpRecord::new("initialize_data_table", params, summary),
            };
            match self.store().create_table(&session_id, &name, edit).await {
                Ok(_) => tables.push(LoadedTableInfo {
                    table: name,
                    source: t.source,
                    rows,
                    columns: width,
                    schema,
                    notes,
                }),
                Err(e) => problems.push(ProblemInfo {
                    source: t.source,
                    message: self.explain(e).await,
                }),
            }
        }
        if tables.is_empty() {
            let why: Vec<String> = problems
                .iter()
                .map(|p| format!("{}: {}", p.source, p.message))
                .collect();
            return fail(format!("nothing was loaded. {}", why.join("; ")));
        }
        let mut notes = loaded.notes.clone();
        if let Some(text) = &loaded.text {
            notes.push(format!(
                "read as {} text, delimiter '{}', {}",
                text.encoding,
                text.delimiter,
                if text.has_header {
                    "first row is the header"
                } else {
                    "no header row (columns are named column_1, column_2, …)"
                }
            ));
        }
        let mut text = format!(
            "Session `{session_id}`{}: loaded {} table{} from {file_name} ({}).\n",
            if created { " (new)" } else { "" },
            tables.len(),
            if tables.len() == 1 { "" } else { "s" },
            loaded.format.name()
        );
        for t in &tables {
            let cols: Vec<String> = t
                .schema
                .iter()
                .take(12)
                .map(|c| format!("{} ({})", c.name, c.dtype))
                .collect();
            text.push_str(&format!(
                "- `{}`: {} rows × {} columns: {}{}\n",
                t.table,
                thousands(t.rows),
                t.columns,
                cols.join(", "),
                if t.columns > 12 { ", …" } else { "" }
            ));
            for n in &t.notes {
                text.push_str(&format!("  - note: {n}\n"));
            }
        }
        for n in &notes {
            text.push_str(&format!("Note: {n}\n"));
        }
        for p in &problems {
            text.push_str(&format!("Problem with {}: {}\n", p.source, p.message));
        }
        text.push_str(&format!(
            "Next: get_table_summary or preview_rows with session_id \"{session_id}\" and table \"{}\".",
            tables[0].table
        ));
        let response = InitializeResponse {
            session_id,
            created_session: created,
            tables,
            problems,
            notes,
        };
        ok(text, &response, self.max_chars())
    }

    #[tool(
        description = "Look at a file without loading it: format (by content), size, text encoding, delimiter, header, decimal-comma columns and sample rows; for workbooks every sheet with its size, header row and columns. Use before loading a large or unusual file.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<InspectFileResponse>()
    )]
    async fn inspect_file(
        &self,
        Parameters(req): Parameters<InspectFileRequest>,
    ) -> CallToolResult {
        let path = match self.state.paths.check_read(&req.file_path) {
            Ok(p) => p,
            Err(e) => return fail(e.0),
        };
        let delimiter = match parse_delimiter(req.delimiter.as_deref()) {
            Ok(d) => d,
            Err(e) => return fail(e),
        };
        let options = LoadOptions {
            delimiter,
            encoding: req.encoding,
            has_header: req.has_header,
            skip_rows: req.skip_rows.unwrap_or(0),
            ..LoadOptions::default()
        };
        let limits = self.state.limits;
        let mut inspection = match self
            .store()
            .blocking(move || dfmcp_ingest::inspect(&path, &options, &limits))
            .await
        {
            Ok(Ok(i)) => i,
            Ok(Err(e)) => return fail(e.to_string()),
            Err(e) => return fail(e.to_string()),
        };
        // Bound what wide files show.
        const MAX_COLS: usize = 40;
        let mut text = format!(
            "{}: {} ({}).\n",
            inspection.path.display(),
            inspection.format_name,
            dfmcp_ingest::human_bytes(inspection.size_bytes)
        );
        if let Some(t) = inspection.text.as_mut() {
            let wide = t.columns.len() > MAX_COLS;
            t.columns.truncate(MAX_COLS);
            for row in &mut t.sample_rows {
                row.truncate(MAX_COLS);
                for cell in row.iter_mut() {
                    *cell = dfmcp_ops::values::cut(cell, 60);
                }
            }
            text.push_str(&format!(
                "Encoding {}, delimiter '{}', {}; about {} data rows.\n",
                t.encoding,
                t.delimiter,
                if t.has_header {
                    "header row found"
                } else {
                    "no header row"
                },
                thousands(t.estimated_rows)
            ));
            let headers = t.columns.clone();
            let rows: Vec<Vec<serde_json::Value>> = t
                .sample_rows
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|c| serde_json::Value::String(c.clone()))
                        .collect()
                })
                .collect();
            if !headers.is_empty() {
                text.push_str(&table(&headers, &rows));
            }
            if wide {
                text.push_str(&format!("(only the first {MAX_COLS} columns shown)\n"));
            }
        }
        for sheet in &mut inspection.sheets {
            let wide = sheet.columns.len() > MAX_COLS;
            sheet.columns.truncate(MAX_COLS);
            for row in &mut sheet.sample_rows {
                row.truncate(MAX_COLS);
            }
            match &sheet.problem {
                Some(p) => text.push_str(&format!("- sheet '{}': {p}\n", sheet.name)),
                None => text.push_str(&format!(
                    "- sheet '{}': {} rows × {}{} columns{}: {}\n",
                    sheet.name,
                    thousands(sheet.rows as u64),
                    sheet.columns.len(),
                    if wide { "+" } else { "" },
                    sheet
                        .header_row
                        .map(|r| format!(", header on row {r}"))
                        .unwrap_or_default(),
                    sheet.columns.join(", ")
                )),
            }
        }
        if let Some(rows) = inspection.rows {
            text.push_str(&format!("{} rows.\n", thousands(rows as u64)));
        }
        inspection.schema.truncate(200);
        if !inspection.schema.is_empty() {
            let cols: Vec<String> = inspection
                .schema
                .iter()
                .take(MAX_COLS)
                .map(|(n, t)| format!("{n} ({t})"))
                .collect();
            text.push_str(&format!("Columns: {}\n", cols.join(", ")));
        }
        for n in &inspection.notes {
            text.push_str(&format!("Note: {n}\n"));
        }
        let value = serde_json::to_value(&inspection).unwrap_or_default();
        ok(
            text,
            &InspectFileResponse {
                inspection: object(value),
            },
            self.max_chars(),
        )
    }

    #[tool(
        description = "List the live sessions (most recently used first) with their expiry.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<ListSessionsResponse>()
    )]
    async fn list_sessions(&self, Parameters(_): Parameters<Empty>) -> CallToolResult {
        let sessions = match self.store().list_sessions().await {
            Ok(s) => s,
            Err(e) => return fail(self.explain(e).await),
        };
        let total = sessions.len();
        let shown: Vec<SessionInfo> = sessions
            .iter()
            .take(100)
            .map(|s| SessionInfo {
                session_id: s.id.clone(),
                created: time(s.created_ms),
                last_access: time(s.last_access_ms),
                expires: time(s.expires_ms()),
            })
            .collect();
        let mut text = format!(
            "{total} live session{} ({}).\n",
            if total == 1 { "" } else { "s" },
            self.state.storage
        );
        for s in &shown {
            text.push_str(&format!(
                "- `{}`: last used {}, expires {}\n",
                s.session_id, s.last_access, s.expires
            ));
        }
        if total > shown.len() {
            text.push_str(&format!("(and {} more)\n", total - shown.len()));
        }
        ok(
            text,
            &ListSessionsResponse {
                sessions: shown,
                storage: self.state.storage.clone(),
            },
            self.max_chars(),
        )
    }

    #[tool(
        description = "List the tables of a session with their size, version and undo/redo depth.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<ListTablesResponse>()
    )]
    async fn list_tables(&self, Parameters(req): Parameters<SessionRequest>) -> CallToolResult {
        let tables = match self.store().list_tables(&req.session_id).await {
            Ok(t) => t,
            Err(e) => return fail(self.explain(e).await),
        };
        let listing: Vec<TableListing> = tables
            .into_iter()
            .map(|t| TableListing {
                table: t.name,
                rows: t.rows,
                columns: t.cols,
                version: t.version,
                undo_steps: t.undo_depth,
                redo_steps: t.redo_depth,
                last_change: t.last_summary,
            })
            .collect();
        let mut text = format!(
            "Session `{}` has {} table(s).\n",
            req.session_id,
            listing.len()
        );
        for t in &listing {
            text.push_str(&format!(
                "- `{}`: {} rows × {} columns, version {} ({} undo / {} redo steps); last: {}\n",
                t.table,
                thousands(t.rows),
                t.columns,
                t.version,
                t.undo_steps,
                t.redo_steps,
                t.last_change
            ));
        }
        ok(
            text,
            &ListTablesResponse {
                session_id: req.session_id,
                tables: listing,
            },
            self.max_chars(),
        )
    }

    #[tool(
        description = "Rename a table; its history and undo steps go with it.",
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false),
        output_schema = schema_for_output::<DoneResponse>()
    )]
    async fn rename_table(
        &self,
        Parameters(req): Parameters<RenameTableRequest>,
    ) -> CallToolResult {
        let new_name = match check_table_name(&req.new_name) {
            Ok(n) => n,
            Err(e) => return fail(e),
        };
        match self
            .store()
            .rename_table(&req.session_id, &req.table, &new_name)
            .await
        {
            Ok(()) => self.done(
                req.session_id,
                format!("Renamed table `{}` to `{new_name}`.", req.table),
            ),
            Err(e) => fail(self.explain(e).await),
        }
    }

    #[tool(
        description = "Drop a table and its history from the session. This cannot be undone.",
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<DoneResponse>()
    )]
    async fn drop_table(&self, Parameters(req): Parameters<TableRequest>) -> CallToolResult {
        match self.store().drop_table(&req.session_id, &req.table).await {
            Ok(()) => self.done(
                req.session_id,
                format!("Dropped table `{}` and its history.", req.table),
            ),
            Err(e) => fail(self.explain(e).await),
        }
    }

    #[tool(
        description = "Delete a session with all its tables and histories. This cannot be undone.",
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<DoneResponse>()
    )]
    async fn delete_session(&self, Parameters(req): Parameters<SessionRequest>) -> CallToolResult {
        match self.store().delete_session(&req.session_id).await {
            Ok(()) => {
                let message = format!("Deleted session `{}`.", req.session_id);
                self.done(req.session_id, message)
            }
            Err(e) => fail(self.explain(e).await),
        }
    }
}

impl DataFrameServer {
    /// The result of a tool whose whole answer is one sentence.
    fn done(&self, session_id: String, message: String) -> CallToolResult {
        ok(
            message.clone(),
            &DoneResponse {
                session_id,
                message,
            },
            self.max_chars(),
        )
    }

    /// The session to load into: the given one (created when new) or a
    /// fresh one. Returns its id and whether it was created.
    async fn target_session(&self, id: Option<&str>) -> Result<(String, bool), String> {
        let Some(id) = id else {
            return match self.store().create_session(None).await {
                Ok(meta) => Ok((meta.id, true)),
                Err(e) => Err(self.explain(e).await),
            };
        };
        match self.store().session(id).await {
            Ok(meta) => Ok((meta.id, false)),
            Err(StoreError::SessionNotFound { .. }) => {
                match self.store().open_session(id, true).await {
                    Ok(meta) => Ok((meta.id, true)),
                    Err(e) => Err(self.explain(e).await),
                }
            }
            Err(e) => Err(self.explain(e).await),
        }
    }

    async fn copy_tables(&self, req: InitializeRequest) -> CallToolResult {
        let source = req.source_session_id.clone().unwrap_or_default();
        let available = match self.store().list_tables(&source).await {
            Ok(t) => t,
            Err(e) => return fail(self.explain(e).await),
        };
        let wanted: Vec<String> = match &req.source_tables {
            Some(list) if !list.is_empty() => {
                for name in list {
                    if !available.iter().any(|t| &t.name == name) {
                        let names: Vec<&str> = available.iter().map(|t| t.name.as_str()).collect();
                        return fail(format!(
                            "table '{name}' not found in session {source}; tables: {}",
                            names.join(", ")
                        ));
                    }
                }
                list.clone()
            }
            _ => available.iter().map(|t| t.name.clone()).collect(),
        };
        if wanted.is_empty() {
            return fail(format!("session {source} has no tables to copy"));
        }
        let (session_id, created) = match self.target_session(req.session_id.as_deref()).await {
            Ok(found) => found,
            Err(text) => return fail(text),
        };
        let mut taken: HashSet<String> = match self.store().list_tables(&session_id).await {
            Ok(t) => t.into_iter().map(|t| t.name).collect(),
            Err(e) => return fail(self.explain(e).await),
        };
        let mut tables = Vec::new();
        let mut problems = Vec::new();
        for name in &wanted {
            let target = match (&req.table_name, wanted.len()) {
                (Some(n), 1) => n.clone(),
                _ => name.clone(),
            };
            let target = naming::unique_name(&target, &mut taken);
            match self
                .store()
                .copy_table(&source, name, &session_id, &target)
                .await
            {
                Ok(c) => {
                    let schema = match self.store().load(&session_id, &target).await {
                        Ok(l) => column_list(&l.df, 40),
                        Err(_) => Vec::new(),
                    };
                    tables.push(LoadedTableInfo {
                        table: target,
                        source: format!("session {source}, table {name}"),
                        rows: c.rows,
                        columns: c.cols as usize,
                        schema,
                        notes: vec![],
                    })
                }
                Err(e) => problems.push(ProblemInfo {
                    source: format!("table {name}"),
                    message: self.explain(e).await,
                }),
            }
        }
        let mut text = format!(
            "Session `{session_id}`{}: copied {} table(s) from session {source}.\n",
            if created { " (new)" } else { "" },
            tables.len()
        );
        for t in &tables {
            text.push_str(&format!(
                "- `{}`: {} rows × {} columns\n",
                t.table,
                thousands(t.rows),
                t.columns
            ));
        }
        for p in &problems {
            text.push_str(&format!("Problem with {}: {}\n", p.source, p.message));
        }
        if tables.is_empty() {
            return fail(text);
        }
        ok(
            text,
            &InitializeResponse {
                session_id,
                created_session: created,
                tables,
                problems,
                notes: vec![],
            },
            self.max_chars(),
        )
    }
}
