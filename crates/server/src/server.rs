//! The MCP server: shared state, the tool router, and the `ServerHandler`.

use std::sync::Arc;
use std::time::Duration;

use dfmcp_ingest::Limits;
use dfmcp_ops::sql::QueryLimits;
use dfmcp_storage::{Intent, Store, new_uid};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};

use crate::caller::{Caller, Principal};
use crate::error::ToolError;
use crate::paths::PathPolicy;
use crate::render::{Render, respond};
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
}

const INSTRUCTIONS: &str = "Load tabular files into named sessions, then inspect, clean and transform them. \
Start with inspect_file (for odd or large files) or initialize_data_table, which returns a session_id and table names; \
pass both to every other tool. Inspect with get_table_summary, preview_rows, value_counts. \
Every change (fill_missing, drop_missing, drop_duplicates, cast_columns, filter_rows, …) makes a new version: \
undo/redo move between versions and get_history lists them. Pass expected_version to change a table only if nobody else did, \
and request_id to make a retry safe. query_sql runs SELECT over the session's tables; \
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
    ("undo", "Undo changes"),
    ("redo", "Redo changes"),
    ("get_history", "Show a table's history"),
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
            + Self::query_tools();
        for route in tool_router.map.values_mut() {
            let tool = &mut route.attr;
            if let Some((_, title)) = TITLES.iter().find(|(name, _)| *name == tool.name) {
                tool.title = Some((*title).to_string());
            }
            tool.input_schema = Arc::new(portable(tool.input_schema.as_ref().clone()));
            if let Some(output) = &tool.output_schema {
                tool.output_schema =
                    Some(Arc::new(lean_output(&portable(output.as_ref().clone()))));
            }
        }
        DataFrameServer {
            state: Arc::new(state),
            tool_router,
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
                // `default: null` on a field that cannot be null says nothing.
                if map.get("default") == Some(&Value::Null) {
                    map.remove("default");
                }
                // schemars' integer formats (uint64, uint32, …) are not JSON
                // Schema formats; `minimum` already says what matters.
                if map.get("type") == Some(&Value::from("integer")) {
                    map.remove("format");
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
    for v in schema.values_mut() {
        walk(v);
    }
    schema
}

impl ServerHandler for DataFrameServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
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
        mut context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = caller_of(&context);
        let base = base_url(&context, self.state.public_url.as_deref());
        context.extensions.insert(caller.clone());
        context.extensions.insert(base);
        // Clients cut a call off after a while unless progress arrives: a
        // caller that asked for progress hears at the start and every second
        // until the call ends (or is dropped).
        let _progress = context
            .meta
            .get_progress_token()
            .map(|token| Progress::start(context.peer.clone(), token, request.name.to_string()));
        let call = ToolCallContext::new(self, request, context);
        let mut response = self.tool_router.call(call).await.map_err(|mut e| {
            e.message = caller.scrub(&e.message).into();
            e
        })?;
        if let CallToolResponse::Complete(result) = &mut response {
            let failed = result.is_error == Some(true);
            for block in &mut result.content {
                if let Some(text) = block.as_text() {
                    let fixed = explain_argument_error(&text.text)
                        .filter(|_| failed)
                        .unwrap_or_else(|| caller.scrub(&text.text));
                    if fixed != text.text {
                        *block = ContentBlock::text(fixed);
                    }
                }
            }
            // Stored ids never reach a caller, in errors or in results.
            if let Some(structured) = &mut result.structured_content {
                caller.scrub_json(structured);
            }
        }
        Ok(response)
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

/// Progress notifications for one call, sent until dropped.
struct Progress(tokio::task::JoinHandle<()>);

impl Progress {
    fn start(
        peer: rmcp::Peer<RoleServer>,
        token: rmcp::model::ProgressToken,
        tool: String,
    ) -> Self {
        Progress(tokio::spawn(async move {
            let started = std::time::Instant::now();
            for step in 0u32.. {
                let message = if step == 0 {
                    format!("{tool} started")
                } else {
                    format!("{tool} still working ({} s)", started.elapsed().as_secs())
                };
                let note =
                    rmcp::model::ProgressNotificationParam::new(token.clone(), f64::from(step))
                        .with_message(message);
                // A client that stopped listening (or a transport without
                // notifications) needs no more.
                if peer.notify_progress(note).await.is_err() {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }))
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.abort();
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
