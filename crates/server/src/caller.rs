//! Who calls a tool, and where their sessions live.
//!
//! Every principal has a namespace; the store keeps a session `s` of a
//! principal as `<namespace>.s`, so another principal's ids (caller-chosen or
//! UUIDs alike) simply do not exist for them — the same answer as an unknown
//! id, with no way to tell the difference. Over stdio there is one implicit
//! principal with the empty namespace, and ids are stored as given.

use dfmcp_storage::{SessionMeta, validate_session_id};

use crate::error::ToolError;

/// An authenticated principal (set on HTTP requests by the auth layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal(pub String);

/// The caller of one tool call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// Prefix of the caller's session ids in the store ("" over stdio).
    pub namespace: String,
    /// Recorded as who made each change ("" over stdio: nobody to name).
    pub actor: Option<String>,
}

impl Caller {
    /// The one caller of a stdio server.
    pub fn local() -> Self {
        Caller::default()
    }

    /// A principal's caller: its namespace is a hash of its name.
    pub fn principal(name: &str) -> Self {
        let hash = blake3::hash(name.as_bytes());
        let namespace: String = hash.as_bytes()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Caller {
            namespace,
            actor: Some(name.to_string()),
        }
    }

    /// The store's id of the caller's session `id` (which must be a valid
    /// caller id: no namespace of its own).
    pub fn stored(&self, id: &str) -> Result<String, ToolError> {
        validate_session_id(id)?;
        Ok(self.stored_unchecked(id))
    }

    pub(crate) fn stored_unchecked(&self, id: &str) -> String {
        if self.namespace.is_empty() {
            id.to_string()
        } else {
            format!("{}.{id}", self.namespace)
        }
    }

    /// The caller's id of a stored session.
    pub fn shown<'a>(&self, stored: &'a str) -> &'a str {
        if self.namespace.is_empty() {
            return stored;
        }
        stored
            .strip_prefix(&self.namespace)
            .and_then(|rest| rest.strip_prefix('.'))
            .unwrap_or(stored)
    }

    pub fn shown_meta(&self, meta: &SessionMeta) -> String {
        self.shown(&meta.id).to_string()
    }

    /// Every string in `value` scrubbed as [`Caller::scrub`] does.
    pub fn scrub_json(&self, value: &mut serde_json::Value) {
        if self.namespace.is_empty() {
            return;
        }
        match value {
            serde_json::Value::String(s) if s.contains(&self.namespace) => {
                *s = self.scrub(s);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.scrub_json(v)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| self.scrub_json(v)),
            _ => {}
        }
    }

    /// Text with the caller's stored ids shown as the caller's ids.
    pub fn scrub(&self, text: &str) -> String {
        if self.namespace.is_empty() {
            text.to_string()
        } else {
            text.replace(&format!("{}.", self.namespace), "")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_keep_principals_apart() {
        let alice = Caller::principal("alice");
        let bob = Caller::principal("bob");
        let a = alice.stored("sales").unwrap();
        let b = bob.stored("sales").unwrap();
        assert_ne!(a, b);
        assert_eq!(alice.shown(&a), "sales");
        assert!(dfmcp_storage::validate_stored_session_id(&a).is_ok());
        assert_eq!(Caller::local().stored("sales").unwrap(), "sales");
        assert!(
            alice.stored("x.sales").is_err(),
            "no namespace of one's own"
        );
        assert_eq!(
            alice.scrub(&format!("session '{a}' does not exist")),
            "session 'sales' does not exist"
        );
        let mut result = serde_json::json!({
            "session_id": "sales",
            "problems": [{ "message": format!("table 't' already exists in session {a}") }],
        });
        alice.scrub_json(&mut result);
        assert_eq!(
            result["problems"][0]["message"],
            "table 't' already exists in session sales"
        );
    }
}
