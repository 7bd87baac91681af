//! What kind of file is this? Decided by content first, extension second.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::Serialize;

use crate::error::{IngestError, Result};

/// A tabular format we can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Delimited text: CSV, TSV, TXT.
    Csv,
    Xlsx,
    Xlsm,
    Xlsb,
    Xls,
    Ods,
    Parquet,
    /// Arrow IPC file (Feather v2).
    Ipc,
    /// Arrow IPC stream.
    IpcStream,
    /// A JSON array of records.
    Json,
    /// One JSON record per line.
    Ndjson,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "delimited text",
            Format::Xlsx => "Excel workbook (.xlsx)",
            Format::Xlsm => "Excel macro-enabled workbook (.xlsm)",
            Format::Xlsb => "Excel binary workbook (.xlsb)",
            Format::Xls => "Excel 97-2003 workbook (.xls)",
            Format::Ods => "OpenDocument spreadsheet (.ods)",
            Format::Parquet => "Parquet",
            Format::Ipc => "Arrow IPC / Feather",
            Format::IpcStream => "Arrow IPC stream",
            Format::Json => "JSON",
            Format::Ndjson => "NDJSON",
        }
    }

    pub fn is_workbook(self) -> bool {
        matches!(
            self,
            Format::Xlsx | Format::Xlsm | Format::Xlsb | Format::Xls | Format::Ods
        )
    }
}

/// The outcome of detection.
#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    pub format: Format,
    /// A note when content and extension disagree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

const HEAD: usize = 64 * 1024;

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Reads up to 64 KiB from the start of the file.
pub(crate) fn read_head(path: &Path) -> Result<Vec<u8>> {
    let mut file = File::open(path).map_err(|e| IngestError::io(path, e))?;
    let mut head = Vec::with_capacity(HEAD);
    file.by_ref()
        .take(HEAD as u64)
        .read_to_end(&mut head)
        .map_err(|e| IngestError::io(path, e))?;
    Ok(head)
}

/// Detects the format of the file at `path` (known to people as `shown`,
/// whose extension is compared with the content) whose first bytes are `head`.
pub fn detect(path: &Path, shown: &Path, head: &[u8]) -> Result<Detection> {
    let ext = extension(shown);
    let by_content = sniff_magic(path, &ext, head)?;
    let format = match by_content {
        Some(format) => format,
        None => {
            return Err(IngestError::Unsupported {
                path: path.to_path_buf(),
                detected: "unrecognised content".into(),
            });
        }
    };
    let expected = match ext.as_str() {
        "csv" | "tsv" | "txt" | "tab" | "dat" | "psv" => Some(Format::Csv),
        "xlsx" => Some(Format::Xlsx),
        "xlsm" => Some(Format::Xlsm),
        "xlsb" => Some(Format::Xlsb),
        "xls" => Some(Format::Xls),
        "ods" => Some(Format::Ods),
        "parquet" | "pq" => Some(Format::Parquet),
        "arrow" | "feather" | "ipc" => Some(Format::Ipc),
        "json" => Some(Format::Json),
        "ndjson" | "jsonl" => Some(Format::Ndjson),
        _ => None,
    };
    let note = match expected {
        Some(e) if !compatible(e, format) => Some(format!(
            "the extension '.{ext}' suggests {} but the content is {}; loaded as {}",
            e.name(),
            format.name(),
            format.name()
        )),
        _ => None,
    };
    Ok(Detection { format, note })
}

fn compatible(expected: Format, found: Format) -> bool {
    use Format::*;
    expected == found
        || matches!(
            (expected, found),
            (Xlsx, Xlsm) | (Xlsm, Xlsx) | (Ipc, IpcStream) | (Json, Ndjson) | (Ndjson, Json)
        )
}

fn sniff_magic(path: &Path, ext: &str, head: &[u8]) -> Result<Option<Format>> {
    if head.starts_with(b"PAR1") {
        return Ok(Some(Format::Parquet));
    }
    if head.starts_with(b"ARROW1") {
        return Ok(Some(Format::Ipc));
    }
    if head.starts_with(&[0xFF, 0xFF, 0xFF, 0xFF]) && head.len() > 8 {
        return Ok(Some(Format::IpcStream));
    }
    if head.starts_with(b"FEA1") {
        return Err(IngestError::Unsupported {
            path: path.to_path_buf(),
            detected: "Feather v1 (re-save it as Feather v2 / Arrow IPC, or Parquet)".into(),
        });
    }
    if head.starts_with(b"PK\x03\x04") {
        return zip_kind(path, ext).map(Some);
    }
    if head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        // OLE compound file: an .xls, or an encrypted OOXML workbook.
        if contains_utf16(head, "EncryptedPackage")
            || file_contains_utf16(path, "EncryptedPackage")?
        {
            return Err(IngestError::Encrypted {
                path: path.to_path_buf(),
            });
        }
        return Ok(Some(Format::Xls));
    }
    for (magic, what) in [
        (&b"\x1f\x8b"[..], "a gzip archive (decompress it first)"),
        (b"BZh", "a bzip2 archive (decompress it first)"),
        (b"\x28\xb5\x2f\xfd", "a zstd archive (decompress it first)"),
        (
            b"%PDF",
            "a PDF document (export its tables to CSV or Excel first)",
        ),
        (
            b"SQLite format 3",
            "an SQLite database (export a table to CSV or Parquet)",
        ),
        (b"\x89PNG", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"Obj\x01", "an Avro file (convert it to Parquet)"),
    ] {
        if head.starts_with(magic) {
            return Err(IngestError::Unsupported {
                path: path.to_path_buf(),
                detected: what.into(),
            });
        }
    }
    if head.starts_with(b"<?xml") || head.starts_with(b"<html") || head.starts_with(b"<!DOCTYPE") {
        return Err(IngestError::Unsupported {
            path: path.to_path_buf(),
            detected: "an XML/HTML document".into(),
        });
    }
    // Text: JSON or delimited.
    let text_start = strip_bom(head);
    if crate::text::looks_utf16(head).is_none() && text_start.contains(&0) {
        return Err(IngestError::Binary {
            path: path.to_path_buf(),
            detail: "it contains NUL bytes".into(),
        });
    }
    let first = text_start
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .copied();
    match first {
        Some(b'[') => Ok(Some(Format::Json)),
        Some(b'{') => Ok(Some(json_object_kind(text_start))),
        _ => {
            let binary_ratio = text_start
                .iter()
                .filter(|&&b| b < 0x09 || (0x0E..0x20).contains(&b))
                .count() as f64
                / text_start.len().max(1) as f64;
            if binary_ratio > 0.05 && crate::text::looks_utf16(head).is_none() {
                return Err(IngestError::Binary {
                    path: path.to_path_buf(),
                    detail: format!(
                        "{:.0}% of the first bytes are control characters",
                        binary_ratio * 100.0
                    ),
                });
            }
            Ok(Some(Format::Csv))
        }
    }
}

fn strip_bom(head: &[u8]) -> &[u8] {
    head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head)
}

/// `{` starts either NDJSON (one object per line) or a single JSON object.
fn json_object_kind(text: &[u8]) -> Format {
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .map(|l| l.trim_ascii())
        .filter(|l| !l.is_empty())
        .take(3)
        .collect();
    let multi_line_records = lines.len() >= 2
        && lines
            .iter()
            .take(2)
            .all(|l| l.starts_with(b"{") && l.ends_with(b"}"));
    if multi_line_records || lines.len() == 1 {
        Format::Ndjson
    } else {
        Format::Json
    }
}

fn zip_kind(path: &Path, ext: &str) -> Result<Format> {
    let file = File::open(path).map_err(|e| IngestError::io(path, e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| IngestError::Corrupt {
        path: path.to_path_buf(),
        format: "a zip-based workbook",
        message: e.to_string(),
    })?;
    if let Ok(mut mimetype) = archive.by_name("mimetype") {
        let mut kind = String::new();
        let _ = mimetype.read_to_string(&mut kind);
        if kind.contains("opendocument.spreadsheet") {
            return Ok(Format::Ods);
        }
        return Err(IngestError::Unsupported {
            path: path.to_path_buf(),
            detected: format!("an OpenDocument file of type {}", kind.trim()),
        });
    }
    let names: Vec<String> = archive
        .file_names()
        .filter_map(|n| n.ok())
        .map(|n| n.to_string())
        .collect();
    if names.iter().any(|n| n == "xl/workbook.bin") {
        return Ok(Format::Xlsb);
    }
    if names.iter().any(|n| n == "xl/workbook.xml") {
        let macro_enabled = names.iter().any(|n| n == "xl/vbaProject.bin") || ext == "xlsm";
        return Ok(if macro_enabled {
            Format::Xlsm
        } else {
            Format::Xlsx
        });
    }
    if names.iter().any(|n| n.starts_with("word/")) {
        return Err(IngestError::Unsupported {
            path: path.to_path_buf(),
            detected: "a Word document".into(),
        });
    }
    Err(IngestError::Unsupported {
        path: path.to_path_buf(),
        detected: "a zip archive (unzip it and load the file inside)".into(),
    })
}

fn contains_utf16(haystack: &[u8], needle: &str) -> bool {
    let pattern: Vec<u8> = needle
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    haystack
        .windows(pattern.len())
        .any(|w| w == pattern.as_slice())
}

fn file_contains_utf16(path: &Path, needle: &str) -> Result<bool> {
    // Directory sectors of a compound file can sit anywhere; look through the
    // first 8 MiB and the last 1 MiB.
    let mut file = File::open(path).map_err(|e| IngestError::io(path, e))?;
    let len = file.metadata().map_err(|e| IngestError::io(path, e))?.len();
    let mut buf = Vec::new();
    file.by_ref()
        .take(8 << 20)
        .read_to_end(&mut buf)
        .map_err(|e| IngestError::io(path, e))?;
    if contains_utf16(&buf, needle) {
        return Ok(true);
    }
    if len > 8 << 20 {
        let mut tail = Vec::new();
        file.seek(SeekFrom::Start(len.saturating_sub(1 << 20)))
            .and_then(|_| file.read_to_end(&mut tail))
            .map_err(|e| IngestError::io(path, e))?;
        return Ok(contains_utf16(&tail, needle));
    }
    Ok(false)
}
