//! Load benchmark of HTTP serving: prints tables, and fails only when a
//! correctness check fails (a lost update, a "not found" of a live session,
//! a read across principals).
//!
//! ```text
//! cargo bench -p dataframe-mcp --bench load                  # redis, cluster, outage
//! cargo bench -p dataframe-mcp --bench load -- redis         # one scenario
//! cargo bench -p dataframe-mcp --profile dev --bench load    # with the test build
//! LOAD_SECONDS=60 LOAD_CLIENTS=200 LOAD_PRINCIPALS=50 LOAD_INSTANCES=4 cargo bench …
//! ```
//!
//! Scenarios: `redis` (one throwaway redis-server, or `REDIS_URL`), `cluster`
//! (a local 3-node Redis Cluster, or `REDIS_CLUSTER_URLS`), `outage` (one
//! redis-server stopped for a few seconds mid-run). Each starts the server
//! binary `LOAD_INSTANCES` times over HTTP on loopback; `LOAD_CLIENTS`
//! clients of `LOAD_PRINCIPALS` principals send every request to a random
//! instance, looping upload → summary → fill → undo → redo → preview → query
//! (plus a sort of a table all clients of a principal share, and a read of
//! another principal's session) for `LOAD_SECONDS`. Afterwards the store is
//! read directly: every table's history must hold exactly its acknowledged
//! changes.

#![allow(clippy::print_stdout)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dfmcp_server::Caller;
use dfmcp_storage::{Backend, RedisBackend, RedisConfig, Store, StoreConfig};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tests::http::{HttpServer, http_client};
use tests::mcp::Storage;
use tests::redis::ControlledRedis;

const SESSION: &str = "load";
/// The name under which reads of another principal's session are reported.
const PROBE: &str = "list_tables of another's session";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Copy)]
struct Settings {
    seconds: u64,
    clients: usize,
    principals: usize,
    instances: usize,
}

/// What one call came to.
enum Outcome {
    Ok(Value),
    /// A tool error (isError), with its text.
    ToolError(String),
    /// An HTTP status other than 200, or no answer.
    Failed(String),
}

#[derive(Default)]
struct Stats {
    latencies: BTreeMap<&'static str, Vec<f64>>,
    errors: BTreeMap<String, u64>,
    cross_reads: u64,
    wrong_owner_rows: u64,
}

/// Per table: the operation ids of acknowledged changes, and whether some
/// change was sent without an answer (it may or may not have been applied).
#[derive(Default)]
struct Ledger {
    acked: HashMap<(String, String), HashSet<String>>,
    uncertain: HashSet<(String, String)>,
    /// Tables whose last acknowledged step was a redo of the fill.
    redone: HashSet<(String, String)>,
}

struct Instance {
    base: String,
}

struct Shared {
    http: reqwest::Client,
    instances: Vec<Instance>,
    stats: Mutex<Stats>,
    ledger: Mutex<Ledger>,
    ids: AtomicU64,
    /// Each principal's private (server-named) session, for cross-read probes.
    private_sessions: Mutex<Vec<(usize, String)>>,
}

fn token(principal: usize) -> String {
    format!("token-of-principal-{principal}-load")
}

fn principal_name(principal: usize) -> String {
    format!("p{principal}")
}

fn classify(text: &str) -> &'static str {
    if text.contains("unavailable") {
        "store unavailable"
    } else if text.contains("does not exist") || text.contains("not found") {
        "not found"
    } else if text.contains("kept being changed") {
        "contention give-up"
    } else if text.contains("nothing to") || text.contains("nothing was changed") {
        "nothing to undo/redo"
    } else {
        "other tool error"
    }
}

impl Shared {
    fn instance(&self, rng: &mut impl Rng) -> &Instance {
        self.instances.choose(rng).expect("instances")
    }

    fn record(&self, tool: &'static str, started: Instant, outcome: &Outcome) {
        let mut stats = self.stats.lock().unwrap();
        stats
            .latencies
            .entry(tool)
            .or_default()
            .push(started.elapsed().as_secs_f64() * 1000.0);
        match outcome {
            Outcome::Ok(_) => {}
            // The probe of another principal's session must find nothing.
            Outcome::ToolError(text) if tool == PROBE && classify(text) == "not found" => {}
            Outcome::ToolError(text) => {
                *stats
                    .errors
                    .entry(format!("{tool}: {}", classify(text)))
                    .or_default() += 1;
                let seen = stats.errors[&format!("{tool}: {}", classify(text))];
                if classify(text) == "other tool error" && seen <= 3 {
                    eprintln!("{tool}: {text}");
                }
            }
            Outcome::Failed(why) => {
                *stats.errors.entry(format!("{tool}: {why}")).or_default() += 1;
            }
        }
    }

    /// One MCP tool call as a stateless JSON-RPC POST (as a load balancer
    /// sees them), to a random instance.
    async fn call(
        &self,
        rng: &mut impl Rng,
        principal: usize,
        tool: &'static str,
        arguments: Value,
    ) -> Outcome {
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let body = json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {
                "name": if tool == PROBE { "list_tables" } else { tool },
                "arguments": arguments
            }
        });
        let started = Instant::now();
        let response = self
            .http
            .post(format!("{}/mcp", self.instance(rng).base))
            .bearer_auth(token(principal))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .json(&body)
            .send()
            .await;
        let outcome = match response {
            Err(e) if e.is_timeout() => Outcome::Failed("timeout".into()),
            Err(_) => Outcome::Failed("no connection".into()),
            Ok(r) if r.status() != 200 => Outcome::Failed(format!("HTTP {}", r.status().as_u16())),
            Ok(r) => match r.json::<Value>().await {
                Err(_) => Outcome::Failed("unreadable answer".into()),
                Ok(answer) => {
                    if let Some(error) = answer.get("error") {
                        Outcome::Failed(format!("JSON-RPC error {}", error["code"]))
                    } else if answer["result"]["isError"] == true {
                        let text = answer["result"]["content"][0]["text"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string();
                        Outcome::ToolError(text)
                    } else {
                        Outcome::Ok(answer["result"]["structuredContent"].clone())
                    }
                }
            },
        };
        self.record(tool, started, &outcome);
        outcome
    }

    async fn upload(
        &self,
        rng: &mut impl Rng,
        principal: usize,
        query: &str,
        csv: &str,
    ) -> Outcome {
        let started = Instant::now();
        let response = self
            .http
            .post(format!(
                "{}/v1/files?filename=data.csv{query}",
                self.instance(rng).base
            ))
            .bearer_auth(token(principal))
            .body(csv.to_string())
            .send()
            .await;
        let outcome = match response {
            Err(_) => Outcome::Failed("no connection".into()),
            Ok(r) => {
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                match status {
                    200 => Outcome::Ok(body),
                    400 | 404 => Outcome::ToolError(body["error"].as_str().unwrap_or("").into()),
                    503 => Outcome::ToolError("store unavailable".into()),
                    other => Outcome::Failed(format!("HTTP {other}")),
                }
            }
        };
        self.record("upload", started, &outcome);
        outcome
    }
}

fn csv_of(principal: usize) -> String {
    let mut csv = String::from("id,owner,price,qty\n");
    for i in 0..200 {
        let price = if i % 7 == 0 {
            String::new()
        } else {
            format!("{}.5", i % 50)
        };
        csv.push_str(&format!(
            "{i},{},{price},{}\n",
            principal_name(principal),
            i % 9
        ));
    }
    csv
}

fn owners_ok(value: &Value, principal: usize) -> (bool, u64) {
    let Some(columns) = value["columns"].as_array() else {
        return (true, 0);
    };
    let Some(idx) = columns.iter().position(|c| c["name"] == "owner") else {
        return (true, 0);
    };
    let mut wrong = 0;
    for row in value["rows"].as_array().into_iter().flatten() {
        if row[idx] != json!(principal_name(principal)) {
            wrong += 1;
        }
    }
    (wrong == 0, wrong)
}

async fn client(shared: Arc<Shared>, number: usize, settings: Settings, until: Instant) {
    let principal = number % settings.principals;
    let mut rng = rand::rngs::StdRng::seed_from_u64(number as u64);
    let csv = csv_of(principal);
    let mut iteration = 0;
    while Instant::now() < until {
        iteration += 1;
        let table = format!("c{number}_{iteration}");
        let key = (principal_name(principal), table.clone());
        let upload_id = format!("u-{number}-{iteration}");
        let query = format!("&session_id={SESSION}&table_name={table}&request_id={upload_id}");
        match shared.upload(&mut rng, principal, &query, &csv).await {
            Outcome::Ok(_) => {
                let mut ledger = shared.ledger.lock().unwrap();
                ledger
                    .acked
                    .entry(key.clone())
                    .or_default()
                    .insert(format!("r:{upload_id}/0"));
            }
            _ => {
                shared.ledger.lock().unwrap().uncertain.insert(key.clone());
                continue;
            }
        }
        let t = json!({ "session_id": SESSION, "table": table });
        let with = |extra: Value| {
            let mut args = t.clone();
            if let (Some(a), Value::Object(e)) = (args.as_object_mut(), extra) {
                a.extend(e);
            }
            args
        };
        shared
            .call(&mut rng, principal, "get_table_summary", t.clone())
            .await;
        let fill_id = format!("f-{number}-{iteration}");
        let mut filled = false;
        match shared
            .call(
                &mut rng,
                principal,
                "fill_missing",
                with(json!({ "strategy": "zero", "columns": ["price"], "request_id": fill_id })),
            )
            .await
        {
            Outcome::Ok(v) if v["changed"] == true => {
                filled = true;
                let mut ledger = shared.ledger.lock().unwrap();
                ledger
                    .acked
                    .entry(key.clone())
                    .or_default()
                    .insert(format!("r:{fill_id}"));
            }
            Outcome::Ok(_) => {}
            _ => {
                shared.ledger.lock().unwrap().uncertain.insert(key.clone());
            }
        }
        if filled {
            let undone = shared
                .call(
                    &mut rng,
                    principal,
                    "undo",
                    with(json!({ "request_id": format!("un-{number}-{iteration}") })),
                )
                .await;
            let redone = shared
                .call(
                    &mut rng,
                    principal,
                    "redo",
                    with(json!({ "request_id": format!("re-{number}-{iteration}") })),
                )
                .await;
            let mut ledger = shared.ledger.lock().unwrap();
            match (undone, redone) {
                (Outcome::Ok(_), Outcome::Ok(_)) => {
                    ledger.redone.insert(key.clone());
                }
                _ => {
                    ledger.uncertain.insert(key.clone());
                }
            }
        }
        if let Outcome::Ok(v) = shared
            .call(
                &mut rng,
                principal,
                "preview_rows",
                with(json!({ "limit": 20 })),
            )
            .await
        {
            let (ok, wrong) = owners_ok(&v, principal);
            if !ok {
                let mut stats = shared.stats.lock().unwrap();
                stats.cross_reads += 1;
                stats.wrong_owner_rows += wrong;
            }
        }
        let sql =
            format!("SELECT owner, COUNT(*) AS n, SUM(price) AS total FROM {table} GROUP BY owner");
        if let Outcome::Ok(v) = shared
            .call(
                &mut rng,
                principal,
                "query_sql",
                json!({ "session_id": SESSION, "sql": sql }),
            )
            .await
        {
            let (ok, wrong) = owners_ok(&v["rows"], principal);
            if !ok {
                let mut stats = shared.stats.lock().unwrap();
                stats.cross_reads += 1;
                stats.wrong_owner_rows += wrong;
            }
        }
        // Contention: every client of the principal sorts one shared table.
        let sort_id = format!("s-{number}-{iteration}");
        let shared_key = (principal_name(principal), "shared".to_string());
        match shared
            .call(
                &mut rng,
                principal,
                "sort_rows",
                json!({ "session_id": SESSION, "table": "shared",
                        "by": [{ "column": "id", "descending": iteration % 2 == 1 }],
                        "request_id": sort_id }),
            )
            .await
        {
            Outcome::Ok(v) if v["changed"] == true => {
                let mut ledger = shared.ledger.lock().unwrap();
                ledger
                    .acked
                    .entry(shared_key)
                    .or_default()
                    .insert(format!("r:{sort_id}"));
            }
            Outcome::Ok(_) => {}
            _ => {
                shared.ledger.lock().unwrap().uncertain.insert(shared_key);
            }
        }
        // Another principal's private session must not exist for this one.
        let other = {
            let sessions = shared.private_sessions.lock().unwrap();
            sessions
                .iter()
                .filter(|(p, _)| *p != principal)
                .collect::<Vec<_>>()
                .choose(&mut rng)
                .map(|(_, s)| s.clone())
        };
        if let Some(other) = other
            && let Outcome::Ok(_) = shared
                .call(&mut rng, principal, PROBE, json!({ "session_id": other }))
                .await
        {
            shared.stats.lock().unwrap().cross_reads += 1;
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Verifies the store against the ledger; returns (tables checked, lost,
/// extra, wrong heads).
async fn verify(store: &Store, ledger: &Ledger) -> (usize, Vec<String>) {
    let mut problems = Vec::new();
    let mut checked = 0;
    for ((principal, table), acked) in &ledger.acked {
        let session = Caller::principal(principal)
            .stored(SESSION)
            .expect("session id");
        let history = match store.history(&session, table).await {
            Ok(h) => h,
            Err(e) => {
                problems.push(format!("{principal}/{table}: {e}"));
                continue;
            }
        };
        if history.trimmed {
            problems.push(format!("{principal}/{table}: log trimmed, cannot check"));
            continue;
        }
        checked += 1;
        let logged: HashSet<String> = history
            .versions
            .iter()
            .filter_map(|v| v.record.op_id.clone())
            .collect();
        for op in acked {
            if !logged.contains(op) {
                problems.push(format!("{principal}/{table}: acknowledged {op} is lost"));
            }
        }
        let key = (principal.clone(), table.clone());
        let seeded = table == "shared";
        if !ledger.uncertain.contains(&key) {
            let expected = acked.len() + usize::from(seeded);
            if history.versions.len() != expected {
                problems.push(format!(
                    "{principal}/{table}: {} versions in the history, {expected} acknowledged",
                    history.versions.len()
                ));
            }
            if ledger.redone.contains(&key) && history.current_version != 2 {
                problems.push(format!(
                    "{principal}/{table}: head at version {} after undo+redo, expected 2",
                    history.current_version
                ));
            }
        }
    }
    (checked, problems)
}

async fn run(scenario: &str, settings: Settings) -> bool {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_dataframe-mcp"));
    let mut controlled = None;
    let (storage, config) = match scenario {
        "cluster" => {
            let urls = tests::redis::redis_cluster_urls();
            let storage = Storage::redis_cluster(&urls);
            let Storage::RedisCluster { prefix, .. } = &storage else {
                unreachable!()
            };
            let mut config = RedisConfig::new(urls.clone());
            config.cluster = true;
            config.prefix = prefix.clone();
            (storage, config)
        }
        "outage" => {
            let redis = ControlledRedis::start();
            let storage = Storage::Redis {
                url: redis.url(),
                prefix: tests::redis::random_prefix(),
            };
            controlled = Some(redis);
            let Storage::Redis { url, prefix } = &storage else {
                unreachable!()
            };
            let mut config = RedisConfig::new(url.clone());
            config.prefix = prefix.clone();
            (storage, config)
        }
        _ => {
            let storage = Storage::redis();
            let Storage::Redis { url, prefix } = &storage else {
                unreachable!()
            };
            let mut config = RedisConfig::new(url.clone());
            config.prefix = prefix.clone();
            (storage, config)
        }
    };
    let tokens: Vec<(String, String)> = (0..settings.principals)
        .map(|p| (principal_name(p), token(p)))
        .collect();
    let token_refs: Vec<(&str, &str)> = tokens
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let mut servers = Vec::new();
    for _ in 0..settings.instances {
        servers.push(
            HttpServer::start(
                bin,
                &storage,
                &token_refs,
                &["--rate-limit", "100000", "--rate-burst", "100000"],
            )
            .await,
        );
    }
    let shared = Arc::new(Shared {
        http: http_client(),
        instances: servers
            .iter()
            .map(|s| Instance { base: s.url("") })
            .collect(),
        stats: Mutex::new(Stats::default()),
        ledger: Mutex::new(Ledger::default()),
        ids: AtomicU64::new(1),
        private_sessions: Mutex::new(Vec::new()),
    });
    // Per principal: the shared table, and a private session.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for p in 0..settings.principals {
        let csv = csv_of(p);
        let query = format!("&session_id={SESSION}&table_name=shared&request_id=seed-{p}");
        assert!(matches!(
            shared.upload(&mut rng, p, &query, &csv).await,
            Outcome::Ok(_)
        ));
        if let Outcome::Ok(v) = shared.upload(&mut rng, p, "", "x\n1\n").await {
            let id = v["session_id"].as_str().unwrap_or_default().to_string();
            shared.private_sessions.lock().unwrap().push((p, id));
        }
    }
    *shared.stats.lock().unwrap() = Stats::default();

    let started = Instant::now();
    let until = started + Duration::from_secs(settings.seconds);
    let outage = controlled.as_mut().map(|redis| {
        let at = Duration::from_secs(settings.seconds / 3);
        (redis, at)
    });
    let work: Vec<_> = (0..settings.clients)
        .map(|n| tokio::spawn(client(shared.clone(), n, settings, until)))
        .collect();
    let mut outage_window = None;
    if let Some((redis, at)) = outage {
        tokio::time::sleep(at).await;
        let down = started.elapsed();
        redis.stop();
        tokio::time::sleep(Duration::from_secs(4)).await;
        redis.resume();
        outage_window = Some((down, started.elapsed()));
    }
    for w in work {
        let _ = w.await;
    }
    let elapsed = started.elapsed().as_secs_f64();

    let backend: Arc<dyn Backend> = if config.cluster {
        Arc::new(RedisBackend::cluster(&config).await.expect("cluster"))
    } else {
        Arc::new(RedisBackend::single(&config).expect("redis"))
    };
    let store = Store::new(backend, StoreConfig::default());
    let ledger = std::mem::take(&mut *shared.ledger.lock().unwrap());
    let (checked, problems) = verify(&store, &ledger).await;
    let stats = std::mem::take(&mut *shared.stats.lock().unwrap());
    let not_found = stats
        .errors
        .iter()
        .filter(|(k, _)| k.ends_with("not found"))
        .map(|(_, v)| v)
        .sum::<u64>();

    let total: usize = stats.latencies.values().map(Vec::len).sum();
    println!(
        "\n## {scenario}: {} instances, {} clients of {} principals, {:.0} s{}",
        settings.instances,
        settings.clients,
        settings.principals,
        elapsed,
        match outage_window {
            Some((a, b)) => format!(
                ", Redis down from {:.1} s to {:.1} s",
                a.as_secs_f64(),
                b.as_secs_f64()
            ),
            None => String::new(),
        }
    );
    println!(
        "\n{total} requests, {:.0} requests/s\n",
        total as f64 / elapsed
    );
    println!("| tool | calls | calls/s | p50 ms | p95 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (tool, mut l) in stats.latencies {
        l.sort_by(f64::total_cmp);
        println!(
            "| {tool} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            l.len(),
            l.len() as f64 / elapsed,
            percentile(&l, 50.0),
            percentile(&l, 95.0),
            percentile(&l, 99.0)
        );
    }
    println!("\n| error | count |\n|---|---:|");
    if stats.errors.is_empty() {
        println!("| none | 0 |");
    }
    for (kind, n) in &stats.errors {
        println!("| {kind} | {n} |");
    }
    println!("\n| check | result |\n|---|---:|");
    println!("| tables verified against their history | {checked} |");
    println!(
        "| tables with an unanswered change (checked for lost acks only) | {} |",
        ledger.uncertain.len()
    );
    println!("| lost or extra updates | {} |", problems.len());
    println!("| \"not found\" for live sessions | {not_found} |");
    println!(
        "| cross-principal reads | {} ({} rows) |",
        stats.cross_reads, stats.wrong_owner_rows
    );
    for p in problems.iter().take(20) {
        println!("  problem: {p}");
    }
    let mut clean = problems.is_empty() && stats.cross_reads == 0;
    // During an outage a call may fail; a "not found" never may.
    clean &= not_found == 0;
    for mut s in servers {
        s.terminate();
        let _ = s.wait_exit(Duration::from_secs(30)).await;
    }
    clean
}

#[tokio::main]
async fn main() {
    let settings = Settings {
        seconds: env("LOAD_SECONDS", 30),
        clients: env("LOAD_CLIENTS", 200) as usize,
        principals: env("LOAD_PRINCIPALS", 50).max(1) as usize,
        instances: env("LOAD_INSTANCES", 4).max(1) as usize,
    };
    let chosen: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let scenarios: Vec<&str> = if chosen.is_empty() {
        vec!["redis", "cluster", "outage"]
    } else {
        chosen.iter().map(String::as_str).collect()
    };
    let mut failed = Vec::new();
    for scenario in scenarios {
        if !run(scenario, settings).await {
            failed.push(scenario);
        }
    }
    if !failed.is_empty() {
        eprintln!("correctness checks failed in: {failed:?}");
        std::process::exit(1);
    }
}
