//! Log notifications to the client (`notifications/message`), at the level
//! it set with `logging/setLevel`.
//!
//! Logging is deprecated by SEP-2577, yet clients of every current revision
//! still show these messages to the user; this module is the one place that
//! uses the deprecated API.
#![allow(deprecated)]

use std::sync::{Arc, Mutex};

use rmcp::RoleServer;
use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam, SetLevelRequestParams};

/// The least severe level the client wants (warning until it says).
#[derive(Clone)]
pub struct ClientLog(Arc<Mutex<LoggingLevel>>);

impl Default for ClientLog {
    fn default() -> Self {
        ClientLog(Arc::new(Mutex::new(LoggingLevel::Warning)))
    }
}

fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

impl ClientLog {
    pub fn set(&self, request: &SetLevelRequestParams) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = request.level;
    }

    fn wants_warnings(&self) -> bool {
        rank(*self.0.lock().unwrap_or_else(|p| p.into_inner())) <= rank(LoggingLevel::Warning)
    }

    /// Sends each message as a warning of `tool`, if the client wants
    /// warnings; stops at the first that cannot be sent.
    pub async fn warn(&self, peer: &rmcp::Peer<RoleServer>, tool: &str, messages: Vec<String>) {
        if messages.is_empty() || !self.wants_warnings() {
            return;
        }
        for message in messages {
            let note = LoggingMessageNotificationParam::new(
                LoggingLevel::Warning,
                serde_json::json!({ "tool": tool, "message": message }),
            )
            .with_logger("dataframe-mcp");
            if peer.notify_logging_message(note).await.is_err() {
                return;
            }
        }
    }
}
