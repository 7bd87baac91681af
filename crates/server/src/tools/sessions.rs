//! Sessions and tables: load, inspect files, list, rename, drop, delete, and
//! the server's health.

use std::collections::HashSet;
use std::time::Instant;

use dfmcp_ingest::{LoadOptions, naming};
use dfmcp_storage::{Edit, Intent, OpRecord, StoreError, TableMeta};
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};
use serde_json::json;

use super::{check_table_name, column_list};
use crate::caller::Caller;
use crate::error::ToolError;
use crate::render::{thousands, time};
use crate::server::{DataFrameServer, check_request_id};
use crate::wire::*;

/// Sessions listed at most (the rest are counted).
const SESSION_LISTING: usize = 100;
/// Sessions counted at most.
pub(crate) const SESSION_COUNT: usize = 1000;

fn parse_delimiter(raw: Option<&str>) -> Result<Option<char>, ToolError> {
    let Some(raw) = raw else { return Ok(None) };
    let d = match raw {
        "\\t" | "\t" | "tab" | "TAB" => '\t',
        "comma" => ',',
        "semicolon" => ';',
        "pipe" => '|',
        s if s.chars().count() == 1 => s.chars().next().unwrap_or(','),
        other => {
            return Err(ToolError::invalid(format!(
                "delimiter must be one character (or \\t), got '{other}'"
            )));
        }
    };
    if !d.is_ascii() {
        return Err(ToolError::invalid(format!(
            "delimiter must be an ASCII character, got '{d}'"
        )));
    }
    Ok(Some(d))
}

/// A session id derived from a request id, so that a retried load without
/// session_id lands in the session its first attempt created.
fn session_for_request(request_id: &str) -> String {
    let hash = blake3::hash(format!("session:{request_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_bytes()[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

#[tool_router(router = session_tools, vis = "pub(crate)")]
impl DataFrameServer {
    #[tool(
        description = "Load a file (CSV/TSV/TXT in any dialect and encoding, Excel, ODS, Parquet, Arrow, JSON, NDJSON) into a session, a table per sheet; a new session unless session_id is given. Or copy tables from source_session_id. A bad sheet is reported; the others load.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn initialize_data_table(
        &self,
        Parameters(req): Parameters<InitializeRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        if let Some(name) = &req.table_name {
            check_table_name(name)?;
        }
        let loaded = match (&req.file_path, &req.source_session_id) {
            (Some(_), Some(_)) => {
                return Err(ToolError::invalid(
                    "give either file_path (load a file) or source_session_id (copy tables), not both",
                ));
            }
            (None, None) => {
                return Err(ToolError::invalid(
                    "give file_path: the path of a file to load (or source_session_id to copy tables from another session)",
                ));
            }
            (Some(_), None) => self.load_file(&caller, req).await?,
            (None, Some(_)) => self.copy_tables(&caller, req).await?,
        };
        Ok(self.reply(&loaded))
    }

    #[tool(
        description = "Look at a file without loading it: format, size, encoding, delimiter, header, decimal commas, sample rows; every sheet of a workbook. Use before loading a large or unusual file.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn inspect_file(
        &self,
        Parameters(req): Parameters<InspectFileRequest>,
    ) -> Result<CallToolResult, ToolError> {
        let inspection = self.inspect(req).await?;
        Ok(self.reply(&inspection))
    }

    #[tool(
        description = "List your live sessions (most recently used first) with their expiry.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn list_sessions(
        &self,
        Parameters(_): Parameters<Empty>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let sessions = self.sessions(&caller).await?;
        Ok(self.reply(&sessions))
    }

    #[tool(
        description = "List the tables of a session with their size, version and undo/redo depth.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn list_tables(
        &self,
        Parameters(req): Parameters<SessionRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let tables = self.tables(&caller, req).await?;
        Ok(self.reply(&tables))
    }

    #[tool(
        description = "Rename a table; its history and undo steps go with it.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn rename_table(
        &self,
        Parameters(req): Parameters<RenameTableRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let new_name = check_table_name(&req.new_name)?;
        let session = caller.stored(&req.target.session_id)?;
        let intent = self.intent(&caller, &req.write)?;
        self.store()
            .rename_table(&session, &req.target.table, &new_name, &intent)
            .await?;
        Ok(self.reply(&DoneResponse {
            message: format!("Renamed table `{}` to `{new_name}`.", req.target.table),
            session_id: req.target.session_id,
        }))
    }

    #[tool(
        description = "Drop a table and its history from the session. This cannot be undone.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn drop_table(
        &self,
        Parameters(req): Parameters<TableRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let session = caller.stored(&req.target.session_id)?;
        let intent = self.intent(&caller, &req.write)?;
        self.store()
            .drop_table(&session, &req.target.table, &intent)
            .await?;
        Ok(self.reply(&DoneResponse {
            message: format!("Dropped table `{}` and its history.", req.target.table),
            session_id: req.target.session_id,
        }))
    }

    #[tool(
        description = "Delete a session with all its tables and histories. This cannot be undone.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn delete_session(
        &self,
        Parameters(req): Parameters<SessionRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let session = caller.stored(&req.session_id)?;
        self.store().delete_session(&session).await?;
        Ok(self.reply(&DoneResponse {
            message: format!("Deleted session `{}`.", req.session_id),
            session_id: req.session_id,
        }))
    }

    #[tool(
        description = "The server's version, transport, storage (answering, round-trip time) and your session count.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn health(
        &self,
        Parameters(_): Parameters<Empty>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let health = self.check_health(Some(&caller)).await;
        Ok(self.reply(&health))
    }
}

impl DataFrameServer {
    /// The health facts the `health` tool (and, without a caller and so
    /// without a session count, `/readyz`) report.
    pub async fn check_health(&self, caller: Option<&Caller>) -> HealthResponse {
        let local = Caller::local();
        let counted = caller.is_some();
        let caller = caller.unwrap_or(&local);
        let started = Instant::now();
        // Without a caller there is nothing to count: one session listed is
        // enough to know the store answers.
        let listed = self
            .store()
            .list_sessions(&caller.namespace, if counted { SESSION_COUNT } else { 1 })
            .await;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        let (reachable, sessions, error) = match listed {
            Ok(s) => (true, s.len(), None),
            Err(e) => (false, 0, Some(ToolError::from(e).to_string())),
        };
        let degraded = !reachable || self.state.fallback.is_some();
        HealthResponse {
            status: if degraded { "degraded" } else { "ok" }.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            transport: self.state.transport.into(),
            storage: self.state.storage.clone(),
            store_reachable: reachable,
            store_round_trip_ms: reachable.then_some((elapsed * 10.0).round() / 10.0),
            sessions: counted.then_some(sessions),
            warning: self.state.fallback.clone(),
            error,
        }
    }

    /// The session to load into: the given one (created when new), the one a
    /// request id leads to, or a fresh one. Returns its stored id and whether
    /// it was created.
    pub(crate) async fn target_session(
        &self,
        caller: &Caller,
        id: Option<&str>,
        request_id: Option<&str>,
    ) -> Result<(String, bool), ToolError> {
        let id = match (id, request_id) {
            (Some(id), _) => caller.stored(id)?,
            (None, Some(request)) => caller.stored_unchecked(&session_for_request(request)),
            (None, None) => caller.stored_unchecked(&dfmcp_storage::new_session_id()),
        };
        let (meta, created) = self.store().open_session(&id, true).await?;
        Ok((meta.id, created))
    }

    async fn load_file(
        &self,
        caller: &Caller,
        req: InitializeRequest,
    ) -> Result<InitializeResponse, ToolError> {
        let opened = self
            .state
            .paths
            .open_read(req.file_path.as_deref().unwrap_or_default())?;
        let source = opened.source.clone();
        self.load_source(caller, req, source, Box::new(opened))
            .await
    }

    /// Loads a file named on the command line (`dataframe-mcp import`): the
    /// operator's own file, so no directory policy applies.
    pub(crate) async fn load_local(
        &self,
        caller: &Caller,
        path: &std::path::Path,
        req: InitializeRequest,
    ) -> Result<InitializeResponse, ToolError> {
        if let Some(name) = &req.table_name {
            check_table_name(name)?;
        }
        let path = std::fs::canonicalize(path)
            .map_err(|e| ToolError::invalid(format!("cannot open {}: {e}", path.display())))?;
        let source = dfmcp_ingest::Source::path(path);
        self.load_source(caller, req, source, Box::new(())).await
    }

    /// Loads a file uploaded over HTTP (kept in `file` until loaded) as
    /// `initialize_data_table` loads a path; `name` is the client's file name.
    pub(crate) async fn load_upload(
        &self,
        caller: &Caller,
        file: tempfile::NamedTempFile,
        name: &str,
        req: InitializeRequest,
    ) -> Result<InitializeResponse, ToolError> {
        if let Some(name) = &req.table_name {
            check_table_name(name)?;
        }
        let source = dfmcp_ingest::Source {
            read: file.path().to_path_buf(),
            shown: std::path::Path::new("/uploads").join(name),
        };
        self.load_source(caller, req, source, Box::new(file)).await
    }

    /// Loads `source` into the session `req` names; `keep` holds whatever
    /// keeps `source.read` readable (an open descriptor, a temporary file)
    /// until the load is done.
    async fn load_source(
        &self,
        caller: &Caller,
        req: InitializeRequest,
        source: dfmcp_ingest::Source,
        keep: Box<dyn std::any::Any + Send>,
    ) -> Result<InitializeResponse, ToolError> {
        let request_id = req
            .request_id
            .as_deref()
            .map(check_request_id)
            .transpose()?;
        let options = LoadOptions {
            table_name: req.table_name.clone(),
            sheets: req.sheets.clone(),
            delimiter: parse_delimiter(req.delimiter.as_deref())?,
            encoding: req.encoding.clone(),
            has_header: req.has_header,
            skip_rows: req.skip_rows.unwrap_or(0),
            max_rows: req.max_rows,
            null_values: req.null_values.clone(),
            decimal_comma: req.decimal_comma.unwrap_or(false),
        };
        let limits = self.state.ingest;
        let file_size = std::fs::metadata(&source.read)
            .map(|m| m.len())
            .unwrap_or(0);
        crate::progress::phase(format!(
            "reading {} ({})",
            source.shown.display(),
            crate::progress::size(file_size)
        ));
        let (session, created) = self
            .target_session(caller, req.session_id.as_deref(), request_id)
            .await?;
        let loaded = self
            .store()
            .compute(&session, move |_| {
                let _keep = keep;
                dfmcp_ingest::load(&source, &options, &limits)
            })
            .await??;
        let op_ids: Vec<String> = (0..loaded.tables.len())
            .map(|i| match request_id {
                Some(r) => format!("r:{r}/{i}"),
                None => format!("{}/{i}", dfmcp_storage::new_uid()),
            })
            .collect();
        let done = self.store().tables_with_ops(&session, &op_ids).await?;
        let mut taken: HashSet<String> = self
            .store()
            .list_tables(&session)
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect();
        let single = loaded.tables.len() == 1;
        let file_name = loaded
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut response = InitializeResponse {
            session_id: caller.shown(&session).to_string(),
            created_session: created,
            tables: Vec::new(),
            problems: loaded
                .problems
                .iter()
                .map(|p| ProblemInfo {
                    source: p.source.clone(),
                    message: p.message.clone(),
                })
                .collect(),
            notes: loaded.notes.clone(),
            already_applied: false,
            file_name: file_name.clone(),
            format: loaded.format.name().to_string(),
        };
        for (t, op_id) in loaded.tables.into_iter().zip(op_ids) {
            let (df, renamed) = dfmcp_ops::columns::quarantine(t.df);
            let mut notes = t.notes.clone();
            for (old, new) in renamed {
                notes.push(format!(
                    "column '{old}' was renamed to '{new}': names starting with '{}' are reserved",
                    dfmcp_ops::columns::MARK_PREFIX
                ));
            }
            let rows = df.height() as u64;
            let width = df.width();
            let schema = column_list(&df, 40);
            if let Some(existing) = done.get(&op_id) {
                response.already_applied = true;
                response.tables.push(LoadedTableInfo {
                    table: existing.name.clone(),
                    source: t.source,
                    rows: existing.rows,
                    columns: existing.cols as usize,
                    schema,
                    notes,
                });
                continue;
            }
            let explicit = single && req.table_name.is_some();
            if explicit && taken.contains(&t.name) {
                response.problems.push(ProblemInfo {
                    source: t.source.clone(),
                    message: format!(
                        "table '{}' already exists in session {}; choose another table_name, or drop_table it first",
                        t.name,
                        caller.shown(&session)
                    ),
                });
                continue;
            }
            let name = naming::unique_name(&t.name, &mut taken);
            if name != t.name {
                notes.push(format!(
                    "named '{name}' because '{}' already exists in the session",
                    t.name
                ));
            }
            crate::progress::phase(format!(
                "storing {} rows × {width} columns as table `{name}`",
                thousands(rows)
            ));
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
                "file_path": loaded.path.display().to_string(),
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
            let edit = Edit {
                df,
                meta: TableMeta::new(),
                op: OpRecord::new("initialize_data_table", params, summary),
            };
            let intent = Intent::with_op_id(op_id).by(caller.actor.clone());
            match self
                .store()
                .create_table(&session, &name, edit, &intent)
                .await
            {
                Ok(_) => response.tables.push(LoadedTableInfo {
                    table: name,
                    source: t.source,
                    rows,
                    columns: width,
                    schema,
                    notes,
                }),
                Err(e) => response.problems.push(ProblemInfo {
                    source: t.source,
                    message: ToolError::from(e).to_string(),
                }),
            }
        }
        if response.tables.is_empty() {
            let why: Vec<String> = response
                .problems
                .iter()
                .map(|p| format!("{}: {}", p.source, p.message))
                .collect();
            return Err(ToolError::invalid(format!(
                "nothing was loaded. {}",
                why.join("; ")
            )));
        }
        if let Some(text) = &loaded.text {
            response.notes.push(format!(
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
        Ok(response)
    }

    async fn copy_tables(
        &self,
        caller: &Caller,
        req: InitializeRequest,
    ) -> Result<InitializeResponse, ToolError> {
        let source_shown = req.source_session_id.clone().unwrap_or_default();
        let source = caller.stored(&source_shown)?;
        let request_id = req
            .request_id
            .as_deref()
            .map(check_request_id)
            .transpose()?;
        let available = self.store().list_tables(&source).await?;
        let wanted: Vec<String> = match &req.source_tables {
            Some(list) if !list.is_empty() => {
                for name in list {
                    if !available.iter().any(|t| &t.name == name) {
                        return Err(StoreError::TableNotFound {
                            session: source.clone(),
                            name: name.clone(),
                            existing: available.iter().map(|t| t.name.clone()).collect(),
                        }
                        .into());
                    }
                }
                list.clone()
            }
            _ => available.iter().map(|t| t.name.clone()).collect(),
        };
        if wanted.is_empty() {
            return Err(ToolError::invalid(format!(
                "session {source_shown} has no tables to copy"
            )));
        }
        let (session, created) = self
            .target_session(caller, req.session_id.as_deref(), request_id)
            .await?;
        let op_ids: Vec<String> = (0..wanted.len())
            .map(|i| match request_id {
                Some(r) => format!("r:{r}/{i}"),
                None => format!("{}/{i}", dfmcp_storage::new_uid()),
            })
            .collect();
        let done = self.store().tables_with_ops(&session, &op_ids).await?;
        let mut taken: HashSet<String> = self
            .store()
            .list_tables(&session)
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect();
        let mut response = InitializeResponse {
            session_id: caller.shown(&session).to_string(),
            created_session: created,
            tables: Vec::new(),
            problems: Vec::new(),
            notes: Vec::new(),
            already_applied: false,
            file_name: String::new(),
            format: String::new(),
        };
        for (name, op_id) in wanted.iter().zip(op_ids) {
            let from = format!("session {source_shown}, table {name}");
            if let Some(existing) = done.get(&op_id) {
                response.already_applied = true;
                response.tables.push(LoadedTableInfo {
                    table: existing.name.clone(),
                    source: from,
                    rows: existing.rows,
                    columns: existing.cols as usize,
                    schema: Vec::new(),
                    notes: vec![],
                });
                continue;
            }
            let target = match (&req.table_name, wanted.len()) {
                (Some(n), 1) => n.clone(),
                _ => name.clone(),
            };
            let target = naming::unique_name(&target, &mut taken);
            let intent = Intent::with_op_id(op_id).by(caller.actor.clone());
            match self
                .store()
                .copy_table(&source, name, &session, &target, &intent)
                .await
            {
                Ok(c) => {
                    let schema = match self.store().load(&session, &target).await {
                        Ok(l) => column_list(&l.df, 40),
                        Err(_) => Vec::new(),
                    };
                    response.tables.push(LoadedTableInfo {
                        table: target,
                        source: from,
                        rows: c.rows,
                        columns: c.cols as usize,
                        schema,
                        notes: vec![],
                    })
                }
                Err(e) => response.problems.push(ProblemInfo {
                    source: format!("table {name}"),
                    message: ToolError::from(e).to_string(),
                }),
            }
        }
        if response.tables.is_empty() {
            let why: Vec<String> = response
                .problems
                .iter()
                .map(|p| format!("{}: {}", p.source, p.message))
                .collect();
            return Err(ToolError::invalid(format!(
                "nothing was copied. {}",
                why.join("; ")
            )));
        }
        Ok(response)
    }

    async fn inspect(&self, req: InspectFileRequest) -> Result<InspectFileResponse, ToolError> {
        let opened = self.state.paths.open_read(&req.file_path)?;
        let options = LoadOptions {
            delimiter: parse_delimiter(req.delimiter.as_deref())?,
            encoding: req.encoding,
            has_header: req.has_header,
            skip_rows: req.skip_rows.unwrap_or(0),
            ..LoadOptions::default()
        };
        let limits = self.state.ingest;
        let source = opened.source.clone();
        let inspection = self
            .store()
            .blocking(move || {
                let _file = opened;
                dfmcp_ingest::inspect(&source, &options, &limits)
            })
            .await??;
        // Bound what wide files show.
        const MAX_COLS: usize = 40;
        let cut_rows = |rows: Vec<Vec<String>>| -> Vec<Vec<String>> {
            rows.into_iter()
                .map(|r| {
                    r.into_iter()
                        .take(MAX_COLS)
                        .map(|c| dfmcp_ops::values::cut(&c, 60))
                        .collect()
                })
                .collect()
        };
        let mut notes = inspection.notes;
        let text = inspection.text.map(|t| {
            if t.columns.len() > MAX_COLS {
                notes.push(format!(
                    "only the first {MAX_COLS} of {} columns are shown",
                    t.columns.len()
                ));
            }
            TextLayout {
                encoding: t.encoding,
                delimiter: t.delimiter,
                has_header: t.has_header,
                columns: t.columns.into_iter().take(MAX_COLS).collect(),
                sample_rows: cut_rows(t.sample_rows),
                ragged_lines: t.ragged_lines,
                decimal_comma_columns: t.decimal_comma_columns,
                estimated_rows: t.estimated_rows,
            }
        });
        Ok(InspectFileResponse {
            path: inspection.path.display().to_string(),
            format: inspection.format_name.to_string(),
            size_bytes: inspection.size_bytes,
            text,
            sheets: inspection
                .sheets
                .into_iter()
                .map(|s| SheetLayout {
                    name: s.name,
                    rows: s.rows,
                    columns: s.columns.into_iter().take(MAX_COLS).collect(),
                    header_row: s.header_row,
                    sample_rows: cut_rows(s.sample_rows),
                    problem: s.problem,
                })
                .collect(),
            rows: inspection.rows,
            schema: inspection
                .schema
                .into_iter()
                .take(200)
                .map(|(name, dtype)| ColumnInfo { name, dtype })
                .collect(),
            notes,
        })
    }

    async fn sessions(&self, caller: &Caller) -> Result<ListSessionsResponse, ToolError> {
        let sessions = self
            .store()
            .list_sessions(&caller.namespace, SESSION_COUNT)
            .await?;
        let shown: Vec<SessionInfo> = sessions
            .iter()
            .take(SESSION_LISTING)
            .map(|s| SessionInfo {
                session_id: caller.shown_meta(s),
                created: time(s.created_ms),
                last_access: time(s.last_access_ms),
                expires: time(s.expires_ms()),
            })
            .collect();
        Ok(ListSessionsResponse {
            omitted: sessions.len() - shown.len(),
            sessions: shown,
            storage: self.state.storage.clone(),
            warning: self.state.fallback.clone(),
        })
    }

    async fn tables(
        &self,
        caller: &Caller,
        req: SessionRequest,
    ) -> Result<ListTablesResponse, ToolError> {
        let session = caller.stored(&req.session_id)?;
        let tables = self.store().list_tables(&session).await?;
        Ok(ListTablesResponse {
            session_id: req.session_id,
            tables: tables
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
                .collect(),
        })
    }
}
