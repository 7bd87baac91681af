//! Store benchmark: prints a table, asserts nothing.
//!
//! ```text
//! cargo bench -p tests --bench store                 # release build
//! cargo bench -p tests --bench store -- 10000 100000 # chosen sizes only
//! BENCH_BACKENDS=memory,embedded cargo bench -p tests --bench store
//! BENCH_COMPRESSION=lz4 cargo bench -p tests --bench store  # default: the store's
//! ```
//!
//! For 10k, 100k and 1M rows × 10 columns, on memory, the embedded store and
//! a throwaway Redis (or `REDIS_URL`): create (full write), a one-column
//! commit, cold load (a fresh process-like store with no cache), warm load,
//! undo and redo, and the bytes each stores.

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use dfmcp_storage::{
    Backend, Edit, Intent, MemoryBackend, OpRecord, RedisBackend, RedisConfig, SqliteBackend,
    Store, StoreConfig,
};
use polars::prelude::*;

fn frame(rows: usize) -> DataFrame {
    let n = rows as i64;
    let ints: Vec<i64> = (0..n).collect();
    let floats: Vec<Option<f64>> = (0..n)
        .map(|i| (i % 10 != 0).then(|| (i * 7919 % 10007) as f64 / 3.0))
        .collect();
    let cats: Vec<&str> = (0..rows)
        .map(|i| ["north", "south", "east", "west"][i % 4])
        .collect();
    let texts: Vec<String> = (0..rows)
        .map(|i| format!("customer-{:08}", i * 31 % 1_000_003))
        .collect();
    let flags: Vec<bool> = (0..rows).map(|i| i % 3 == 0).collect();
    let days: Vec<i32> = (0..rows).map(|i| 19_000 + (i % 3650) as i32).collect();
    let columns = vec![
        Column::new("id".into(), ints.clone()),
        Column::new(
            "qty".into(),
            ints.iter().map(|i| i % 97).collect::<Vec<_>>(),
        ),
        Column::new("price".into(), floats.clone()),
        Column::new(
            "discount".into(),
            floats
                .iter()
                .map(|f| f.map(|v| v / 10.0))
                .collect::<Vec<_>>(),
        ),
        Column::new("region".into(), cats),
        Column::new("customer".into(), texts),
        Column::new("vip".into(), flags),
        Column::new(
            "ordered".into(),
            Series::new("ordered".into(), days)
                .cast(&DataType::Date)
                .unwrap(),
        ),
        Column::new(
            "score".into(),
            ints.iter()
                .map(|i| (i * 13 % 101) as f64)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "rank".into(),
            ints.iter().map(|i| (i % 1000) as i32).collect::<Vec<_>>(),
        ),
    ];
    DataFrame::new(rows, columns).unwrap()
}

fn edit(df: DataFrame) -> Edit {
    Edit {
        df,
        meta: Default::default(),
        op: OpRecord::new("bench", serde_json::json!({}), "bench"),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn mb(bytes: u64) -> String {
    format!("{:.2}", bytes as f64 / 1e6)
}

/// Median of `runs` timings of `f`.
async fn median<F, Fut>(runs: usize, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        f().await;
        times.push(start.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

/// The store's defaults, with `BENCH_COMPRESSION` when set.
fn config() -> StoreConfig {
    let mut config = StoreConfig::default();
    if let Ok(codec) = std::env::var("BENCH_COMPRESSION") {
        config.compression = codec.parse().expect("BENCH_COMPRESSION");
    }
    config
}

async fn bench(name: &str, backend: Arc<dyn Backend>, rows: usize) {
    let store = Store::new(backend.clone(), config());
    let sid = store.create_session(None).await.unwrap().id;
    let df = frame(rows);
    let size_in_memory = df.estimated_size() as u64;

    let start = Instant::now();
    store
        .create_table(&sid, "t", edit(df.clone()), &Intent::new())
        .await
        .unwrap();
    let create = start.elapsed();
    let after_create = store.usage(&sid).await.unwrap().bytes;

    // One column changed in a tenth of its cells (a fill of its missing
    // values), then one rewritten whole (say, a unit conversion).
    let runs = if rows >= 1_000_000 { 3 } else { 5 };
    let commit_one = |whole: bool| {
        let store = &store;
        let sid = &sid;
        async move {
            let mut times = Vec::with_capacity(runs);
            let mut bytes = 0;
            for r in 0..runs {
                if !whole && r > 0 {
                    // The missing prices back, to be filled with a new value.
                    store.undo(sid, "t", 1, &Intent::new()).await.unwrap();
                }
                let base = store.load(sid, "t").await.unwrap();
                let mut df = base.df.clone();
                let price = df.column("price").unwrap().as_materialized_series().clone();
                let changed = if whole {
                    price * (2.0 + r as f64)
                } else {
                    let value = Series::new("price".into(), [100.0 + r as f64]);
                    price
                        .zip_with(&price.is_not_null(), &value.new_from_index(0, price.len()))
                        .unwrap()
                };
                df.with_column(changed.with_name("price".into()).into_column())
                    .unwrap();
                let before = store.usage(sid).await.unwrap().bytes;
                let start = Instant::now();
                store.commit(&base, edit(df), &Intent::new()).await.unwrap();
                times.push(start.elapsed());
                bytes = store.usage(sid).await.unwrap().bytes - before;
            }
            times.sort();
            (times[runs / 2], bytes)
        }
    };
    let (commit, commit_bytes) = commit_one(true).await;
    let (fill, fill_bytes) = commit_one(false).await;

    let cold = median(runs, || async {
        let fresh = Store::new(backend.clone(), config());
        fresh.load(&sid, "t").await.unwrap();
    })
    .await;
    let warm = median(runs, || async {
        store.load(&sid, "t").await.unwrap();
    })
    .await;
    let (mut undos, mut redos) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let start = Instant::now();
        store.undo(&sid, "t", 1, &Intent::new()).await.unwrap();
        undos.push(start.elapsed());
        let start = Instant::now();
        store.redo(&sid, "t", 1, &Intent::new()).await.unwrap();
        redos.push(start.elapsed());
    }
    undos.sort();
    redos.sort();
    let (undo, redo) = (undos[runs / 2], redos[runs / 2]);

    println!(
        "| {name} | {rows} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        mb(size_in_memory),
        ms(create),
        mb(after_create),
        ms(commit),
        mb(commit_bytes),
        ms(fill),
        mb(fill_bytes),
        ms(cold),
        ms(warm),
        ms(undo),
        ms(redo),
    );
    store.delete_session(&sid).await.unwrap();
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000, 1_000_000]
    } else {
        sizes
    };
    let wanted = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "memory,embedded,redis".into());
    let dir = tempfile::tempdir().unwrap();

    println!(
        "Store benchmark ({} build, {} cores); times are medians in ms, sizes in MB.\n",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "optimized"
        },
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!(
        "| backend | rows | in memory | create | stored | 1-col commit | stored by commit | fill commit | stored by fill | cold load | warm load | undo | redo |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &rows in &sizes {
        for name in wanted.split(',').map(str::trim) {
            let backend: Arc<dyn Backend> = match name {
                "memory" => Arc::new(MemoryBackend::new()),
                "embedded" => {
                    Arc::new(SqliteBackend::open(dir.path().join(format!("data-{rows}"))).unwrap())
                }
                "redis" => {
                    let url = tokio::task::spawn_blocking(tests::redis::redis_url)
                        .await
                        .unwrap();
                    let mut cfg = RedisConfig::new(url);
                    cfg.prefix = tests::redis::random_prefix();
                    Arc::new(RedisBackend::single(&cfg).unwrap())
                }
                other => panic!("unknown backend {other}: use memory, embedded, redis"),
            };
            bench(name, backend, rows).await;
        }
    }
}
