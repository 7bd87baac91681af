//! Table and column names: safe forms and uniqueness.

use std::collections::HashSet;

/// A safe identifier for a table: letters, digits and `_`, not starting with
/// a digit, at most 64 characters (SQL can use it unquoted).
pub fn sanitize_table_name(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut last_underscore = false;
    for c in raw.trim().chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '_' };
        if c == '_' {
            if !last_underscore && !out.is_empty() {
                out.push('_');
            }
            last_underscore = true;
        } else {
            out.push(c);
            last_underscore = false;
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("table");
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "t_");
    }
    out.truncate(64);
    out
}

/// Makes `name` unique among `taken` by appending `_2`, `_3`, … and records it.
pub fn unique_name(name: &str, taken: &mut HashSet<String>) -> String {
    if taken.insert(name.to_string()) {
        return name.to_string();
    }
    (2..)
        .map(|n| format!("{name}_{n}"))
        .find(|candidate| taken.insert(candidate.clone()))
        .expect("an unbounded range always yields a free name")
}

/// Column names as a file gives them, made usable: trimmed, blanks named
/// `column_<n>`, duplicates suffixed.
pub fn clean_column_names<S: AsRef<str>>(raw: &[S]) -> Vec<String> {
    let mut taken = HashSet::new();
    raw.iter()
        .enumerate()
        .map(|(i, name)| {
            let trimmed = name.as_ref().trim();
            let base = if trimmed.is_empty() {
                format!("column_{}", i + 1)
            } else {
                trimmed.to_string()
            };
            unique_name(&base, &mut taken)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        for (raw, want) in [
            ("sales", "sales"),
            ("Sales Report 2024", "Sales_Report_2024"),
            ("  données (v2)!! ", "donn_es_v2"),
            ("2024-q1", "t_2024_q1"),
            ("", "table"),
            ("!!!", "table"),
        ] {
            assert_eq!(sanitize_table_name(raw), want, "{raw:?}");
        }
        assert_eq!(sanitize_table_name(&"x".repeat(100)).len(), 64);
    }

    #[test]
    fn uniqueness() {
        let mut taken = HashSet::new();
        assert_eq!(unique_name("sales", &mut taken), "sales");
        assert_eq!(unique_name("sales", &mut taken), "sales_2");
        assert_eq!(unique_name("sales", &mut taken), "sales_3");
    }

    #[test]
    fn column_names() {
        assert_eq!(
            clean_column_names(&["id", " name ", "", "id", "column_3"]),
            ["id", "name", "column_3", "id_2", "column_3_2"]
        );
    }
}
