//! The MCP server: shared state, the tool router, and the helpers every tool
//! uses (running an operation, explaining an error).

use std::sync::Arc;
use std::time::Duration;

use dfmcp_ingest::Limits;
use dfmcp_ops::{Operation, OpsError};
use dfmcp_storage::{Edit, OpRecord, Store, StoreError, UpdateError, Updated, new_uid};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{CallToolResult, Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::NotificationContext;
use rmcp::{RoleServer, ServerHandler, tool_handler};

use crate::paths::PathPolicy;
use crate::render::{fail, ok, thousands};
use crate::wire::ChangeResponse;

/// What every tool call shares.
pub struct AppState {
    pub store: Store,
    pub paths: PathPolicy,
    pub limits: Limits,
    /// Upper bound of one result, in characters.
    pub max_chars: usize,
    pub use_client_roots: bool,
    /// Human description of the storage, for list_sessions.
    pub storage: String,
}

#[derive(Clone)]
pub struct DataFrameServer {
    pub(crate) state: Arc<AppState>,
    tool_router: ToolRouter<Self>,
}

const INSTRUCTIONS: &str = "Load tabular files into named sessions, then inspect, clean and transform them. \
Start with inspect_file (for odd or large files) or initialize_data_table, which returns a session_id and table names; \
pass both to every other tool. Inspect with get_table_summary, preview_rows, value_counts. \
Every change (fill_missing, drop_missing, drop_duplicates, cast_columns, filter_rows, …) makes a new version: \
undo/redo move between versions and get_history lists them. query_sql runs SELECT over the session's tables; \
export_table writes a table to a file. Sessions persist across restarts until idle for the configured TTL.";

impl DataFrameServer {
    pub fn new(state: AppState) -> Self {
        let mut tool_router = Self::session_tools()
            + Self::inspect_tools()
            + Self::clean_tools()
            + Self::history_tools()
            + Self::query_tools();
        for route in tool_router.map.values_mut() {
            let tool = &mut route.attr;
            tool.input_schema = Arc::new(portable(tool.input_schema.as_ref().clone()));
            if let Some(output) = &tool.output_schema {
                tool.output_schema = Some(Arc::new(portable(output.as_ref().clone())));
            }
        }
        DataFrameServer {
            state: Arc::new(state),
            tool_router,
        }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.state.store
    }

    pub(crate) fn max_chars(&self) -> usize {
        self.state.max_chars
    }

    /// The text of a store error, with what to do next.
    pub(crate) async fn explain(&self, err: StoreError) -> String {
        match &err {
            StoreError::SessionNotFound { .. } => {
                let live = self.store().list_sessions().await.unwrap_or_default();
                if live.is_empty() {
                    format!("{err}. There are no live sessions.")
                } else {
                    let shown: Vec<String> = live.iter().take(10).map(|s| s.id.clone()).collect();
                    let more = live.len().saturating_sub(shown.len());
                    format!(
                        "{err}. Live sessions: {}{}",
                        shown.join(", "),
                        if more > 0 {
                            format!(" and {more} more")
                        } else {
                            String::new()
                        }
                    )
                }
            }
            StoreError::Conflict { .. } => format!(
                "{err}. Another agent kept changing this table; call the tool again (it re-reads the latest version)"
            ),
            _ => err.to_string(),
        }
    }

    /// Runs a mutating operation with compare-and-set and retries, and
    /// reports what changed.
    pub(crate) async fn mutate(
        &self,
        session_id: String,
        table: String,
        op: Operation,
    ) -> CallToolResult {
        let op_id = new_uid();
        let action = op.action();
        let job_op = op.clone();
        let result = self
            .store()
            .update(&session_id, &table, &op_id, move |loaded| {
                let applied = job_op.apply(&loaded.df, &loaded.meta)?;
                let before = (loaded.state.head.rows, loaded.state.head.cols);
                let record =
                    OpRecord::new(job_op.action(), job_op.params(), applied.summary.clone());
                let edit = Edit {
                    df: applied.df,
                    meta: applied.meta,
                    op: record,
                };
                Ok::<_, OpsError>((edit, (applied.summary, applied.details, before)))
            })
            .await;
        match result {
            Ok(Updated::Applied {
                committed,
                output: (summary, details, (rows_before, cols_before)),
            }) => {
                let response = ChangeResponse {
                    session_id: session_id.clone(),
                    table: table.clone(),
                    action: action.to_string(),
                    summary: summary.clone(),
                    version: committed.version,
                    rows_before,
                    rows_after: committed.rows,
                    columns_before: cols_before,
                    columns_after: committed.cols,
                    details: crate::wire::object(details),
                    can_undo: true,
                    already_applied: committed.already_applied,
                };
                let text = format!(
                    "{summary}.\nTable `{table}` is now at version {} ({} rows × {} columns; was {} × {}). Undo with `undo`.",
                    committed.version,
                    thousands(committed.rows),
                    committed.cols,
                    thousands(rows_before),
                    cols_before
                );
                ok(text, &response, self.max_chars())
            }
            Ok(Updated::AlreadyApplied { version }) => fail(format!(
                "this operation was already applied (table `{table}` is at version {version}); nothing was done again"
            )),
            Err(UpdateError::Apply(e)) => fail(e.to_string()),
            Err(UpdateError::Store(e)) => fail(self.explain(e).await),
        }
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
    for v in schema.values_mut() {
        walk(v);
    }
    schema
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for DataFrameServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                env!("CARGO_PKG_NAME"),
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(INSTRUCTIONS)
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
