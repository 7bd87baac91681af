//! The MCP server: shared state, the tool router, and the `ServerHandler`.

use std::sync::Arc;
use std::time::Duration;

use dfmcp_ingest::Limits;
use dfmcp_ops::sql::QueryLimits;
use dfmcp_storage::{Intent, Store, new_uid};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult,
    ContentBlock, GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
    SubscribeRequestParams, SubscriptionFilter, Tool, UnsubscribeRequestParams,
};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};

use crate::caller::{Caller, Principal};
use crate::error::ToolError;
use crate::paths::PathPolicy;
use crate::render::{Render, respond};
use crate::resources::TableUri;
use crate::watch::{Notify, Watcher};
use crate::wire::WriteOpts;

/// What every tool call shares.
pub struct AppState {
    pub store: Store,
    pub paths: PathPolicy,
    pub ingest: Limits,
    pub query: QueryLimits,
    /// Upper bound of one result, in characters.
    pub max_chars: usize,
    pub use_client_roots: bool,
    /// Human description of the storage, for list_sessions and health.
    pub storage: String,
    /// Set when running on a fallback store: said in every result.
    pub fallback: Option<String>,
    /// "stdio" or "http".
    pub transport: &'static str,
    /// The public base URL of download links over HTTP (default: from the
    /// request's Host).
    pub public_url: Option<String>,
    /// Column summaries remembered by content.
    pub summaries: Arc<crate::summaries::SummaryCache>,
    /// Only reading tools (and loading) are offered.
    pub read_only: bool,
}

/// Which tools a server offers.
#[derive(Debug, Default, Clone)]
pub struct ToolSelection {
    pub read_only: bool,
    /// When not empty, only these.
    pub only: Vec<String>,
    pub exclude: Vec<String>,
}

/// Tools a read-only server offers besides those annotated read-only:
/// loading files into a session, and SQL (whose save_as it refuses).
const READ_ONLY_EXTRAS: &[&str] = &["initialize_data_table", "query_sql"];

/// The base URL of download links for one call: set over HTTP only.
#[derive(Debug, Clone, Default)]
pub struct BaseUrl(pub Option<String>);

#[derive(Clone)]
pub struct DataFrameServer {
    pub(crate) state: Arc<AppState>,
    tool_router: ToolRouter<Self>,
    /// Resource subscriptions of this process.
    watcher: Watcher,
    /// The least severe log notification the client wants (logging/setLevel).
    log: crate::logs::ClientLog,
    /// Tasks running in this process.
    pub(crate) tasks: crate::tasks::LocalTasks,
}

const INSTRUCTIONS: &str = "Load tabular files into named sessions, then inspect, clean and transform them. \
Start with inspect_file (for odd or large files) or initialize_data_table, which returns a session_id and table names; \
pass both to every other tool. Inspect with get_table_summary, preview_rows, value_counts, plot; \
check quality with find_outliers, find_duplicates, validate (they change nothing). \
Every change (fill_missing, clean_text, parse_dates, cast_columns, filter_rows, …) makes a new version: \
undo/redo move between versions and get_history lists them. Each change answers with the same fields: \
summary, version, changed (false: nothing to change, no version made), rows/columns before and after, details. \
group_aggregate, pivot, unpivot and join_tables save their result as a new table (save_as). \
Pass expected_version to change a table only if nobody else did, and request_id to make a retry safe. \
export_recipe/apply_recipe replay a table's changes on another table. query_sql runs SELECT over the session's tables; \
export_table writes a table to a file. Sessions persist across restarts until idle for the configured TTL.";

/// A human title per tool, shown by clients beside the name.
const TITLES: &[(&str, &str)] = &[
    ("initialize_data_table", "Load a file into a session"),
    ("inspect_file", "Inspect a file before loading"),
    ("list_sessions", "List sessions"),
    ("list_tables", "List a session's tables"),
    ("rename_table", "Rename a table"),
    ("drop_table", "Drop a table"),
    ("delete_session", "Delete a session"),
    ("health", "Server health"),
    ("get_table_summary", "Summarise a table"),
    ("preview_rows", "Preview rows"),
    ("value_counts", "Count a column's values"),
    ("fill_missing", "Fill missing values"),
    ("drop_missing", "Drop rows with missing values"),
    ("drop_duplicates", "Drop duplicate rows"),
    (
        "mark_intentional_missing",
        "Mark missing values as intentional",
    ),
    ("rename_columns", "Rename columns"),
    ("drop_columns", "Drop columns"),
    ("cast_columns", "Change column types"),
    ("filter_rows", "Keep rows matching a condition"),
    ("sort_rows", "Sort rows"),
    ("add_column", "Add a computed column"),
    ("clean_text", "Clean text"),
    ("parse_dates", "Read dates from text"),
    ("split_column", "Split a column"),
    ("merge_columns", "Merge columns"),
    ("find_outliers", "Find outliers"),
    ("find_duplicates", "Find near-duplicate values"),
    ("merge_duplicates", "Merge near-duplicate values"),
    ("validate", "Validate with rules"),
    ("group_aggregate", "Group and aggregate"),
    ("pivot", "Pivot"),
    ("unpivot", "Unpivot"),
    ("join_tables", "Join two tables"),
    ("plot", "Chart as an image"),
    ("update_column", "Set a column's values"),
    ("undo", "Undo changes"),
    ("redo", "Redo changes"),
    ("get_history", "Show a table's history"),
    ("export_recipe", "Export a table's operations as a recipe"),
    ("apply_recipe", "Replay a recipe on a table"),
    ("query_sql", "Query with SQL"),
    ("export_table", "Export a table to a file"),
];

/// The server's icon: a small table, inline so it needs no web server.
const ICON: &str = "data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHZpZXdCb3g9IjAgMCAxNiAxNiI+PHJlY3QgeD0iMSIgeT0iMiIgd2lkdGg9IjE0IiBoZWlnaHQ9IjEyIiByeD0iMSIgZmlsbD0ibm9uZSIgc3Ryb2tlPSIjMzM2IiBzdHJva2Utd2lkdGg9IjEuNSIvPjxwYXRoIGQ9Ik0xIDZoMTRNMSAxMGgxNE02IDJ2MTIiIHN0cm9rZT0iIzMzNiIgc3Ryb2tlLXdpZHRoPSIxLjUiLz48L3N2Zz4=";

/// Most request ids are UUIDs; anything printable up to this length is accepted.
const MAX_REQUEST_ID: usize = 128;

impl DataFrameServer {
    pub fn new(state: AppState) -> Self {
        let mut tool_router = Self::session_tools()
            + Self::inspect_tools()
            + Self::clean_tools()
            + Self::history_tools()
            + Self::recipe_tools()
            + Self::quality_tools()
            + Self::shape_tools()
            + Self::plot_tools()
            + Self::query_tools();
        for route in tool_router.map.values_mut() {
            let tool = &mut route.attr;
            if let Some((_, title)) = TITLES.iter().find(|(name, _)| *name == tool.name) {
                tool.title = Some((*title).to_string());
            }
            tool.input_schema = Arc::new(portable(tool.input_schema.as_ref().clone()));
            // Hints equal to the protocol's defaults (not read-only, not
            // idempotent) say nothing.
            if let Some(a) = tool.annotations.as_mut() {
                if a.read_only_hint == Some(false) {
                    a.read_only_hint = None;
                }
                if a.idempotent_hint == Some(false) {
                    a.idempotent_hint = None;
                }
            }
            if let Some(output) = &tool.output_schema {
                tool.output_schema =
                    Some(Arc::new(lean_output(&portable(output.as_ref().clone()))));
            }
        }
        DataFrameServer {
            state: Arc::new(state),
            tool_router,
            watcher: Watcher::default(),
            log: Default::default(),
            tasks: Default::default(),
        }
    }

    /// Keeps only the selected tools; an unknown name is an error that lists
    /// the known ones.
    pub fn select_tools(mut self, selection: &ToolSelection) -> Result<Self, String> {
        let known: Vec<String> = {
            let mut names: Vec<String> =
                self.tool_router.map.keys().map(|k| k.to_string()).collect();
            names.sort();
            names
        };
        for name in selection.only.iter().chain(&selection.exclude) {
            if !known.contains(name) {
                return Err(format!(
                    "unknown tool '{name}' in --tools/--exclude-tools; the tools are: {}",
                    known.join(", ")
                ));
            }
        }
        self.tool_router.map.retain(|name, route| {
            let reads = route
                .attr
                .annotations
                .as_ref()
                .and_then(|a| a.read_only_hint)
                .unwrap_or(false);
            (!selection.read_only || reads || READ_ONLY_EXTRAS.contains(&name.as_ref()))
                && (selection.only.is_empty() || selection.only.iter().any(|o| o == name.as_ref()))
                && !selection.exclude.iter().any(|e| e == name.as_ref())
        });
        Ok(self)
    }

    pub(crate) fn store(&self) -> &Store {
        &self.state.store
    }

    /// A successful result of `data`, bounded, with the fallback warning.
    pub(crate) fn reply<T: Render>(&self, data: &T) -> CallToolResult {
        respond(data, self.state.max_chars, self.state.fallback.as_deref())
    }

    /// The store intent of a change: its idempotency key (the client's
    /// request id, or a fresh one), version guard and actor.
    pub(crate) fn intent(&self, caller: &Caller, write: &WriteOpts) -> Result<Intent, ToolError> {
        let op_id = match &write.request_id {
            Some(id) => format!("r:{}", check_request_id(id)?),
            None => new_uid(),
        };
        Ok(Intent::with_op_id(op_id)
            .expecting(write.expected_version)
            .by(caller.actor.clone()))
    }

    // Roots are deprecated by SEP-2577, but today's clients (Claude Code,
    // Claude Desktop) still offer them and users expect their project folders
    // to be readable without extra flags.
    #[allow(deprecated)]
    async fn refresh_roots(&self, peer: rmcp::Peer<RoleServer>) {
        if !self.state.use_client_roots {
            return;
        }
        let supports = peer
            .peer_info()
            .is_some_and(|info| info.capabilities.roots.is_some());
        if !supports {
            return;
        }
        match tokio::time::timeout(Duration::from_secs(10), peer.list_roots()).await {
            Ok(Ok(result)) => {
                let dirs = result
                    .roots
                    .iter()
                    .filter_map(|r| url::Url::parse(&r.uri).ok())
                    .filter_map(|u| u.to_file_path().ok())
                    .collect();
                self.state.paths.set_client_roots(dirs);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "listing client roots failed"),
            Err(_) => tracing::warn!("the client did not answer roots/list within 10 s"),
        }
    }
}

impl DataFrameServer {
    /// A tool call (in a task or not): routed, cancellable, its result
    /// bounded, scrubbed of stored ids and linked to the tables it names.
    pub(crate) async fn run_call(
        &self,
        request: CallToolRequestParams,
        mut context: RequestContext<RoleServer>,
        caller: Caller,
    ) -> Result<CallToolResponse, ErrorData> {
        let base = base_url(&context, self.state.public_url.as_deref());
        context.extensions.insert(caller.clone());
        context.extensions.insert(base);
        // Clients cut a call off after a while unless progress arrives: a
        // caller that asked for progress hears at the start and every second
        // until the call ends (or is dropped).
        let phase = context
            .extensions
            .get::<crate::progress::Phase>()
            .cloned()
            .unwrap_or_default();
        let _progress = context.meta.get_progress_token().map(|token| {
            crate::progress::Progress::start(
                context.peer.clone(),
                token,
                request.name.to_string(),
                phase.clone(),
            )
        });
        let cancelled = context.ct.clone();
        let peer = context.peer.clone();
        let tool = request.name.to_string();
        let schema = self
            .tool_router
            .map
            .get(tool.as_str())
            .map(|route| route.attr.input_schema.clone());
        let mut request = request;
        if let (Some(schema), Some(args)) = (&schema, request.arguments.as_mut()) {
            crate::arguments::accept_shorthands(schema, args);
        }
        let arguments = request.arguments.clone().unwrap_or_default();
        let call = ToolCallContext::new(self, request, context);
        // On notifications/cancelled the call is dropped: compute jobs it
        // waits on see their cancel flag, and what was not committed yet
        // never is.
        let outcome = tokio::select! {
            biased;
            () = cancelled.cancelled() => None,
            outcome = phase.scope(self.tool_router.call(call)) => Some(outcome),
        };
        let Some(outcome) = outcome else {
            tracing::info!(tool, "call cancelled by the client");
            return Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "{tool} was cancelled; whatever it had not committed yet was not committed (get_history shows the table's versions)"
            ))])
            .into());
        };
        let mut response = outcome.map_err(|mut e| {
            e.message = caller.scrub(&e.message).into();
            e
        })?;
        if let CallToolResponse::Complete(result) = &mut response {
            let failed = result.is_error == Some(true);
            for block in &mut result.content {
                if let Some(text) = block.as_text() {
                    let fixed = explain_argument_error(&text.text)
                        .filter(|_| failed)
                        .map(|generic| {
                            schema
                                .as_ref()
                                .and_then(|schema| {
                                    crate::arguments::diagnose(&tool, schema, &arguments)
                                })
                                .unwrap_or(generic)
                        })
                        .unwrap_or_else(|| caller.scrub(&text.text));
                    if fixed != text.text {
                        *block = ContentBlock::text(fixed);
                    }
                }
            }
            // Stored ids never reach a caller, in errors or in results.
            if let Some(structured) = &mut result.structured_content {
                caller.scrub_json(structured);
                link_tables(result);
            }
            if let Some(structured) = &result.structured_content {
                self.log_warnings(&peer, &tool, structured).await;
            }
        }
        Ok(response)
    }

    /// The stored session and table of a URI a client subscribes to: one of
    /// the caller's tables, which must exist now.
    async fn subscribable(
        &self,
        caller: &Caller,
        uri: &str,
    ) -> Result<(String, String), ErrorData> {
        if self.state.transport != "stdio" {
            return Err(ErrorData::invalid_params(
                "subscriptions need a connection the server can write to: use stdio (over HTTP, poll the resource or list_tables)",
                None,
            ));
        }
        let parsed = TableUri::parse(uri).ok_or_else(|| not_a_resource(uri))?;
        let session = caller
            .stored(&parsed.session_id)
            .map_err(|e| resource_error(caller, e))?;
        self.store()
            .table_state(&session, &parsed.table)
            .await
            .map_err(|e| resource_error(caller, e.into()))?;
        Ok((session, parsed.table))
    }

    /// Problems a tool met on the way (a sheet that could not be read, a
    /// fallback store) as log notifications, for clients that show them.
    async fn log_warnings(
        &self,
        peer: &rmcp::Peer<RoleServer>,
        tool: &str,
        structured: &serde_json::Value,
    ) {
        let mut messages: Vec<String> = structured
            .get("problems")
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let message = p.get("message")?.as_str()?;
                let source = p.get("source").and_then(|s| s.as_str()).unwrap_or("");
                Some(if source.is_empty() {
                    message.to_string()
                } else {
                    format!("{source}: {message}")
                })
            })
            .take(20)
            .collect();
        if let Some(warning) = structured.get("warning").and_then(|w| w.as_str()) {
            messages.push(warning.to_string());
        }
        self.log.warn(peer, tool, messages).await;
    }
}

fn not_a_resource(uri: &str) -> ErrorData {
    ErrorData::resource_not_found(
        format!(
            "'{uri}' is not a resource of this server: tables are {} and {}",
            crate::resources::TABLE_TEMPLATE,
            crate::resources::HISTORY_TEMPLATE
        ),
        None,
    )
}

fn resource_error(caller: &Caller, e: ToolError) -> ErrorData {
    let message = caller.scrub(&e.to_string());
    match e {
        ToolError::Store(
            dfmcp_storage::StoreError::SessionNotFound { .. }
            | dfmcp_storage::StoreError::TableNotFound { .. },
        ) => ErrorData::resource_not_found(message, None),
        ToolError::Invalid(_) => ErrorData::invalid_params(message, None),
        _ => ErrorData::internal_error(message, None),
    }
}

/// Results that name one table (a session_id and a table) carry a link to
/// its resource; loads link every table they made.
fn link_tables(result: &mut CallToolResult) {
    let Some(structured) = &result.structured_content else {
        return;
    };
    let Some(session) = structured.get("session_id").and_then(|s| s.as_str()) else {
        return;
    };
    let mut links = Vec::new();
    let size = |v: &serde_json::Value, key: &str| v.get(key).and_then(|x| x.as_u64());
    if let Some(table) = structured.get("table").and_then(|t| t.as_str()) {
        let rows = size(structured, "rows").unwrap_or(0);
        let cols = size(structured, "columns").unwrap_or(0);
        if rows > 0 || cols > 0 {
            links.push(crate::resources::table_link(session, table, rows, cols));
        } else {
            links.push(
                rmcp::model::Resource::new(
                    TableUri::table(session, table).uri(),
                    format!("{session}/{table}"),
                )
                .with_mime_type("text/markdown"),
            );
        }
    } else if let Some(tables) = structured.get("tables").and_then(|t| t.as_array()) {
        for t in tables.iter().take(20) {
            if let Some(name) = t.get("table").and_then(|n| n.as_str()) {
                let rows = size(t, "rows").unwrap_or(0);
                let cols = size(t, "columns").unwrap_or(0);
                links.push(crate::resources::table_link(session, name, rows, cols));
            }
        }
    }
    result
        .content
        .extend(links.into_iter().map(ContentBlock::resource_link));
}

pub(crate) fn check_request_id(id: &str) -> Result<&str, ToolError> {
    if id.is_empty() || id.len() > MAX_REQUEST_ID || id.chars().any(char::is_control) {
        return Err(ToolError::invalid(format!(
            "request_id must be 1 to {MAX_REQUEST_ID} printable characters (a UUID is a good choice)"
        )));
    }
    Ok(id)
}

/// The caller of a request: the principal the HTTP layer authenticated, or
/// the one local caller of a stdio server.
fn caller_of(context: &RequestContext<RoleServer>) -> Caller {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Principal>())
        .or_else(|| context.extensions.get::<Principal>())
        .map(|p| Caller::principal(&p.0))
        .unwrap_or_else(Caller::local)
}

/// Where this call's client reaches the server: the configured public URL,
/// or the scheme and Host the request came with.
fn base_url(context: &RequestContext<RoleServer>, public: Option<&str>) -> BaseUrl {
    let Some(parts) = context.extensions.get::<http::request::Parts>() else {
        return BaseUrl(None);
    };
    if let Some(public) = public {
        return BaseUrl(Some(public.trim_end_matches('/').to_string()));
    }
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let scheme = header("x-forwarded-proto")
        .filter(|p| p == "https" || p == "http")
        .unwrap_or_else(|| "http".into());
    // The Host was checked against the allowed hosts; X-Forwarded-Host
    // would not be (give --public-url behind a proxy that rewrites it).
    let host = header("host").unwrap_or_else(|| "localhost".into());
    BaseUrl(Some(format!("{scheme}://{host}")))
}

/// Arguments that did not match a tool's schema: say so in the terms of the
/// schema, not of the server's Rust types.
fn explain_argument_error(text: &str) -> Option<String> {
    let detail = text
        .strip_prefix("failed to deserialize parameters:")?
        .trim();
    let detail = detail
        .split(", expected struct ")
        .next()
        .unwrap_or(detail)
        .replace(
            "data did not match any variant of untagged enum SortKeyWire",
            "a sort key must be a column name or {\"column\": \"name\", \"descending\": true}",
        );
    Some(format!(
        "the arguments do not match this tool's input schema: {detail}. Check the field names and types in the tool's schema and call it again."
    ))
}

/// The top level of an output schema: each field with its JSON type, no
/// prose, no nested shapes and no list of required fields. The text result already explains the fields;
/// the schema tells a client what structured content to expect at the cost
/// of a few tokens, where the full generated schemas were half of
/// `tools/list`.
fn lean_output(schema: &rmcp::model::JsonObject) -> rmcp::model::JsonObject {
    use serde_json::{Map, Value};
    let json_type = |field: &Value| -> Option<Value> {
        if let Some(t) = field.get("type") {
            return Some(t.clone());
        }
        if field.get("$ref").is_some() || field.get("allOf").is_some() {
            return Some("object".into());
        }
        None
    };
    let mut properties = Map::new();
    if let Some(Value::Object(fields)) = schema.get("properties") {
        for (name, field) in fields {
            let mut lean = Map::new();
            if let Some(t) = json_type(field) {
                lean.insert("type".into(), t);
            }
            properties.insert(name.clone(), Value::Object(lean));
        }
    }
    let mut out = Map::new();
    out.insert("type".into(), "object".into());
    out.insert("properties".into(), Value::Object(properties));
    out
}

/// Rewrites a generated schema into the most portable spelling: an optional
/// field is `{"type": "integer"}` (absent when unset), not
/// `{"type": ["integer", "null"]}` nor `anyOf [X, null]`, which clients that
/// map schemas onto single-type dialects (OpenAPI subsets) reject. Arguments
/// sent as `null` are still accepted: `Option` fields read them as unset.
fn portable(mut schema: rmcp::model::JsonObject) -> rmcp::model::JsonObject {
    use serde_json::Value;
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                if let Some(Value::Array(types)) = map.get("type") {
                    let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                    if kept.len() == 1 && kept.len() < types.len() {
                        map.insert("type".into(), kept[0].clone());
                    }
                }
                // An empty default (null, false, "", []) is what an absent
                // field means anyway.
                let empty = match map.get("default") {
                    Some(Value::Null) | Some(Value::Bool(false)) => true,
                    Some(Value::String(s)) => s.is_empty(),
                    Some(Value::Array(a)) => a.is_empty(),
                    _ => false,
                };
                if empty {
                    map.remove("default");
                }
                let collapse = match map.get("anyOf") {
                    Some(Value::Array(branches)) if branches.len() == 2 => {
                        let non_null: Vec<&Value> = branches
                            .iter()
                            .filter(|b| b.get("type") != Some(&Value::from("null")))
                            .collect();
                        (non_null.len() == 1).then(|| non_null[0].clone())
                    }
                    _ => None,
                };
                if let Some(Value::Object(branch)) = collapse {
                    map.remove("anyOf");
                    for (k, v) in branch {
                        map.entry(k).or_insert(v);
                    }
                }
                // A choice of strings is an enum; per-variant prose is said
                // once in the field's or the tool's description.
                let consts = match map.get("oneOf") {
                    Some(Value::Array(branches)) => branches
                        .iter()
                        .map(|b| {
                            b.get("const").cloned().or_else(|| match b.get("enum") {
                                Some(Value::Array(e)) if e.len() == 1 => Some(e[0].clone()),
                                _ => None,
                            })
                        })
                        .collect::<Option<Vec<Value>>>(),
                    _ => None,
                };
                if let Some(values) = consts {
                    map.remove("oneOf");
                    map.insert("type".into(), "string".into());
                    map.insert("enum".into(), Value::Array(values));
                }
                // schemars' integer formats (uint64, uint32, …) are not JSON
                // Schema formats; `minimum` already says what matters.
                if map.get("type") == Some(&Value::from("integer"))
                    || map.get("type") == Some(&Value::from("number"))
                {
                    map.remove("format");
                }
                for v in map.values_mut() {
                    walk(v);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    // Every tool's schema is the same dialect; saying so 25 times costs
    // 1,500 characters of tools/list.
    schema.remove("$schema");
    // Definitions used by reference are written in place: a name and a
    // pointer per use cost more than they save in schemas this small.
    if let Some(Value::Object(defs)) = schema.remove("$defs") {
        fn inline(value: &mut Value, defs: &serde_json::Map<String, Value>, depth: usize) {
            match value {
                Value::Object(map) => {
                    let target = map
                        .get("$ref")
                        .and_then(Value::as_str)
                        .and_then(|r| r.strip_prefix("#/$defs/"))
                        .and_then(|name| defs.get(name))
                        .filter(|_| depth < 8)
                        .cloned();
                    if let Some(Value::Object(def)) = target {
                        map.remove("$ref");
                        for (k, v) in def {
                            map.entry(k).or_insert(v);
                        }
                    }
                    for v in map.values_mut() {
                        inline(v, defs, depth + 1);
                    }
                }
                Value::Array(items) => items.iter_mut().for_each(|v| inline(v, defs, depth + 1)),
                _ => {}
            }
        }
        for v in schema.values_mut() {
            inline(v, &defs, 0);
        }
    }
    for v in schema.values_mut() {
        walk(v);
    }
    schema
}

impl ServerHandler for DataFrameServer {
    // Logging is deprecated by SEP-2577, yet clients of every earlier
    // revision still show log notifications to the user.
    #[allow(deprecated)]
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_completions()
            .enable_prompts()
            .enable_resources();
        // Updates need a channel back to the client: stdio has one; the
        // stateless HTTP service answers each POST on its own.
        let capabilities = if self.state.transport == "stdio" {
            capabilities.enable_resources_subscribe()
        } else {
            capabilities
        };
        ServerConfig::new(capabilities.enable_tools().enable_tasks().build())
            .with_server_info(
                Implementation::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
                    .with_title("dataframe-mcp: versioned dataframes for agents")
                    .with_website_url(env!("CARGO_PKG_REPOSITORY"))
                    .with_icons(vec![
                        rmcp::model::Icon::new(ICON)
                            .with_mime_type("image/svg+xml")
                            .with_sizes(vec!["any".into()]),
                    ]),
            )
            .with_instructions(INSTRUCTIONS)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = caller_of(&context);
        if self.wants_task(&request, &context) {
            return self.start_task(request, context, &caller).await;
        }
        self.run_call(request, context, caller).await
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let caller = caller_of(&context);
        let cursor = request.and_then(|r| r.cursor);
        self.resource_page(&caller, cursor.as_deref())
            .await
            .map_err(|e| ErrorData::invalid_params(caller.scrub(&e.to_string()), None))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(crate::resources::templates())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let caller = caller_of(&context);
        match self.read_table_resource(&caller, &request.uri).await {
            Ok(Some(result)) => Ok(result.into()),
            Ok(None) => Err(not_a_resource(&request.uri)),
            Err(e) => Err(resource_error(&caller, e)),
        }
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let caller = caller_of(&context);
        let (session, table) = self.subscribable(&caller, &request.uri).await?;
        self.watcher
            .add(
                &self.state,
                session,
                table,
                request.uri,
                Notify::Peer(context.peer.clone()),
            )
            .await;
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        for id in self.watcher.find(&request.uri) {
            self.watcher.remove(id);
        }
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        if self.state.transport != "stdio" {
            return None;
        }
        let uris = requested
            .resource_subscriptions
            .iter()
            .flatten()
            .filter(|uri| TableUri::parse(uri).is_some())
            .cloned()
            .collect();
        let mut accepted = SubscriptionFilter::new();
        accepted.resource_subscriptions = Some(uris);
        Some(accepted)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let caller = caller_of(context.request_context());
        let uris = context
            .accepted()
            .resource_subscriptions
            .clone()
            .unwrap_or_default();
        let mut ids = Vec::new();
        for uri in uris {
            // A table that does not exist (yet) is watched all the same:
            // its creation is an update.
            let Some(parsed) = TableUri::parse(&uri) else {
                continue;
            };
            let Ok(session) = caller.stored(&parsed.session_id) else {
                continue;
            };
            let notify = Notify::Stream(context.sink().clone());
            ids.push(
                self.watcher
                    .add(&self.state, session, parsed.table, uri, notify)
                    .await,
            );
        }
        context.cancelled().await;
        for id in ids {
            self.watcher.remove(id);
        }
        Ok(())
    }

    async fn get_task(
        &self,
        request: rmcp::model::GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::GetTaskResult, ErrorData> {
        self.task_status(request, &caller_of(&context)).await
    }

    async fn cancel_task(
        &self,
        request: rmcp::model::CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.task_cancel(request, &caller_of(&context)).await
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        Ok(self.complete_argument(&caller_of(&context), &request).await)
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(crate::prompts::list())
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        crate::prompts::get(&request.name, request.arguments.as_ref())
            .map(Into::into)
            .map_err(|e| ErrorData::invalid_params(e.to_string(), None))
    }

    #[allow(deprecated)]
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.log.set(&request);
        Ok(())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tool_router.list_all()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tool_router.get(name).cloned()
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let this = self.clone();
        tokio::spawn(async move { this.refresh_roots(context.peer).await });
    }

    async fn on_roots_list_changed(&self, context: NotificationContext<RoleServer>) {
        let this = self.clone();
        tokio::spawn(async move { this.refresh_roots(context.peer).await });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_errors_speak_of_the_schema() {
        let text = explain_argument_error(
            "failed to deserialize parameters: invalid type: string \"price\", expected struct SortKeyWire",
        )
        .unwrap();
        assert!(!text.contains("SortKeyWire"), "{text}");
        assert!(text.contains("input schema"), "{text}");
        assert!(explain_argument_error("something else").is_none());
    }
}
