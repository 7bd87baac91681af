//! The one error type of the tools: what went wrong, in the libraries' words,
//! plus what to do next in this server's words (its tools and flags), added
//! here once for every tool.

use dfmcp_ingest::IngestError;
use dfmcp_ops::{Limit, OpsError};
use dfmcp_storage::StoreError;
use rmcp::model::{CallToolResult, ContentBlock, IntoContents};

use crate::paths::PathError;
use crate::render::time;

/// A failed tool call, shown to the model as an `isError` result.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{}", store_message(.0))]
    Store(#[from] StoreError),
    #[error("{}", ops_message(.0))]
    Ops(#[from] OpsError),
    #[error("{}", ingest_message(.0))]
    Ingest(#[from] IngestError),
    #[error("{0}")]
    Path(#[from] PathError),
    /// Arguments that cannot work, with how to fix them.
    #[error("{0}")]
    Invalid(String),
}

impl ToolError {
    pub fn invalid(message: impl Into<String>) -> Self {
        ToolError::Invalid(message.into())
    }
}

impl IntoContents for ToolError {
    fn into_contents(self) -> Vec<ContentBlock> {
        vec![ContentBlock::text(self.to_string())]
    }
}

impl From<ToolError> for CallToolResult {
    fn from(e: ToolError) -> Self {
        CallToolResult::error(e.into_contents())
    }
}

fn store_message(e: &StoreError) -> String {
    match e {
        StoreError::SessionNotFound { .. } => format!(
            "{e}. Start a new session with initialize_data_table (without session_id), or call list_sessions to see yours."
        ),
        StoreError::SessionExists { .. } => {
            format!("{e}; pick another session_id, or omit it to get a fresh one.")
        }
        StoreError::TableExists { .. } => {
            format!("{e}; choose another table_name, or drop_table it first.")
        }
        StoreError::Conflict { .. } => format!(
            "{e}. Other agents kept changing this table; call the tool again (it re-reads the latest version)."
        ),
        StoreError::VersionMismatch {
            name,
            expected,
            current,
            last_event,
        } => {
            let mut text = format!(
                "table '{name}' is at version {}, not {expected}; nothing was changed.",
                current.version
            );
            if let Some(event) = last_event {
                let who = event
                    .actor
                    .as_deref()
                    .map(|a| format!(" by {a}"))
                    .unwrap_or_default();
                text.push_str(&format!(
                    " It was last moved{who} at {}: {} ({}).",
                    time(event.at_ms),
                    event.action,
                    event.summary
                ));
            }
            text.push_str(&format!(
                " Look at the table again (preview_rows, get_history) and, if the change still makes sense, retry with expected_version {}.",
                current.version
            ));
            text
        }
        StoreError::RequestIdReused { .. } => {
            format!("{e}; use a new request_id for a new change.")
        }
        StoreError::NothingTo { .. } => {
            format!("{e}. get_history shows where the table stands.")
        }
        StoreError::TooLarge { .. } => format!(
            "{e}; filter rows or drop columns first, or raise the limit with --max-table-bytes (MAX_TABLE_BYTES)."
        ),
        StoreError::TooWide { .. } => format!(
            "{e}; drop columns first, or raise --redis-max-request-bytes (REDIS_MAX_REQUEST_BYTES) if your Redis accepts larger requests."
        ),
        StoreError::Unavailable { .. } => format!("{e}; retry in a moment."),
        StoreError::IncompatibleFormat { .. } => format!(
            "{e}; upgrade dataframe-mcp, or point it at another data directory with --data-dir."
        ),
        StoreError::Io { source, .. } => {
            use std::io::ErrorKind::*;
            let hint = match source.kind() {
                PermissionDenied | ReadOnlyFilesystem => {
                    " (the data directory is not writable: fix its permissions or choose another with --data-dir / DATAFRAME_MCP_DATA_DIR)"
                }
                StorageFull | QuotaExceeded => {
                    " (the disk is full: free space or choose another --data-dir)"
                }
                _ => "",
            };
            format!("{e}{hint}")
        }
        StoreError::Internal(message) if out_of_memory(message) => format!(
            "the operation ran out of memory ({message}). Work on less data at a time: filter_rows, drop_columns, or query_sql with LIMIT; or give the server more memory."
        ),
        StoreError::Cancelled => "the operation was cancelled; nothing was changed.".into(),
        _ => e.to_string(),
    }
}

fn out_of_memory(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("allocat") || m.contains("out of memory") || m.contains("capacity overflow")
}

fn ops_message(e: &OpsError) -> String {
    match e {
        OpsError::LimitExceeded { limit, message } => {
            let raise = match limit {
                Limit::QueryRows => {
                    "; add a join condition or filter the tables first, or raise the limit with --max-query-rows (MAX_QUERY_ROWS)"
                }
                Limit::QueryBytes => {
                    "; select fewer or shorter columns, or raise the limit with --max-query-bytes (MAX_QUERY_BYTES)"
                }
                _ => "",
            };
            format!("{message}{raise}.")
        }
        OpsError::RefusedSql(_) | OpsError::BadSql { .. } => format!(
            "{e}. query_sql runs one SELECT over the session's tables (list_tables shows them); files are loaded with initialize_data_table."
        ),
        _ => e.to_string(),
    }
}

fn ingest_message(e: &IngestError) -> String {
    match e {
        IngestError::FileTooLarge { .. } => format!(
            "{e}; load a smaller extract, or raise the limit with --max-file-bytes (MAX_FILE_BYTES)."
        ),
        IngestError::TooManyRows { .. } => format!(
            "{e}; pass max_rows to load only the first rows, or raise the limit with --max-rows (MAX_ROWS)."
        ),
        IngestError::TooManyColumns { .. } => format!(
            "{e}; check the delimiter (pass delimiter), or raise the limit with --max-columns (MAX_COLUMNS)."
        ),
        IngestError::TooComplex { .. } => format!(
            "{e}. The file is refused before it is parsed, to protect the server's memory; flatten or split it first."
        ),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker that could not allocate says so and how to use less memory,
    /// instead of "a worker panicked".
    #[test]
    fn running_out_of_memory_says_what_to_do() {
        let e = StoreError::Internal("memory allocation of 8589934592 bytes failed".into());
        let message = store_message(&e);
        assert!(
            message.starts_with("the operation ran out of memory"),
            "{message}"
        );
        assert!(message.contains("filter_rows"), "{message}");
        let other = store_message(&StoreError::Internal("a worker panicked: boom".into()));
        assert!(!other.contains("memory"), "{other}");
    }
}
