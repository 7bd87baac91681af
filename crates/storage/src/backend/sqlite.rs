//! Embedded on-disk backend: SQLite (WAL) for metadata, one file per blob.
//!
//! Layout of a data directory:
//! - `store.sqlite3`: sessions, table heads, operation logs, the blob index;
//! - `objects/<incarnation>/<id>.<nonce>`: blob contents of one incarnation of
//!   a session, written once under a temp name, fsynced, renamed into place,
//!   never overwritten (sessions from format 1 keep `blobs/<session>/`);
//! - `tmp/`: blobs being written.
//!
//! Every creation of a session id gets a fresh incarnation, and with it its
//! own directory. Deleting a session removes the directory of the incarnation
//! it deleted, never the directory of a session created again under the same
//! id in the meantime; a blob write checks, in the transaction that indexes
//! its files, that the incarnation it wrote into is still the live one.
//!
//! Crash safety: a blob file is durable before its index row is committed, and
//! a head is committed only after the blobs it references, so a process killed
//! at any point leaves the old head or the new one. A file or directory no row
//! points at is an orphan, removed by the sweep at open once it is old.
//!
//! Several processes may share a directory: SQLite's locking makes every
//! compare-and-set atomic across them, write transactions are short (file
//! writes happen outside them), and reads use their own connections and never
//! write (a session's expiry is refreshed at most once per refresh interval).

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{
    Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior, params,
};

use super::{
    Backend, Blob, BlobInfo, Capabilities, CasOutcome, CasRequest, LocalBuckets, SessionMeta,
    TableRecord, Throttle,
};
use crate::error::{Result, StoreError};
use crate::ids::new_uid;

/// The on-disk format this build reads and writes. Format 1 (no session
/// incarnations) is upgraded in place.
pub const DISK_FORMAT: u32 = 2;

/// Orphan files younger than this are left alone: another process may be
/// between writing a blob and committing its row.
const ORPHAN_AGE: Duration = Duration::from_secs(3600);

/// Read connections per process: WAL readers never block each other or the
/// writer.
const READERS: usize = 4;

#[derive(Debug, Clone)]
pub struct SqliteBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    buckets: LocalBuckets,
    dir: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

/// Where one incarnation of a session keeps its files.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Incarnation(String);

fn open_connection(db: &Path) -> Result<Connection> {
    let conn = Connection::open(db).map_err(|e| sql_err(e, "opening the metadata database"))?;
    conn.busy_timeout(Duration::from_secs(30))
        .map_err(|e| sql_err(e, "configuring the database"))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| sql_err(e, "enabling WAL"))?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| sql_err(e, "configuring the database"))?;
    Ok(conn)
}

impl SqliteBackend {
    /// Opens (creating if needed) a store in `dir`. Blocking: call it off the
    /// async runtime.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        for sub in ["", "objects", "tmp"] {
            let path = dir.join(sub);
            fs::create_dir_all(&path).map_err(|e| {
                StoreError::io(
                    format!("cannot create data directory {}", path.display()),
                    e,
                )
            })?;
        }
        // Probe writability up front: a clear error now beats a confusing one
        // at the first commit.
        let probe = dir.join("tmp").join(format!(".probe-{}", new_uid()));
        fs::write(&probe, b"ok").map_err(|e| {
            StoreError::io(
                format!("data directory {} is not writable", dir.display()),
                e,
            )
        })?;
        let _ = fs::remove_file(&probe);

        let db = dir.join("store.sqlite3");
        let mut writer = open_connection(&db)?;
        migrate(&mut writer, &dir, &db)?;
        let readers = (0..READERS)
            .map(|_| open_connection(&db).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        let backend = SqliteBackend {
            inner: Arc::new(Inner {
                buckets: LocalBuckets::default(),
                dir,
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
            }),
        };
        backend.sweep_orphans()?;
        Ok(backend)
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn files_dir(&self, session: &str, inc: &Incarnation) -> PathBuf {
        if inc.0.is_empty() {
            // A session from format 1.
            self.inner.dir.join("blobs").join(session)
        } else {
            self.inner.dir.join("objects").join(&inc.0)
        }
    }

    /// Removes blob files and directories no row points at, and stale temp
    /// files.
    fn sweep_orphans(&self) -> Result<()> {
        let (known_files, known_dirs): (HashSet<PathBuf>, HashSet<PathBuf>) = {
            let conn = self.writer();
            let mut dirs = HashSet::new();
            let mut stmt = conn
                .prepare("SELECT id, inc FROM sessions")
                .map_err(|e| sql_err(e, "listing sessions"))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(|e| sql_err(e, "listing sessions"))?;
            for row in rows {
                let (id, inc) = row.map_err(|e| sql_err(e, "listing sessions"))?;
                dirs.insert(self.files_dir(&id, &Incarnation(inc)));
            }
            let mut stmt = conn
                .prepare("SELECT b.session, s.inc, b.file FROM blobs b JOIN sessions s ON s.id = b.session")
                .map_err(|e| sql_err(e, "listing blobs"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(|e| sql_err(e, "listing blobs"))?;
            let mut files = HashSet::new();
            for row in rows {
                let (session, inc, file) = row.map_err(|e| sql_err(e, "listing blobs"))?;
                files.insert(self.files_dir(&session, &Incarnation(inc)).join(file));
            }
            (files, dirs)
        };
        let old = |path: &Path| {
            fs::symlink_metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > ORPHAN_AGE)
        };
        for parent in ["blobs", "objects"] {
            let Ok(dirs) = fs::read_dir(self.inner.dir.join(parent)) else {
                continue;
            };
            for dir in dirs.flatten() {
                let path = dir.path();
                if !known_dirs.contains(&path) {
                    if old(&path) {
                        let _ = fs::remove_dir_all(&path);
                    }
                    continue;
                }
                let Ok(files) = fs::read_dir(&path) else {
                    continue;
                };
                for file in files.flatten() {
                    if !known_files.contains(&file.path()) && old(&file.path()) {
                        let _ = fs::remove_file(file.path());
                    }
                }
            }
        }
        if let Ok(tmp) = fs::read_dir(self.inner.dir.join("tmp")) {
            for file in tmp.flatten() {
                if old(&file.path()) {
                    let _ = fs::remove_file(file.path());
                }
            }
        }
        Ok(())
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        self.inner.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        let readers = &self.inner.readers;
        let start = self.inner.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..readers.len() {
            if let Ok(guard) = readers[(start + i) % readers.len()].try_lock() {
                return guard;
            }
        }
        readers[start % readers.len()]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` with the write connection on the blocking pool.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&SqliteBackend, &mut Connection) -> Result<T> + Send + 'static,
    {
        let this = self.clone();
        off_runtime(move || {
            let mut conn = this.writer();
            f(&this, &mut conn)
        })
        .await
    }

    /// Runs `f` with a read connection on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&SqliteBackend, &mut Connection) -> Result<T> + Send + 'static,
    {
        let this = self.clone();
        off_runtime(move || {
            let mut conn = this.reader();
            f(&this, &mut conn)
        })
        .await
    }

    /// Writes each blob to a file of its own, durably, on a few threads:
    /// the file system commits concurrent syncs together, where one after
    /// another each waited for its own (a 1M-row table's 20 parts took 11-13
    /// ms to write in turn). The files written, whether the put fails or not,
    /// are listed in `written`, so the caller can remove them all (all but a
    /// panicked writer's, which nothing here can cause).
    fn write_blob_files(
        &self,
        dir: &Path,
        blobs: &[(String, Blob)],
        written: &mut Vec<WrittenBlob>,
    ) -> Result<()> {
        const WRITERS: usize = 8;
        let chunk = blobs.len().div_ceil(WRITERS).max(1);
        // Per writer: the files it wrote, and how it ended.
        let results: Vec<(Vec<WrittenBlob>, Result<()>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = blobs
                .chunks(chunk)
                .map(|slice| {
                    scope.spawn(move || {
                        let mut done = Vec::with_capacity(slice.len());
                        for (id, blob) in slice {
                            let Blob::Bytes(bytes) = blob else {
                                return (
                                    done,
                                    Err(StoreError::Internal(
                                        "the sqlite backend stores encoded blobs only".into(),
                                    )),
                                );
                            };
                            match self.write_blob_file(dir, id, bytes) {
                                Ok(file) => done.push((id.clone(), file, bytes.len() as i64)),
                                Err(e) => return (done, Err(e)),
                            }
                        }
                        (done, Ok(()))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        (
                            Vec::new(),
                            Err(StoreError::Internal("a blob writer panicked".into())),
                        )
                    })
                })
                .collect()
        });
        let mut outcome = Ok(());
        for (done, result) in results {
            written.extend(done);
            if outcome.is_ok() {
                outcome = result;
            }
        }
        outcome
    }

    fn write_blob_file(&self, dir: &Path, id: &str, bytes: &[u8]) -> Result<String> {
        let file = format!("{id}.{}", new_uid());
        let tmp = self.inner.dir.join("tmp").join(&file);
        let write = || -> std::io::Result<()> {
            fs::create_dir_all(dir)?;
            let mut f = fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, dir.join(&file))
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            StoreError::io(format!("writing a blob under {}", dir.display()), e)
        })?;
        Ok(file)
    }
}

/// A blob written to a file: its id, the file's name and its size.
type WrittenBlob = (String, String, i64);

/// Runs blocking work (SQLite, files) off the async runtime.
async fn off_runtime<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Internal(format!("sqlite worker failed: {e}")))?
}

/// Removes directories off the async runtime, ignoring ones already gone.
async fn remove_dirs(dirs: Vec<PathBuf>) -> Result<()> {
    if dirs.is_empty() {
        return Ok(());
    }
    off_runtime(move || {
        for dir in dirs {
            let _ = fs::remove_dir_all(dir);
        }
        Ok(())
    })
    .await
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, created INTEGER NOT NULL, last INTEGER NOT NULL, ttl INTEGER NOT NULL,
    inc TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS tables (
    session TEXT NOT NULL, name TEXT NOT NULL, rev INTEGER NOT NULL, doc BLOB NOT NULL,
    PRIMARY KEY (session, name));
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, session TEXT NOT NULL, uid TEXT NOT NULL,
    record BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS log_by_table ON log (session, uid, seq);
CREATE TABLE IF NOT EXISTS blobs (
    session TEXT NOT NULL, id TEXT NOT NULL, file TEXT NOT NULL, size INTEGER NOT NULL,
    touched INTEGER NOT NULL, PRIMARY KEY (session, id));
";

/// Creates the schema, or upgrades a format-1 directory; refuses a newer one.
fn migrate(conn: &mut Connection, dir: &Path, db: &Path) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| sql_err(e, "creating the schema"))?;
    tx.execute_batch(SCHEMA)
        .map_err(|e| sql_err(e, "creating the schema"))?;
    let found: Option<String> = tx
        .query_row("SELECT value FROM meta WHERE key = 'format'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| sql_err(e, "reading the format version"))?;
    match found.map(|v| v.parse::<u32>()) {
        None => {}
        Some(Ok(1)) => {
            // Format 1 had no incarnation column; CREATE IF NOT EXISTS kept the
            // old table as it was.
            let has_inc = tx
                .prepare("SELECT 1 FROM pragma_table_info('sessions') WHERE name = 'inc'")
                .and_then(|mut s| s.exists([]))
                .map_err(|e| sql_err(e, "upgrading the store format"))?;
            if !has_inc {
                tx.execute(
                    "ALTER TABLE sessions ADD COLUMN inc TEXT NOT NULL DEFAULT ''",
                    [],
                )
                .map_err(|e| sql_err(e, "upgrading the store format"))?;
            }
        }
        Some(Ok(v)) if v == DISK_FORMAT => {}
        Some(Ok(v)) => {
            return Err(StoreError::IncompatibleFormat {
                location: format!("data directory {}", dir.display()),
                found: v,
                supported: DISK_FORMAT,
            });
        }
        Some(Err(_)) => {
            return Err(StoreError::Corrupt(format!(
                "the format version in {} is unreadable",
                db.display()
            )));
        }
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('format', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![DISK_FORMAT.to_string()],
    )
    .map_err(|e| sql_err(e, "writing the format version"))?;
    tx.commit().map_err(|e| sql_err(e, "creating the schema"))?;
    Ok(())
}

fn sql_err(e: rusqlite::Error, doing: &str) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        match f.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                return StoreError::unavailable(
                    "sqlite",
                    format!("{doing}: the data directory is locked by another process"),
                    Some(Box::new(e)),
                );
            }
            ErrorCode::DiskFull => {
                return StoreError::io(
                    doing.to_string(),
                    std::io::Error::new(std::io::ErrorKind::StorageFull, e),
                );
            }
            ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied => {
                return StoreError::io(
                    doing.to_string(),
                    std::io::Error::new(std::io::ErrorKind::PermissionDenied, e),
                );
            }
            _ => {}
        }
    }
    StoreError::backend("sqlite", format!("{doing}: {e}"), Some(Box::new(e)))
}

struct SessionRow {
    meta: SessionMeta,
    inc: Incarnation,
}

fn session_row(conn: &Connection, id: &str) -> Result<Option<SessionRow>> {
    conn.query_row(
        "SELECT id, created, last, ttl, inc FROM sessions WHERE id = ?1",
        params![id],
        |r| {
            Ok(SessionRow {
                meta: SessionMeta {
                    id: r.get(0)?,
                    created_ms: r.get(1)?,
                    last_access_ms: r.get(2)?,
                    ttl_ms: r.get(3)?,
                },
                inc: Incarnation(r.get(4)?),
            })
        },
    )
    .optional()
    .map_err(|e| sql_err(e, "reading a session"))
}

fn live_session(conn: &Connection, id: &str, now_ms: i64) -> Result<Option<SessionRow>> {
    Ok(session_row(conn, id)?.filter(|s| !s.meta.is_expired(now_ms)))
}

/// Deletes a session's rows; returns its incarnation if it existed.
fn delete_session_rows(tx: &Transaction<'_>, id: &str) -> Result<Option<SessionRow>> {
    let row = session_row(tx, id)?;
    if row.is_none() {
        return Ok(None);
    }
    for table in ["sessions", "tables", "log", "blobs"] {
        let column = if table == "sessions" { "id" } else { "session" };
        tx.execute(
            &format!("DELETE FROM {table} WHERE {column} = ?1"),
            params![id],
        )
        .map_err(|e| sql_err(e, "deleting a session"))?;
    }
    Ok(row)
}

fn immediate<'c>(conn: &'c mut Connection, doing: &str) -> Result<Transaction<'c>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| sql_err(e, doing))
}

fn deferred<'c>(conn: &'c mut Connection, doing: &str) -> Result<Transaction<'c>> {
    conn.transaction_with_behavior(TransactionBehavior::Deferred)
        .map_err(|e| sql_err(e, doing))
}

fn commit(tx: Transaction<'_>, doing: &str) -> Result<()> {
    tx.commit().map_err(|e| sql_err(e, doing))
}

#[async_trait]
impl Backend for SqliteBackend {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            native_frames: false,
            max_request_bytes: None,
        }
    }

    async fn create_session(&self, meta: &SessionMeta) -> Result<bool> {
        let meta = meta.clone();
        let (created, stale) = self
            .write(move |this, conn| {
                let tx = immediate(conn, "creating a session")?;
                let stale = match delete_session_rows_if_expired(&tx, &meta)? {
                    Expired::Live => return Ok((false, None)),
                    Expired::Replaced(old) => Some(this.files_dir(&old.meta.id, &old.inc)),
                    Expired::Absent => None,
                };
                tx.execute(
                    "INSERT INTO sessions (id, created, last, ttl, inc) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        meta.id,
                        meta.created_ms,
                        meta.last_access_ms,
                        meta.ttl_ms,
                        new_uid()
                    ],
                )
                .map_err(|e| sql_err(e, "creating a session"))?;
                commit(tx, "creating a session")?;
                Ok((true, stale))
            })
            .await?;
        remove_dirs(stale.into_iter().collect()).await?;
        Ok(created)
    }

    async fn open(
        &self,
        session: &str,
        table: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<(SessionMeta, Option<TableRecord>)>> {
        let session = session.to_string();
        let table = table.map(str::to_string);
        let found = self
            .read(move |_, conn| {
                let tx = deferred(conn, "opening a session")?;
                let Some(row) = live_session(&tx, &session, now_ms)? else {
                    return Ok(None);
                };
                let record = match table {
                    None => None,
                    Some(name) => tx
                        .query_row(
                            "SELECT rev, doc FROM tables WHERE session = ?1 AND name = ?2",
                            params![session, name],
                            |r| {
                                Ok(TableRecord {
                                    name: name.clone(),
                                    rev: r.get::<_, i64>(0)? as u64,
                                    doc: Bytes::from(r.get::<_, Vec<u8>>(1)?),
                                })
                            },
                        )
                        .optional()
                        .map_err(|e| sql_err(e, "reading a table"))?,
                };
                commit(tx, "opening a session")?;
                Ok(Some((row.meta, record)))
            })
            .await?;
        let Some((mut meta, record)) = found else {
            return Ok(None);
        };
        if meta.refresh_due(now_ms) {
            let id = meta.id.clone();
            // Only ever moves forward, so a late refresh cannot shorten a
            // session another process just refreshed.
            self.write(move |_, conn| {
                conn.execute(
                    "UPDATE sessions SET last = max(last, ?2) WHERE id = ?1",
                    params![id, now_ms],
                )
                .map_err(|e| sql_err(e, "refreshing a session"))
            })
            .await?;
            meta.last_access_ms = now_ms;
        }
        Ok(Some((meta, record)))
    }

    async fn list_sessions(
        &self,
        namespace: &str,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<SessionMeta>> {
        let namespace = namespace.to_string();
        self.read(move |_, conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT id, created, last, ttl FROM sessions
                     WHERE (CASE WHEN instr(id, '.') > 0 THEN substr(id, 1, instr(id, '.') - 1)
                            ELSE '' END) = ?1
                       AND last + ttl > ?2 LIMIT ?3",
                )
                .map_err(|e| sql_err(e, "listing sessions"))?;
            let rows = stmt
                .query_map(params![namespace, now_ms, limit as i64], |r| {
                    Ok(SessionMeta {
                        id: r.get(0)?,
                        created_ms: r.get(1)?,
                        last_access_ms: r.get(2)?,
                        ttl_ms: r.get(3)?,
                    })
                })
                .map_err(|e| sql_err(e, "listing sessions"))?;
            rows.collect::<std::result::Result<_, _>>()
                .map_err(|e| sql_err(e, "listing sessions"))
        })
        .await
    }

    async fn delete_session(&self, session: &str, now_ms: i64) -> Result<bool> {
        let id = session.to_string();
        let (existed, dir) = self
            .write(move |this, conn| {
                let tx = immediate(conn, "deleting a session")?;
                let row = delete_session_rows(&tx, &id)?;
                commit(tx, "deleting a session")?;
                Ok(match row {
                    Some(row) => (
                        !row.meta.is_expired(now_ms),
                        Some(this.files_dir(&id, &row.inc)),
                    ),
                    None => (false, None),
                })
            })
            .await?;
        remove_dirs(dir.into_iter().collect()).await?;
        Ok(existed)
    }

    async fn purge_expired(&self, now_ms: i64) -> Result<Vec<String>> {
        let (ids, dirs) = self
            .write(move |this, conn| {
                let tx = immediate(conn, "purging expired sessions")?;
                let ids: Vec<String> = {
                    let mut stmt = tx
                        .prepare("SELECT id FROM sessions WHERE last + ttl <= ?1")
                        .map_err(|e| sql_err(e, "purging expired sessions"))?;
                    let rows = stmt
                        .query_map(params![now_ms], |r| r.get(0))
                        .map_err(|e| sql_err(e, "purging expired sessions"))?;
                    rows.collect::<std::result::Result<_, _>>()
                        .map_err(|e| sql_err(e, "purging expired sessions"))?
                };
                let mut dirs = Vec::new();
                for id in &ids {
                    if let Some(row) = delete_session_rows(&tx, id)? {
                        dirs.push(this.files_dir(id, &row.inc));
                    }
                }
                commit(tx, "purging expired sessions")?;
                Ok((ids, dirs))
            })
            .await?;
        remove_dirs(dirs).await?;
        Ok(ids)
    }

    async fn list_tables(&self, session: &str, now_ms: i64) -> Result<Option<Vec<TableRecord>>> {
        let session = session.to_string();
        self.read(move |_, conn| {
            let tx = deferred(conn, "listing tables")?;
            if live_session(&tx, &session, now_ms)?.is_none() {
                return Ok(None);
            }
            let records = {
                let mut stmt = tx
                    .prepare("SELECT name, rev, doc FROM tables WHERE session = ?1")
                    .map_err(|e| sql_err(e, "listing tables"))?;
                let rows = stmt
                    .query_map(params![session], |r| {
                        Ok(TableRecord {
                            name: r.get(0)?,
                            rev: r.get::<_, i64>(1)? as u64,
                            doc: Bytes::from(r.get::<_, Vec<u8>>(2)?),
                        })
                    })
                    .map_err(|e| sql_err(e, "listing tables"))?;
                rows.collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| sql_err(e, "listing tables"))?
            };
            commit(tx, "listing tables")?;
            Ok(Some(records))
        })
        .await
    }

    async fn cas_tables(
        &self,
        session: &str,
        request: &CasRequest,
        now_ms: i64,
    ) -> Result<CasOutcome> {
        let session = session.to_string();
        let request = request.clone();
        self.write(move |_, conn| {
            let tx = immediate(conn, "committing")?;
            if live_session(&tx, &session, now_ms)?.is_none() {
                return Ok(CasOutcome::SessionGone);
            }
            for change in &request.changes {
                let current: Option<i64> = tx
                    .query_row(
                        "SELECT rev FROM tables WHERE session = ?1 AND name = ?2",
                        params![session, change.name],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(|e| sql_err(e, "committing"))?;
                let current = current.map(|r| r as u64);
                if current != change.expected_rev {
                    return Ok(CasOutcome::Conflict {
                        name: change.name.clone(),
                        current,
                    });
                }
            }
            for change in &request.changes {
                match &change.new {
                    Some((rev, doc)) => tx.execute(
                        "INSERT INTO tables (session, name, rev, doc) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (session, name) DO UPDATE SET rev = excluded.rev, doc = excluded.doc",
                        params![session, change.name, *rev as i64, doc.as_ref()],
                    ),
                    None => tx.execute(
                        "DELETE FROM tables WHERE session = ?1 AND name = ?2",
                        params![session, change.name],
                    ),
                }
                .map_err(|e| sql_err(e, "committing"))?;
            }
            for entry in &request.log {
                tx.execute(
                    "INSERT INTO log (session, uid, record) VALUES (?1, ?2, ?3)",
                    params![session, entry.table_uid, entry.record.as_ref()],
                )
                .map_err(|e| sql_err(e, "committing"))?;
                tx.execute(
                    "DELETE FROM log WHERE session = ?1 AND uid = ?2 AND seq < (
                         SELECT MIN(seq) FROM (
                             SELECT seq FROM log WHERE session = ?1 AND uid = ?2
                             ORDER BY seq DESC LIMIT ?3))",
                    params![session, entry.table_uid, entry.keep.max(1) as i64],
                )
                .map_err(|e| sql_err(e, "committing"))?;
            }
            for uid in &request.drop_logs {
                tx.execute(
                    "DELETE FROM log WHERE session = ?1 AND uid = ?2",
                    params![session, uid],
                )
                .map_err(|e| sql_err(e, "committing"))?;
            }
            tx.execute(
                "UPDATE sessions SET last = max(last, ?2) WHERE id = ?1",
                params![session, now_ms],
            )
            .map_err(|e| sql_err(e, "committing"))?;
            commit(tx, "committing")?;
            Ok(CasOutcome::Applied)
        })
        .await
    }

    async fn read_log(
        &self,
        session: &str,
        table_uid: &str,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<Bytes>> {
        let session = session.to_string();
        let uid = table_uid.to_string();
        self.read(move |_, conn| {
            let tx = deferred(conn, "reading the log")?;
            if live_session(&tx, &session, now_ms)?.is_none() {
                return Ok(Vec::new());
            }
            let records = {
                let mut stmt = tx
                    .prepare(
                        "SELECT record FROM (
                             SELECT seq, record FROM log WHERE session = ?1 AND uid = ?2
                             ORDER BY seq DESC LIMIT ?3)
                         ORDER BY seq",
                    )
                    .map_err(|e| sql_err(e, "reading the log"))?;
                let rows = stmt
                    .query_map(params![session, uid, limit as i64], |r| {
                        Ok(Bytes::from(r.get::<_, Vec<u8>>(0)?))
                    })
                    .map_err(|e| sql_err(e, "reading the log"))?;
                rows.collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| sql_err(e, "reading the log"))?
            };
            commit(tx, "reading the log")?;
            Ok(records)
        })
        .await
    }

    async fn put_blobs(
        &self,
        session: &str,
        blobs: Vec<(String, Blob)>,
        now_ms: i64,
    ) -> Result<()> {
        if blobs.is_empty() {
            return Ok(());
        }
        let session = session.to_string();
        let this = self.clone();
        off_runtime(move || {
            // Which incarnation do the files go to?
            let inc = {
                let mut conn = this.reader();
                let tx = deferred(&mut conn, "storing blobs")?;
                let row = live_session(&tx, &session, now_ms)?;
                commit(tx, "storing blobs")?;
                match row {
                    Some(row) => row.inc,
                    None => return Err(StoreError::SessionNotFound { id: session }),
                }
            };
            let dir = this.files_dir(&session, &inc);
            // Files first, each durable, outside any transaction...
            let mut written = Vec::with_capacity(blobs.len());
            let outcome = (|| {
                this.write_blob_files(&dir, &blobs, &mut written)?;
                // Make the renames durable before the rows that point at them.
                fs::File::open(&dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| StoreError::io(format!("syncing {}", dir.display()), e))?;
                // ...then one short transaction for their rows, in the
                // incarnation the files were written to.
                let mut conn = this.writer();
                let tx = immediate(&mut conn, "storing blobs")?;
                match live_session(&tx, &session, now_ms)? {
                    Some(row) if row.inc == inc => {}
                    _ => {
                        return Err(StoreError::SessionNotFound {
                            id: session.clone(),
                        });
                    }
                }
                let mut redundant = Vec::new();
                for (id, file, size) in &written {
                    let inserted = tx
                        .execute(
                            "INSERT OR IGNORE INTO blobs (session, id, file, size, touched)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                            params![session, id, file, size, now_ms],
                        )
                        .map_err(|e| sql_err(e, "storing blobs"))?;
                    if inserted == 0 {
                        tx.execute(
                            "UPDATE blobs SET touched = max(touched, ?3) WHERE session = ?1 AND id = ?2",
                            params![session, id, now_ms],
                        )
                        .map_err(|e| sql_err(e, "storing blobs"))?;
                        redundant.push(file.clone());
                    }
                }
                commit(tx, "storing blobs")?;
                Ok(redundant)
            })();
            match outcome {
                Ok(redundant) => {
                    for file in redundant {
                        let _ = fs::remove_file(dir.join(file));
                    }
                    Ok(())
                }
                Err(e) => {
                    for (_, file, _) in written {
                        let _ = fs::remove_file(dir.join(file));
                    }
                    // A delete of the session may have removed the directory
                    // under the writes: then the session is what is gone.
                    let mut conn = this.reader();
                    let tx = deferred(&mut conn, "storing blobs")?;
                    let same = live_session(&tx, &session, now_ms)?.is_some_and(|row| row.inc == inc);
                    commit(tx, "storing blobs")?;
                    if same {
                        Err(e)
                    } else {
                        Err(StoreError::SessionNotFound { id: session })
                    }
                }
            }
        })
        .await
    }

    async fn touch_blobs(&self, session: &str, ids: &[String], now_ms: i64) -> Result<Vec<bool>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let session = session.to_string();
        let ids = ids.to_vec();
        self.write(move |_, conn| {
            let tx = immediate(conn, "touching blobs")?;
            if live_session(&tx, &session, now_ms)?.is_none() {
                return Ok(vec![false; ids.len()]);
            }
            let mut present = Vec::with_capacity(ids.len());
            {
                let mut stmt = tx
                    .prepare_cached(
                        "UPDATE blobs SET touched = max(touched, ?3) WHERE session = ?1 AND id = ?2",
                    )
                    .map_err(|e| sql_err(e, "touching blobs"))?;
                for id in &ids {
                    let n = stmt
                        .execute(params![session, id, now_ms])
                        .map_err(|e| sql_err(e, "touching blobs"))?;
                    present.push(n > 0);
                }
            }
            commit(tx, "touching blobs")?;
            Ok(present)
        })
        .await
    }

    async fn get_blobs(
        &self,
        session: &str,
        ids: &[String],
        now_ms: i64,
    ) -> Result<Vec<Option<Blob>>> {
        let session = session.to_string();
        let ids = ids.to_vec();
        let this = self.clone();
        off_runtime(move || {
            let (dir, files) = {
                let mut conn = this.reader();
                let tx = deferred(&mut conn, "reading blobs")?;
                let Some(row) = live_session(&tx, &session, now_ms)? else {
                    return Ok(vec![None; ids.len()]);
                };
                let files = {
                    let mut stmt = tx
                        .prepare_cached("SELECT file FROM blobs WHERE session = ?1 AND id = ?2")
                        .map_err(|e| sql_err(e, "reading blobs"))?;
                    ids.iter()
                        .map(|id| {
                            stmt.query_row(params![session, id], |r| r.get::<_, String>(0))
                                .optional()
                                .map_err(|e| sql_err(e, "reading blobs"))
                        })
                        .collect::<Result<Vec<_>>>()?
                };
                commit(tx, "reading blobs")?;
                (this.files_dir(&session, &row.inc), files)
            };
            files
                .into_iter()
                .map(|file| match file {
                    None => Ok(None),
                    Some(file) => match fs::read(dir.join(&file)) {
                        Ok(bytes) => Ok(Some(Blob::Bytes(Bytes::from(bytes)))),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                        Err(e) => Err(StoreError::io(format!("reading blob {file}"), e)),
                    },
                })
                .collect()
        })
        .await
    }

    async fn list_blobs(&self, session: &str, now_ms: i64) -> Result<Vec<BlobInfo>> {
        let session = session.to_string();
        self.read(move |_, conn| {
            let tx = deferred(conn, "listing blobs")?;
            if live_session(&tx, &session, now_ms)?.is_none() {
                return Ok(Vec::new());
            }
            let blobs = {
                let mut stmt = tx
                    .prepare("SELECT id, size, touched FROM blobs WHERE session = ?1")
                    .map_err(|e| sql_err(e, "listing blobs"))?;
                let rows = stmt
                    .query_map(params![session], |r| {
                        Ok(BlobInfo {
                            id: r.get(0)?,
                            size: r.get::<_, i64>(1)? as u64,
                            touched_ms: r.get(2)?,
                        })
                    })
                    .map_err(|e| sql_err(e, "listing blobs"))?;
                rows.collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| sql_err(e, "listing blobs"))?
            };
            commit(tx, "listing blobs")?;
            Ok(blobs)
        })
        .await
    }

    async fn take_token(
        &self,
        bucket: &str,
        per_second: f64,
        burst: f64,
        now_ms: i64,
    ) -> Result<Throttle> {
        // Rate limits are per process on the embedded store: processes on one
        // machine serve one user each.
        Ok(self.inner.buckets.take(bucket, per_second, burst, now_ms))
    }

    async fn delete_blobs(
        &self,
        session: &str,
        ids: &[String],
        untouched_before_ms: i64,
    ) -> Result<u64> {
        let session = session.to_string();
        let ids = ids.to_vec();
        let (dir, files, freed) = self
            .write(move |this, conn| {
                let tx = immediate(conn, "deleting blobs")?;
                let Some(row) = session_row(&tx, &session)? else {
                    return Ok((None, Vec::new(), 0));
                };
                let mut files = Vec::new();
                let mut freed = 0u64;
                {
                    let mut stmt = tx
                        .prepare_cached(
                            "DELETE FROM blobs WHERE session = ?1 AND id = ?2 AND touched < ?3
                             RETURNING file, size",
                        )
                        .map_err(|e| sql_err(e, "deleting blobs"))?;
                    for id in &ids {
                        let deleted: Option<(String, i64)> = stmt
                            .query_row(params![session, id, untouched_before_ms], |r| {
                                Ok((r.get(0)?, r.get(1)?))
                            })
                            .optional()
                            .map_err(|e| sql_err(e, "deleting blobs"))?;
                        if let Some((file, size)) = deleted {
                            files.push(file);
                            freed += size as u64;
                        }
                    }
                }
                commit(tx, "deleting blobs")?;
                Ok((Some(this.files_dir(&session, &row.inc)), files, freed))
            })
            .await?;
        // Files go after their rows: a crash in between leaves orphans for the
        // sweep, never a row without its file. File names are unique per write,
        // so a concurrent re-put of the same id is a different file.
        if let Some(dir) = dir
            && !files.is_empty()
        {
            off_runtime(move || {
                for file in files {
                    let _ = fs::remove_file(dir.join(file));
                }
                Ok(())
            })
            .await?;
        }
        Ok(freed)
    }
}

enum Expired {
    Live,
    Replaced(SessionRow),
    Absent,
}

/// For a session about to be created: is the id live, expired (then its rows
/// are deleted here), or free?
fn delete_session_rows_if_expired(tx: &Transaction<'_>, meta: &SessionMeta) -> Result<Expired> {
    match session_row(tx, &meta.id)? {
        Some(old) if !old.meta.is_expired(meta.created_ms) => Ok(Expired::Live),
        Some(_) => Ok(delete_session_rows(tx, &meta.id)?
            .map(Expired::Replaced)
            .unwrap_or(Expired::Absent)),
        None => Ok(Expired::Absent),
    }
}
