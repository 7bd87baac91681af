//! Store-level regression tests for defects found by review and hostile
//! probes (issue 9). Each names the defect it pins; each failed on the code
//! before the fix.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use dfmcp_storage::backend::{
    Backend, Blob, BlobInfo, Capabilities, CasOutcome, CasRequest, SessionMeta, TableRecord,
};
use dfmcp_storage::{
    CommitOutcome, Edit, Intent, ManualClock, MemoryBackend, OpRecord, RedisBackend, RedisConfig,
    SqliteBackend, Store, StoreConfig, StoreError, TableMeta,
};
use polars::prelude::*;

use crate::harness::random_prefix;

fn edit(df: DataFrame) -> Edit {
    Edit {
        df,
        meta: TableMeta::new(),
        op: OpRecord::new("test", serde_json::json!({}), "test"),
    }
}

/// Floats that do not compress: their parts are as large as the data.
fn noise(rows: usize, cols: usize, seed: u64) -> DataFrame {
    let columns: Vec<Column> = (0..cols)
        .map(|c| {
            let values: Vec<f64> = (0..rows)
                .map(|r| {
                    let x = (r as u64 + 1)
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add((c as u64 + seed).wrapping_mul(1_442_695_040_888_963_407));
                    f64::from_bits((x >> 12) | 0x3ff0_0000_0000_0000)
                })
                .collect();
            Column::new(format!("c{c}").into(), values)
        })
        .collect();
    DataFrame::new(rows, columns).unwrap()
}

/// Defect 1: deleting a session on the embedded store removed its blob
/// directory after the transaction, so a process that recreated the same id
/// in between lost its fresh files ("stored data is damaged: manifest … is
/// missing"). Two backends on one directory play the two processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_delete_racing_a_recreate_never_damages_the_new_session() {
    let dir = tempfile::tempdir().unwrap();
    let config = || StoreConfig {
        part_target_bytes: 16 * 1024,
        ..StoreConfig::default()
    };
    let deleter = Arc::new(Store::new(
        Arc::new(SqliteBackend::open(dir.path()).unwrap()),
        config(),
    ));
    let creator = Arc::new(Store::new(
        Arc::new(SqliteBackend::open(dir.path()).unwrap()),
        config(),
    ));
    let df = noise(20_000, 8, 1);
    let mut survived = 0;
    for round in 0..20 {
        let id = "same-id";
        let (_, _) = creator.open_session(id, true).await.unwrap();
        creator
            .create_table(id, "t", edit(df.clone()), &Intent::new())
            .await
            .unwrap();
        let d = {
            let deleter = deleter.clone();
            tokio::spawn(async move { deleter.delete_session(id).await })
        };
        let c = {
            let creator = creator.clone();
            let df = df.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    if creator.open_session(id, true).await?.1 {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                creator
                    .create_table(id, &format!("t{round}"), edit(df), &Intent::new())
                    .await
            })
        };
        let _ = d.await.unwrap();
        let created = c.await.unwrap();
        if created.is_ok() {
            // Whatever the interleaving, a table that was created loads from
            // disk (a fresh store has no cache).
            let reader = Store::new(Arc::new(SqliteBackend::open(dir.path()).unwrap()), config());
            match reader.load(id, &format!("t{round}")).await {
                Ok(loaded) => {
                    assert_eq!(loaded.df.height(), 20_000);
                    survived += 1;
                }
                Err(StoreError::SessionNotFound { .. } | StoreError::TableNotFound { .. }) => {}
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        let _ = creator.delete_session(id).await;
    }
    assert!(survived > 0, "no round exercised a recreated session");
}

/// Defect 8: every embedded read took a write transaction and an fsync to
/// refresh the TTL. Reads within the refresh interval now write nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_reads_do_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new());
    let store = Store::new(
        Arc::new(SqliteBackend::open(dir.path()).unwrap()),
        StoreConfig {
            clock: clock.clone(),
            ..StoreConfig::default()
        },
    );
    let sid = store.create_session(None).await.unwrap().id;
    store
        .create_table(&sid, "t", edit(noise(10, 2, 1)), &Intent::new())
        .await
        .unwrap();
    let watcher = rusqlite::Connection::open(dir.path().join("store.sqlite3")).unwrap();
    let version = || -> i64 {
        watcher
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .unwrap()
    };
    let before = version();
    for _ in 0..5 {
        clock.advance(Duration::from_secs(1));
        store.load(&sid, "t").await.unwrap();
        store.list_tables(&sid).await.unwrap();
    }
    assert_eq!(version(), before, "reads committed writes");
    // Past the interval, a read refreshes the session once.
    clock.advance(Duration::from_secs(120));
    store.load(&sid, "t").await.unwrap();
    assert_ne!(version(), before);
}

/// Defect 9: when reused parts had vanished (collected while the base
/// version stayed cached), the re-encoded parts were written but the
/// manifest kept the old references.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_parts_are_written_again_and_referenced() {
    let backend = Arc::new(MemoryBackend::new());
    let clock = Arc::new(ManualClock::new());
    let store = Store::new(
        backend.clone(),
        StoreConfig {
            clock: clock.clone(),
            ..StoreConfig::default()
        },
    );
    let sid = store.create_session(None).await.unwrap().id;
    let df = df!("a" => [1i64, 2, 3], "b" => ["x", "y", "z"]).unwrap();
    store
        .create_table(&sid, "t", edit(df), &Intent::new())
        .await
        .unwrap();
    let base = store.load(&sid, "t").await.unwrap();
    // Everything stored goes, behind the store's back.
    let ids: Vec<String> = backend
        .list_blobs(&sid, clock.now_ms())
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    backend.delete_blobs(&sid, &ids, i64::MAX).await.unwrap();
    let mut changed = base.df.clone();
    changed
        .with_column(Column::new("a".into(), [10i64, 20, 30]))
        .unwrap();
    let outcome = store
        .commit(&base, edit(changed.clone()), &Intent::new())
        .await
        .unwrap();
    assert!(matches!(outcome, CommitOutcome::Committed(_)));
    let fresh = Store::new(backend.clone(), StoreConfig::default());
    let loaded = fresh.load(&sid, "t").await.unwrap();
    assert!(loaded.df.equals_missing(&changed));
}

use dfmcp_storage::Clock;

/// Defect 2: requests and replies over the backend's limit (hosted Redis
/// refuses requests over 10 MB). A Redis that refuses anything over 1 MB,
/// both ways, stores, loads and copies a 10 MB table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_requests_and_replies_stay_under_the_limit() {
    let (port, _server) = tokio::task::spawn_blocking(|| {
        tests::redis::redis_with_args(&[
            "--proto-max-bulk-len",
            "1mb",
            "--client-query-buffer-limit",
            "1mb",
            "--client-output-buffer-limit",
            "normal 1mb 1mb 0",
        ])
    })
    .await
    .unwrap();
    let mut cfg = RedisConfig::new(format!("redis://127.0.0.1:{port}"));
    cfg.prefix = random_prefix();
    cfg.max_request_bytes = 900 * 1024;
    let backend: Arc<dyn Backend> = Arc::new(RedisBackend::single(&cfg).unwrap());
    let store = Store::new(backend.clone(), StoreConfig::default());
    let sid = store.create_session(None).await.unwrap().id;
    let df = noise(160_000, 8, 3);
    store
        .create_table(&sid, "big", edit(df.clone()), &Intent::new())
        .await
        .unwrap();
    let fresh = Store::new(backend.clone(), StoreConfig::default());
    assert!(
        fresh
            .load(&sid, "big")
            .await
            .unwrap()
            .df
            .equals_missing(&df)
    );
    let other = store.create_session(None).await.unwrap().id;
    store
        .copy_table(&sid, "big", &other, "copy", &Intent::new())
        .await
        .unwrap();
    let fresh = Store::new(backend, StoreConfig::default());
    assert!(
        fresh
            .load(&other, "copy")
            .await
            .unwrap()
            .df
            .equals_missing(&df)
    );
}

/// A backend that fails every listing of one session's tables.
#[derive(Debug)]
struct FailingFor {
    inner: MemoryBackend,
    session: std::sync::Mutex<String>,
}

#[async_trait]
impl Backend for FailingFor {
    fn name(&self) -> &'static str {
        "failing"
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn create_session(&self, meta: &SessionMeta) -> dfmcp_storage::Result<bool> {
        self.inner.create_session(meta).await
    }
    async fn open(
        &self,
        session: &str,
        table: Option<&str>,
        now_ms: i64,
    ) -> dfmcp_storage::Result<Option<(SessionMeta, Option<TableRecord>)>> {
        self.inner.open(session, table, now_ms).await
    }
    async fn list_sessions(
        &self,
        namespace: &str,
        limit: usize,
        now_ms: i64,
    ) -> dfmcp_storage::Result<Vec<SessionMeta>> {
        self.inner.list_sessions(namespace, limit, now_ms).await
    }
    async fn delete_session(&self, session: &str, now_ms: i64) -> dfmcp_storage::Result<bool> {
        self.inner.delete_session(session, now_ms).await
    }
    async fn purge_expired(&self, now_ms: i64) -> dfmcp_storage::Result<Vec<String>> {
        self.inner.purge_expired(now_ms).await
    }
    async fn take_token(
        &self,
        bucket: &str,
        per_second: f64,
        burst: f64,
        now_ms: i64,
    ) -> dfmcp_storage::Result<dfmcp_storage::Throttle> {
        self.inner
            .take_token(bucket, per_second, burst, now_ms)
            .await
    }
    async fn list_tables(
        &self,
        session: &str,
        now_ms: i64,
    ) -> dfmcp_storage::Result<Option<Vec<TableRecord>>> {
        if *self.session.lock().unwrap() == session {
            return Err(StoreError::Corrupt("injected failure".into()));
        }
        self.inner.list_tables(session, now_ms).await
    }
    async fn cas_tables(
        &self,
        session: &str,
        request: &CasRequest,
        now_ms: i64,
    ) -> dfmcp_storage::Result<CasOutcome> {
        self.inner.cas_tables(session, request, now_ms).await
    }
    async fn read_log(
        &self,
        session: &str,
        table_uid: &str,
        limit: usize,
        now_ms: i64,
    ) -> dfmcp_storage::Result<Vec<Bytes>> {
        self.inner.read_log(session, table_uid, limit, now_ms).await
    }
    async fn put_blobs(
        &self,
        session: &str,
        blobs: Vec<(String, Blob)>,
        now_ms: i64,
    ) -> dfmcp_storage::Result<()> {
        self.inner.put_blobs(session, blobs, now_ms).await
    }
    async fn touch_blobs(
        &self,
        session: &str,
        ids: &[String],
        now_ms: i64,
    ) -> dfmcp_storage::Result<Vec<bool>> {
        self.inner.touch_blobs(session, ids, now_ms).await
    }
    async fn get_blobs(
        &self,
        session: &str,
        ids: &[String],
        now_ms: i64,
    ) -> dfmcp_storage::Result<Vec<Option<Blob>>> {
        self.inner.get_blobs(session, ids, now_ms).await
    }
    async fn list_blobs(&self, session: &str, now_ms: i64) -> dfmcp_storage::Result<Vec<BlobInfo>> {
        self.inner.list_blobs(session, now_ms).await
    }
    async fn delete_blobs(
        &self,
        session: &str,
        ids: &[String],
        untouched_before_ms: i64,
    ) -> dfmcp_storage::Result<u64> {
        self.inner
            .delete_blobs(session, ids, untouched_before_ms)
            .await
    }
}

/// Defect 7: maintenance forgot every due session after the first error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_goes_on_after_a_failing_session() {
    let backend = Arc::new(FailingFor {
        inner: MemoryBackend::new(),
        session: std::sync::Mutex::new(String::new()),
    });
    let clock = Arc::new(ManualClock::new());
    let store = Store::new(
        backend.clone(),
        StoreConfig {
            clock: clock.clone(),
            history_limit: 1,
            gc_grace: Duration::from_secs(10),
            ..StoreConfig::default()
        },
    );
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let sid = store.create_session(None).await.unwrap().id;
        store
            .create_table(&sid, "t", edit(noise(100, 2, 1)), &Intent::new())
            .await
            .unwrap();
        for seed in 2..5 {
            let base = store.load(&sid, "t").await.unwrap();
            store
                .commit(&base, edit(noise(100, 2, seed)), &Intent::new())
                .await
                .unwrap();
        }
        sessions.push(sid);
    }
    *backend.session.lock().unwrap() = sessions[0].clone();
    clock.advance(Duration::from_secs(11));
    let before = store.usage(&sessions[1]).await.unwrap().blobs;
    let report = store.maintain().await.unwrap();
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(store.usage(&sessions[1]).await.unwrap().blobs < before);
    // The failed session is due again at the next pass.
    *backend.session.lock().unwrap() = String::new();
    clock.advance(Duration::from_secs(11));
    let before = store.usage(&sessions[0]).await.unwrap().blobs;
    let report = store.maintain().await.unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    assert!(store.usage(&sessions[0]).await.unwrap().blobs < before);
}
