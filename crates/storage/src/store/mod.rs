//! The store: sessions of versioned tables, written once over [`Backend`].
//!
//! Seams, one module each: [`types`] (what goes in and out), `publish` (the
//! compare-and-set protocol every head move uses), `snapshot` (writing and
//! reading versions), `gc` (collection and maintenance), `history` (reading a
//! log, pure), `compute` (the CPU pool). This file holds the sessions and
//! tables API built from them.

mod compute;
mod exports;
mod gc;
mod history;
mod publish;
mod snapshot;
mod tasks;
mod types;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use polars::prelude::*;

use crate::backend::{Backend, CasRequest, LogAppend, SessionMeta, TableChange, TableRecord};
use crate::cache::{CachedTable, FrameCache, ManifestCache};
use crate::clock::{Clock, SystemClock};
use crate::codec::{Codec, Compression};
use crate::error::{Result, Revision, StoreError};
use crate::ids::{new_session_id, new_uid, validate_stored_session_id, validate_table_name};
use crate::model::{EventKind, FORMAT_VERSION, LogRecord, OpRecord, TableState, VersionRef};
use crate::versioning;

pub use compute::{Cancel, Compute};
use publish::{Landed, Published};
pub use tasks::{BEAT_MS, LOST_AFTER_MS, TaskEnd, TaskStart, TaskState};
pub use types::*;

/// Settings of a [`Store`]. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Idle time after which a session expires (default 24 h).
    pub session_ttl: Duration,
    /// Undo (and redo) steps kept per table (default 50).
    pub history_limit: usize,
    /// Log records kept per table; older ones are trimmed (default 1000).
    pub log_limit: usize,
    /// Largest table, in bytes in memory (default 512 MiB).
    pub max_table_bytes: u64,
    pub compression: Compression,
    /// Target size of a column part in memory (default 4 MiB).
    pub part_target_bytes: usize,
    /// Largest encoded part (default 8 MiB, and always under the backend's
    /// request limit).
    pub part_max_bytes: usize,
    /// How long unreferenced data is kept before it may be deleted, so that a
    /// reader that just read a head never finds its data gone (default 5 min).
    pub gc_grace: Duration,
    /// Decoded frames kept in memory per process (default 1 GiB).
    pub cache_bytes: usize,
    /// Parallel CPU-heavy jobs (encoding, decoding, the caller's work);
    /// default: the core count.
    pub cpu_jobs: usize,
    /// Stack of each compute thread (default 64 MiB): deep expression trees
    /// are walked recursively.
    pub compute_stack_bytes: usize,
    /// How long a write keeps retrying when other writers keep winning the
    /// compare-and-set (default 60 s).
    pub write_deadline: Duration,
    /// Columns whose names start with this prefix are bookkeeping of the
    /// caller (such as hidden marks): stored like any column, but not counted
    /// in the column counts of versions and listings.
    pub hidden_column_prefix: Option<String>,
    /// Where time comes from (tests move a [`crate::ManualClock`]).
    pub clock: Arc<dyn Clock>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            session_ttl: Duration::from_secs(24 * 3600),
            history_limit: 50,
            log_limit: 1000,
            max_table_bytes: 512 << 20,
            compression: Compression::default(),
            part_target_bytes: 4 << 20,
            part_max_bytes: 8 << 20,
            gc_grace: Duration::from_secs(300),
            cache_bytes: 1 << 30,
            cpu_jobs: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            compute_stack_bytes: 64 << 20,
            write_deadline: Duration::from_secs(60),
            hidden_column_prefix: None,
            clock: Arc::new(SystemClock),
        }
    }
}

/// How many times [`Store::load`] re-reads a head whose data vanished
/// under it (collected after another writer moved the head).
const LOAD_ATTEMPTS: usize = 4;
/// Most compare-and-set attempts of one update.
const UPDATE_ATTEMPTS: u32 = 40;
/// Attempts of a rename or drop whose table other writers keep changing.
const HEAD_MOVE_ATTEMPTS: u32 = 10;
/// Log records searched for an operation id.
const OP_SEARCH: usize = 256;

/// Sessions of named, versioned tables over a [`Backend`].
///
/// **Invariant:** a table head only moves by compare-and-set
/// ([`Backend::cas_tables`], through `publish`); every mutation reads a
/// revision, computes the next state with [`crate::versioning`] and publishes
/// it only if the revision is unchanged.
pub struct Store {
    backend: Arc<dyn Backend>,
    config: StoreConfig,
    codec: Codec,
    frames: FrameCache,
    manifests: ManifestCache,
    compute: Compute,
    /// Sessions with retired data, and when a GC pass could free it.
    gc_due: Mutex<HashMap<String, i64>>,
    writers: TableLocks,
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
        let mut part_max = config.part_max_bytes;
        if let Some(max) = backend.capabilities().max_request_bytes {
            part_max = part_max.min(max.saturating_sub(snapshot::REQUEST_OVERHEAD) as usize);
        }
        let codec = Codec {
            compression: config.compression,
            part_target_bytes: config.part_target_bytes.min(part_max.max(1)),
            part_max_bytes: part_max.max(1),
        };
        Store {
            frames: FrameCache::new(config.cache_bytes),
            manifests: ManifestCache::new(4096),
            compute: Compute::new(config.cpu_jobs, config.compute_stack_bytes),
            gc_due: Mutex::new(HashMap::new()),
            writers: TableLocks::default(),
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

    /// The store's time, in milliseconds since the epoch.
    pub fn now(&self) -> i64 {
        self.config.clock.now_ms()
    }

    /// Runs CPU-heavy work on the compute pool, in the lane of `session`
    /// (lanes take turns; see [`Compute`]). Dropping the future cancels the
    /// work: it is skipped if not started, and sees [`Cancel`] if running.
    pub async fn compute<T, F>(&self, session: &str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Cancel) -> T + Send + 'static,
    {
        self.compute.run(session, f).await
    }

    /// Runs CPU-heavy work on the compute pool, in the shared lane.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.compute.run("", move |_| f()).await
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
                validate_stored_session_id(id)?;
                id.to_string()
            }
            None => new_session_id(),
        };
        let now = self.now();
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
    /// set and it does not exist. Returns it and whether it was created.
    pub async fn open_session(&self, id: &str, create: bool) -> Result<(SessionMeta, bool)> {
        validate_stored_session_id(id)?;
        if let Some((meta, _)) = self.backend.open(id, None, self.now()).await? {
            return Ok((meta, false));
        }
        if !create {
            return Err(StoreError::SessionNotFound { id: id.into() });
        }
        match self.create_session(Some(id)).await {
            Ok(meta) => Ok((meta, true)),
            // Another process created it in between: open theirs.
            Err(StoreError::SessionExists { .. }) => {
                match self.backend.open(id, None, self.now()).await? {
                    Some((meta, _)) => Ok((meta, false)),
                    None => Err(StoreError::SessionNotFound { id: id.into() }),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Looks up a session and refreshes its expiry.
    pub async fn session(&self, id: &str) -> Result<SessionMeta> {
        Ok(self.open_session(id, false).await?.0)
    }

    /// Live sessions of a namespace (see [`Backend::list_sessions`]), most
    /// recently used first, at most `limit`.
    pub async fn list_sessions(&self, namespace: &str, limit: usize) -> Result<Vec<SessionMeta>> {
        let mut sessions = self
            .backend
            .list_sessions(namespace, limit, self.now())
            .await?;
        sessions.sort_by_key(|s| std::cmp::Reverse(s.last_access_ms));
        Ok(sessions)
    }

    pub async fn delete_session(&self, id: &str) -> Result<()> {
        validate_stored_session_id(id)?;
        if !self.backend.delete_session(id, self.now()).await? {
            return Err(StoreError::SessionNotFound { id: id.into() });
        }
        self.forget(id);
        Ok(())
    }

    fn forget(&self, session: &str) {
        self.frames.forget_session(session);
        self.gc_due
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(session);
    }

    /// Removes expired sessions; returns how many.
    pub async fn purge_expired(&self) -> Result<usize> {
        let purged = self.backend.purge_expired(self.now()).await?;
        for id in &purged {
            self.forget(id);
        }
        Ok(purged.len())
    }

    // ----- tables: reading ------------------------------------------------

    async fn open_table(&self, session: &str, name: &str) -> Result<(TableRecord, TableState)> {
        validate_stored_session_id(session)?;
        let Some((_, record)) = self.backend.open(session, Some(name), self.now()).await? else {
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

    async fn records(&self, session: &str) -> Result<Vec<TableRecord>> {
        self.backend
            .list_tables(session, self.now())
            .await?
            .ok_or_else(|| StoreError::SessionNotFound { id: session.into() })
    }

    async fn table_names(&self, session: &str) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .records(session)
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
        for record in self.records(session).await? {
            let state = parse_state(&record)?;
            out.push(table_info(record.name, &state));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The tables of a session that remember one of `op_ids` among their
    /// recent operations, by that id (how a retried load finds what its first
    /// attempt created).
    pub async fn tables_with_ops(
        &self,
        session: &str,
        op_ids: &[String],
    ) -> Result<HashMap<String, TableInfo>> {
        let mut out = HashMap::new();
        for record in self.records(session).await? {
            let state = parse_state(&record)?;
            if let Some(op) = op_ids.iter().find(|op| versioning::knows(&state, op)) {
                out.insert(op.clone(), table_info(record.name, &state));
            }
        }
        Ok(out)
    }

    /// The state document of a table (its head, stacks and metadata), without
    /// loading data.
    pub async fn table_state(&self, session: &str, name: &str) -> Result<(u64, TableState)> {
        let (record, state) = self.open_table(session, name).await?;
        Ok((record.rev, state))
    }

    /// The columns of a table's head, as (name, dtype), from its manifest:
    /// no column data is read.
    pub async fn columns(&self, session: &str, name: &str) -> Result<Vec<(String, String)>> {
        let (_, state) = self.open_table(session, name).await?;
        let manifest = self.manifest(session, &state.head.manifest).await?;
        Ok(manifest
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.dtype.clone()))
            .collect())
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
                        column_ids: cached.column_ids.clone(),
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

    /// A table's history: the committed versions the log still holds with
    /// where each stands, and the undo/redo/rename events.
    pub async fn history(&self, session: &str, name: &str) -> Result<History> {
        let (_, state) = self.open_table(session, name).await?;
        let records = self.log(session, &state.uid, self.config.log_limit).await?;
        let trimmed = records
            .iter()
            .find(|r| r.kind == EventKind::Commit)
            .is_none_or(|first| first.from_version.is_some());
        let (versions, events) = history::classify(&state, records);
        Ok(History {
            table: state.name.clone(),
            current_version: state.head.version,
            undo_depth: state.undo.len(),
            redo_depth: state.redo.len(),
            versions,
            events,
            trimmed,
        })
    }

    async fn log(&self, session: &str, uid: &str, limit: usize) -> Result<Vec<LogRecord>> {
        self.backend
            .read_log(session, uid, limit, self.now())
            .await?
            .iter()
            .map(|bytes| {
                serde_json::from_slice(bytes)
                    .map_err(|e| StoreError::Corrupt(format!("a log record is unreadable: {e}")))
            })
            .collect()
    }

    /// The log record of the operation `op_id` on a table, if the log still
    /// holds it.
    pub async fn find_op(
        &self,
        session: &str,
        state: &TableState,
        op_id: &str,
    ) -> Result<Option<LogRecord>> {
        Ok(self
            .log(session, &state.uid, OP_SEARCH)
            .await?
            .into_iter()
            .rev()
            .find(|r| r.op_id.as_deref() == Some(op_id)))
    }

    /// The newest log record of a table: what last moved its head.
    async fn last_event(&self, session: &str, uid: &str) -> Option<Box<LogRecord>> {
        self.log(session, uid, 1)
            .await
            .ok()
            .and_then(|mut records| records.pop())
            .map(Box::new)
    }

    /// `Err(VersionMismatch)` when the caller expects another version.
    async fn check_expected(
        &self,
        session: &str,
        state: &TableState,
        intent: &Intent,
    ) -> Result<()> {
        match intent.expected_version {
            Some(expected) if expected != state.head.version => {
                Err(self.mismatch(session, state, expected).await)
            }
            _ => Ok(()),
        }
    }

    async fn mismatch(&self, session: &str, state: &TableState, expected: u64) -> StoreError {
        StoreError::VersionMismatch {
            name: state.name.clone(),
            expected,
            current: Box::new(state.head.clone()),
            last_event: self.last_event(session, &state.uid).await,
        }
    }

    // ----- tables: writing ------------------------------------------------

    /// Creates a table whose first version is `edit`. A retry of the same
    /// intent (same operation id) that finds the table it created succeeds
    /// without creating another.
    pub async fn create_table(
        &self,
        session: &str,
        name: &str,
        edit: Edit,
        intent: &Intent,
    ) -> Result<Committed> {
        validate_table_name(name)?;
        self.session(session).await?;
        let now = self.now();
        let (manifest_id, stats) = self.write_version(session, name, &edit, None, now).await?;
        let head = VersionRef {
            version: 1,
            manifest: manifest_id,
            rows: edit.df.height() as u64,
            cols: self.width(&edit.df),
            action: edit.op.action.clone(),
            summary: edit.op.summary.clone(),
            at_ms: now,
            actor: intent.actor.clone(),
        };
        let rev = self
            .publish_new_table(session, name, &head, &edit.op, intent)
            .await?;
        self.frames.insert(
            session,
            &head.manifest,
            Arc::new(CachedTable::new(edit.df, edit.meta, stats.parts)),
        );
        Ok(Committed {
            version: 1,
            rev,
            rows: head.rows,
            cols: head.cols,
            parts_written: stats.written,
            parts_reused: stats.reused,
            bytes_written: stats.bytes_written,
        })
    }

    /// Publishes the first version of a new table (its blobs already stored):
    /// a compare-and-set that requires the name to be free. Returns the
    /// table's revision.
    async fn publish_new_table(
        &self,
        session: &str,
        name: &str,
        head: &VersionRef,
        op: &OpRecord,
        intent: &Intent,
    ) -> Result<u64> {
        let mut state = TableState {
            format: FORMAT_VERSION,
            uid: new_uid(),
            name: name.into(),
            created_ms: head.at_ms,
            next_version: 2,
            head: head.clone(),
            undo: vec![],
            redo: vec![],
            retired: vec![],
            recent_ops: Default::default(),
        };
        versioning::remember(&mut state, &intent.op_id);
        let record = commit_record(head, None, Some(&intent.op_id), op, None);
        let rev = first_rev();
        let request = CasRequest {
            changes: vec![TableChange {
                name: name.into(),
                expected_rev: None,
                new: Some((rev, encode_state(&state)?)),
            }],
            log: vec![self.log_append(&state, &record)],
            drop_logs: vec![],
        };
        let landed = Landed::OpRecorded {
            name,
            op_id: &intent.op_id,
        };
        match self.publish(session, &request, landed).await? {
            Published::Applied => Ok(rev),
            Published::AlreadyLanded { record } => Ok(record.map_or(rev, |r| r.rev)),
            Published::Conflict { .. } => Err(StoreError::TableExists {
                session: session.into(),
                name: name.into(),
            }),
        }
    }

    /// Commits `edit` as the new head of the table `base` was loaded from,
    /// if nobody moved the head since (else [`StoreError::Conflict`]).
    ///
    /// The intent's operation id makes the commit idempotent: a retry of a
    /// commit that did apply (say, after a timeout) reports
    /// [`CommitOutcome::AlreadyApplied`] without applying twice. An edit
    /// identical to the base version makes no version
    /// ([`CommitOutcome::Unchanged`]).
    pub async fn commit(
        &self,
        base: &Loaded,
        edit: Edit,
        intent: &Intent,
    ) -> Result<CommitOutcome> {
        let session = base.session.as_str();
        let now = self.now();
        let (manifest_id, stats) = self
            .write_version(
                session,
                &base.name,
                &edit,
                Some(&base.state.head.manifest),
                now,
            )
            .await?;
        if manifest_id == base.state.head.manifest {
            return Ok(CommitOutcome::Unchanged {
                version: base.state.head.version,
            });
        }
        let head = VersionRef {
            version: 0, // assigned by versioning::commit
            manifest: manifest_id,
            rows: edit.df.height() as u64,
            cols: self.width(&edit.df),
            action: edit.op.action.clone(),
            summary: edit.op.summary.clone(),
            at_ms: now,
            actor: intent.actor.clone(),
        };
        let next = versioning::commit(
            &base.state,
            head,
            Some(&intent.op_id),
            self.config.history_limit,
            now,
            self.grace_ms(),
        );
        let retired_any = !versioning::newly_retired(&base.state, &next).is_empty();
        let mut record = commit_record(
            &next.head,
            Some(&base.state.head),
            Some(&intent.op_id),
            &edit.op,
            Some(base.state.head.version),
        );
        record.actor = intent.actor.clone();
        let new_rev = base.rev + 1;
        let request = CasRequest {
            changes: vec![TableChange {
                name: base.name.clone(),
                expected_rev: Some(base.rev),
                new: Some((new_rev, encode_state(&next)?)),
            }],
            log: vec![self.log_append(&next, &record)],
            drop_logs: vec![],
        };
        let landed = Landed::OpRecorded {
            name: &base.name,
            op_id: &intent.op_id,
        };
        match self.publish(session, &request, landed).await? {
            Published::Applied => {
                // The frame we were handed is exactly what the new head
                // holds: keep it, so the next operation starts warm and
                // recognises its untouched columns.
                self.frames.insert(
                    session,
                    &next.head.manifest,
                    Arc::new(CachedTable::new(edit.df, edit.meta, stats.parts)),
                );
                if retired_any {
                    self.schedule_gc(session);
                }
                Ok(CommitOutcome::Committed(Committed {
                    version: next.head.version,
                    rev: new_rev,
                    rows: next.head.rows,
                    cols: next.head.cols,
                    parts_written: stats.written,
                    parts_reused: stats.reused,
                    bytes_written: stats.bytes_written,
                }))
            }
            Published::AlreadyLanded { record } => {
                self.already_applied(session, record, &intent.op_id).await
            }
            Published::Conflict { name, current } => Err(conflict(&name, base.rev, current)),
        }
    }

    async fn already_applied(
        &self,
        session: &str,
        record: Option<TableRecord>,
        op_id: &str,
    ) -> Result<CommitOutcome> {
        let Some(record) = record else {
            return Err(StoreError::Internal("a landed commit left no table".into()));
        };
        let state = parse_state(&record)?;
        Ok(CommitOutcome::AlreadyApplied {
            version: state.head.version,
            record: self.find_op(session, &state, op_id).await?.map(Box::new),
        })
    }

    /// Load, apply, commit; when another writer wins the compare-and-set,
    /// load again and apply again (with growing, jittered back-off, until the
    /// write deadline). Writers to one table in this process take turns, so
    /// they never race each other. `apply` runs on the compute pool.
    ///
    /// With an expected version in the intent, a table at another version is
    /// [`StoreError::VersionMismatch`] and nothing is applied.
    pub async fn update<T, E, F>(
        &self,
        session: &str,
        name: &str,
        intent: &Intent,
        apply: F,
    ) -> std::result::Result<Updated<T>, UpdateError<E>>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: Fn(&Loaded) -> std::result::Result<(Edit, T), E> + Send + Sync + 'static,
    {
        let _turn = self.writers.turn(session, name).await;
        let apply = Arc::new(apply);
        let deadline = tokio::time::Instant::now() + self.config.write_deadline;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let loaded = Arc::new(self.load(session, name).await?);
            if versioning::knows(&loaded.state, &intent.op_id) {
                return Ok(Updated::AlreadyApplied {
                    version: loaded.state.head.version,
                    record: self
                        .find_op(session, &loaded.state, &intent.op_id)
                        .await?
                        .map(Box::new),
                });
            }
            self.check_expected(session, &loaded.state, intent).await?;
            let job = {
                let apply = apply.clone();
                let loaded = loaded.clone();
                move |_: &Cancel| apply(&loaded)
            };
            let (edit, output) = self
                .compute(session, job)
                .await?
                .map_err(UpdateError::Apply)?;
            match self.commit(&loaded, edit, intent).await {
                Ok(CommitOutcome::Committed(committed)) => {
                    return Ok(Updated::Applied { committed, output });
                }
                Ok(CommitOutcome::Unchanged { version }) => {
                    return Ok(Updated::Unchanged { version, output });
                }
                Ok(CommitOutcome::AlreadyApplied { version, record }) => {
                    return Ok(Updated::AlreadyApplied { version, record });
                }
                // With an expected version, the next load reports the
                // mismatch; without, apply again to the new head.
                Err(StoreError::Conflict { .. })
                    if attempt < UPDATE_ATTEMPTS && tokio::time::Instant::now() < deadline =>
                {
                    if intent.expected_version.is_none() {
                        tokio::time::sleep(backoff(attempt)).await;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Moves the head back by up to `steps` versions, in one compare-and-set.
    pub async fn undo(
        &self,
        session: &str,
        name: &str,
        steps: usize,
        intent: &Intent,
    ) -> Result<Moved> {
        self.step(session, name, EventKind::Undo, steps, intent)
            .await
    }

    /// Moves the head forward again by up to `steps` undone versions.
    pub async fn redo(
        &self,
        session: &str,
        name: &str,
        steps: usize,
        intent: &Intent,
    ) -> Result<Moved> {
        self.step(session, name, EventKind::Redo, steps, intent)
            .await
    }

    async fn step(
        &self,
        session: &str,
        name: &str,
        kind: EventKind,
        steps: usize,
        intent: &Intent,
    ) -> Result<Moved> {
        let _turn = self.writers.turn(session, name).await;
        let (record, state) = self.open_table(session, name).await?;
        if versioning::knows(&state, &intent.op_id) {
            return Ok(Moved {
                from: state.head.clone(),
                to: state.head.clone(),
                steps: vec![],
                rev: record.rev,
                undo_depth: state.undo.len(),
                redo_depth: state.redo.len(),
                already_applied: true,
            });
        }
        self.check_expected(session, &state, intent).await?;
        let now = self.now();
        let (limit, grace) = (self.config.history_limit, self.grace_ms());
        let stepped = match kind {
            EventKind::Undo => versioning::undo(&state, steps.max(1), limit, now, grace),
            _ => versioning::redo(&state, steps.max(1), limit, now, grace),
        };
        let Some((mut next, moved)) = stepped else {
            return Err(nothing_to(kind, &state, self.config.history_limit));
        };
        versioning::remember(&mut next, &intent.op_id);
        let summaries: Vec<&str> = moved.iter().map(|v| v.summary.as_str()).collect();
        let log_rec = LogRecord {
            kind,
            version: next.head.version,
            from_version: Some(state.head.version),
            at_ms: now,
            op_id: Some(intent.op_id.clone()),
            action: match kind {
                EventKind::Undo => "undo".into(),
                _ => "redo".into(),
            },
            params: serde_json::json!({ "steps": moved.len() }),
            summary: match kind {
                EventKind::Undo => format!("Undid: {}", summaries.join("; ")),
                _ => format!("Redid: {}", summaries.join("; ")),
            },
            rows_before: Some(state.head.rows),
            cols_before: Some(state.head.cols),
            rows_after: next.head.rows,
            cols_after: next.head.cols,
            actor: intent.actor.clone(),
        };
        let request = CasRequest {
            changes: vec![TableChange {
                name: name.into(),
                expected_rev: Some(record.rev),
                new: Some((record.rev + 1, encode_state(&next)?)),
            }],
            log: vec![self.log_append(&next, &log_rec)],
            drop_logs: vec![],
        };
        let landed = Landed::OpRecorded {
            name,
            op_id: &intent.op_id,
        };
        match self.publish(session, &request, landed).await? {
            Published::Applied => {
                if !versioning::newly_retired(&state, &next).is_empty() {
                    self.schedule_gc(session);
                }
                Ok(Moved {
                    from: state.head,
                    rev: record.rev + 1,
                    undo_depth: next.undo.len(),
                    redo_depth: next.redo.len(),
                    to: next.head,
                    steps: moved,
                    already_applied: false,
                })
            }
            Published::AlreadyLanded { record } => {
                let Some(record) = record else {
                    return Err(StoreError::Internal("a landed move left no table".into()));
                };
                let current = parse_state(&record)?;
                Ok(Moved {
                    from: state.head,
                    to: current.head.clone(),
                    steps: moved,
                    rev: record.rev,
                    undo_depth: current.undo.len(),
                    redo_depth: current.redo.len(),
                    already_applied: true,
                })
            }
            // Someone moved the head between our read and our write: undoing
            // now would take back their change, not the one asked for.
            Published::Conflict { .. } => {
                let (_, current) = self.open_table(session, name).await?;
                Err(self.mismatch(session, &current, state.head.version).await)
            }
        }
    }

    /// Renames a table; its history and undo stack go with it.
    pub async fn rename_table(
        &self,
        session: &str,
        from: &str,
        to: &str,
        intent: &Intent,
    ) -> Result<()> {
        validate_table_name(to)?;
        let _turn = self.writers.turn(session, from).await;
        for attempt in 1..=HEAD_MOVE_ATTEMPTS {
            let (record, mut state) = match self.open_table(session, from).await {
                Ok(found) => found,
                // A retry of a rename that landed finds the table under its
                // new name.
                Err(e @ StoreError::TableNotFound { .. }) => {
                    return match self.open_table(session, to).await {
                        Ok((_, state)) if versioning::knows(&state, &intent.op_id) => Ok(()),
                        _ => Err(e),
                    };
                }
                Err(e) => return Err(e),
            };
            self.check_expected(session, &state, intent).await?;
            if from == to {
                return Ok(());
            }
            let now = self.now();
            state.name = to.into();
            versioning::remember(&mut state, &intent.op_id);
            let rec = LogRecord {
                kind: EventKind::Rename,
                version: state.head.version,
                from_version: Some(state.head.version),
                at_ms: now,
                op_id: Some(intent.op_id.clone()),
                action: "rename_table".into(),
                params: serde_json::json!({ "from": from, "to": to }),
                summary: format!("Renamed table '{from}' to '{to}'"),
                rows_before: Some(state.head.rows),
                cols_before: Some(state.head.cols),
                rows_after: state.head.rows,
                cols_after: state.head.cols,
                actor: intent.actor.clone(),
            };
            let request = CasRequest {
                changes: vec![
                    TableChange {
                        name: from.into(),
                        expected_rev: Some(record.rev),
                        new: None,
                    },
                    TableChange {
                        name: to.into(),
                        expected_rev: None,
                        new: Some((record.rev + 1, encode_state(&state)?)),
                    },
                ],
                log: vec![self.log_append(&state, &rec)],
                drop_logs: vec![],
            };
            let landed = Landed::OpRecorded {
                name: to,
                op_id: &intent.op_id,
            };
            match self.publish(session, &request, landed).await? {
                Published::Applied | Published::AlreadyLanded { .. } => return Ok(()),
                Published::Conflict { name, .. } if name == to => {
                    return Err(StoreError::TableExists {
                        session: session.into(),
                        name: to.into(),
                    });
                }
                // The table changed in between: rename what is there now.
                Published::Conflict { .. } => tokio::time::sleep(backoff(attempt)).await,
            }
        }
        let (record, _) = self.open_table(session, from).await?;
        Err(conflict(from, record.rev, Some(record.rev)))
    }

    /// Drops a table with its history. Its data is collected after the grace
    /// period.
    pub async fn drop_table(&self, session: &str, name: &str, intent: &Intent) -> Result<()> {
        let _turn = self.writers.turn(session, name).await;
        for attempt in 1..=HEAD_MOVE_ATTEMPTS {
            let (record, state) = self.open_table(session, name).await?;
            self.check_expected(session, &state, intent).await?;
            let request = CasRequest {
                changes: vec![TableChange {
                    name: name.into(),
                    expected_rev: Some(record.rev),
                    new: None,
                }],
                log: vec![],
                drop_logs: vec![state.uid.clone()],
            };
            match self
                .publish(session, &request, Landed::Gone { name })
                .await?
            {
                Published::Applied | Published::AlreadyLanded { .. } => {
                    self.schedule_gc(session);
                    return Ok(());
                }
                // Changed in between: drop what is there now (unless the
                // caller pinned a version, which the next read checks).
                Published::Conflict { .. } => tokio::time::sleep(backoff(attempt)).await,
            }
        }
        let (record, _) = self.open_table(session, name).await?;
        Err(conflict(name, record.rev, Some(record.rev)))
    }

    /// Copies a table's current version into another (or the same) session
    /// under a new name, without decoding it. The copy starts a new history.
    pub async fn copy_table(
        &self,
        from_session: &str,
        from_name: &str,
        to_session: &str,
        to_name: &str,
        intent: &Intent,
    ) -> Result<Committed> {
        validate_table_name(to_name)?;
        let (_, src) = self.open_table(from_session, from_name).await?;
        self.session(to_session).await?;
        let manifest = self.manifest(from_session, &src.head.manifest).await?;
        let mut ids: Vec<(String, u64)> = manifest
            .columns
            .iter()
            .flat_map(|c| &c.parts)
            .map(|p| (p.id.clone(), p.bytes))
            .collect();
        // The manifest's own size is bounded by the request limit: count it
        // as that much, so it travels alone.
        ids.push((src.head.manifest.clone(), self.payload_limit().unwrap_or(0)));
        let now = self.now();
        let names: Vec<String> = ids.iter().map(|(id, _)| id.clone()).collect();
        let present = self.backend.touch_blobs(to_session, &names, now).await?;
        let missing: Vec<(String, u64)> = ids
            .into_iter()
            .zip(&present)
            .filter(|(_, present)| !**present)
            .map(|(id, _)| id)
            .collect();
        let total = names.len();
        let (written, bytes_written) = self
            .copy_blobs(from_session, to_session, missing, now)
            .await?;
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
            actor: intent.actor.clone(),
        };
        let rev = self
            .publish_new_table(to_session, to_name, &head, &op, intent)
            .await?;
        Ok(Committed {
            version: 1,
            rev,
            rows: head.rows,
            cols: head.cols,
            parts_written: written,
            parts_reused: total - written,
            bytes_written,
        })
    }

    // ----- space ----------------------------------------------------------

    /// Blobs and bytes a session keeps in the backend.
    pub async fn usage(&self, session: &str) -> Result<Usage> {
        let blobs = self.backend.list_blobs(session, self.now()).await?;
        Ok(Usage {
            blobs: blobs.len(),
            bytes: blobs.iter().map(|b| b.size).sum(),
        })
    }

    fn log_append(&self, state: &TableState, record: &LogRecord) -> LogAppend {
        LogAppend {
            table_uid: state.uid.clone(),
            // A LogRecord has only plain fields: serializing it cannot fail.
            record: Bytes::from(serde_json::to_vec(record).unwrap_or_default()),
            keep: self.config.log_limit.max(1),
        }
    }
}

/// Writers to one table inside this process take turns: racing each other
/// would only make all but one of them redo their work.
#[derive(Default)]
struct TableLocks {
    map: Mutex<HashMap<TableKey, Weak<tokio::sync::Mutex<()>>>>,
}

/// (session, table name)
type TableKey = (String, String);

impl TableLocks {
    async fn turn(&self, session: &str, table: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() > 1024 {
                map.retain(|_, weak| weak.strong_count() > 0);
            }
            let key = (session.to_string(), table.to_string());
            match map.get(&key).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    map.insert(key, Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

/// The revision of a new table: random, not 1, so that a writer that read a
/// table which was since dropped (or whose session was deleted) and created
/// again under the same name can never match the new table's revision and
/// publish over it.
fn first_rev() -> u64 {
    (uuid::Uuid::new_v4().as_u128() as u64 >> 12) | 1 << 40
}

/// Full jitter: a random wait up to an exponentially growing cap, so that
/// writers that collided do not collide again in step.
fn backoff(attempt: u32) -> Duration {
    let cap_ms = (10u64 << attempt.min(7)).min(1000);
    let random = (uuid::Uuid::new_v4().as_u128() % u128::from(cap_ms + 1)) as u64;
    Duration::from_millis(random.max(1))
}

fn table_info(name: String, state: &TableState) -> TableInfo {
    TableInfo {
        name,
        version: state.head.version,
        rows: state.head.rows,
        cols: state.head.cols,
        undo_depth: state.undo.len(),
        redo_depth: state.redo.len(),
        last_action: state.head.action.clone(),
        last_summary: state.head.summary.clone(),
        updated_ms: state.head.at_ms,
    }
}

fn nothing_to(kind: EventKind, state: &TableState, history_limit: usize) -> StoreError {
    let name = state.name.clone();
    match kind {
        EventKind::Undo if state.head.version == 1 => StoreError::NothingTo {
            what: "undo",
            name,
            why: "the table is at its first version".into(),
        },
        EventKind::Undo => StoreError::NothingTo {
            what: "undo",
            name,
            why: format!("older versions are beyond the history limit of {history_limit} steps"),
        },
        _ => StoreError::NothingTo {
            what: "redo",
            name,
            why: "no undone operation is waiting (a new change after an undo discards the redo steps)"
                .into(),
        },
    }
}

pub(crate) fn parse_state(record: &TableRecord) -> Result<TableState> {
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
        actor: head.actor.clone(),
    }
}

fn conflict(name: &str, expected: u64, current: Option<u64>) -> StoreError {
    StoreError::Conflict {
        name: name.into(),
        expected,
        found: current.map_or(Revision::Absent, Revision::At),
    }
}
