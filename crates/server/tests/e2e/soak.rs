//! A bounded concurrency soak: four server processes on one store, several
//! clients each, doing random commits, undos, redos, renames, deletes and
//! re-creations of caller-chosen session ids. Afterwards every table's head
//! loads, every version the stacks keep has all its data, and every
//! acknowledged change is in its table's history (unless a delete of its
//! session may have come after it).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dfmcp_storage::backend::Blob;
use dfmcp_storage::model::Manifest;
use dfmcp_storage::{Backend, RedisBackend, RedisConfig, SqliteBackend, Store, StoreConfig};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tests::mcp::{Server, Storage, text};

use crate::{bin, write};

const PROCESSES: usize = 4;
const CLIENTS_PER_PROCESS: usize = 3;
const DURATION: Duration = Duration::from_secs(12);
const SESSIONS: [&str; 3] = ["soak-a", "soak-b", "soak-c"];

#[derive(Default)]
struct Journal {
    /// (session, op id, sent, acknowledged) of changes that made a version.
    commits: Vec<(String, String, Instant, Instant)>,
    /// (session, sent, acknowledged) of session deletions.
    deletes: Vec<(String, Instant, Instant)>,
    calls: usize,
    give_ups: usize,
    /// Every call: (session, what, sent, acknowledged), for failure reports.
    trace: Vec<(String, String, Instant, Instant)>,
}

fn acceptable(error: &str) -> bool {
    [
        "does not exist",
        "not found",
        "nothing to",
        "already exists",
        "no rows",
        "past the end",
        // An undo or redo whose head another client moved first is refused.
        "nothing was changed",
    ]
    .iter()
    .any(|ok| error.contains(ok))
}

async fn client(server: &Server, csv: String, journal: Arc<Mutex<Journal>>, seed: u64) {
    let started = Instant::now();
    let deadline = started + DURATION;
    // Sessions are deleted in the first two thirds only: what is committed
    // afterwards must all be found in the histories.
    let deleting_until = started + DURATION * 2 / 3;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    while Instant::now() < deadline {
        // Agents think between calls; it also keeps each table's log under
        // its trimming bound, so the final check sees every record.
        tokio::time::sleep(Duration::from_millis(rng.random_range(5..25))).await;
        let session = SESSIONS[rng.random_range(0..SESSIONS.len())];
        let table = if rng.random_bool(0.5) { "t" } else { "u" };
        let request = uuid::Uuid::new_v4().to_string();
        let roll = rng.random_range(0..100);
        let (tool, args) = match roll {
            0..=24 => (
                "fill_missing",
                json!({ "session_id": session, "table": table, "columns": ["v"], "strategy": "constant", "value": rng.random_range(0..1000), "request_id": request }),
            ),
            25..=34 => (
                "sort_rows",
                json!({ "session_id": session, "table": table, "by": [{ "column": "v", "descending": rng.random_bool(0.5) }], "request_id": request }),
            ),
            35..=44 => (
                "cast_columns",
                json!({ "session_id": session, "table": table, "casts": { "v": if rng.random_bool(0.5) { "float64" } else { "int64" } }, "request_id": request }),
            ),
            45..=59 => (
                "undo",
                json!({ "session_id": session, "table": table, "steps": rng.random_range(1..3), "request_id": request }),
            ),
            60..=69 => (
                "redo",
                json!({ "session_id": session, "table": table, "request_id": request }),
            ),
            70..=74 => (
                "rename_table",
                json!({ "session_id": session, "table": table, "new_name": if table == "t" { "u" } else { "t" } }),
            ),
            75..=77 if Instant::now() < deleting_until => {
                ("delete_session", json!({ "session_id": session }))
            }
            79..=89 => (
                "initialize_data_table",
                json!({ "session_id": session, "file_path": csv, "table_name": table }),
            ),
            _ => (
                "preview_rows",
                json!({ "session_id": session, "table": table }),
            ),
        };
        let sent = Instant::now();
        let result = server.call(tool, args).await;
        let acked = Instant::now();
        let mut journal = journal.lock().unwrap();
        journal.calls += 1;
        let body = text(&result);
        journal.trace.push((
            session.into(),
            format!(
                "{tool} {table} {} {}",
                request,
                body.chars().take(120).collect::<String>()
            ),
            sent,
            acked,
        ));
        if result.is_error == Some(true) {
            assert!(
                !body.contains("damaged") && !body.contains("internal error"),
                "{tool}: {body}"
            );
            if body.contains("kept being changed") {
                journal.give_ups += 1;
            } else {
                assert!(acceptable(&body), "{tool}: unexpected error: {body}");
            }
            continue;
        }
        let value = result.structured_content.clone().unwrap_or(Value::Null);
        match tool {
            "delete_session" => journal.deletes.push((session.into(), sent, acked)),
            "fill_missing" | "sort_rows" | "cast_columns"
                if value["changed"] == true && value["already_applied"] != true =>
            {
                journal
                    .commits
                    .push((session.into(), format!("r:{request}"), sent, acked))
            }
            _ => {}
        }
    }
}

async fn soak(storage: Storage, open: impl Fn() -> Arc<dyn Backend>) {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,v\n");
    for i in 0..200 {
        if i % 5 == 0 {
            csv.push_str(&format!("{i},\n"));
        } else {
            csv.push_str(&format!("{i},{i}\n"));
        }
    }
    let csv = write(dir.path(), "soak.csv", &csv);
    let mut servers = Vec::new();
    for _ in 0..PROCESSES {
        servers.push(Server::start(bin(), &storage, dir.path(), &[]).await);
    }
    let journal = Arc::new(Mutex::new(Journal::default()));
    let mut work = Vec::new();
    for (p, server) in servers.iter().enumerate() {
        for c in 0..CLIENTS_PER_PROCESS {
            work.push(client(
                server,
                csv.clone(),
                journal.clone(),
                (p * 100 + c) as u64,
            ));
        }
    }
    futures::future::join_all(work).await;
    for server in servers {
        server.stop().await;
    }
    let journal = Arc::try_unwrap(journal).ok().unwrap().into_inner().unwrap();
    assert!(
        journal.calls > 100,
        "only {} calls in the soak",
        journal.calls
    );
    assert_eq!(journal.give_ups, 0, "writers gave up on contention");

    // Every table of every session loads; every version kept has its data.
    let backend = open();
    let store = Store::new(backend.clone(), StoreConfig::default());
    let now = dfmcp_storage::now_ms();
    let mut logged: HashSet<(String, String)> = HashSet::new();
    for session in SESSIONS {
        let Ok(tables) = store.list_tables(session).await else {
            continue;
        };
        for table in tables {
            let loaded = store.load(session, &table.name).await.unwrap();
            assert_eq!(loaded.df.height() as u64, table.rows);
            let (_, state) = store.table_state(session, &table.name).await.unwrap();
            let manifests: Vec<String> = std::iter::once(&state.head)
                .chain(&state.undo)
                .chain(&state.redo)
                .map(|v| v.manifest.clone())
                .collect();
            for id in manifests {
                let blob = backend
                    .get_blobs(session, std::slice::from_ref(&id), now)
                    .await
                    .unwrap();
                let Some(Blob::Bytes(bytes)) = blob.into_iter().next().flatten() else {
                    panic!("{session}/{}: manifest {id} is missing", table.name);
                };
                let manifest: Manifest = serde_json::from_slice(&bytes).unwrap();
                let parts: Vec<String> = manifest.blob_ids().map(str::to_string).collect();
                let present = backend.get_blobs(session, &parts, now).await.unwrap();
                assert!(
                    present.iter().all(Option::is_some),
                    "{session}/{}: a part of {id} is missing",
                    table.name
                );
            }
            let history = store.history(session, &table.name).await.unwrap();
            assert!(
                !history.trimmed,
                "{session}/{}: the log was trimmed; the soak is too busy to check every change",
                table.name
            );
            for entry in history.versions {
                if let Some(op) = entry.record.op_id {
                    logged.insert((session.to_string(), op));
                }
            }
        }
    }
    let mut checked = 0;
    for (session, op, sent, acked) in &journal.commits {
        let maybe_deleted_after = journal
            .deletes
            .iter()
            .any(|(s, _, d_acked)| s == session && d_acked > sent);
        if maybe_deleted_after {
            continue;
        }
        checked += 1;
        if !logged.contains(&(session.clone(), op.clone())) {
            let start = journal.trace[0].2;
            let around: Vec<String> = journal
                .trace
                .iter()
                .filter(|(s, _, t_sent, t_acked)| {
                    s == session
                        && *t_acked + Duration::from_millis(300) > *sent
                        && *t_sent < *acked + Duration::from_millis(300)
                })
                .map(|(_, what, t_sent, t_acked)| {
                    format!(
                        "{:>6}..{:>6} ms {what}",
                        (*t_sent - start).as_millis(),
                        (*t_acked - start).as_millis()
                    )
                })
                .collect();
            panic!(
                "an acknowledged change of {session} ({op}) is not in any history; calls around it:\n{}",
                around.join("\n")
            );
        }
    }
    assert!(checked > 0, "no acknowledged change could be checked");
    eprintln!(
        "soak: {} calls, {} changes acknowledged, {checked} checked in the histories, {} session deletions",
        journal.calls,
        journal.commits.len(),
        journal.deletes.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_on_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let open = {
        let data = data.clone();
        move || -> Arc<dyn Backend> { Arc::new(SqliteBackend::open(&data).unwrap()) }
    };
    soak(Storage::Embedded(data), open).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_on_redis() {
    let url = tests::redis::redis_url();
    let prefix = tests::redis::random_prefix();
    let open = {
        let (url, prefix) = (url.clone(), prefix.clone());
        move || -> Arc<dyn Backend> {
            let mut config = RedisConfig::new(url.clone());
            config.prefix = prefix.clone();
            Arc::new(RedisBackend::single(&config).unwrap())
        }
    };
    soak(Storage::Redis { url, prefix }, open).await;
}
