//! Workbooks (.xlsx, .xlsm, .xlsb, .xls, .ods) through calamine: every sheet a
//! table, one bad sheet never failing the others.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use calamine::{Data, Ods, Range, Reader, Sheets, Xls, Xlsb, Xlsx, open_workbook};
use chrono::{NaiveDate, NaiveDateTime, Timelike};
use polars::prelude::*;
use serde::Serialize;

use crate::detect::Format;
use crate::error::{IngestError, Result};
use crate::naming::clean_column_names;
use crate::{Limits, LoadOptions};

/// One sheet as `inspect` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct SheetInfo {
    pub name: String,
    /// Data rows (below the header).
    pub rows: usize,
    pub columns: Vec<String>,
    /// 1-based row number of the header in the sheet, if one was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_row: Option<usize>,
    pub sample_rows: Vec<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

type Workbook = Sheets<BufReader<File>>;

pub(crate) fn open(path: &Path, format: Format) -> Result<Workbook> {
    let corrupt = |message: String| IngestError::Corrupt {
        path: path.to_path_buf(),
        format: format.name(),
        message,
    };
    let encrypted = |msg: &str| msg.to_ascii_lowercase().contains("password");
    let result = match format {
        Format::Xlsx | Format::Xlsm => open_workbook::<Xlsx<_>, _>(path)
            .map(Sheets::Xlsx)
            .map_err(|e| e.to_string()),
        Format::Xlsb => open_workbook::<Xlsb<_>, _>(path)
            .map(Sheets::Xlsb)
            .map_err(|e| e.to_string()),
        Format::Xls => open_workbook::<Xls<_>, _>(path)
            .map(Sheets::Xls)
            .map_err(|e| e.to_string()),
        Format::Ods => open_workbook::<Ods<_>, _>(path)
            .map(Sheets::Ods)
            .map_err(|e| e.to_string()),
        _ => unreachable!("open is only called for workbook formats"),
    };
    result.map_err(|message| {
        if encrypted(&message) {
            IngestError::Encrypted {
                path: path.to_path_buf(),
            }
        } else {
            corrupt(message)
        }
    })
}

/// A sheet turned into a frame, or why not.
pub(crate) struct SheetFrame {
    pub df: DataFrame,
    pub notes: Vec<String>,
    pub header_row: Option<usize>,
}

/// Reads the sheets selected by `opts` (all by default).
pub(crate) fn load_sheets(
    path: &Path,
    format: Format,
    opts: &LoadOptions,
    limits: &Limits,
) -> Result<Vec<(String, std::result::Result<SheetFrame, String>)>> {
    let mut workbook = open(path, format)?;
    let names = selected_sheets(path, &workbook, opts)?;
    Ok(names
        .into_iter()
        .map(|name| {
            if let Err(problem) = check_extent(&mut workbook, &name, limits) {
                return (name, Err(problem));
            }
            let frame = match workbook.worksheet_range(&name) {
                Ok(range) => sheet_to_frame(&range, opts, limits),
                Err(e) => Err(if e.to_string().to_ascii_lowercase().contains("password") {
                    "the sheet is password-protected".to_string()
                } else {
                    format!("the sheet could not be read: {e}")
                }),
            };
            (name, frame)
        })
        .collect())
}

/// Refuses a sheet whose cells span more than the limits allow, before
/// calamine allocates a grid for them: a few cells far apart in a small file
/// would otherwise ask for billions of empty cells. Streams the cell positions
/// of xlsx and xlsb sheets; the other formats are bounded by their own
/// format limits (65,536 × 256 for .xls).
fn check_extent(
    workbook: &mut Workbook,
    name: &str,
    limits: &Limits,
) -> std::result::Result<(), String> {
    let (mut rows, mut cols) = (0u64, 0u64);
    let mut visit = |row: u32, col: u32| -> std::result::Result<(), String> {
        rows = rows.max(u64::from(row) + 1);
        cols = cols.max(u64::from(col) + 1);
        if cols > limits.max_columns as u64 {
            return Err(format!(
                "the sheet uses {cols} or more columns, more than the limit of {}",
                limits.max_columns
            ));
        }
        if rows.saturating_mul(cols) > limits.max_cells {
            return Err(format!(
                "the sheet spans {rows} rows × {cols} columns or more, over the limit of {} cells",
                limits.max_cells
            ));
        }
        Ok(())
    };
    match workbook {
        Sheets::Xlsx(book) => {
            let Ok(mut reader) = book.worksheet_cells_reader(name) else {
                return Ok(());
            };
            while let Ok(Some(cell)) = reader.next_cell() {
                let (row, col) = cell.get_position();
                visit(row, col)?;
            }
        }
        Sheets::Xlsb(book) => {
            let Ok(mut reader) = book.worksheet_cells_reader(name) else {
                return Ok(());
            };
            while let Ok(Some(cell)) = reader.next_cell() {
                let (row, col) = cell.get_position();
                visit(row, col)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn selected_sheets(path: &Path, workbook: &Workbook, opts: &LoadOptions) -> Result<Vec<String>> {
    let available = workbook.sheet_names();
    let Some(wanted) = &opts.sheets else {
        return Ok(available);
    };
    let mut chosen = Vec::new();
    let mut missing = Vec::new();
    for w in wanted {
        match available.iter().find(|a| a.eq_ignore_ascii_case(w.trim())) {
            Some(a) => chosen.push(a.clone()),
            None => missing.push(w.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(IngestError::NoSuchSheet {
            path: path.to_path_buf(),
            wanted: missing,
            available,
        });
    }
    Ok(chosen)
}

/// Sheet summaries for `inspect`.
pub(crate) fn inspect_sheets(path: &Path, format: Format) -> Result<Vec<SheetInfo>> {
    let opts = LoadOptions::default();
    let limits = Limits {
        max_rows: usize::MAX,
        ..Limits::default()
    };
    let mut workbook = open(path, format)?;
    let names = workbook.sheet_names();
    let mut out = Vec::new();
    for name in names {
        let info = match workbook.worksheet_range(&name) {
            Err(e) => SheetInfo {
                name,
                rows: 0,
                columns: vec![],
                header_row: None,
                sample_rows: vec![],
                problem: Some(format!("unreadable: {e}")),
            },
            Ok(range) => match sheet_to_frame(&range, &opts, &limits) {
                Err(problem) => SheetInfo {
                    name,
                    rows: 0,
                    columns: vec![],
                    header_row: None,
                    sample_rows: vec![],
                    problem: Some(problem),
                },
                Ok(frame) => SheetInfo {
                    name,
                    rows: frame.df.height(),
                    columns: frame
                        .df
                        .get_column_names()
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                    header_row: frame.header_row,
                    sample_rows: sample_rows(&frame.df, 3),
                    problem: None,
                },
            },
        };
        out.push(info);
    }
    Ok(out)
}

fn sample_rows(df: &DataFrame, n: usize) -> Vec<Vec<String>> {
    (0..df.height().min(n))
        .map(|i| {
            df.columns()
                .iter()
                .map(|c| match c.get(i) {
                    Ok(AnyValue::Null) | Err(_) => String::new(),
                    Ok(AnyValue::String(s)) => s.to_string(),
                    Ok(v) => v.to_string(),
                })
                .collect()
        })
        .collect()
}

fn is_blank(cell: &Data) -> bool {
    match cell {
        Data::Empty => true,
        Data::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn filled(row: &[Data]) -> usize {
    row.iter().filter(|c| !is_blank(c)).count()
}

/// Turns a sheet's cells into a typed frame: finds the header row, trims empty
/// edges and infers each column's type.
pub(crate) fn sheet_to_frame(
    range: &Range<Data>,
    opts: &LoadOptions,
    limits: &Limits,
) -> std::result::Result<SheetFrame, String> {
    let offset = range.start().map_or(0, |(r, _)| r as usize);
    let rows: Vec<&[Data]> = range.rows().skip(opts.skip_rows).collect();
    let Some(first) = rows.iter().position(|r| filled(r) > 0) else {
        return Err("the sheet is empty".into());
    };
    let mut notes = Vec::new();
    let scan: Vec<usize> = rows[first..].iter().take(20).map(|r| filled(r)).collect();
    let widest = scan.iter().copied().max().unwrap_or(0);
    let header_at = match opts.has_header {
        Some(false) => None,
        _ => {
            // The first row holding at least half as many cells as the widest
            // row nearby; shorter rows above it are titles.
            let need = widest.div_ceil(2).max(widest.min(2));
            let idx = first + scan.iter().position(|&n| n >= need).unwrap_or(0);
            let all_text = rows[idx]
                .iter()
                .all(|c| matches!(c, Data::String(_) | Data::Empty));
            (opts.has_header == Some(true) || all_text).then_some(idx)
        }
    };
    let data_start = match header_at {
        Some(h) => {
            let titles = (first..h).filter(|&i| filled(rows[i]) > 0).count();
            if titles > 0 {
                notes.push(format!(
                    "skipped {titles} title row(s) above the header at row {}",
                    h + 1 + offset + opts.skip_rows
                ));
            }
            h + 1
        }
        None => first,
    };
    let mut data: Vec<&[Data]> = rows[data_start..].to_vec();
    while data.last().is_some_and(|r| filled(r) == 0) {
        data.pop();
    }
    let width = range.width();
    let header: Vec<String> = match header_at {
        Some(h) => (0..width)
            .map(|c| rows[h].get(c).map(render).unwrap_or_default())
            .collect(),
        None => (1..=width).map(|i| format!("column_{i}")).collect(),
    };
    // Drop columns that are empty in the header and in every row.
    let keep: Vec<usize> = (0..width)
        .filter(|&c| {
            header_at.is_some_and(|h| rows[h].get(c).is_some_and(|x| !is_blank(x)))
                || data.iter().any(|r| r.get(c).is_some_and(|x| !is_blank(x)))
        })
        .collect();
    if keep.is_empty() {
        return Err("the sheet has a header but no data".into());
    }
    let row_cap = opts.max_rows.unwrap_or(usize::MAX);
    if opts.max_rows.is_none() && data.len() > limits.max_rows {
        return Err(format!(
            "the sheet has {} rows, more than the {}-row limit",
            data.len(),
            limits.max_rows
        ));
    }
    if data.len() > row_cap {
        notes.push(format!("loaded only the first {row_cap} rows (max_rows)"));
        data.truncate(row_cap);
    }
    let names = clean_column_names(&keep.iter().map(|&c| header[c].clone()).collect::<Vec<_>>());
    let mut columns = Vec::with_capacity(keep.len());
    let mut errors = 0usize;
    for (&c, name) in keep.iter().zip(&names) {
        let cells: Vec<&Data> = data
            .iter()
            .map(|r| r.get(c).unwrap_or(&Data::Empty))
            .collect();
        errors += cells.iter().filter(|x| matches!(x, Data::Error(_))).count();
        let (series, note) = infer_column(name, &cells).map_err(|e| e.to_string())?;
        if let Some(note) = note {
            notes.push(note);
        }
        columns.push(series.into_column());
    }
    if errors > 0 {
        notes.push(format!(
            "{errors} cell(s) held Excel errors (such as #DIV/0! or #N/A) and became nulls"
        ));
    }
    let df = DataFrame::new(data.len(), columns).map_err(|e| e.to_string())?;
    Ok(SheetFrame {
        df,
        notes,
        header_row: header_at.map(|h| h + 1 + offset + opts.skip_rows),
    })
}

/// A cell as text, the way a person would type it.
fn render(cell: &Data) -> String {
    match cell {
        Data::Empty | Data::Error(_) => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => render_float(*f),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) => match dt.as_datetime() {
            Some(t) if t.time().num_seconds_from_midnight() == 0 && !dt.is_duration() => {
                t.date().to_string()
            }
            Some(t) if !dt.is_duration() => t.format("%Y-%m-%d %H:%M:%S").to_string(),
            _ => render_float(dt.as_f64()),
        },
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
    }
}

fn render_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

fn parse_iso(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");

/// Infers one column's type from its cells; mixed columns become text with a note.
fn infer_column(name: &str, cells: &[&Data]) -> PolarsResult<(Series, Option<String>)> {
    let (mut ints, mut floats, mut bools, mut dates, mut durations, mut texts) = (0, 0, 0, 0, 0, 0);
    let mut fractional = false;
    for cell in cells {
        match cell {
            Data::Int(_) => ints += 1,
            Data::Float(f) => {
                floats += 1;
                fractional |= f.fract() != 0.0 || f.abs() >= 9.0e15;
            }
            Data::Bool(_) => bools += 1,
            Data::DateTime(dt) if dt.is_duration() => durations += 1,
            Data::DateTime(_) => dates += 1,
            Data::DateTimeIso(s) if parse_iso(s).is_some() => dates += 1,
            Data::DurationIso(_) => texts += 1,
            Data::String(s) if s.trim().is_empty() => {}
            Data::String(_) | Data::DateTimeIso(_) => texts += 1,
            Data::Empty | Data::Error(_) => {}
        }
    }
    let total = ints + floats + bools + dates + durations + texts;
    let only = |n: usize| n == total && total > 0;
    let name_s: PlSmallStr = name.into();
    if only(ints + floats) {
        if fractional {
            let values: Vec<Option<f64>> = cells
                .iter()
                .map(|c| match c {
                    Data::Int(i) => Some(*i as f64),
                    Data::Float(f) => Some(*f),
                    _ => None,
                })
                .collect();
            return Ok((Series::new(name_s, values), None));
        }
        let values: Vec<Option<i64>> = cells
            .iter()
            .map(|c| match c {
                Data::Int(i) => Some(*i),
                Data::Float(f) => Some(*f as i64),
                _ => None,
            })
            .collect();
        return Ok((Series::new(name_s, values), None));
    }
    if only(bools) {
        let values: Vec<Option<bool>> = cells
            .iter()
            .map(|c| match c {
                Data::Bool(b) => Some(*b),
                _ => None,
            })
            .collect();
        return Ok((Series::new(name_s, values), None));
    }
    if only(dates) {
        let stamps: Vec<Option<NaiveDateTime>> = cells
            .iter()
            .map(|c| match c {
                Data::DateTime(dt) => dt.as_datetime(),
                Data::DateTimeIso(s) => parse_iso(s),
                _ => None,
            })
            .collect();
        let all_midnight = stamps
            .iter()
            .flatten()
            .all(|t| t.time().num_seconds_from_midnight() == 0 && t.time().nanosecond() == 0);
        if all_midnight {
            let days: Vec<Option<i32>> = stamps
                .iter()
                .map(|t| t.map(|t| (t.date() - EPOCH).num_days() as i32))
                .collect();
            return Ok((Series::new(name_s, days).cast(&DataType::Date)?, None));
        }
        let ms: Vec<Option<i64>> = stamps
            .iter()
            .map(|t| t.map(|t| t.and_utc().timestamp_millis()))
            .collect();
        return Ok((
            Series::new(name_s, ms).cast(&DataType::Datetime(TimeUnit::Milliseconds, None))?,
            None,
        ));
    }
    if only(durations) {
        let ms: Vec<Option<i64>> = cells
            .iter()
            .map(|c| match c {
                Data::DateTime(dt) => dt.as_duration().map(|d| d.num_milliseconds()),
                _ => None,
            })
            .collect();
        return Ok((
            Series::new(name_s, ms).cast(&DataType::Duration(TimeUnit::Milliseconds))?,
            None,
        ));
    }
    let values: Vec<Option<String>> = cells
        .iter()
        .map(|c| match c {
            Data::Empty | Data::Error(_) => None,
            Data::String(s) if s.trim().is_empty() => None,
            other => Some(render(other)),
        })
        .collect();
    let note = (texts > 0 && texts < total).then(|| {
        format!(
            "column '{name}' mixes text with {} other values; kept as text (a cast can convert it)",
            total - texts
        )
    });
    Ok((Series::new(name_s, values), note))
}
