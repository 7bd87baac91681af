//! The documents the store keeps: table state, manifests, log records.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Version of the documents below; bumped on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;

/// The format of a manifest with patched columns (parts of a layer above 0),
/// which a reader of format 1 would take for plain values: such manifests,
/// and only those, carry it, so older readers refuse them instead.
pub const PATCHED_MANIFEST_FORMAT: u32 = 2;

/// Free-form table metadata that travels with each version (and so is undone
/// and redone with it), such as intentional-missing marks.
pub type TableMeta = serde_json::Map<String, serde_json::Value>;

/// What an operation was: enough to show it in a history and to replay it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OpRecord {
    /// The tool or operation name, e.g. `fill_missing`.
    pub action: String,
    /// Its parameters, as given (replayable).
    pub params: serde_json::Value,
    /// One line a person reads, e.g. "Filled 15 missing values in Price with mean 23.4".
    pub summary: String,
}

impl OpRecord {
    pub fn new(
        action: impl Into<String>,
        params: serde_json::Value,
        summary: impl Into<String>,
    ) -> Self {
        Self {
            action: action.into(),
            params,
            summary: summary.into(),
        }
    }
}

/// One version of a table as the state document lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VersionRef {
    pub version: u64,
    pub manifest: String,
    pub rows: u64,
    pub cols: u64,
    pub action: String,
    pub summary: String,
    pub at_ms: i64,
    /// Who made this version (a principal), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// A manifest dropped from the undo/redo stacks, kept referenced for one
/// grace period so readers that just saw it can still load it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Retired {
    pub manifest: String,
    pub at_ms: i64,
}

/// The head of one table: what the compare-and-set moves.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TableState {
    pub format: u32,
    /// Stable id (logs are keyed by it; renames keep it).
    pub uid: String,
    pub name: String,
    pub created_ms: i64,
    /// The number the next committed version gets.
    pub next_version: u64,
    pub head: VersionRef,
    /// Older versions, oldest first; the last one is what undo restores.
    pub undo: Vec<VersionRef>,
    /// Undone versions; the last one is what redo restores.
    pub redo: Vec<VersionRef>,
    #[serde(default)]
    pub retired: Vec<Retired>,
    /// Ids of the latest operations, so a retried commit is not applied twice.
    #[serde(default)]
    pub recent_ops: VecDeque<String>,
}

/// How many operation ids a table remembers for idempotency.
pub(crate) const RECENT_OPS: usize = 64;

/// Where a column's data lives: row parts, each one blob.
///
/// Parts of layer 0, in order, hold the column's values. A column whose new
/// version differs from the old one in few cells keeps the old parts and adds
/// a patch: parts of the next layer, which together span every row, holding
/// the new value where a cell changed and null where it did not. A reader
/// applies the layers in order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartRef {
    pub id: String,
    pub rows: u64,
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub layer: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ColumnEntry {
    pub name: String,
    /// The dtype as polars prints it (informational; the data carries its own).
    pub dtype: String,
    pub parts: Vec<PartRef>,
}

/// An immutable snapshot of a table: its schema and where each column's data is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    pub rows: u64,
    pub columns: Vec<ColumnEntry>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub meta: TableMeta,
}

impl Manifest {
    pub fn bytes(&self) -> u64 {
        self.columns
            .iter()
            .flat_map(|c| &c.parts)
            .map(|p| p.bytes)
            .sum()
    }

    pub fn blob_ids(&self) -> impl Iterator<Item = &str> {
        self.columns
            .iter()
            .flat_map(|c| &c.parts)
            .map(|p| p.id.as_str())
    }
}

/// What kind of event a log record is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A new version (the first one included).
    Commit,
    Undo,
    Redo,
    Rename,
}

/// One entry of a table's operation log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogRecord {
    pub kind: EventKind,
    /// The version the head points at after the event.
    pub version: u64,
    /// The version it pointed at before (none for a table's first version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_version: Option<u64>,
    pub at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_id: Option<String>,
    pub action: String,
    #[serde(default)]
    pub params: serde_json::Value,
    pub summary: String,
    pub rows_before: Option<u64>,
    pub cols_before: Option<u64>,
    pub rows_after: u64,
    pub cols_after: u64,
    /// Who caused the event (a principal), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}
