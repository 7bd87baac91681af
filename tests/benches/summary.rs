//! Summary benchmark: prints a table, asserts nothing.
//!
//! ```text
//! cargo bench -p tests --bench summary             # 1M rows
//! cargo bench -p tests --bench summary -- 10000000
//! ```
//!
//! Times each column's summary and the duplicate-row count of a frame like
//! the workflow benchmark's (ids, prices and quantities with missing values,
//! a region, a customer, a date), and the whole summary.

#![allow(clippy::print_stdout)]

use std::time::Instant;

use dfmcp_ops::inspect;
use polars::prelude::*;

fn frame(rows: usize) -> DataFrame {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let (mut id, mut price, mut qty, mut region, mut customer, mut day) = (
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
    );
    let regions = ["north", "south", "east", "west"];
    for i in 0..rows {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        id.push(i as i64);
        price.push((!x.is_multiple_of(10)).then(|| (x % 500) as f64 + (x % 100) as f64 / 100.0));
        qty.push((x % 20 != 1).then_some((x % 50) as i64));
        region.push(regions[(x % 4) as usize]);
        customer.push(format!("c{:07}", x % 1_000_003));
        day.push(19_700 + (x % 365) as i32);
    }
    let mut df = df!(
        "id" => id,
        "price" => price,
        "qty" => qty,
        "region" => region,
        "customer" => customer,
    )
    .unwrap();
    let date = Series::new("date".into(), day)
        .cast(&DataType::Date)
        .unwrap();
    df.with_column(date.into()).unwrap();
    df
}

fn ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

/// This process's peak resident memory so far, in MB.
fn peak_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000_000]
    } else {
        sizes
    };
    for rows in sizes {
        let df = frame(rows);
        println!(
            "\n{rows} rows, {:.0} MB in memory\n",
            df.estimated_size() as f64 / 1e6
        );
        println!(
            "peak RSS before: {:.0} MB\n\n| part | ms | peak RSS MB after |\n|---|---:|---:|",
            peak_mb()
        );
        let mut known = Vec::new();
        for name in df.get_column_names_owned() {
            let started = Instant::now();
            let summary = inspect::summarize_column(&df, &name, 5).unwrap();
            println!(
                "| column {name} ({}) | {:.1} | {:.0} |",
                summary.dtype,
                ms(started),
                peak_mb()
            );
            known.push(summary);
        }
        let text = df
            .column("customer")
            .unwrap()
            .as_materialized_series()
            .clone();
        let started = Instant::now();
        let _ = text
            .value_counts(false, true, "count".into(), false)
            .unwrap();
        println!(
            "| (customer: polars value_counts alone) | {:.1} |",
            ms(started)
        );
        let started = Instant::now();
        let dups = inspect::duplicate_rows(&df, &[]).unwrap();
        println!(
            "| duplicate rows, hashing every row ({dups}) | {:.1} |",
            ms(started)
        );
        let started = Instant::now();
        inspect::duplicate_rows(&df, &known).unwrap();
        println!(
            "| duplicate rows, given a unique column | {:.1} |",
            ms(started)
        );
        let started = Instant::now();
        inspect::summarize(&df, None, 0, 25, 5).unwrap();
        println!(
            "| whole summary, one thread of columns | {:.1} |",
            ms(started)
        );
        // Two threads: the widest-distinct text column on one, the rest on
        // the other (what a two-core machine can do at best).
        let names = df.get_column_names_owned();
        let started = Instant::now();
        std::thread::scope(|scope| {
            let (heavy, rest): (Vec<_>, Vec<_>) =
                names.iter().partition(|n| n.as_str() == "customer");
            let df = &df;
            let a = scope.spawn(move || {
                for n in heavy {
                    inspect::summarize_column(df, n, 5).unwrap();
                }
            });
            for n in rest {
                inspect::summarize_column(df, n, 5).unwrap();
            }
            a.join().unwrap();
        });
        println!(
            "| whole summary, customer beside the rest (2 threads) | {:.1} |",
            ms(started)
        );
    }
}
