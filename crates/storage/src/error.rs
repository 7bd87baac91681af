//! The one error type of the storage crate.
//!
//! Messages say what went wrong in the store's own terms; they never name the
//! server's tools or command-line flags. The server adds what to do next.

use std::fmt;

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The session does not exist, or its idle TTL ran out (the two are
    /// deliberately indistinguishable).
    #[error("session '{id}' does not exist or has expired")]
    SessionNotFound { id: String },

    /// A caller-chosen session id is already taken.
    #[error("session '{id}' already exists")]
    SessionExists { id: String },

    /// No table of that name in the session.
    #[error("table '{name}' not found in session '{session}'; {}", list_or_none(.existing))]
    TableNotFound {
        session: String,
        name: String,
        existing: Vec<String>,
    },

    /// Creating or renaming onto a name that is taken.
    #[error("table '{name}' already exists in session '{session}'")]
    TableExists { session: String, name: String },

    /// Another writer moved the table's head first, again and again, until
    /// the store gave up retrying.
    #[error(
        "table '{name}' kept being changed by other writers while this operation ran (expected revision {expected}, found {found})"
    )]
    Conflict {
        name: String,
        expected: u64,
        found: Revision,
    },

    /// The caller expected the table at one version and it is at another:
    /// nothing was changed.
    #[error(
        "table '{name}' is at version {}, not {expected}{}; nothing was changed",
        .current.version,
        moved_by(.last_event)
    )]
    VersionMismatch {
        name: String,
        expected: u64,
        current: Box<crate::model::VersionRef>,
        /// The event that last moved the head, when the log has it.
        last_event: Option<Box<crate::model::LogRecord>>,
    },

    /// A request id was used before for a different change.
    #[error(
        "request id '{request_id}' was already used for a different change ({previous}); nothing was done"
    )]
    RequestIdReused {
        request_id: String,
        previous: String,
    },

    /// Undo with an empty undo stack, or redo with an empty redo stack.
    #[error("nothing to {what} on table '{name}': {why}")]
    NothingTo {
        what: &'static str,
        name: String,
        why: String,
    },

    /// A table larger than the configured cap.
    #[error("table '{name}' would take {size} bytes in memory, over the limit of {limit} bytes")]
    TooLarge { name: String, size: u64, limit: u64 },

    /// A single document (a manifest of a very wide table) larger than the
    /// backend accepts in one request.
    #[error(
        "table '{name}' has too many columns for this storage backend: its manifest would be {size} bytes, over the backend's request limit of {limit} bytes"
    )]
    TooWide { name: String, size: u64, limit: u64 },

    /// A session id or table name that cannot be used.
    #[error("invalid {what} '{value}': {reason}")]
    InvalidName {
        what: &'static str,
        value: String,
        reason: &'static str,
    },

    /// The backend cannot be reached. Transient: the store recovers by itself
    /// once the backend is back.
    #[error("storage backend {backend} is unavailable: {message}")]
    Unavailable {
        backend: &'static str,
        message: String,
        #[source]
        source: Option<Source>,
    },

    /// Stored data that should be there is missing or unreadable.
    #[error("stored data is damaged: {0}")]
    Corrupt(String),

    /// The data was written by a newer, incompatible version of this program.
    #[error(
        "{location} was written in store format {found}, but this build understands format {supported} only"
    )]
    IncompatibleFormat {
        location: String,
        found: u32,
        supported: u32,
    },

    /// A local file system problem (unwritable data dir, full disk, ...).
    #[error("{context}: {source}")]
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
        #[source]
        source: Option<Source>,
    },

    /// Encoding or decoding a frame failed.
    #[error("encoding table data failed: {0}")]
    Polars(#[from] polars::error::PolarsError),

    /// The work was cancelled by its caller before it finished.
    #[error("the operation was cancelled")]
    Cancelled,

    /// Work that ran on a worker thread did not finish (it panicked).
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
        "the session has no tables".to_string()
    } else {
        format!("tables in this session: {}", names.join(", "))
    }
}

fn moved_by(event: &Option<Box<crate::model::LogRecord>>) -> String {
    match event.as_deref() {
        None => String::new(),
        Some(e) => {
            let who = e
                .actor
                .as_deref()
                .map(|a| format!(" by {a}"))
                .unwrap_or_default();
            format!(" (last moved{who}: {} — {})", e.action, e.summary)
        }
    }
}

impl StoreError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn unavailable(
        backend: &'static str,
        message: impl Into<String>,
        source: Option<Source>,
    ) -> Self {
        StoreError::Unavailable {
            backend,
            message: message.into(),
            source,
        }
    }

    pub(crate) fn backend(
        backend: &'static str,
        message: impl Into<String>,
        source: Option<Source>,
    ) -> Self {
        StoreError::Backend {
            backend,
            message: message.into(),
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

    /// The kind of local file system failure, if this is one.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            StoreError::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
