//! Delimited text: encoding detection, dialect sniffing, loading through
//! polars' multithreaded CSV reader.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE};
use polars::prelude::*;
use serde::Serialize;

use crate::error::{IngestError, Result};
use crate::naming::clean_column_names;
use crate::{Limits, LoadOptions};

/// Null markers recognised by default (the common spreadsheet and pandas ones).
pub const DEFAULT_NULL_VALUES: &[&str] = &[
    "", "NA", "N/A", "n/a", "#N/A", "NULL", "null", "NaN", "nan", "None", "<NA>", "#NA", "-NaN",
];

/// What sniffing found out about a text file.
#[derive(Debug, Clone, Serialize)]
pub struct TextInfo {
    /// The detected (or given) encoding, e.g. `UTF-8`, `UTF-16LE`, `windows-1252`.
    pub encoding: String,
    pub bom: bool,
    pub delimiter: String,
    pub quote: String,
    pub has_header: bool,
    pub columns: Vec<String>,
    /// A few data rows as text.
    pub sample_rows: Vec<Vec<String>>,
    /// Lines of the sample whose field count differs from the usual one.
    pub ragged_lines: usize,
    /// Columns whose values look like numbers written with decimal commas.
    pub decimal_comma_columns: Vec<String>,
    pub estimated_rows: u64,
}

/// Which encoding a text file is in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TextEncoding {
    pub encoding: &'static Encoding,
    pub bom: bool,
}

impl TextEncoding {
    fn label(&self) -> String {
        let name = self.encoding.name();
        if self.encoding == UTF_8 && self.bom {
            "UTF-8 (with BOM)".into()
        } else {
            name.into()
        }
    }
}

/// A UTF-16 byte order, by BOM or by the pattern of zero bytes in ASCII text.
pub(crate) fn looks_utf16(head: &[u8]) -> Option<&'static Encoding> {
    if head.starts_with(&[0xFF, 0xFE]) {
        return Some(UTF_16LE);
    }
    if head.starts_with(&[0xFE, 0xFF]) {
        return Some(UTF_16BE);
    }
    let sample = &head[..head.len().min(4096) & !1];
    if sample.len() < 8 {
        return None;
    }
    let pairs = sample.len() / 2;
    let even_zero = sample.iter().step_by(2).filter(|&&b| b == 0).count();
    let odd_zero = sample
        .iter()
        .skip(1)
        .step_by(2)
        .filter(|&&b| b == 0)
        .count();
    if odd_zero * 10 > pairs * 3 && even_zero * 20 < pairs {
        Some(UTF_16LE)
    } else if even_zero * 10 > pairs * 3 && odd_zero * 20 < pairs {
        Some(UTF_16BE)
    } else {
        None
    }
}

/// Detects the encoding of `bytes` (the whole file when `complete`).
pub(crate) fn detect_encoding(bytes: &[u8], complete: bool) -> TextEncoding {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return TextEncoding {
            encoding: UTF_8,
            bom: true,
        };
    }
    if let Some(enc) = looks_utf16(bytes) {
        return TextEncoding {
            encoding: enc,
            bom: bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]),
        };
    }
    match std::str::from_utf8(bytes) {
        Ok(_) => {
            return TextEncoding {
                encoding: UTF_8,
                bom: false,
            };
        }
        // Only the last character was cut off by the sample window.
        Err(e) if !complete && e.error_len().is_none() => {
            return TextEncoding {
                encoding: UTF_8,
                bom: false,
            };
        }
        Err(_) => {}
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, complete);
    TextEncoding {
        encoding: detector.guess(None, chardetng::Utf8Detection::Allow),
        bom: false,
    }
}

pub(crate) fn encoding_for_label(label: &str) -> Result<&'static Encoding> {
    let normalized = label.trim().to_ascii_lowercase();
    let alias = match normalized.as_str() {
        "latin-1" | "latin_1" => "latin1",
        "utf8" | "utf-8-sig" | "utf8-bom" | "utf-8-bom" => "utf-8",
        "utf16" | "utf-16" => "utf-16le",
        "cp1252" => "windows-1252",
        other => other,
    };
    Encoding::for_label(alias.as_bytes()).ok_or_else(|| IngestError::UnknownEncoding {
        name: label.to_string(),
    })
}

/// Decodes text, dropping a BOM.
fn decode<'a>(bytes: &'a [u8], encoding: &'static Encoding) -> Cow<'a, str> {
    let (text, _) = encoding.decode_with_bom_removal(bytes);
    text
}

/// Bytes read per step when a file is scanned or transcoded: memory stays
/// bounded by this, whatever the file's size.
const CHUNK: usize = 8 << 20;

/// Detects the encoding of a whole file, reading it in chunks (the head was
/// not enough: it looked like UTF-8 but the rest is not).
fn detect_encoding_streaming(path: &Path) -> Result<TextEncoding> {
    let mut file = File::open(path).map_err(|e| IngestError::io(path, e))?;
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf).map_err(|e| IngestError::io(path, e))?;
        if n == 0 {
            detector.feed(&[], true);
            break;
        }
        detector.feed(&buf[..n], false);
    }
    Ok(TextEncoding {
        encoding: detector.guess(None, chardetng::Utf8Detection::Allow),
        bom: false,
    })
}

/// Transcodes a text file to UTF-8 (without BOM) into a temporary file,
/// chunk by chunk, so that a large legacy file never sits in memory twice.
fn transcode(path: &Path, encoding: &'static Encoding) -> Result<tempfile::NamedTempFile> {
    let io = |e: std::io::Error| IngestError::io(path, e);
    let mut input = BufReader::with_capacity(CHUNK, File::open(path).map_err(io)?);
    let temp = tempfile::Builder::new()
        .prefix("dfmcp-transcoded-")
        .suffix(".csv")
        .tempfile()
        .map_err(io)?;
    let mut output = BufWriter::with_capacity(CHUNK, temp.as_file());
    let mut decoder = encoding.new_decoder_with_bom_removal();
    let mut buf = vec![0u8; CHUNK];
    let mut text = String::new();
    loop {
        let n = input.read(&mut buf).map_err(io)?;
        let last = n == 0;
        text.clear();
        let needed = decoder
            .max_utf8_buffer_length(n)
            .unwrap_or(n.saturating_mul(3) + 16);
        text.reserve(needed);
        let (_, _, _) = decoder.decode_to_string(&buf[..n], &mut text, last);
        output.write_all(text.as_bytes()).map_err(io)?;
        if last {
            break;
        }
    }
    output.flush().map_err(io)?;
    drop(output);
    Ok(temp)
}

/// The number of fields of the file's first line after `skip` lines, read in
/// chunks up to `max_bytes`: `None` when the line is longer than that.
fn first_line_fields(
    path: &Path,
    delimiter: u8,
    skip: usize,
    max_bytes: usize,
) -> Result<Option<usize>> {
    let mut file = BufReader::new(File::open(path).map_err(|e| IngestError::io(path, e))?);
    let mut buf = vec![0u8; 1 << 20];
    let (mut fields, mut in_quotes, mut skipped, mut seen) = (1usize, false, 0usize, 0usize);
    loop {
        let n = file.read(&mut buf).map_err(|e| IngestError::io(path, e))?;
        if n == 0 {
            return Ok(Some(fields));
        }
        for &b in &buf[..n] {
            if skipped < skip {
                skipped += usize::from(b == b'\n');
                continue;
            }
            seen += 1;
            match b {
                b'"' => in_quotes = !in_quotes,
                b'\n' if !in_quotes => return Ok(Some(fields)),
                b if b == delimiter && !in_quotes => fields += 1,
                _ => {}
            }
        }
        if seen > max_bytes {
            return Ok(None);
        }
    }
}

/// Splits text into records of fields, honouring quotes (doubled quotes
/// escape; quoted fields may hold delimiters and newlines). Stops after
/// `max_records`.
pub(crate) fn split_records(
    text: &str,
    delim: char,
    quote: char,
    max_records: usize,
) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == quote {
                if chars.peek() == Some(&quote) {
                    field.push(quote);
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            c if c == quote && field.trim().is_empty() => {
                field.clear();
                in_quotes = true;
            }
            c if c == delim => record.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                if records.len() >= max_records {
                    return records;
                }
            }
            c => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

const DELIMITERS: [char; 4] = [',', ';', '\t', '|'];

/// Picks the delimiter that splits the sample into the most consistent
/// number of fields (more than one).
pub(crate) fn sniff_delimiter(text: &str) -> (char, usize) {
    let mut best = (',', 1, 0.0f64);
    for delim in DELIMITERS {
        let records: Vec<Vec<String>> = split_records(text, delim, '"', 200)
            .into_iter()
            .filter(|r| !(r.len() == 1 && r[0].trim().is_empty()))
            .collect();
        if records.is_empty() {
            continue;
        }
        let (mode, freq) = mode_of(records.iter().map(Vec::len));
        if mode < 2 {
            continue;
        }
        let consistency = freq as f64 / records.len() as f64;
        // Consistency first; among equally consistent splits, more fields.
        let score = consistency * 1000.0 + mode.min(999) as f64;
        if score > best.2 {
            best = (delim, mode, score);
        }
    }
    (best.0, best.1)
}

fn mode_of(values: impl Iterator<Item = usize>) -> (usize, usize) {
    let mut counts = std::collections::HashMap::new();
    for v in values {
        *counts.entry(v).or_insert(0usize) += 1;
    }
    counts
        .into_iter()
        .max_by_key(|&(value, count)| (count, value))
        .unwrap_or((1, 0))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CellKind {
    Empty,
    Integer,
    Float,
    Bool,
    Date,
    Text(usize),
}

fn kind_of(value: &str) -> CellKind {
    let v = value.trim();
    if v.is_empty() || DEFAULT_NULL_VALUES.contains(&v) {
        CellKind::Empty
    } else if v.parse::<i64>().is_ok() {
        CellKind::Integer
    } else if v.parse::<f64>().is_ok() || is_decimal_comma_number(v) {
        CellKind::Float
    } else if matches!(v.to_ascii_lowercase().as_str(), "true" | "false") {
        CellKind::Bool
    } else if looks_like_iso_date(v) {
        CellKind::Date
    } else {
        CellKind::Text(v.chars().count())
    }
}

fn looks_like_iso_date(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
}

/// `1.234,56`, `-3,5`, `12,0`: a number written with a decimal comma.
pub(crate) fn is_decimal_comma_number(v: &str) -> bool {
    let v = v.trim();
    let v = v.strip_prefix(['-', '+']).unwrap_or(v);
    let Some((int, frac)) = v.rsplit_once(',') else {
        return false;
    };
    if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) || int.is_empty() {
        return false;
    }
    let groups: Vec<&str> = int.split('.').collect();
    if groups.len() == 1 {
        return int.bytes().all(|b| b.is_ascii_digit());
    }
    groups[0].len() <= 3
        && !groups[0].is_empty()
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
        && groups[1..].iter().all(|g| g.len() == 3)
}

/// Does the first record look like a header? Votes per column: a header cell
/// that does not fit the type of the values below it votes yes.
pub(crate) fn sniff_header(records: &[Vec<String>]) -> bool {
    let Some((first, rest)) = records.split_first() else {
        return true;
    };
    if rest.is_empty() {
        // A lone line: a header if no cell is a number.
        return first
            .iter()
            .all(|c| !matches!(kind_of(c), CellKind::Integer | CellKind::Float));
    }
    let mut votes = 0i32;
    for (col, head) in first.iter().enumerate() {
        let head_kind = kind_of(head);
        let kinds: Vec<CellKind> = rest
            .iter()
            .filter_map(|r| r.get(col))
            .map(|c| kind_of(c))
            .filter(|k| *k != CellKind::Empty)
            .collect();
        if kinds.is_empty() {
            continue;
        }
        let numeric = kinds
            .iter()
            .all(|k| matches!(k, CellKind::Integer | CellKind::Float));
        let same = |want: fn(&CellKind) -> bool| kinds.iter().all(want);
        if numeric || same(|k| *k == CellKind::Bool) || same(|k| *k == CellKind::Date) {
            // Typed column: does the header cell break the pattern?
            votes += if std::mem::discriminant(&head_kind) == std::mem::discriminant(&kinds[0])
                || (numeric && matches!(head_kind, CellKind::Integer | CellKind::Float))
            {
                -1
            } else {
                1
            };
        } else if let CellKind::Text(len) = head_kind {
            let lens: Vec<usize> = kinds
                .iter()
                .filter_map(|k| {
                    if let CellKind::Text(l) = k {
                        Some(*l)
                    } else {
                        None
                    }
                })
                .collect();
            if !lens.is_empty() && lens.iter().all(|l| *l == lens[0]) {
                votes += if len != lens[0] { 1 } else { -1 };
            }
        }
    }
    let unique = {
        let mut seen = std::collections::HashSet::new();
        first.iter().all(|c| seen.insert(c.trim()))
    };
    if votes == 0 {
        // No evidence either way: most files have a header, unless the first
        // row has blanks or repeats, which headers rarely do.
        return unique && first.iter().all(|c| !c.trim().is_empty());
    }
    votes > 0
}

/// Everything sniffing decides, before loading.
pub(crate) struct Dialect {
    pub encoding: TextEncoding,
    pub delimiter: char,
    pub has_header: bool,
    pub info: TextInfo,
}

/// Sniffs the dialect from the head of the file.
pub(crate) fn sniff(
    head: &[u8],
    file_len: u64,
    opts: &LoadOptions,
    limits: &Limits,
) -> Result<Dialect> {
    let complete = head.len() as u64 >= file_len;
    let encoding = match &opts.encoding {
        Some(label) => TextEncoding {
            encoding: encoding_for_label(label)?,
            bom: head.starts_with(b"\xEF\xBB\xBF")
                || head.starts_with(&[0xFF, 0xFE])
                || head.starts_with(&[0xFE, 0xFF]),
        },
        None => detect_encoding(head, complete),
    };
    let decoded = decode(head, encoding.encoding);
    let mut text: &str = &decoded;
    if !complete {
        // Drop the partial last line.
        if let Some(pos) = text.rfind('\n') {
            text = &text[..pos + 1];
        }
    }
    // Regression: a huge skip_rows on a short file spun here for ages.
    for _ in 0..opts.skip_rows {
        match text.split_once('\n') {
            Some((_, rest)) => text = rest,
            None => {
                text = "";
                break;
            }
        }
    }
    if text.trim().is_empty() && opts.skip_rows > 0 {
        return Err(IngestError::InvalidOption(if complete {
            format!("skip_rows {} skips every line of the file", opts.skip_rows)
        } else {
            format!(
                "skip_rows {} skips past the part of the file used to detect its layout; skip fewer rows, or give the delimiter and whether there is a header",
                opts.skip_rows
            )
        }));
    }
    let (delimiter, fields) = match opts.delimiter {
        Some(d) => (d, 0),
        None => sniff_delimiter(text),
    };
    let records: Vec<Vec<String>> = split_records(text, delimiter, '"', 200)
        .into_iter()
        .filter(|r| !(r.len() == 1 && r[0].trim().is_empty()))
        .collect();
    let fields = if fields == 0 {
        mode_of(records.iter().map(Vec::len)).0
    } else {
        fields
    };
    let widest = records.iter().map(Vec::len).max().unwrap_or(0).max(fields);
    if widest > limits.max_columns {
        return Err(IngestError::TooManyColumns {
            path: std::path::PathBuf::new(),
            columns: widest,
            limit: limits.max_columns,
        });
    }
    let has_header = opts.has_header.unwrap_or_else(|| sniff_header(&records));
    let ragged_lines = records.iter().filter(|r| r.len() != fields).count();
    let (columns, data): (Vec<String>, &[Vec<String>]) = if has_header {
        match records.split_first() {
            Some((first, rest)) => (clean_column_names(first), rest),
            None => (Vec::new(), &[]),
        }
    } else {
        (
            (1..=fields).map(|i| format!("column_{i}")).collect(),
            &records[..],
        )
    };
    let decimal_comma_columns = if delimiter == ',' {
        Vec::new()
    } else {
        columns
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                let values: Vec<&str> = data
                    .iter()
                    .filter_map(|r| r.get(*i))
                    .map(|v| v.trim())
                    .filter(|v| !v.is_empty())
                    .collect();
                values
                    .iter()
                    .any(|v| v.contains(',') && is_decimal_comma_number(v))
                    && values
                        .iter()
                        .all(|v| is_decimal_comma_number(v) || v.parse::<i64>().is_ok())
            })
            .map(|(_, c)| c.clone())
            .collect()
    };
    let sample_bytes = text.len().max(1) as u64;
    let estimated_rows = if complete {
        data.len() as u64
    } else {
        let per_record = sample_bytes / (records.len().max(1) as u64);
        (file_len / per_record.max(1)).saturating_sub(has_header as u64)
    };
    let info = TextInfo {
        encoding: encoding.label(),
        bom: encoding.bom,
        delimiter: match delimiter {
            '\t' => "\\t".into(),
            d => d.to_string(),
        },
        quote: "\"".into(),
        has_header,
        columns,
        sample_rows: data.iter().take(5).cloned().collect(),
        ragged_lines,
        decimal_comma_columns,
        estimated_rows,
    };
    Ok(Dialect {
        encoding,
        delimiter,
        has_header,
        info,
    })
}

/// Loads a delimited text file into one DataFrame. Returns notes for the user.
pub(crate) fn load_csv(
    path: &Path,
    head: &[u8],
    file_len: u64,
    opts: &LoadOptions,
    limits: &Limits,
) -> Result<(DataFrame, Vec<String>, TextInfo)> {
    let mut dialect = sniff(head, file_len, opts, limits).map_err(|e| match e {
        IngestError::TooManyColumns { columns, limit, .. } => IngestError::TooManyColumns {
            path: path.to_path_buf(),
            columns,
            limit,
        },
        other => other,
    })?;
    // A first line longer than the sniffed head (one line of millions of
    // fields) would make the reader build millions of columns: count them
    // first.
    let head_has_line = head.contains(&b'\n') || head.len() as u64 >= file_len;
    if !head_has_line && dialect.delimiter.is_ascii() && dialect.encoding.encoding == UTF_8 {
        match first_line_fields(path, dialect.delimiter as u8, opts.skip_rows, 64 << 20)? {
            Some(fields) if fields > limits.max_columns => {
                return Err(IngestError::TooManyColumns {
                    path: path.to_path_buf(),
                    columns: fields,
                    limit: limits.max_columns,
                });
            }
            Some(_) => {}
            None => {
                return Err(IngestError::TooComplex {
                    path: path.to_path_buf(),
                    what: "has a first line longer than 64 MB".into(),
                    limit: "64 MB per line".into(),
                });
            }
        }
    }
    let mut notes = Vec::new();
    if dialect.info.ragged_lines > 0 {
        notes.push(format!(
            "{} of the first lines have a different number of fields than the rest; short rows were padded with nulls and long rows truncated",
            dialect.info.ragged_lines
        ));
    }
    if !dialect.info.decimal_comma_columns.is_empty() && !opts.decimal_comma {
        notes.push(format!(
            "columns {} look like numbers written with decimal commas and were kept as text; load again with decimal_comma=true to parse them as numbers",
            dialect.info.decimal_comma_columns.join(", ")
        ));
    }
    let row_cap = opts.max_rows.unwrap_or(limits.max_rows.saturating_add(1));
    let utf8 = dialect.encoding.encoding == UTF_8;

    // UTF-8 goes straight from the file through polars' multithreaded reader;
    // anything else is transcoded, chunk by chunk, to a temporary UTF-8 file.
    let mut transcoded: Option<tempfile::NamedTempFile> = None;
    if !utf8 || dialect.encoding.bom {
        transcoded = Some(transcode(path, dialect.encoding.encoding)?);
        if !utf8 {
            notes.push(format!(
                "transcoded from {} to UTF-8",
                dialect.encoding.label()
            ));
        }
    }

    let tokens: Vec<String> = match &opts.null_values {
        Some(v) => v.clone(),
        None => DEFAULT_NULL_VALUES
            .iter()
            .map(|s| (*s).to_string())
            .collect(),
    };
    let source_path = |source: &Option<tempfile::NamedTempFile>| {
        source
            .as_ref()
            .map_or_else(|| path.to_path_buf(), |t| t.path().to_path_buf())
    };
    let nulls_in = |source: &Option<tempfile::NamedTempFile>| {
        null_values_in(&source_path(source), &tokens, dialect.delimiter as u8)
    };
    let attempt = |source: &Option<tempfile::NamedTempFile>,
                   null_values: &NullValues,
                   infer: Option<usize>|
     -> PolarsResult<DataFrame> {
        let options = CsvReadOptions::default()
            .with_has_header(dialect.has_header)
            .with_skip_rows(opts.skip_rows)
            .with_n_rows(Some(row_cap))
            .with_infer_schema_length(infer)
            .with_raise_if_empty(false)
            .with_parse_options(
                CsvParseOptions::default()
                    .with_separator(dialect.delimiter as u8)
                    .with_quote_char(Some(b'"'))
                    .with_null_values(Some(null_values.clone()))
                    .with_missing_is_null(true)
                    .with_truncate_ragged_lines(true)
                    // Dates are parsed after the read (see
                    // `parse_temporal_columns`): polars' own option runs date
                    // inference on every text field of the schema sample, which
                    // cost more than the whole read of a 1M-row file.
                    .with_try_parse_dates(false)
                    .with_decimal_comma(opts.decimal_comma),
            );
        options
            .try_into_reader_with_file_path(Some(source_path(source)))?
            .finish()
    };

    if !dialect.delimiter.is_ascii() {
        return Err(IngestError::InvalidOption(format!(
            "the delimiter must be a single ASCII character, got {:?}",
            dialect.delimiter
        )));
    }

    let mut null_values = nulls_in(&transcoded);
    let mut result = attempt(&transcoded, &null_values, Some(10_000));
    if let Err(e) = &result
        && is_utf8_error(e)
        && transcoded.is_none()
    {
        // The head was ASCII but the rest is not UTF-8: detect on the whole file.
        let encoding = match &opts.encoding {
            Some(_) => dialect.encoding,
            None => detect_encoding_streaming(path)?,
        };
        dialect.encoding = encoding;
        dialect.info.encoding = encoding.label();
        notes.push(format!(
            "the file is not valid UTF-8 past its first bytes; transcoded from {}",
            encoding.label()
        ));
        transcoded = Some(transcode(path, encoding.encoding)?);
        null_values = nulls_in(&transcoded);
        result = attempt(&transcoded, &null_values, Some(10_000));
    }
    if let Err(e) = &result
        && is_parse_error(e)
    {
        // A value late in the file did not fit the type inferred from the
        // first rows: infer from every row.
        result = attempt(&transcoded, &null_values, None);
        if result.is_err() {
            result = attempt(&transcoded, &null_values, Some(0)).inspect(|_| {
                notes.push(
                    "some columns mix values that no single type fits; every column was loaded as text (a cast can convert them)"
                        .into(),
                )
            });
        }
    }
    let mut df = result.map_err(|e| csv_error(path, e))?;
    if opts.max_rows.is_none() && df.height() > limits.max_rows {
        return Err(IngestError::TooManyRows {
            path: path.to_path_buf(),
            limit: limits.max_rows,
        });
    }
    if let Some(max) = opts.max_rows
        && df.height() >= max
    {
        notes.push(format!("loaded only the first {max} rows (max_rows)"));
    }
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    // The header as the file gives it (polars would call a repeated name
    // `x_duplicated_0`), cleaned the same way as for every other format.
    let cleaned = if dialect.has_header && dialect.info.columns.len() == names.len() {
        dialect.info.columns.clone()
    } else {
        clean_column_names(&names)
    };
    if cleaned != names {
        df.set_column_names(&cleaned)
            .map_err(|e| csv_error(path, e))?;
    }
    dialect.info.columns = cleaned;
    if opts.decimal_comma {
        parse_decimal_comma_columns(&mut df).map_err(|e| csv_error(path, e))?;
    }
    parse_temporal_columns(&mut df, &mut notes).map_err(|e| csv_error(path, e))?;
    Ok((df, notes, dialect.info))
}

/// The reader's null markers: of `tokens`, the empty one and those the file
/// at `path` holds as a whole field. polars compares every field with every
/// marker, which with the 13 defaults took a sixth of a 1M-row read; one
/// multi-pattern scan of the file finds the few that occur (usually none).
/// A marker is kept whenever the scan cannot rule it out: it holds a field
/// boundary, or the file cannot be read here.
fn null_values_in(path: &Path, tokens: &[String], delimiter: u8) -> NullValues {
    let boundary = field_boundary(delimiter);
    let (kept, sought): (Vec<&String>, Vec<&String>) = tokens
        .iter()
        .partition(|t| t.is_empty() || t.bytes().any(boundary));
    let found = if sought.is_empty() {
        Vec::new()
    } else {
        fields_present(path, &sought, boundary, 4 << 20)
            .unwrap_or_else(|_| vec![true; sought.len()])
    };
    let mut values: Vec<PlSmallStr> = kept.iter().map(|t| t.as_str().into()).collect();
    values.extend(
        sought
            .iter()
            .zip(found)
            .filter(|(_, found)| *found)
            .map(|(t, _)| PlSmallStr::from(t.as_str())),
    );
    match values.len() {
        1 => NullValues::AllColumnsSingle(values.remove(0)),
        _ => NullValues::AllColumns(values),
    }
}

/// Bytes that may end a field, as far as a null marker is concerned (spaces
/// too: counting more boundaries only keeps more markers).
fn field_boundary(delimiter: u8) -> impl Fn(u8) -> bool + Copy + Sync {
    move |b: u8| b == delimiter || matches!(b, b'"' | b'\r' | b'\n' | b' ' | b'\t')
}

/// Which of `tokens` occur in the file between two field boundaries (or
/// the file's start and end), searched a slice at a time in parallel, each
/// slice reaching a token's length into the next.
///
/// A non-overlapping leftmost-longest search misses nothing, because no
/// sought token holds a boundary byte: a token cut short by a longer match,
/// or starting inside one, has no boundary before or after it.
fn fields_present(
    path: &Path,
    tokens: &[&String],
    boundary: impl Fn(u8) -> bool + Sync,
    slice: usize,
) -> std::io::Result<Vec<bool>> {
    use aho_corasick::{AhoCorasick, MatchKind};
    use polars::polars_utils::mmap::MMapSemaphore;
    use rayon::prelude::*;

    let file = File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(vec![false; tokens.len()]);
    }
    // polars' reader maps the file the same way right after.
    let map = MMapSemaphore::new_from_file(&file).map_err(std::io::Error::other)?;
    let bytes: &[u8] = map.as_ref();
    let finder = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(tokens)
        .map_err(std::io::Error::other)?;
    let longest = tokens.iter().map(|t| t.len()).max().unwrap_or(0);
    let slice = slice.max(1);
    let found = (0..bytes.len().div_ceil(slice))
        .into_par_iter()
        .map(|i| {
            let start = i * slice;
            let end = (start + slice + longest).min(bytes.len());
            let mut found = vec![false; tokens.len()];
            for m in finder.find_iter(&bytes[start..end]) {
                let (s, e) = (start + m.start(), start + m.end());
                let before = s == 0 || boundary(bytes[s - 1]);
                let after = e == bytes.len() || boundary(bytes[e]);
                if before && after {
                    found[m.pattern().as_usize()] = true;
                }
            }
            found
        })
        .reduce(
            || vec![false; tokens.len()],
            |a, b| a.iter().zip(b).map(|(a, b)| *a || b).collect(),
        );
    Ok(found)
}

/// Formats tried on a column's first value before polars' per-value pattern
/// inference: with a known format polars parses with its fast, cached
/// parser, about five times quicker.
const DATE_FORMATS: &[&str] = &[
    "%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%d-%m-%Y", "%d/%m/%Y", "%d.%m.%Y",
];
const DATETIME_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S%.f",
    "%Y/%m/%d %H:%M",
    "%d/%m/%Y %H:%M:%S%.f",
    "%d/%m/%Y %H:%M",
    "%d.%m.%Y %H:%M:%S%.f",
    "%d.%m.%Y %H:%M",
    "%d-%m-%Y %H:%M:%S%.f",
    "%d-%m-%Y %H:%M",
];
const OFFSET_DATETIME_FORMATS: &[&str] = &["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z"];

/// Text columns whose values are all dates, datetimes (with or without an
/// offset) or times become Date, Datetime or Time. The kind is inferred from
/// the first value; a column where any value fails to parse stays text, with
/// a note, so no value is ever silently turned into a null.
fn parse_temporal_columns(df: &mut DataFrame, notes: &mut Vec<String>) -> PolarsResult<()> {
    let mut parsed_columns = Vec::new();
    for column in df.columns() {
        let Ok(text) = column.str() else { continue };
        let Some(first) = text.iter().flatten().next() else {
            continue;
        };
        let Some(parsed) = parse_temporal(text, first)? else {
            continue;
        };
        let failed = parsed.null_count() - text.null_count();
        if failed == 0 && day_month_ambiguous(&parsed, first)? {
            // 03/04/2024 is March or April: reading it one way without a
            // word would silently move every date of a month-first file.
            notes.push(format!(
                "column {} holds dates that read both day first and month first (no day is over 12); it was kept as text: parse_dates with day_first true or false reads it",
                column.name()
            ));
        } else if failed == 0 {
            parsed_columns.push(parsed.with_name(column.name().clone()).into_column());
        } else {
            notes.push(format!(
                "column {} looks like {} but {failed} value(s) do not parse as one; it was kept as text (a cast with a format can convert it)",
                column.name(),
                parsed.dtype()
            ));
        }
    }
    for column in parsed_columns {
        df.with_column(column)?;
    }
    Ok(())
}

/// Whether dates written day or month first (not year first) could be read
/// the other way round too: no day of the month is over 12.
fn day_month_ambiguous(parsed: &Series, first: &str) -> PolarsResult<bool> {
    let year_first = first
        .trim()
        .chars()
        .take_while(char::is_ascii_digit)
        .count()
        >= 4;
    if year_first || !matches!(parsed.dtype(), DataType::Date | DataType::Datetime(..)) {
        return Ok(false);
    }
    let days = parsed.cast(&DataType::Date)?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
    Ok(days.date()?.physical().iter().flatten().all(|d| {
        use chrono::Datelike;
        epoch
            .checked_add_signed(chrono::TimeDelta::days(d as i64))
            .is_none_or(|date| date.day() <= 12)
    }))
}

/// `text` parsed as the temporal type its first value suggests, or `None`
/// when that value is no date, datetime or time.
fn parse_temporal(text: &StringChunked, first: &str) -> PolarsResult<Option<Series>> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    use polars::time::chunkedarray::string::Pattern;
    use polars::time::chunkedarray::string::infer::{
        DatetimeInfer, TryFromWithUnit, coerce_string_to_date, coerce_string_to_datetime,
        infer_pattern_single,
    };

    let Some(pattern) = infer_pattern_single(first) else {
        return Ok(None);
    };
    let unit = TimeUnit::Microseconds;
    let ambiguous = StringChunked::from_slice(PlSmallStr::EMPTY, &["raise"]);
    let fits = |formats: &[&'static str], parses: &dyn Fn(&str) -> bool| {
        formats.iter().copied().find(|f| parses(f))
    };
    let fast = match pattern {
        Pattern::DateDMY | Pattern::DateYMD => {
            match fits(DATE_FORMATS, &|f| {
                NaiveDate::parse_from_str(first, f).is_ok()
            }) {
                Some(f) => Some(in_slices(text, |t| {
                    Ok(t.as_date(Some(f), true)?.into_series())
                })?),
                None => None,
            }
        }
        Pattern::DatetimeDMY | Pattern::DatetimeYMD => {
            match fits(DATETIME_FORMATS, &|f| {
                NaiveDateTime::parse_from_str(first, f).is_ok()
            }) {
                Some(f) => Some(in_slices(text, |t| {
                    Ok(t.as_datetime(Some(f), unit, true, false, None, &ambiguous)?
                        .into_series())
                })?),
                None => None,
            }
        }
        Pattern::DatetimeYMDZ => {
            match fits(OFFSET_DATETIME_FORMATS, &|f| {
                DateTime::parse_from_str(first, f).is_ok()
            }) {
                Some(f) => Some(in_slices(text, |t| {
                    Ok(t.as_datetime(Some(f), unit, true, true, None, &ambiguous)?
                        .into_series())
                })?),
                None => None,
            }
        }
        Pattern::Time => Some(in_slices(text, |t| {
            Ok(t.as_time(None, true)?.into_series())
        })?),
    };
    if let Some(parsed) = &fast
        && parsed.null_count() == text.null_count()
    {
        return Ok(fast);
    }
    // Mixed formats, or one we do not list: polars tries its patterns value by
    // value.
    let parsed = match pattern {
        Pattern::DateDMY | Pattern::DateYMD => {
            let mut infer = DatetimeInfer::<Int32Type>::try_from_with_unit(pattern, None)?;
            coerce_string_to_date(&mut infer, text)?.into_series()
        }
        Pattern::DatetimeDMY | Pattern::DatetimeYMD | Pattern::DatetimeYMDZ => {
            let mut infer = DatetimeInfer::<Int64Type>::try_from_with_unit(pattern, Some(unit))?;
            coerce_string_to_datetime(&mut infer, text, None, &ambiguous)?.into_series()
        }
        Pattern::Time => return Ok(fast),
    };
    Ok(Some(parsed))
}

/// Rows below which a column is parsed on one thread.
const PARSE_SLICE_ROWS: usize = 1 << 16;

/// `parse` applied to `text` a slice per thread, the results joined in
/// order: polars parses a column with a known format on one thread, the
/// longest step of a CSV load after the read itself.
fn in_slices(
    text: &StringChunked,
    parse: impl Fn(&StringChunked) -> PolarsResult<Series> + Sync,
) -> PolarsResult<Series> {
    use rayon::prelude::*;
    let len = text.len();
    let threads = rayon::current_num_threads().clamp(1, len.div_ceil(PARSE_SLICE_ROWS).max(1));
    if threads == 1 {
        return parse(text);
    }
    let step = len.div_ceil(threads);
    let starts: Vec<usize> = (0..len).step_by(step).collect();
    let mut parsed = starts
        .into_par_iter()
        .map(|start| parse(&text.slice(start as i64, step.min(len - start))))
        .collect::<PolarsResult<Vec<Series>>>()?
        .into_iter();
    let Some(mut joined) = parsed.next() else {
        return parse(text);
    };
    for piece in parsed {
        joined.append_owned(piece)?;
    }
    Ok(joined)
}

/// Text columns holding only numbers with decimal commas (and perhaps dots
/// as thousands separators, which polars' own option does not handle) become
/// Float64.
fn parse_decimal_comma_columns(df: &mut DataFrame) -> PolarsResult<()> {
    let candidates: Vec<String> = df
        .columns()
        .iter()
        .filter(|c| c.dtype() == &DataType::String)
        .filter(|c| {
            c.str().is_ok_and(|ca| {
                ca.null_count() < ca.len()
                    && ca
                        .iter()
                        .flatten()
                        .all(|v| is_decimal_comma_number(v) || v.trim().parse::<i64>().is_ok())
            })
        })
        .map(|c| c.name().to_string())
        .collect();
    for name in candidates {
        let parsed: Float64Chunked = df
            .column(&name)?
            .str()?
            .iter()
            .map(|v| {
                v.and_then(|v| {
                    v.trim()
                        .replace('.', "")
                        .replace(',', ".")
                        .parse::<f64>()
                        .ok()
                })
            })
            .collect();
        df.with_column(parsed.with_name(name.as_str().into()).into_column())?;
    }
    Ok(())
}

fn is_utf8_error(e: &PolarsError) -> bool {
    let msg = e.to_string().to_ascii_lowercase();
    msg.contains("utf-8") || msg.contains("utf8")
}

fn is_parse_error(e: &PolarsError) -> bool {
    let msg = e.to_string().to_ascii_lowercase();
    msg.contains("could not parse") || msg.contains("parse") || msg.contains("schema")
}

fn csv_error(path: &Path, e: PolarsError) -> IngestError {
    let message = e.to_string();
    let line = message
        .split_whitespace()
        .skip_while(|w| !w.eq_ignore_ascii_case("line"))
        .nth(1)
        .and_then(|w| w.trim_matches(|c: char| !c.is_ascii_digit()).parse().ok());
    IngestError::MalformedCsv {
        path: path.to_path_buf(),
        line,
        message: message.lines().next().unwrap_or("").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporal_columns_parsed_in_slices_match_a_whole_parse() {
        let rows = 300_000;
        let dates: Vec<Option<String>> = (0..rows)
            .map(|i| (i % 1000 != 7).then(|| format!("2024-{:02}-{:02}", 1 + i % 12, 1 + i % 28)))
            .collect();
        let stamps: Vec<String> = (0..rows)
            .map(|i| {
                format!(
                    "2024-03-{:02} {:02}:{:02}:{:02}",
                    1 + i % 28,
                    i % 24,
                    i % 60,
                    i / 60 % 60
                )
            })
            .collect();
        let times: Vec<String> = (0..rows)
            .map(|i| format!("{:02}:{:02}:{:02}", i % 24, i % 60, i / 7 % 60))
            .collect();
        // One value that is no date, in the last slice.
        let mut bad = dates.clone();
        bad[rows - 3] = Some("2024-13-45".into());
        let mut df = df!("d" => &dates, "t" => &stamps, "h" => &times, "bad" => &bad).unwrap();
        let mut notes = Vec::new();
        rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap()
            .install(|| parse_temporal_columns(&mut df, &mut notes))
            .unwrap();
        let column = |name: &str| df.column(name).unwrap().as_materialized_series().clone();

        let whole = StringChunked::new("d".into(), &dates)
            .as_date(Some("%Y-%m-%d"), false)
            .unwrap()
            .into_series();
        assert_eq!(column("d").dtype(), &DataType::Date);
        assert!(column("d").equals_missing(&whole));
        assert_eq!(
            column("d").null_count(),
            dates.iter().filter(|d| d.is_none()).count()
        );

        let ambiguous = StringChunked::from_slice(PlSmallStr::EMPTY, &["raise"]);
        let whole = StringChunked::new("t".into(), &stamps)
            .as_datetime(
                Some("%Y-%m-%d %H:%M:%S"),
                TimeUnit::Microseconds,
                false,
                false,
                None,
                &ambiguous,
            )
            .unwrap()
            .into_series();
        assert!(
            column("t").equals_missing(&whole),
            "{:?}",
            column("t").dtype()
        );

        let whole = StringChunked::new("h".into(), &times)
            .as_time(None, false)
            .unwrap()
            .into_series();
        assert_eq!(column("h").dtype(), &DataType::Time);
        assert!(column("h").equals_missing(&whole));

        assert_eq!(column("bad").dtype(), &DataType::String);
        assert!(
            notes
                .iter()
                .any(|n| n.contains("column bad") && n.contains("1 value(s)")),
            "{notes:?}"
        );
    }

    #[test]
    fn records_honour_quotes() {
        let text = "a,b\n\"x, y\",\"he said \"\"hi\"\"\"\n\"multi\nline\",2\n";
        let r = split_records(text, ',', '"', 10);
        assert_eq!(r.len(), 3);
        assert_eq!(r[1], ["x, y", "he said \"hi\""]);
        assert_eq!(r[2], ["multi\nline", "2"]);
    }

    #[test]
    fn delimiters() {
        for (text, want) in [
            ("a,b,c\n1,2,3\n4,5,6\n", ','),
            ("a;b;c\n1,5;2;3\n4;5,5;6\n", ';'),
            ("a\tb\n1\t2\n", '\t'),
            ("a|b|c\n1|2|3\n", '|'),
            ("name;note\n\"x, y\";1\n\"p, q\";2\n", ';'),
        ] {
            assert_eq!(sniff_delimiter(text).0, want, "{text:?}");
        }
    }

    #[test]
    fn headers() {
        let rec = |rows: &[&[&str]]| -> Vec<Vec<String>> {
            rows.iter()
                .map(|r| r.iter().map(|s| s.to_string()).collect())
                .collect()
        };
        assert!(sniff_header(&rec(&[
            &["id", "price"],
            &["1", "2.5"],
            &["2", "3.5"]
        ])));
        assert!(!sniff_header(&rec(&[&["1", "2.5"], &["2", "3.5"]])));
        assert!(sniff_header(&rec(&[
            &["code", "name"],
            &["AB", "x"],
            &["CD", "yy"]
        ])));
        assert!(!sniff_header(&rec(&[
            &["AB", "x"],
            &["CD", "x"],
            &["EF", "x"]
        ])));
        assert!(sniff_header(&rec(&[&["when"], &["2024-01-02"]])));
    }

    #[test]
    fn null_markers_are_found_only_as_whole_fields_wherever_slices_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nulls.csv");
        // "N/A" only inside "#N/A", "None" only inside a word, "NULL" ends
        // the file without a newline; " n/a " counts (spaces are boundaries).
        let text = "id,name,score\nNA,north,1.5\n2,Nonetheless,\"#N/A\"\n3, n/a ,nan\n4,x,NULL";
        std::fs::write(&path, text).unwrap();
        let tokens: Vec<String> = DEFAULT_NULL_VALUES.iter().map(|t| t.to_string()).collect();
        let sought: Vec<&String> = tokens.iter().filter(|t| !t.is_empty()).collect();
        let want: Vec<&str> = vec!["NA", "n/a", "#N/A", "NULL", "nan"];
        let boundary = field_boundary(b',');
        for slice in (1..=text.len() + 1).chain([4 << 20]) {
            let found = fields_present(&path, &sought, boundary, slice).unwrap();
            let got: Vec<&str> = sought
                .iter()
                .zip(found)
                .filter(|(_, f)| *f)
                .map(|(t, _)| t.as_str())
                .collect();
            assert_eq!(got, want, "slices of {slice} bytes");
        }
        let NullValues::AllColumns(values) = null_values_in(&path, &tokens, b',') else {
            panic!("several markers are present")
        };
        let values: Vec<&str> = values.iter().map(|v| v.as_str()).collect();
        assert_eq!(values, ["", "NA", "n/a", "#N/A", "NULL", "nan"]);

        std::fs::write(&path, "a,b\n1,north\n2,Nonetheless\n").unwrap();
        assert!(matches!(
            null_values_in(&path, &tokens, b','),
            NullValues::AllColumnsSingle(v) if v.is_empty()
        ));
        // A marker holding the delimiter cannot be ruled out by the scan.
        let odd = vec!["x,y".to_string()];
        assert!(matches!(
            null_values_in(&path, &odd, b','),
            NullValues::AllColumnsSingle(v) if v == "x,y"
        ));
    }

    #[test]
    fn decimal_commas() {
        for ok in ["1,5", "-3,25", "1.234,56", "12.345.678,9"] {
            assert!(is_decimal_comma_number(ok), "{ok}");
        }
        for bad in ["1,234,567", "a,b", "1.2", ",5", "12.34,5"] {
            assert!(!is_decimal_comma_number(bad), "{bad}");
        }
    }

    #[test]
    fn encodings() {
        assert_eq!(detect_encoding(b"a,b\n1,2\n", true).encoding, UTF_8);
        let latin1 = b"name;city\nJos\xe9;M\xfcnchen\nRen\xe9e;K\xf6ln\n";
        assert_eq!(
            detect_encoding(latin1, true).encoding.name(),
            "windows-1252"
        );
        let le: Vec<u8> = "id,name\n1,x\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(detect_encoding(&le, true).encoding, UTF_16LE);
        let be: Vec<u8> = "id,name\n1,x\n"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert_eq!(detect_encoding(&be, true).encoding, UTF_16BE);
        assert!(encoding_for_label("latin-1").is_ok());
        assert!(encoding_for_label("klingon").is_err());
    }
}
