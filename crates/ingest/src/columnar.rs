//! Parquet, Arrow IPC and JSON through polars' own readers.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;

use crate::detect::Format;
use crate::error::{IngestError, Result};
use crate::{Limits, LoadOptions};

pub(crate) fn load(
    path: &Path,
    format: Format,
    opts: &LoadOptions,
    limits: &Limits,
) -> Result<(DataFrame, Vec<String>)> {
    let file = || File::open(path).map_err(|e| IngestError::io(path, e));
    let cap = opts.max_rows.unwrap_or(limits.max_rows.saturating_add(1));
    let corrupt = |e: PolarsError| IngestError::Corrupt {
        path: path.to_path_buf(),
        format: format.name(),
        message: e.to_string().lines().next().unwrap_or("").to_string(),
    };
    let df = match format {
        Format::Parquet => ParquetReader::new(file()?)
            .with_slice(Some((0, cap)))
            .finish()
            .map_err(corrupt)?,
        Format::Ipc => IpcReader::new(file()?)
            .with_n_rows(Some(cap))
            .finish()
            .map_err(corrupt)?,
        Format::IpcStream => IpcStreamReader::new(file()?)
            .with_n_rows(Some(cap))
            .finish()
            .map_err(corrupt)?,
        Format::Json | Format::Ndjson => JsonReader::new(file()?)
            .with_json_format(if format == Format::Json {
                JsonFormat::Json
            } else {
                JsonFormat::JsonLines
            })
            .infer_schema_len(None)
            .finish()
            .map_err(corrupt)?,
        _ => unreachable!("columnar::load handles columnar formats only"),
    };
    let mut notes = Vec::new();
    if opts.max_rows.is_none() && df.height() > limits.max_rows {
        return Err(IngestError::TooManyRows {
            path: path.to_path_buf(),
            limit: limits.max_rows,
        });
    }
    let df = match opts.max_rows {
        Some(max) if df.height() >= max => {
            notes.push(format!("loaded only the first {max} rows (max_rows)"));
            df.head(Some(max))
        }
        _ => df,
    };
    let df = if opts.skip_rows > 0 {
        notes.push(format!("skipped the first {} rows", opts.skip_rows));
        df.slice(opts.skip_rows as i64, usize::MAX)
    } else {
        df
    };
    Ok((df, notes))
}

/// Column names with their types.
pub(crate) type Schema = Vec<(String, String)>;

/// Row count and schema without reading the data (Parquet only).
pub(crate) fn peek(path: &Path, format: Format) -> Result<Option<(usize, Schema)>> {
    let file = File::open(path).map_err(|e| IngestError::io(path, e))?;
    let corrupt = |e: PolarsError| IngestError::Corrupt {
        path: path.to_path_buf(),
        format: format.name(),
        message: e.to_string(),
    };
    let (rows, schema) = match format {
        Format::Parquet => {
            let mut reader = ParquetReader::new(file);
            let rows = reader.num_rows().map_err(corrupt)?;
            let schema = reader.schema().map_err(corrupt)?;
            (
                rows,
                schema
                    .iter()
                    .map(|(name, field)| (name.to_string(), format!("{:?}", field.dtype())))
                    .collect(),
            )
        }
        _ => return Ok(None),
    };
    Ok(Some((rows, schema)))
}
