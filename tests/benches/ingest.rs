//! Ingest benchmark: prints a table, asserts nothing.
//!
//! ```text
//! cargo bench -p tests --bench ingest
//! cargo bench -p tests --bench ingest -- 200000   # CSV rows (the xlsx has a tenth)
//! ```
//!
//! Loads a generated CSV (ints, floats with 10% missing, strings, ISO dates;
//! 1,000,000 rows × 6 columns by default) through `dfmcp_ingest::load` and
//! through polars' own CSV reader with default options, the same data
//! transcoded to Windows-1252, and a 100,000-row xlsx of the same shape.

#![allow(clippy::print_stdout)]

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use dfmcp_ingest::{Limits, LoadOptions, load};
use polars::prelude::*;

const NAMES: [&str; 8] = [
    "Ana",
    "Bo",
    "Chloé",
    "Dmitri",
    "Eun-ji",
    "François",
    "Gül",
    "Håkon",
];
const CATEGORIES: [&str; 5] = ["tools", "garden", "kitchen", "toys", "books"];

fn write_csv(path: &Path, rows: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "id,amount,name,category,quantity,day").unwrap();
    for i in 0..rows {
        let amount = if i % 10 == 0 {
            String::new()
        } else {
            format!("{:.2}", (i * 7919 % 100_003) as f64 / 7.0)
        };
        writeln!(
            out,
            "{i},{amount},{} {},{},{},2024-{:02}-{:02}",
            NAMES[i % 8],
            i % 997,
            CATEGORIES[i % 5],
            i % 50,
            i % 12 + 1,
            i % 28 + 1
        )
        .unwrap();
    }
}

fn write_xlsx(path: &Path, rows: usize) {
    let mut book = rust_xlsxwriter::Workbook::new();
    let date = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
    let sheet = book.add_worksheet();
    sheet
        .write_row(
            0,
            0,
            ["id", "amount", "name", "category", "quantity", "day"],
        )
        .unwrap();
    for i in 0..rows {
        let r = i as u32 + 1;
        sheet.write_number(r, 0, i as f64).unwrap();
        if i % 10 != 0 {
            sheet
                .write_number(r, 1, (i * 7919 % 100_003) as f64 / 7.0)
                .unwrap();
        }
        sheet
            .write_string(r, 2, format!("{} {}", NAMES[i % 8], i % 997))
            .unwrap();
        sheet.write_string(r, 3, CATEGORIES[i % 5]).unwrap();
        sheet.write_number(r, 4, (i % 50) as f64).unwrap();
        let day =
            rust_xlsxwriter::ExcelDateTime::from_ymd(2024, (i % 12 + 1) as u8, (i % 28 + 1) as u8)
                .unwrap();
        sheet.write_datetime_with_format(r, 5, &day, &date).unwrap();
    }
    book.save(path).unwrap();
}

fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn ours(path: &Path) -> usize {
    let result = load(path, &LoadOptions::default(), &Limits::default()).unwrap();
    result.tables[0].df.height()
}

fn polars_plain(path: &Path) -> usize {
    CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .unwrap()
        .finish()
        .unwrap()
        .height()
}

fn row(input: &str, path: &Path, rows: usize, reference: Option<Duration>, ours_time: Duration) {
    let size = std::fs::metadata(path).unwrap().len() as f64 / 1e6;
    let secs = ours_time.as_secs_f64();
    let (reference_ms, overhead) = match reference {
        Some(r) => (
            format!("{:.0}", r.as_secs_f64() * 1000.0),
            format!("{:+.1}%", (secs / r.as_secs_f64() - 1.0) * 100.0),
        ),
        None => ("–".into(), "–".into()),
    };
    println!(
        "| {input} | {size:.1} | {rows} | {reference_ms} | {:.0} | {overhead} | {:.0} | {:.1} |",
        secs * 1000.0,
        rows as f64 / secs,
        size / secs
    );
}

fn main() {
    let rows: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("data.csv");
    write_csv(&csv, rows);
    let latin = dir.path().join("latin1.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
    std::fs::write(&latin, &bytes).unwrap();
    let xlsx = dir.path().join("data.xlsx");
    let xlsx_rows = rows / 10;
    write_xlsx(&xlsx, xlsx_rows);

    println!(
        "Ingest benchmark ({} build, {} cores); medians of 3 runs.\n",
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
        "| input | MB | rows | polars read_csv ms | dfmcp load ms | overhead | rows/s | MB/s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    assert_eq!(polars_plain(&csv), rows);
    assert_eq!(ours(&csv), rows);
    let reference = median(3, || {
        polars_plain(&csv);
    });
    let ours_time = median(3, || {
        ours(&csv);
    });
    row("CSV, UTF-8", &csv, rows, Some(reference), ours_time);
    let latin_time = median(3, || {
        ours(&latin);
    });
    row(
        "CSV, Windows-1252 (transcoded)",
        &latin,
        rows,
        Some(reference),
        latin_time,
    );
    let xlsx_time = median(3, || {
        assert_eq!(ours(&xlsx), xlsx_rows);
    });
    row("xlsx, one sheet", &xlsx, xlsx_rows, None, xlsx_time);
}
