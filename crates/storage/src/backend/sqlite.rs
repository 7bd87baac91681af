//! Embedded on-disk backend: SQLite (WAL) for metadata, one file per blob.
//!
//! Layout of a data directory:
//! - `store.sqlite3`: sessions, table heads, operation logs, the blob index;
//! - `blobs/<session>/<id>.<nonce>`: blob contents, written once under a temp
//!   name, fsynced, renamed into place, never overwritten;
//! - `tmp/`: blobs being written.
//!
//! Crash safety: a blob file is durable before its index row is committed, and
//! a head is committed only after the blobs it references, so a process killed
//! at any point leaves the old head or the new one. A file whose row never got
//! committed is an orphan, removed by the sweep at open.
//!
//! Several processes may share a directory: SQLite's locking makes every
//! compare-and-set atomic across them, and write transactions are short (file
//! writes happen outside them).

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use super::{
    Backend, Blob, BlobInfo, Capabilities, CasOutcome, LogAppend, SessionMeta, TableChange,
    TableRecord,
};
use crate::error::{Result, StoreError};
use crate::ids::new_uid;

/// The on-disk format this build reads and writes.
pub const DISK_FORMAT: u32 = 1;

/// Orphan files younger than this are left alone: another process may be
/// between writing a blob and committing its row.
const ORPHAN_AGE: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct SqliteBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteBackend {
    /// Opens (creating if needed) a store in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        for sub in ["", "blobs", "tmp"] {
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
        let conn =
            Connection::open(&db).map_err(|e| sql_err(&e, "opening the metadata database"))?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(|e| sql_err(&e, "configuring the database"))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| sql_err(&e, "enabling WAL"))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| sql_err(&e, "configuring the database"))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| sql_err(&e, "creating the schema"))?;
        let found: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'format'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| sql_err(&e, "reading the format version"))?;
        match found.map(|v| v.parse::<u32>()) {
            None => {
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('format', ?1)",
                    params![DISK_FORMAT.to_string()],
                )
                .map_err(|e| sql_err(&e, "writing the format version"))?;
            }
            Some(Ok(v)) if v <= DISK_FORMAT => {}
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
        let backend = SqliteBackend {
            inner: Arc::new(Inner {
                dir,
                conn: Mutex::new(conn),
            }),
        };
        backend.sweep_orphans()?;
        Ok(backend)
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn session_dir(&self, session: &str) -> PathBuf {
        self.inner.dir.join("blobs").join(session)
    }

    /// Removes blob files no row points at, and stale temp files.
    fn sweep_orphans(&self) -> Result<()> {
        let known: HashSet<String> = {
            let conn = self.lock();
            let mut stmt = conn
                .prepare("SELECT session, file FROM blobs")
                .map_err(|e| sql_err(&e, "listing blobs"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(format!(
                        "{}/{}",
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?
                    ))
                })
                .map_err(|e| sql_err(&e, "listing blobs"))?;
            rows.collect::<std::result::Result<_, _>>()
                .map_err(|e| sql_err(&e, "listing blobs"))?
        };
        let old = |path: &Path| {
            fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > ORPHAN_AGE)
        };
        if let Ok(sessions) = fs::read_dir(self.inner.dir.join("blobs")) {
            for session in sessions.flatten() {
                let sname = session.file_name().to_string_lossy().into_owned();
                let Ok(files) = fs::read_dir(session.path()) else {
                    continue;
                };
                let mut empty = true;
                for file in files.flatten() {
                    let fname = file.file_name().to_string_lossy().into_owned();
                    if !known.contains(&format!("{sname}/{fname}")) && old(&file.path()) {
                        let _ = fs::remove_file(file.path());
                    } else {
                        empty = false;
                    }
                }
                if empty && old(&session.path()) {
                    let _ = fs::remove_dir(session.path());
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.inner.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with_conn<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&SqliteBackend, &mut Connection) -> Result<T> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = this.lock();
            f(&this, &mut conn)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("sqlite worker failed: {e}")))?
    }

    /// Runs `f` off the async runtime without holding the connection.
    async fn off_runtime<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&SqliteBackend) -> Result<T> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(|e| StoreError::Internal(format!("sqlite worker failed: {e}")))?
    }

    fn write_blob_file(&self, session: &str, id: &str, bytes: &[u8]) -> Result<String> {
        let file = format!("{id}.{}", new_uid());
        let tmp = self.inner.dir.join("tmp").join(&file);
        let dir = self.session_dir(session);
        let write = || -> std::io::Result<()> {
            fs::create_dir_all(&dir)?;
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

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, created INTEGER NOT NULL, last INTEGER NOT NULL, ttl INTEGER NOT NULL);
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

fn sql_err(e: &rusqlite::Error, doing: &str) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, _) = e {
        match f.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                return StoreError::Unavailable {
                    backend: "sqlite",
                    message: format!("{doing}: the data directory is locked by another process"),
                };
            }
            ErrorCode::DiskFull => {
                return StoreError::io(
                    doing.to_string(),
                    std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full"),
                );
            }
            ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied => {
                return StoreError::io(
                    doing.to_string(),
                    std::io::Error::new(std::io::ErrorKind::PermissionDenied, e.to_string()),
                );
            }
            _ => {}
        }
    }
    StoreError::Backend {
        backend: "sqlite",
        message: format!("{doing}: {e}"),
    }
}

fn session_row(conn: &Connection, id: &str) -> Result<Option<SessionMeta>> {
    conn.query_row(
        "SELECT id, created, last, ttl FROM sessions WHERE id = ?1",
        params![id],
        |r| {
            Ok(SessionMeta {
                id: r.get(0)?,
                created_ms: r.get(1)?,
                last_access_ms: r.get(2)?,
                ttl_ms: r.get(3)?,
            })
        },
    )
    .optional()
    .map_err(|e| sql_err(&e, "reading a session"))
}

fn live_session(conn: &Connection, id: &str, now_ms: i64) -> Result<Option<SessionMeta>> {
    Ok(session_row(conn, id)?.filter(|m| !m.is_expired(now_ms)))
}

fn delete_session_rows(conn: &Connection, id: &str) -> Result<bool> {
    let existed = conn
        .execute("DELETE FROM sessions WHERE id = ?1", params![id])
        .map_err(|e| sql_err(&e, "deleting a session"))?
        > 0;
    for table in ["tables", "log", "blobs"] {
        conn.execute(
            &format!("DELETE FROM {table} WHERE session = ?1"),
            params![id],
        )
        .map_err(|e| sql_err(&e, "deleting a session"))?;
    }
    Ok(existed)
}

#[async_trait]
impl Backend for SqliteBackend {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            native_frames: false,
            shared: true,
            native_ttl: false,
        }
    }

    async fn create_session(&self, meta: &SessionMeta) -> Result<bool> {
        let dir = self.session_dir(&meta.id);
        let meta = meta.clone();
        let (created, stale) = self
            .with_conn(move |_, conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(|e| sql_err(&e, "creating a session"))?;
                let existing = session_row(&tx, &meta.id)?;
                let stale = match existing {
                    Some(old) if !old.is_expired(meta.created_ms) => return Ok((false, false)),
                    Some(_) => {
                        delete_session_rows(&tx, &meta.id)?;
                        true
                    }
                    None => false,
                };
                tx.execute(
                    "INSERT INTO sessions (id, created, last, ttl) VALUES (?1, ?2, ?3, ?4)",
                    params![meta.id, meta.created_ms, meta.last_access_ms, meta.ttl_ms],
                )
                .map_err(|e| sql_err(&e, "creating a session"))?;
                tx.commit().map_err(|e| sql_err(&e, "creating a session"))?;
                Ok((true, stale))
            })
            .await?;
        if stale {
            let _ = fs::remove_dir_all(dir);
        }
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
        self.with_conn(move |_, conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| sql_err(&e, "opening a session"))?;
            let Some(mut meta) = live_session(&tx, &session, now_ms)? else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE sessions SET last = ?2 WHERE id = ?1",
                params![session, now_ms],
            )
            .map_err(|e| sql_err(&e, "refreshing a session"))?;
            meta.last_access_ms = now_ms;
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
                    .map_err(|e| sql_err(&e, "reading a table"))?,
            };
            tx.commit()
                .map_err(|e| sql_err(&e, "refreshing a session"))?;
            Ok(Some((meta, record)))
        })
        .await
    }

    async fn list_sessions(&self, now_ms: i64) -> Result<Vec<SessionMeta>> {
        self.with_conn(move |_, conn| {
            let mut stmt = conn
                .prepare("SELECT id, created, last, ttl FROM sessions")
                .map_err(|e| sql_err(&e, "listing sessions"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(SessionMeta {
                        id: r.get(0)?,
                        created_ms: r.get(1)?,
                        last_access_ms: r.get(2)?,
                        ttl_ms: r.get(3)?,
                    })
                })
                .map_err(|e| sql_err(&e, "listing sessions"))?;
            let all: Vec<SessionMeta> = rows
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| sql_err(&e, "listing sessions"))?;
            Ok(all.into_iter().filter(|m| !m.is_expired(now_ms)).collect())
        })
        .await
    }

    async fn delete_session(&self, session: &str) -> Result<bool> {
        let id = session.to_string();
        let existed = self
            .with_conn(move |_, conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(|e| sql_err(&e, "deleting a session"))?;
                let existed = delete_session_rows(&tx, &id)?;
                tx.commit().map_err(|e| sql_err(&e, "deleting a session"))?;
                Ok(existed)
            })
            .await?;
        let dir = self.session_dir(session);
        self.off_runtime(move |_| {
            let _ = fs::remove_dir_all(dir);
            Ok(())
        })
        .await?;
        Ok(existed)
    }

    async fn purge_expired(&self, now_ms: i64) -> Result<Vec<String>> {
        let purged = self
            .with_conn(move |_, conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(|e| sql_err(&e, "purging expired sessions"))?;
                let ids: Vec<String> = {
                    let mut stmt = tx
                        .prepare("SELECT id FROM sessions WHERE last + ttl <= ?1")
                        .map_err(|e| sql_err(&e, "purging expired sessions"))?;
                    let rows = stmt
                        .query_map(params![now_ms], |r| r.get(0))
                        .map_err(|e| sql_err(&e, "purging expired sessions"))?;
                    rows.collect::<std::result::Result<_, _>>()
                        .map_err(|e| sql_err(&e, "purging expired sessions"))?
                };
                for id in &ids {
                    delete_session_rows(&tx, id)?;
                }
                tx.commit()
                    .map_err(|e| sql_err(&e, "purging expired sessions"))?;
                Ok(ids)
            })
            .await?;
        let dirs: Vec<PathBuf> = purged.iter().map(|id| self.session_dir(id)).collect();
        self.off_runtime(move |_| {
            for dir in dirs {
                let _ = fs::remove_dir_all(dir);
            }
            Ok(())
        })
        .await?;
        Ok(purged)
    }

    async fn list_tables(&self, session: &str) -> Result<Vec<TableRecord>> {
        let session = session.to_string();
        self.with_conn(move |_, conn| {
            if live_session(conn, &session, crate::ids::now_ms())?.is_none() {
                return Ok(Vec::new());
            }
            let mut stmt = conn
                .prepare("SELECT name, rev, doc FROM tables WHERE session = ?1")
                .map_err(|e| sql_err(&e, "listing tables"))?;
            let rows = stmt
                .query_map(params![session], |r| {
                    Ok(TableRecord {
                        name: r.get(0)?,
                        rev: r.get::<_, i64>(1)? as u64,
                        doc: Bytes::from(r.get::<_, Vec<u8>>(2)?),
                    })
                })
                .map_err(|e| sql_err(&e, "listing tables"))?;
            rows.collect::<std::result::Result<_, _>>()
                .map_err(|e| sql_err(&e, "listing tables"))
        })
        .await
    }

    async fn cas_tables(
        &self,
        session: &str,
        changes: &[TableChange],
        log: &[LogAppend],
        now_ms: i64,
    ) -> Result<CasOutcome> {
        let session = session.to_string();
        let changes = changes.to_vec();
        let log = log.to_vec();
        self.with_conn(move |_, conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| sql_err(&e, "committing"))?;
            if live_session(&tx, &session, now_ms)?.is_none() {
                return Ok(CasOutcome::SessionGone);
            }
            for change in &changes {
                let current: Option<i64> = tx
                    .query_row(
                        "SELECT rev FROM tables WHERE session = ?1 AND name = ?2",
                        params![session, change.name],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(|e| sql_err(&e, "committing"))?;
                let current = current.map(|r| r as u64);
                if current != change.expected_rev {
                    return Ok(CasOutcome::Conflict {
                        name: change.name.clone(),
                        current,
                    });
                }
            }
            for change in &changes {
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
                .map_err(|e| sql_err(&e, "committing"))?;
            }
            for entry in &log {
                tx.execute(
                    "INSERT INTO log (session, uid, record) VALUES (?1, ?2, ?3)",
                    params![session, entry.table_uid, entry.record.as_ref()],
                )
                .map_err(|e| sql_err(&e, "committing"))?;
            }
            tx.execute(
                "UPDATE sessions SET last = ?2 WHERE id = ?1",
                params![session, now_ms],
            )
            .map_err(|e| sql_err(&e, "committing"))?;
            tx.commit().map_err(|e| sql_err(&e, "committing"))?;
            Ok(CasOutcome::Applied)
        })
        .await
    }

    async fn read_log(&self, session: &str, table_uid: &str) -> Result<Vec<Bytes>> {
        let session = session.to_string();
        let uid = table_uid.to_string();
        self.with_conn(move |_, conn| {
            let mut stmt = conn
                .prepare("SELECT record FROM log WHERE session = ?1 AND uid = ?2 ORDER BY seq")
                .map_err(|e| sql_err(&e, "reading the log"))?;
            let rows = stmt
                .query_map(params![session, uid], |r| {
                    Ok(Bytes::from(r.get::<_, Vec<u8>>(0)?))
                })
                .map_err(|e| sql_err(&e, "reading the log"))?;
            rows.collect::<std::result::Result<_, _>>()
                .map_err(|e| sql_err(&e, "reading the log"))
        })
        .await
    }

    async fn put_blobs(
        &self,
        session: &str,
        blobs: Vec<(String, Blob)>,
        now_ms: i64,
    ) -> Result<()> {
        let session = session.to_string();
        // Files first, each durable, outside any transaction...
        let written = {
            let session = session.clone();
            self.off_runtime(move |this| {
                blobs
                    .into_iter()
                    .map(|(id, blob)| {
                        let Blob::Bytes(bytes) = blob else {
                            return Err(StoreError::Internal(
                                "the sqlite backend stores encoded blobs only".into(),
                            ));
                        };
                        let file = this.write_blob_file(&session, &id, &bytes)?;
                        Ok((id, file, bytes.len() as i64))
                    })
                    .collect::<Result<Vec<_>>>()
                    .inspect(|_| {
                        // Make the renames durable before the rows that point at them.
                        let _ =
                            fs::File::open(this.session_dir(&session)).and_then(|d| d.sync_all());
                    })
            })
            .await?
        };
        // ...then one short transaction for their rows.
        let redundant = {
            let session = session.clone();
            let written = written.clone();
            self.with_conn(move |_, conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(|e| sql_err(&e, "storing blobs"))?;
                if live_session(&tx, &session, now_ms)?.is_none() {
                    return Err(StoreError::SessionNotFound { id: session });
                }
                let mut redundant = Vec::new();
                for (id, file, size) in &written {
                    let inserted = tx
                        .execute(
                            "INSERT OR IGNORE INTO blobs (session, id, file, size, touched)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                            params![session, id, file, size, now_ms],
                        )
                        .map_err(|e| sql_err(&e, "storing blobs"))?;
                    if inserted == 0 {
                        tx.execute(
                            "UPDATE blobs SET touched = ?3 WHERE session = ?1 AND id = ?2",
                            params![session, id, now_ms],
                        )
                        .map_err(|e| sql_err(&e, "storing blobs"))?;
                        redundant.push(file.clone());
                    }
                }
                tx.commit().map_err(|e| sql_err(&e, "storing blobs"))?;
                Ok(redundant)
            })
            .await
        };
        let dir = self.session_dir(&session);
        match redundant {
            Ok(files) => {
                for file in files {
                    let _ = fs::remove_file(dir.join(file));
                }
                Ok(())
            }
            Err(e) => {
                for (_, file, _) in written {
                    let _ = fs::remove_file(dir.join(file));
                }
                Err(e)
            }
        }
    }

    async fn touch_blobs(&self, session: &str, ids: &[String], now_ms: i64) -> Result<Vec<bool>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let session = session.to_string();
        let ids = ids.to_vec();
        self.with_conn(move |_, conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| sql_err(&e, "touching blobs"))?;
            let mut present = Vec::with_capacity(ids.len());
            {
                let mut stmt = tx
                    .prepare_cached("UPDATE blobs SET touched = ?3 WHERE session = ?1 AND id = ?2")
                    .map_err(|e| sql_err(&e, "touching blobs"))?;
                for id in &ids {
                    let n = stmt
                        .execute(params![session, id, now_ms])
                        .map_err(|e| sql_err(&e, "touching blobs"))?;
                    present.push(n > 0);
                }
            }
            tx.commit().map_err(|e| sql_err(&e, "touching blobs"))?;
            Ok(present)
        })
        .await
    }

    async fn get_blobs(&self, session: &str, ids: &[String]) -> Result<Vec<Option<Blob>>> {
        let session_s = session.to_string();
        let ids_v = ids.to_vec();
        let files: Vec<Option<String>> = self
            .with_conn(move |_, conn| {
                let mut stmt = conn
                    .prepare_cached("SELECT file FROM blobs WHERE session = ?1 AND id = ?2")
                    .map_err(|e| sql_err(&e, "reading blobs"))?;
                ids_v
                    .iter()
                    .map(|id| {
                        stmt.query_row(params![session_s, id], |r| r.get(0))
                            .optional()
                            .map_err(|e| sql_err(&e, "reading blobs"))
                    })
                    .collect()
            })
            .await?;
        let dir = self.session_dir(session);
        self.off_runtime(move |_| {
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

    async fn list_blobs(&self, session: &str) -> Result<Vec<BlobInfo>> {
        let session = session.to_string();
        self.with_conn(move |_, conn| {
            let mut stmt = conn
                .prepare("SELECT id, size, touched FROM blobs WHERE session = ?1")
                .map_err(|e| sql_err(&e, "listing blobs"))?;
            let rows = stmt
                .query_map(params![session], |r| {
                    Ok(BlobInfo {
                        id: r.get(0)?,
                        size: r.get::<_, i64>(1)? as u64,
                        touched_ms: r.get(2)?,
                    })
                })
                .map_err(|e| sql_err(&e, "listing blobs"))?;
            rows.collect::<std::result::Result<_, _>>()
                .map_err(|e| sql_err(&e, "listing blobs"))
        })
        .await
    }

    async fn delete_blobs(
        &self,
        session: &str,
        ids: &[String],
        untouched_before_ms: i64,
    ) -> Result<u64> {
        let session_s = session.to_string();
        let ids = ids.to_vec();
        let (files, freed) = self
            .with_conn(move |_, conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(|e| sql_err(&e, "deleting blobs"))?;
                let mut files = Vec::new();
                let mut freed = 0u64;
                for id in &ids {
                    let row: Option<(String, i64)> = tx
                        .query_row(
                            "DELETE FROM blobs WHERE session = ?1 AND id = ?2 AND touched < ?3
                             RETURNING file, size",
                            params![session_s, id, untouched_before_ms],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )
                        .optional()
                        .map_err(|e| sql_err(&e, "deleting blobs"))?;
                    if let Some((file, size)) = row {
                        files.push(file);
                        freed += size as u64;
                    }
                }
                tx.commit().map_err(|e| sql_err(&e, "deleting blobs"))?;
                Ok((files, freed))
            })
            .await?;
        // Files go after their rows: a crash in between leaves orphans for the
        // sweep, never a row without its file. File names are unique per write,
        // so a concurrent re-put of the same id is a different file.
        let dir = self.session_dir(session);
        self.off_runtime(move |_| {
            for file in files {
                let _ = fs::remove_file(dir.join(file));
            }
            Ok(())
        })
        .await?;
        Ok(freed)
    }
}
