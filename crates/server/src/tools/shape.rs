//! Reshaping tools that save their result as a new table: group_aggregate,
//! pivot, unpivot, join_tables.

use dfmcp_ops::reshape::{AggFn, Aggregate, JoinHow};
use dfmcp_ops::values::rows_as_json;
use dfmcp_ops::{Operation, OpsError};
use dfmcp_storage::{Edit, Intent, OpRecord, StoreError, TableMeta};
use polars::prelude::DataFrame;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};
use serde_json::{Value, json};

use super::{check_table_name, column_list};
use crate::caller::Caller;
use crate::error::ToolError;
use crate::render::thousands;
use crate::server::DataFrameServer;
use crate::wire::*;

impl From<AggFnWire> for AggFn {
    fn from(f: AggFnWire) -> Self {
        match f {
            AggFnWire::Count => AggFn::Count,
            AggFnWire::Sum => AggFn::Sum,
            AggFnWire::Mean => AggFn::Mean,
            AggFnWire::Median => AggFn::Median,
            AggFnWire::Min => AggFn::Min,
            AggFnWire::Max => AggFn::Max,
            AggFnWire::Std => AggFn::Std,
            AggFnWire::NUnique => AggFn::NUnique,
            AggFnWire::First => AggFn::First,
            AggFnWire::Last => AggFn::Last,
        }
    }
}

/// What a reshaping tool does to the loaded table(s).
enum Derivation {
    /// An operation on the source table alone (replayable in recipes).
    Op(Operation),
    Join {
        other: String,
        left_on: Vec<String>,
        right_on: Vec<String>,
        how: JoinHow,
        suffix: String,
    },
}

#[tool_router(router = shape_tools, vis = "pub(crate)")]
impl DataFrameServer {
    #[tool(
        description = "Group rows by columns and aggregate (count, sum, mean, median, min, max, std, n_unique, first, last) into a new table save_as, groups sorted by key.",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn group_aggregate(
        &self,
        Parameters(req): Parameters<GroupAggregateRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let op = Operation::GroupAggregate {
            by: req.by,
            aggregates: req
                .aggregates
                .into_iter()
                .map(|a| Aggregate {
                    column: a.column,
                    function: a.function.into(),
                    alias: a.alias,
                })
                .collect(),
        };
        let out = self
            .derive(
                &caller,
                &req.target,
                &req.write,
                &req.save_as,
                Derivation::Op(op),
            )
            .await?;
        Ok(self.reply(&out))
    }

    #[tool(
        description = "Pivot into a new table save_as: a row per index value, a column per distinct value of columns (at most 200), cells from values.",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn pivot(
        &self,
        Parameters(req): Parameters<PivotRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let op = Operation::Pivot {
            index: req.index,
            columns: req.columns,
            values: req.values,
            function: req.function.map(Into::into),
        };
        let out = self
            .derive(
                &caller,
                &req.target,
                &req.write,
                &req.save_as,
                Derivation::Op(op),
            )
            .await?;
        Ok(self.reply(&out))
    }

    #[tool(
        description = "Unpivot (wide to long) into a new table save_as: each of columns becomes rows of variable_name and value_name beside the index columns.",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn unpivot(
        &self,
        Parameters(req): Parameters<UnpivotRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let op = Operation::Unpivot {
            index: req.index,
            columns: req.columns,
            variable_name: req.variable_name.unwrap_or_else(|| "variable".into()),
            value_name: req.value_name.unwrap_or_else(|| "value".into()),
        };
        let out = self
            .derive(
                &caller,
                &req.target,
                &req.write,
                &req.save_as,
                Derivation::Op(op),
            )
            .await?;
        Ok(self.reply(&out))
    }

    #[tool(
        description = "Join table with other (same session) on key columns into a new table save_as; how: inner (default), left, right, full. Refused before it runs if it would exceed the row limit.",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn join_tables(
        &self,
        Parameters(req): Parameters<JoinTablesRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let (left_on, right_on) = match (req.on.is_empty(), req.left_on.is_empty()) {
            (false, true) if req.right_on.is_empty() => (req.on.clone(), req.on),
            (true, false) => (req.left_on, req.right_on),
            _ => {
                return Err(ToolError::invalid(
                    "give the keys either as on (names alike in both tables) or as left_on and right_on, not both",
                ));
            }
        };
        let how = match req.how.unwrap_or(JoinHowWire::Inner) {
            JoinHowWire::Inner => JoinHow::Inner,
            JoinHowWire::Left => JoinHow::Left,
            JoinHowWire::Right => JoinHow::Right,
            JoinHowWire::Full => JoinHow::Full,
        };
        let derivation = Derivation::Join {
            other: req.other,
            left_on,
            right_on,
            how,
            suffix: req.suffix.unwrap_or_else(|| "_right".into()),
        };
        let out = self
            .derive(&caller, &req.target, &req.write, &req.save_as, derivation)
            .await?;
        Ok(self.reply(&out))
    }
}

impl DataFrameServer {
    /// Computes a new table from a table (and for joins another one) and
    /// creates it as `save_as`; a retried request id returns the table made
    /// the first time.
    async fn derive(
        &self,
        caller: &Caller,
        target: &TableRef,
        write: &WriteOpts,
        save_as: &str,
        derivation: Derivation,
    ) -> Result<DerivedResponse, ToolError> {
        let session = caller.stored(&target.session_id)?;
        check_table_name(save_as)?;
        let intent = match &write.request_id {
            Some(id) => Intent::with_op_id(format!("r:{}", crate::server::check_request_id(id)?)),
            None => Intent::new(),
        }
        .by(caller.actor.clone());
        let (action, mut params) = match &derivation {
            Derivation::Op(op) => (op.action(), op.params()),
            Derivation::Join {
                other,
                left_on,
                right_on,
                how,
                suffix,
            } => (
                "join_tables",
                json!({ "other": other, "left_on": left_on, "right_on": right_on,
                        "how": how, "suffix": suffix }),
            ),
        };
        let retried = self
            .store()
            .tables_with_ops(&session, std::slice::from_ref(&intent.op_id))
            .await?
            .into_values()
            .any(|t| t.name == save_as);
        if retried {
            // The same request id must have asked for the same table.
            let made = self.store().history(&session, save_as).await?;
            let first = made.versions.first().map(|v| &v.record);
            let without_source = |p: &Value| {
                let mut p = p.clone();
                if let Value::Object(map) = &mut p {
                    map.remove("source");
                }
                p
            };
            if let Some(record) = first
                && (record.action != action || without_source(&record.params) != params)
            {
                return Err(StoreError::RequestIdReused {
                    request_id: write.request_id.clone().unwrap_or_default(),
                    previous: format!("{}: {}", record.action, record.summary),
                }
                .into());
            }
            let source = first
                .and_then(|r| r.params.get("source"))
                .and_then(Value::as_str)
                .unwrap_or(&target.table)
                .to_string();
            let table = self.store().load(&session, save_as).await?;
            return Ok(self.derived_response(
                target,
                save_as,
                action,
                "made earlier by this request".into(),
                source,
                &table.df,
                true,
            ));
        }
        // A taken name is refused before any work.
        if self
            .store()
            .list_tables(&session)
            .await?
            .iter()
            .any(|t| t.name == save_as)
        {
            return Err(ToolError::invalid(format!(
                "table '{save_as}' already exists in this session; choose another save_as (or drop_table it first)"
            )));
        }
        let loaded = self.store().load(&session, &target.table).await?;
        if let Some(expected) = write.expected_version
            && expected != loaded.state.head.version
        {
            return Err(ToolError::invalid(format!(
                "table '{}' is at version {}, not {expected}; nothing was made. Look at get_history, then call again",
                target.table, loaded.state.head.version
            )));
        }
        let source = format!("{}@v{}", target.table, loaded.state.head.version);
        if let Value::Object(map) = &mut params {
            map.insert("source".into(), Value::String(source.clone()));
        }
        let other = match &derivation {
            Derivation::Join { other, .. } => Some(self.store().load(&session, other).await?.df),
            Derivation::Op(_) => None,
        };
        crate::progress::phase(format!("{action} on `{}`", target.table));
        let max_rows = self
            .state
            .query
            .max_rows
            .min(self.state.ingest.max_rows as u64);
        let df = loaded.df.clone();
        let meta = loaded.meta.clone();
        let (out, summary) = self
            .store()
            .compute(
                &session,
                move |_| -> Result<(DataFrame, String), OpsError> {
                    match derivation {
                        Derivation::Op(op) => {
                            // This server's row limit, before the operation's own.
                            if let Operation::Unpivot { index, columns, .. } = &op {
                                dfmcp_ops::reshape::unpivot_columns(&df, index, columns, max_rows)?;
                            }
                            let applied = op.apply(&df, &meta)?;
                            Ok((applied.df, applied.summary))
                        }
                        Derivation::Join {
                            left_on,
                            right_on,
                            how,
                            suffix,
                            ..
                        } => {
                            let right = other.expect("loaded for a join");
                            let out = dfmcp_ops::reshape::join(
                                &df, &right, &left_on, &right_on, how, &suffix, max_rows,
                            )?;
                            let summary = format!(
                                "Joined {} rows with {} rows on {} ({} join): {} rows",
                                thousands(df.height() as u64),
                                thousands(right.height() as u64),
                                left_on
                                    .iter()
                                    .zip(&right_on)
                                    .map(|(l, r)| if l == r {
                                        l.clone()
                                    } else {
                                        format!("{l} = {r}")
                                    })
                                    .collect::<Vec<_>>()
                                    .join(", "),
                                format!("{how:?}").to_lowercase(),
                                thousands(out.height() as u64)
                            );
                            Ok((out, summary))
                        }
                    }
                },
            )
            .await??;
        let summary = format!("{summary} (from {source})");
        crate::progress::phase(format!(
            "saving {} rows as table `{save_as}`",
            thousands(out.height() as u64)
        ));
        let edit = Edit {
            df: out.clone(),
            meta: TableMeta::new(),
            op: OpRecord::new(action, params, summary.clone()),
        };
        match self
            .store()
            .create_table(&session, save_as, edit, &intent)
            .await
        {
            Ok(_) => {}
            Err(StoreError::TableExists { .. }) => {
                return Err(ToolError::invalid(format!(
                    "table '{save_as}' already exists in this session; choose another save_as (or drop_table it first)"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(self.derived_response(target, save_as, action, summary, source, &out, false))
    }

    #[allow(clippy::too_many_arguments)]
    fn derived_response(
        &self,
        target: &TableRef,
        save_as: &str,
        action: &str,
        summary: String,
        source: String,
        df: &DataFrame,
        already_applied: bool,
    ) -> DerivedResponse {
        let head = df.head(Some(5));
        let shown = DataFrame::new(
            head.height(),
            head.columns().iter().take(20).cloned().collect(),
        )
        .unwrap_or(head);
        let preview = rows_as_json(&shown, 80)
            .into_iter()
            .map(|r| r.into_iter().map(Cell).collect())
            .collect();
        DerivedResponse {
            session_id: target.session_id.clone(),
            table: save_as.to_string(),
            action: action.to_string(),
            summary,
            source,
            rows: df.height() as u64,
            columns: column_list(df, 50),
            preview,
            already_applied,
        }
    }
}
