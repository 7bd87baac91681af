//! Turns a tabular file on disk into named polars DataFrames: CSV/TSV/TXT in
//! any common dialect and encoding, Excel (.xlsx .xlsm .xlsb .xls), OpenDocument
//! (.ods), Parquet, Arrow IPC / Feather v2, JSON and NDJSON.
//!
//! Two entry points:
//! - [`inspect`]: a cheap look (format by content, size, encoding, delimiter,
//!   header, sample rows, sheets) without loading everything;
//! - [`load`]: every table the file holds, each with notes, plus per-table
//!   problems — one bad sheet never fails the whole file.
//!
//! ```no_run
//! use dfmcp_ingest::{load, Limits, LoadOptions, Source};
//! let source = Source::path("sales.xlsx");
//! let result = load(&source, &LoadOptions::default(), &Limits::default())?;
//! for table in &result.tables {
//!     println!("{}: {} rows", table.name, table.df.height());
//! }
//! # Ok::<(), dfmcp_ingest::IngestError>(())
//! ```

mod columnar;
mod detect;
mod error;
mod excel;
pub mod naming;
mod text;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use polars::prelude::DataFrame;
use serde::Serialize;

pub use detect::{Detection, Format};
pub use error::{IngestError, Result, human_bytes};
pub use excel::SheetInfo;
pub use text::{DEFAULT_NULL_VALUES, TextInfo};

/// Caps that keep one file from exhausting memory: each is checked before
/// the memory it guards is spent.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest file accepted (default 2 GB).
    pub max_file_bytes: u64,
    /// Most rows per table (default 10 million).
    pub max_rows: usize,
    /// Most columns per table (default 20,000), checked on the header before
    /// reading.
    pub max_columns: usize,
    /// Deepest nesting of JSON arrays and objects (default 64).
    pub max_json_depth: usize,
    /// Most cells one sheet or JSON document may expand to (default 100
    /// million), estimated before it is parsed: a sheet's extent from its
    /// cell positions, a JSON document's as objects × distinct keys.
    pub max_cells: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 2_000_000_000,
            max_rows: 10_000_000,
            max_columns: 20_000,
            max_json_depth: 64,
            max_cells: 100_000_000,
        }
    }
}

/// A file to read: where to open it, and the path people know it by. The
/// two differ when the caller has opened the file itself, to check where it
/// really is, and passes the open descriptor's path (`/proc/self/fd/N` on
/// Linux), so that nothing can swap the file between the check and the read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub read: PathBuf,
    pub shown: PathBuf,
}

impl Source {
    /// A file read and shown under the same path.
    pub fn path(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Source {
            read: path.clone(),
            shown: path,
        }
    }
}

/// How to load a file. Everything is optional: the defaults sniff.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Name of the table (for single-table files; a prefix for workbooks
    /// with several selected sheets).
    pub table_name: Option<String>,
    /// Sheets to load (default: all).
    pub sheets: Option<Vec<String>>,
    /// Field delimiter of text files (default: sniffed among `,` `;` tab `|`).
    pub delimiter: Option<char>,
    /// Text encoding label, such as `utf-8`, `utf-16le`, `windows-1252`.
    pub encoding: Option<String>,
    /// Whether the first row is a header (default: sniffed).
    pub has_header: Option<bool>,
    /// Rows to skip before the header.
    pub skip_rows: usize,
    /// Load at most this many rows.
    pub max_rows: Option<usize>,
    /// Strings that mean "missing" (default: [`DEFAULT_NULL_VALUES`]).
    pub null_values: Option<Vec<String>>,
    /// Parse numbers written with decimal commas (`1.234,5`).
    pub decimal_comma: bool,
}

/// What [`inspect`] found.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub path: PathBuf,
    pub size_bytes: u64,
    pub format: Format,
    pub format_name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sheets: Vec<SheetInfo>,
    /// Exact row count when the format records it (Parquet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<usize>,
    /// Column names and types when the format records them (Parquet).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schema: Vec<(String, String)>,
    pub notes: Vec<String>,
}

/// One table read from a file.
#[derive(Debug, Clone)]
pub struct LoadedTable {
    /// A safe, unique table name.
    pub name: String,
    /// Where it came from: the sheet name, or the file name.
    pub source: String,
    pub df: DataFrame,
    /// Things the user should know (transcoding, skipped rows, mixed columns…).
    pub notes: Vec<String>,
}

/// A part of the file that could not be loaded, while others were.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub source: String,
    pub message: String,
}

/// Everything [`load`] read.
#[derive(Debug, Clone)]
pub struct LoadResult {
    pub path: PathBuf,
    pub format: Format,
    pub tables: Vec<LoadedTable>,
    pub problems: Vec<Problem>,
    /// Notes about the file as a whole.
    pub notes: Vec<String>,
    pub text: Option<TextInfo>,
}

/// Checks the path and size; returns the size.
fn check_file(path: &Path, limits: &Limits) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| IngestError::io(path, e))?;
    if meta.is_dir() {
        return Err(IngestError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    let size = meta.len();
    if size == 0 {
        return Err(IngestError::Empty {
            path: path.to_path_buf(),
        });
    }
    if size > limits.max_file_bytes {
        return Err(IngestError::FileTooLarge {
            path: path.to_path_buf(),
            size,
            limit: limits.max_file_bytes,
        });
    }
    Ok(size)
}

fn absolute(src: &Source) -> Source {
    Source {
        read: std::path::absolute(&src.read).unwrap_or_else(|_| src.read.clone()),
        shown: std::path::absolute(&src.shown).unwrap_or_else(|_| src.shown.clone()),
    }
}

/// A cheap look at a file: what it is and how it would load.
pub fn inspect(src: &Source, opts: &LoadOptions, limits: &Limits) -> Result<Inspection> {
    let src = absolute(src);
    inspect_at(&src, opts, limits).map_err(|e| e.shown_as(&src))
}

fn inspect_at(src: &Source, opts: &LoadOptions, limits: &Limits) -> Result<Inspection> {
    let path = src.read.as_path();
    let size = check_file(path, limits)?;
    let head = detect::read_head(path)?;
    let detection = detect::detect(path, &src.shown, &head)?;
    let mut inspection = Inspection {
        path: src.shown.clone(),
        size_bytes: size,
        format: detection.format,
        format_name: detection.format.name(),
        text: None,
        sheets: Vec::new(),
        rows: None,
        schema: Vec::new(),
        notes: detection.note.into_iter().collect(),
    };
    match detection.format {
        Format::Csv => {
            let dialect = text::sniff(&head, size, opts, limits).map_err(|e| match e {
                IngestError::TooManyColumns { columns, limit, .. } => IngestError::TooManyColumns {
                    path: path.to_path_buf(),
                    columns,
                    limit,
                },
                other => other,
            })?;
            if !dialect.info.decimal_comma_columns.is_empty() {
                inspection.notes.push(format!(
                    "columns {} hold numbers with decimal commas; they load as text unless decimal commas are asked for",
                    dialect.info.decimal_comma_columns.join(", ")
                ));
            }
            if dialect.info.ragged_lines > 0 {
                inspection.notes.push(format!(
                    "{} sampled lines have an unusual number of fields",
                    dialect.info.ragged_lines
                ));
            }
            inspection.text = Some(dialect.info);
        }
        f if f.is_workbook() => inspection.sheets = excel::inspect_sheets(path, f)?,
        f => {
            if let Some((rows, schema)) = columnar::peek(path, f)? {
                inspection.rows = Some(rows);
                inspection.schema = schema;
            }
        }
    }
    Ok(inspection)
}

/// Loads every table the file holds (or the selected sheets).
///
/// Succeeds when at least one table loaded; the others are listed in
/// `problems`. Fails when nothing could be loaded.
pub fn load(src: &Source, opts: &LoadOptions, limits: &Limits) -> Result<LoadResult> {
    let src = absolute(src);
    load_at(&src, opts, limits).map_err(|e| e.shown_as(&src))
}

fn load_at(src: &Source, opts: &LoadOptions, limits: &Limits) -> Result<LoadResult> {
    let path = src.read.as_path();
    let size = check_file(path, limits)?;
    let head = detect::read_head(path)?;
    let detection = detect::detect(path, &src.shown, &head)?;
    let stem = src
        .shown
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "table".into());
    let file_name = src
        .shown
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut result = LoadResult {
        path: src.shown.clone(),
        format: detection.format,
        tables: Vec::new(),
        problems: Vec::new(),
        notes: detection.note.into_iter().collect(),
        text: None,
    };
    let mut taken = HashSet::new();
    match detection.format {
        f if f.is_workbook() => {
            let sheets = excel::load_sheets(path, f, opts, limits)?;
            let single = sheets.len() == 1;
            for (sheet, outcome) in sheets {
                match outcome {
                    Ok(frame) => {
                        let raw = match (&opts.table_name, single) {
                            (Some(name), true) => name.clone(),
                            (Some(prefix), false) => format!("{prefix}_{sheet}"),
                            (None, _) => sheet.clone(),
                        };
                        let name =
                            naming::unique_name(&naming::sanitize_table_name(&raw), &mut taken);
                        result.tables.push(LoadedTable {
                            name,
                            source: format!("sheet '{sheet}'"),
                            df: frame.df,
                            notes: frame.notes,
                        });
                    }
                    Err(message) => result.problems.push(Problem {
                        source: format!("sheet '{sheet}'"),
                        message,
                    }),
                }
            }
        }
        Format::Csv => {
            let (df, notes, info) = text::load_csv(path, &head, size, opts, limits)?;
            let raw = opts.table_name.clone().unwrap_or(stem);
            result.tables.push(LoadedTable {
                name: naming::unique_name(&naming::sanitize_table_name(&raw), &mut taken),
                source: file_name,
                df,
                notes,
            });
            result.text = Some(info);
        }
        f => {
            let (df, notes) = columnar::load(path, f, opts, limits)?;
            let raw = opts.table_name.clone().unwrap_or(stem);
            result.tables.push(LoadedTable {
                name: naming::unique_name(&naming::sanitize_table_name(&raw), &mut taken),
                source: file_name,
                df,
                notes,
            });
        }
    }
    if result.tables.is_empty() {
        return Err(IngestError::NothingLoaded {
            path: src.shown.clone(),
            problems: result
                .problems
                .iter()
                .map(|p| format!("{}: {}", p.source, p.message))
                .collect(),
        });
    }
    for table in &mut result.tables {
        if table.df.width() > limits.max_columns {
            return Err(IngestError::TooManyColumns {
                path: src.shown.clone(),
                columns: table.df.width(),
                limit: limits.max_columns,
            });
        }
    }
    Ok(result)
}
