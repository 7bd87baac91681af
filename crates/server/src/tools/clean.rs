//! Cleaning and transforming tools: each turns its request into an
//! [`Operation`] and runs it through [`DataFrameServer::mutate`].

use dfmcp_ops::text::{Case, Replace, TextCleaning};
use dfmcp_ops::{FillStrategy, How, Keep, Operation, OpsError, SortKey};
use dfmcp_storage::{Edit, OpRecord, StoreError, UpdateError, Updated};
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};

use crate::caller::Caller;
use crate::error::ToolError;
use crate::server::DataFrameServer;
use crate::wire::*;

impl From<Strategy> for FillStrategy {
    fn from(s: Strategy) -> Self {
        match s {
            Strategy::Mean => FillStrategy::Mean,
            Strategy::Median => FillStrategy::Median,
            Strategy::Mode => FillStrategy::Mode,
            Strategy::Min => FillStrategy::Min,
            Strategy::Max => FillStrategy::Max,
            Strategy::Zero => FillStrategy::Zero,
            Strategy::Constant => FillStrategy::Constant,
            Strategy::Forward => FillStrategy::Forward,
            Strategy::Backward => FillStrategy::Backward,
            Strategy::Interpolate => FillStrategy::Interpolate,
        }
    }
}

impl From<SortKeyWire> for SortKey {
    fn from(key: SortKeyWire) -> Self {
        match key {
            SortKeyWire::Name(column) => SortKey {
                column,
                descending: false,
            },
            SortKeyWire::Key { column, descending } => SortKey { column, descending },
        }
    }
}

#[tool_router(router = clean_tools, vis = "pub(crate)")]
impl DataFrameServer {
    #[tool(
        description = "Fill missing values: mean, median, min, max, zero, interpolate (numbers); mode, constant (with value), forward, backward (any type). Without columns, every column the strategy fits. Values marked intentional stay missing.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn fill_missing(
        &self,
        Parameters(req): Parameters<FillMissingRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let op = Operation::FillMissing {
            columns: req.columns,
            strategy: req.strategy.into(),
            value: req.value.map(|cell| cell.0),
            limit: req.limit,
        };
        let change = self.mutate(&caller, &req.target, &req.write, op).await?;
        Ok(self.reply(&change))
    }

    #[tool(
        description = "Drop rows with missing values: how=any (default) drops a row missing any of the subset's columns, how=all only rows missing all of them. Intentionally missing values count as present.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn drop_missing(
        &self,
        Parameters(req): Parameters<DropMissingRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let how = match req.how.unwrap_or_default() {
            HowWire::Any => How::Any,
            HowWire::All => How::All,
        };
        let op = Operation::DropMissing {
            how,
            subset: req.subset,
        };
        let change = self.mutate(&caller, &req.target, &req.write, op).await?;
        Ok(self.reply(&change))
    }

    #[tool(
        description = "Remove duplicate rows, judged on subset columns (default all); keep the first (default), the last, or none of each group.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn drop_duplicates(
        &self,
        Parameters(req): Parameters<DropDuplicatesRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let keep = match req.keep.unwrap_or_default() {
            KeepWire::First => Keep::First,
            KeepWire::Last => Keep::Last,
            KeepWire::None => Keep::None,
        };
        let op = Operation::DropDuplicates {
            subset: req.subset,
            keep,
        };
        let change = self.mutate(&caller, &req.target, &req.write, op).await?;
        Ok(self.reply(&change))
    }

    #[tool(
        description = "Mark missing values as intentional (e.g. 'not applicable'), optionally where a SQL condition holds; or clear marks. Fills and drops leave marked values alone; summaries count them apart.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn mark_intentional_missing(
        &self,
        Parameters(req): Parameters<MarkMissingRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let op = Operation::MarkIntentionalMissing {
            columns: req.columns,
            condition: req.condition,
            clear: req.clear.unwrap_or(false),
            reason: req.reason,
        };
        let change = self.mutate(&caller, &req.target, &req.write, op).await?;
        Ok(self.reply(&change))
    }

    #[tool(
        description = "Rename columns with a mapping of old name to new name.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn rename_columns(
        &self,
        Parameters(req): Parameters<RenameColumnsRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let op = Operation::RenameColumns {
            mapping: req.mapping,
        };
        let change = self.mutate(&caller, &req.target, &req.write, op).await?;
        Ok(self.reply(&change))
    }

    #[tool(
        description = "Drop columns from a table (undo brings them back).",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn drop_columns(
        &self,
        Parameters(req): Parameters<DropColumnsRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let op = Operation::DropColumns {
            columns: req.columns,
        };
        let change = self.mutate(&caller, &req.target, &req.write, op).await?;
        Ok(self.reply(&change))
    }

    #[tool(
        description = "Change column types (int64, float64, string, boolean, date, datetime, datetime[<zone>], time, duration, categorical); format parses text dates (e.g. \"%d/%m/%Y\"). Values that do not convert become missing, counted with examples.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn cast_columns(
        &self,
        Parameters(req): Parameters<CastColumnsRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let op = Operation::CastColumns {
            casts: req.casts,
            format: req.format,
            strict: req.strict.unwrap_or(false),
        };
        let change = self.mutate(&caller, &req.target, &req.write, op).await?;
        Ok(self.reply(&change))
    }

    #[tool(
        description = "Keep only the rows where a SQL boolean condition holds, e.g. \"price > 10 AND region IN ('EU', 'US')\" or \"name IS NOT NULL\". Rows where it is false or unknown are removed (undo brings them back).",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn filter_rows(
        &self,
        Parameters(req): Parameters<FilterRowsRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let op = Operation::FilterRows {
            condition: req.condition,
        };
        let change = self.mutate(&caller, &req.target, &req.write, op).await?;
        Ok(self.reply(&change))
    }

    #[tool(
        description = "Sort rows by one or more columns, each ascending or descending; missing values last unless nulls_first. Stable.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn sort_rows(
        &self,
        Parameters(req): Parameters<SortRowsRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let op = Operation::SortRows {
            by: req.by.into_iter().map(SortKey::from).collect(),
            nulls_first: req.nulls_first.unwrap_or(false),
        };
        let change = self.mutate(&caller, &req.target, &req.write, op).await?;
        Ok(self.reply(&change))
    }

    #[tool(
        description = "Add a column from a SQL expression over each row, e.g. \"price * qty\", \"UPPER(region)\"; with where, only in those rows (missing elsewhere).",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn add_column(
        &self,
        Parameters(req): Parameters<ColumnExpressionRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let op = Operation::AddColumn {
            column: req.column,
            expression: req.expression,
            condition: req.condition,
        };
        let change = self.mutate(&caller, &req.target, &req.write, op).await?;
        Ok(self.reply(&change))
    }

    #[tool(
        description = "Set a column to a SQL expression over each row (e.g. \"price * 1.1\", \"TRIM(name)\"), in every row or only where a condition holds.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn update_column(
        &self,
        Parameters(req): Parameters<ColumnExpressionRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let op = Operation::UpdateColumn {
            column: req.column,
            expression: req.expression,
            condition: req.condition,
        };
        let change = self.mutate(&caller, &req.target, &req.write, op).await?;
        Ok(self.reply(&change))
    }

    #[tool(
        description = "Clean text columns (default all), in this order: replace, strip_accents, strip_punctuation, collapse_spaces, trim, case, empty_as_missing.",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn clean_text(
        &self,
        Parameters(req): Parameters<CleanTextRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let how = TextCleaning {
            replace: req.replace.map(|r| Replace {
                pattern: r.pattern,
                with: r.with,
            }),
            strip_accents: req.strip_accents,
            strip_punctuation: req.strip_punctuation,
            collapse_spaces: req.collapse_spaces,
            trim: req.trim,
            case: req.case.map(|c| match c {
                CaseWire::Lower => Case::Lower,
                CaseWire::Upper => Case::Upper,
                CaseWire::Title => Case::Title,
            }),
            empty_as_missing: req.empty_as_missing,
        };
        let op = Operation::CleanText {
            columns: req.columns,
            how,
        };
        let change = self.mutate(&caller, &req.target, &req.write, op).await?;
        Ok(self.reply(&change))
    }

    #[tool(
        description = "Read dates from text columns with formats or a detected one; reports day/month ambiguity and values that did not parse (they become missing).",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn parse_dates(
        &self,
        Parameters(req): Parameters<ParseDatesRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let op = Operation::ParseDates {
            columns: req.columns,
            formats: req.formats,
            day_first: req.day_first,
        };
        let change = self.mutate(&caller, &req.target, &req.write, op).await?;
        Ok(self.reply(&change))
    }

    #[tool(
        description = "Split a text column at a separator into new columns placed after it.",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn split_column(
        &self,
        Parameters(req): Parameters<SplitColumnRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let op = Operation::SplitColumn {
            column: req.column,
            separator: req.separator,
            into: req.into,
            drop_original: req.drop_original,
        };
        let change = self.mutate(&caller, &req.target, &req.write, op).await?;
        Ok(self.reply(&change))
    }

    #[tool(
        description = "Join the text of columns into a new column into, with a separator.",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn merge_columns(
        &self,
        Parameters(req): Parameters<MergeColumnsRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let op = Operation::MergeColumns {
            columns: req.columns,
            into: req.into,
            separator: req.separator,
            skip_missing: req.skip_missing.unwrap_or(true),
            drop_originals: req.drop_originals,
        };
        let change = self.mutate(&caller, &req.target, &req.write, op).await?;
        Ok(self.reply(&change))
    }
}

/// What applying an operation to the loaded version gave, besides the edit.
struct Outcome {
    summary: String,
    details: serde_json::Value,
    rows_before: u64,
    cols_before: u64,
}

impl DataFrameServer {
    /// Runs a mutating operation on a table: compare-and-set, retried on a
    /// lost race unless the caller pinned a version; a retried request id is
    /// recognised and reported, not applied again.
    pub(crate) async fn mutate(
        &self,
        caller: &Caller,
        target: &TableRef,
        write: &WriteOpts,
        op: Operation,
    ) -> Result<ChangeResponse, ToolError> {
        let session = caller.stored(&target.session_id)?;
        let intent = self.intent(caller, write)?;
        crate::progress::phase(format!(
            "{} on `{}`, then saving the version",
            op.action(),
            target.table
        ));
        let job_op = op.clone();
        let updated = self
            .store()
            .update(&session, &target.table, &intent, move |loaded| {
                let applied = job_op.apply(&loaded.df, &loaded.meta)?;
                // Record what was settled (detected date formats), so a
                // replay reads next month's file the same way.
                let recorded = applied.resolved.as_ref().unwrap_or(&job_op);
                let edit = Edit {
                    df: applied.df,
                    meta: applied.meta,
                    op: OpRecord::new(
                        recorded.action(),
                        recorded.params(),
                        applied.summary.clone(),
                    ),
                };
                let outcome = Outcome {
                    summary: applied.summary,
                    details: applied.details,
                    rows_before: loaded.state.head.rows,
                    cols_before: loaded.state.head.cols,
                };
                Ok::<_, OpsError>((edit, outcome))
            })
            .await
            .map_err(|e| match e {
                UpdateError::Apply(e) => ToolError::from(e),
                UpdateError::Store(e) => ToolError::from(e),
            })?;
        let response =
            |version: u64, rows: u64, cols: u64, changed: bool, o: Outcome| ChangeResponse {
                session_id: target.session_id.clone(),
                table: target.table.clone(),
                action: op.action().to_string(),
                summary: o.summary,
                version,
                changed,
                rows_before: o.rows_before,
                rows_after: rows,
                columns_before: o.cols_before,
                columns_after: cols,
                details: object(o.details),
                already_applied: false,
            };
        Ok(match updated {
            Updated::Applied { committed, output } => response(
                committed.version,
                committed.rows,
                committed.cols,
                true,
                output,
            ),
            Updated::Unchanged { version, output } => {
                let (rows, cols) = (output.rows_before, output.cols_before);
                response(version, rows, cols, false, output)
            }
            Updated::AlreadyApplied { version, record } => {
                // A parse that detected its formats recorded them: compare
                // what the caller gave, not what was settled.
                let same = |r: &dfmcp_storage::LogRecord| {
                    let settled = || {
                        let mut given = op.params();
                        let mut recorded = r.params.clone();
                        for p in [&mut given, &mut recorded] {
                            if let Some(map) = p.as_object_mut() {
                                map.remove("formats");
                            }
                        }
                        given == recorded
                    };
                    r.action == op.action()
                        && (r.params == op.params()
                            || matches!(op, Operation::ParseDates { ref formats, .. } if formats.is_empty())
                                && settled())
                };
                if let Some(record) = &record
                    && !same(record)
                {
                    return Err(StoreError::RequestIdReused {
                        request_id: write.request_id.clone().unwrap_or_default(),
                        previous: format!("{}: {}", record.action, record.summary),
                    }
                    .into());
                }
                let (state_rows, state_cols) = match &record {
                    Some(r) => (r.rows_after, r.cols_after),
                    None => (0, 0),
                };
                ChangeResponse {
                    session_id: target.session_id.clone(),
                    table: target.table.clone(),
                    action: op.action().to_string(),
                    summary: record
                        .as_ref()
                        .map(|r| r.summary.clone())
                        .unwrap_or_else(|| "the change was made earlier".into()),
                    version,
                    changed: true,
                    rows_before: record.as_ref().and_then(|r| r.rows_before).unwrap_or(0),
                    rows_after: state_rows,
                    columns_before: record.as_ref().and_then(|r| r.cols_before).unwrap_or(0),
                    columns_after: state_cols,
                    details: Object::new(),
                    already_applied: true,
                }
            }
        })
    }
}
