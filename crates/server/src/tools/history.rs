//! Undo, redo and the readable history.

use dfmcp_storage::{Moved, VersionStatus};
use rmcp::handler::server::tool::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};

use crate::render::{fail, ok, thousands, time};
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

impl DataFrameServer {
    async fn step(&self, req: StepRequest, undo: bool) -> CallToolResult {
        let steps = req.steps.unwrap_or(1).max(1);
        let mut moved: Vec<Moved> = Vec::new();
        for _ in 0..steps {
            let result = if undo {
                self.store().undo(&req.session_id, &req.table).await
            } else {
                self.store().redo(&req.session_id, &req.table).await
            };
            match result {
                Ok(m) => moved.push(m),
                Err(e) if !moved.is_empty() => {
                    // Partial progress is still progress: say where we stopped.
                    tracing::info!(error = %e, "stopped after {} steps", moved.len());
                    break;
                }
                Err(e) => return fail(self.explain(e).await),
            }
        }
        let last = moved.last().expect("at least one step succeeded");
        let descriptions: Vec<String> = moved
            .iter()
            .map(|m| {
                if undo {
                    m.from.summary.clone()
                } else {
                    m.to.summary.clone()
                }
            })
            .collect();
        let verb = if undo { "Undid" } else { "Redid" };
        let mut text = String::new();
        for d in &descriptions {
            text.push_str(&format!("{verb}: {d}\n"));
        }
        if moved.len() < steps {
            text.push_str(&format!(
                "Stopped after {} of {steps} steps: nothing more to {}.\n",
                moved.len(),
                if undo { "undo" } else { "redo" }
            ));
        }
        text.push_str(&format!(
            "Table `{}` is at version {} ({} rows × {} columns); {} undo / {} redo steps available.",
            req.table,
            last.to.version,
            thousands(last.to.rows),
            last.to.cols,
            last.undo_depth,
            last.redo_depth
        ));
        let response = StepResponse {
            session_id: req.session_id,
            table: req.table,
            moved: descriptions,
            version: last.to.version,
            rows: last.to.rows,
            columns: last.to.cols,
            undo_steps: last.undo_depth,
            redo_steps: last.redo_depth,
        };
        ok(text, &response, self.max_chars())
    }
}

#[tool_router(router = history_tools, vis = "pub(crate)")]
impl DataFrameServer {
    #[tool(
        description = "Undo the latest operations on a table (steps, default 1), restoring the exact earlier version. Redo brings them back until a new operation is made.",
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false),
        output_schema = schema_for_output::<StepResponse>()
    )]
    async fn undo(&self, Parameters(req): Parameters<StepRequest>) -> CallToolResult {
        self.step(req, true).await
    }

    #[tool(
        description = "Redo operations undone with undo (steps, default 1).",
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false),
        output_schema = schema_for_output::<StepResponse>()
    )]
    async fn redo(&self, Parameters(req): Parameters<StepRequest>) -> CallToolResult {
        self.step(req, false).await
    }

    #[tool(
        description = "A table's history: each operation with version, time, action, parameters, a one-line summary, rows/columns before and after, and whether it is current, undoable, undone (redoable) or discarded; plus whether undo/redo is possible.",
        annotations(read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<HistoryResponse>()
    )]
    async fn get_history(&self, Parameters(req): Parameters<HistoryRequest>) -> CallToolResult {
        let history = match self.store().history(&req.session_id, &req.table).await {
            Ok(h) => h,
            Err(e) => return fail(self.explain(e).await),
        };
        let limit = req.limit.unwrap_or(30).clamp(1, 500);
        let total = history.versions.len();
        let omitted = total.saturating_sub(limit);
        let mut items: Vec<HistoryItem> = history
            .versions
            .iter()
            .skip(omitted)
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
            })
            .collect();
        // Parameters can be long (SQL, mappings): keep the whole result bounded.
        let budget = self.max_chars().saturating_sub(4000) / 2;
        while serde_json::to_string(&items).map(|s| s.len()).unwrap_or(0) > budget
            && items.len() > 1
        {
            items.remove(0);
        }
        let omitted = total - items.len();
        let mut text = format!(
            "History of `{}`: version {} is current; {} undo / {} redo steps available.\n",
            history.table, history.current_version, history.undo_depth, history.redo_depth
        );
        if omitted > 0 {
            text.push_str(&format!(
                "({omitted} older operations not shown; raise limit to see them)\n"
            ));
        }
        for item in &items {
            let marker = if item.status == "current" { "→" } else { " " };
            text.push_str(&format!(
                "{marker} v{} {} [{}] {}: {} ({} × {})\n",
                item.version,
                item.time,
                item.status,
                item.action,
                item.summary,
                thousands(item.rows_after),
                item.columns_after
            ));
        }
        let response = HistoryResponse {
            session_id: req.session_id,
            table: req.table,
            current_version: history.current_version,
            can_undo: history.undo_depth > 0,
            can_redo: history.redo_depth > 0,
            undo_steps: history.undo_depth,
            redo_steps: history.redo_depth,
            operations: items,
            omitted,
        };
        ok(text, &response, self.max_chars())
    }
}
