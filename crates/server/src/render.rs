//! Turning results into what a model reads: compact markdown plus the same
//! data as structured content, within a size budget.

use rmcp::model::{CallToolResult, ContentBlock};
use serde::Serialize;
use serde_json::Value;

/// A successful result: `text` for reading, `data` as structuredContent.
pub fn ok<T: Serialize>(text: String, data: &T, max_chars: usize) -> CallToolResult {
    let value = match serde_json::to_value(data) {
        Ok(v) => v,
        Err(e) => return fail(format!("internal error: could not encode the result: {e}")),
    };
    let size = text.len() + value.to_string().len();
    if size > max_chars + max_chars / 5 {
        // Tools bound their own output; this is the last line of defence
        // against a result the client would reject.
        tracing::warn!(size, max_chars, "result over budget");
        return fail(format!(
            "the result would be {size} characters, over this server's limit of {max_chars}; ask for fewer rows or columns (limit, columns, column_limit)"
        ));
    }
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(value);
    result
}

/// A tool error the model can act on (an `isError` result, not a protocol error).
pub fn fail(text: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text.into())])
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
}
