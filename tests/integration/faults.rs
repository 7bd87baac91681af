//! Faults: Redis going away and coming back, processes killed mid-commit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dfmcp_storage::{
    Edit, OpRecord, RedisBackend, RedisConfig, SqliteBackend, Store, StoreConfig, StoreError,
};
use polars::prelude::*;
use rand::Rng;
use serde_json::json;

use crate::harness::{ControlledRedis, random_prefix};
use crate::mcp::{Server, Storage};

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
    store.create_table(&sid, "t", edit(frame(1))).await.unwrap();
    let base = store.load(&sid, "t").await.unwrap();

    redis.stop();
    for _ in 0..3 {
        let err = store.load(&sid, "t").await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
        assert!(err.to_string().contains("retry"), "{err}");
    }
    let err = store
        .commit(&base, edit(frame(2)), "op-down")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    assert!(matches!(
        store.list_sessions().await,
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
    store
        .commit(&loaded, edit(frame(3)), "op-up")
        .await
        .unwrap();
    assert_eq!(store.history(&sid, "t").await.unwrap().versions.len(), 2);
}

/// The same through the real server: tool calls fail with a clear isError
/// while Redis is down, the process stays up, and calls succeed afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_recovers_when_redis_returns() {
    let mut redis = ControlledRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::Redis {
        url: redis.url(),
        prefix: random_prefix(),
    };
    let server = Server::start(&storage, dir.path(), &[]).await;
    let csv = dir.path().join("t.csv");
    std::fs::write(&csv, "a,b\n1,\n2,3\n").unwrap();
    let out = server
        .ok("initialize_data_table", json!({ "file_path": csv }))
        .await;
    let session = out["session_id"].as_str().unwrap().to_string();
    let t = json!({ "session_id": session, "table": "t" });

    redis.stop();
    let e = server.err("preview_rows", t.clone()).await;
    assert!(e.contains("unavailable") && e.contains("retry"), "{e}");
    let e = server
        .err(
            "fill_missing",
            json!({ "session_id": session, "table": "t", "strategy": "zero" }),
        )
        .await;
    assert!(e.contains("unavailable"), "{e}");

    redis.resume();
    let preview = eventually("preview_rows", || async {
        let r = server.call("preview_rows", t.clone()).await;
        if r.is_error == Some(true) {
            Err(crate::mcp::text(&r))
        } else {
            Ok(r)
        }
    })
    .await;
    assert_eq!(preview.structured_content.unwrap()["total_rows"], 2);
    server
        .ok(
            "fill_missing",
            json!({ "session_id": session, "table": "t", "strategy": "zero" }),
        )
        .await;
    server.stop().await;
}

/// A server committing in a loop is killed with SIGKILL at random moments;
/// after each kill a fresh process finds every table loadable and every
/// history consistent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::embedded(dir.path());
    let csv = dir.path().join("t.csv");
    let mut content = String::from("id,price,qty\n");
    for i in 0..2000 {
        content.push_str(&format!(
            "{i},{},{}\n",
            if i % 7 == 0 {
                String::new()
            } else {
                format!("{}.5", i % 100)
            },
            i % 13
        ));
    }
    std::fs::write(&csv, content).unwrap();

    let setup = Server::start(&storage, dir.path(), &[]).await;
    let out = setup
        .ok(
            "initialize_data_table",
            json!({ "file_path": csv, "session_id": "crash" }),
        )
        .await;
    assert_eq!(out["tables"][0]["rows"], 2000);
    setup.stop().await;

    let mut rng = rand::rng();
    let rounds = 12;
    for round in 0..rounds {
        let mut server = Server::start(&storage, dir.path(), &[]).await;
        let t = json!({ "session_id": "crash", "table": "t" });
        // Keep the server busy committing from several client tasks.
        let calls = (0..40).map(|i| {
            let args = match i % 4 {
                0 => json!({ "session_id": "crash", "table": "t", "strategy": "constant", "value": i, "columns": ["price"] }),
                1 => json!({ "session_id": "crash", "table": "t", "by": [{ "column": "qty", "descending": i % 8 == 1 }] }),
                2 => json!({ "session_id": "crash", "table": "t", "casts": { "qty": if i % 8 == 2 { "float64" } else { "int64" } } }),
                _ => t.clone(),
            };
            let tool = ["fill_missing", "sort_rows", "cast_columns", "undo"][i % 4];
            (tool, args)
        });
        let kill_after = Duration::from_millis(rng.random_range(20..600));
        let work = async {
            for (tool, args) in calls {
                let _ = server.call(tool, args).await;
            }
        };
        let _ = tokio::time::timeout(kill_after, work).await;
        server.kill();

        // A fresh process: everything loads, the history is consistent.
        let check = Server::start(&storage, dir.path(), &[]).await;
        let preview = check.ok("preview_rows", t.clone()).await;
        assert_eq!(preview["total_rows"], 2000, "round {round}");
        let history = check
            .ok(
                "get_history",
                json!({ "session_id": "crash", "table": "t", "limit": 500 }),
            )
            .await;
        let ops = history["operations"].as_array().unwrap();
        let versions: Vec<u64> = ops.iter().map(|o| o["version"].as_u64().unwrap()).collect();
        let mut sorted = versions.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            versions, sorted,
            "round {round}: versions are unique and ordered"
        );
        let current: Vec<&serde_json::Value> =
            ops.iter().filter(|o| o["status"] == "current").collect();
        assert_eq!(
            current.len(),
            1,
            "round {round}: exactly one current version"
        );
        assert_eq!(current[0]["version"], history["current_version"]);
        check.stop().await;

        // And the store itself, opened directly: every head decodes.
        let store = Store::new(
            Arc::new(SqliteBackend::open(dir.path().join("data")).unwrap()),
            StoreConfig::default(),
        );
        for session in store.list_sessions().await.unwrap() {
            for table in store.list_tables(&session.id).await.unwrap() {
                let loaded = store.load(&session.id, &table.name).await.unwrap();
                assert_eq!(loaded.df.height() as u64, table.rows, "round {round}");
            }
        }
    }
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
    assert!(err.to_string().contains("upgrade dataframe-mcp"), "{err}");
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
