//! Tool inputs and outputs as the MCP client sees them (JSON Schema via
//! schemars). Only this crate knows MCP and JSON Schema; these types convert
//! to and from the library types explicitly.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A free-form JSON object (operation parameters and per-operation details):
/// its schema says "object" rather than accepting anything, which strict
/// clients refuse.
pub type Object = serde_json::Map<String, Value>;

/// One table cell, or one scalar argument: a string, number, boolean or null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cell(pub Value);

impl JsonSchema for Cell {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Cell".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                { "type": "string" },
                { "type": "number" },
                { "type": "boolean" },
                { "type": "null" }
            ]
        })
    }
}

/// Turns a JSON value that is an object into [`Object`] (anything else is
/// wrapped under "value").
pub fn object(value: Value) -> Object {
    match value {
        Value::Object(map) => map,
        Value::Null => Object::new(),
        other => {
            let mut map = Object::new();
            map.insert("value".into(), other);
            map
        }
    }
}

// ----- shared parts ----------------------------------------------------------

/// The table a tool works on. (The field names say what they are: a
/// description would be repeated in nearly every tool's schema.)
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct TableRef {
    pub session_id: String,
    #[serde(alias = "table_name")]
    pub table: String,
}

/// Optional guards of a change. Explained once, in the server's
/// instructions: repeated in every mutating tool's schema they cost 1,400
/// characters of tools/list.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct WriteOpts {
    #[serde(default)]
    pub expected_version: Option<u64>,
    #[serde(default)]
    pub request_id: Option<String>,
}

// ----- sessions and tables ---------------------------------------------------

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct InitializeRequest {
    /// Omit when copying.
    #[serde(default)]
    pub file_path: Option<String>,
    /// Created if missing; omit for a new one.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Copy tables from this session instead.
    #[serde(default)]
    pub source_session_id: Option<String>,
    /// Default all.
    #[serde(default)]
    pub source_tables: Option<Vec<String>>,
    /// Default: the sheet or file name.
    #[serde(default, alias = "table")]
    pub table_name: Option<String>,
    /// Default all.
    #[serde(default)]
    pub sheets: Option<Vec<String>>,
    /// Default: detected.
    #[serde(default)]
    pub delimiter: Option<String>,
    /// E.g. windows-1252 (default: detected).
    #[serde(default)]
    pub encoding: Option<String>,
    /// Default: detected.
    #[serde(default)]
    pub has_header: Option<bool>,
    /// Rows to skip before the header.
    #[serde(default)]
    pub skip_rows: Option<usize>,
    /// Load at most this many rows.
    #[serde(default)]
    pub max_rows: Option<usize>,
    /// Default: empty, NA, N/A, NULL, NaN, None, …
    #[serde(default)]
    pub null_values: Option<Vec<String>>,
    /// Numbers like 1.234,5.
    #[serde(default)]
    pub decimal_comma: Option<bool>,
    /// A retry with the same id returns the first load.
    #[serde(default)]
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ColumnInfo {
    pub name: String,
    pub dtype: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct LoadedTableInfo {
    pub table: String,
    pub source: String,
    pub rows: u64,
    pub columns: usize,
    /// The first columns with their types.
    pub schema: Vec<ColumnInfo>,
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ProblemInfo {
    pub source: String,
    pub message: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct InitializeResponse {
    pub session_id: String,
    pub created_session: bool,
    pub tables: Vec<LoadedTableInfo>,
    /// Parts of the file that could not be loaded (the others were).
    pub problems: Vec<ProblemInfo>,
    pub notes: Vec<String>,
    /// True when a retried request had already loaded these tables.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub already_applied: bool,
    #[serde(skip)]
    pub file_name: String,
    #[serde(skip)]
    pub format: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct InspectFileRequest {
    pub file_path: String,
    #[serde(default)]
    pub delimiter: Option<String>,
    #[serde(default)]
    pub encoding: Option<String>,
    #[serde(default)]
    pub has_header: Option<bool>,
    /// Rows to skip before the header.
    #[serde(default)]
    pub skip_rows: Option<usize>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TextLayout {
    pub encoding: String,
    pub delimiter: String,
    pub has_header: bool,
    pub columns: Vec<String>,
    pub sample_rows: Vec<Vec<String>>,
    pub ragged_lines: usize,
    pub decimal_comma_columns: Vec<String>,
    pub estimated_rows: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SheetLayout {
    pub name: String,
    pub rows: usize,
    pub columns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_row: Option<usize>,
    pub sample_rows: Vec<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct InspectFileResponse {
    pub path: String,
    pub format: String,
    pub size_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextLayout>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sheets: Vec<SheetLayout>,
    /// Exact row count when the format records it (Parquet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<usize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schema: Vec<ColumnInfo>,
    pub notes: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema, Default)]
pub struct Empty {}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SessionInfo {
    pub session_id: String,
    pub created: String,
    pub last_access: String,
    pub expires: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ListSessionsResponse {
    pub sessions: Vec<SessionInfo>,
    /// Sessions not listed (over the listing's bound).
    pub omitted: usize,
    pub storage: String,
    /// Set when the server runs on a fallback store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SessionRequest {
    pub session_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TableListing {
    pub table: String,
    pub rows: u64,
    pub columns: u64,
    pub version: u64,
    pub undo_steps: usize,
    pub redo_steps: usize,
    pub last_change: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ListTablesResponse {
    pub session_id: String,
    pub tables: Vec<TableListing>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TableRequest {
    #[serde(flatten)]
    pub target: TableRef,
    #[serde(flatten)]
    pub write: WriteOpts,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RenameTableRequest {
    #[serde(flatten)]
    pub target: TableRef,
    /// Its new name (letters, digits, _).
    pub new_name: String,
    #[serde(flatten)]
    pub write: WriteOpts,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DoneResponse {
    pub session_id: String,
    pub message: String,
}

// ----- inspection -----------------------------------------------------------

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SummaryRequest {
    #[serde(flatten)]
    pub target: TableRef,
    /// Default all.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// For paging (default 0).
    #[serde(default)]
    pub column_offset: Option<usize>,
    /// Columns per page (default 25).
    #[serde(default)]
    pub column_limit: Option<usize>,
    /// Per text column (default 5).
    #[serde(default)]
    pub top_values: Option<usize>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct NumericStats {
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    pub median: Option<f64>,
    pub q25: Option<f64>,
    pub q75: Option<f64>,
    pub zeros: usize,
    pub negatives: usize,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TopValue {
    pub value: String,
    pub count: usize,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TextStats {
    pub top: Vec<TopValue>,
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    pub empty_strings: usize,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RangeStats {
    pub min: Option<String>,
    pub max: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BoolStats {
    pub true_count: usize,
    pub false_count: usize,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ColumnSummary {
    pub name: String,
    pub dtype: String,
    pub non_null: usize,
    /// Missing cells not marked intentional.
    pub missing: usize,
    pub missing_pct: f64,
    pub intentional_missing: usize,
    pub distinct: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numeric: Option<NumericStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextStats>,
    /// Range of dates, datetimes, times and durations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<RangeStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boolean: Option<BoolStats>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SummaryResponse {
    pub session_id: String,
    pub table: String,
    pub version: u64,
    pub rows: usize,
    pub columns: usize,
    pub duplicate_rows: usize,
    pub memory_bytes: usize,
    pub column_offset: usize,
    pub column_summaries: Vec<ColumnSummary>,
    /// Offset of the next page of columns, when there are more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_column_offset: Option<usize>,
    /// Reasons recorded for intentionally missing values, by column.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub intentional_missing_reasons: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Position {
    #[default]
    Head,
    Tail,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PreviewRequest {
    #[serde(flatten)]
    pub target: TableRef,
    /// Ignored with offset.
    #[serde(default)]
    pub position: Option<Position>,
    /// First row to show (0-based).
    #[serde(default)]
    pub offset: Option<usize>,
    /// Default 10, at most 500.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Only these columns.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RowsResponse {
    pub columns: Vec<ColumnInfo>,
    /// Rows as arrays, in column order.
    pub rows: Vec<Vec<Cell>>,
    /// Index of the first row shown.
    pub offset: usize,
    /// Rows in the whole result; absent when only a lower bound is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_rows: Option<usize>,
    pub truncated: bool,
    /// How to see more, when truncated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PreviewResponse {
    pub session_id: String,
    pub table: String,
    pub version: u64,
    #[serde(flatten)]
    pub rows: RowsResponse,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ValueCountsRequest {
    #[serde(flatten)]
    pub target: TableRef,
    pub column: String,
    /// Default 20, at most 500.
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ValueCount {
    pub value: Cell,
    pub count: usize,
    pub percent: f64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ValueCountsResponse {
    pub session_id: String,
    pub table: String,
    pub column: String,
    pub rows: usize,
    pub missing: usize,
    pub distinct: usize,
    pub values: Vec<ValueCount>,
    /// Distinct values not listed, and the rows they cover.
    pub others: usize,
    pub others_count: usize,
    #[serde(skip)]
    pub max_limit: bool,
}

// ----- cleaning and transforming --------------------------------------------

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    Mean,
    Median,
    Mode,
    Min,
    Max,
    Zero,
    Constant,
    Forward,
    Backward,
    Interpolate,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FillMissingRequest {
    #[serde(flatten)]
    pub target: TableRef,
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    pub strategy: Strategy,
    /// The value for strategy "constant".
    #[serde(default)]
    pub value: Option<Cell>,
    /// forward/backward: fill at most this many consecutive missing values.
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(flatten)]
    pub write: WriteOpts,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HowWire {
    #[default]
    Any,
    All,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DropMissingRequest {
    #[serde(flatten)]
    pub target: TableRef,
    /// any (default) or all.
    #[serde(default)]
    pub how: Option<HowWire>,
    /// Columns to look at (default all).
    #[serde(default)]
    pub subset: Option<Vec<String>>,
    #[serde(flatten)]
    pub write: WriteOpts,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum KeepWire {
    #[default]
    First,
    Last,
    /// Remove every row that has a duplicate.
    None,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DropDuplicatesRequest {
    #[serde(flatten)]
    pub target: TableRef,
    /// Columns that define a duplicate (default all).
    #[serde(default)]
    pub subset: Option<Vec<String>>,
    /// first (default), last or none.
    #[serde(default)]
    pub keep: Option<KeepWire>,
    #[serde(flatten)]
    pub write: WriteOpts,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct MarkMissingRequest {
    #[serde(flatten)]
    pub target: TableRef,
    pub columns: Vec<String>,
    /// SQL, e.g. "status = 'closed'".
    #[serde(default)]
    pub condition: Option<String>,
    /// Remove marks instead.
    #[serde(default)]
    pub clear: Option<bool>,
    /// E.g. "not applicable".
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(flatten)]
    pub write: WriteOpts,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RenameColumnsRequest {
    #[serde(flatten)]
    pub target: TableRef,
    pub mapping: BTreeMap<String, String>,
    #[serde(flatten)]
    pub write: WriteOpts,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DropColumnsRequest {
    #[serde(flatten)]
    pub target: TableRef,
    pub columns: Vec<String>,
    #[serde(flatten)]
    pub write: WriteOpts,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CastColumnsRequest {
    #[serde(flatten)]
    pub target: TableRef,
    /// E.g. {"price": "float64"}.
    pub casts: BTreeMap<String, String>,
    /// strftime format for text → date/datetime, e.g. "%d/%m/%Y".
    #[serde(default)]
    pub format: Option<String>,
    /// Refuse instead of making them missing.
    #[serde(default)]
    pub strict: Option<bool>,
    #[serde(flatten)]
    pub write: WriteOpts,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FilterRowsRequest {
    #[serde(flatten)]
    pub target: TableRef,
    /// Quote names with spaces: "\"Unit Price\" > 5".
    pub condition: String,
    #[serde(flatten)]
    pub write: WriteOpts,
}

/// A sort key: a column name (ascending), or {"column", "descending"}.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SortKeyWire {
    Name(String),
    Key {
        column: String,
        #[serde(default)]
        descending: bool,
    },
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SortRowsRequest {
    #[serde(flatten)]
    pub target: TableRef,
    /// E.g. ["region", {"column": "date", "descending": true}].
    pub by: Vec<SortKeyWire>,
    #[serde(default)]
    pub nulls_first: Option<bool>,
    #[serde(flatten)]
    pub write: WriteOpts,
}

/// What every mutating tool returns.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ChangeResponse {
    pub session_id: String,
    pub table: String,
    pub action: String,
    /// One line: what changed.
    pub summary: String,
    /// The version the table is at now.
    pub version: u64,
    /// False when there was nothing to change: no new version was made.
    pub changed: bool,
    pub rows_before: u64,
    pub rows_after: u64,
    pub columns_before: u64,
    pub columns_after: u64,
    /// Per-operation details (counts, values used, failures).
    pub details: Object,
    /// True when a retried request had already been applied.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub already_applied: bool,
}

// ----- history --------------------------------------------------------------

#[derive(Debug, Deserialize, JsonSchema)]
pub struct StepRequest {
    #[serde(flatten)]
    pub target: TableRef,
    /// Default 1.
    #[serde(default)]
    pub steps: Option<usize>,
    #[serde(flatten)]
    pub write: WriteOpts,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct StepResponse {
    pub session_id: String,
    pub table: String,
    /// Operations undone or redone, in order.
    pub moved: Vec<String>,
    pub version: u64,
    pub rows: u64,
    pub columns: u64,
    pub undo_steps: usize,
    pub redo_steps: usize,
    /// Steps asked for (more than moved when the history ran out).
    pub requested: usize,
    /// True when a retried request had already been applied.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub already_applied: bool,
    #[serde(skip)]
    pub undo: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct HistoryRequest {
    #[serde(flatten)]
    pub target: TableRef,
    /// Default 30.
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HistoryItem {
    pub version: u64,
    pub time: String,
    pub action: String,
    pub parameters: Object,
    pub summary: String,
    /// current, applied (undoable), applied (beyond undo limit), undone (redoable), discarded.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_before: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub columns_before: Option<u64>,
    pub rows_after: u64,
    pub columns_after: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HistoryResponse {
    pub session_id: String,
    pub table: String,
    pub current_version: u64,
    pub can_undo: bool,
    pub can_redo: bool,
    pub undo_steps: usize,
    pub redo_steps: usize,
    pub operations: Vec<HistoryItem>,
    /// Older operations not listed.
    pub omitted: usize,
}

// ----- query and export -----------------------------------------------------

#[derive(Debug, Deserialize, JsonSchema)]
pub struct QueryRequest {
    pub session_id: String,
    /// E.g. "SELECT region, SUM(price) FROM sales GROUP BY region".
    pub sql: String,
    /// Default 50, at most 1000.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Keep the full result as a new table.
    #[serde(default)]
    pub save_as: Option<String>,
    /// With save_as: a retry makes no second table.
    #[serde(default)]
    pub request_id: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct QueryResponse {
    pub session_id: String,
    #[serde(flatten)]
    pub rows: RowsResponse,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_as: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Tsv,
    Parquet,
    Json,
    Ndjson,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExportRequest {
    #[serde(flatten)]
    pub target: TableRef,
    /// Omit over HTTP for a download link.
    #[serde(default)]
    pub path: Option<String>,
    /// Default: from the extension.
    #[serde(default)]
    pub format: Option<ExportFormat>,
    #[serde(default)]
    pub overwrite: Option<bool>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ExportResponse {
    pub session_id: String,
    pub table: String,
    /// The file written (when a path was given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Where to download it (over HTTP, without a path): with the same
    /// bearer token, until the session expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub format: String,
    pub rows: u64,
    pub columns: u64,
    pub bytes: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HealthResponse {
    /// ok, or degraded (store unreachable, or running on a fallback store).
    pub status: String,
    pub version: String,
    pub transport: String,
    pub storage: String,
    /// Whether the store answered, and how fast.
    pub store_reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_round_trip_ms: Option<f64>,
    /// Live sessions of the caller (up to 1,000 counted); not given by
    /// `/readyz`, which has no caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ColumnExpressionRequest {
    #[serde(flatten)]
    pub target: TableRef,
    pub column: String,
    /// SQL over the row's columns.
    pub expression: String,
    /// Only rows where this SQL condition holds.
    #[serde(default, rename = "where")]
    pub condition: Option<String>,
    #[serde(flatten)]
    pub write: WriteOpts,
}

// ----- recipes --------------------------------------------------------------

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExportRecipeRequest {
    #[serde(flatten)]
    pub target: TableRef,
    #[serde(default)]
    pub from_version: Option<u64>,
    #[serde(default)]
    pub to_version: Option<u64>,
    #[serde(default)]
    pub code: Option<CodeKind>,
    /// A file to write it (or the code) to.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub overwrite: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CodeKind {
    Polars,
    Sql,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ExportRecipeResponse {
    pub session_id: String,
    pub table: String,
    pub from_version: u64,
    pub to_version: u64,
    pub recipe: Object,
    /// Versions in the range that are not replayable operations, and why.
    pub skipped: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// What the code does not do exactly as this server does.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub code_notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ApplyRecipeRequest {
    #[serde(flatten)]
    pub target: TableRef,
    /// From export_recipe (or recipe_path: a file it wrote).
    #[serde(default)]
    pub recipe: Option<Object>,
    #[serde(default)]
    pub recipe_path: Option<String>,
    #[serde(default)]
    pub mapping: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    pub dry_run: Option<bool>,
    #[serde(flatten)]
    pub write: WriteOpts,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RecipeStepReport {
    pub step: usize,
    pub action: String,
    pub summary: String,
    pub rows_before: u64,
    pub rows_after: u64,
    pub columns_before: u64,
    pub columns_after: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cells_changed: Option<u64>,
    pub changed: bool,
    /// The version the step made (none in a dry run or when it changed nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ApplyRecipeResponse {
    pub session_id: String,
    pub table: String,
    pub dry_run: bool,
    /// The table's version now.
    pub version: u64,
    pub steps: Vec<RecipeStepReport>,
    /// undo with this many steps takes the whole recipe back.
    pub undo_steps: usize,
}

// ----- text, dates, columns ---------------------------------------------------

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CaseWire {
    Lower,
    Upper,
    Title,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReplaceWire {
    /// Regex (Rust syntax).
    pub pattern: String,
    /// $1 = a capture group.
    #[serde(default)]
    pub with: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CleanTextRequest {
    #[serde(flatten)]
    pub target: TableRef,
    /// Default: every text column.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Applied first.
    #[serde(default)]
    pub replace: Option<ReplaceWire>,
    #[serde(default)]
    pub strip_accents: bool,
    #[serde(default)]
    pub strip_punctuation: bool,
    #[serde(default)]
    pub collapse_spaces: bool,
    #[serde(default)]
    pub trim: bool,
    #[serde(default)]
    pub case: Option<CaseWire>,
    #[serde(default)]
    pub empty_as_missing: bool,
    #[serde(flatten)]
    pub write: WriteOpts,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ParseDatesRequest {
    #[serde(flatten)]
    pub target: TableRef,
    pub columns: Vec<String>,
    /// strftime formats tried in order, e.g. ["%d/%m/%Y"]. Default: detected.
    #[serde(default)]
    pub formats: Vec<String>,
    /// When both read every value: true = 01/02 is 1 February.
    #[serde(default)]
    pub day_first: Option<bool>,
    #[serde(flatten)]
    pub write: WriteOpts,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SplitColumnRequest {
    #[serde(flatten)]
    pub target: TableRef,
    pub column: String,
    /// Literal text between parts.
    pub separator: String,
    /// New column names; the last takes the rest.
    pub into: Vec<String>,
    #[serde(default)]
    pub drop_original: bool,
    #[serde(flatten)]
    pub write: WriteOpts,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct MergeColumnsRequest {
    #[serde(flatten)]
    pub target: TableRef,
    pub columns: Vec<String>,
    pub into: String,
    #[serde(default)]
    pub separator: String,
    /// Leave missing parts out (default true); false: any missing → missing.
    #[serde(default)]
    pub skip_missing: Option<bool>,
    #[serde(default)]
    pub drop_originals: bool,
    #[serde(flatten)]
    pub write: WriteOpts,
}

// ----- quality -----------------------------------------------------------------

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutlierMethodWire {
    /// Outside Q1 − k·IQR … Q3 + k·IQR (k 1.5).
    Iqr,
    /// Over k standard deviations from the mean (k 3).
    Zscore,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OutlierActionWire {
    Report,
    /// Boolean column flag_column (default is_outlier).
    Flag,
    /// Make them missing.
    Null,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FindOutliersRequest {
    #[serde(flatten)]
    pub target: TableRef,
    pub columns: Vec<String>,
    #[serde(default)]
    pub method: Option<OutlierMethodWire>,
    /// k.
    #[serde(default)]
    pub threshold: Option<f64>,
    #[serde(default)]
    pub action: Option<OutlierActionWire>,
    #[serde(default)]
    pub flag_column: Option<String>,
    #[serde(flatten)]
    pub write: WriteOpts,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SimilarityWire {
    /// Normalised edit distance (typos).
    Edit,
    /// Shared words, any order.
    Token,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FindDuplicatesRequest {
    #[serde(flatten)]
    pub target: TableRef,
    /// Text columns compared together.
    pub columns: Vec<String>,
    #[serde(default)]
    pub method: Option<SimilarityWire>,
    /// 0–1 (default 0.85 edit, 0.8 token).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Clusters shown (default 20).
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct MergeGroupWire {
    pub values: Vec<String>,
    pub into: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct MergeDuplicatesRequest {
    #[serde(flatten)]
    pub target: TableRef,
    pub column: String,
    pub groups: Vec<MergeGroupWire>,
    #[serde(flatten)]
    pub write: WriteOpts,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ValidateRequest {
    #[serde(flatten)]
    pub target: TableRef,
    /// E.g. {"column": "age", "rule": "range", "min": 0, "max": 120}. Rules: not_null, unique, range (min/max), allowed (values), regex (pattern, whole value), type (type: int|float|bool|date|datetime|string).
    pub rules: Vec<Object>,
    /// Example rows per rule (default 5).
    #[serde(default)]
    pub examples: Option<usize>,
}

// ----- reshaping into new tables ---------------------------------------------------

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AggFnWire {
    Count,
    Sum,
    Mean,
    Median,
    Min,
    Max,
    Std,
    NUnique,
    First,
    Last,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AggregateWire {
    /// Omit with count to count rows.
    #[serde(default)]
    pub column: Option<String>,
    pub function: AggFnWire,
    /// Output name (default column_function).
    #[serde(default, rename = "as")]
    pub alias: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GroupAggregateRequest {
    #[serde(flatten)]
    pub target: TableRef,
    #[serde(default)]
    pub by: Vec<String>,
    pub aggregates: Vec<AggregateWire>,
    pub save_as: String,
    #[serde(flatten)]
    pub write: WriteOpts,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PivotRequest {
    #[serde(flatten)]
    pub target: TableRef,
    /// Row keys.
    pub index: Vec<String>,
    /// Its values become columns.
    pub columns: String,
    pub values: String,
    /// Needed when a cell gets several rows.
    #[serde(default)]
    pub function: Option<AggFnWire>,
    pub save_as: String,
    #[serde(flatten)]
    pub write: WriteOpts,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UnpivotRequest {
    #[serde(flatten)]
    pub target: TableRef,
    /// Columns kept on every row.
    pub index: Vec<String>,
    /// Default: all others.
    #[serde(default)]
    pub columns: Vec<String>,
    #[serde(default)]
    pub variable_name: Option<String>,
    #[serde(default)]
    pub value_name: Option<String>,
    pub save_as: String,
    #[serde(flatten)]
    pub write: WriteOpts,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JoinHowWire {
    Inner,
    Left,
    Right,
    Full,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct JoinTablesRequest {
    #[serde(flatten)]
    pub target: TableRef,
    /// The right-hand table, same session.
    pub other: String,
    /// Key columns named alike in both; else left_on + right_on.
    #[serde(default)]
    pub on: Vec<String>,
    #[serde(default)]
    pub left_on: Vec<String>,
    #[serde(default)]
    pub right_on: Vec<String>,
    #[serde(default)]
    pub how: Option<JoinHowWire>,
    /// For right-hand names already taken (default _right).
    #[serde(default)]
    pub suffix: Option<String>,
    pub save_as: String,
    #[serde(flatten)]
    pub write: WriteOpts,
}

/// What a tool that saves a new table returns.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DerivedResponse {
    pub session_id: String,
    pub table: String,
    pub action: String,
    pub summary: String,
    pub source: String,
    pub rows: u64,
    pub columns: Vec<ColumnInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub preview: Vec<Vec<Cell>>,
    pub already_applied: bool,
}

// ----- charts -----------------------------------------------------------------------

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChartWire {
    Histogram,
    Bar,
    Scatter,
    Line,
    Box,
    Missing,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PlotRequest {
    #[serde(flatten)]
    pub target: TableRef,
    pub kind: ChartWire,
    #[serde(default)]
    pub x: Option<String>,
    #[serde(default)]
    pub y: Option<String>,
    #[serde(default)]
    pub by: Option<String>,
    #[serde(default)]
    pub bins: Option<usize>,
    #[serde(default)]
    pub top: Option<usize>,
    /// Default 800×500.
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub overwrite: Option<bool>,
}

/// A read-only report (outliers, similar values, validation): the text a
/// model reads and the same facts as data.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReportResponse {
    pub session_id: String,
    pub table: String,
    pub version: u64,
    #[serde(skip)]
    pub text: String,
    pub report: Object,
}
