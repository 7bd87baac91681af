//! Tool inputs and outputs as the MCP client sees them (JSON Schema via
//! schemars). Only this crate knows MCP and JSON Schema; these types convert
//! to and from the library types explicitly.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A free-form JSON object (details, statistics): its schema says "object"
/// rather than accepting anything, which strict clients refuse.
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

// ----- sessions and tables ---------------------------------------------------

#[derive(Debug, Deserialize, JsonSchema)]
pub struct InitializeRequest {
    /// Path of the file to load (CSV/TSV/TXT, xlsx/xlsm/xlsb/xls, ods, Parquet, Arrow/Feather, JSON, NDJSON). Every table in it is loaded (every sheet of a workbook). Omit when copying with source_session_id.
    #[serde(default)]
    pub file_path: Option<String>,
    /// Session to load into; created if it does not exist. Omit for a new session with a fresh id.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Copy tables from this session instead of loading a file.
    #[serde(default)]
    pub source_session_id: Option<String>,
    /// With source_session_id: which tables to copy (default all).
    #[serde(default)]
    pub source_tables: Option<Vec<String>>,
    /// Name for the table (default: sheet name for workbooks, else the file name).
    #[serde(default, alias = "table")]
    pub table_name: Option<String>,
    /// Workbook sheets to load (default all).
    #[serde(default)]
    pub sheets: Option<Vec<String>>,
    /// Field delimiter of a text file, e.g. ";" or "\t" (default: detected).
    #[serde(default)]
    pub delimiter: Option<String>,
    /// Text encoding such as utf-8, utf-16le, windows-1252, latin-1 (default: detected).
    #[serde(default)]
    pub encoding: Option<String>,
    /// Whether the first row is a header (default: detected).
    #[serde(default)]
    pub has_header: Option<bool>,
    /// Rows to skip before the header.
    #[serde(default)]
    pub skip_rows: Option<usize>,
    /// Load at most this many rows.
    #[serde(default)]
    pub max_rows: Option<usize>,
    /// Strings meaning "missing" (default: empty, NA, N/A, NULL, null, NaN, None, #N/A, …).
    #[serde(default)]
    pub null_values: Option<Vec<String>>,
    /// Parse numbers written with decimal commas (1.234,5).
    #[serde(default)]
    pub decimal_comma: Option<bool>,
}

#[derive(Debug, Serialize, JsonSchema)]
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
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct InspectFileRequest {
    /// Path of the file to look at.
    pub file_path: String,
    /// Delimiter override for text files.
    #[serde(default)]
    pub delimiter: Option<String>,
    /// Encoding override for text files.
    #[serde(default)]
    pub encoding: Option<String>,
    /// Header override for text files.
    #[serde(default)]
    pub has_header: Option<bool>,
    /// Rows to skip before the header.
    #[serde(default)]
    pub skip_rows: Option<usize>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct InspectFileResponse {
    /// What was found: format, size, encoding, delimiter, header, sample rows, sheets.
    pub inspection: Object,
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
    pub storage: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SessionRequest {
    /// The session id (from initialize_data_table or list_sessions).
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
    /// The session id.
    pub session_id: String,
    /// The table name.
    #[serde(alias = "table_name")]
    pub table: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RenameTableRequest {
    /// The session id.
    pub session_id: String,
    /// The table to rename.
    #[serde(alias = "table_name")]
    pub table: String,
    /// Its new name (letters, digits, _).
    pub new_name: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DoneResponse {
    pub session_id: String,
    pub message: String,
}

// ----- inspection -----------------------------------------------------------

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SummaryRequest {
    /// The session id.
    pub session_id: String,
    /// The table name.
    #[serde(alias = "table_name")]
    pub table: String,
    /// Only these columns (default all).
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// First column to summarise, for paging wide tables (default 0).
    #[serde(default)]
    pub column_offset: Option<usize>,
    /// Columns per page (default 25).
    #[serde(default)]
    pub column_limit: Option<usize>,
    /// Top values listed per text column (default 5).
    #[serde(default)]
    pub top_values: Option<usize>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SummaryResponse {
    pub session_id: String,
    pub table: String,
    pub version: u64,
    /// Shape, duplicate rows and per-column statistics.
    pub summary: Object,
    /// Reasons recorded for intentionally missing values, by column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intentional_missing_reasons: Option<Object>,
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
    /// The session id.
    pub session_id: String,
    /// The table name.
    #[serde(alias = "table_name")]
    pub table: String,
    /// head (default) or tail; ignored when offset is given.
    #[serde(default)]
    pub position: Option<Position>,
    /// First row to show (0-based).
    #[serde(default)]
    pub offset: Option<usize>,
    /// Rows to show (default 10, at most 500; fewer if the result would be too large).
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
    pub total_rows: usize,
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
    /// The session id.
    pub session_id: String,
    /// The table name.
    #[serde(alias = "table_name")]
    pub table: String,
    /// The column to count.
    pub column: String,
    /// Most frequent values to list (default 20).
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ValueCountsResponse {
    pub session_id: String,
    pub table: String,
    /// Values with counts and percentages, plus missing and distinct counts.
    pub counts: Object,
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
    /// The session id.
    pub session_id: String,
    /// The table name.
    #[serde(alias = "table_name")]
    pub table: String,
    /// Columns to fill (default: every column with missing values the strategy fits).
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// mean, median, min, max, zero, interpolate (numbers); mode, constant, forward, backward (any type).
    pub strategy: Strategy,
    /// The value for strategy "constant".
    #[serde(default)]
    pub value: Option<Cell>,
    /// forward/backward: fill at most this many consecutive missing values.
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HowWire {
    /// Drop a row if any of the columns is missing.
    #[default]
    Any,
    /// Drop a row only if all of the columns are missing.
    All,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DropMissingRequest {
    /// The session id.
    pub session_id: String,
    /// The table name.
    #[serde(alias = "table_name")]
    pub table: String,
    /// any (default) or all.
    #[serde(default)]
    pub how: Option<HowWire>,
    /// Columns to look at (default all).
    #[serde(default)]
    pub subset: Option<Vec<String>>,
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
    /// The session id.
    pub session_id: String,
    /// The table name.
    #[serde(alias = "table_name")]
    pub table: String,
    /// Columns that define a duplicate (default all).
    #[serde(default)]
    pub subset: Option<Vec<String>>,
    /// first (default), last or none.
    #[serde(default)]
    pub keep: Option<KeepWire>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct MarkMissingRequest {
    /// The session id.
    pub session_id: String,
    /// The table name.
    #[serde(alias = "table_name")]
    pub table: String,
    /// Columns whose missing values are meaningful.
    pub columns: Vec<String>,
    /// Only rows where this SQL condition holds, e.g. "status = 'closed'".
    #[serde(default)]
    pub condition: Option<String>,
    /// Remove the marks instead of adding them.
    #[serde(default)]
    pub clear: Option<bool>,
    /// Why they are missing, e.g. "not applicable for closed accounts".
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RenameColumnsRequest {
    /// The session id.
    pub session_id: String,
    /// The table name.
    #[serde(alias = "table_name")]
    pub table: String,
    /// Old name → new name.
    pub mapping: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DropColumnsRequest {
    /// The session id.
    pub session_id: String,
    /// The table name.
    #[serde(alias = "table_name")]
    pub table: String,
    /// Columns to drop.
    pub columns: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CastColumnsRequest {
    /// The session id.
    pub session_id: String,
    /// The table name.
    #[serde(alias = "table_name")]
    pub table: String,
    /// Column → type: int64, int32, float64, string, boolean, date, datetime, datetime[Europe/Paris], time, duration, categorical.
    pub casts: BTreeMap<String, String>,
    /// strftime format for text → date/datetime, e.g. "%d/%m/%Y".
    #[serde(default)]
    pub format: Option<String>,
    /// Fail (changing nothing) if any value cannot be converted; default false turns such values into missing and reports them.
    #[serde(default)]
    pub strict: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FilterRowsRequest {
    /// The session id.
    pub session_id: String,
    /// The table name.
    #[serde(alias = "table_name")]
    pub table: String,
    /// SQL boolean expression of the rows to KEEP, e.g. "price > 10 AND region IN ('EU','US')". Quote names with spaces: "\"Unit Price\" > 5".
    pub condition: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SortKeyWire {
    pub column: String,
    #[serde(default)]
    pub descending: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SortRowsRequest {
    /// The session id.
    pub session_id: String,
    /// The table name.
    #[serde(alias = "table_name")]
    pub table: String,
    /// Sort keys in order, e.g. [{"column": "date", "descending": true}].
    pub by: Vec<SortKeyWire>,
    /// Put missing values first (default last).
    #[serde(default)]
    pub nulls_first: Option<bool>,
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
    pub rows_before: u64,
    pub rows_after: u64,
    pub columns_before: u64,
    pub columns_after: u64,
    /// Per-column details (counts, values used, failures).
    pub details: Object,
    pub can_undo: bool,
    /// True when a retried request had already been applied.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub already_applied: bool,
}

// ----- history --------------------------------------------------------------

#[derive(Debug, Deserialize, JsonSchema)]
pub struct StepRequest {
    /// The session id.
    pub session_id: String,
    /// The table name.
    #[serde(alias = "table_name")]
    pub table: String,
    /// How many steps (default 1).
    #[serde(default)]
    pub steps: Option<usize>,
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
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct HistoryRequest {
    /// The session id.
    pub session_id: String,
    /// The table name.
    #[serde(alias = "table_name")]
    pub table: String,
    /// Latest operations to list (default 30).
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
    /// The session id.
    pub session_id: String,
    /// One SELECT over the session's tables by name, e.g. "SELECT region, SUM(price) FROM sales GROUP BY region".
    pub sql: String,
    /// Rows to return (default 50, at most 1000; fewer if the result would be too large).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Store the full result as a new table with this name.
    #[serde(default)]
    pub save_as: Option<String>,
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
    /// The session id.
    pub session_id: String,
    /// The table name.
    #[serde(alias = "table_name")]
    pub table: String,
    /// Where to write.
    pub path: String,
    /// csv, tsv, parquet, json, ndjson (default: from the file extension).
    #[serde(default)]
    pub format: Option<ExportFormat>,
    /// Replace an existing file (default false).
    #[serde(default)]
    pub overwrite: Option<bool>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ExportResponse {
    pub session_id: String,
    pub table: String,
    pub path: String,
    pub format: String,
    pub rows: u64,
    pub columns: u64,
    pub bytes: u64,
}
