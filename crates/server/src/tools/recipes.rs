//! Recipes: a table's applied operations exported as data, and replayed on
//! another table, each step a version of its own.

use std::io::{Read, Write};

use dfmcp_ops::Operation;
use dfmcp_ops::recipe::{RECIPE_FORMAT, Recipe, Step, dry_run};
use dfmcp_ops::recipe_code;
use dfmcp_storage::VersionStatus;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};
use serde_json::json;

use crate::caller::Caller;
use crate::error::ToolError;
use crate::server::DataFrameServer;
use crate::wire::*;

/// Largest recipe file read.
const MAX_RECIPE_BYTES: u64 = 4 << 20;

#[tool_router(router = recipe_tools, vis = "pub(crate)")]
impl DataFrameServer {
    #[tool(
        description = "A table's applied operations (a version range, default all) as a recipe (JSON, or polars/SQL code), optionally to a file. Replay it with apply_recipe, e.g. on next month's file.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn export_recipe(
        &self,
        Parameters(req): Parameters<ExportRecipeRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        Ok(self.reply(&self.recipe_of(&caller, req).await?))
    }

    #[tool(
        description = "Replay a recipe (export_recipe) on a table, a version per step. mapping: recipe column → this table's; dry_run: per step the rows, columns, cells it would change. A step that cannot apply stops the run and says why.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn apply_recipe(
        &self,
        Parameters(req): Parameters<ApplyRecipeRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        Ok(self.reply(&self.replay(&caller, req).await?))
    }
}

impl DataFrameServer {
    async fn recipe_of(
        &self,
        caller: &Caller,
        req: ExportRecipeRequest,
    ) -> Result<ExportRecipeResponse, ToolError> {
        let session = caller.stored(&req.target.session_id)?;
        let history = self.store().history(&session, &req.target.table).await?;
        let from = req.from_version.unwrap_or(1);
        let to = req.to_version.unwrap_or(history.current_version);
        if from > to {
            return Err(ToolError::invalid(format!(
                "from_version {from} is after to_version {to}"
            )));
        }
        let mut steps = Vec::new();
        let mut skipped = Vec::new();
        let applied = history.versions.iter().filter(|v| {
            matches!(
                v.status,
                VersionStatus::Current | VersionStatus::Undoable | VersionStatus::BeyondUndoLimit
            ) && (from..=to).contains(&v.record.version)
        });
        for version in applied {
            let record = &version.record;
            match Operation::from_parts(&record.action, &record.params) {
                Ok(op) => steps.push(Step::new(op, Some(record.summary.clone()))),
                Err(_) => skipped.push(format!(
                    "v{} ({}): not an operation on a table's rows and columns; the recipe starts from the table it is applied to",
                    record.version, record.action
                )),
            }
        }
        if history.trimmed && req.from_version.is_none() {
            skipped.push(
                "the oldest versions are no longer in the history log; the recipe starts at the oldest one kept".into(),
            );
        }
        let recipe = Recipe {
            format: RECIPE_FORMAT,
            source: Some(json!({
                "session_id": req.target.session_id,
                "table": req.target.table,
                "from_version": from,
                "to_version": to,
            })),
            steps,
        };
        let value = serde_json::to_value(&recipe)
            .map_err(|e| ToolError::invalid(format!("the recipe could not be encoded: {e}")))?;
        let (code, code_notes) = match req.code {
            None => (None, Vec::new()),
            Some(CodeKind::Polars) => {
                let mut notes = Vec::new();
                if recipe
                    .steps
                    .iter()
                    .any(|s| matches!(s.op, Operation::MarkIntentionalMissing { .. }))
                {
                    notes.push(
                        "intentional-missing marks have no polars counterpart: later fills and drops touch those values".into(),
                    );
                }
                (Some(recipe_code::to_polars(&recipe)), notes)
            }
            Some(CodeKind::Sql) => {
                let (sql, notes) = recipe_code::to_sql(&recipe, &req.target.table);
                (Some(sql), notes)
            }
        };
        let path = match &req.path {
            Some(raw) => {
                let text = match &code {
                    Some(code) => code.clone(),
                    None => serde_json::to_string_pretty(&value).unwrap_or_default(),
                };
                Some(self.write_recipe(raw, &text, req.overwrite.unwrap_or(false))?)
            }
            None => {
                let size = value.to_string().len() + code.as_ref().map_or(0, String::len);
                if size > self.state.max_chars / 2 {
                    return Err(ToolError::invalid(format!(
                        "the recipe is {size} characters, too long to show; pass path to write it to a file (or a smaller version range)"
                    )));
                }
                None
            }
        };
        Ok(ExportRecipeResponse {
            session_id: req.target.session_id,
            table: req.target.table,
            from_version: from,
            to_version: to,
            recipe: object(value),
            skipped,
            code,
            code_notes,
            path,
        })
    }

    fn write_recipe(&self, raw: &str, text: &str, overwrite: bool) -> Result<String, ToolError> {
        let target = self.state.paths.open_write(raw)?;
        let shown = target.path.display().to_string();
        if target.exists() && !overwrite {
            return Err(ToolError::invalid(format!(
                "{shown} already exists; pass overwrite=true to replace it, or choose another path"
            )));
        }
        let (mut file, temp) = target
            .create_temp()
            .map_err(|e| ToolError::invalid(format!("writing {shown} failed: {e}")))?;
        let written = file
            .write_all(text.as_bytes())
            .and_then(|_| file.sync_all())
            .and_then(|_| target.replace_with(&temp));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(ToolError::invalid(format!("writing {shown} failed: {e}")));
        }
        Ok(shown)
    }

    fn read_recipe(&self, req: &ApplyRecipeRequest) -> Result<Recipe, ToolError> {
        let value = match (&req.recipe, &req.recipe_path) {
            (Some(recipe), None) => serde_json::Value::Object(recipe.clone()),
            (None, Some(raw)) => {
                let opened = self.state.paths.open_read(raw)?;
                let mut text = String::new();
                std::fs::File::open(&opened.source.read)
                    .and_then(|f| f.take(MAX_RECIPE_BYTES + 1).read_to_string(&mut text))
                    .map_err(|e| ToolError::invalid(format!("cannot read {raw}: {e}")))?;
                if text.len() as u64 > MAX_RECIPE_BYTES {
                    return Err(ToolError::invalid(format!(
                        "{raw} is larger than a recipe can be ({} MiB)",
                        MAX_RECIPE_BYTES >> 20
                    )));
                }
                serde_json::from_str(&text)
                    .map_err(|e| ToolError::invalid(format!("{raw} is not JSON: {e}")))?
            }
            _ => {
                return Err(ToolError::invalid(
                    "give the recipe (the object export_recipe returned) or recipe_path (a file it wrote), one of them",
                ));
            }
        };
        let recipe: Recipe = serde_json::from_value(value).map_err(|e| {
            ToolError::invalid(format!(
                "this is not a recipe export_recipe makes: {e}. Each step needs an action and its parameters."
            ))
        })?;
        if recipe.format != RECIPE_FORMAT {
            return Err(ToolError::invalid(format!(
                "recipe format {} is not one this server reads (it reads {RECIPE_FORMAT})",
                recipe.format
            )));
        }
        if recipe.steps.is_empty() {
            return Err(ToolError::invalid("the recipe has no steps"));
        }
        Ok(recipe)
    }

    async fn replay(
        &self,
        caller: &Caller,
        req: ApplyRecipeRequest,
    ) -> Result<ApplyRecipeResponse, ToolError> {
        let recipe = self.read_recipe(&req)?;
        let mapping = req.mapping.clone().unwrap_or_default();
        let ops = recipe.mapped(&mapping).map_err(ToolError::from)?;
        let session = caller.stored(&req.target.session_id)?;
        if req.dry_run.unwrap_or(false) {
            let loaded = self.store().load(&session, &req.target.table).await?;
            let version = loaded.state.head.version;
            let (df, meta) = (loaded.df.clone(), loaded.meta.clone());
            let job_ops = ops.clone();
            let run = self
                .store()
                .compute(&session, move |_| dry_run(&df, &meta, &job_ops))
                .await?;
            let effects = run.map(|(effects, _)| effects).map_err(|f| {
                step_error(
                    f.step,
                    f.action,
                    &ToolError::from(f.error),
                    0,
                    version,
                    !mapping.is_empty(),
                )
            })?;
            return Ok(ApplyRecipeResponse {
                session_id: req.target.session_id,
                table: req.target.table,
                dry_run: true,
                version,
                steps: effects
                    .into_iter()
                    .zip(&ops)
                    .enumerate()
                    .map(|(i, (e, op))| RecipeStepReport {
                        step: i + 1,
                        action: op.action().to_string(),
                        summary: e.summary,
                        rows_before: e.rows_before,
                        rows_after: e.rows_after,
                        columns_before: e.columns_before,
                        columns_after: e.columns_after,
                        cells_changed: e.cells_changed,
                        changed: e.changed,
                        version: None,
                    })
                    .collect(),
                undo_steps: 0,
            });
        }
        // Each step is a change of its own, guarded by the version the step
        // before made: nobody else's change lands in the middle unnoticed.
        let mut expected = req.write.expected_version;
        let mut reports = Vec::new();
        let mut made = 0;
        let mut version = 0;
        for (i, op) in ops.into_iter().enumerate() {
            let write = WriteOpts {
                expected_version: expected,
                request_id: req
                    .write
                    .request_id
                    .as_ref()
                    .map(|r| format!("{r}/{}", i + 1)),
            };
            let action = op.action();
            let changed = match self.mutate(caller, &req.target, &write, op).await {
                Ok(changed) => changed,
                Err(e) => {
                    return Err(step_error(
                        i + 1,
                        action,
                        &e,
                        made,
                        version,
                        !mapping.is_empty(),
                    ));
                }
            };
            if changed.changed {
                made += 1;
            }
            version = changed.version;
            expected = Some(changed.version);
            reports.push(RecipeStepReport {
                step: i + 1,
                action: action.to_string(),
                summary: changed.summary,
                rows_before: changed.rows_before,
                rows_after: changed.rows_after,
                columns_before: changed.columns_before,
                columns_after: changed.columns_after,
                cells_changed: None,
                changed: changed.changed,
                version: changed.changed.then_some(changed.version),
            });
        }
        Ok(ApplyRecipeResponse {
            session_id: req.target.session_id,
            table: req.target.table,
            dry_run: false,
            version,
            steps: reports,
            undo_steps: made,
        })
    }
}

/// A step that failed: which, why, and where that leaves the table.
fn step_error(
    step: usize,
    action: &str,
    e: &ToolError,
    applied: usize,
    version: u64,
    mapped: bool,
) -> ToolError {
    let left = if applied == 0 {
        "Nothing was changed.".to_string()
    } else {
        format!(
            "The {applied} step{} before it {} applied (the table is at version {version}); undo with steps={applied} takes them back.",
            if applied == 1 { "" } else { "s" },
            if applied == 1 { "is" } else { "are" }
        )
    };
    let hint = if matches!(e, ToolError::Ops(dfmcp_ops::OpsError::UnknownColumn { .. })) {
        if mapped {
            " Check the mapping (recipe column → this table's column)."
        } else {
            " If this table names the column differently, pass mapping {\"recipe column\": \"table column\"}."
        }
    } else {
        ""
    };
    ToolError::invalid(format!(
        "step {step} ({action}) cannot apply: {e}. {left}{hint}"
    ))
}
