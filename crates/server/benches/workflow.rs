//! The analyst workflow over MCP stdio against the real binary, at growing
//! sizes: load, then 5 × (get_table_summary → fill_missing mean → undo →
//! redo → preview_rows). Prints median milliseconds per step and the
//! server's peak RSS; checks on the way that a repeated fill of a filled
//! column makes no version (undo still brings the missing values back).
//!
//! ```text
//! cargo bench -p dataframe-mcp --bench workflow                 # 10k, 100k, 1M, 10M rows
//! cargo bench -p dataframe-mcp --bench workflow -- 1000000      # chosen sizes
//! cargo bench -p dataframe-mcp --bench workflow -- 50m          # 50M rows × 10 columns (~4 GB frame)
//! ```

#![allow(clippy::print_stdout)]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use serde_json::{Value, json};
use tests::mcp::{Server, Storage};

const ROUNDS: usize = 5;

/// Writes `rows` × `columns` (6 or 10) of CSV: ids, prices and quantities
/// with missing values, a region, a customer, a date (and for 10 columns a
/// discount, a channel, a flag, a note).
fn write_csv(path: &Path, rows: usize, columns: usize) -> u64 {
    let file = std::fs::File::create(path).expect("create csv");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let wide = columns >= 10;
    write!(out, "id,price,qty,region,customer,date").unwrap();
    if wide {
        write!(out, ",discount,channel,flag,note").unwrap();
    }
    writeln!(out).unwrap();
    let regions = ["north", "south", "east", "west"];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..rows {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let price = if x.is_multiple_of(10) {
            String::new()
        } else {
            format!("{}.{:02}", x % 500, x % 100)
        };
        let qty = if x % 20 == 1 {
            String::new()
        } else {
            (x % 50).to_string()
        };
        let day = 1 + (x % 28);
        let month = 1 + (x / 7 % 12);
        write!(
            out,
            "{i},{price},{qty},{},c{:07},2024-{month:02}-{day:02}",
            regions[(x % 4) as usize],
            x % 1_000_003
        )
        .unwrap();
        if wide {
            write!(
                out,
                ",{},{},{},n{}",
                x % 30,
                ["web", "shop", "phone"][(x % 3) as usize],
                x.is_multiple_of(2),
                x % 97
            )
            .unwrap();
        }
        writeln!(out).unwrap();
    }
    out.flush().unwrap();
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Samples the server's anonymous memory (its heap, not the page cache of
/// files it maps) every 10 ms until `stop`; `peak` holds the largest value
/// so far in kB. VmHWM also counts the mapped CSV's pages, which the kernel
/// can drop at will.
struct HeapSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HeapSampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (done, max) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                if let Some(kb) = status
                    .lines()
                    .find(|l| l.starts_with("RssAnon:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<u64>().ok())
                {
                    max.fetch_max(kb, Ordering::Relaxed);
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        });
        HeapSampler {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    /// The peak so far, in MB (after a last sample's worth of waiting).
    fn peak_mb(&self) -> f64 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        self.peak.load(Ordering::Relaxed) as f64 / 1024.0
    }

    fn finish(mut self) -> f64 {
        let peak = self.peak_mb();
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        peak
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

async fn timed(server: &Server, tool: &str, args: Value) -> (f64, Value) {
    let started = Instant::now();
    let out = server.ok(tool, args).await;
    (started.elapsed().as_secs_f64() * 1000.0, out)
}

struct Row {
    rows: usize,
    file_mb: f64,
    frame_mb: f64,
    load: f64,
    first_summary: f64,
    summary: f64,
    fill: f64,
    fill_again: f64,
    undo: f64,
    redo: f64,
    preview: f64,
    filter: Option<f64>,
    export: Option<f64>,
    undo_filter: Option<f64>,
    stored_filter: Option<f64>,
    parquet_load: Option<f64>,
    rss: f64,
    heap_load: f64,
    heap_summary: f64,
    heap_rounds: f64,
    heap_end: f64,
}

async fn run(rows: usize, columns: usize, extra: &[&str]) -> Row {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("data.csv");
    let bytes = write_csv(&csv, rows, columns);
    let bin = Path::new(env!("CARGO_BIN_EXE_dataframe-mcp"));
    let server = Server::start(bin, &Storage::embedded(dir.path()), dir.path(), extra).await;
    let heap = HeapSampler::start(server.pid);
    let (load, loaded) = timed(
        &server,
        "initialize_data_table",
        json!({ "file_path": csv, "table_name": "t" }),
    )
    .await;
    let session = loaded["session_id"].as_str().unwrap().to_string();
    let heap_load = heap.peak_mb();
    let t = json!({ "session_id": session, "table": "t" });
    let with = |extra: Value| {
        let mut args = t.clone();
        if let (Some(a), Value::Object(e)) = (args.as_object_mut(), extra) {
            a.extend(e);
        }
        args
    };
    let (mut summaries, mut fills, mut undos, mut redos, mut previews) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut first_summary = 0.0;
    let mut heap_summary = 0.0;
    let mut frame_mb = 0.0;
    for round in 0..ROUNDS {
        let (ms, summary) = timed(&server, "get_table_summary", t.clone()).await;
        if round == 0 {
            heap_summary = heap.peak_mb();
            first_summary = ms;
            frame_mb = summary["memory_bytes"].as_f64().unwrap_or(0.0) / 1e6;
        } else {
            summaries.push(ms);
        }
        let (ms, _) = timed(
            &server,
            "fill_missing",
            with(json!({ "columns": ["price"], "strategy": "mean" })),
        )
        .await;
        fills.push(ms);
        undos.push(timed(&server, "undo", t.clone()).await.0);
        redos.push(timed(&server, "redo", t.clone()).await.0);
        previews.push(timed(&server, "preview_rows", t.clone()).await.0);
    }
    // A second fill of the filled column changes nothing: no version, and
    // undo still takes back the real fill.
    let again = server
        .ok(
            "fill_missing",
            with(json!({ "columns": ["price"], "strategy": "mean" })),
        )
        .await;
    assert_eq!(again["changed"], false, "{again}");
    server.ok("undo", t.clone()).await;
    let summary = server
        .ok("get_table_summary", with(json!({ "columns": ["price"] })))
        .await;
    assert!(
        summary["column_summaries"][0]["missing"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "undo after a no-op fill must restore the missing prices"
    );
    server.ok("redo", t.clone()).await;
    let heap_rounds = heap.peak_mb();
    let (filter, export, undo_filter) = if rows >= 10_000_000 {
        let (f, _) = timed(
            &server,
            "filter_rows",
            with(json!({ "condition": "qty > 10" })),
        )
        .await;
        eprintln!("peak heap after filter: {:.0} MB", heap.peak_mb());
        let out = dir.path().join("out.parquet");
        let (e, _) = timed(&server, "export_table", with(json!({ "path": out }))).await;
        // Undo only moves the head; the first read after it decodes the
        // version before the filter again unless the frame cache's budget
        // kept it beside the filtered one.
        let (undo, _) = timed(&server, "undo", t.clone()).await;
        let (read, _) = timed(&server, "preview_rows", t.clone()).await;
        (Some(f), Some(e), Some(undo + read))
    } else {
        (None, None, None)
    };
    let rss = peak_rss_mb(server.pid);
    let heap_end = heap.finish();
    server.stop().await;
    // The same filter in a new process, on the version decoded from the
    // store: its columns are cut into parts by their own widths, not into
    // the CSV reader's shared chunks.
    let stored_filter = if filter.is_some() {
        let again = Server::start(bin, &Storage::embedded(dir.path()), dir.path(), extra).await;
        again.ok("preview_rows", t.clone()).await;
        let (ms, _) = timed(
            &again,
            "filter_rows",
            with(json!({ "condition": "qty > 10" })),
        )
        .await;
        again.stop().await;
        Some(ms)
    } else {
        None
    };
    // The exported Parquet file, loaded by a fresh server on a fresh store.
    let parquet_load = if export.is_some() {
        let store = dir.path().join("parquet-store");
        let fresh = Server::start(bin, &Storage::embedded(&store), dir.path(), extra).await;
        let (ms, _) = timed(
            &fresh,
            "initialize_data_table",
            json!({ "file_path": dir.path().join("out.parquet"), "table_name": "p" }),
        )
        .await;
        fresh.stop().await;
        Some(ms)
    } else {
        None
    };
    Row {
        rows,
        file_mb: bytes as f64 / 1e6,
        frame_mb,
        load,
        first_summary,
        summary: median(&mut summaries),
        fill: fills[0],
        fill_again: median(&mut fills[1..]),
        undo: median(&mut undos),
        redo: median(&mut redos),
        preview: median(&mut previews),
        filter,
        export,
        undo_filter,
        stored_filter,
        parquet_load,
        rss,
        heap_load,
        heap_summary,
        heap_rounds,
        heap_end,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let huge = args.iter().any(|a| a == "50m");
    let mut sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() && !huge {
        sizes = vec![10_000, 100_000, 1_000_000, 10_000_000];
    }
    println!(
        "\n| rows × cols | CSV MB | frame MB | load | 1st summary | summary again | fill mean | fill again (no-op) | undo | redo | preview | filter | export | undo filter + preview | filter after restart | load Parquet | peak heap MB: load / summary / rounds / end | heap / frame | peak RSS MB |"
    );
    println!(
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut runs: Vec<(usize, usize, Vec<&str>)> =
        sizes.into_iter().map(|r| (r, 6, Vec::new())).collect();
    if huge {
        runs.push((50_000_000, 10, Vec::new()));
    }
    for (rows, columns, extra) in runs {
        let row = run(rows, columns, &extra).await;
        let opt = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "–".into());
        println!(
            "| {} × {columns} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {:.0} / {:.0} / {:.0} / {:.0} | {:.1} | {:.0} |",
            row.rows,
            row.file_mb,
            row.frame_mb,
            row.load,
            row.first_summary,
            row.summary,
            row.fill,
            row.fill_again,
            row.undo,
            row.redo,
            row.preview,
            opt(row.filter),
            opt(row.export),
            opt(row.undo_filter),
            opt(row.stored_filter),
            opt(row.parquet_load),
            row.heap_load,
            row.heap_summary,
            row.heap_rounds,
            row.heap_end,
            row.heap_end / row.frame_mb.max(f64::MIN_POSITIVE),
            row.rss,
        );
    }
    println!(
        "\n(milliseconds, median of {ROUNDS} rounds except load and the first summary; MCP over stdio, embedded store)"
    );
}
