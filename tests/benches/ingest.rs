//! Ingest benchmark: prints a table, asserts nothing.
//!
//! ```text
//! cargo bench -p tests --bench ingest
//! cargo bench -p tests --bench ingest -- 200000   # CSV rows (the xlsx has a tenth)
//! ```
//!
//! Loads a generated CSV (ints, floats with 10% missing, strings, ISO dates;
//! 1,000,000 rows × 6 columns by default) through `dfmcp_ingest::load` and
//! through polars' own CSV reader (with default options, and with our null
//! markers), the same data
//! transcoded to Windows-1252, and a 100,000-row xlsx of the same shape.

#![allow(clippy::print_stdout)]

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use dfmcp_ingest::{DEFAULT_NULL_VALUES, Limits, LoadOptions, Source, load};
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
    let result = load(
        &Source::path(path),
        &LoadOptions::default(),
        &Limits::default(),
    )
    .unwrap();
    result.tables[0].df.height()
}

/// polars' CSV reader; `same_output` adds our default null markers and
/// polars' own date parsing, so the frame matches ours and the difference is
/// what sniffing and transcoding cost.
fn polars_read(path: &Path, same_output: bool) -> usize {
    let mut parse = CsvParseOptions::default().with_try_parse_dates(same_output);
    if same_output {
        let markers = DEFAULT_NULL_VALUES.iter().map(|s| (*s).into()).collect();
        parse = parse.with_null_values(Some(NullValues::AllColumns(markers)));
    }
    CsvReadOptions::default()
        .with_has_header(true)
        .with_parse_options(parse)
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .unwrap()
        .finish()
        .unwrap()
        .height()
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

fn row(input: &str, path: &Path, rows: usize, references: Option<[Duration; 2]>, ours: Duration) {
    let size = std::fs::metadata(path).unwrap().len() as f64 / 1e6;
    let secs = ours.as_secs_f64();
    let (plain, same, overhead) = match references {
        Some([plain, same]) => (
            ms(plain),
            ms(same),
            format!("{:+.1}%", (secs / same.as_secs_f64() - 1.0) * 100.0),
        ),
        None => ("–".into(), "–".into(), "–".into()),
    };
    println!(
        "| {input} | {size:.1} | {rows} | {plain} | {same} | {} | {overhead} | {:.0} | {:.1} |",
        ms(ours),
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
        "Ingest benchmark ({} build, {} cores); medians of 5 runs (xlsx: 3).\n",
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
        "| input | MB | rows | polars, defaults ms | polars, same output ms | dfmcp load ms | overhead vs same output | rows/s | MB/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    assert_eq!(polars_read(&csv, false), rows);
    assert_eq!(ours(&csv), rows);
    let plain = median(5, || {
        polars_read(&csv, false);
    });
    let same = median(5, || {
        polars_read(&csv, true);
    });
    let ours_time = median(5, || {
        ours(&csv);
    });
    row("CSV, UTF-8", &csv, rows, Some([plain, same]), ours_time);
    let latin_time = median(5, || {
        ours(&latin);
    });
    row(
        "CSV, Windows-1252 (transcoded)",
        &latin,
        rows,
        Some([plain, same]),
        latin_time,
    );
    let xlsx_time = median(3, || {
        assert_eq!(ours(&xlsx), xlsx_rows);
    });
    row("xlsx, one sheet", &xlsx, xlsx_rows, None, xlsx_time);
    println!(
        "\nOverhead is measured against polars producing the same frame (our {} null markers, \
         dates parsed); the defaults column reads dates as text and only empty fields as null.",
        DEFAULT_NULL_VALUES.len()
    );
}
