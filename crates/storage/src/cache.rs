//! In-process caches: decoded frames and parsed manifests, by content id.
//!
//! Keys are immutable content addresses, so entries never go stale; they only
//! age out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lru::LruCache;
use polars::prelude::{Column, DataFrame};

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
    /// Per column, the memory it holds, for the cache's budget.
    memory: Vec<ColumnMemory>,
}

/// A column's bytes in memory and, when it has data, the address of its
/// first chunk: versions that share the column share that chunk, so the
/// cache counts it once.
struct ColumnMemory {
    chunk: Option<usize>,
    bytes: usize,
}

impl CachedTable {
    pub fn new(df: DataFrame, meta: TableMeta, parts: Vec<Vec<PartRef>>) -> Self {
        CachedTable {
            memory: df.columns().iter().map(ColumnMemory::of).collect(),
            column_ids: parts.iter().map(|p| column_id(p)).collect(),
            df,
            meta,
            parts,
        }
    }

    /// The bytes this version holds on its own.
    pub fn bytes(&self) -> usize {
        self.memory.iter().map(|c| c.bytes).sum()
    }
}

impl ColumnMemory {
    fn of(column: &Column) -> Self {
        ColumnMemory {
            // The chunk stays allocated while a cached version holds it, so
            // its address names it for as long as the cache counts it.
            chunk: chunk_addresses(column).first().copied(),
            bytes: dfmcp_memory::column_bytes(column),
        }
    }
}

/// The arrow arrays of a column, by address: two columns hold the very same
/// data when their chunk lists are the same arrays.
pub(crate) fn chunk_addresses(column: &Column) -> Vec<usize> {
    column
        .as_materialized_series()
        .chunks()
        .iter()
        .map(|chunk| {
            let address: *const _ = chunk.as_ref();
            address as *const () as usize
        })
        .collect()
}

/// A column's content id: its stored parts name its values.
fn column_id(parts: &[PartRef]) -> String {
    let joined: Vec<&str> = parts.iter().map(|p| p.id.as_str()).collect();
    crate::ids::content_id('k', joined.join(",").as_bytes())
}

type Key = (String, String);

/// Decoded versions, least recently used first out, within a byte budget.
/// Versions of one table share their untouched columns (an edit keeps the
/// columns it did not change), and the budget counts a shared column once:
/// what the cache holds is what the process holds.
pub(crate) struct FrameCache {
    inner: Mutex<FrameCacheInner>,
}

struct FrameCacheInner {
    lru: LruCache<Key, Arc<CachedTable>>,
    /// Columns held, by first chunk: their bytes and how many cached
    /// versions hold them.
    held: HashMap<usize, (usize, usize)>,
    used: usize,
    capacity: usize,
}

impl FrameCacheInner {
    fn hold(&mut self, table: &CachedTable) {
        for column in &table.memory {
            let Some(chunk) = column.chunk else {
                self.used += column.bytes;
                continue;
            };
            let (bytes, holders) = self.held.entry(chunk).or_insert((column.bytes, 0));
            if *holders == 0 {
                self.used += *bytes;
            }
            *holders += 1;
        }
    }

    fn release(&mut self, table: &CachedTable) {
        for column in &table.memory {
            let Some(chunk) = column.chunk else {
                self.used -= column.bytes;
                continue;
            };
            if let Some((bytes, holders)) = self.held.get_mut(&chunk) {
                *holders -= 1;
                if *holders == 0 {
                    self.used -= *bytes;
                    self.held.remove(&chunk);
                }
            }
        }
    }
}

impl FrameCache {
    pub fn new(capacity_bytes: usize) -> Self {
        FrameCache {
            inner: Mutex::new(FrameCacheInner {
                lru: LruCache::unbounded(),
                held: HashMap::new(),
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
        if table.bytes() > inner.capacity {
            return;
        }
        let key = (session.to_string(), manifest.to_string());
        inner.hold(&table);
        if let Some(old) = inner.lru.put(key, table) {
            inner.release(&old);
        }
        // The entry just put is the most recent and fits alone: it goes last.
        while inner.used > inner.capacity {
            match inner.lru.pop_lru() {
                Some((_, evicted)) => inner.release(&evicted),
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
                inner.release(&old);
            }
        }
    }

    /// The bytes the cached versions hold, each shared column once.
    #[cfg(test)]
    fn used(&self) -> usize {
        self.lock().used
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

#[cfg(test)]
mod tests {
    use super::*;

    fn table(df: DataFrame) -> Arc<CachedTable> {
        let parts = vec![Vec::new(); df.width()];
        Arc::new(CachedTable::new(df, TableMeta::default(), parts))
    }

    fn codes(name: &str, rows: usize) -> Column {
        let values: Vec<String> = (0..rows).map(|i| format!("c{i:07}")).collect();
        Column::new(name.into(), values)
    }

    #[test]
    fn versions_sharing_columns_are_counted_once() {
        let rows = 10_000;
        let v0 = DataFrame::new_infer_height(vec![
            codes("a", rows),
            Column::new("b".into(), vec![1.5f64; rows]),
        ])
        .unwrap();
        // An edit of "b" keeps "a" as it is.
        let mut v1 = v0.clone();
        v1.with_column(Column::new("b".into(), vec![2.5f64; rows]))
            .unwrap();
        let (t0, t1) = (table(v0), table(v1));
        // Text is counted with its 16-byte views, not as polars estimates.
        let text = 16 * rows;
        assert_eq!(t0.bytes(), text + 8 * rows);
        assert!(t0.df.estimated_size() < t0.bytes());

        let cache = FrameCache::new(usize::MAX);
        cache.insert("s", "m0", t0.clone());
        cache.insert("s", "m1", t1.clone());
        assert_eq!(cache.used(), text + 2 * 8 * rows, "shared column once");
        // Putting a version again changes nothing.
        cache.insert("s", "m1", t1.clone());
        assert_eq!(cache.used(), text + 2 * 8 * rows);

        // A budget for one version and one more column keeps both versions;
        // one byte less evicts the older.
        let both = text + 2 * 8 * rows;
        let cache = FrameCache::new(both);
        cache.insert("s", "m0", t0.clone());
        cache.insert("s", "m1", t1.clone());
        assert!(cache.get("s", "m0").is_some() && cache.get("s", "m1").is_some());
        let cache = FrameCache::new(both - 1);
        cache.insert("s", "m0", t0.clone());
        cache.insert("s", "m1", t1.clone());
        assert!(cache.get("s", "m0").is_none() && cache.get("s", "m1").is_some());
        assert_eq!(cache.used(), t1.bytes());

        cache.forget_session("s");
        assert_eq!(cache.used(), 0);
    }

    #[test]
    fn a_version_larger_than_the_budget_is_not_cached() {
        let t = table(DataFrame::new_infer_height(vec![codes("a", 1000)]).unwrap());
        let cache = FrameCache::new(t.bytes() - 1);
        cache.insert("s", "m", t);
        assert!(cache.get("s", "m").is_none());
        assert_eq!(cache.used(), 0);
    }
}
