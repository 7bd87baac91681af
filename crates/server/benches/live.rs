//! How soon a subscriber hears another process's change, and what watching
//! costs: two server processes on one store (embedded, Redis), a client of A
//! subscribed to tables, a client of B changing them.
//!
//!   cargo bench -p dataframe-mcp --bench live [-- ROUNDS]
//!
//! Prints, per store, the latency from B's answer to A's notification
//! (median, p95, max over the rounds), and the store reads per second the
//! watcher makes for a number of subscribed tables.

// The legacy resources/subscribe is what clients of every revision before
// 2026-07-28 use.
#![allow(deprecated)]
// A benchmark prints its table.
#![allow(clippy::print_stdout)]

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::SubscribeRequestParams;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::json;
use tests::mcp::{Server, Storage};
use tokio::process::Command;

#[derive(Clone, Default)]
struct Heard(Arc<Mutex<Vec<(String, Instant)>>>);

impl rmcp::ClientHandler for Heard {
    fn on_resource_updated(
        &self,
        params: rmcp::model::ResourceUpdatedNotificationParam,
        _context: rmcp::service::NotificationContext<RoleClient>,
    ) -> impl std::future::Future<Output = ()> + Send + '_ {
        self.0.lock().unwrap().push((params.uri, Instant::now()));
        std::future::ready(())
    }
}

fn bin() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_dataframe-mcp"))
}

async fn measure(name: &str, storage: Storage, rounds: usize, tables: usize) {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.csv");
    std::fs::write(&csv, "id,price\n1,\n2,3.5\n3,\n").unwrap();
    let b = Server::start(bin(), &storage, dir.path(), &[]).await;
    let loaded = b
        .ok(
            "initialize_data_table",
            json!({ "file_path": csv, "table_name": "t0" }),
        )
        .await;
    let session = loaded["session_id"].as_str().unwrap().to_string();
    for i in 1..tables {
        b.ok(
            "initialize_data_table",
            json!({ "file_path": csv, "session_id": session, "table_name": format!("t{i}") }),
        )
        .await;
    }
    let mut cmd = Command::new(bin());
    Server::configure(&mut cmd, Some(&storage), dir.path(), &[]);
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let heard = Heard::default();
    let a = heard.clone().serve(transport).await.unwrap();
    for i in 0..tables {
        a.subscribe(SubscribeRequestParams::new(format!(
            "dataframe://{session}/t{i}"
        )))
        .await
        .unwrap();
    }
    let mut latencies = Vec::new();
    for round in 0..rounds {
        let table = format!("t{}", round % tables);
        let uri = format!("dataframe://{session}/{table}");
        // Per table: a fill, then undo, redo, undo, …
        let step = if (round / tables) % 2 == 1 {
            "undo"
        } else {
            "redo"
        };
        // Alternate a fill and its undo/redo so every round moves the head.
        let args = json!({ "session_id": session, "table": table });
        if round < tables {
            b.ok(
                "fill_missing",
                json!({ "session_id": session, "table": table, "strategy": "zero" }),
            )
            .await;
        } else {
            b.ok(step, args).await;
        }
        let answered = Instant::now();
        let deadline = answered + Duration::from_secs(5);
        loop {
            let got = heard
                .0
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|(u, at)| *u == uri && *at >= answered)
                .map(|(_, at)| *at);
            if let Some(at) = got {
                latencies.push(at.duration_since(answered));
                break;
            }
            if Instant::now() > deadline {
                panic!("{name}: no notification within 5 s (round {round})");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // The next change lands at another point of the poll period
        // (spread over it, so the latencies sample the whole period).
        let jitter = (round as u64 * 97) % 250;
        tokio::time::sleep(Duration::from_millis(300 + jitter)).await;
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "| {name} | {tables} | {rounds} | {:.0} | {:.0} | {:.0} | {} |",
        ms(pick(0.5)),
        ms(pick(0.95)),
        ms(*latencies.last().unwrap()),
        // One head read per subscribed table per poll (250 ms).
        tables * 4
    );
    let _ = a.cancel().await;
    b.stop().await;
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(40);
    println!(
        "| store | subscribed tables | changes | median ms | p95 ms | max ms | head reads/s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for tables in [1, 20] {
        let dir = tempfile::tempdir().unwrap();
        measure("embedded", Storage::embedded(dir.path()), rounds, tables).await;
        measure("redis", Storage::redis(), rounds, tables).await;
    }
}
