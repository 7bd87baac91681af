//! Tables as MCP resources: `dataframe://{session_id}/{table}` (a bounded
//! view: shape, version, columns and the first rows) and
//! `dataframe://{session_id}/{table}/history`, listed per caller, read
//! through the same store calls as the tools, and completed from the caller's
//! own sessions, tables and columns.

use std::collections::HashMap;

use dfmcp_storage::StoreError;
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use rmcp::model::{
    CompleteRequestParams, CompleteResult, CompletionInfo, ListResourceTemplatesResult,
    ListResourcesResult, ReadResourceResult, Reference, Resource, ResourceContents,
    ResourceTemplate,
};

use crate::caller::Caller;
use crate::error::ToolError;
use crate::render::{Render, thousands};
use crate::server::DataFrameServer;
use crate::wire::{HistoryRequest, PreviewRequest, TableRef};

pub const SCHEME: &str = "dataframe://";
pub const TABLE_TEMPLATE: &str = "dataframe://{session_id}/{table}";
pub const HISTORY_TEMPLATE: &str = "dataframe://{session_id}/{table}/history";
const MARKDOWN: &str = "text/markdown";

/// Resources per page of `resources/list`.
const PAGE: usize = 100;
/// Rows shown by a table resource.
const VIEW_ROWS: usize = 20;
/// Columns listed by a table resource (the rest are counted).
const VIEW_COLUMNS: usize = 200;

/// What a segment of our URIs must escape: the separators, and what is not
/// safe in a URI.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'|');

/// A resource of ours, as named by a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableUri {
    pub session_id: String,
    pub table: String,
    pub history: bool,
}

impl TableUri {
    pub fn table(session_id: &str, table: &str) -> Self {
        TableUri {
            session_id: session_id.into(),
            table: table.into(),
            history: false,
        }
    }

    pub fn parse(uri: &str) -> Option<TableUri> {
        let rest = uri.strip_prefix(SCHEME)?;
        let parts: Vec<&str> = rest.split('/').collect();
        let (session, table, history) = match parts.as_slice() {
            [s, t] => (*s, *t, false),
            [s, t, "history"] => (*s, *t, true),
            _ => return None,
        };
        let decode = |s: &str| {
            percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|d| d.into_owned())
        };
        let (session_id, table) = (decode(session)?, decode(table)?);
        if session_id.is_empty() || table.is_empty() {
            return None;
        }
        Some(TableUri {
            session_id,
            table,
            history,
        })
    }

    pub fn uri(&self) -> String {
        let mut uri = format!(
            "{SCHEME}{}/{}",
            utf8_percent_encode(&self.session_id, SEGMENT),
            utf8_percent_encode(&self.table, SEGMENT)
        );
        if self.history {
            uri.push_str("/history");
        }
        uri
    }

    fn target(&self) -> TableRef {
        TableRef {
            session_id: self.session_id.clone(),
            table: self.table.clone(),
        }
    }
}

/// A resource link to a caller's table, for tool results.
pub fn table_link(session_id: &str, table: &str, rows: u64, columns: u64) -> Resource {
    Resource::new(
        TableUri::table(session_id, table).uri(),
        format!("{session_id}/{table}"),
    )
    .with_title(table.to_string())
    .with_description(format!(
        "{} rows × {columns} columns; read it for the columns and first rows",
        thousands(rows)
    ))
    .with_mime_type(MARKDOWN)
}

pub fn templates() -> ListResourceTemplatesResult {
    ListResourceTemplatesResult::with_all_items(vec![
        ResourceTemplate::new(TABLE_TEMPLATE, "table")
            .with_title("A table's current version")
            .with_description(
                "Shape, version, columns and the first rows of a table (markdown); preview_rows pages further.",
            )
            .with_mime_type(MARKDOWN),
        ResourceTemplate::new(HISTORY_TEMPLATE, "history")
            .with_title("A table's history")
            .with_description("The versions of a table, what made each, and which undo/redo reach.")
            .with_mime_type(MARKDOWN),
    ])
}

/// Argument names completion knows.
pub const FILL_STRATEGIES: &[&str] = &[
    "mean",
    "median",
    "mode",
    "min",
    "max",
    "zero",
    "constant",
    "forward",
    "backward",
    "interpolate",
];

impl DataFrameServer {
    /// One page of the caller's tables. The cursor is the index of the first
    /// session of the page, so a page holds whole sessions.
    pub(crate) async fn resource_page(
        &self,
        caller: &Caller,
        cursor: Option<&str>,
    ) -> Result<ListResourcesResult, ToolError> {
        let start: usize = match cursor {
            None => 0,
            Some(c) => c.parse().map_err(|_| {
                ToolError::invalid("invalid cursor: pass the nextCursor of the previous page")
            })?,
        };
        let mut sessions = self
            .store()
            .list_sessions(&caller.namespace, crate::tools::SESSION_COUNT)
            .await?;
        sessions.sort_by(|a, b| a.id.cmp(&b.id));
        let mut resources = Vec::new();
        let mut next = None;
        for (i, meta) in sessions.iter().enumerate().skip(start) {
            if resources.len() >= PAGE {
                next = Some(i.to_string());
                break;
            }
            let tables = match self.store().list_tables(&meta.id).await {
                Ok(t) => t,
                // Expired or deleted since it was listed.
                Err(StoreError::SessionNotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            let shown = caller.shown(&meta.id);
            for t in tables {
                resources.push(table_link(shown, &t.name, t.rows, t.cols));
            }
        }
        let mut page = ListResourcesResult::with_all_items(resources);
        page.next_cursor = next;
        Ok(page)
    }

    /// The bounded markdown view of a table or its history.
    pub(crate) async fn read_table_resource(
        &self,
        caller: &Caller,
        uri: &str,
    ) -> Result<Option<ReadResourceResult>, ToolError> {
        let Some(parsed) = TableUri::parse(uri) else {
            return Ok(None);
        };
        let text = if parsed.history {
            let history = self
                .history(
                    caller,
                    HistoryRequest {
                        target: parsed.target(),
                        limit: None,
                    },
                )
                .await?;
            history.markdown()
        } else {
            // One load gives the columns and the head; the preview then
            // reads the same (now cached) version.
            let session = caller.stored(&parsed.session_id)?;
            let loaded = self.store().load(&session, &parsed.table).await?;
            let columns = crate::tools::column_list(&loaded.df, usize::MAX);
            let state = &loaded.state;
            let preview = self
                .preview(
                    caller,
                    PreviewRequest {
                        target: parsed.target(),
                        position: None,
                        offset: None,
                        limit: Some(VIEW_ROWS),
                        columns: None,
                    },
                )
                .await?;
            let mut text = format!(
                "# `{}` in session `{}`\nVersion {} (undo {} / redo {} steps): {} rows × {} columns. Last change: {}\n\n## Columns\n",
                parsed.table,
                parsed.session_id,
                state.head.version,
                state.undo.len(),
                state.redo.len(),
                thousands(state.head.rows),
                columns.len(),
                state.head.summary,
            );
            for column in columns.iter().take(VIEW_COLUMNS) {
                text.push_str(&format!("- `{}`: {}\n", column.name, column.dtype));
            }
            if columns.len() > VIEW_COLUMNS {
                text.push_str(&format!(
                    "- … and {} more (get_table_summary pages through them)\n",
                    columns.len() - VIEW_COLUMNS
                ));
            }
            text.push_str("\n## First rows\n");
            text.push_str(&preview.markdown());
            text
        };
        let text = caller.scrub(&text);
        Ok(Some(ReadResourceResult::new(vec![
            ResourceContents::text(text, uri).with_mime_type(MARKDOWN),
        ])))
    }

    /// Values for one argument of a resource template or prompt: the caller's
    /// own sessions, the tables of the session already chosen, the columns of
    /// the table already chosen, fill strategies.
    pub(crate) async fn complete_argument(
        &self,
        caller: &Caller,
        request: &CompleteRequestParams,
    ) -> CompleteResult {
        let known: HashMap<String, String> = request
            .context
            .as_ref()
            .and_then(|c| c.arguments.clone())
            .unwrap_or_default();
        // A resource template reference may carry a concrete URI already.
        let from_uri = match &request.r#ref {
            Reference::Resource(r) => TableUri::parse(&r.uri),
            _ => None,
        };
        let session_arg = known
            .get("session_id")
            .cloned()
            .or_else(|| from_uri.as_ref().map(|u| u.session_id.clone()));
        let table_arg = known
            .get("table")
            .cloned()
            .or_else(|| from_uri.as_ref().map(|u| u.table.clone()));
        let prefix = request.argument.value.as_str();
        let candidates: Vec<String> = match request.argument.name.as_str() {
            "session_id" => match self
                .store()
                .list_sessions(&caller.namespace, crate::tools::SESSION_COUNT)
                .await
            {
                Ok(sessions) => sessions.iter().map(|s| caller.shown_meta(s)).collect(),
                Err(_) => Vec::new(),
            },
            "table" => match session_arg.as_deref().map(|s| caller.stored(s)) {
                Some(Ok(session)) => match self.store().list_tables(&session).await {
                    Ok(tables) => tables.into_iter().map(|t| t.name).collect(),
                    Err(_) => Vec::new(),
                },
                _ => Vec::new(),
            },
            "column" | "target_column" => {
                match (session_arg.as_deref().map(|s| caller.stored(s)), table_arg) {
                    (Some(Ok(session)), Some(table)) => {
                        match self.store().columns(&session, &table).await {
                            Ok(columns) => columns
                                .into_iter()
                                .map(|(name, _)| name)
                                .filter(|n| !n.starts_with(dfmcp_ops::columns::MARK_PREFIX))
                                .collect(),
                            Err(_) => Vec::new(),
                        }
                    }
                    _ => Vec::new(),
                }
            }
            "strategy" => FILL_STRATEGIES.iter().map(|s| s.to_string()).collect(),
            _ => Vec::new(),
        };
        completion(candidates, prefix)
    }
}

/// The candidates that start with `prefix` (case-insensitively), sorted, at
/// most the protocol's 100, with the total.
fn completion(mut candidates: Vec<String>, prefix: &str) -> CompleteResult {
    let lower = prefix.to_lowercase();
    candidates.retain(|c| c.to_lowercase().starts_with(&lower));
    candidates.sort();
    candidates.dedup();
    let total = candidates.len();
    candidates.truncate(CompletionInfo::MAX_VALUES);
    let mut info = CompletionInfo::new(candidates).unwrap_or_default();
    info.total = Some(u32::try_from(total).unwrap_or(u32::MAX));
    info.has_more = Some(total > CompletionInfo::MAX_VALUES);
    CompleteResult::new(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip_odd_names() {
        for (session, table) in [
            ("sales", "orders"),
            ("a-b_c", "Q1 / Q2 #1?"),
            ("s", "naïve 100%"),
        ] {
            let uri = TableUri::table(session, table);
            let text = uri.uri();
            assert_eq!(text.matches('/').count(), 3, "{text}");
            assert_eq!(TableUri::parse(&text), Some(uri.clone()), "{text}");
            let history = TableUri {
                history: true,
                ..uri
            };
            assert_eq!(TableUri::parse(&history.uri()), Some(history));
        }
        assert_eq!(TableUri::parse("dataframe://s"), None);
        assert_eq!(TableUri::parse("dataframe://s/t/other"), None);
        assert_eq!(TableUri::parse("file:///s/t"), None);
        assert_eq!(TableUri::parse("dataframe:///t"), None);
    }

    #[test]
    fn completion_filters_sorts_and_bounds() {
        let many: Vec<String> = (0..150).map(|i| format!("c{i:03}")).collect();
        let result = completion(many, "C");
        assert_eq!(result.completion.values.len(), 100);
        assert_eq!(result.completion.total, Some(150));
        assert_eq!(result.completion.has_more, Some(true));
        let result = completion(vec!["beta".into(), "alpha".into(), "alps".into()], "al");
        assert_eq!(result.completion.values, ["alpha", "alps"]);
        assert_eq!(result.completion.has_more, Some(false));
    }
}
