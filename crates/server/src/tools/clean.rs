//! Cleaning and transforming tools: each builds an [`Operation`] and runs it
//! through [`DataFrameServer::mutate`] (compare-and-set with retries).

use dfmcp_ops::{FillStrategy, How, Keep, Operation, SortKey};
use rmcp::handler::server::tool::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};

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

#[tool_router(router = clean_tools, vis = "pub(crate)")]
impl DataFrameServer {
    #[tool(
        description = "Fill missing values. Strategies: mean, median, min, max, zero, interpolate (numeric columns); mode, constant (with value), forward, backward (any column). Without columns, fills every column with missing values the strategy fits and lists the skipped ones. Values marked intentional (mark_intentional_missing) are left alone. Reports per column how many cells were filled and with what.",
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false),
        output_schema = schema_for_output::<ChangeResponse>()
    )]
    async fn fill_missing(
        &self,
        Parameters(req): Parameters<FillMissingRequest>,
    ) -> CallToolResult {
        let op = Operation::FillMissing {
            columns: req.columns,
            strategy: req.strategy.into(),
            value: req.value.map(|cell| cell.0),
            limit: req.limit,
        };
        self.mutate(req.session_id, req.table, op).await
    }

    #[tool(
        description = "Drop rows with missing values: how=any (default) drops a row missing any of the subset's columns, how=all only rows missing all of them. Intentionally missing values count as present.",
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<ChangeResponse>()
    )]
    async fn drop_missing(
        &self,
        Parameters(req): Parameters<DropMissingRequest>,
    ) -> CallToolResult {
        let how = match req.how.unwrap_or_default() {
            HowWire::Any => How::Any,
            HowWire::All => How::All,
        };
        let op = Operation::DropMissing {
            how,
            subset: req.subset,
        };
        self.mutate(req.session_id, req.table, op).await
    }

    #[tool(
        description = "Remove duplicate rows, judged on subset columns (default all); keep the first (default), the last, or none of each group.",
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<ChangeResponse>()
    )]
    async fn drop_duplicates(
        &self,
        Parameters(req): Parameters<DropDuplicatesRequest>,
    ) -> CallToolResult {
        let keep = match req.keep.unwrap_or_default() {
            KeepWire::First => Keep::First,
            KeepWire::Last => Keep::Last,
            KeepWire::None => Keep::None,
        };
        let op = Operation::DropDuplicates {
            subset: req.subset,
            keep,
        };
        self.mutate(req.session_id, req.table, op).await
    }

    #[tool(
        description = "Mark missing values as intentional (meaningful, e.g. 'not applicable'), optionally only where a SQL condition holds, with a reason; or clear such marks. Marked values are left alone by fill_missing and drop_missing and reported apart in get_table_summary. Marks follow their rows through filters and sorts.",
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<ChangeResponse>()
    )]
    async fn mark_intentional_missing(
        &self,
        Parameters(req): Parameters<MarkMissingRequest>,
    ) -> CallToolResult {
        let op = Operation::MarkIntentionalMissing {
            columns: req.columns,
            condition: req.condition,
            clear: req.clear.unwrap_or(false),
            reason: req.reason,
        };
        self.mutate(req.session_id, req.table, op).await
    }

    #[tool(
        description = "Rename columns with a mapping of old name to new name.",
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false),
        output_schema = schema_for_output::<ChangeResponse>()
    )]
    async fn rename_columns(
        &self,
        Parameters(req): Parameters<RenameColumnsRequest>,
    ) -> CallToolResult {
        let op = Operation::RenameColumns {
            mapping: req.mapping,
        };
        self.mutate(req.session_id, req.table, op).await
    }

    #[tool(
        description = "Drop columns from a table (undo brings them back).",
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false),
        output_schema = schema_for_output::<ChangeResponse>()
    )]
    async fn drop_columns(
        &self,
        Parameters(req): Parameters<DropColumnsRequest>,
    ) -> CallToolResult {
        let op = Operation::DropColumns {
            columns: req.columns,
        };
        self.mutate(req.session_id, req.table, op).await
    }

    #[tool(
        description = "Change column types (int64, float64, string, boolean, date, datetime, datetime[<zone>], time, duration, categorical). Text is trimmed before parsing numbers; format parses text dates (e.g. \"%d/%m/%Y\"). Values that cannot be converted become missing and are counted with examples; strict=true refuses instead.",
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false),
        output_schema = schema_for_output::<ChangeResponse>()
    )]
    async fn cast_columns(
        &self,
        Parameters(req): Parameters<CastColumnsRequest>,
    ) -> CallToolResult {
        let op = Operation::CastColumns {
            casts: req.casts,
            format: req.format,
            strict: req.strict.unwrap_or(false),
        };
        self.mutate(req.session_id, req.table, op).await
    }

    #[tool(
        description = "Keep only the rows where a SQL boolean condition holds, e.g. \"price > 10 AND region IN ('EU', 'US')\" or \"name IS NOT NULL\". Rows where it is false or unknown are removed (undo brings them back).",
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<ChangeResponse>()
    )]
    async fn filter_rows(&self, Parameters(req): Parameters<FilterRowsRequest>) -> CallToolResult {
        let op = Operation::FilterRows {
            condition: req.condition,
        };
        self.mutate(req.session_id, req.table, op).await
    }

    #[tool(
        description = "Sort rows by one or more columns, each ascending or descending; missing values last unless nulls_first. Stable.",
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<ChangeResponse>()
    )]
    async fn sort_rows(&self, Parameters(req): Parameters<SortRowsRequest>) -> CallToolResult {
        let by = req
            .by
            .into_iter()
            .map(|k| SortKey {
                column: k.column,
                descending: k.descending,
            })
            .collect();
        let op = Operation::SortRows {
            by,
            nulls_first: req.nulls_first.unwrap_or(false),
        };
        self.mutate(req.session_id, req.table, op).await
    }
}
