//! The backend trait: the few primitive operations every storage backend
//! implements. Versioning, undo/redo, TTL policy, garbage collection and
//! caching are written once on top of it, in [`crate::Store`].
//!
//! Every method documents its contract under `# Behavior`; the behaviour
//! suite (`tests/integration/behaviour.rs`) pins each sentence there on every
//! backend. Times are passed in (`now_ms`), never read from the system clock,
//! so the store's clock decides what "expired" means.

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use polars::prelude::Series;

use crate::error::Result;

pub mod memory;
pub mod redis;
pub mod sqlite;

/// What a backend can do beyond the primitives. Optional abilities are data,
/// never a method that panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Blobs may be polars [`Series`] kept as they are ([`Blob::Frame`]); the
    /// store then skips Parquet encoding for column data.
    pub native_frames: bool,
    /// Largest request (and reply) the backend accepts, in bytes. The store
    /// sizes column parts and batches every put and get below it.
    pub max_request_bytes: Option<u64>,
}

/// A session's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionMeta {
    pub id: String,
    pub created_ms: i64,
    pub last_access_ms: i64,
    /// Idle time after which the session expires.
    pub ttl_ms: i64,
}

impl SessionMeta {
    pub fn expires_ms(&self) -> i64 {
        self.last_access_ms.saturating_add(self.ttl_ms)
    }

    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires_ms() <= now_ms
    }

    /// Whether an access at `now_ms` should move `last_access_ms` forward.
    ///
    /// Refreshing on every read would make every read a write (an fsync on the
    /// embedded store); refreshing once per 1/100 of the TTL (at least every
    /// 60 s) shortens an idle session's life by at most that much.
    pub fn refresh_due(&self, now_ms: i64) -> bool {
        now_ms - self.last_access_ms >= refresh_interval_ms(self.ttl_ms)
    }
}

/// The namespace of a session id: the part before its first '.', or "".
pub fn namespace_of(id: &str) -> &str {
    id.split_once('.').map_or("", |(ns, _)| ns)
}

/// How stale `last_access_ms` may get before an access refreshes it.
pub fn refresh_interval_ms(ttl_ms: i64) -> i64 {
    (ttl_ms / 100).clamp(0, 60_000)
}

/// A token bucket's answer: go ahead, or wait this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    Allowed,
    RetryAfterMs(i64),
}

/// Token buckets kept in this process (for backends that are not shared).
#[derive(Debug, Default)]
pub struct LocalBuckets {
    buckets: std::sync::Mutex<std::collections::HashMap<String, (f64, i64)>>,
}

impl LocalBuckets {
    pub fn take(&self, bucket: &str, per_second: f64, burst: f64, now_ms: i64) -> Throttle {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (_, at)| now_ms - *at < 3_600_000);
        }
        let (tokens, at) = map.entry(bucket.to_string()).or_insert((burst, now_ms));
        take_token(tokens, at, per_second, burst, now_ms)
    }
}

/// The token bucket arithmetic every backend shares: refill by elapsed
/// time (capped at `burst`), then take one token if there is one.
pub fn take_token(
    tokens: &mut f64,
    at: &mut i64,
    per_second: f64,
    burst: f64,
    now_ms: i64,
) -> Throttle {
    let elapsed = (now_ms - *at).max(0) as f64 / 1000.0;
    *tokens = (*tokens + elapsed * per_second).min(burst);
    *at = now_ms;
    if *tokens >= 1.0 {
        *tokens -= 1.0;
        Throttle::Allowed
    } else {
        let wait = ((1.0 - *tokens) / per_second.max(1e-9) * 1000.0).ceil() as i64;
        Throttle::RetryAfterMs(wait.max(1))
    }
}

/// One table's head record: a revision and an opaque state document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRecord {
    pub name: String,
    /// Moves by one on every successful compare-and-set of this table.
    pub rev: u64,
    pub doc: Bytes,
}

/// One change of an atomic multi-table compare-and-set.
#[derive(Debug, Clone)]
pub struct TableChange {
    pub name: String,
    /// `None`: the table must not exist yet.
    pub expected_rev: Option<u64>,
    /// `None`: delete the table; otherwise its new revision and document.
    pub new: Option<(u64, Bytes)>,
}

/// A record appended to a table's operation log, atomically with a
/// compare-and-set.
#[derive(Debug, Clone)]
pub struct LogAppend {
    /// The stable id of the table (names change on rename, uids do not).
    pub table_uid: String,
    pub record: Bytes,
    /// After appending, keep only this many newest records of the table's log.
    pub keep: usize,
}

/// Everything one [`Backend::cas_tables`] call writes, all or nothing.
#[derive(Debug, Clone, Default)]
pub struct CasRequest {
    pub changes: Vec<TableChange>,
    pub log: Vec<LogAppend>,
    /// Table uids whose whole log is deleted (dropped tables).
    pub drop_logs: Vec<String>,
}

/// Outcome of [`Backend::cas_tables`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasOutcome {
    Applied,
    /// Nothing was written: `name` is at `current` (`None`: absent), not at
    /// the expected revision.
    Conflict {
        name: String,
        current: Option<u64>,
    },
    /// Nothing was written: the session is gone.
    SessionGone,
}

/// Immutable content: encoded bytes (Parquet chunks, JSON manifests), or a
/// column kept as a polars [`Series`] by backends with `native_frames`.
#[derive(Clone)]
pub enum Blob {
    Bytes(Bytes),
    Frame(Series),
}

impl Blob {
    /// Bytes this blob occupies in the backend (estimated for frames).
    pub fn size(&self) -> u64 {
        match self {
            Blob::Bytes(b) => b.len() as u64,
            Blob::Frame(s) => dfmcp_memory::series_bytes(s) as u64,
        }
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Blob::Bytes(b) => write!(f, "Blob::Bytes({} bytes)", b.len()),
            Blob::Frame(s) => write!(f, "Blob::Frame({} rows of {})", s.len(), s.dtype()),
        }
    }
}

/// A stored blob as [`Backend::list_blobs`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub id: String,
    pub size: u64,
    /// Last time the blob was written or touched.
    pub touched_ms: i64,
}

/// The primitive operations of a storage backend.
///
/// All methods but the session listing are scoped to one session; on Redis
/// every key of a session shares one hash tag so that atomic scripts work on
/// a cluster. A session is *live* at `now_ms` while `last_access_ms + ttl_ms >
/// now_ms`; an expired session behaves exactly like a missing one.
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug + 'static {
    /// Short name for messages ("memory", "sqlite", "redis").
    fn name(&self) -> &'static str;

    fn capabilities(&self) -> Capabilities;

    /// Creates a session.
    ///
    /// # Behavior
    /// - Returns `true` and stores `meta` when no live session has this id.
    /// - Returns `false` and changes nothing when a live session with this id
    ///   exists.
    /// - An expired session with this id is replaced: none of its tables, logs
    ///   or blobs are visible in the new one.
    async fn create_session(&self, meta: &SessionMeta) -> Result<bool>;

    /// Opens a session and, when `table` is named, reads that table's record.
    ///
    /// # Behavior
    /// - Returns `None` for a missing or expired session.
    /// - Refreshes `last_access_ms` to `now_ms` at least when
    ///   [`SessionMeta::refresh_due`]; the returned metadata shows the
    ///   refreshed time when it did.
    /// - The record is `None` when the table does not exist.
    async fn open(
        &self,
        session: &str,
        table: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<(SessionMeta, Option<TableRecord>)>>;

    /// Live sessions of one namespace, at most `limit` of them (in no
    /// particular order).
    ///
    /// # Behavior
    /// - A session id's namespace is the part before its first '.'
    ///   ([`namespace_of`]); ids without a '.' are in the namespace "".
    /// - Expired sessions are never listed.
    async fn list_sessions(
        &self,
        namespace: &str,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<SessionMeta>>;

    /// Deletes a session with all its tables, logs and blobs.
    ///
    /// # Behavior
    /// - Returns whether a live session existed.
    /// - Deleting a missing session succeeds and returns `false`.
    /// - A session created again under the same id afterwards starts empty,
    ///   and nothing the deletion does later can remove its data.
    async fn delete_session(&self, session: &str, now_ms: i64) -> Result<bool>;

    /// Removes sessions whose expiry passed and returns their ids.
    ///
    /// # Behavior
    /// - Live sessions are untouched.
    /// - Backends that expire sessions by themselves (Redis) return an empty
    ///   list.
    async fn purge_expired(&self, now_ms: i64) -> Result<Vec<String>>;

    /// All table records of a session (no expiry refresh).
    ///
    /// # Behavior
    /// - Returns `None` for a missing or expired session.
    async fn list_tables(&self, session: &str, now_ms: i64) -> Result<Option<Vec<TableRecord>>>;

    /// Atomically checks every change's expected revision and, only if all
    /// match, applies them all, appends the log records (trimming each log to
    /// its `keep`) and deletes the dropped logs.
    ///
    /// # Behavior
    /// - On a revision mismatch nothing is written and the first mismatching
    ///   table is reported with its current revision.
    /// - A missing or expired session gives [`CasOutcome::SessionGone`] and
    ///   writes nothing.
    /// - An applied change refreshes the session's expiry to `now_ms`.
    async fn cas_tables(
        &self,
        session: &str,
        request: &CasRequest,
        now_ms: i64,
    ) -> Result<CasOutcome>;

    /// The newest `limit` log records of one table, oldest first.
    ///
    /// # Behavior
    /// - A table without records, or a missing session, gives an empty list.
    async fn read_log(
        &self,
        session: &str,
        table_uid: &str,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<Bytes>>;

    /// Stores blobs under their ids with `touched = now_ms`.
    ///
    /// # Behavior
    /// - Every blob of the call is stored under its own id, however many
    ///   there are (a backend may write them concurrently); an id given
    ///   twice is stored once.
    /// - Idempotent: ids are content addresses (or unique), so a blob stored
    ///   twice is the same blob; storing it again refreshes its touch time.
    /// - A blob is durable when this returns.
    /// - A missing or expired session is an error
    ///   ([`crate::StoreError::SessionNotFound`]) and stores nothing.
    async fn put_blobs(&self, session: &str, blobs: Vec<(String, Blob)>, now_ms: i64)
    -> Result<()>;

    /// Marks blobs as used now, so garbage collection keeps them for at least
    /// one grace period.
    ///
    /// # Behavior
    /// - Returns, per id in order, whether the blob exists.
    /// - In a missing session every id reports `false`.
    async fn touch_blobs(&self, session: &str, ids: &[String], now_ms: i64) -> Result<Vec<bool>>;

    /// Reads blobs.
    ///
    /// # Behavior
    /// - Returns one entry per id, in order: `None` for an id not stored.
    /// - In a missing session every entry is `None`.
    async fn get_blobs(
        &self,
        session: &str,
        ids: &[String],
        now_ms: i64,
    ) -> Result<Vec<Option<Blob>>>;

    /// Every blob of a session with its size and last touch.
    ///
    /// # Behavior
    /// - A missing session has none.
    async fn list_blobs(&self, session: &str, now_ms: i64) -> Result<Vec<BlobInfo>>;

    /// Takes one token from the bucket `bucket` (refilled at `per_second`,
    /// holding at most `burst`), for rate limits.
    ///
    /// # Behavior
    /// - A new bucket starts full.
    /// - When empty, answers how long until a token is there, and takes
    ///   nothing.
    /// - Shared backends (Redis) keep buckets in the backend, so every process
    ///   sees the same bucket; the others keep them in the process.
    async fn take_token(
        &self,
        bucket: &str,
        per_second: f64,
        burst: f64,
        now_ms: i64,
    ) -> Result<Throttle>;

    /// Deletes those of `ids` whose last touch is before `untouched_before_ms`,
    /// checked atomically against concurrent touches. Returns bytes freed.
    ///
    /// # Behavior
    /// - A blob touched at or after `untouched_before_ms` is kept.
    /// - Missing ids, and a missing session, are skipped.
    async fn delete_blobs(
        &self,
        session: &str,
        ids: &[String],
        untouched_before_ms: i64,
    ) -> Result<u64>;
}
