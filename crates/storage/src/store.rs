//! The store: sessions of versioned tables, written once over [`Backend`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use polars::prelude::*;
use rayon::prelude::*;
use tokio::sync::Semaphore;

use crate::backend::{Backend, Blob, CasOutcome, LogAppend, SessionMeta, TableChange, TableRecord};
use crate::cache::{CachedTable, FrameCache, ManifestCache};
use crate::codec::{Codec, Compression, concat_parts, decode_part};
use crate::error::{Result, Revision, StoreError};
use crate::ids::{
    content_id, new_session_id, new_uid, now_ms, validate_session_id, validate_table_name,
};
use crate::model::{
    ColumnEntry, EventKind, FORMAT_VERSION, LogRecord, Manifest, OpRecord, PartRef, TableMeta,
    TableState, VersionRef,
};
use crate::versioning;

/// Settings of a [`Store`]. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Idle time after which a session expires (default 24 h).
    pub session_ttl: Duration,
    /// Undo (and redo) steps kept per table (default 50).
    pub history_limit: usize,
    /// Largest table, in bytes in memory (default 512 MiB).
    pub max_table_bytes: u64,
    pub compression: Compression,
    /// Target size of a column part in memory (default 4 MiB).
    pub part_target_bytes: usize,
    /// Largest encoded part (default 8 MiB; hosted Redis refuses requests over 10 MB).
    pub part_max_bytes: usize,
    /// How long unreferenced data is kept before it may be deleted, so that a
    /// reader that just read a head never finds its data gone (default 5 min).
    pub gc_grace: Duration,
    /// Decoded frames kept in memory per process (default 1 GiB).
    pub cache_bytes: usize,
    /// Parallel CPU-heavy jobs (encoding, decoding); default: the core count.
    pub cpu_jobs: usize,
    /// Columns whose names start with this prefix are bookkeeping of the
    /// caller (such as hidden marks): stored like any column, but not counted
    /// in the column counts of versions and listings.
    pub hidden_column_prefix: Option<String>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            session_ttl: Duration::from_secs(24 * 3600),
            history_limit: 50,
            max_table_bytes: 512 << 20,
            compression: Compression::default(),
            part_target_bytes: 4 << 20,
            part_max_bytes: 8 << 20,
            gc_grace: Duration::from_secs(300),
            cache_bytes: 1 << 30,
            cpu_jobs: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            hidden_column_prefix: None,
        }
    }
}

/// A table version loaded into memory.
#[derive(Clone)]
pub struct Loaded {
    pub session: String,
    pub name: String,
    /// The revision this was read at; a commit on top of it expects it.
    pub rev: u64,
    pub state: TableState,
    pub df: DataFrame,
    pub meta: TableMeta,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("session", &self.session)
            .field("name", &self.name)
            .field("rev", &self.rev)
            .field("version", &self.state.head.version)
            .field("shape", &self.df.shape())
            .finish()
    }
}

/// A new version to commit.
pub struct Edit {
    pub df: DataFrame,
    pub meta: TableMeta,
    pub op: OpRecord,
}

/// The result of a commit.
#[derive(Debug, Clone)]
pub struct Committed {
    pub version: u64,
    pub rev: u64,
    pub rows: u64,
    pub cols: u64,
    /// The commit had already been applied by an earlier attempt with the
    /// same operation id; nothing new was written.
    pub already_applied: bool,
    /// Parts written by this commit (not already stored).
    pub parts_written: usize,
    /// Parts reused from stored data.
    pub parts_reused: usize,
    pub bytes_written: u64,
}

impl Committed {
    /// The first version of a new table.
    fn first(
        head: &VersionRef,
        parts_written: usize,
        parts_reused: usize,
        bytes_written: u64,
    ) -> Self {
        Committed {
            version: 1,
            rev: 1,
            rows: head.rows,
            cols: head.cols,
            already_applied: false,
            parts_written,
            parts_reused,
            bytes_written,
        }
    }
}

/// The result of an undo or redo.
#[derive(Debug, Clone)]
pub struct Moved {
    pub from: VersionRef,
    pub to: VersionRef,
    pub rev: u64,
    pub undo_depth: usize,
    pub redo_depth: usize,
}

/// What [`Store::update`] did.
pub enum Updated<T> {
    Applied {
        committed: Committed,
        output: T,
    },
    /// An earlier attempt with the same operation id already committed.
    AlreadyApplied {
        version: u64,
    },
}

/// Failure of [`Store::update`]: the store's, or the edit function's own.
#[derive(Debug)]
pub enum UpdateError<E> {
    Store(StoreError),
    Apply(E),
}

impl<E> From<StoreError> for UpdateError<E> {
    fn from(e: StoreError) -> Self {
        UpdateError::Store(e)
    }
}

/// A table as `list_tables` shows it.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub name: String,
    pub version: u64,
    pub rows: u64,
    pub cols: u64,
    pub undo_depth: usize,
    pub redo_depth: usize,
    pub last_action: String,
    pub last_summary: String,
    pub updated_ms: i64,
}

/// Where a version stands relative to the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionStatus {
    /// The head.
    Current,
    /// Applied and reachable by undo.
    Undoable,
    /// Applied, but older than the undo limit.
    BeyondUndoLimit,
    /// Undone; reachable by redo.
    Redoable,
    /// Undone and then discarded by a newer commit (or beyond the redo limit).
    Discarded,
}

/// One committed version in a history.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub record: LogRecord,
    pub status: VersionStatus,
}

/// A table's history.
#[derive(Debug, Clone)]
pub struct History {
    pub table: String,
    pub current_version: u64,
    pub undo_depth: usize,
    pub redo_depth: usize,
    /// Every committed version, oldest first.
    pub versions: Vec<HistoryEntry>,
    /// Undo, redo and rename events, oldest first.
    pub events: Vec<LogRecord>,
}

/// Bytes a session keeps in the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub blobs: usize,
    pub bytes: u64,
}

/// What a garbage collection pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    pub deleted: usize,
    pub bytes_freed: u64,
    pub kept: usize,
}

const LOAD_ATTEMPTS: usize = 4;
const UPDATE_ATTEMPTS: usize = 8;

/// Sessions of named, versioned tables over a [`Backend`].
///
/// **Invariant:** a table head only moves by compare-and-set
/// ([`Backend::cas_tables`]); every mutation here reads a revision, computes
/// the next state with [`crate::versioning`] and publishes it only if the
/// revision is unchanged.
pub struct Store {
    backend: Arc<dyn Backend>,
    config: StoreConfig,
    codec: Codec,
    frames: FrameCache,
    manifests: ManifestCache,
    cpu: Arc<Semaphore>,
    /// Sessions with retired data, and when a GC pass could free it.
    gc_due: Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend.name())
            .field("config", &self.config)
            .finish()
    }
}

impl Store {
    pub fn new(backend: Arc<dyn Backend>, config: StoreConfig) -> Self {
        let codec = Codec {
            compression: config.compression,
            part_target_bytes: config.part_target_bytes,
            part_max_bytes: config.part_max_bytes,
        };
        Store {
            frames: FrameCache::new(config.cache_bytes),
            manifests: ManifestCache::new(4096),
            cpu: Arc::new(Semaphore::new(config.cpu_jobs.max(1))),
            gc_due: Mutex::new(HashMap::new()),
            backend,
            config,
            codec,
        }
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Runs CPU-heavy work on the blocking pool, at most `cpu_jobs` at a time.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let _permit = self
            .cpu
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Internal("worker pool closed".into()))?;
        tokio::task::spawn_blocking(f).await.map_err(|e| {
            if e.is_panic() {
                StoreError::Internal(format!("a worker panicked: {}", panic_message(e)))
            } else {
                StoreError::Internal("a worker was cancelled".into())
            }
        })
    }

    /// Columns of a frame as listings count them.
    fn width(&self, df: &DataFrame) -> u64 {
        match &self.config.hidden_column_prefix {
            Some(prefix) => df
                .get_column_names()
                .iter()
                .filter(|n| !n.starts_with(prefix.as_str()))
                .count() as u64,
            None => df.width() as u64,
        }
    }

    fn ttl_ms(&self) -> i64 {
        self.config.session_ttl.as_millis().min(i64::MAX as u128) as i64
    }

    fn grace_ms(&self) -> i64 {
        self.config.gc_grace.as_millis().min(i64::MAX as u128) as i64
    }

    // ----- sessions -------------------------------------------------------

    /// Creates a session with the given id, or a fresh UUID.
    pub async fn create_session(&self, id: Option<&str>) -> Result<SessionMeta> {
        let id = match id {
            Some(id) => {
                validate_session_id(id)?;
                id.to_string()
            }
            None => new_session_id(),
        };
        let now = now_ms();
        let meta = SessionMeta {
            id: id.clone(),
            created_ms: now,
            last_access_ms: now,
            ttl_ms: self.ttl_ms(),
        };
        if !self.backend.create_session(&meta).await? {
            return Err(StoreError::SessionExists { id });
        }
        Ok(meta)
    }

    /// Opens a session (refreshing its expiry), creating it when `create` is
    /// set and it does not exist.
    pub async fn open_session(&self, id: &str, create: bool) -> Result<SessionMeta> {
        validate_session_id(id)?;
        match self.backend.open(id, None, now_ms()).await? {
            Some((meta, _)) => Ok(meta),
            None if create => match self.create_session(Some(id)).await {
                // Another process created it in between: open theirs.
                Err(StoreError::SessionExists { .. }) => {
                    match self.backend.open(id, None, now_ms()).await? {
                        Some((meta, _)) => Ok(meta),
                        None => Err(StoreError::SessionNotFound { id: id.into() }),
                    }
                }
                other => other,
            },
            None => Err(StoreError::SessionNotFound { id: id.into() }),
        }
    }

    /// Looks up a session and refreshes its expiry.
    pub async fn session(&self, id: &str) -> Result<SessionMeta> {
        self.open_session(id, false).await
    }

    pub async fn list_sessions(&self) -> Result<Vec<SessionMeta>> {
        let mut sessions = self.backend.list_sessions(now_ms()).await?;
        sessions.sort_by_key(|s| std::cmp::Reverse(s.last_access_ms));
        Ok(sessions)
    }

    pub async fn delete_session(&self, id: &str) -> Result<()> {
        validate_session_id(id)?;
        if !self.backend.delete_session(id).await? {
            return Err(StoreError::SessionNotFound { id: id.into() });
        }
        self.frames.forget_session(id);
        self.gc_due
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        Ok(())
    }

    /// Removes expired sessions; returns how many.
    pub async fn purge_expired(&self) -> Result<usize> {
        let purged = self.backend.purge_expired(now_ms()).await?;
        for id in &purged {
            self.frames.forget_session(id);
        }
        Ok(purged.len())
    }

    /// Housekeeping to run now and then: purges expired sessions and collects
    /// garbage in sessions whose retired data has passed its grace period.
    pub async fn maintain(&self) -> Result<(usize, GcReport)> {
        let purged = self.purge_expired().await?;
        let now = now_ms();
        let due: Vec<String> = {
            let mut map = self.gc_due.lock().unwrap_or_else(|p| p.into_inner());
            let due: Vec<String> = map
                .iter()
                .filter(|(_, at)| **at <= now)
                .map(|(s, _)| s.clone())
                .collect();
            for s in &due {
                map.remove(s);
            }
            due
        };
        let mut total = GcReport::default();
        for session in due {
            match self.gc(&session).await {
                Ok(report) => {
                    total.deleted += report.deleted;
                    total.bytes_freed += report.bytes_freed;
                    total.kept += report.kept;
                }
                Err(StoreError::SessionNotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((purged, total))
    }

    fn schedule_gc(&self, session: &str) {
        let at = now_ms() + self.grace_ms() + 1;
        let mut map = self.gc_due.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(session.to_string())
            .and_modify(|t| *t = (*t).max(at))
            .or_insert(at);
    }

    // ----- tables: reading ------------------------------------------------

    async fn open_table(&self, session: &str, name: &str) -> Result<(TableRecord, TableState)> {
        validate_session_id(session)?;
        let Some((_, record)) = self.backend.open(session, Some(name), now_ms()).await? else {
            return Err(StoreError::SessionNotFound { id: session.into() });
        };
        let Some(record) = record else {
            return Err(StoreError::TableNotFound {
                session: session.into(),
                name: name.into(),
                existing: self.table_names(session).await?,
            });
        };
        let state = parse_state(&record)?;
        Ok((record, state))
    }

    async fn table_names(&self, session: &str) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .backend
            .list_tables(session)
            .await?
            .into_iter()
            .map(|r| r.name)
            .collect();
        names.sort();
        Ok(names)
    }

    /// Tables of a session, by name (refreshes the session's expiry).
    pub async fn list_tables(&self, session: &str) -> Result<Vec<TableInfo>> {
        self.session(session).await?;
        let mut out = Vec::new();
        for record in self.backend.list_tables(session).await? {
            let state = parse_state(&record)?;
            out.push(TableInfo {
                name: record.name,
                version: state.head.version,
                rows: state.head.rows,
                cols: state.head.cols,
                undo_depth: state.undo.len(),
                redo_depth: state.redo.len(),
                last_action: state.head.action.clone(),
                last_summary: state.head.summary.clone(),
                updated_ms: state.head.at_ms,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The state document of a table (its head, stacks and metadata), without
    /// loading data.
    pub async fn table_state(&self, session: &str, name: &str) -> Result<(u64, TableState)> {
        let (record, state) = self.open_table(session, name).await?;
        Ok((record.rev, state))
    }

    /// Loads a table's head. A warm table (its head decoded in this process
    /// before) costs one small metadata read.
    pub async fn load(&self, session: &str, name: &str) -> Result<Loaded> {
        let mut last_err = None;
        for _ in 0..LOAD_ATTEMPTS {
            let (record, state) = self.open_table(session, name).await?;
            match self.materialize(session, &state.head.manifest).await {
                Ok(cached) => {
                    return Ok(Loaded {
                        session: session.into(),
                        name: name.into(),
                        rev: record.rev,
                        df: cached.df.clone(),
                        meta: cached.meta.clone(),
                        state,
                    });
                }
                // The head moved and its data was collected between our two
                // reads: read the head again.
                Err(e @ StoreError::Corrupt(_)) => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| StoreError::Corrupt("table data is missing".into())))
    }

    /// Loads a specific manifest of a session (from cache or backend).
    async fn materialize(&self, session: &str, manifest_id: &str) -> Result<Arc<CachedTable>> {
        if let Some(hit) = self.frames.get(session, manifest_id) {
            return Ok(hit);
        }
        let manifest = self.manifest(session, manifest_id).await?;
        let ids: Vec<String> = manifest.blob_ids().map(str::to_string).collect();
        let blobs = self.get_blobs_checked(session, &ids).await?;
        let codec_manifest = manifest.clone();
        let columns = self
            .blocking(move || decode_columns(&codec_manifest, blobs))
            .await??;
        let df = DataFrame::new(manifest.rows as usize, columns)?;
        let cached = Arc::new(CachedTable {
            bytes: df.estimated_size(),
            parts: manifest.columns.iter().map(|c| c.parts.clone()).collect(),
            meta: manifest.meta.clone(),
            df,
        });
        self.frames.insert(session, manifest_id, cached.clone());
        Ok(cached)
    }

    async fn manifest(&self, session: &str, id: &str) -> Result<Arc<Manifest>> {
        if let Some(hit) = self.manifests.get(session, id) {
            return Ok(hit);
        }
        let blob = self
            .backend
            .get_blobs(session, &[id.to_string()])
            .await?
            .pop()
            .flatten()
            .ok_or_else(|| StoreError::Corrupt(format!("manifest {id} is missing")))?;
        let Blob::Bytes(bytes) = blob else {
            return Err(StoreError::Corrupt(format!(
                "manifest {id} is not a document"
            )));
        };
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::Corrupt(format!("manifest {id} is unreadable: {e}")))?;
        if manifest.format > FORMAT_VERSION {
            return Err(StoreError::IncompatibleFormat {
                location: format!("manifest {id}"),
                found: manifest.format,
                supported: FORMAT_VERSION,
            });
        }
        let manifest = Arc::new(manifest);
        self.manifests.insert(session, id, manifest.clone());
        Ok(manifest)
    }

    async fn get_blobs_checked(&self, session: &str, ids: &[String]) -> Result<Vec<Blob>> {
        let blobs = self.backend.get_blobs(session, ids).await?;
        blobs
            .into_iter()
            .zip(ids)
            .map(|(blob, id)| {
                blob.ok_or_else(|| StoreError::Corrupt(format!("part {id} is missing")))
            })
            .collect()
    }

    // ----- tables: writing ------------------------------------------------

    /// Creates a table whose first version is `edit`.
    pub async fn create_table(&self, session: &str, name: &str, edit: Edit) -> Result<Committed> {
        validate_table_name(name)?;
        self.session(session).await?;
        let now = now_ms();
        let (manifest_id, stats) = self.write_version(session, name, &edit, None, now).await?;
        let head = VersionRef {
            version: 1,
            manifest: manifest_id,
            rows: edit.df.height() as u64,
            cols: self.width(&edit.df),
            action: edit.op.action.clone(),
            summary: edit.op.summary.clone(),
            at_ms: now,
        };
        self.publish_new_table(session, name, &head, &edit.op, now)
            .await?;
        self.frames.insert(
            session,
            &head.manifest,
            Arc::new(CachedTable {
                bytes: edit.df.estimated_size(),
                parts: stats.parts,
                meta: edit.meta,
                df: edit.df,
            }),
        );
        Ok(Committed::first(
            &head,
            stats.written,
            stats.reused,
            stats.bytes_written,
        ))
    }

    /// Publishes the first version of a new table (its blobs already stored):
    /// a compare-and-set that requires the name to be free.
    async fn publish_new_table(
        &self,
        session: &str,
        name: &str,
        head: &VersionRef,
        op: &OpRecord,
        now: i64,
    ) -> Result<()> {
        let state = TableState {
            format: FORMAT_VERSION,
            uid: new_uid(),
            name: name.into(),
            created_ms: now,
            next_version: 2,
            head: head.clone(),
            undo: vec![],
            redo: vec![],
            retired: vec![],
            recent_ops: Default::default(),
        };
        let log = log_append(&state, commit_record(head, None, None, op, None));
        let change = TableChange {
            name: name.into(),
            expected_rev: None,
            new: Some((1, encode_state(&state)?)),
        };
        match self
            .backend
            .cas_tables(session, &[change], &[log], now)
            .await?
        {
            CasOutcome::Applied => Ok(()),
            CasOutcome::Conflict { .. } => Err(StoreError::TableExists {
                session: session.into(),
                name: name.into(),
            }),
            CasOutcome::SessionGone => Err(StoreError::SessionNotFound { id: session.into() }),
        }
    }

    /// Commits `edit` as the new head of the table `base` was loaded from,
    /// if nobody moved the head since (else [`StoreError::Conflict`]).
    ///
    /// `op_id` makes the commit idempotent: a retry of a commit that did
    /// apply (say, after a timeout) reports success without applying twice.
    pub async fn commit(&self, base: &Loaded, edit: Edit, op_id: &str) -> Result<Committed> {
        let session = base.session.as_str();
        let now = now_ms();
        let (manifest_id, stats) = self
            .write_version(
                session,
                &base.name,
                &edit,
                Some(&base.state.head.manifest),
                now,
            )
            .await?;
        let head = VersionRef {
            version: 0, // assigned by versioning::commit
            manifest: manifest_id,
            rows: edit.df.height() as u64,
            cols: self.width(&edit.df),
            action: edit.op.action.clone(),
            summary: edit.op.summary.clone(),
            at_ms: now,
        };
        let next = versioning::commit(
            &base.state,
            head,
            Some(op_id),
            self.config.history_limit,
            now,
            self.grace_ms(),
        );
        let retired_any = next.retired.iter().any(|r| r.at_ms == now);
        let record = commit_record(
            &next.head,
            Some(&base.state.head),
            Some(op_id),
            &edit.op,
            Some(base.state.head.version),
        );
        let new_rev = base.rev + 1;
        let change = TableChange {
            name: base.name.clone(),
            expected_rev: Some(base.rev),
            new: Some((new_rev, encode_state(&next)?)),
        };
        let log = log_append(&next, record);
        let committed = Committed {
            version: next.head.version,
            rev: new_rev,
            rows: next.head.rows,
            cols: next.head.cols,
            already_applied: false,
            parts_written: stats.written,
            parts_reused: stats.reused,
            bytes_written: stats.bytes_written,
        };
        let outcome = self.cas_idempotent(base, change, log, op_id, now).await?;
        match outcome {
            Idempotent::Applied => {
                // The frame we were handed is exactly what the new head
                // holds: keep it, so the next operation starts warm and
                // recognises its untouched columns.
                self.frames.insert(
                    session,
                    &next.head.manifest,
                    Arc::new(CachedTable {
                        bytes: edit.df.estimated_size(),
                        parts: stats.parts,
                        meta: edit.meta,
                        df: edit.df,
                    }),
                );
                if retired_any {
                    self.schedule_gc(session);
                }
                Ok(committed)
            }
            Idempotent::AlreadyApplied { version, rev } => Ok(Committed {
                version,
                rev,
                already_applied: true,
                ..committed
            }),
        }
    }

    /// Compare-and-set that survives a lost response: when the outcome is
    /// unknown (backend unavailable) or a conflict, the current state tells
    /// whether our operation id already landed.
    async fn cas_idempotent(
        &self,
        base: &Loaded,
        change: TableChange,
        log: LogAppend,
        op_id: &str,
        now: i64,
    ) -> Result<Idempotent> {
        let session = base.session.as_str();
        let mut unavailable = None;
        for attempt in 0..3u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            let result = if unavailable.is_none() {
                self.backend
                    .cas_tables(
                        session,
                        std::slice::from_ref(&change),
                        std::slice::from_ref(&log),
                        now,
                    )
                    .await
            } else {
                // After an unknown outcome, look before trying again.
                match self.backend.open(session, Some(&base.name), now_ms()).await {
                    Ok(Some((_, Some(record)))) => {
                        let state = parse_state(&record)?;
                        if state.recent_ops.iter().any(|id| id == op_id) {
                            return Ok(Idempotent::AlreadyApplied {
                                version: state.head.version,
                                rev: record.rev,
                            });
                        }
                        if record.rev != base.rev {
                            return Err(conflict(&base.name, base.rev, Some(record.rev)));
                        }
                        self.backend
                            .cas_tables(
                                session,
                                std::slice::from_ref(&change),
                                std::slice::from_ref(&log),
                                now,
                            )
                            .await
                    }
                    Ok(Some((_, None))) => return Err(conflict(&base.name, base.rev, None)),
                    Ok(None) => return Err(StoreError::SessionNotFound { id: session.into() }),
                    Err(e) => Err(e),
                }
            };
            match result {
                Ok(CasOutcome::Applied) => return Ok(Idempotent::Applied),
                Ok(CasOutcome::SessionGone) => {
                    return Err(StoreError::SessionNotFound { id: session.into() });
                }
                Ok(CasOutcome::Conflict { current, .. }) => {
                    if let Ok(Some((_, Some(record)))) =
                        self.backend.open(session, Some(&base.name), now_ms()).await
                    {
                        let state = parse_state(&record)?;
                        if state.recent_ops.iter().any(|id| id == op_id) {
                            return Ok(Idempotent::AlreadyApplied {
                                version: state.head.version,
                                rev: record.rev,
                            });
                        }
                    }
                    return Err(conflict(&base.name, base.rev, current));
                }
                Err(e @ StoreError::Unavailable { .. }) => unavailable = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(unavailable.unwrap_or_else(|| StoreError::Internal("commit retries exhausted".into())))
    }

    /// Load, apply, commit; on a lost race, reload and apply again (a bounded
    /// number of times). `apply` runs on the blocking pool.
    pub async fn update<T, E, F>(
        &self,
        session: &str,
        name: &str,
        op_id: &str,
        apply: F,
    ) -> std::result::Result<Updated<T>, UpdateError<E>>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: Fn(&Loaded) -> std::result::Result<(Edit, T), E> + Send + Sync + 'static,
    {
        let apply = Arc::new(apply);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let loaded = Arc::new(self.load(session, name).await?);
            if loaded.state.recent_ops.iter().any(|id| id == op_id) {
                return Ok(Updated::AlreadyApplied {
                    version: loaded.state.head.version,
                });
            }
            let job = {
                let apply = apply.clone();
                let loaded = loaded.clone();
                move || apply(&loaded)
            };
            let (edit, output) = self.blocking(job).await?.map_err(UpdateError::Apply)?;
            match self.commit(&loaded, edit, op_id).await {
                Ok(committed) => return Ok(Updated::Applied { committed, output }),
                Err(StoreError::Conflict { .. }) if attempt < UPDATE_ATTEMPTS => {
                    // Jitter so that racing writers do not collide again in step.
                    let jitter = (uuid::Uuid::new_v4().as_u128() % 20) as u64;
                    tokio::time::sleep(Duration::from_millis(5 * attempt as u64 + jitter)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Moves the head one step back.
    pub async fn undo(&self, session: &str, name: &str) -> Result<Moved> {
        self.step(session, name, EventKind::Undo).await
    }

    /// Moves the head one step forward again.
    pub async fn redo(&self, session: &str, name: &str) -> Result<Moved> {
        self.step(session, name, EventKind::Redo).await
    }

    async fn step(&self, session: &str, name: &str, kind: EventKind) -> Result<Moved> {
        let (record, state) = self.open_table(session, name).await?;
        let now = now_ms();
        let (limit, grace) = (self.config.history_limit, self.grace_ms());
        let next = match kind {
            EventKind::Undo => versioning::undo(&state, limit, now, grace),
            _ => versioning::redo(&state, limit, now, grace),
        };
        let Some(next) = next else {
            let (what, why) = match kind {
                EventKind::Undo if state.head.version == 1 => {
                    ("undo", "the table is at its first version".to_string())
                }
                EventKind::Undo => (
                    "undo",
                    format!(
                        "older versions are beyond the history limit of {} steps",
                        self.config.history_limit
                    ),
                ),
                _ => (
                    "redo",
                    "no undone operation is waiting (a new operation after an undo discards the redo steps)"
                        .to_string(),
                ),
            };
            return Err(StoreError::NothingTo {
                what,
                name: name.into(),
                why,
            });
        };
        let log_rec = LogRecord {
            kind,
            version: next.head.version,
            from_version: Some(state.head.version),
            at_ms: now,
            op_id: None,
            action: match kind {
                EventKind::Undo => "undo".into(),
                _ => "redo".into(),
            },
            params: serde_json::Value::Null,
            summary: match kind {
                EventKind::Undo => format!("Undid: {}", state.head.summary),
                _ => format!("Redid: {}", next.head.summary),
            },
            rows_before: Some(state.head.rows),
            cols_before: Some(state.head.cols),
            rows_after: next.head.rows,
            cols_after: next.head.cols,
        };
        let change = TableChange {
            name: name.into(),
            expected_rev: Some(record.rev),
            new: Some((record.rev + 1, encode_state(&next)?)),
        };
        let log = log_append(&next, log_rec);
        match self
            .backend
            .cas_tables(session, &[change], &[log], now)
            .await?
        {
            CasOutcome::Applied => {
                if next.retired.len() > state.retired.len() {
                    self.schedule_gc(session);
                }
                Ok(Moved {
                    from: state.head,
                    rev: record.rev + 1,
                    undo_depth: next.undo.len(),
                    redo_depth: next.redo.len(),
                    to: next.head,
                })
            }
            CasOutcome::Conflict { current, .. } => Err(conflict(name, record.rev, current)),
            CasOutcome::SessionGone => Err(StoreError::SessionNotFound { id: session.into() }),
        }
    }

    /// A table's history: every committed version with where it stands, and
    /// the undo/redo events.
    pub async fn history(&self, session: &str, name: &str) -> Result<History> {
        let (_, state) = self.open_table(session, name).await?;
        let raw = self.backend.read_log(session, &state.uid).await?;
        let mut versions = Vec::new();
        let mut events = Vec::new();
        for bytes in raw {
            let record: LogRecord = serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::Corrupt(format!("a log record is unreadable: {e}")))?;
            match record.kind {
                EventKind::Commit => versions.push(record),
                _ => events.push(record),
            }
        }
        // Ancestors of the head are applied; follow parent links.
        let parents: HashMap<u64, Option<u64>> = versions
            .iter()
            .map(|r| (r.version, r.from_version))
            .collect();
        let mut applied = HashSet::new();
        let mut cursor = Some(state.head.version);
        while let Some(v) = cursor {
            if !applied.insert(v) {
                break;
            }
            cursor = parents.get(&v).copied().flatten();
        }
        let undoable: HashSet<u64> = state.undo.iter().map(|v| v.version).collect();
        let redoable: HashSet<u64> = state.redo.iter().map(|v| v.version).collect();
        let versions = versions
            .into_iter()
            .map(|record| {
                let v = record.version;
                let status = if v == state.head.version {
                    VersionStatus::Current
                } else if undoable.contains(&v) {
                    VersionStatus::Undoable
                } else if redoable.contains(&v) {
                    VersionStatus::Redoable
                } else if applied.contains(&v) {
                    VersionStatus::BeyondUndoLimit
                } else {
                    VersionStatus::Discarded
                };
                HistoryEntry { record, status }
            })
            .collect();
        Ok(History {
            table: state.name.clone(),
            current_version: state.head.version,
            undo_depth: state.undo.len(),
            redo_depth: state.redo.len(),
            versions,
            events,
        })
    }

    /// Renames a table; its history and undo stack go with it.
    pub async fn rename_table(&self, session: &str, from: &str, to: &str) -> Result<()> {
        validate_table_name(to)?;
        let (record, mut state) = self.open_table(session, from).await?;
        if from == to {
            return Ok(());
        }
        let now = now_ms();
        state.name = to.into();
        let doc = encode_state(&state)?;
        let rec = LogRecord {
            kind: EventKind::Rename,
            version: state.head.version,
            from_version: Some(state.head.version),
            at_ms: now,
            op_id: None,
            action: "rename_table".into(),
            params: serde_json::json!({ "from": from, "to": to }),
            summary: format!("Renamed table '{from}' to '{to}'"),
            rows_before: Some(state.head.rows),
            cols_before: Some(state.head.cols),
            rows_after: state.head.rows,
            cols_after: state.head.cols,
        };
        let changes = [
            TableChange {
                name: from.into(),
                expected_rev: Some(record.rev),
                new: None,
            },
            TableChange {
                name: to.into(),
                expected_rev: None,
                new: Some((record.rev + 1, doc)),
            },
        ];
        let log = log_append(&state, rec);
        match self
            .backend
            .cas_tables(session, &changes, &[log], now)
            .await?
        {
            CasOutcome::Applied => Ok(()),
            CasOutcome::Conflict { name, current } if name == to => {
                let _ = current;
                Err(StoreError::TableExists {
                    session: session.into(),
                    name: to.into(),
                })
            }
            CasOutcome::Conflict { current, .. } => Err(conflict(from, record.rev, current)),
            CasOutcome::SessionGone => Err(StoreError::SessionNotFound { id: session.into() }),
        }
    }

    /// Drops a table with its history. Its data is collected after the grace
    /// period.
    pub async fn drop_table(&self, session: &str, name: &str) -> Result<()> {
        let (record, _) = self.open_table(session, name).await?;
        let change = TableChange {
            name: name.into(),
            expected_rev: Some(record.rev),
            new: None,
        };
        match self
            .backend
            .cas_tables(session, &[change], &[], now_ms())
            .await?
        {
            CasOutcome::Applied => {
                self.schedule_gc(session);
                Ok(())
            }
            CasOutcome::Conflict { current, .. } => Err(conflict(name, record.rev, current)),
            CasOutcome::SessionGone => Err(StoreError::SessionNotFound { id: session.into() }),
        }
    }

    /// Copies a table's current version into another (or the same) session
    /// under a new name, without decoding it. The copy starts a new history.
    pub async fn copy_table(
        &self,
        from_session: &str,
        from_name: &str,
        to_session: &str,
        to_name: &str,
    ) -> Result<Committed> {
        validate_table_name(to_name)?;
        let (_, src) = self.open_table(from_session, from_name).await?;
        self.session(to_session).await?;
        let manifest = self.manifest(from_session, &src.head.manifest).await?;
        let mut ids: Vec<String> = manifest.blob_ids().map(str::to_string).collect();
        ids.push(src.head.manifest.clone());
        let now = now_ms();
        let present = self.backend.touch_blobs(to_session, &ids, now).await?;
        let missing: Vec<String> = ids
            .iter()
            .zip(&present)
            .filter(|(_, p)| !**p)
            .map(|(id, _)| id.clone())
            .collect();
        let mut written = 0;
        let mut bytes_written = 0;
        for batch in missing.chunks(16) {
            let blobs = self.get_blobs_checked(from_session, batch).await?;
            written += blobs.len();
            bytes_written += blobs.iter().map(Blob::size).sum::<u64>();
            self.backend
                .put_blobs(to_session, batch.iter().cloned().zip(blobs).collect(), now)
                .await?;
        }
        let op = OpRecord::new(
            "copy_table",
            serde_json::json!({ "source_session_id": from_session, "source_table": from_name }),
            format!(
                "Copied table '{from_name}' (version {}) from session {from_session}",
                src.head.version
            ),
        );
        let head = VersionRef {
            version: 1,
            manifest: src.head.manifest.clone(),
            rows: src.head.rows,
            cols: src.head.cols,
            action: op.action.clone(),
            summary: op.summary.clone(),
            at_ms: now,
        };
        self.publish_new_table(to_session, to_name, &head, &op, now)
            .await?;
        Ok(Committed::first(
            &head,
            written,
            ids.len() - written,
            bytes_written,
        ))
    }

    // ----- space ----------------------------------------------------------

    /// Blobs and bytes a session keeps in the backend.
    pub async fn usage(&self, session: &str) -> Result<Usage> {
        let blobs = self.backend.list_blobs(session).await?;
        Ok(Usage {
            blobs: blobs.len(),
            bytes: blobs.iter().map(|b| b.size).sum(),
        })
    }

    /// Deletes the session's blobs that no retained version references and
    /// that nobody touched for one grace period.
    pub async fn gc(&self, session: &str) -> Result<GcReport> {
        let now = now_ms();
        let cutoff = now - self.grace_ms();
        let mut manifests: HashSet<String> = HashSet::new();
        for record in self.backend.list_tables(session).await? {
            let state = parse_state(&record)?;
            manifests.extend(versioning::live_manifests(&state).map(str::to_string));
            manifests.extend(
                state
                    .retired
                    .iter()
                    .filter(|r| r.at_ms >= cutoff)
                    .map(|r| r.manifest.clone()),
            );
        }
        let mut referenced: HashSet<String> = HashSet::new();
        for id in &manifests {
            match self.manifest(session, id).await {
                Ok(m) => referenced.extend(m.blob_ids().map(str::to_string)),
                // A manifest written but never published is simply garbage.
                Err(StoreError::Corrupt(_)) => {}
                Err(e) => return Err(e),
            }
        }
        referenced.extend(manifests);
        let blobs = self.backend.list_blobs(session).await?;
        let candidates: Vec<String> = blobs
            .iter()
            .filter(|b| !referenced.contains(&b.id) && b.touched_ms < cutoff)
            .map(|b| b.id.clone())
            .collect();
        let bytes_freed = if candidates.is_empty() {
            0
        } else {
            self.backend
                .delete_blobs(session, &candidates, cutoff)
                .await?
        };
        Ok(GcReport {
            deleted: candidates.len(),
            bytes_freed,
            kept: blobs.len() - candidates.len(),
        })
    }

    // ----- internals ------------------------------------------------------

    /// Stores the blobs of a new version (only those not stored yet) and its
    /// manifest; returns the manifest id.
    async fn write_version(
        &self,
        session: &str,
        name: &str,
        edit: &Edit,
        base_manifest: Option<&str>,
        now: i64,
    ) -> Result<(String, WriteStats)> {
        let size = edit.df.estimated_size() as u64;
        if size > self.config.max_table_bytes {
            return Err(StoreError::TooLarge {
                name: name.into(),
                size,
                limit: self.config.max_table_bytes,
            });
        }
        let base = base_manifest.and_then(|m| self.frames.get(session, m));
        let native = self.backend.capabilities().native_frames;
        let codec = self.codec;
        let df = edit.df.clone();
        let plan = self
            .blocking(move || plan_columns(&df, base.as_deref(), native, &codec))
            .await??;

        // Which parts does the backend already hold? Touching them also keeps
        // them from being collected before our head is published.
        let reused_ids: Vec<String> = plan
            .iter()
            .flat_map(|c| c.parts.iter())
            .filter(|p| p.blob.is_none())
            .map(|p| p.part.id.clone())
            .collect();
        let new_ids: Vec<String> = plan
            .iter()
            .flat_map(|c| c.parts.iter())
            .filter(|p| p.blob.is_some())
            .map(|p| p.part.id.clone())
            .collect();
        let present_reused = self.backend.touch_blobs(session, &reused_ids, now).await?;
        let present_new = self.backend.touch_blobs(session, &new_ids, now).await?;
        let missing_reused: HashSet<&String> = reused_ids
            .iter()
            .zip(&present_reused)
            .filter(|(_, p)| !**p)
            .map(|(id, _)| id)
            .collect();
        let present_new: HashSet<&String> = new_ids
            .iter()
            .zip(&present_new)
            .filter(|(_, p)| **p)
            .map(|(id, _)| id)
            .collect();

        // Reused parts that vanished (collected long ago) must be written again.
        let mut to_put: Vec<(String, Blob)> = Vec::new();
        if !missing_reused.is_empty() {
            let columns: Vec<usize> = plan
                .iter()
                .enumerate()
                .filter(|(_, c)| c.parts.iter().any(|p| missing_reused.contains(&p.part.id)))
                .map(|(i, _)| i)
                .collect();
            let df = edit.df.clone();
            let rewritten = self
                .blocking(move || {
                    columns
                        .into_iter()
                        .map(|i| {
                            store_column(df.columns()[i].as_materialized_series(), native, &codec)
                        })
                        .collect::<Result<Vec<_>>>()
                })
                .await??;
            for parts in rewritten {
                for p in parts {
                    if let Some(blob) = p.blob {
                        to_put.push((p.part.id, blob));
                    }
                }
            }
        }
        let mut stats = WriteStats::default();
        let mut seen: HashSet<String> = HashSet::new();
        let mut column_parts = Vec::with_capacity(plan.len());
        let mut entries = Vec::with_capacity(plan.len());
        for column in plan {
            let mut refs = Vec::with_capacity(column.parts.len());
            for planned in column.parts {
                match planned.blob {
                    Some(blob) if !present_new.contains(&planned.part.id) => {
                        if seen.insert(planned.part.id.clone()) {
                            to_put.push((planned.part.id.clone(), blob));
                        }
                    }
                    _ => stats.reused += 1,
                }
                refs.push(planned.part);
            }
            entries.push(ColumnEntry {
                name: column.name,
                dtype: column.dtype,
                parts: refs.clone(),
            });
            column_parts.push(refs);
        }
        let manifest = Manifest {
            format: FORMAT_VERSION,
            rows: edit.df.height() as u64,
            columns: entries,
            meta: edit.meta.clone(),
        };
        let manifest_bytes = serde_json::to_vec(&manifest)
            .map_err(|e| StoreError::Internal(format!("manifest encoding failed: {e}")))?;
        let manifest_id = content_id('m', &manifest_bytes);
        to_put.push((
            manifest_id.clone(),
            Blob::Bytes(Bytes::from(manifest_bytes)),
        ));
        stats.written = to_put.len() - 1;
        stats.bytes_written = to_put.iter().map(|(_, b)| b.size()).sum();
        // Bound request sizes: hosted Redis limits one request to 10 MB.
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        for (id, blob) in to_put {
            batch_bytes += blob.size();
            batch.push((id, blob));
            if batch_bytes >= self.config.part_max_bytes as u64 {
                self.backend
                    .put_blobs(session, std::mem::take(&mut batch), now)
                    .await?;
                batch_bytes = 0;
            }
        }
        if !batch.is_empty() {
            self.backend.put_blobs(session, batch, now).await?;
        }
        self.manifests
            .insert(session, &manifest_id, Arc::new(manifest));
        stats.parts = column_parts;
        Ok((manifest_id, stats))
    }
}

enum Idempotent {
    Applied,
    AlreadyApplied { version: u64, rev: u64 },
}

#[derive(Default)]
struct WriteStats {
    written: usize,
    reused: usize,
    bytes_written: u64,
    parts: Vec<Vec<PartRef>>,
}

struct PlannedPart {
    part: PartRef,
    /// `None`: reused from the base version (identity match).
    blob: Option<Blob>,
}

struct PlannedColumn {
    name: String,
    dtype: String,
    parts: Vec<PlannedPart>,
}

/// Decides, per column, which stored parts can be reused and encodes the rest.
fn plan_columns(
    df: &DataFrame,
    base: Option<&CachedTable>,
    native: bool,
    codec: &Codec,
) -> Result<Vec<PlannedColumn>> {
    df.columns()
        .par_iter()
        .map(|column| {
            let series = column.as_materialized_series();
            let parts = match base.and_then(|b| find_identical(b, column)) {
                Some(parts) => parts
                    .iter()
                    .map(|p| PlannedPart {
                        part: p.clone(),
                        blob: None,
                    })
                    .collect(),
                None => store_column(series, native, codec)?,
            };
            Ok(PlannedColumn {
                name: column.name().to_string(),
                dtype: column.dtype().to_string(),
                parts,
            })
        })
        .collect()
}

fn store_column(series: &Series, native: bool, codec: &Codec) -> Result<Vec<PlannedPart>> {
    if native {
        let blob = Blob::Frame(series.clone());
        return Ok(vec![PlannedPart {
            part: PartRef {
                id: format!("f{}", new_uid()),
                rows: series.len() as u64,
                bytes: blob.size(),
            },
            blob: Some(blob),
        }]);
    }
    Ok(codec
        .encode_column(series)?
        .into_iter()
        .map(|p| PlannedPart {
            part: PartRef {
                id: p.id,
                rows: p.rows,
                bytes: p.bytes.len() as u64,
            },
            blob: Some(Blob::Bytes(p.bytes)),
        })
        .collect())
}

/// The parts of a base column holding the very same data as `column` (same
/// arrow arrays, not merely equal values), if any.
fn find_identical<'a>(base: &'a CachedTable, column: &Column) -> Option<&'a [PartRef]> {
    let by_name = base
        .df
        .columns()
        .iter()
        .position(|c| c.name() == column.name());
    let others = (0..base.df.width()).filter(|&i| Some(i) != by_name);
    for i in by_name.into_iter().chain(others) {
        if same_data(&base.df.columns()[i], column) {
            return base.parts.get(i).map(Vec::as_slice);
        }
    }
    None
}

fn same_data(a: &Column, b: &Column) -> bool {
    if a.dtype() != b.dtype() || a.len() != b.len() {
        return false;
    }
    let (sa, sb) = (a.as_materialized_series(), b.as_materialized_series());
    let (ca, cb) = (sa.chunks(), sb.chunks());
    ca.len() == cb.len()
        && ca
            .iter()
            .zip(cb)
            .all(|(x, y)| std::ptr::addr_eq(x.as_ref() as *const _, y.as_ref() as *const _))
}

fn decode_columns(manifest: &Manifest, blobs: Vec<Blob>) -> Result<Vec<Column>> {
    let mut blobs = blobs.into_iter();
    let mut jobs = Vec::with_capacity(manifest.columns.len());
    for column in &manifest.columns {
        let parts: Vec<Blob> = blobs.by_ref().take(column.parts.len()).collect();
        jobs.push((column.name.as_str(), parts));
    }
    jobs.into_par_iter()
        .map(|(name, parts)| {
            let series: Vec<Series> = parts
                .into_par_iter()
                .map(|blob| match blob {
                    Blob::Bytes(bytes) => decode_part(&bytes, name),
                    Blob::Frame(s) => Ok(s.with_name(name.into())),
                })
                .collect::<Result<_>>()?;
            Ok(concat_parts(name, series)?.into_column())
        })
        .collect()
}

fn parse_state(record: &TableRecord) -> Result<TableState> {
    #[derive(serde::Deserialize)]
    struct Probe {
        format: u32,
    }
    if let Ok(probe) = serde_json::from_slice::<Probe>(&record.doc)
        && probe.format > FORMAT_VERSION
    {
        return Err(StoreError::IncompatibleFormat {
            location: format!("table '{}'", record.name),
            found: probe.format,
            supported: FORMAT_VERSION,
        });
    }
    serde_json::from_slice(&record.doc).map_err(|e| {
        StoreError::Corrupt(format!(
            "the state of table '{}' is unreadable: {e}",
            record.name
        ))
    })
}

fn encode_state(state: &TableState) -> Result<Bytes> {
    serde_json::to_vec(state)
        .map(Bytes::from)
        .map_err(|e| StoreError::Internal(format!("state encoding failed: {e}")))
}

fn commit_record(
    head: &VersionRef,
    before: Option<&VersionRef>,
    op_id: Option<&str>,
    op: &OpRecord,
    from_version: Option<u64>,
) -> LogRecord {
    LogRecord {
        kind: EventKind::Commit,
        version: head.version,
        from_version,
        at_ms: head.at_ms,
        op_id: op_id.map(str::to_string),
        action: op.action.clone(),
        params: op.params.clone(),
        summary: op.summary.clone(),
        rows_before: before.map(|b| b.rows),
        cols_before: before.map(|b| b.cols),
        rows_after: head.rows,
        cols_after: head.cols,
    }
}

fn log_append(state: &TableState, record: LogRecord) -> LogAppend {
    LogAppend {
        table_uid: state.uid.clone(),
        // A LogRecord has only plain fields: serializing it cannot fail.
        record: Bytes::from(serde_json::to_vec(&record).unwrap_or_default()),
    }
}

fn conflict(name: &str, expected: u64, current: Option<u64>) -> StoreError {
    StoreError::Conflict {
        name: name.into(),
        expected,
        found: current.map_or(Revision::Absent, Revision::At),
    }
}

fn panic_message(e: tokio::task::JoinError) -> String {
    let payload = e.into_panic();
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}
