//! Parquet, Arrow IPC and JSON through polars' own readers.

use std::collections::HashSet;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::Read;
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
    if matches!(format, Format::Json | Format::Ndjson) {
        check_json_shape(path, limits)?;
    }
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

/// What a JSON document would expand to, measured without parsing it.
#[derive(Debug, Default, PartialEq, Eq)]
struct JsonShape {
    depth: usize,
    objects: u64,
    distinct_keys: u64,
}

/// Scans JSON (or NDJSON) text byte by byte: polars parses and infers
/// nested values recursively (a document nested 10,000 levels deep overflows
/// the stack) and makes a column of every key it sees in any object (a small
/// file of many distinct keys in many objects asks for billions of cells).
fn json_shape(mut input: impl Read, stop_depth: usize) -> std::io::Result<JsonShape> {
    const KEY_CAP: usize = 1_000_000;
    let mut shape = JsonShape::default();
    let mut keys: HashSet<u64> = HashSet::new();
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    // A string just closed whose hash is a key if a ':' follows.
    let mut pending: Option<u64> = None;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        for &b in &buf[..n] {
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                    pending = Some(hasher.finish());
                    continue;
                }
                b.hash(&mut hasher);
                continue;
            }
            if let Some(key) = pending
                && !b.is_ascii_whitespace()
            {
                if b == b':' && keys.len() < KEY_CAP {
                    keys.insert(key);
                }
                pending = None;
            }
            match b {
                b'"' => {
                    in_string = true;
                    hasher = std::collections::hash_map::DefaultHasher::new();
                }
                b'{' | b'[' => {
                    depth += 1;
                    shape.objects += u64::from(b == b'{');
                    if depth > shape.depth {
                        shape.depth = depth;
                        if depth > stop_depth {
                            return Ok(shape);
                        }
                    }
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    shape.distinct_keys = keys.len() as u64;
    Ok(shape)
}

fn check_json_shape(path: &Path, limits: &Limits) -> Result<()> {
    let file = File::open(path).map_err(|e| IngestError::io(path, e))?;
    let shape = json_shape(std::io::BufReader::new(file), limits.max_json_depth)
        .map_err(|e| IngestError::io(path, e))?;
    if shape.depth > limits.max_json_depth {
        return Err(IngestError::TooComplex {
            path: path.to_path_buf(),
            what: format!(
                "nests arrays and objects more than {} levels deep",
                limits.max_json_depth
            ),
            limit: format!("{} levels", limits.max_json_depth),
        });
    }
    let cells = shape.objects.saturating_mul(shape.distinct_keys.max(1));
    if cells > limits.max_cells {
        return Err(IngestError::TooComplex {
            path: path.to_path_buf(),
            what: format!(
                "has {} objects and {} distinct keys, which could expand to {cells} cells",
                shape.objects, shape.distinct_keys
            ),
            limit: format!("{} cells", limits.max_cells),
        });
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(text: &str) -> JsonShape {
        json_shape(text.as_bytes(), usize::MAX).unwrap()
    }

    #[test]
    fn json_shapes_are_measured_without_parsing() {
        assert_eq!(
            shape(r#"[{"a": 1, "b": "x{["}, {"a": 2, "c": null}]"#),
            JsonShape {
                depth: 2,
                objects: 2,
                distinct_keys: 3
            }
        );
        // A quoted brace or an escaped quote is text, not structure.
        assert_eq!(shape(r#"{"k": "\"{{{"}"#).depth, 1);
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(
            json_shape(deep.as_bytes(), 64).unwrap().depth,
            65,
            "stops early"
        );
    }
}
