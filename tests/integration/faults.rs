//! Faults at the store: Redis going away and coming back, data directories
//! from the future or unusable, secrets in URLs. (Faults of whole server
//! processes are in the server package's end-to-end tests.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use dfmcp_storage::{
    CommitOutcome, Edit, Intent, OpRecord, RedisBackend, RedisConfig, SqliteBackend, Store,
    StoreConfig, StoreError,
};
use polars::prelude::*;
use serde_json::json;

use crate::harness::{ControlledRedis, random_prefix};

fn frame(x: i64) -> DataFrame {
    df!("id" => [1i64, 2, 3], "x" => [x, x, x]).unwrap()
}

fn edit(df: DataFrame) -> Edit {
    Edit {
        df,
        meta: Default::default(),
        op: OpRecord::new("test", json!({}), "test"),
    }
}

/// Retries `f` until it succeeds or 20 s pass.
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{what} did not recover within 20 s: {e}"),
        }
    }
}

/// The store reports Redis being down as Unavailable, never panics, and works
/// again once Redis is back, without being rebuilt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_recovers_when_redis_returns() {
    let mut redis = ControlledRedis::start();
    let mut cfg = RedisConfig::new(redis.url());
    cfg.prefix = random_prefix();
    cfg.response_timeout = Duration::from_secs(2);
    cfg.connection_timeout = Duration::from_secs(1);
    let store = Store::new(
        Arc::new(RedisBackend::single(&cfg).unwrap()),
        StoreConfig::default(),
    );
    let sid = store.create_session(None).await.unwrap().id;
    store
        .create_table(&sid, "t", edit(frame(1)), &Intent::new())
        .await
        .unwrap();
    let base = store.load(&sid, "t").await.unwrap();

    redis.stop();
    for _ in 0..3 {
        let err = store.load(&sid, "t").await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    }
    let err = store
        .commit(&base, edit(frame(2)), &Intent::new())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    assert!(matches!(
        store.list_sessions("", 100).await,
        Err(StoreError::Unavailable { .. })
    ));

    redis.resume();
    let loaded = eventually("load", || async {
        store.load(&sid, "t").await.map_err(|e| e.to_string())
    })
    .await;
    assert_eq!(
        loaded.df.column("x").unwrap().get(0).unwrap(),
        AnyValue::Int64(1)
    );
    let outcome = store
        .commit(&loaded, edit(frame(3)), &Intent::new())
        .await
        .unwrap();
    assert!(matches!(outcome, CommitOutcome::Committed(_)));
    assert_eq!(store.history(&sid, "t").await.unwrap().versions.len(), 2);
}

/// A data directory written by a future, incompatible version is refused
/// with a message that says what to do.
#[test]
fn embedded_store_refuses_a_future_format() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteBackend::open(dir.path()).unwrap());
    let db = rusqlite::Connection::open(dir.path().join("store.sqlite3")).unwrap();
    db.execute("UPDATE meta SET value = '99' WHERE key = 'format'", [])
        .unwrap();
    drop(db);
    let err = SqliteBackend::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, StoreError::IncompatibleFormat { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("format 99"), "{err}");
}

/// A put that fails part-way leaves no file behind, whichever of the
/// embedded store's writers had already written theirs.
#[tokio::test]
async fn embedded_store_removes_the_files_of_a_failed_put() {
    use dfmcp_storage::backend::{Backend, Blob, SessionMeta};
    let dir = tempfile::tempdir().unwrap();
    let backend = SqliteBackend::open(dir.path()).unwrap();
    let now = 1_000_000;
    let meta = SessionMeta {
        id: "s".into(),
        created_ms: now,
        last_access_ms: now,
        ttl_ms: 3_600_000,
    };
    assert!(backend.create_session(&meta).await.unwrap());
    let mut blobs: Vec<(String, Blob)> = (0..30)
        .map(|i| (format!("p{i}"), Blob::Bytes(format!("part {i}").into())))
        .collect();
    // Not encoded bytes: the embedded store refuses it.
    blobs.insert(
        20,
        ("frame".into(), Blob::Frame(Series::new("x".into(), [1i64]))),
    );
    let err = backend.put_blobs("s", blobs, now).await.unwrap_err();
    assert!(err.to_string().contains("encoded blobs only"), "{err}");
    assert!(backend.list_blobs("s", now).await.unwrap().is_empty());
    let mut left = Vec::new();
    for sub in ["objects", "blobs", "tmp"] {
        let Ok(entries) = std::fs::read_dir(dir.path().join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                left.extend(
                    std::fs::read_dir(&path)
                        .unwrap()
                        .flatten()
                        .map(|e| e.path()),
                );
            } else {
                left.push(path);
            }
        }
    }
    assert!(left.is_empty(), "files left behind: {left:?}");
}

/// A file where the data directory should be is a clear error.
#[test]
fn embedded_store_explains_an_unusable_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let err = SqliteBackend::open(file.join("data")).unwrap_err();
    assert!(
        err.to_string().contains("cannot create data directory"),
        "{err}"
    );
}

/// Passwords in REDIS_URL never show up in errors or debug output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_passwords_stay_secret() {
    let url = crate::harness::redis_url().replacen("redis://", "redis://:s3cret-pw-9@", 1);
    let cfg = RedisConfig::new(url);
    let backend = RedisBackend::single(&cfg).unwrap();
    assert!(!format!("{backend:?}").contains("s3cret-pw-9"));
    let store = Store::new(Arc::new(backend), StoreConfig::default());
    let err = store.create_session(None).await.unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("s3cret-pw-9"), "{text}");
    assert!(text.contains("***"), "the URL is shown masked: {text}");
}
