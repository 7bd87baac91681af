//! What a model reads: each response type as compact markdown, sent with the
//! same data as structured content, within the result size budget.

use rmcp::model::{CallToolResult, ContentBlock};
use serde::Serialize;
use serde_json::Value;

use crate::wire::*;

/// A response with a text form.
pub trait Render: Serialize {
    fn markdown(&self) -> String;
}

/// A successful result: the markdown for reading, the data as
/// structuredContent; `note` (a fallback-store warning) ends the text.
pub fn respond<T: Render>(data: &T, max_chars: usize, note: Option<&str>) -> CallToolResult {
    let value = match serde_json::to_value(data) {
        Ok(v) => v,
        Err(e) => {
            return CallToolResult::error(vec![ContentBlock::text(format!(
                "internal error: could not encode the result: {e}"
            ))]);
        }
    };
    let mut text = data.markdown();
    if let Some(note) = note {
        text.push_str(&format!("\nNote: {note}"));
    }
    let size = text.len() + value.to_string().len();
    if size > max_chars + max_chars / 5 {
        // Tools bound their own output; this is the last line of defence
        // against a result the client would reject.
        tracing::warn!(size, max_chars, "result over budget");
        return CallToolResult::error(vec![ContentBlock::text(format!(
            "the result would be {size} characters, over this server's limit of {max_chars}; ask for fewer rows or columns (limit, columns, column_limit)"
        ))]);
    }
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(value);
    result
}

/// A cell as markdown text: escaped pipes, no newlines.
pub fn cell(v: &Value) -> String {
    let s = match v {
        Value::Null => return "∅".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// A markdown table.
pub fn table(headers: &[String], rows: &[Vec<Value>]) -> String {
    let mut out = String::new();
    out.push_str("| ");
    out.push_str(
        &headers
            .iter()
            .map(|h| h.replace('|', "\\|"))
            .collect::<Vec<_>>()
            .join(" | "),
    );
    out.push_str(" |\n|");
    out.push_str(&"---|".repeat(headers.len()));
    out.push('\n');
    for row in rows {
        out.push_str("| ");
        out.push_str(&row.iter().map(cell).collect::<Vec<_>>().join(" | "));
        out.push_str(" |\n");
    }
    out
}

/// How many of `rows` fit in `budget` characters, counting each row twice
/// (markdown and JSON).
pub fn rows_that_fit(rows: &[Vec<Value>], budget: usize) -> usize {
    let mut used = 0;
    for (i, row) in rows.iter().enumerate() {
        let json = serde_json::to_string(row).map(|s| s.len()).unwrap_or(64);
        let md: usize = row.iter().map(|c| cell(c).len() + 3).sum::<usize>() + 4;
        used += json + md;
        if used > budget {
            return i;
        }
    }
    rows.len()
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Milliseconds since the epoch as an RFC 3339 UTC time.
pub fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn opt_f(v: Option<f64>) -> String {
    v.map(dfmcp_ops::missing::fmt_num)
        .unwrap_or_else(|| "–".into())
}

impl Render for InitializeResponse {
    fn markdown(&self) -> String {
        let mut text = if self.file_name.is_empty() {
            format!(
                "Session `{}`{}: copied {} table{}.\n",
                self.session_id,
                if self.created_session { " (new)" } else { "" },
                self.tables.len(),
                plural(self.tables.len())
            )
        } else {
            format!(
                "Session `{}`{}: loaded {} table{} from {} ({}).\n",
                self.session_id,
                if self.created_session { " (new)" } else { "" },
                self.tables.len(),
                plural(self.tables.len()),
                self.file_name,
                self.format
            )
        };
        if self.already_applied {
            text.push_str("(This request had already been applied; nothing was loaded again.)\n");
        }
        for t in &self.tables {
            let cols: Vec<String> = t
                .schema
                .iter()
                .take(12)
                .map(|c| format!("{} ({})", c.name, c.dtype))
                .collect();
            text.push_str(&format!(
                "- `{}`: {} rows × {} columns: {}{}\n",
                t.table,
                thousands(t.rows),
                t.columns,
                cols.join(", "),
                if t.columns > 12 { ", …" } else { "" }
            ));
            for n in &t.notes {
                text.push_str(&format!("  - note: {n}\n"));
            }
        }
        for n in &self.notes {
            text.push_str(&format!("Note: {n}\n"));
        }
        for p in &self.problems {
            text.push_str(&format!("Problem with {}: {}\n", p.source, p.message));
        }
        if let Some(first) = self.tables.first() {
            text.push_str(&format!(
                "Next: get_table_summary or preview_rows with session_id \"{}\" and table \"{}\".",
                self.session_id, first.table
            ));
        }
        text
    }
}

impl Render for InspectFileResponse {
    fn markdown(&self) -> String {
        let mut text = format!(
            "{}: {} ({}).\n",
            self.path,
            self.format,
            dfmcp_ingest::human_bytes(self.size_bytes)
        );
        if let Some(t) = &self.text {
            text.push_str(&format!(
                "Encoding {}, delimiter '{}', {}; about {} data rows.\n",
                t.encoding,
                t.delimiter,
                if t.has_header {
                    "header row found"
                } else {
                    "no header row"
                },
                thousands(t.estimated_rows)
            ));
            let rows: Vec<Vec<Value>> = t
                .sample_rows
                .iter()
                .map(|r| r.iter().map(|c| Value::String(c.clone())).collect())
                .collect();
            if !t.columns.is_empty() {
                text.push_str(&table(&t.columns, &rows));
            }
        }
        for sheet in &self.sheets {
            match &sheet.problem {
                Some(p) => text.push_str(&format!("- sheet '{}': {p}\n", sheet.name)),
                None => text.push_str(&format!(
                    "- sheet '{}': {} rows × {} columns{}: {}\n",
                    sheet.name,
                    thousands(sheet.rows as u64),
                    sheet.columns.len(),
                    sheet
                        .header_row
                        .map(|r| format!(", header on row {r}"))
                        .unwrap_or_default(),
                    sheet.columns.join(", ")
                )),
            }
        }
        if let Some(rows) = self.rows {
            text.push_str(&format!("{} rows.\n", thousands(rows as u64)));
        }
        if !self.schema.is_empty() {
            let cols: Vec<String> = self
                .schema
                .iter()
                .map(|c| format!("{} ({})", c.name, c.dtype))
                .collect();
            text.push_str(&format!("Columns: {}\n", cols.join(", ")));
        }
        for n in &self.notes {
            text.push_str(&format!("Note: {n}\n"));
        }
        text
    }
}

impl Render for ListSessionsResponse {
    fn markdown(&self) -> String {
        let total = self.sessions.len() + self.omitted;
        let mut text = format!(
            "{total} live session{} ({}).\n",
            plural(total),
            self.storage
        );
        for s in &self.sessions {
            text.push_str(&format!(
                "- `{}`: last used {}, expires {}\n",
                s.session_id, s.last_access, s.expires
            ));
        }
        if self.omitted > 0 {
            text.push_str(&format!("(and {} more)\n", self.omitted));
        }
        if let Some(w) = &self.warning {
            text.push_str(&format!("Warning: {w}\n"));
        }
        text
    }
}

impl Render for ListTablesResponse {
    fn markdown(&self) -> String {
        let mut text = format!(
            "Session `{}` has {} table{}.\n",
            self.session_id,
            self.tables.len(),
            plural(self.tables.len())
        );
        for t in &self.tables {
            text.push_str(&format!(
                "- `{}`: {} rows × {} columns, version {} ({} undo / {} redo steps); last: {}\n",
                t.table,
                thousands(t.rows),
                t.columns,
                t.version,
                t.undo_steps,
                t.redo_steps,
                t.last_change
            ));
        }
        text
    }
}

impl Render for DoneResponse {
    fn markdown(&self) -> String {
        self.message.clone()
    }
}

impl Render for SummaryResponse {
    fn markdown(&self) -> String {
        let mut text = format!(
            "Table `{}` (version {}): {} rows × {} columns, {} duplicate rows, {} in memory.\n",
            self.table,
            self.version,
            thousands(self.rows as u64),
            self.columns,
            thousands(self.duplicate_rows as u64),
            dfmcp_ingest::human_bytes(self.memory_bytes as u64)
        );
        let headers: Vec<String> = ["column", "type", "missing", "distinct", "stats"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let rows: Vec<Vec<Value>> = self
            .column_summaries
            .iter()
            .map(|c| {
                let missing = if c.intentional_missing > 0 {
                    format!(
                        "{} ({}%) + {} intentional",
                        c.missing, c.missing_pct, c.intentional_missing
                    )
                } else {
                    format!("{} ({}%)", c.missing, c.missing_pct)
                };
                let stats = if let Some(n) = &c.numeric {
                    format!(
                        "min {}, max {}, mean {}, median {}, std {}",
                        opt_f(n.min),
                        opt_f(n.max),
                        opt_f(n.mean),
                        opt_f(n.median),
                        opt_f(n.std)
                    )
                } else if let Some(t) = &c.text {
                    let top: Vec<String> = t
                        .top
                        .iter()
                        .map(|v| format!("{} ({})", dfmcp_ops::values::cut(&v.value, 40), v.count))
                        .collect();
                    format!("top: {}", top.join(", "))
                } else if let Some(r) = &c.range {
                    format!(
                        "{} … {}",
                        r.min.as_deref().unwrap_or("–"),
                        r.max.as_deref().unwrap_or("–")
                    )
                } else if let Some(b) = &c.boolean {
                    format!("true {}, false {}", b.true_count, b.false_count)
                } else {
                    String::new()
                };
                vec![
                    Value::String(c.name.clone()),
                    Value::String(c.dtype.clone()),
                    Value::String(missing),
                    Value::from(c.distinct),
                    Value::String(stats),
                ]
            })
            .collect();
        text.push_str(&table(&headers, &rows));
        if let Some(next) = self.next_column_offset {
            text.push_str(&format!(
                "Columns {}–{} of {} shown; call again with column_offset={next} for more.\n",
                self.column_offset + 1,
                next,
                self.columns
            ));
        }
        if !self.intentional_missing_reasons.is_empty() {
            let list: Vec<String> = self
                .intentional_missing_reasons
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            text.push_str(&format!("Intentionally missing: {}\n", list.join("; ")));
        }
        text
    }
}

/// A markdown table of cells under their columns' names and types (as many
/// columns as the rows hold).
fn cell_table(columns: &[ColumnInfo], rows: &[Vec<Cell>]) -> String {
    let width = rows
        .first()
        .map_or(columns.len(), Vec::len)
        .min(columns.len());
    let headers: Vec<String> = columns[..width]
        .iter()
        .map(|c| format!("{} ({})", c.name, c.dtype))
        .collect();
    let rows: Vec<Vec<Value>> = rows
        .iter()
        .map(|r| r.iter().map(|c| c.0.clone()).collect())
        .collect();
    table(&headers, &rows)
}

impl RowsResponse {
    fn markdown(&self) -> String {
        let mut text = if self.rows.is_empty() {
            "(no rows)\n".to_string()
        } else {
            cell_table(&self.columns, &self.rows)
        };
        let end = self.offset + self.rows.len();
        let total = match self.total_rows {
            Some(n) => thousands(n as u64),
            None => format!("more than {}", thousands(end as u64)),
        };
        if self.truncated {
            text.push_str(&format!(
                "Showing rows {}–{end} of {total}. {}\n",
                self.offset + 1,
                self.next.clone().unwrap_or_default()
            ));
        } else {
            text.push_str(&format!("{} of {total} rows shown.\n", self.rows.len()));
        }
        text
    }
}

impl Render for PreviewResponse {
    fn markdown(&self) -> String {
        format!(
            "Table `{}` (version {}):\n{}",
            self.table,
            self.version,
            self.rows.markdown()
        )
    }
}

impl Render for ValueCountsResponse {
    fn markdown(&self) -> String {
        let rows: Vec<Vec<Value>> = self
            .values
            .iter()
            .map(|v| {
                vec![
                    v.value.0.clone(),
                    v.count.into(),
                    format!("{}%", v.percent).into(),
                ]
            })
            .collect();
        let mut text = format!(
            "`{}` in `{}`: {} distinct values, {} missing of {} rows.\n",
            self.column,
            self.table,
            thousands(self.distinct as u64),
            thousands(self.missing as u64),
            thousands(self.rows as u64)
        );
        text.push_str(&table(
            &["value".into(), "count".into(), "percent".into()],
            &rows,
        ));
        if self.others > 0 {
            let how = if self.max_limit {
                "the list is at its longest (limit 500); for the full list run query_sql with GROUP BY and save_as"
            } else {
                "raise limit to see more"
            };
            text.push_str(&format!(
                "… and {} other values ({} rows); {how}.\n",
                thousands(self.others as u64),
                thousands(self.others_count as u64)
            ));
        }
        text
    }
}

impl Render for ChangeResponse {
    fn markdown(&self) -> String {
        if self.already_applied {
            return format!(
                "This request had already been applied: {}. Nothing was done again; table `{}` is at version {}.",
                self.summary, self.table, self.version
            );
        }
        if !self.changed {
            return format!(
                "Nothing to change: {}. Table `{}` stays at version {} ({} rows × {} columns); no version was made.",
                self.summary,
                self.table,
                self.version,
                thousands(self.rows_after),
                self.columns_after
            );
        }
        let mut text = format!(
            "{}.\nTable `{}` is now at version {} ({} rows × {} columns; was {} × {}). Undo with `undo`.",
            self.summary,
            self.table,
            self.version,
            thousands(self.rows_after),
            self.columns_after,
            thousands(self.rows_before),
            self.columns_before
        );
        // What the caller should know beyond the summary: ambiguous dates,
        // values that did not convert, codes that look like "missing".
        if let Some(Value::Array(warnings)) = self.details.get("warnings") {
            for w in warnings.iter().filter_map(Value::as_str) {
                text.push_str(&format!("\nNote: {w}"));
            }
        }
        text
    }
}

impl Render for StepResponse {
    fn markdown(&self) -> String {
        let verb = if self.undo { "Undid" } else { "Redid" };
        let mut text = String::new();
        if self.already_applied {
            text.push_str("This request had already been applied; nothing moved again.\n");
        }
        for d in &self.moved {
            text.push_str(&format!("{verb}: {d}\n"));
        }
        if !self.already_applied && self.moved.len() < self.requested {
            text.push_str(&format!(
                "Stopped after {} of {} steps: nothing more to {}.\n",
                self.moved.len(),
                self.requested,
                if self.undo { "undo" } else { "redo" }
            ));
        }
        text.push_str(&format!(
            "Table `{}` is at version {} ({} rows × {} columns); {} undo / {} redo steps available.",
            self.table,
            self.version,
            thousands(self.rows),
            self.columns,
            self.undo_steps,
            self.redo_steps
        ));
        text
    }
}

impl Render for HistoryResponse {
    fn markdown(&self) -> String {
        let mut text = format!(
            "History of `{}`: version {} is current; {} undo / {} redo steps available.\n",
            self.table, self.current_version, self.undo_steps, self.redo_steps
        );
        if self.omitted > 0 {
            text.push_str(&format!(
                "({} older operations not shown; raise limit to see more of them)\n",
                self.omitted
            ));
        }
        for item in &self.operations {
            let marker = if item.status == "current" { "→" } else { " " };
            text.push_str(&format!(
                "{marker} v{} {} [{}] {}: {} ({} × {}){}\n",
                item.version,
                item.time,
                item.status,
                item.action,
                item.summary,
                thousands(item.rows_after),
                item.columns_after,
                item.by
                    .as_deref()
                    .map(|b| format!(" by {b}"))
                    .unwrap_or_default()
            ));
        }
        text
    }
}

impl Render for QueryResponse {
    fn markdown(&self) -> String {
        let mut text = String::new();
        if let Some(name) = &self.saved_as {
            text.push_str(&format!(
                "Saved the result as table `{name}` ({} rows).\n",
                self.rows
                    .total_rows
                    .map(|n| thousands(n as u64))
                    .unwrap_or_default()
            ));
        }
        text.push_str(&self.rows.markdown());
        text
    }
}

impl Render for ExportResponse {
    fn markdown(&self) -> String {
        let place = match (&self.path, &self.url) {
            (Some(path), _) => path.clone(),
            (None, Some(url)) => format!(
                "a download: {url} (GET it with your bearer token, until the session expires)"
            ),
            (None, None) => "nowhere".into(),
        };
        format!(
            "Wrote table `{}` ({} rows × {} columns) to {place} as {} ({}).",
            self.table,
            thousands(self.rows),
            self.columns,
            self.format,
            dfmcp_ingest::human_bytes(self.bytes)
        )
    }
}

impl Render for HealthResponse {
    fn markdown(&self) -> String {
        let mut text = format!(
            "Status {}: dataframe-mcp {} over {}, {} ({}).\n",
            self.status,
            self.version,
            self.transport,
            self.storage,
            match self.store_round_trip_ms {
                Some(ms) if self.store_reachable => format!("reachable, {ms:.1} ms round trip"),
                _ => "unreachable".to_string(),
            }
        );
        if let Some(sessions) = self.sessions {
            text.push_str(&format!("{sessions} live sessions of yours.\n"));
        }
        if let Some(w) = &self.warning {
            text.push_str(&format!("Warning: {w}\n"));
        }
        if let Some(e) = &self.error {
            text.push_str(&format!("Store error: {e}\n"));
        }
        text
    }
}

impl Render for ExportRecipeResponse {
    fn markdown(&self) -> String {
        let list = self.recipe.get("steps").and_then(Value::as_array);
        let steps = list.map_or(0, Vec::len);
        let mut text = format!(
            "Recipe of `{}`: {steps} step{} (versions {} to {}).\n",
            self.table,
            if steps == 1 { "" } else { "s" },
            self.from_version,
            self.to_version
        );
        if let Some(list) = list {
            for (i, step) in list.iter().enumerate() {
                text.push_str(&format!(
                    "{}. {}: {}\n",
                    i + 1,
                    step["action"].as_str().unwrap_or("?"),
                    step["summary"].as_str().unwrap_or("")
                ));
            }
        }
        for skipped in &self.skipped {
            text.push_str(&format!("Not in the recipe: {skipped}\n"));
        }
        for note in &self.code_notes {
            text.push_str(&format!("Code note: {note}\n"));
        }
        if let Some(path) = &self.path {
            text.push_str(&format!("Written to {path}.\n"));
        } else if let Some(code) = &self.code {
            let lang = if code.starts_with("\"\"\"") {
                "python"
            } else {
                "sql"
            };
            text.push_str(&format!("```{lang}\n{code}\n```\n"));
        }
        text.push_str(
            "Replay it with apply_recipe (recipe or recipe_path; mapping where column names differ; dry_run to preview).",
        );
        text
    }
}

impl Render for ApplyRecipeResponse {
    fn markdown(&self) -> String {
        let mut text = if self.dry_run {
            format!(
                "Dry run of {} step{} on `{}` (version {}); nothing was changed:\n",
                self.steps.len(),
                if self.steps.len() == 1 { "" } else { "s" },
                self.table,
                self.version
            )
        } else {
            format!(
                "Applied {} step{} to `{}`, now at version {}:\n",
                self.steps.len(),
                if self.steps.len() == 1 { "" } else { "s" },
                self.table,
                self.version
            )
        };
        for s in &self.steps {
            let cells = s
                .cells_changed
                .map(|c| format!(", {} cells changed", thousands(c)))
                .unwrap_or_default();
            text.push_str(&format!(
                "{}. {}: {} ({} → {} rows, {} → {} columns{cells}){}\n",
                s.step,
                s.action,
                s.summary,
                thousands(s.rows_before),
                thousands(s.rows_after),
                s.columns_before,
                s.columns_after,
                s.version.map(|v| format!(" → v{v}")).unwrap_or_default()
            ));
        }
        if !self.dry_run && self.undo_steps > 0 {
            text.push_str(&format!(
                "undo with steps={} takes the whole recipe back.",
                self.undo_steps
            ));
        }
        text
    }
}

impl Render for DerivedResponse {
    fn markdown(&self) -> String {
        if self.already_applied {
            return format!(
                "This request had already made table `{}` ({} rows); nothing was done again.",
                self.table,
                thousands(self.rows)
            );
        }
        let mut text = format!(
            "{}.\nSaved as table `{}`: {} rows × {} columns. First rows:\n",
            self.summary,
            self.table,
            thousands(self.rows),
            self.columns.len()
        );
        text.push_str(&cell_table(&self.columns, &self.preview));
        text
    }
}

impl Render for ReportResponse {
    fn markdown(&self) -> String {
        self.text.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(time(0), "1970-01-01T00:00:00Z");
        assert_eq!(time(1_700_000_000_000), "2023-11-14T22:13:20Z");
        let t = table(
            &["a|b".into(), "c".into()],
            &[vec![Value::from("x\ny"), Value::Null]],
        );
        assert!(
            t.contains("a\\|b") && t.contains("x y") && t.contains("∅"),
            "{t}"
        );
    }

    #[test]
    fn budgets() {
        let rows: Vec<Vec<Value>> = (0..100)
            .map(|i| vec![Value::from(i), Value::from("abcdefghij")])
            .collect();
        let n = rows_that_fit(&rows, 1000);
        assert!(n > 5 && n < 100, "{n}");
        assert_eq!(rows_that_fit(&rows, usize::MAX), 100);
    }

    /// Regression: a 2,000,000-row result was reported as "rows 1–778 of
    /// 1,001" (the probe's limit + 1).
    #[test]
    fn an_unknown_total_is_not_made_up() {
        let rows = RowsResponse {
            columns: vec![],
            rows: vec![vec![Cell(Value::from(1))]; 3],
            offset: 0,
            total_rows: None,
            truncated: true,
            next: Some("Raise limit.".into()),
        };
        let text = rows.markdown();
        assert!(text.contains("of more than 3"), "{text}");
    }
}
