//! Undo, redo and the readable history.

use dfmcp_storage::VersionStatus;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};

use crate::caller::Caller;
use crate::error::ToolError;
use crate::render::time;
use crate::server::DataFrameServer;
use crate::wire::*;

fn status_name(s: VersionStatus) -> &'static str {
    match s {
        VersionStatus::Current => "current",
        VersionStatus::Undoable => "applied (undoable)",
        VersionStatus::BeyondUndoLimit => "applied (beyond undo limit)",
        VersionStatus::Redoable => "undone (redoable)",
        VersionStatus::Discarded => "discarded",
    }
}

#[tool_router(router = history_tools, vis = "pub(crate)")]
impl DataFrameServer {
    #[tool(
        description = "Undo the latest operations on a table (steps, default 1), restoring the exact earlier version; all steps move at once. Redo brings them back until a new operation is made.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn undo(
        &self,
        Parameters(req): Parameters<StepRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let moved = self.step(&caller, req, true).await?;
        Ok(self.reply(&moved))
    }

    #[tool(
        description = "Redo operations undone with undo (steps, default 1).",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn redo(
        &self,
        Parameters(req): Parameters<StepRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let moved = self.step(&caller, req, false).await?;
        Ok(self.reply(&moved))
    }

    #[tool(
        description = "A table's history: each operation's version, time, action, parameters, summary, rows/columns before and after, and status (current, undoable, undone/redoable, discarded).",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_history(
        &self,
        Parameters(req): Parameters<HistoryRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let history = self.history(&caller, req).await?;
        Ok(self.reply(&history))
    }
}

impl DataFrameServer {
    async fn step(
        &self,
        caller: &Caller,
        req: StepRequest,
        undo: bool,
    ) -> Result<StepResponse, ToolError> {
        let session = caller.stored(&req.target.session_id)?;
        let intent = self.intent(caller, &req.write)?;
        let steps = req.steps.unwrap_or(1).max(1);
        let moved = if undo {
            self.store()
                .undo(&session, &req.target.table, steps, &intent)
                .await?
        } else {
            self.store()
                .redo(&session, &req.target.table, steps, &intent)
                .await?
        };
        Ok(StepResponse {
            session_id: req.target.session_id,
            table: req.target.table,
            moved: moved.steps.iter().map(|v| v.summary.clone()).collect(),
            version: moved.to.version,
            rows: moved.to.rows,
            columns: moved.to.cols,
            undo_steps: moved.undo_depth,
            redo_steps: moved.redo_depth,
            requested: steps,
            already_applied: moved.already_applied,
            undo,
        })
    }

    pub(crate) async fn history(
        &self,
        caller: &Caller,
        req: HistoryRequest,
    ) -> Result<HistoryResponse, ToolError> {
        let session = caller.stored(&req.target.session_id)?;
        let history = self.store().history(&session, &req.target.table).await?;
        let limit = req.limit.unwrap_or(30).clamp(1, 500);
        let total = history.versions.len();
        let mut items: Vec<HistoryItem> = history
            .versions
            .iter()
            .skip(total.saturating_sub(limit))
            .map(|v| HistoryItem {
                version: v.record.version,
                time: time(v.record.at_ms),
                action: v.record.action.clone(),
                parameters: object(v.record.params.clone()),
                summary: v.record.summary.clone(),
                status: status_name(v.status).to_string(),
                rows_before: v.record.rows_before,
                columns_before: v.record.cols_before,
                rows_after: v.record.rows_after,
                columns_after: v.record.cols_after,
                by: v.record.actor.clone(),
            })
            .collect();
        // Parameters can be long (SQL, mappings): keep the whole result bounded.
        let budget = self.state.max_chars.saturating_sub(4000) / 2;
        let mut size: usize = items
            .iter()
            .map(|i| serde_json::to_string(i).map_or(0, |s| s.len()))
            .sum();
        while size > budget && items.len() > 1 {
            let dropped = items.remove(0);
            size -= serde_json::to_string(&dropped).map_or(0, |s| s.len());
        }
        Ok(HistoryResponse {
            session_id: req.target.session_id,
            table: req.target.table,
            current_version: history.current_version,
            can_undo: history.undo_depth > 0,
            can_redo: history.redo_depth > 0,
            undo_steps: history.undo_depth,
            redo_steps: history.redo_depth,
            omitted: total - items.len(),
            operations: items,
        })
    }
}
