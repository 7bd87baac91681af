//! Server processes: restarts, several processes on one store, Redis going
//! away, SIGKILL during commits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dfmcp_storage::{SqliteBackend, Store, StoreConfig};
use rand::Rng;
use serde_json::{Value, json};
use tests::mcp::{Server, Storage, text};
use tests::redis::{ControlledRedis, random_prefix};

use crate::{bin, ids, load_sales, price_of_row, with, write};

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

/// Stop the server, start a new one: the session, its history and undo are there.
async fn restart_keeps_sessions(storage: Storage) {
    let dir = tempfile::tempdir().unwrap();
    let first = Server::start(bin(), &storage, dir.path(), &[]).await;
    let session = load_sales(&first, dir.path()).await;
    let t = ids(&session, "sales");
    first
        .ok(
            "fill_missing",
            with(t.clone(), json!({ "strategy": "forward" })),
        )
        .await;
    first.ok("drop_duplicates", t.clone()).await;
    first.stop().await;

    let second = Server::start(bin(), &storage, dir.path(), &[]).await;
    let sessions = second.ok("list_sessions", json!({})).await;
    assert!(
        sessions["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["session_id"] == session)
    );
    let history = second.ok("get_history", t.clone()).await;
    assert_eq!(history["operations"].as_array().unwrap().len(), 3);
    assert_eq!(history["current_version"], 3);
    let undone = second.ok("undo", t.clone()).await;
    assert_eq!(
        undone["rows"], 5,
        "undoing drop_duplicates brings the duplicate back"
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_sessions_on_redis() {
    restart_keeps_sessions(Storage::redis()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_sessions_on_embedded() {
    let dir = tempfile::tempdir().unwrap();
    restart_keeps_sessions(Storage::embedded(dir.path())).await;
}

/// With no configuration but the data dir, a restarted server finds the
/// session: the embedded store is the default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_is_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_string_lossy().into_owned();
    let a = Server::start_raw(bin(), dir.path(), &["--data-dir", &data_arg]).await;
    let session = load_sales(&a, dir.path()).await;
    a.ok(
        "fill_missing",
        with(ids(&session, "sales"), json!({ "strategy": "backward" })),
    )
    .await;
    a.stop().await;
    let b = Server::start_raw(bin(), dir.path(), &["--data-dir", &data_arg]).await;
    let tables = b.ok("list_tables", json!({ "session_id": session })).await;
    assert_eq!(tables["tables"][0]["table"], "sales");
    assert_eq!(tables["tables"][0]["version"], 2);
    b.ok("undo", ids(&session, "sales")).await;
    b.stop().await;
    assert!(data.join("store.sqlite3").exists());
}

/// Two servers on one store: A loads, B fills, A sees it and undoes it.
async fn two_servers_share_state(storage: Storage) {
    let dir = tempfile::tempdir().unwrap();
    let a = Server::start(bin(), &storage, dir.path(), &[]).await;
    let b = Server::start(bin(), &storage, dir.path(), &[]).await;
    let session = load_sales(&a, dir.path()).await;
    let t = ids(&session, "sales");
    b.ok(
        "fill_missing",
        with(
            t.clone(),
            json!({ "columns": ["price"], "strategy": "constant", "value": 99 }),
        ),
    )
    .await;
    let preview = a.ok("preview_rows", t.clone()).await;
    assert_eq!(price_of_row(&preview, 1), json!(99.0));
    let undone = a.ok("undo", t.clone()).await;
    assert_eq!(
        undone["moved"][0],
        "Filled 1 missing value in price with constant 99"
    );
    let preview = b.ok("preview_rows", t.clone()).await;
    assert_eq!(price_of_row(&preview, 1), Value::Null);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_state_on_redis() {
    two_servers_share_state(Storage::redis()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_state_on_embedded() {
    let dir = tempfile::tempdir().unwrap();
    two_servers_share_state(Storage::embedded(dir.path())).await;
}

/// Two processes fill different columns of one table at the same time; both
/// changes are kept (the loser of the compare-and-set re-applies).
async fn concurrent_fills_from_two_processes(storage: Storage) {
    let dir = tempfile::tempdir().unwrap();
    let a = Server::start(bin(), &storage, dir.path(), &[]).await;
    let b = Server::start(bin(), &storage, dir.path(), &[]).await;
    let session = load_sales(&a, dir.path()).await;
    let t = ids(&session, "sales");
    for round in 0..5 {
        let (ra, rb) = tokio::join!(
            a.call(
                "fill_missing",
                with(
                    t.clone(),
                    json!({ "columns": ["price"], "strategy": "constant", "value": round })
                )
            ),
            b.call(
                "fill_missing",
                with(
                    t.clone(),
                    json!({ "columns": ["quantity"], "strategy": "constant", "value": round })
                )
            )
        );
        assert_ne!(ra.is_error, Some(true), "{}", text(&ra));
        assert_ne!(rb.is_error, Some(true), "{}", text(&rb));
        let summary = a.ok("get_table_summary", t.clone()).await;
        for c in summary["column_summaries"].as_array().unwrap() {
            assert_eq!(
                c["missing"], 0,
                "round {round}: {} lost its fill",
                c["name"]
            );
        }
        // Reset both columns for the next round.
        a.ok("undo", with(t.clone(), json!({ "steps": 2 }))).await;
    }
    let history = a.ok("get_history", t.clone()).await;
    assert_eq!(history["current_version"], 1);
    let discarded = history["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["status"] == "undone (redoable)" || o["status"] == "discarded")
        .count();
    assert_eq!(discarded, 10, "every fill was committed once");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_fills_from_two_processes_on_redis() {
    concurrent_fills_from_two_processes(Storage::redis()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_fills_from_two_processes_on_embedded() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_fills_from_two_processes(Storage::embedded(dir.path())).await;
}

/// Several server processes do read-modify-commit on one table at once, each
/// removing its own rows: a lost update would bring rows back. Every change
/// is kept and the history is linear.
async fn no_lost_updates_across_processes(storage: Storage) {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,v\n");
    for i in 0..100 {
        csv.push_str(&format!("{i},{}\n", i * 10));
    }
    let file = write(dir.path(), "rows.csv", &csv);
    let first = Server::start(bin(), &storage, dir.path(), &[]).await;
    let out = first
        .ok(
            "initialize_data_table",
            json!({ "file_path": file, "session_id": "race" }),
        )
        .await;
    assert_eq!(out["tables"][0]["rows"], 100);
    let mut servers = vec![first];
    for _ in 0..2 {
        servers.push(Server::start(bin(), &storage, dir.path(), &[]).await);
    }
    let per_process = 4;
    let work = servers.iter().enumerate().map(|(p, server)| async move {
        for k in 0..per_process {
            let id = p * 10 + k;
            let r = server
                .call("filter_rows", json!({ "session_id": "race", "table": "rows", "condition": format!("id <> {id}") }))
                .await;
            assert_ne!(r.is_error, Some(true), "process {p}: {}", text(&r));
        }
    });
    futures::future::join_all(work).await;
    let check = &servers[0];
    let removed: Vec<usize> = (0..servers.len())
        .flat_map(|p| (0..per_process).map(move |k| p * 10 + k))
        .collect();
    let q = check
        .ok("query_sql", json!({ "session_id": "race", "sql": "SELECT COUNT(*) AS n, SUM(v) AS total FROM rows" }))
        .await;
    let expected_total: usize = (0..100)
        .filter(|i| !removed.contains(i))
        .map(|i| i * 10)
        .sum();
    assert_eq!(q["rows"][0], json!([100 - removed.len(), expected_total]));
    let history = check
        .ok(
            "get_history",
            json!({ "session_id": "race", "table": "rows", "limit": 100 }),
        )
        .await;
    let versions: Vec<u64> = history["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, (1..=removed.len() as u64 + 1).collect::<Vec<_>>());
    assert!(
        history["operations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["status"] != "discarded")
    );
    for server in servers {
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_lost_updates_across_processes_on_redis() {
    no_lost_updates_across_processes(Storage::redis()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_lost_updates_across_processes_on_embedded() {
    let dir = tempfile::tempdir().unwrap();
    no_lost_updates_across_processes(Storage::embedded(dir.path())).await;
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
    let server = Server::start(bin(), &storage, dir.path(), &[]).await;
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
            Err(text(&r))
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

    let setup = Server::start(bin(), &storage, dir.path(), &[]).await;
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
        let mut server = Server::start(bin(), &storage, dir.path(), &[]).await;
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
        // A large response cap, so the whole history fits in one answer.
        let check = Server::start(
            bin(),
            &storage,
            dir.path(),
            &["--max-response-tokens", "200000"],
        )
        .await;
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
        for session in store.list_sessions("", 10_000).await.unwrap() {
            for table in store.list_tables(&session.id).await.unwrap() {
                let loaded = store.load(&session.id, &table.name).await.unwrap();
                assert_eq!(loaded.df.height() as u64, table.rows, "round {round}");
            }
        }
    }
}

/// Defect 10: with `--redis-fallback memory`, an unreachable Redis at start
/// runs the server on the in-memory store, and every result says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_fallback_runs_on_memory_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let port = tests::redis::free_port(false);
    let storage = Storage::Redis {
        url: format!("redis://127.0.0.1:{port}"),
        prefix: random_prefix(),
    };
    let server = Server::start(bin(), &storage, dir.path(), &["--redis-fallback", "memory"]).await;
    let file = write(dir.path(), "t.csv", "a,b\n1,2\n");
    let loaded = server
        .call("initialize_data_table", json!({ "file_path": file }))
        .await;
    assert_ne!(loaded.is_error, Some(true), "{}", text(&loaded));
    assert!(text(&loaded).contains("unreachable"), "{}", text(&loaded));
    let sessions = server.ok("list_sessions", json!({})).await;
    assert!(
        sessions["warning"].as_str().unwrap().contains("in-memory"),
        "{sessions}"
    );
    let health = server.ok("health", json!({})).await;
    assert_eq!(health["status"], "degraded");
    assert!(server.stderr_tail().contains("unreachable"));
    server.stop().await;
}
