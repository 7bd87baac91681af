//! Names and identifiers: what is accepted, and how ids are made.

use crate::error::{Result, StoreError};

/// Checks a session id: a UUID or a caller-chosen `[A-Za-z0-9_-]{1,64}`.
pub fn validate_session_id(id: &str) -> Result<()> {
    let ok_chars = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if id.is_empty() || id.len() > 64 || !ok_chars {
        return Err(StoreError::InvalidName {
            what: "session id",
            value: truncate(id, 80),
            reason: "use 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-'",
        });
    }
    Ok(())
}

/// Checks a session id as the store keeps it: a caller's id
/// ([`validate_session_id`]), optionally in a namespace (`<namespace>.<id>`,
/// the namespace 1 to 40 characters of the same alphabet).
pub fn validate_stored_session_id(id: &str) -> Result<()> {
    match id.split_once('.') {
        None => validate_session_id(id),
        Some((namespace, rest)) => {
            let ok = !namespace.is_empty()
                && namespace.len() <= 40
                && namespace
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                return Err(StoreError::InvalidName {
                    what: "session namespace",
                    value: truncate(namespace, 80),
                    reason: "use 1 to 40 characters from A-Z, a-z, 0-9, '_' and '-'",
                });
            }
            validate_session_id(rest)
        }
    }
}

/// Checks a table name: 1 to 128 characters, no control characters.
///
/// The server narrows this further (SQL-friendly identifiers); the store only
/// refuses what would break its own key layouts.
pub fn validate_table_name(name: &str) -> Result<()> {
    if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(StoreError::InvalidName {
            what: "table name",
            value: truncate(name, 80),
            reason: "use 1 to 128 printable characters",
        });
    }
    Ok(())
}

/// A fresh random session id (UUIDv4).
pub fn new_session_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A fresh random id for tables, operations and uncontent-addressed blobs.
pub fn new_uid() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A content address: `prefix` followed by 128 bits of BLAKE3, in hex.
pub(crate) fn content_id(prefix: char, bytes: &[u8]) -> String {
    let hash = blake3::hash(bytes);
    let mut id = String::with_capacity(33);
    id.push(prefix);
    for byte in &hash.as_bytes()[..16] {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids() {
        for ok in ["a", "sales-2024_Q1", &new_session_id(), &"x".repeat(64)] {
            assert!(validate_session_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "ünï", "a/b", "{x}", "a.b", &"x".repeat(65)] {
            assert!(validate_session_id(bad).is_err(), "{bad}");
        }
        for ok in ["sales", "ab12.sales", "p-1.x"] {
            assert!(validate_stored_session_id(ok).is_ok(), "{ok}");
        }
        for bad in [".sales", "a.b.c", "a b.c", "ab."] {
            assert!(validate_stored_session_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn table_names() {
        assert!(validate_table_name("sales 2024").is_ok());
        assert!(validate_table_name("").is_err());
        assert!(validate_table_name("a\nb").is_err());
        assert!(validate_table_name(&"t".repeat(129)).is_err());
    }

    #[test]
    fn content_ids_are_stable() {
        let a = content_id('c', b"hello");
        assert_eq!(a, content_id('c', b"hello"));
        assert_ne!(a, content_id('c', b"hello!"));
        assert_eq!(a.len(), 33);
    }
}
