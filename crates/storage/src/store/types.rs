//! What the store hands out and takes in: loaded tables, edits, intents and
//! the results of writes.

use polars::prelude::DataFrame;

use crate::StoreError;
use crate::ids::new_uid;
use crate::model::{LogRecord, OpRecord, TableMeta, TableState, VersionRef};

/// A table version loaded into memory.
#[derive(Clone)]
pub struct Loaded {
    pub session: String,
    pub name: String,
    /// The revision this was read at; a commit on top of it expects it.
    pub rev: u64,
    pub state: TableState,
    pub df: DataFrame,
    pub meta: TableMeta,
    /// Per column of `df`, in order, an id of its content (the same values
    /// give the same id, in any version), for caches of derived facts.
    pub column_ids: std::sync::Arc<[String]>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("session", &self.session)
            .field("name", &self.name)
            .field("rev", &self.rev)
            .field("version", &self.state.head.version)
            .field("shape", &self.df.shape())
            .finish()
    }
}

/// A new version to commit.
pub struct Edit {
    pub df: DataFrame,
    pub meta: TableMeta,
    pub op: OpRecord,
}

/// Who asks for a write, and how a retry of it is recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// Identifies the operation: a second write with the same id is
    /// recognised as a retry and not applied again.
    pub op_id: String,
    /// Act only if the table is at this version (optimistic concurrency);
    /// otherwise change nothing and say what moved it.
    pub expected_version: Option<u64>,
    /// Who asks (a principal), recorded in the history.
    pub actor: Option<String>,
}

impl Intent {
    /// A fresh operation id, no version expectation, no actor.
    pub fn new() -> Self {
        Intent {
            op_id: new_uid(),
            expected_version: None,
            actor: None,
        }
    }

    /// An intent whose operation id is given (an idempotency key).
    pub fn with_op_id(op_id: impl Into<String>) -> Self {
        Intent {
            op_id: op_id.into(),
            ..Intent::new()
        }
    }

    pub fn expecting(mut self, version: Option<u64>) -> Self {
        self.expected_version = version;
        self
    }

    pub fn by(mut self, actor: Option<String>) -> Self {
        self.actor = actor;
        self
    }
}

impl Default for Intent {
    fn default() -> Self {
        Intent::new()
    }
}

/// The result of a commit.
#[derive(Debug, Clone)]
pub struct Committed {
    pub version: u64,
    pub rev: u64,
    pub rows: u64,
    pub cols: u64,
    /// Parts written by this commit (not already stored).
    pub parts_written: usize,
    /// Parts reused from stored data.
    pub parts_reused: usize,
    pub bytes_written: u64,
}

/// What a commit did.
#[derive(Debug, Clone)]
pub enum CommitOutcome {
    /// A new version.
    Committed(Committed),
    /// The edit holds exactly the base version's data and metadata: no new
    /// version was made.
    Unchanged { version: u64 },
    /// An earlier attempt with the same operation id already committed.
    AlreadyApplied {
        version: u64,
        /// The log record of that commit, when the log still has it.
        record: Option<Box<LogRecord>>,
    },
}

/// The result of an undo or redo.
#[derive(Debug, Clone)]
pub struct Moved {
    /// The head before the move.
    pub from: VersionRef,
    /// The head after it.
    pub to: VersionRef,
    /// Versions undone (left behind) or redone (reached), in order.
    pub steps: Vec<VersionRef>,
    pub rev: u64,
    pub undo_depth: usize,
    pub redo_depth: usize,
    /// The move had already been made by an earlier attempt with the same
    /// operation id; nothing moved now.
    pub already_applied: bool,
}

/// What [`crate::Store::update`] did.
pub enum Updated<T> {
    Applied {
        committed: Committed,
        output: T,
    },
    /// The operation changed nothing: no version was made.
    Unchanged {
        version: u64,
        output: T,
    },
    /// An earlier attempt with the same operation id already committed.
    AlreadyApplied {
        version: u64,
        record: Option<Box<LogRecord>>,
    },
}

/// Failure of [`crate::Store::update`]: the store's, or the edit function's own.
#[derive(Debug)]
pub enum UpdateError<E> {
    Store(StoreError),
    Apply(E),
}

impl<E> From<StoreError> for UpdateError<E> {
    fn from(e: StoreError) -> Self {
        UpdateError::Store(e)
    }
}

/// A table as a listing shows it.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub name: String,
    pub version: u64,
    pub rows: u64,
    pub cols: u64,
    pub undo_depth: usize,
    pub redo_depth: usize,
    pub last_action: String,
    pub last_summary: String,
    pub updated_ms: i64,
}

/// Where a version stands relative to the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionStatus {
    /// The head.
    Current,
    /// Applied and reachable by undo.
    Undoable,
    /// Applied, but older than the undo limit.
    BeyondUndoLimit,
    /// Undone; reachable by redo.
    Redoable,
    /// Undone and then discarded by a newer commit (or beyond the redo limit).
    Discarded,
}

/// One committed version in a history.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub record: LogRecord,
    pub status: VersionStatus,
}

/// A table's history.
#[derive(Debug, Clone)]
pub struct History {
    pub table: String,
    pub current_version: u64,
    pub undo_depth: usize,
    pub redo_depth: usize,
    /// Committed versions the log still holds, oldest first.
    pub versions: Vec<HistoryEntry>,
    /// Undo, redo and rename events, oldest first.
    pub events: Vec<LogRecord>,
    /// Whether older records were trimmed from the log.
    pub trimmed: bool,
}

/// Bytes a session keeps in the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub blobs: usize,
    pub bytes: u64,
}

/// What a garbage collection pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    pub deleted: usize,
    pub bytes_freed: u64,
    pub kept: usize,
}

/// What a maintenance pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maintenance {
    pub purged: usize,
    pub gc: GcReport,
    /// Sessions whose collection failed (retried at the next pass), with why.
    pub failed: Vec<(String, String)>,
}
