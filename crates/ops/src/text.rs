//! Text cleanup, splitting and merging columns, and reading dates out of
//! text.

use std::borrow::Cow;

use polars::prelude::*;
use regex::Regex;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::columns::{resolve, visible_names};
use crate::error::{OpsError, Result};
use crate::values::display;

/// Letter case to convert text to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Case {
    Lower,
    Upper,
    /// First letter of each word upper case, the rest lower.
    Title,
}

/// A regular-expression replacement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replace {
    /// Rust/polars regex syntax, e.g. "\\s*\\(.*\\)$".
    pub pattern: String,
    /// Replacement; `$1` refers to a capture group.
    #[serde(default)]
    pub with: String,
}

/// What `clean_text` does to each value, applied in this order: replace,
/// strip accents, strip punctuation, collapse spaces, trim, case, empty as
/// missing. The order is fixed so a recipe means the same thing everywhere.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TextCleaning {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<Replace>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub strip_accents: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub strip_punctuation: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub collapse_spaces: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub trim: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<Case>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub empty_as_missing: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl TextCleaning {
    /// The steps in application order, as words for a summary.
    pub fn steps(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(r) = &self.replace {
            out.push(format!("replace /{}/ with \"{}\"", r.pattern, r.with));
        }
        if self.strip_accents {
            out.push("strip accents".into());
        }
        if self.strip_punctuation {
            out.push("strip punctuation".into());
        }
        if self.collapse_spaces {
            out.push("collapse spaces".into());
        }
        if self.trim {
            out.push("trim".into());
        }
        if let Some(c) = self.case {
            out.push(
                match c {
                    Case::Lower => "lower case",
                    Case::Upper => "upper case",
                    Case::Title => "title case",
                }
                .into(),
            );
        }
        if self.empty_as_missing {
            out.push("empty as missing".into());
        }
        out
    }
}

struct Cleaner {
    how: TextCleaning,
    replace: Option<Regex>,
    spaces: Regex,
}

impl Cleaner {
    fn new(how: &TextCleaning) -> Result<Self> {
        if how.steps().is_empty() {
            return Err(OpsError::InvalidArgument(
                "choose at least one cleaning step: trim, collapse_spaces, case (lower, upper, title), strip_accents, strip_punctuation, replace {pattern, with} or empty_as_missing".into(),
            ));
        }
        let replace = match &how.replace {
            Some(r) => Some(Regex::new(&r.pattern).map_err(|e| {
                OpsError::InvalidArgument(format!(
                    "replace.pattern is not a valid regular expression: {e}"
                ))
            })?),
            None => None,
        };
        Ok(Cleaner {
            how: how.clone(),
            replace,
            // Unicode White_Space: also non-breaking and other odd spaces
            // that come out of spreadsheets and web pages.
            spaces: Regex::new(r"\s+").expect("a valid regex"),
        })
    }

    fn clean<'a>(&self, v: &'a str) -> Option<Cow<'a, str>> {
        let mut out: Cow<'a, str> = Cow::Borrowed(v);
        if let (Some(re), Some(r)) = (&self.replace, &self.how.replace)
            && let Cow::Owned(s) = re.replace_all(&out, r.with.as_str())
        {
            out = Cow::Owned(s);
        }
        if self.how.strip_accents && !out.is_ascii() {
            let stripped = strip_accents(&out);
            if stripped != out.as_ref() {
                out = Cow::Owned(stripped);
            }
        }
        if self.how.strip_punctuation && out.chars().any(is_punctuation) {
            out = Cow::Owned(out.chars().filter(|c| !is_punctuation(*c)).collect());
        }
        if self.how.collapse_spaces
            && let Cow::Owned(s) = self.spaces.replace_all(&out, " ")
        {
            out = Cow::Owned(s);
        }
        if self.how.trim && out.trim() != out.as_ref() {
            out = Cow::Owned(out.trim().to_string());
        }
        match self.how.case {
            Some(Case::Lower) if out.chars().any(char::is_uppercase) => {
                out = Cow::Owned(out.to_lowercase())
            }
            Some(Case::Upper) if out.chars().any(char::is_lowercase) => {
                out = Cow::Owned(out.to_uppercase())
            }
            Some(Case::Title) => {
                let titled = title_case(&out);
                if titled != out.as_ref() {
                    out = Cow::Owned(titled);
                }
            }
            _ => {}
        }
        if self.how.empty_as_missing && out.is_empty() {
            return None;
        }
        Some(out)
    }
}

/// Accents off Latin and Greek letters (é → e), recomposed: in other
/// scripts a combining mark makes another letter (ガ is not カ, й is not и)
/// and is kept.
pub fn strip_accents(text: &str) -> String {
    let mut stripped = String::with_capacity(text.len());
    let mut after_latin = false;
    for c in text.nfd() {
        if is_combining_mark(c) {
            if !after_latin {
                stripped.push(c);
            }
            continue;
        }
        after_latin = crate::fuzzy::is_latin_or_greek(c);
        stripped.push(c);
    }
    stripped.nfc().collect()
}

/// Unicode general category P (punctuation), as regex `\p{P}` sees it.
fn is_punctuation(c: char) -> bool {
    static PUNCT: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    if c.is_ascii() {
        return c.is_ascii_punctuation()
            && !matches!(c, '$' | '+' | '<' | '=' | '>' | '^' | '`' | '|' | '~');
    }
    let re = PUNCT.get_or_init(|| Regex::new(r"^\p{P}$").expect("a valid regex"));
    let mut buf = [0u8; 4];
    re.is_match(c.encode_utf8(&mut buf))
}

/// Upper-cases a letter that follows a non-alphanumeric character (or
/// starts the text) and lower-cases the others, as polars' `to_titlecase`.
fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        start = !c.is_alphanumeric();
    }
    out
}

/// Per column: how many values a text operation changed.
#[derive(Debug, Clone, Serialize)]
pub struct TextReport {
    pub column: String,
    pub changed: usize,
    /// Up to three changes, "before" → "after".
    pub examples: Vec<(String, Option<String>)>,
}

fn text_column<'a>(df: &'a DataFrame, name: &str, action: &str) -> Result<&'a StringChunked> {
    let column = df.column(name)?;
    column.as_materialized_series().str().map_err(|_| {
        OpsError::WrongType(format!(
            "{action} works on text columns; '{name}' is {}. Convert it first with cast_columns {{\"{name}\": \"string\"}}",
            column.dtype()
        ))
    })
}

/// Cleans text columns (all text columns when `columns` is empty). A
/// column the cleaning leaves alone keeps its arrays.
pub fn clean_text(
    df: &DataFrame,
    columns: &[String],
    how: &TextCleaning,
) -> Result<(DataFrame, Vec<TextReport>)> {
    let cleaner = Cleaner::new(how)?;
    let names = if columns.is_empty() {
        visible_names(df)
            .into_iter()
            .filter(|n| {
                df.column(n)
                    .map(|c| c.dtype() == &DataType::String)
                    .unwrap_or(false)
            })
            .collect()
    } else {
        resolve(df, columns)?
    };
    if names.is_empty() {
        return Err(OpsError::InvalidArgument(
            "the table has no text columns to clean; name the columns, after cast_columns to string if needed".into(),
        ));
    }
    let mut out = df.clone();
    let mut reports = Vec::new();
    for name in names {
        let ca = text_column(df, &name, "clean_text")?;
        let mut changed = 0;
        let mut examples = Vec::new();
        let cleaned: StringChunked = ca
            .iter()
            .map(|v| {
                let v = v?;
                let c = cleaner.clean(v);
                if c.as_deref() != Some(v) {
                    changed += 1;
                    if examples.len() < 3 {
                        examples.push((v.to_string(), c.as_ref().map(|c| c.to_string())));
                    }
                }
                c
            })
            .collect();
        if changed > 0 {
            out.with_column(cleaned.with_name(name.as_str().into()).into_column())?;
        }
        reports.push(TextReport {
            column: name,
            changed,
            examples,
        });
    }
    Ok((out, reports))
}

/// Inserts `new` columns right after column `after` (or at the end).
fn insert_after(df: &DataFrame, after: &str, new: Vec<Column>) -> Result<DataFrame> {
    let position = df
        .get_column_names()
        .iter()
        .position(|n| n.as_str() == after)
        .map(|p| p + 1)
        .unwrap_or(df.width());
    let mut columns: Vec<Column> = df.columns().to_vec();
    for (i, c) in new.into_iter().enumerate() {
        columns.insert(position + i, c);
    }
    Ok(DataFrame::new(df.height(), columns)?)
}

fn check_new_names(df: &DataFrame, names: &[String], freed: &[String]) -> Result<()> {
    let existing = visible_names(df);
    for (i, name) in names.iter().enumerate() {
        if name.trim().is_empty() {
            return Err(OpsError::InvalidArgument(
                "a new column name is empty".into(),
            ));
        }
        if names[..i].contains(name) {
            return Err(OpsError::InvalidArgument(format!(
                "the new column name '{name}' is given twice"
            )));
        }
        crate::columns::refuse_reserved(name)?;
        if existing.contains(name) && !freed.contains(name) {
            return Err(OpsError::InvalidArgument(format!(
                "column '{name}' already exists; choose another name (or drop or rename it first)"
            )));
        }
    }
    Ok(())
}

/// What splitting a column did.
#[derive(Debug, Clone, Serialize)]
pub struct SplitReport {
    /// Rows whose value held the separator.
    pub rows_split: usize,
    /// Rows with fewer parts than names: the missing parts are null.
    pub rows_short: usize,
    /// Rows with more parts than names: the last column holds the rest.
    pub rows_long: usize,
}

/// Splits a text column at a literal separator into the named columns,
/// placed after it: at most `into.len()` parts, the last keeping the rest of
/// the text, missing parts null.
pub fn split_column(
    df: &DataFrame,
    column: &str,
    separator: &str,
    into: &[String],
    drop_original: bool,
) -> Result<(DataFrame, SplitReport)> {
    resolve(df, &[column.to_string()])?;
    if separator.is_empty() {
        return Err(OpsError::InvalidArgument(
            "separator is empty; give the text between the parts, e.g. \",\" or \" - \"".into(),
        ));
    }
    if into.len() < 2 {
        return Err(OpsError::InvalidArgument(
            "into needs at least two new column names, e.g. [\"first_name\", \"last_name\"]".into(),
        ));
    }
    let freed = if drop_original {
        vec![column.to_string()]
    } else {
        Vec::new()
    };
    check_new_names(df, into, &freed)?;
    let ca = text_column(df, column, "split_column")?;
    let n = into.len();
    let mut parts: Vec<Vec<Option<&str>>> = vec![Vec::with_capacity(ca.len()); n];
    let mut report = SplitReport {
        rows_split: 0,
        rows_short: 0,
        rows_long: 0,
    };
    for v in ca.iter() {
        let mut count = 0;
        if let Some(v) = v {
            for (i, p) in v.splitn(n, separator).enumerate() {
                parts[i].push(Some(p));
                count += 1;
            }
            if count > 1 {
                report.rows_split += 1;
            }
            if count < n {
                report.rows_short += 1;
            } else if v.split(separator).nth(n).is_some() {
                report.rows_long += 1;
            }
        }
        for p in parts.iter_mut().skip(count) {
            p.push(None);
        }
    }
    let new: Vec<Column> = parts
        .into_iter()
        .zip(into)
        .map(|(values, name)| {
            StringChunked::from_iter_options(name.as_str().into(), values.into_iter())
                .into_series()
                .into_column()
        })
        .collect();
    if !drop_original {
        return Ok((insert_after(df, column, new)?, report));
    }
    // The original may give its name to a part: move it aside first, and
    // drop its intentional-missing marks, which meant the whole text.
    const ASIDE: &str = "__dfmcp_split_original__";
    let mut aside = df.clone();
    aside.rename(column, ASIDE.into())?;
    let mut out = insert_after(&aside, ASIDE, new)?.drop(ASIDE)?;
    let mark = crate::columns::mark_column(column);
    if out.column(&mark).is_ok() {
        out = out.drop(&mark)?;
    }
    Ok((out, report))
}

/// Joins the text of several columns into one, placed after the rightmost
/// of them (where the first listed was, when they are dropped). With `skip_missing`, missing parts are left out (all missing
/// gives missing); without, any missing part makes the result missing.
pub fn merge_columns(
    df: &DataFrame,
    columns: &[String],
    into: &str,
    separator: &str,
    skip_missing: bool,
    drop_originals: bool,
) -> Result<(DataFrame, usize)> {
    if columns.len() < 2 {
        return Err(OpsError::InvalidArgument(
            "columns needs at least two columns to merge".into(),
        ));
    }
    resolve(df, columns)?;
    let freed = if drop_originals {
        columns.to_vec()
    } else {
        Vec::new()
    };
    check_new_names(df, &[into.to_string()], &freed)?;
    let texts: Vec<Series> = columns
        .iter()
        .map(|c| {
            let s = df.column(c)?.as_materialized_series();
            // polars' own text of each type, as a cast to text in the
            // generated polars or SQL code gives it.
            Ok(s.cast(&DataType::String)?)
        })
        .collect::<Result<_>>()?;
    let cas: Vec<&StringChunked> = texts.iter().map(|s| s.str()).collect::<PolarsResult<_>>()?;
    let mut missing = 0;
    let merged: StringChunked = (0..df.height())
        .map(|row| {
            let values: Vec<Option<&str>> = cas.iter().map(|ca| ca.get(row)).collect();
            let present: Vec<&str> = values.iter().flatten().copied().collect();
            let out = if present.is_empty() || (!skip_missing && present.len() < values.len()) {
                None
            } else {
                Some(present.join(separator))
            };
            if out.is_none() {
                missing += 1;
            }
            out
        })
        .collect();
    let mut out = df.clone();
    if drop_originals {
        // The merged column takes the first source's place; the sources go,
        // with their intentional-missing marks (the merged values are new,
        // even under a reused name).
        let merged = merged.with_name(into.into()).into_series().into_column();
        let mut cols: Vec<Column> = Vec::with_capacity(df.width());
        let mut placed = false;
        for c in df.columns() {
            let name = c.name().as_str();
            if columns.iter().any(|s| s == name) {
                if !placed {
                    cols.push(merged.clone());
                    placed = true;
                }
                continue;
            }
            let marks_of_source = columns
                .iter()
                .map(String::as_str)
                .chain(std::iter::once(into))
                .any(|s| crate::columns::mark_column(s) == name);
            if !marks_of_source {
                cols.push(c.clone());
            }
        }
        out = DataFrame::new(df.height(), cols)?;
    } else {
        // After the rightmost of them, wherever they are listed.
        let last = df
            .get_column_names()
            .iter()
            .rev()
            .find(|n| columns.iter().any(|c| c == n.as_str()))
            .map(|n| n.to_string())
            .unwrap_or_default();
        out = insert_after(
            &out,
            &last,
            vec![merged.with_name(into.into()).into_series().into_column()],
        )?;
    }
    Ok((out, missing))
}

/// Date formats tried when none are given, most specific first. Each
/// day-first format is paired with its month-first twin (swap %d and %m).
const DATE_FORMATS: &[&str] = &[
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%Y%m%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%d %b %Y",
    "%d %B %Y",
    "%d-%b-%Y",
    "%d-%b-%y",
    "%b %d, %Y",
    "%B %d, %Y",
    "%b %d %Y",
    "%B %d %Y",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%d.%m.%Y",
    "%m.%d.%Y",
    "%d/%m/%y",
    "%m/%d/%y",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%m.%d.%Y %H:%M",
];

fn has_time(format: &str) -> bool {
    ["%H", "%I", "%M", "%S", "%T", "%R"]
        .iter()
        .any(|p| format.contains(p))
}

/// The twin of a format with day and month swapped, if it has both.
fn swapped(format: &str) -> Option<String> {
    let (d, m) = (format.find("%d")?, format.find("%m")?);
    let mut out = format.to_string();
    out.replace_range(d..d + 2, "%m");
    out.replace_range(m..m + 2, "%d");
    Some(out)
}

fn day_first(format: &str) -> Option<bool> {
    Some(format.find("%d")? < format.find("%m")?)
}

/// Parses text with one format: date or microsecond datetime, unparsable
/// values null.
fn parse_with(s: &Series, format: &str, datetime: bool) -> Result<Series> {
    let options = StrptimeOptions {
        format: Some(format.into()),
        strict: false,
        exact: true,
        cache: true,
    };
    let v = col("v").str().strip_chars(lit(NULL));
    let expr = if datetime {
        if has_time(format) {
            v.str()
                .to_datetime(Some(TimeUnit::Microseconds), None, options, lit("raise"))
        } else {
            v.str()
                .to_date(options)
                .cast(DataType::Datetime(TimeUnit::Microseconds, None))
        }
    } else {
        v.str().to_date(options)
    };
    let frame = DataFrame::new(s.len(), vec![s.clone().with_name("v".into()).into_column()])?;
    let out = frame.lazy().select([expr]).collect()?;
    Ok(out.columns()[0].as_materialized_series().clone())
}

/// Count of values parsed to a plausible year (1800–2200): a format like
/// "%d/%m/%Y" also reads "01/02/24" as the year 24.
fn plausible(parsed: &Series) -> Result<usize> {
    let years = parsed.cast(&DataType::Date)?.cast(&DataType::Int32)?;
    // Days since 1970: 1800-01-01 is -62,091, 2200-12-31 is 84,005.
    let days = years.i32()?;
    Ok(days
        .iter()
        .flatten()
        .filter(|d| (-62_091..=84_005).contains(d))
        .count())
}

/// What `parse_dates` did to one column.
#[derive(Debug, Clone, Serialize)]
pub struct DateReport {
    pub column: String,
    /// The formats used, in the order tried.
    pub formats: Vec<String>,
    /// date or datetime.
    pub to: String,
    pub parsed: usize,
    /// Values present before that could not be read (now missing).
    pub failed: usize,
    pub failed_examples: Vec<String>,
    /// Set when day-first and month-first both read every value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ambiguous: Option<String>,
    /// The column held dates already and was left as it was.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub already: bool,
}

/// Picks formats for a column: the candidate reading the most distinct
/// values (a sample of up to 5,000), with day-first vs month-first ties
/// settled by `prefer_day_first` (default month-first) and reported.
fn detect(
    s: &Series,
    name: &str,
    prefer_day_first: Option<bool>,
) -> Result<(String, Option<String>)> {
    let sample = s.drop_nulls().unique_stable()?;
    let sample = sample.head(Some(5_000));
    if sample.is_empty() {
        return Err(OpsError::InvalidArgument(format!(
            "'{name}' has no values to read dates from"
        )));
    }
    let mut scores: Vec<(&str, usize)> = Vec::new();
    for f in DATE_FORMATS {
        let parsed = parse_with(&sample, f, has_time(f))?;
        scores.push((f, plausible(&parsed)?));
    }
    let best = scores.iter().map(|(_, n)| *n).max().unwrap_or(0);
    if best == 0 {
        let example = display(&sample.get(0)?);
        return Err(OpsError::InvalidArgument(format!(
            "no known date format reads the values of '{name}' (e.g. '{example}'); pass formats, e.g. [\"%d %B %Y\"] (strftime codes)"
        )));
    }
    let winners: Vec<&str> = scores
        .iter()
        .filter(|(_, n)| *n == best)
        .map(|(f, _)| *f)
        .collect();
    let first = winners[0];
    let Some(twin) = swapped(first).filter(|t| winners.contains(&t.as_str())) else {
        return Ok((first.to_string(), None));
    };
    let want_day_first = prefer_day_first.unwrap_or(false);
    let (chosen, other) = if day_first(first) == Some(want_day_first) {
        (first.to_string(), twin)
    } else {
        (twin, first.to_string())
    };
    let example = display(&sample.get(0)?);
    let note = match prefer_day_first {
        Some(_) => format!(
            "every value also reads as {other}; read as {chosen} because day_first={want_day_first}"
        ),
        None => format!(
            "every value also reads as {other} (day first); read as {chosen} (month first). If '{example}' is day first, undo and pass day_first=true"
        ),
    };
    Ok((chosen, Some(note)))
}

/// Reads dates out of text columns: each column with the given formats
/// (tried in order, the first that reads a value wins) or a detected one.
/// Values no format reads become missing and are counted.
pub fn parse_dates(
    df: &DataFrame,
    columns: &[String],
    formats: &[String],
    prefer_day_first: Option<bool>,
) -> Result<(DataFrame, Vec<DateReport>)> {
    if columns.is_empty() {
        return Err(OpsError::InvalidArgument(
            "name the text columns to read dates from".into(),
        ));
    }
    resolve(df, columns)?;
    let mut out = df.clone();
    let mut reports = Vec::new();
    for name in columns {
        // Already dates (a loader may have read them): nothing to parse, so
        // a recipe replays on a file whose dates were recognised on load.
        let dtype = df.column(name)?.dtype().clone();
        if matches!(dtype, DataType::Date | DataType::Datetime(..)) {
            let present = df.height() - df.column(name)?.null_count();
            reports.push(DateReport {
                column: name.clone(),
                formats: Vec::new(),
                to: if dtype == DataType::Date {
                    "date"
                } else {
                    "datetime"
                }
                .into(),
                parsed: present,
                failed: 0,
                failed_examples: Vec::new(),
                ambiguous: None,
                already: true,
            });
            continue;
        }
        let ca = text_column(df, name, "parse_dates")?;
        let s = ca.clone().into_series();
        let (formats, ambiguous) = if formats.is_empty() {
            let (f, note) = detect(&s, name, prefer_day_first)?;
            (vec![f], note)
        } else {
            (formats.to_vec(), None)
        };
        let datetime = formats.iter().any(|f| has_time(f));
        let mut parsed: Option<Series> = None;
        for f in &formats {
            let next = parse_with(&s, f, datetime)?;
            parsed = Some(match parsed {
                None => next,
                Some(p) => p.zip_with(&p.is_not_null(), &next)?,
            });
        }
        let parsed = parsed.expect("at least one format");
        let failed_mask = &s.is_not_null() & &parsed.is_null();
        let failed = failed_mask.sum().unwrap_or(0) as usize;
        let mut failed_examples: Vec<String> = Vec::new();
        if failed > 0 {
            for v in s.filter(&failed_mask)?.str()?.iter().flatten() {
                if !failed_examples.iter().any(|e| e == v) {
                    failed_examples.push(v.to_string());
                }
                if failed_examples.len() == 3 {
                    break;
                }
            }
        }
        reports.push(DateReport {
            column: name.clone(),
            formats,
            to: if datetime { "datetime" } else { "date" }.into(),
            parsed: parsed.len() - parsed.null_count(),
            failed,
            failed_examples,
            ambiguous,
            already: false,
        });
        out.with_column(parsed.with_name(name.as_str().into()).into_column())?;
    }
    Ok((out, reports))
}

/// The resolved formats of a parse, when every column used the same ones:
/// what a replay should use so that next month's file reads alike.
pub fn resolved_formats(reports: &[DateReport]) -> Option<Vec<String>> {
    let parsed: Vec<&DateReport> = reports.iter().filter(|r| !r.already).collect();
    let first = &parsed.first()?.formats;
    parsed
        .iter()
        .all(|r| &r.formats == first)
        .then(|| first.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(df: &DataFrame) -> Vec<String> {
        df.get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect()
    }

    fn strings(df: &DataFrame, name: &str) -> Vec<Option<String>> {
        df.column(name)
            .unwrap()
            .as_materialized_series()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }

    fn some(values: &[&str]) -> Vec<Option<String>> {
        values.iter().map(|v| Some(v.to_string())).collect()
    }

    #[test]
    fn clean_text_cases() {
        let input = [
            Some("  Café  de   Flore "),
            None,
            Some("O'Brien, Ltd."),
            Some("ÉCOLE normale"),
            Some("  "),
            Some("x\u{a0}\u{a0}y"),
        ];
        let df = df!("t" => input, "n" => [1, 2, 3, 4, 5, 6]).unwrap();
        struct Case_ {
            how: TextCleaning,
            expected: Vec<Option<&'static str>>,
            changed: usize,
        }
        let cases = [
            Case_ {
                how: TextCleaning {
                    trim: true,
                    ..Default::default()
                },
                expected: vec![
                    Some("Café  de   Flore"),
                    None,
                    Some("O'Brien, Ltd."),
                    Some("ÉCOLE normale"),
                    Some(""),
                    Some("x\u{a0}\u{a0}y"),
                ],
                changed: 2,
            },
            Case_ {
                how: TextCleaning {
                    trim: true,
                    collapse_spaces: true,
                    empty_as_missing: true,
                    ..Default::default()
                },
                expected: vec![
                    Some("Café de Flore"),
                    None,
                    Some("O'Brien, Ltd."),
                    Some("ÉCOLE normale"),
                    None,
                    Some("x y"),
                ],
                changed: 3,
            },
            Case_ {
                how: TextCleaning {
                    strip_accents: true,
                    case: Some(Case::Lower),
                    ..Default::default()
                },
                // Accents only: a non-breaking space stays what it is.
                expected: vec![
                    Some("  cafe  de   flore "),
                    None,
                    Some("o'brien, ltd."),
                    Some("ecole normale"),
                    Some("  "),
                    Some("x\u{a0}\u{a0}y"),
                ],
                changed: 3,
            },
            Case_ {
                how: TextCleaning {
                    strip_punctuation: true,
                    case: Some(Case::Upper),
                    trim: true,
                    ..Default::default()
                },
                expected: vec![
                    Some("CAFÉ  DE   FLORE"),
                    None,
                    Some("OBRIEN LTD"),
                    Some("ÉCOLE NORMALE"),
                    Some(""),
                    Some("X\u{a0}\u{a0}Y"),
                ],
                changed: 5,
            },
            Case_ {
                how: TextCleaning {
                    case: Some(Case::Title),
                    collapse_spaces: true,
                    trim: true,
                    ..Default::default()
                },
                expected: vec![
                    Some("Café De Flore"),
                    None,
                    Some("O'Brien, Ltd."),
                    Some("École Normale"),
                    Some(""),
                    Some("X Y"),
                ],
                changed: 4,
            },
            Case_ {
                how: TextCleaning {
                    replace: Some(Replace {
                        pattern: r"^(.+), (\w+)\.$".into(),
                        with: "$2 $1".into(),
                    }),
                    ..Default::default()
                },
                expected: vec![
                    Some("  Café  de   Flore "),
                    None,
                    Some("Ltd O'Brien"),
                    Some("ÉCOLE normale"),
                    Some("  "),
                    Some("x\u{a0}\u{a0}y"),
                ],
                changed: 1,
            },
        ];
        for case in cases {
            let (out, reports) = clean_text(&df, &["t".into()], &case.how).unwrap();
            let expected: Vec<Option<String>> = case
                .expected
                .iter()
                .map(|v| v.map(str::to_string))
                .collect();
            assert_eq!(strings(&out, "t"), expected, "{:?}", case.how);
            assert_eq!(reports[0].changed, case.changed, "{:?}", case.how);
            assert_eq!(out.column("n").unwrap(), df.column("n").unwrap());
        }
    }

    #[test]
    fn clean_text_refusals_and_no_ops() {
        let df = df!("t" => ["a", "b"], "n" => [1, 2]).unwrap();
        let none = clean_text(&df, &[], &TextCleaning::default()).unwrap_err();
        assert!(
            none.to_string().contains("at least one cleaning step"),
            "{none}"
        );
        let typed = clean_text(
            &df,
            &["n".into()],
            &TextCleaning {
                trim: true,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(typed.to_string().contains("cast_columns"), "{typed}");
        let bad = TextCleaning {
            replace: Some(Replace {
                pattern: "(".into(),
                with: String::new(),
            }),
            ..Default::default()
        };
        assert!(
            clean_text(&df, &[], &bad)
                .unwrap_err()
                .to_string()
                .contains("regular expression")
        );
        // All text columns by default; nothing to do changes nothing.
        let (out, reports) = clean_text(
            &df,
            &[],
            &TextCleaning {
                trim: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].changed, 0);
        assert!(out.equals_missing(&df));
        let empty = df!("t" => Vec::<String>::new()).unwrap();
        let (out, _) = clean_text(
            &empty,
            &[],
            &TextCleaning {
                trim: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(out.height(), 0);
    }

    #[test]
    fn split_cases() {
        let df = df!("name" => [Some("Ada Lovelace"), Some("Grace Brewster Hopper"), Some("Plato"), None, Some("")], "k" => [1, 2, 3, 4, 5]).unwrap();
        let (out, report) =
            split_column(&df, "name", " ", &["first".into(), "last".into()], false).unwrap();
        assert_eq!(names(&out), ["name", "first", "last", "k"]);
        assert_eq!(
            strings(&out, "first"),
            vec![
                Some("Ada".into()),
                Some("Grace".into()),
                Some("Plato".into()),
                None,
                Some("".into())
            ]
        );
        assert_eq!(
            strings(&out, "last"),
            vec![
                Some("Lovelace".into()),
                Some("Brewster Hopper".into()),
                None,
                None,
                None
            ]
        );
        assert_eq!(
            (report.rows_split, report.rows_short, report.rows_long),
            (2, 2, 1)
        );
        let (out, _) =
            split_column(&df, "name", " ", &["name".into(), "rest".into()], true).unwrap();
        assert_eq!(names(&out), ["name", "rest", "k"]);
        let taken = split_column(&df, "name", " ", &["k".into(), "x".into()], false).unwrap_err();
        assert!(taken.to_string().contains("already exists"), "{taken}");
        assert!(split_column(&df, "name", "", &["a".into(), "b".into()], false).is_err());
        assert!(
            split_column(&df, "k", " ", &["a".into(), "b".into()], false)
                .unwrap_err()
                .to_string()
                .contains("cast_columns")
        );
        let unicode = df!("s" => ["東京–大阪", "🙂–🙃–x"]).unwrap();
        let (out, _) = split_column(&unicode, "s", "–", &["a".into(), "b".into()], true).unwrap();
        assert_eq!(strings(&out, "b"), some(&["大阪", "🙃–x"]));
    }

    #[test]
    fn merge_cases() {
        let df = df!(
            "city" => [Some("Paris"), None, Some("Lyon"), None],
            "zip" => [Some(75001), Some(13001), None, None],
            "d" => [Some(1.5), Some(2.0), None, Some(3.25)]
        )
        .unwrap();
        let cols = ["city".to_string(), "zip".to_string()];
        let (out, missing) = merge_columns(&df, &cols, "place", ", ", true, false).unwrap();
        assert_eq!(names(&out), ["city", "zip", "place", "d"]);
        let reversed = ["zip".to_string(), "city".to_string()];
        let (rev, _) = merge_columns(&df, &reversed, "zc", " ", true, false).unwrap();
        assert_eq!(names(&rev), ["city", "zip", "zc", "d"]);
        assert_eq!(strings(&rev, "zc")[0].as_deref(), Some("75001 Paris"));
        assert_eq!(
            strings(&out, "place"),
            vec![
                Some("Paris, 75001".into()),
                Some("13001".into()),
                Some("Lyon".into()),
                None
            ]
        );
        assert_eq!(missing, 1);
        let (out, missing) = merge_columns(&df, &cols, "place", "-", false, true).unwrap();
        assert_eq!(names(&out), ["place", "d"]);
        assert_eq!(
            strings(&out, "place"),
            vec![Some("Paris-75001".into()), None, None, None]
        );
        assert_eq!(missing, 3);
        let (out, _) =
            merge_columns(&df, &["d".into(), "zip".into()], "dz", "/", true, false).unwrap();
        assert_eq!(strings(&out, "dz")[0].as_deref(), Some("1.5/75001"));
        assert!(merge_columns(&df, &cols, "d", ",", true, false).is_err());
        assert!(merge_columns(&df, &cols[..1], "x", ",", true, false).is_err());
    }

    fn dates(df: &DataFrame, name: &str) -> Vec<Option<String>> {
        df.column(name)
            .unwrap()
            .as_materialized_series()
            .iter()
            .map(|v| (!v.is_null()).then(|| display(&v)))
            .collect()
    }

    #[test]
    fn parse_dates_detects_reports_and_counts() {
        struct C {
            values: Vec<Option<&'static str>>,
            formats: Vec<String>,
            day_first: Option<bool>,
            format: &'static str,
            expected: Vec<Option<&'static str>>,
            failed: usize,
            ambiguous: bool,
        }
        let cases = [
            C {
                values: vec![
                    Some("2024-01-31"),
                    Some(" 2024-02-29 "),
                    None,
                    Some("not a date"),
                ],
                formats: vec![],
                day_first: None,
                format: "%Y-%m-%d",
                expected: vec![Some("2024-01-31"), Some("2024-02-29"), None, None],
                failed: 1,
                ambiguous: false,
            },
            C {
                values: vec![Some("25/12/2024"), Some("01/02/2024")],
                formats: vec![],
                day_first: None,
                format: "%d/%m/%Y",
                expected: vec![Some("2024-12-25"), Some("2024-02-01")],
                failed: 0,
                ambiguous: false,
            },
            C {
                values: vec![Some("03/04/2024"), Some("01/02/2024")],
                formats: vec![],
                day_first: None,
                format: "%m/%d/%Y",
                expected: vec![Some("2024-03-04"), Some("2024-01-02")],
                failed: 0,
                ambiguous: true,
            },
            C {
                values: vec![Some("03/04/2024"), Some("01/02/2024")],
                formats: vec![],
                day_first: Some(true),
                format: "%d/%m/%Y",
                expected: vec![Some("2024-04-03"), Some("2024-02-01")],
                failed: 0,
                ambiguous: true,
            },
            C {
                values: vec![Some("03/04/24"), Some("12/31/99")],
                formats: vec![],
                day_first: None,
                format: "%m/%d/%y",
                expected: vec![Some("2024-03-04"), Some("1999-12-31")],
                failed: 0,
                ambiguous: false,
            },
            C {
                values: vec![Some("5 March 2024"), Some("12 Dec 2023")],
                formats: vec!["%d %B %Y".into(), "%d %b %Y".into()],
                day_first: None,
                format: "%d %B %Y",
                expected: vec![Some("2024-03-05"), Some("2023-12-12")],
                failed: 0,
                ambiguous: false,
            },
        ];
        for c in cases {
            let df = df!("d" => c.values.clone()).unwrap();
            let (out, reports) = parse_dates(&df, &["d".into()], &c.formats, c.day_first).unwrap();
            assert_eq!(
                out.column("d").unwrap().dtype(),
                &DataType::Date,
                "{:?}",
                c.values
            );
            let expected: Vec<Option<String>> =
                c.expected.iter().map(|v| v.map(str::to_string)).collect();
            assert_eq!(dates(&out, "d"), expected, "{:?}", c.values);
            assert_eq!(reports[0].formats[0], c.format, "{:?}", c.values);
            assert_eq!(reports[0].failed, c.failed);
            assert_eq!(
                reports[0].ambiguous.is_some(),
                c.ambiguous,
                "{:?}",
                reports[0]
            );
        }
    }

    #[test]
    fn parse_dates_with_times_and_refusals() {
        let df = df!("t" => ["2024-01-31 08:15:00", "2024-02-01 23:59:59"], "n" => [1, 2]).unwrap();
        let (out, reports) = parse_dates(&df, &["t".into()], &[], None).unwrap();
        assert!(matches!(
            out.column("t").unwrap().dtype(),
            DataType::Datetime(..)
        ));
        assert_eq!(reports[0].to, "datetime");
        let none = df!("t" => ["hello", "world"]).unwrap();
        let e = parse_dates(&none, &["t".into()], &[], None).unwrap_err();
        assert!(e.to_string().contains("pass formats"), "{e}");
        assert!(parse_dates(&df, &["n".into()], &[], None).is_err());
        let (again, reports) = parse_dates(&out, &["t".into()], &[], None).unwrap();
        assert!(reports[0].already);
        assert!(again.equals_missing(&out));
        let nulls = df!("t" => [None::<&str>, None]).unwrap();
        assert!(parse_dates(&nulls, &["t".into()], &[], None).is_err());
    }

    /// Regression: NFKD without recomposing turned ガ into カ and й into и,
    /// and removed vowel signs from Hindi.
    #[test]
    fn accents_come_off_latin_and_greek_letters_only() {
        for (given, wanted) in [
            ("Café Ærø", "Cafe Ærø"),
            ("Ωμέγα", "Ωμεγα"),
            ("ガイド", "ガイド"),
            ("йод", "йод"),
            ("नमस्ते", "नमस्ते"),
            ("한국어", "한국어"),
            ("ﬁ²", "ﬁ²"),
        ] {
            assert_eq!(strip_accents(given), wanted, "{given}");
        }
    }

    /// Regression: merging into the name of a source kept that source's
    /// intentional-missing marks on the merged values.
    #[test]
    fn a_merge_drops_the_marks_of_its_sources() {
        let df = df!("city" => [None, Some("Lyon")], "zip" => [Some(13001), None]).unwrap();
        let (marked, _) =
            crate::missing::mark_intentional_missing(&df, &["city".into()], None, false).unwrap();
        let cols = ["city".to_string(), "zip".to_string()];
        let (out, _) = merge_columns(&marked, &cols, "city", " ", true, true).unwrap();
        assert_eq!(names(&out), ["city"]);
        assert_eq!(
            strings(&out, "city"),
            vec![Some("13001".into()), Some("Lyon".into())]
        );
        let e = split_column(
            &df,
            "city",
            " ",
            &["__dfmcp_intentional_missing__x".into(), "y".into()],
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("reserved"), "{e}");
    }
}
