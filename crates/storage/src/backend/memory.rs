//! In-process backend: the same semantics as the others, with column data
//! kept as polars Series (no encoding). For tests and throwaway use.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    Backend, Blob, BlobInfo, Capabilities, CasOutcome, CasRequest, LocalBuckets, SessionMeta,
    TableRecord, Throttle, namespace_of,
};
use crate::error::{Result, StoreError};

#[derive(Debug, Default)]
pub struct MemoryBackend {
    sessions: Mutex<HashMap<String, MemSession>>,
    buckets: LocalBuckets,
}

#[derive(Debug)]
struct MemSession {
    meta: SessionMeta,
    tables: HashMap<String, (u64, Bytes)>,
    logs: HashMap<String, VecDeque<Bytes>>,
    blobs: HashMap<String, (Blob, i64)>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, MemSession>) -> T) -> T {
        // A poisoned lock means a panic mid-update elsewhere; the map itself is
        // still consistent because every update below is a single insert/remove.
        let mut guard = self
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }

    /// Runs `f` on a live session, `None` when it is missing or expired.
    fn live<T>(&self, id: &str, now_ms: i64, f: impl FnOnce(&mut MemSession) -> T) -> Option<T> {
        self.with(|map| {
            if map.get(id).is_some_and(|s| s.meta.is_expired(now_ms)) {
                map.remove(id);
            }
            map.get_mut(id).map(f)
        })
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            native_frames: true,
            max_request_bytes: None,
        }
    }

    async fn create_session(&self, meta: &SessionMeta) -> Result<bool> {
        if self.live(&meta.id, meta.created_ms, |_| ()).is_some() {
            return Ok(false);
        }
        self.with(|map| {
            map.insert(
                meta.id.clone(),
                MemSession {
                    meta: meta.clone(),
                    tables: HashMap::new(),
                    logs: HashMap::new(),
                    blobs: HashMap::new(),
                },
            )
        });
        Ok(true)
    }

    async fn open(
        &self,
        session: &str,
        table: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<(SessionMeta, Option<TableRecord>)>> {
        Ok(self.live(session, now_ms, |s| {
            s.meta.last_access_ms = now_ms;
            let record = table.and_then(|name| {
                s.tables.get(name).map(|(rev, doc)| TableRecord {
                    name: name.to_string(),
                    rev: *rev,
                    doc: doc.clone(),
                })
            });
            (s.meta.clone(), record)
        }))
    }

    async fn list_sessions(
        &self,
        namespace: &str,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<SessionMeta>> {
        Ok(self.with(|map| {
            map.values()
                .filter(|s| !s.meta.is_expired(now_ms) && namespace_of(&s.meta.id) == namespace)
                .take(limit)
                .map(|s| s.meta.clone())
                .collect()
        }))
    }

    async fn delete_session(&self, session: &str, now_ms: i64) -> Result<bool> {
        Ok(self.with(|map| {
            map.remove(session)
                .is_some_and(|s| !s.meta.is_expired(now_ms))
        }))
    }

    async fn purge_expired(&self, now_ms: i64) -> Result<Vec<String>> {
        Ok(self.with(|map| {
            let expired: Vec<String> = map
                .values()
                .filter(|s| s.meta.is_expired(now_ms))
                .map(|s| s.meta.id.clone())
                .collect();
            for id in &expired {
                map.remove(id);
            }
            expired
        }))
    }

    async fn list_tables(&self, session: &str, now_ms: i64) -> Result<Option<Vec<TableRecord>>> {
        Ok(self.live(session, now_ms, |s| {
            s.tables
                .iter()
                .map(|(name, (rev, doc))| TableRecord {
                    name: name.clone(),
                    rev: *rev,
                    doc: doc.clone(),
                })
                .collect()
        }))
    }

    async fn cas_tables(
        &self,
        session: &str,
        request: &CasRequest,
        now_ms: i64,
    ) -> Result<CasOutcome> {
        Ok(self
            .live(session, now_ms, |s| {
                for change in &request.changes {
                    let current = s.tables.get(&change.name).map(|(rev, _)| *rev);
                    if current != change.expected_rev {
                        return CasOutcome::Conflict {
                            name: change.name.clone(),
                            current,
                        };
                    }
                }
                for change in &request.changes {
                    match &change.new {
                        Some((rev, doc)) => {
                            s.tables.insert(change.name.clone(), (*rev, doc.clone()));
                        }
                        None => {
                            s.tables.remove(&change.name);
                        }
                    }
                }
                for entry in &request.log {
                    let log = s.logs.entry(entry.table_uid.clone()).or_default();
                    log.push_back(entry.record.clone());
                    while log.len() > entry.keep {
                        log.pop_front();
                    }
                }
                for uid in &request.drop_logs {
                    s.logs.remove(uid);
                }
                s.meta.last_access_ms = now_ms;
                CasOutcome::Applied
            })
            .unwrap_or(CasOutcome::SessionGone))
    }

    async fn read_log(
        &self,
        session: &str,
        table_uid: &str,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<Bytes>> {
        Ok(self
            .live(session, now_ms, |s| {
                s.logs
                    .get(table_uid)
                    .map(|log| {
                        let skip = log.len().saturating_sub(limit);
                        log.iter().skip(skip).cloned().collect()
                    })
                    .unwrap_or_default()
            })
            .unwrap_or_default())
    }

    async fn put_blobs(
        &self,
        session: &str,
        blobs: Vec<(String, Blob)>,
        now_ms: i64,
    ) -> Result<()> {
        self.live(session, now_ms, |s| {
            for (id, blob) in blobs {
                s.blobs.insert(id, (blob, now_ms));
            }
        })
        .ok_or_else(|| StoreError::SessionNotFound {
            id: session.to_string(),
        })
    }

    async fn touch_blobs(&self, session: &str, ids: &[String], now_ms: i64) -> Result<Vec<bool>> {
        Ok(self
            .live(session, now_ms, |s| {
                ids.iter()
                    .map(|id| match s.blobs.get_mut(id) {
                        Some(entry) => {
                            entry.1 = now_ms;
                            true
                        }
                        None => false,
                    })
                    .collect()
            })
            .unwrap_or_else(|| vec![false; ids.len()]))
    }

    async fn get_blobs(
        &self,
        session: &str,
        ids: &[String],
        now_ms: i64,
    ) -> Result<Vec<Option<Blob>>> {
        Ok(self
            .live(session, now_ms, |s| {
                ids.iter()
                    .map(|id| s.blobs.get(id).map(|(blob, _)| blob.clone()))
                    .collect()
            })
            .unwrap_or_else(|| vec![None; ids.len()]))
    }

    async fn list_blobs(&self, session: &str, now_ms: i64) -> Result<Vec<BlobInfo>> {
        Ok(self
            .live(session, now_ms, |s| {
                s.blobs
                    .iter()
                    .map(|(id, (blob, touched))| BlobInfo {
                        id: id.clone(),
                        size: blob.size(),
                        touched_ms: *touched,
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn take_token(
        &self,
        bucket: &str,
        per_second: f64,
        burst: f64,
        now_ms: i64,
    ) -> Result<Throttle> {
        Ok(self.buckets.take(bucket, per_second, burst, now_ms))
    }

    async fn delete_blobs(
        &self,
        session: &str,
        ids: &[String],
        untouched_before_ms: i64,
    ) -> Result<u64> {
        Ok(self.with(|map| {
            let Some(s) = map.get_mut(session) else {
                return 0;
            };
            let mut freed = 0;
            for id in ids {
                if s.blobs
                    .get(id)
                    .is_some_and(|(_, touched)| *touched < untouched_before_ms)
                    && let Some((blob, _)) = s.blobs.remove(id)
                {
                    freed += blob.size();
                }
            }
            freed
        }))
    }
}
