//! In-process caches: decoded frames and parsed manifests, by content id.
//!
//! Keys are immutable content addresses, so entries never go stale; they only
//! age out.

use std::sync::{Arc, Mutex};

use lru::LruCache;
use polars::prelude::DataFrame;

use crate::model::{Manifest, PartRef, TableMeta};

/// A decoded version of a table and, per column, the parts it was stored as.
/// Keeping the columns lets a later commit recognise untouched columns by
/// identity and reuse their parts without encoding.
pub(crate) struct CachedTable {
    pub df: DataFrame,
    pub meta: TableMeta,
    pub parts: Vec<Vec<PartRef>>,
    /// Per column, an id of its content (see `Loaded::column_ids`), made
    /// once per cached version rather than on every load.
    pub column_ids: Arc<[String]>,
    pub bytes: usize,
}

impl CachedTable {
    pub fn new(df: DataFrame, meta: TableMeta, parts: Vec<Vec<PartRef>>) -> Self {
        CachedTable {
            bytes: df.estimated_size(),
            column_ids: parts.iter().map(|p| column_id(p)).collect(),
            df,
            meta,
            parts,
        }
    }
}

/// A column's content id: its stored parts name its values.
fn column_id(parts: &[PartRef]) -> String {
    let joined: Vec<&str> = parts.iter().map(|p| p.id.as_str()).collect();
    crate::ids::content_id('k', joined.join(",").as_bytes())
}

type Key = (String, String);

pub(crate) struct FrameCache {
    inner: Mutex<FrameCacheInner>,
}

struct FrameCacheInner {
    lru: LruCache<Key, Arc<CachedTable>>,
    used: usize,
    capacity: usize,
}

impl FrameCache {
    pub fn new(capacity_bytes: usize) -> Self {
        FrameCache {
            inner: Mutex::new(FrameCacheInner {
                lru: LruCache::unbounded(),
                used: 0,
                capacity: capacity_bytes,
            }),
        }
    }

    pub fn get(&self, session: &str, manifest: &str) -> Option<Arc<CachedTable>> {
        let mut inner = self.lock();
        inner
            .lru
            .get(&(session.to_string(), manifest.to_string()))
            .cloned()
    }

    pub fn insert(&self, session: &str, manifest: &str, table: Arc<CachedTable>) {
        let mut inner = self.lock();
        if table.bytes > inner.capacity {
            return;
        }
        let key = (session.to_string(), manifest.to_string());
        inner.used += table.bytes;
        if let Some(old) = inner.lru.put(key, table) {
            inner.used -= old.bytes;
        }
        while inner.used > inner.capacity {
            match inner.lru.pop_lru() {
                Some((_, evicted)) => inner.used -= evicted.bytes,
                None => break,
            }
        }
    }

    pub fn forget_session(&self, session: &str) {
        let mut inner = self.lock();
        let keys: Vec<Key> = inner
            .lru
            .iter()
            .filter(|((s, _), _)| s == session)
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            if let Some(old) = inner.lru.pop(&key) {
                inner.used -= old.bytes;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FrameCacheInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) struct ManifestCache {
    inner: Mutex<LruCache<Key, Arc<Manifest>>>,
}

impl ManifestCache {
    pub fn new(entries: usize) -> Self {
        let cap = std::num::NonZeroUsize::new(entries.max(1)).expect("max(1) is non-zero");
        ManifestCache {
            inner: Mutex::new(LruCache::new(cap)),
        }
    }

    pub fn get(&self, session: &str, id: &str) -> Option<Arc<Manifest>> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(session.to_string(), id.to_string()))
            .cloned()
    }

    pub fn insert(&self, session: &str, id: &str, manifest: Arc<Manifest>) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put((session.to_string(), id.to_string()), manifest);
    }
}
