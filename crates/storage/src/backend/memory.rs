//! In-process backend: the same semantics as the others, with column data
//! kept as polars Series (no encoding). For tests and throwaway use.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    Backend, Blob, BlobInfo, Capabilities, CasOutcome, LogAppend, SessionMeta, TableChange,
    TableRecord,
};
use crate::error::{Result, StoreError};

#[derive(Debug, Default)]
pub struct MemoryBackend {
    sessions: Mutex<HashMap<String, MemSession>>,
}

#[derive(Debug)]
struct MemSession {
    meta: SessionMeta,
    tables: HashMap<String, (u64, Bytes)>,
    log: Vec<(String, Bytes)>,
    blobs: HashMap<String, (Blob, i64)>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, MemSession>) -> T) -> Result<T> {
        // A poisoned lock means a panic mid-update elsewhere; the map itself is
        // still consistent because every update below is a single insert/remove.
        let mut guard = self
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(f(&mut guard))
    }
}

fn live<'a>(
    map: &'a mut HashMap<String, MemSession>,
    id: &str,
    now_ms: i64,
) -> Option<&'a mut MemSession> {
    let expired = map.get(id).is_some_and(|s| s.meta.is_expired(now_ms));
    if expired {
        map.remove(id);
        return None;
    }
    map.get_mut(id)
}

fn now() -> i64 {
    crate::ids::now_ms()
}

#[async_trait]
impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            native_frames: true,
            shared: false,
            native_ttl: false,
        }
    }

    async fn create_session(&self, meta: &SessionMeta) -> Result<bool> {
        self.with(|map| {
            if live(map, &meta.id, meta.created_ms).is_some() {
                return false;
            }
            map.insert(
                meta.id.clone(),
                MemSession {
                    meta: meta.clone(),
                    tables: HashMap::new(),
                    log: Vec::new(),
                    blobs: HashMap::new(),
                },
            );
            true
        })
    }

    async fn open(
        &self,
        session: &str,
        table: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<(SessionMeta, Option<TableRecord>)>> {
        self.with(|map| {
            let s = live(map, session, now_ms)?;
            s.meta.last_access_ms = now_ms;
            let record = table.and_then(|name| {
                s.tables.get(name).map(|(rev, doc)| TableRecord {
                    name: name.to_string(),
                    rev: *rev,
                    doc: doc.clone(),
                })
            });
            Some((s.meta.clone(), record))
        })
    }

    async fn list_sessions(&self, now_ms: i64) -> Result<Vec<SessionMeta>> {
        self.with(|map| {
            map.values()
                .filter(|s| !s.meta.is_expired(now_ms))
                .map(|s| s.meta.clone())
                .collect()
        })
    }

    async fn delete_session(&self, session: &str) -> Result<bool> {
        self.with(|map| map.remove(session).is_some())
    }

    async fn purge_expired(&self, now_ms: i64) -> Result<Vec<String>> {
        self.with(|map| {
            let expired: Vec<String> = map
                .values()
                .filter(|s| s.meta.is_expired(now_ms))
                .map(|s| s.meta.id.clone())
                .collect();
            for id in &expired {
                map.remove(id);
            }
            expired
        })
    }

    async fn list_tables(&self, session: &str) -> Result<Vec<TableRecord>> {
        self.with(|map| {
            live(map, session, now())
                .map(|s| {
                    s.tables
                        .iter()
                        .map(|(name, (rev, doc))| TableRecord {
                            name: name.clone(),
                            rev: *rev,
                            doc: doc.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    async fn cas_tables(
        &self,
        session: &str,
        changes: &[TableChange],
        log: &[LogAppend],
        now_ms: i64,
    ) -> Result<CasOutcome> {
        self.with(|map| {
            let Some(s) = live(map, session, now_ms) else {
                return CasOutcome::SessionGone;
            };
            for change in changes {
                let current = s.tables.get(&change.name).map(|(rev, _)| *rev);
                if current != change.expected_rev {
                    return CasOutcome::Conflict {
                        name: change.name.clone(),
                        current,
                    };
                }
            }
            for change in changes {
                match &change.new {
                    Some((rev, doc)) => {
                        s.tables.insert(change.name.clone(), (*rev, doc.clone()));
                    }
                    None => {
                        s.tables.remove(&change.name);
                    }
                }
            }
            s.log.extend(
                log.iter()
                    .map(|entry| (entry.table_uid.clone(), entry.record.clone())),
            );
            s.meta.last_access_ms = now_ms;
            CasOutcome::Applied
        })
    }

    async fn read_log(&self, session: &str, table_uid: &str) -> Result<Vec<Bytes>> {
        self.with(|map| {
            live(map, session, now())
                .map(|s| {
                    s.log
                        .iter()
                        .filter(|(uid, _)| uid == table_uid)
                        .map(|(_, record)| record.clone())
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    async fn put_blobs(
        &self,
        session: &str,
        blobs: Vec<(String, Blob)>,
        now_ms: i64,
    ) -> Result<()> {
        self.with(|map| {
            let Some(s) = live(map, session, now_ms) else {
                return Err(StoreError::SessionNotFound {
                    id: session.to_string(),
                });
            };
            for (id, blob) in blobs {
                s.blobs.insert(id, (blob, now_ms));
            }
            Ok(())
        })?
    }

    async fn touch_blobs(&self, session: &str, ids: &[String], now_ms: i64) -> Result<Vec<bool>> {
        self.with(|map| match live(map, session, now_ms) {
            None => vec![false; ids.len()],
            Some(s) => ids
                .iter()
                .map(|id| match s.blobs.get_mut(id) {
                    Some(entry) => {
                        entry.1 = now_ms;
                        true
                    }
                    None => false,
                })
                .collect(),
        })
    }

    async fn get_blobs(&self, session: &str, ids: &[String]) -> Result<Vec<Option<Blob>>> {
        self.with(|map| match live(map, session, now()) {
            None => vec![None; ids.len()],
            Some(s) => ids
                .iter()
                .map(|id| s.blobs.get(id).map(|(blob, _)| blob.clone()))
                .collect(),
        })
    }

    async fn list_blobs(&self, session: &str) -> Result<Vec<BlobInfo>> {
        self.with(|map| {
            live(map, session, now())
                .map(|s| {
                    s.blobs
                        .iter()
                        .map(|(id, (blob, touched))| BlobInfo {
                            id: id.clone(),
                            size: blob.size(),
                            touched_ms: *touched,
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    async fn delete_blobs(
        &self,
        session: &str,
        ids: &[String],
        untouched_before_ms: i64,
    ) -> Result<u64> {
        self.with(|map| {
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
        })
    }
}
