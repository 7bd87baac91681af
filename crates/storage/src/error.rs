//! The one error type of the storage crate.

use std::fmt;

/// Everything a store operation can fail with.
///
/// Messages are written for the reader who must act: each says what went
/// wrong and what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The session does not exist, or its idle TTL ran out (the two are
    /// deliberately indistinguishable).
    #[error(
        "session '{id}' does not exist or has expired; start a new one by calling initialize_data_table without session_id, or call list_sessions to see the live ones"
    )]
    SessionNotFound { id: String },

    /// A caller-chosen session id is already taken.
    #[error("session '{id}' already exists; pick another name or omit it to get a fresh UUID")]
    SessionExists { id: String },

    /// No table of that name in the session.
    #[error("table '{name}' not found in session '{session}'; {}", list_or_none(.existing))]
    TableNotFound {
        session: String,
        name: String,
        existing: Vec<String>,
    },

    /// Creating or renaming onto a name that is taken.
    #[error(
        "table '{name}' already exists in session '{session}'; choose another table_name, or drop_table it first"
    )]
    TableExists { session: String, name: String },

    /// Another writer moved the table's head first (compare-and-set lost).
    #[error(
        "table '{name}' was changed by another writer while this operation ran (expected revision {expected}, found {found}); reload and retry"
    )]
    Conflict {
        name: String,
        expected: u64,
        found: Revision,
    },

    /// Undo with an empty undo stack, or redo with an empty redo stack.
    #[error("nothing to {what} on table '{name}': {why}")]
    NothingTo {
        what: &'static str,
        name: String,
        why: String,
    },

    /// A table larger than the configured cap.
    #[error(
        "table '{name}' would take {size} bytes in memory, over the {limit}-byte limit; filter or drop columns first, or raise the limit (--max-table-bytes / MAX_TABLE_BYTES)"
    )]
    TooLarge { name: String, size: u64, limit: u64 },

    /// A session id or table name that cannot be used.
    #[error("invalid {what} '{value}': {reason}")]
    InvalidName {
        what: &'static str,
        value: String,
        reason: &'static str,
    },

    /// The backend cannot be reached. Transient: the store recovers by itself
    /// once the backend is back.
    #[error("storage backend {backend} is unavailable: {message}; retry in a moment")]
    Unavailable {
        backend: &'static str,
        message: String,
    },

    /// Stored data that should be there is missing or unreadable.
    #[error("stored data is damaged: {0}")]
    Corrupt(String),

    /// The data was written by a newer, incompatible version of this program.
    #[error(
        "{location} was written in store format {found}, but this build understands format {supported} only; upgrade dataframe-mcp or point it at another data directory"
    )]
    IncompatibleFormat {
        location: String,
        found: u32,
        supported: u32,
    },

    /// A local file system problem (unwritable data dir, full disk, ...).
    #[error("{context}: {source}{}", io_hint(.source))]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// Any other backend failure, with the backend's own message.
    #[error("storage backend {backend} failed: {message}")]
    Backend {
        backend: &'static str,
        message: String,
    },

    /// Encoding or decoding a frame failed.
    #[error("encoding table data failed: {0}")]
    Polars(#[from] polars::error::PolarsError),

    /// Work that ran on a worker thread did not finish (it panicked or was
    /// cancelled).
    #[error("internal error: {0}")]
    Internal(String),
}

/// The revision a conflicting writer left behind, if the table still exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revision {
    Absent,
    At(u64),
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Revision::Absent => f.write_str("none (the table is gone)"),
            Revision::At(rev) => write!(f, "{rev}"),
        }
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "the session has no tables yet; load one with initialize_data_table".to_string()
    } else {
        format!("tables in this session: {}", names.join(", "))
    }
}

fn io_hint(err: &std::io::Error) -> &'static str {
    use std::io::ErrorKind::*;
    match err.kind() {
        PermissionDenied | ReadOnlyFilesystem => {
            " (the data directory is not writable: fix its permissions or choose another with --data-dir / DATAFRAME_MCP_DATA_DIR)"
        }
        StorageFull | QuotaExceeded => {
            " (the disk is full: free space or choose another --data-dir)"
        }
        _ => "",
    }
}

impl StoreError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }

    /// True for failures that may go away by themselves (backend down,
    /// lost compare-and-set).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable { .. } | StoreError::Conflict { .. }
        )
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
