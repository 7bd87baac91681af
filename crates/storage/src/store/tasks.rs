//! Long calls run as tasks: their state is kept in the session they work on,
//! so any process on the store (and a restarted one) can say how a task
//! stands, and a task whose process died is seen as lost, never as running
//! forever.
//!
//! Everything is written once, as blobs beside the exports (prefix `x`, so
//! garbage collection leaves them and they go with the session): a start
//! record, a heartbeat per [`BEAT_MS`] slot since the start (the slot number
//! is in the id, so a reader knows which ids to look for), an end record with
//! the result, and a cancel request. A reader that finds no end and no
//! heartbeat in the last [`LOST_AFTER_MS`] knows the worker is gone.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::Store;
use crate::backend::Blob;
use crate::error::{Result, StoreError};

/// How often a running task says it is alive.
pub const BEAT_MS: i64 = 2_000;
/// A task silent for this long has lost its worker.
pub const LOST_AFTER_MS: i64 = 10_000;
/// Slots probed beyond the reader's own idea of now (clock skew between
/// processes).
const SKEW_SLOTS: i64 = 2;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskStart {
    pub tool: String,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Beat {
    at_ms: i64,
    message: String,
}

/// How a task ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TaskEnd {
    /// It ran to the end (its result may still be a tool error).
    Completed,
    /// It could not run (its result is an error object).
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct End {
    end: TaskEnd,
    at_ms: i64,
    result: serde_json::Value,
}

/// What a reader knows of a task.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskState {
    Working {
        start: TaskStart,
        /// The latest heartbeat's message and time, if one came yet.
        message: Option<String>,
        updated_ms: i64,
        cancel_requested: bool,
    },
    Ended {
        start: TaskStart,
        end: TaskEnd,
        at_ms: i64,
        result: serde_json::Value,
    },
    /// Neither ended nor alive: the process running it stopped.
    Lost { start: TaskStart, last_seen_ms: i64 },
}

fn start_id(uid: &str) -> String {
    format!("xt{uid}.s")
}
fn beat_id(uid: &str, slot: i64) -> String {
    format!("xt{uid}.b{slot}")
}
fn end_id(uid: &str) -> String {
    format!("xt{uid}.e")
}
fn cancel_id(uid: &str) -> String {
    format!("xt{uid}.c")
}

/// A task uid is ours to look up only if it could be one we made.
fn check_uid(uid: &str) -> Result<()> {
    if uid.len() == 32 && uid.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(StoreError::InvalidName {
            what: "task id",
            value: uid.chars().take(80).collect(),
            reason: "use the taskId the server returned",
        })
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Blob> {
    serde_json::to_vec(value)
        .map(|v| Blob::Bytes(Bytes::from(v)))
        .map_err(|e| StoreError::Internal(format!("task record encoding failed: {e}")))
}

fn decode<T: for<'de> Deserialize<'de>>(blob: &Blob) -> Result<T> {
    match blob {
        Blob::Bytes(b) => serde_json::from_slice(b)
            .map_err(|e| StoreError::Corrupt(format!("task record is unreadable: {e}"))),
        Blob::Frame(_) => Err(StoreError::Corrupt("task record holds a frame".into())),
    }
}

/// The heartbeat slot of time `at_ms` for a task started at `created_ms`.
fn slot(created_ms: i64, at_ms: i64) -> i64 {
    (at_ms - created_ms).max(0) / BEAT_MS
}

impl Store {
    /// Records that task `uid` (running `tool`) starts now in `session`.
    pub async fn task_start(&self, session: &str, uid: &str, tool: &str) -> Result<TaskStart> {
        check_uid(uid)?;
        let start = TaskStart {
            tool: tool.to_string(),
            created_ms: self.now(),
        };
        self.backend
            .put_blobs(
                session,
                vec![(start_id(uid), encode(&start)?)],
                start.created_ms,
            )
            .await?;
        Ok(start)
    }

    /// Says task `uid` is alive, with what it is doing; answers whether
    /// someone asked to cancel it.
    pub async fn task_beat(
        &self,
        session: &str,
        uid: &str,
        start: &TaskStart,
        message: &str,
    ) -> Result<bool> {
        let now = self.now();
        let beat = Beat {
            at_ms: now,
            message: message.to_string(),
        };
        let id = beat_id(uid, slot(start.created_ms, now));
        self.backend
            .put_blobs(session, vec![(id, encode(&beat)?)], now)
            .await?;
        self.task_cancel_requested(session, uid).await
    }

    /// Whether someone asked to cancel task `uid` (one small read).
    pub async fn task_cancel_requested(&self, session: &str, uid: &str) -> Result<bool> {
        let found = self
            .backend
            .get_blobs(session, &[cancel_id(uid)], self.now())
            .await?;
        Ok(found.first().is_some_and(Option::is_some))
    }

    /// Records how task `uid` ended, with its result.
    pub async fn task_end(
        &self,
        session: &str,
        uid: &str,
        end: TaskEnd,
        result: serde_json::Value,
    ) -> Result<()> {
        let now = self.now();
        let record = End {
            end,
            at_ms: now,
            result,
        };
        self.backend
            .put_blobs(session, vec![(end_id(uid), encode(&record)?)], now)
            .await
    }

    /// Asks whoever runs task `uid` to stop (they see it at their next
    /// heartbeat). `false` when there is no such task.
    pub async fn task_cancel(&self, session: &str, uid: &str) -> Result<bool> {
        check_uid(uid)?;
        let now = self.now();
        let found = self
            .backend
            .get_blobs(session, &[start_id(uid)], now)
            .await?;
        if !found.first().is_some_and(Option::is_some) {
            return Ok(false);
        }
        self.backend
            .put_blobs(session, vec![(cancel_id(uid), encode(&now)?)], now)
            .await?;
        Ok(true)
    }

    /// How task `uid` of `session` stands, `None` when there is no such task.
    pub async fn task(&self, session: &str, uid: &str) -> Result<Option<TaskState>> {
        check_uid(uid)?;
        let now = self.now();
        let first = self
            .backend
            .get_blobs(session, &[start_id(uid), end_id(uid), cancel_id(uid)], now)
            .await?;
        let [start, end, cancel] = <[Option<Blob>; 3]>::try_from(first)
            .map_err(|_| StoreError::Internal("the backend answered the wrong count".into()))?;
        let Some(start) = start else {
            return Ok(None);
        };
        let start: TaskStart = decode(&start)?;
        if let Some(end) = end {
            let end: End = decode(&end)?;
            return Ok(Some(TaskState::Ended {
                start,
                end: end.end,
                at_ms: end.at_ms,
                result: end.result,
            }));
        }
        // The newest heartbeat within the window, newest slot first.
        let newest = slot(start.created_ms, now) + SKEW_SLOTS;
        let oldest = slot(start.created_ms, now - LOST_AFTER_MS).max(0);
        let slots: Vec<i64> = (oldest..=newest).rev().collect();
        let ids: Vec<String> = slots.iter().map(|s| beat_id(uid, *s)).collect();
        let beats = self.backend.get_blobs(session, &ids, now).await?;
        let latest = beats
            .iter()
            .flatten()
            .next()
            .map(decode::<Beat>)
            .transpose()?;
        let alive_since = latest.as_ref().map_or(start.created_ms, |b| b.at_ms);
        if now - alive_since > LOST_AFTER_MS {
            return Ok(Some(TaskState::Lost {
                start,
                last_seen_ms: alive_since,
            }));
        }
        Ok(Some(TaskState::Working {
            start,
            message: latest.as_ref().map(|b| b.message.clone()),
            updated_ms: alive_since,
            cancel_requested: cancel.is_some(),
        }))
    }
}
