//! The backend trait: the few primitive operations every storage backend
//! implements. Versioning, undo/redo, TTL, garbage collection and caching are
//! written once on top of it, in [`crate::Store`].

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
    /// Several processes can share the state (so caches must be validated
    /// against the backend on every access).
    pub shared: bool,
    /// The backend expires idle sessions by itself; `purge_expired` is then a
    /// no-op.
    pub native_ttl: bool,
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
            Blob::Frame(s) => s.estimated_size() as u64,
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
/// All methods are scoped to a session; on Redis every key of a session shares
/// one hash tag so that atomic scripts work on a cluster.
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug + 'static {
    /// Short name for messages ("memory", "sqlite", "redis").
    fn name(&self) -> &'static str;

    fn capabilities(&self) -> Capabilities;

    /// Creates a session.
    ///
    /// # Behavior
    /// Returns `false` and changes nothing when a live session with this id
    /// exists. An expired one is replaced.
    async fn create_session(&self, meta: &SessionMeta) -> Result<bool>;

    /// Opens a session: refreshes its idle expiry to `now_ms` and returns its
    /// metadata, plus the record of `table` when one is named and exists.
    ///
    /// # Behavior
    /// Returns `None` for a missing or expired session (the two are the same
    /// to callers).
    async fn open(
        &self,
        session: &str,
        table: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<(SessionMeta, Option<TableRecord>)>>;

    /// Live sessions.
    async fn list_sessions(&self, now_ms: i64) -> Result<Vec<SessionMeta>>;

    /// Deletes a session with all its tables, logs and blobs.
    ///
    /// # Behavior
    /// Returns whether it existed; deleting a missing session succeeds.
    async fn delete_session(&self, session: &str) -> Result<bool>;

    /// Removes sessions whose expiry passed and returns their ids.
    ///
    /// # Behavior
    /// Backends with `native_ttl` may return an empty list.
    async fn purge_expired(&self, now_ms: i64) -> Result<Vec<String>>;

    /// All table records of a session (no expiry refresh).
    async fn list_tables(&self, session: &str) -> Result<Vec<TableRecord>>;

    /// Atomically checks every change's expected revision and, only if all
    /// match, applies them all and appends `log`.
    ///
    /// # Behavior
    /// Also refreshes the session's expiry. On any mismatch nothing is
    /// written and the first mismatching table is reported.
    async fn cas_tables(
        &self,
        session: &str,
        changes: &[TableChange],
        log: &[LogAppend],
        now_ms: i64,
    ) -> Result<CasOutcome>;

    /// Every log record of one table, oldest first.
    async fn read_log(&self, session: &str, table_uid: &str) -> Result<Vec<Bytes>>;

    /// Stores blobs under their ids with `touched = now_ms`.
    ///
    /// # Behavior
    /// Idempotent: ids are content addresses (or unique), so a blob stored
    /// twice is the same blob. A blob is durable when this returns.
    async fn put_blobs(&self, session: &str, blobs: Vec<(String, Blob)>, now_ms: i64)
    -> Result<()>;

    /// Marks blobs as used now, so garbage collection keeps them for at least
    /// one grace period. Returns, per id, whether the blob exists.
    async fn touch_blobs(&self, session: &str, ids: &[String], now_ms: i64) -> Result<Vec<bool>>;

    /// Reads blobs; `None` for an id that is not stored.
    async fn get_blobs(&self, session: &str, ids: &[String]) -> Result<Vec<Option<Blob>>>;

    /// Every blob of a session with its size and last touch.
    async fn list_blobs(&self, session: &str) -> Result<Vec<BlobInfo>>;

    /// Deletes those of `ids` whose last touch is before `untouched_before_ms`,
    /// checked atomically against concurrent touches. Returns bytes freed.
    ///
    /// # Behavior
    /// Missing ids are skipped.
    async fn delete_blobs(
        &self,
        session: &str,
        ids: &[String],
        untouched_before_ms: i64,
    ) -> Result<u64>;
}
