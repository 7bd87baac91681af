//! Errors of loading a file, each worded for the reader who must act.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    #[error("file not found: {} (check the path; relative paths are resolved against the server's working directory)", .path.display())]
    NotFound { path: PathBuf },

    #[error("{} is a directory, not a file; give the path of a file inside it", .path.display())]
    IsDirectory { path: PathBuf },

    #[error("no permission to read {}; check its permissions", .path.display())]
    PermissionDenied { path: PathBuf },

    #[error("{} is empty (0 bytes); nothing to load", .path.display())]
    Empty { path: PathBuf },

    #[error("{} is {} but the limit is {}", .path.display(), human_bytes(*.size), human_bytes(*.limit))]
    FileTooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },

    #[error("{} has more than {limit} rows, the configured limit", .path.display())]
    TooManyRows { path: PathBuf, limit: usize },

    #[error("{} has {columns} columns, more than the limit of {limit}", .path.display())]
    TooManyColumns {
        path: PathBuf,
        columns: usize,
        limit: usize,
    },

    #[error("{} {what}, over the limit of {limit}", .path.display())]
    TooComplex {
        path: PathBuf,
        /// What was found, e.g. "nests JSON 1,000 levels deep".
        what: String,
        limit: String,
    },

    #[error("{} is not a supported tabular file: {detected}. Supported: CSV/TSV/TXT, Excel (.xlsx .xlsm .xlsb .xls), OpenDocument (.ods), Parquet, Arrow IPC/Feather v2, JSON (array of records) and NDJSON", .path.display())]
    Unsupported { path: PathBuf, detected: String },

    #[error("{} looks like binary data, not text ({detail}); if it is a spreadsheet or Parquet file, it is damaged or truncated", .path.display())]
    Binary { path: PathBuf, detail: String },

    #[error("malformed CSV in {}{}: {message}", .path.display(), .line.map(|l| format!(" near line {l}")).unwrap_or_default())]
    MalformedCsv {
        path: PathBuf,
        line: Option<u64>,
        message: String,
    },

    #[error("{} is password-protected (encrypted); save an unprotected copy and load that", .path.display())]
    Encrypted { path: PathBuf },

    #[error("{} could not be read as {format}: {message}", .path.display())]
    Corrupt {
        path: PathBuf,
        format: &'static str,
        message: String,
    },

    #[error(
        "the text encoding '{name}' is not known; use a WHATWG label such as utf-8, utf-16le, utf-16be, windows-1252, iso-8859-1, shift_jis"
    )]
    UnknownEncoding { name: String },

    #[error("invalid option: {0}")]
    InvalidOption(String),

    #[error("no sheet named {wanted:?} in {}; sheets: {}", .path.display(), .available.join(", "))]
    NoSuchSheet {
        path: PathBuf,
        wanted: Vec<String>,
        available: Vec<String>,
    },

    #[error("nothing could be loaded from {}: {}", .path.display(), .problems.join("; "))]
    NothingLoaded {
        path: PathBuf,
        problems: Vec<String>,
    },

    #[error("reading {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("reading {}: {source}", .path.display())]
    Polars {
        path: PathBuf,
        #[source]
        source: polars::error::PolarsError,
    },
}

impl IngestError {
    /// The error with the path of `src.read` shown as `src.shown`.
    pub(crate) fn shown_as(mut self, src: &crate::Source) -> Self {
        if src.read == src.shown {
            return self;
        }
        let fix = |p: &mut PathBuf| {
            if *p == src.read {
                *p = src.shown.clone();
            }
        };
        match &mut self {
            IngestError::NotFound { path }
            | IngestError::IsDirectory { path }
            | IngestError::PermissionDenied { path }
            | IngestError::Empty { path }
            | IngestError::FileTooLarge { path, .. }
            | IngestError::TooManyRows { path, .. }
            | IngestError::TooManyColumns { path, .. }
            | IngestError::TooComplex { path, .. }
            | IngestError::Unsupported { path, .. }
            | IngestError::Binary { path, .. }
            | IngestError::MalformedCsv { path, .. }
            | IngestError::Encrypted { path }
            | IngestError::Corrupt { path, .. }
            | IngestError::NoSuchSheet { path, .. }
            | IngestError::NothingLoaded { path, .. }
            | IngestError::Io { path, .. }
            | IngestError::Polars { path, .. } => fix(path),
            IngestError::UnknownEncoding { .. } | IngestError::InvalidOption(_) => {}
        }
        self
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        let path = path.to_path_buf();
        match source.kind() {
            NotFound => IngestError::NotFound { path },
            PermissionDenied => IngestError::PermissionDenied { path },
            IsADirectory => IngestError::IsDirectory { path },
            _ => IngestError::Io { path, source },
        }
    }
}

pub type Result<T, E = IngestError> = std::result::Result<T, E>;

/// Bytes as a person reads them: `3.1 GB`, `512 KB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
