//! Read-only views: column summaries, row previews, value counts.

use polars::prelude::*;
use polars_arrow::array::{Array, Utf8ViewArray};
use serde::Serialize;

use crate::columns::{marks_of, resolve, resolve_or_all, visible, visible_names};
use crate::error::{OpsError, Result};
use crate::missing::fmt_num;
use crate::values::{cut, display};

/// Statistics of a numeric column.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NumericStats {
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    pub median: Option<f64>,
    pub q25: Option<f64>,
    pub q75: Option<f64>,
    pub zeros: usize,
    pub negatives: usize,
}

/// One frequent value and how often it occurs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TopValue {
    pub value: String,
    pub count: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TextStats {
    pub top: Vec<TopValue>,
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    pub empty_strings: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RangeStats {
    pub min: Option<String>,
    pub max: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BoolStats {
    pub true_count: usize,
    pub false_count: usize,
}

/// Summary of one column.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ColumnSummary {
    pub name: String,
    pub dtype: String,
    pub non_null: usize,
    /// Missing cells not marked intentional.
    pub missing: usize,
    pub missing_pct: f64,
    /// Missing cells marked intentional (reported apart).
    pub intentional_missing: usize,
    pub distinct: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numeric: Option<NumericStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextStats>,
    /// Range of dates, datetimes, times and durations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<RangeStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boolean: Option<BoolStats>,
}

/// Summary of a table: shape plus one page of column summaries.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TableSummary {
    pub rows: usize,
    pub columns: usize,
    pub duplicate_rows: usize,
    pub memory_bytes: usize,
    /// Index of the first column summarised.
    pub column_offset: usize,
    /// Column summaries on this page.
    pub column_summaries: Vec<ColumnSummary>,
    /// Offset of the next page, when there are more columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_column_offset: Option<usize>,
}

/// Summarises the table; `columns` restricts, `offset`/`limit` page through
/// the (visible) columns.
pub fn summarize(
    df: &DataFrame,
    columns: Option<&[String]>,
    offset: usize,
    limit: usize,
    top_n: usize,
) -> Result<TableSummary> {
    let (names, page) = summary_page(df, columns, offset, limit)?;
    let summaries = page
        .iter()
        .map(|name| summarize_column(df, name, top_n))
        .collect::<Result<Vec<_>>>()?;
    let duplicates = duplicate_rows(df, &summaries)?;
    Ok(assemble(df, &names, offset, summaries, duplicates))
}

/// The visible columns `columns` names (all by default), and the page of
/// them a summary covers.
pub fn summary_page(
    df: &DataFrame,
    columns: Option<&[String]>,
    offset: usize,
    limit: usize,
) -> Result<(Vec<String>, Vec<String>)> {
    let names = resolve_or_all(df, columns)?;
    let page = names
        .iter()
        .skip(offset)
        .take(limit.max(1))
        .cloned()
        .collect();
    Ok((names, page))
}

/// A summary from its parts: the column summaries of a page (computed, or
/// remembered from an earlier summary of the same data) and the duplicate
/// row count.
pub fn assemble(
    df: &DataFrame,
    names: &[String],
    offset: usize,
    column_summaries: Vec<ColumnSummary>,
    duplicate_rows: usize,
) -> TableSummary {
    let end = offset + column_summaries.len();
    TableSummary {
        rows: df.height(),
        columns: visible_names(df).len(),
        duplicate_rows,
        memory_bytes: dfmcp_memory::frame_bytes(&visible(df)),
        column_offset: offset,
        column_summaries,
        next_column_offset: (end < names.len()).then_some(end),
    }
}

/// Rows that have an identical twin (every visible column equal), each
/// counted. `known` are summaries of some of its columns: one whose values
/// are all present and all distinct (an id) proves there are none, without
/// hashing every row.
pub fn duplicate_rows(df: &DataFrame, known: &[ColumnSummary]) -> Result<usize> {
    let shown = visible(df);
    if shown.width() == 0 || shown.height() < 2 {
        return Ok(0);
    }
    let rows = shown.height();
    if known
        .iter()
        .any(|c| c.non_null == rows && c.distinct == rows)
    {
        return Ok(0);
    }
    // Each row is hashed once; only rows whose hash another row shares can
    // have a twin, and only they are compared.
    let hashes = row_hashes(&shown)?;
    let shared: Vec<u64> = {
        use rayon::prelude::*;
        let mut sorted = hashes.clone();
        sorted.par_sort_unstable();
        let mut shared: Vec<u64> = sorted
            .windows(2)
            .filter(|pair| pair[0] == pair[1])
            .map(|pair| pair[0])
            .collect();
        shared.dedup();
        shared
    };
    if shared.is_empty() {
        return Ok(0);
    }
    let rows: Vec<IdxSize> = hashes
        .iter()
        .enumerate()
        .filter(|(_, h)| shared.binary_search(h).is_ok())
        .map(|(row, _)| row as IdxSize)
        .collect();
    drop(hashes);
    if rows.len() > shown.height() / 2 {
        // Most rows are candidates: comparing them in place spares a copy
        // of most of the table.
        return Ok(shown.is_duplicated()?.sum().unwrap_or(0) as usize);
    }
    let candidates = shown.take(&IdxCa::from_vec("rows".into(), rows))?;
    Ok(candidates.is_duplicated()?.sum().unwrap_or(0) as usize)
}

/// A hash of each row, as polars' group-by hashes rows (so equal rows,
/// -0.0 and 0.0, every NaN, have equal hashes), computed in slices of rows
/// on every thread.
fn row_hashes(df: &DataFrame) -> Result<Vec<u64>> {
    use rayon::prelude::*;
    let state = PlSeedableRandomStateQuality::default();
    let step = df
        .height()
        .div_ceil(rayon::current_num_threads().max(1))
        .max(1 << 16);
    let slices: Vec<Vec<u64>> = (0..df.height())
        .step_by(step)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|offset| {
            let mut hashes = Vec::new();
            polars_core::hashing::columns_to_hashes(
                &df.slice(offset as i64, step),
                Some(state.clone()),
                &mut hashes,
            )?;
            Ok(hashes)
        })
        .collect::<Result<_>>()?;
    Ok(slices.concat())
}

/// Summarises one column, in a few passes: one sort of the non-null values
/// gives min, max, every quantile, zeros, negatives and the distinct count
/// of numbers; one unsorted count gives the distinct count and the top
/// values of text, without sorting every distinct value.
pub fn summarize_column(df: &DataFrame, name: &str, top_n: usize) -> Result<ColumnSummary> {
    let s = df.column(name)?.as_materialized_series();
    let len = s.len();
    let nulls = s.null_count();
    let intentional = marks_of(df, name)
        .map(|m| (&m & &s.is_null()).sum().unwrap_or(0) as usize)
        .unwrap_or(0);
    let missing = nulls - intentional;
    let dtype = s.dtype().clone();
    let mut summary = ColumnSummary {
        name: name.to_string(),
        dtype: dtype.to_string(),
        non_null: len - nulls,
        missing,
        missing_pct: if len == 0 {
            0.0
        } else {
            (missing as f64 * 1000.0 / len as f64).round() / 10.0
        },
        intentional_missing: intentional,
        distinct: 0,
        numeric: None,
        text: None,
        range: None,
        boolean: None,
    };
    if dtype.is_primitive_numeric() {
        let (numeric, distinct) = numeric_stats(s)?;
        summary.numeric = Some(numeric);
        summary.distinct = distinct;
    } else if dtype == DataType::String || dtype.is_categorical() {
        let text = s.cast(&DataType::String)?;
        let ca = text.str()?;
        // Lengths come from the distinct values the count found, not from
        // another pass over every row.
        let (top, distinct, lengths) = match ranked_text_full(ca, top_n, &PlRandomState::default())
        {
            Some(ranked) => ranked?,
            None => {
                let all = ca.str_len_chars();
                let lengths = Lengths {
                    min: all.min().map(|v| v as usize),
                    max: all.max().map(|v| v as usize),
                    empty: all.equal(0).sum().unwrap_or(0) as usize,
                };
                let (top, distinct) = ranked_counts(&text, top_n)?;
                (top, distinct, lengths)
            }
        };
        summary.distinct = distinct;
        summary.text = Some(TextStats {
            top: top_list(&top)?,
            min_length: lengths.min,
            max_length: lengths.max,
            empty_strings: lengths.empty,
        });
    } else {
        summary.distinct = s.drop_nulls().n_unique().unwrap_or(0);
        if dtype.is_temporal() {
            summary.range = Some(RangeStats {
                min: s
                    .min_reduce()
                    .ok()
                    .map(|v| display(v.value()))
                    .filter(|v| !v.is_empty()),
                max: s
                    .max_reduce()
                    .ok()
                    .map(|v| display(v.value()))
                    .filter(|v| !v.is_empty()),
            });
        } else if dtype == DataType::Boolean {
            let t = s.bool()?.sum().unwrap_or(0) as usize;
            summary.boolean = Some(BoolStats {
                true_count: t,
                false_count: len - nulls - t,
            });
        }
    }
    Ok(summary)
}

/// The statistics of a numeric column and its distinct count: counted when
/// it has few distinct values, otherwise from one sort.
fn numeric_stats(s: &Series) -> Result<(NumericStats, usize)> {
    // Copies are made one after another and dropped as soon as possible:
    // columns are summarised in parallel, and each copy is a column's size.
    // Mean and deviation in the column's order, so the sums are those of a
    // plain mean.
    let (mean, std) = {
        let original = s.cast(&DataType::Float64)?;
        let original = original.f64()?;
        (original.mean(), original.std(1))
    };
    match few_distinct(s)? {
        Some(few) => Ok(from_counts(&few, mean, std)),
        None => sorted_stats(s, mean, std),
    }
}

/// [`numeric_stats`] from one sort of the column.
fn sorted_stats(s: &Series, mean: Option<f64>, std: Option<f64>) -> Result<(NumericStats, usize)> {
    // Sorting the column's own type keeps large integers exact for the
    // distinct count; the cast to f64 afterwards keeps the order.
    // Nulls sort last and are sliced off: no copy without them first.
    let sorted = s
        .sort(
            SortOptions::default()
                .with_multithreaded(true)
                .with_nulls_last(true),
        )?
        .slice(0, s.len() - s.null_count());
    let distinct = if sorted.is_empty() {
        0
    } else {
        let changes = sorted
            .slice(1, sorted.len() - 1)
            .not_equal_missing(&sorted.slice(0, sorted.len() - 1))?;
        1 + changes.sum().unwrap_or(0) as usize
    };
    let as_f = sorted.cast(&DataType::Float64)?;
    drop(sorted);
    let ca = as_f.f64()?.rechunk().into_owned();
    drop(as_f);
    let all = ca.cont_slice()?;
    // NaNs sort last; quantiles and bounds are of the numbers before them.
    let numbers = &all[..all.partition_point(|v| !v.is_nan())];
    let quantile = |q: f64| -> Option<f64> {
        if numbers.is_empty() {
            return None;
        }
        let at = q * (numbers.len() - 1) as f64;
        let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
        Some(numbers[lo] + (numbers[hi] - numbers[lo]) * (at - lo as f64))
    };
    let negatives = numbers.partition_point(|v| *v < 0.0);
    let zeros = numbers.partition_point(|v| *v <= 0.0) - negatives;
    Ok((
        NumericStats {
            min: numbers.first().copied(),
            max: numbers.last().copied(),
            mean,
            std,
            median: quantile(0.5),
            q25: quantile(0.25),
            q75: quantile(0.75),
            zeros,
            negatives,
        },
        distinct,
    ))
}

/// Distinct values a column may have for [`few_distinct`] to count them:
/// the table stays within a core's cache.
const FEW: usize = 1 << 16;

/// The distinct numbers of a column with their counts, ascending, NaN apart.
#[derive(Debug, PartialEq)]
struct Few {
    ascending: Vec<(f64, u64)>,
    nan: bool,
}

/// The distinct numbers of a column when there are at most [`FEW`]: a
/// column of prices or quantities is then counted in one pass instead of
/// sorted. `None` when there are more (found as soon as the table outgrows
/// them) or the type is not one counted this way.
fn few_distinct(s: &Series) -> Result<Option<Few>> {
    use DataType::*;
    // Keys are the bits of the column's own type, so large integers stay
    // apart; -0.0 is 0.0 and every NaN one NaN, as a sort compares them.
    const NAN: u64 = 0x7ff8_0000_0000_0000;
    Ok(match s.dtype() {
        Float64 | Float32 => {
            let cast = s.cast(&Float64)?;
            tally(cast.f64()?, |v| {
                if v.is_nan() { NAN } else { (v + 0.0).to_bits() }
            })
            .map(|table| {
                let nan = table.contains_key(&NAN);
                let mut few = ascending(table, |k| (k != NAN).then(|| f64::from_bits(k)));
                few.nan = nan;
                few
            })
        }
        UInt64 => tally(s.u64()?, |v| v).map(|t| ascending(t, |k| Some(k as f64))),
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 => {
            let cast = s.cast(&Int64)?;
            tally(cast.i64()?, |v| v as u64).map(|t| ascending(t, |k| Some(k as i64 as f64)))
        }
        _ => None,
    })
}

/// Counts of each key, `None` past [`FEW`] of them.
fn tally<T: PolarsNumericType>(
    ca: &ChunkedArray<T>,
    key: impl Fn(T::Native) -> u64,
) -> Option<hashbrown::HashMap<u64, u64, PlRandomState>> {
    let mut table = hashbrown::HashMap::with_hasher(PlRandomState::default());
    let mut add = |v: T::Native| {
        *table.entry(key(v)).or_insert(0) += 1;
        table.len() <= FEW
    };
    for array in ca.downcast_iter() {
        let all = if array.null_count() == 0 {
            array.values().iter().all(|v| add(*v))
        } else {
            array.iter().flatten().all(|v| add(*v))
        };
        if !all {
            return None;
        }
    }
    Some(table)
}

/// The counted numbers in ascending order; `number` reads a key (`None`
/// for NaN). Keys of one type order like their numbers, which the cast to
/// f64 keeps.
fn ascending(
    table: hashbrown::HashMap<u64, u64, PlRandomState>,
    number: impl Fn(u64) -> Option<f64>,
) -> Few {
    let mut ascending: Vec<(f64, u64)> = table
        .into_iter()
        .filter_map(|(k, n)| number(k).map(|v| (v, n)))
        .collect();
    ascending.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    Few {
        ascending,
        nan: false,
    }
}

/// Statistics from the distinct numbers and their counts, equal to those
/// [`numeric_stats`] reads off a sorted column.
fn from_counts(few: &Few, mean: Option<f64>, std: Option<f64>) -> (NumericStats, usize) {
    let ends: Vec<u64> = few
        .ascending
        .iter()
        .scan(0, |total, (_, n)| {
            *total += n;
            Some(*total)
        })
        .collect();
    let numbers = ends.last().copied().unwrap_or(0);
    // The value at a rank of the sorted column.
    let at_rank = |rank: u64| few.ascending[ends.partition_point(|end| *end <= rank)].0;
    let quantile = |q: f64| -> Option<f64> {
        if numbers == 0 {
            return None;
        }
        let at = q * (numbers - 1) as f64;
        let (lo, hi) = (at.floor(), at.ceil());
        let (low, high) = (at_rank(lo as u64), at_rank(hi as u64));
        Some(low + (high - low) * (at - lo))
    };
    let count_where = |keep: fn(f64) -> bool| -> usize {
        few.ascending
            .iter()
            .filter(|(v, _)| keep(*v))
            .map(|(_, n)| *n as usize)
            .sum()
    };
    (
        NumericStats {
            min: few.ascending.first().map(|v| v.0),
            max: few.ascending.last().map(|v| v.0),
            mean,
            std,
            median: quantile(0.5),
            q25: quantile(0.25),
            q75: quantile(0.75),
            zeros: count_where(|v| v == 0.0),
            negatives: count_where(|v| v < 0.0),
        },
        few.ascending.len() + usize::from(few.nan),
    )
}

fn top_list(top: &DataFrame) -> Result<Vec<TopValue>> {
    let values = top.columns()[0].as_materialized_series();
    let counts = top.columns()[1]
        .as_materialized_series()
        .cast(&DataType::UInt64)?;
    let counts = counts.u64()?;
    Ok((0..top.height())
        .map(|i| TopValue {
            value: cut(&values.get(i).map(|v| display(&v)).unwrap_or_default(), 80),
            count: counts.get(i).unwrap_or(0) as usize,
        })
        .collect())
}

/// The `k` most frequent non-null values with their counts (most frequent
/// first, ties by value), and the number of distinct values. Only values
/// that can be in the top `k` are ranked; text takes [`ranked_text`], and
/// this general path only for a column of over 4 billion rows.
fn ranked_counts(s: &Series, k: usize) -> Result<(DataFrame, usize)> {
    if let Ok(text) = s.str()
        && let Some(ranked) = ranked_text(text, k, &PlRandomState::default())
    {
        return ranked;
    }
    let counted = s
        .drop_nulls()
        .value_counts(false, true, "count".into(), false)?;
    let distinct = counted.height();
    if distinct == 0 || k == 0 {
        return Ok((counted.head(Some(0)), distinct));
    }
    let count_col = counted.columns()[1]
        .as_materialized_series()
        .cast(&DataType::UInt64)?;
    let counts = count_col.u64()?;
    // The k-th largest count: nothing below it can make the list.
    let threshold = if k >= distinct {
        0
    } else {
        let mut all: Vec<u64> = counts.into_no_null_iter().collect();
        let at = distinct - k;
        *all.select_nth_unstable(at).1
    };
    let candidates = counted.filter(&counts.gt_eq(threshold))?;
    let name = candidates.columns()[0].name().clone();
    let ranked = candidates.sort(
        ["count", name.as_str()],
        SortMultipleOptions::default()
            .with_order_descending_multi([true, false])
            .with_maintain_order(true),
    )?;
    Ok((ranked.head(Some(k)), distinct))
}

/// [`ranked_counts`] for text in one pass: each value is hashed once and
/// counted in a table of distinct values, compared by content (so values
/// sharing a hash stay apart). Cheaper in time and memory than a general
/// group-by on a column of many distinct values. `None` only past 4 billion
/// rows (the caller then counts the general way).
fn ranked_text(
    ca: &StringChunked,
    k: usize,
    state: &(impl std::hash::BuildHasher + Sync),
) -> Option<Result<(DataFrame, usize)>> {
    ranked_text_full(ca, k, state).map(|r| r.map(|(top, distinct, _)| (top, distinct)))
}

/// Shortest and longest text (in characters) and how many values are empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Lengths {
    min: Option<usize>,
    max: Option<usize>,
    empty: usize,
}

/// One distinct text value in a count table: 32 bytes, so a probe that
/// finds its hash finds, in the same cache line, what decides equality.
#[derive(Clone, Copy)]
struct Slot {
    hash: u64,
    /// Length and bytes of a value of at most 12 bytes (the rest zeroed);
    /// length and first 4 bytes of a longer one.
    key: u128,
    /// The first row holding the value (rows of all chunks, in order).
    row: u32,
    count: u32,
}

impl Slot {
    /// Whether this slot holds the value of hash `hash` and key `key`: a
    /// short value is decided by its key, a longer one by its content
    /// (`value`, read only then; `value_at` reads the slot's).
    fn holds<'a>(
        &self,
        hash: u64,
        key: u128,
        value: impl FnOnce() -> &'a str,
        value_at: impl Fn(u32) -> &'a str,
    ) -> bool {
        let long = (key as u32) > 12;
        self.hash == hash && self.key == key && (!long || value_at(self.row) == value())
    }
}

/// The key of a value from its arrow view: a short value is held whole in
/// the view, and what follows its bytes is cleared so that equal values
/// have equal keys however the view was written.
fn view_key(view: u128, len: u32) -> u128 {
    const INLINE: u32 = 12;
    if len > INLINE {
        // Length and prefix; the buffer position differs between copies.
        view & u128::from(u64::MAX)
    } else if len == INLINE {
        view
    } else {
        view & ((1u128 << (32 + 8 * len)) - 1)
    }
}

/// [`ranked_text`], with the lengths of the values read off the distinct
/// values as they are first met.
fn ranked_text_full(
    ca: &StringChunked,
    k: usize,
    state: &(impl std::hash::BuildHasher + Sync),
) -> Option<Result<(DataFrame, usize, Lengths)>> {
    use rayon::prelude::*;
    u32::try_from(ca.len()).ok()?;
    let arrays: Vec<_> = ca.downcast_iter().collect();
    let starts: Vec<usize> = arrays
        .iter()
        .scan(0, |at, a| {
            let start = *at;
            *at += a.len();
            Some(start)
        })
        .collect();
    let value_at = |row: u32| -> &str {
        let row = row as usize;
        let chunk = starts.partition_point(|s| *s <= row) - 1;
        arrays[chunk].value(row - starts[chunk])
    };
    let threads = rayon::current_num_threads().clamp(1, 8);
    let len = ca.len() as u32;
    let shares: Vec<Share> = if ca.len() < 1 << 16 || threads == 1 {
        vec![count_share(&arrays, &value_at, state, 0..len, None, 0)]
    } else {
        // A first slice tells whether the values are few (a category).
        let sample = (1u32 << 14).min(len);
        let first = count_share(&arrays, &value_at, state, 0..sample, None, 0);
        if first.table.len() <= 2048 {
            // Few values: each thread counts a range of rows, and the small
            // tables are merged.
            let step = (len - sample).div_ceil(threads as u32).max(1);
            let ranges: Vec<_> = (sample..len)
                .step_by(step as usize)
                .map(|start| start..(start + step).min(len))
                .collect();
            let rest: Vec<Share> = ranges
                .into_par_iter()
                .map(|rows| count_share(&arrays, &value_at, state, rows, None, 0))
                .collect();
            vec![
                rest.into_iter()
                    .fold(first, |all, more| merge(all, more, &value_at)),
            ]
        } else {
            // Many values: split among threads by hash, so each counts its
            // share of the distinct values in a table a fraction of the size,
            // sized from the first rows (at most 2^18 slots, 8 MiB, at first)
            // so it is not rebuilt at every doubling.
            let expected = first.table.len() as u64 * u64::from(len) / u64::from(sample);
            let reserve = (expected / threads as u64).min(1 << 18) as usize;
            (0..threads)
                .into_par_iter()
                .map(|part| {
                    let share = Some((part, threads));
                    count_share(&arrays, &value_at, state, 0..len, share, reserve)
                })
                .collect()
        }
    };
    let distinct = shares.iter().map(|s| s.table.len()).sum::<usize>();
    let mut lengths = Lengths {
        min: shares.iter().filter_map(|s| s.min).min(),
        max: shares.iter().filter_map(|s| s.max).max(),
        empty: 0,
    };
    let slots = || shares.iter().flat_map(|s| s.table.iter());
    if let Some(empty) = slots().find(|slot| slot.key as u32 == 0) {
        lengths.empty = empty.count as usize;
    }
    let take = k.min(distinct);
    // The k-th largest count: nothing below it can make the list.
    let threshold = if take == 0 {
        u32::MAX
    } else if take == distinct {
        0
    } else {
        let mut counts: Vec<u32> = slots().map(|slot| slot.count).collect();
        *counts.select_nth_unstable(distinct - take).1
    };
    let mut best: Vec<(&str, u32)> = slots()
        .filter(|slot| slot.count >= threshold && take > 0)
        .map(|slot| (value_at(slot.row), slot.count))
        .collect();
    let order = |a: &(&str, u32), b: &(&str, u32)| b.1.cmp(&a.1).then(a.0.cmp(b.0));
    // Ties at the threshold (every value of a unique column) are many:
    // select the first k before sorting them.
    if best.len() > take && take > 0 {
        best.select_nth_unstable_by(take - 1, order);
        best.truncate(take);
    }
    best.sort_unstable_by(order);
    let values = StringChunked::from_iter_values(ca.name().clone(), best.iter().map(|g| g.0));
    let counts = UInt64Chunked::from_vec(
        "count".into(),
        best.iter().map(|g| u64::from(g.1)).collect(),
    );
    Some(
        DataFrame::new(take, vec![values.into_column(), counts.into_column()])
            .map(|df| (df, distinct, lengths))
            .map_err(Into::into),
    )
}

/// One thread's share of the distinct values of a text column.
struct Share {
    table: hashbrown::HashTable<Slot>,
    /// Shortest and longest value of the share, in characters.
    min: Option<usize>,
    max: Option<usize>,
}

/// Counts the values of `rows` (rows of all chunks, in order), only those
/// whose hash falls in share `part` of `parts` when `share_of` is given, in a
/// table made for `reserve` values. `arrays` are the column's chunks and
/// `value_at` reads a value by its row.
fn count_share<'a>(
    arrays: &[&'a Utf8ViewArray],
    value_at: &(impl Fn(u32) -> &'a str + Sync),
    state: &impl std::hash::BuildHasher,
    rows: std::ops::Range<u32>,
    share_of: Option<(usize, usize)>,
    reserve: usize,
) -> Share {
    let mut share = Share {
        table: hashbrown::HashTable::with_capacity(reserve),
        min: None,
        max: None,
    };
    let mut row: u32 = 0;
    for array in arrays {
        let validity = array.validity();
        let end = row + array.len() as u32;
        // The part of `rows` in this chunk, as its own indices.
        let from = rows.start.clamp(row, end) - row;
        let to = rows.end.clamp(row, end) - row;
        let views = &array.views()[from as usize..to as usize];
        for (i, view) in (from as usize..).zip(views) {
            if validity.is_some_and(|v| !v.get_bit(i)) {
                continue;
            }
            let at = row + i as u32;
            let len = view.length;
            let value = array.value(i);
            let hash = state.hash_one(value);
            // High bits choose the share; the table indexes by the low ones.
            if let Some((part, parts)) = share_of
                && (hash >> 32) as usize % parts != part
            {
                continue;
            }
            let key = view_key(view.as_u128(), len);
            let same = |slot: &Slot| slot.holds(hash, key, || value, value_at);
            if let Some(slot) = share.table.find_mut(hash, same) {
                slot.count += 1;
            } else {
                let chars = if value.is_ascii() {
                    value.len()
                } else {
                    value.chars().count()
                };
                share.min = Some(share.min.map_or(chars, |m| m.min(chars)));
                share.max = Some(share.max.map_or(chars, |m| m.max(chars)));
                let slot = Slot {
                    hash,
                    key,
                    row: at,
                    count: 1,
                };
                share.table.insert_unique(hash, slot, |s| s.hash);
            }
        }
        row = end;
    }
    share
}

/// One table of the values counted in two, `later` counting rows after
/// `all`'s (so a value's first row stays `all`'s).
fn merge<'a>(mut all: Share, later: Share, value_at: &impl Fn(u32) -> &'a str) -> Share {
    for slot in later.table {
        let same = |held: &Slot| held.holds(slot.hash, slot.key, || value_at(slot.row), value_at);
        match all.table.find_mut(slot.hash, same) {
            Some(held) => held.count += slot.count,
            None => {
                all.table.insert_unique(slot.hash, slot, |s| s.hash);
            }
        }
    }
    all.min = all.min.into_iter().chain(later.min).min();
    all.max = all.max.into_iter().chain(later.max).max();
    all
}

/// Which rows a preview shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowWindow {
    Head(usize),
    Tail(usize),
    Slice { offset: usize, limit: usize },
}

/// Rows for display: a window of rows and a subset of columns (hidden columns
/// never shown).
pub fn preview(
    df: &DataFrame,
    window: RowWindow,
    columns: Option<&[String]>,
) -> Result<(DataFrame, usize)> {
    let names = resolve_or_all(df, columns)?;
    let selected = df.select(names)?;
    let height = selected.height();
    let (offset, limit) = match window {
        RowWindow::Head(n) => (0, n),
        RowWindow::Tail(n) => (height.saturating_sub(n), n),
        RowWindow::Slice { offset, limit } => (offset, limit),
    };
    if offset > height {
        return Err(OpsError::InvalidArgument(format!(
            "offset {offset} is past the end of the table ({height} rows)"
        )));
    }
    Ok((selected.slice(offset as i64, limit), offset))
}

/// Result of [`value_counts`].
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ValueCounts {
    pub column: String,
    pub rows: usize,
    pub missing: usize,
    pub distinct: usize,
    pub values: Vec<ValueCount>,
    /// Distinct values not listed (beyond the limit).
    pub others: usize,
    pub others_count: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ValueCount {
    pub value: serde_json::Value,
    pub count: usize,
    pub percent: f64,
}

/// The most frequent values of a column.
pub fn value_counts(df: &DataFrame, column: &str, limit: usize) -> Result<ValueCounts> {
    resolve(df, &[column.to_string()])?;
    let s = df.column(column)?.as_materialized_series();
    let (counted, distinct) = ranked_counts(s, limit)?;
    let values = counted.columns()[0].as_materialized_series();
    let count_col = counted.columns()[1]
        .as_materialized_series()
        .cast(&DataType::UInt64)?;
    let count_ca = count_col.u64()?;
    let rows = s.len();
    let shown = counted.height().min(limit);
    let listed: Vec<ValueCount> = (0..shown)
        .map(|i| {
            let count = count_ca.get(i).unwrap_or(0) as usize;
            ValueCount {
                value: values
                    .get(i)
                    .map(|v| crate::values::to_json(&v, 200))
                    .unwrap_or(serde_json::Value::Null),
                count,
                percent: if rows == 0 {
                    0.0
                } else {
                    fmt_num(count as f64 * 100.0 / rows as f64)
                        .parse()
                        .unwrap_or(0.0)
                },
            }
        })
        .collect();
    let listed_total: usize = listed.iter().map(|v| v.count).sum();
    Ok(ValueCounts {
        column: column.to_string(),
        rows,
        missing: s.null_count(),
        distinct,
        others: distinct - shown,
        others_count: rows - s.null_count() - listed_total,
        values: listed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The summary as first written (one polars call per statistic, every
    /// distinct value sorted): slow, obviously right. The rewrite must agree
    /// with it exactly.
    mod reference {
        use super::super::*;

        /// Summarises the table; `columns` restricts, `offset`/`limit` page through
        /// the (visible) columns.
        pub(super) fn summarize(
            df: &DataFrame,
            columns: Option<&[String]>,
            offset: usize,
            limit: usize,
            top_n: usize,
        ) -> Result<TableSummary> {
            let names = resolve_or_all(df, columns)?;
            let page: Vec<&String> = names.iter().skip(offset).take(limit.max(1)).collect();
            let shown = visible(df);
            let duplicate_rows = if shown.width() == 0 || shown.height() == 0 {
                0
            } else {
                shown.is_duplicated()?.sum().unwrap_or(0) as usize
            };
            let mut summaries = Vec::with_capacity(page.len());
            for name in &page {
                summaries.push(summarize_column(df, name, top_n)?);
            }
            let end = offset + page.len();
            Ok(TableSummary {
                rows: df.height(),
                columns: visible_names(df).len(),
                duplicate_rows,
                memory_bytes: dfmcp_memory::frame_bytes(&shown),
                column_offset: offset,
                column_summaries: summaries,
                next_column_offset: (end < names.len()).then_some(end),
            })
        }

        fn summarize_column(df: &DataFrame, name: &str, top_n: usize) -> Result<ColumnSummary> {
            let s = df.column(name)?.as_materialized_series();
            let len = s.len();
            let nulls = s.null_count();
            let intentional = marks_of(df, name)
                .map(|m| (&m & &s.is_null()).sum().unwrap_or(0) as usize)
                .unwrap_or(0);
            let missing = nulls - intentional;
            let dtype = s.dtype().clone();
            let distinct = s.drop_nulls().n_unique().unwrap_or(0);
            let mut summary = ColumnSummary {
                name: name.to_string(),
                dtype: dtype.to_string(),
                non_null: len - nulls,
                missing,
                missing_pct: if len == 0 {
                    0.0
                } else {
                    (missing as f64 * 1000.0 / len as f64).round() / 10.0
                },
                intentional_missing: intentional,
                distinct,
                numeric: None,
                text: None,
                range: None,
                boolean: None,
            };
            if dtype.is_primitive_numeric() {
                let as_f = s.cast(&DataType::Float64)?;
                let ca = as_f.f64()?;
                summary.numeric = Some(NumericStats {
                    min: ca.min(),
                    max: ca.max(),
                    mean: ca.mean(),
                    std: ca.std(1),
                    median: ca.median(),
                    q25: ca.quantile(0.25, QuantileMethod::Linear).ok().flatten(),
                    q75: ca.quantile(0.75, QuantileMethod::Linear).ok().flatten(),
                    zeros: ca.equal(0.0).sum().unwrap_or(0) as usize,
                    negatives: ca.lt(0.0).sum().unwrap_or(0) as usize,
                });
            } else if dtype.is_temporal() {
                summary.range = Some(RangeStats {
                    min: s
                        .min_reduce()
                        .ok()
                        .map(|v| display(v.value()))
                        .filter(|v| !v.is_empty()),
                    max: s
                        .max_reduce()
                        .ok()
                        .map(|v| display(v.value()))
                        .filter(|v| !v.is_empty()),
                });
            } else if dtype == DataType::Boolean {
                let ca = s.bool()?;
                let t = ca.sum().unwrap_or(0) as usize;
                summary.boolean = Some(BoolStats {
                    true_count: t,
                    false_count: len - nulls - t,
                });
            } else if dtype == DataType::String || dtype.is_categorical() {
                let text = s.cast(&DataType::String)?;
                let ca = text.str()?;
                let lengths: Vec<usize> = ca.iter().flatten().map(|v| v.chars().count()).collect();
                summary.text = Some(TextStats {
                    top: top_values(&text, top_n)?,
                    min_length: lengths.iter().min().copied(),
                    max_length: lengths.iter().max().copied(),
                    empty_strings: ca.iter().flatten().filter(|v| v.is_empty()).count(),
                });
            }
            Ok(summary)
        }

        fn top_values(s: &Series, n: usize) -> Result<Vec<TopValue>> {
            let counted = counts(s)?;
            let values = counted.columns()[0].as_materialized_series();
            let count_col = counted.columns()[1]
                .as_materialized_series()
                .cast(&DataType::UInt64)?;
            let count_ca = count_col.u64()?;
            Ok((0..counted.height().min(n))
                .map(|i| TopValue {
                    value: cut(&values.get(i).map(|v| display(&v)).unwrap_or_default(), 80),
                    count: count_ca.get(i).unwrap_or(0) as usize,
                })
                .collect())
        }

        /// Non-null values with their counts, most frequent first (ties by value).
        fn counts(s: &Series) -> Result<DataFrame> {
            let non_null = s.drop_nulls();
            let counted = non_null.value_counts(true, true, "count".into(), false)?;
            let name = counted.columns()[0].name().clone();
            Ok(counted.sort(
                ["count", name.as_str()],
                SortMultipleOptions::default()
                    .with_order_descending_multi([true, false])
                    .with_maintain_order(true),
            )?)
        }
    }

    fn frame() -> DataFrame {
        df!(
            "price" => [Some(1.0), Some(2.0), None, Some(4.0)],
            "city" => [Some("Oslo"), Some("Rome"), Some("Oslo"), None],
            "ok" => [true, false, true, true],
        )
        .unwrap()
    }

    #[test]
    fn summary_numbers_text_bools() {
        let s = summarize(&frame(), None, 0, 50, 3).unwrap();
        assert_eq!((s.rows, s.columns), (4, 3));
        let price = &s.column_summaries[0];
        assert_eq!(price.missing, 1);
        assert_eq!(price.missing_pct, 25.0);
        let n = price.numeric.as_ref().unwrap();
        assert_eq!((n.min, n.max, n.median), (Some(1.0), Some(4.0), Some(2.0)));
        let city = &s.column_summaries[1];
        assert_eq!(
            city.text.as_ref().unwrap().top[0],
            TopValue {
                value: "Oslo".into(),
                count: 2
            }
        );
        assert_eq!(
            s.column_summaries[2].boolean.as_ref().unwrap().true_count,
            3
        );
    }

    /// A frame of every kind of column, with nulls, ties, large integers,
    /// intentional-missing marks, an empty-string value and an all-null column.
    fn varied(rows: usize, seed: u64) -> DataFrame {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut ints = Vec::new();
        let mut big = Vec::new();
        let mut floats = Vec::new();
        let mut words = Vec::new();
        let mut unique = Vec::new();
        let mut flags = Vec::new();
        let mut days = Vec::new();
        let mut marks = Vec::new();
        for i in 0..rows {
            let r = next();
            ints.push((r % 7 != 0).then(|| (r % 21) as i64 - 10));
            big.push((r % 5 != 0).then(|| (1i64 << 60) + (r % 3) as i64));
            floats.push((r % 9 != 0).then(|| ((r % 1000) as f64 - 300.0) / 7.0));
            words.push(match r % 6 {
                0 => None,
                1 => Some(String::new()),
                n => Some(["oslo", "rome", "lima", "Åre"][n as usize % 4].to_string()),
            });
            unique.push(Some(format!("id-{:06}", (i * 7919) % 100_003)));
            flags.push((r % 4 != 0).then_some(r % 3 == 0));
            days.push((r % 8 != 0).then(|| 19_000 + (r % 400) as i32));
            marks.push(r % 7 == 0 && r % 2 == 0);
        }
        let mut df = df!(
            "ints" => ints,
            "big" => big,
            "floats" => floats,
            "words" => words,
            "unique" => unique,
            "flags" => flags,
            "nothing" => vec![None::<f64>; rows],
        )
        .unwrap();
        let days = Series::new("days".into(), days)
            .cast(&DataType::Date)
            .unwrap();
        df.with_column(days.into()).unwrap();
        let cats = df
            .column("words")
            .unwrap()
            .cast(&DataType::from_categories(Categories::global()))
            .unwrap()
            .with_name("cats".into());
        df.with_column(cats).unwrap();
        let marks = Series::new(format!("{}ints", crate::columns::MARK_PREFIX).into(), marks);
        df.with_column(marks.into()).unwrap();
        df
    }

    #[test]
    fn the_rewrite_agrees_with_the_reference() {
        for (rows, seed) in [(0, 1), (1, 2), (2, 3), (17, 4), (500, 5), (5000, 6)] {
            let df = varied(rows, seed);
            for top in [0, 1, 3, 20] {
                let new = summarize(&df, None, 0, 50, top).unwrap();
                let old = reference::summarize(&df, None, 0, 50, top).unwrap();
                assert_eq!(new, old, "{rows} rows, top {top}");
            }
        }
    }

    /// The duplicate count from row hashes equals polars' own: twins across
    /// slices of rows and chunks, nulls, -0.0 beside 0.0, NaN, hidden marks.
    #[test]
    fn duplicate_rows_agree_with_polars() {
        let rows = 200_003;
        let a: Vec<Option<f64>> = (0..rows)
            .map(|i| match i % 9 {
                0 => None,
                1 => Some(-0.0),
                2 => Some(0.0),
                3 => Some(f64::NAN),
                _ => Some((i % 50_000) as f64),
            })
            .collect();
        let b: Vec<Option<String>> = (0..rows)
            .map(|i| (i % 7 != 0).then(|| format!("v{}", i % 30_000)))
            .collect();
        let mut df = df!("a" => a, "b" => b).unwrap();
        let more = df.slice(5, 1000);
        df.vstack_mut(&more).unwrap();
        assert!(df.first_col_n_chunks() > 1);
        let expected =
            |df: &DataFrame| visible(df).is_duplicated().unwrap().sum().unwrap() as usize;
        assert_eq!(duplicate_rows(&df, &[]).unwrap(), expected(&df));
        assert!(expected(&df) > 0);
        // No twins at all, and a frame of one twin pair.
        let unique =
            df!("a" => (0..70_000i64).collect::<Vec<_>>(), "b" => vec!["x"; 70_000]).unwrap();
        assert_eq!(duplicate_rows(&unique, &[]).unwrap(), 0);
        // Few twins among many rows: only they are compared.
        let mut few = unique.clone();
        few.vstack_mut(&unique.slice(10, 2)).unwrap();
        assert_eq!(duplicate_rows(&few, &[]).unwrap(), 4);
        let pair = df!("a" => [Some(1.5), None, Some(1.5)], "b" => ["x", "y", "x"]).unwrap();
        assert_eq!(duplicate_rows(&pair, &[]).unwrap(), 2);
        // Marks are not part of a row.
        let marked = df!(
            "a" => [1, 1],
            crate::columns::mark_column("a") => [true, false],
        )
        .unwrap();
        assert_eq!(duplicate_rows(&marked, &[]).unwrap(), 2);
    }

    #[test]
    fn top_values_of_unique_text_are_the_smallest() {
        // Every value ties: the first k are selected, then sorted.
        let values: Vec<String> = (0..10_000).rev().map(|i| format!("v{i:05}")).collect();
        let df = df!("v" => values).unwrap();
        let s = summarize(&df, None, 0, 5, 3).unwrap();
        let text = s.column_summaries[0].text.as_ref().unwrap();
        let top: Vec<&str> = text.top.iter().map(|t| t.value.as_str()).collect();
        assert_eq!(top, ["v00000", "v00001", "v00002"]);
        assert_eq!(s.column_summaries[0].distinct, 10_000);
        assert_eq!(s, reference::summarize(&df, None, 0, 5, 3).unwrap());
        let counted = value_counts(&df, "v", 2).unwrap();
        assert_eq!(counted.values[1].value, "v00001");
        assert_eq!((counted.distinct, counted.others), (10_000, 9_998));
    }

    /// Every hash the same: the counter must still keep different values
    /// apart, by content.
    #[derive(Default)]
    struct Colliding;

    struct Constant;

    impl std::hash::Hasher for Constant {
        fn finish(&self) -> u64 {
            7
        }
        fn write(&mut self, _: &[u8]) {}
    }

    impl std::hash::BuildHasher for Colliding {
        type Hasher = Constant;
        fn build_hasher(&self) -> Constant {
            Constant
        }
    }

    /// The one-pass text counter gives what polars' value counts give,
    /// ranked the same way: short values (held in the view) and long ones
    /// sharing a length and first bytes, across chunks, and with every
    /// value under one hash.
    #[test]
    fn text_counting_agrees_with_value_counts() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut short: Vec<Option<String>> = Vec::new();
        let mut long: Vec<Option<String>> = Vec::new();
        for _ in 0..70_000 {
            let x = next();
            short.push((!x.is_multiple_of(11)).then(|| format!("é{}", x % 700)));
            long.push((!x.is_multiple_of(13)).then(|| format!("same prefix, then {}", x % 900)));
        }
        short.push(Some(String::new()));
        long.push(Some(String::new()));
        let mut chunked = Series::new("t".into(), &long[..30_000]);
        chunked
            .append(&Series::new("t".into(), &long[30_000..]))
            .unwrap();
        assert!(chunked.n_chunks() > 1);
        // Many values in the first rows: counted in shares by hash.
        let many: Vec<String> = (0..150_000u64)
            .map(|i| format!("v{}", i * 7919 % 60_000))
            .collect();
        let mut many_chunked = Series::new("t".into(), &many[..100_001]);
        many_chunked
            .append(&Series::new("t".into(), &many[100_001..]))
            .unwrap();
        for (few, series) in [
            (true, Series::new("t".into(), &short)),
            (true, chunked),
            (false, many_chunked),
        ] {
            let ca = series.str().unwrap();
            let general = |k: usize| {
                let counted = series
                    .drop_nulls()
                    .value_counts(false, true, "count".into(), false)
                    .unwrap();
                let sorted = counted
                    .sort(
                        ["count", "t"],
                        SortMultipleOptions::default()
                            .with_order_descending_multi([true, false])
                            .with_maintain_order(true),
                    )
                    .unwrap();
                (sorted.head(Some(k)), counted.height())
            };
            for k in [0, 1, 5, 699, 700, 701, 10_000] {
                let check = |(fast, distinct): (DataFrame, usize)| {
                    let (expected, expected_distinct) = general(k);
                    assert_eq!(distinct, expected_distinct, "k {k}");
                    assert_eq!(fast.height(), expected.height(), "k {k}");
                    for (a, b) in fast.columns().iter().zip(expected.columns()) {
                        let b = b.cast(a.dtype()).unwrap();
                        assert!(
                            a.as_materialized_series()
                                .equals(b.as_materialized_series()),
                            "k {k}"
                        );
                    }
                };
                check(
                    ranked_text(ca, k, &PlRandomState::default())
                        .unwrap()
                        .unwrap(),
                );
                if k == 5 && few {
                    check(ranked_text(ca, k, &Colliding).unwrap().unwrap());
                }
            }
        }
        let empty = Series::new("t".into(), Vec::<Option<&str>>::new());
        let (none, distinct) = ranked_text(empty.str().unwrap(), 5, &Colliding)
            .unwrap()
            .unwrap();
        assert_eq!((none.height(), distinct), (0, 0));
    }

    /// A short value's key is its bytes whatever follows them in the view.
    #[test]
    fn short_keys_ignore_what_follows_the_value() {
        let tidy = u128::from_le_bytes(*b"\x03\0\0\0abc\0\0\0\0\0\0\0\0\0");
        let messy = u128::from_le_bytes(*b"\x03\0\0\0abcXYZXYZXYZ");
        assert_eq!(view_key(tidy, 3), view_key(messy, 3));
        assert_ne!(view_key(tidy, 3), view_key(tidy, 2));
        let twelve = u128::from_le_bytes(*b"\x0c\0\0\0abcdefghijkl");
        assert_eq!(view_key(twelve, 12), twelve);
        let long = u128::from_le_bytes(*b"\x20\0\0\0abcd\x01\0\0\0\x09\0\0\0");
        assert_eq!(view_key(long, 32), long & u128::from(u64::MAX));
        assert_eq!(view_key(0, 0), 0);
    }

    /// Counting a column's few distinct numbers gives what sorting it gives:
    /// integers beyond f64's precision, -0.0 and 0.0, NaN, nulls, chunks,
    /// empty and all-null columns; and steps aside past [`FEW`] values.
    #[test]
    fn counted_numbers_agree_with_sorted() {
        let big = i64::MAX - 1;
        let mut chunked = Series::new("x".into(), [Some(3i32), None, Some(-7)]);
        chunked
            .append(&Series::new("x".into(), [Some(3i32), Some(0), Some(-7)]))
            .unwrap();
        let columns = [
            Series::new(
                "x".into(),
                [Some(4.0), None, Some(-1.0), Some(0.0), Some(10.0)],
            ),
            Series::new("x".into(), [-0.0, 0.0, f64::NAN, 2.5, f64::NAN, -3.25, 2.5]),
            Series::new("x".into(), [f32::NAN, 1.5, 1.5]),
            Series::new(
                "x".into(),
                [Some(big), Some(big - 1), None, Some(big), Some(-4)],
            ),
            Series::new("x".into(), [u64::MAX, u64::MAX - 1, 0, u64::MAX]),
            Series::new("x".into(), [200u8, 3, 3, 0]),
            chunked,
            Series::new("x".into(), Vec::<Option<i64>>::new()),
            Series::new("x".into(), vec![None::<f64>; 4]),
            Series::new("x".into(), [f64::NAN, f64::NAN]),
            Series::new(
                "x".into(),
                (0..1000).map(|i| (i % 7) as f64 / 3.0).collect::<Vec<_>>(),
            ),
        ];
        for s in columns {
            let few = few_distinct(&s).unwrap().expect("few values are counted");
            let counted = from_counts(&few, None, None);
            let sorted = sorted_stats(&s, None, None).unwrap();
            assert_eq!(format!("{counted:?}"), format!("{sorted:?}"), "{s:?}");
        }
        let many = Series::new("x".into(), (0..FEW as i64 + 1).collect::<Vec<_>>());
        assert!(few_distinct(&many).unwrap().is_none());
        let enough = Series::new("x".into(), (0..FEW as i64).collect::<Vec<_>>());
        let few = few_distinct(&enough).unwrap().unwrap();
        assert_eq!(
            format!("{:?}", from_counts(&few, None, None)),
            format!("{:?}", sorted_stats(&enough, None, None).unwrap())
        );
    }

    #[test]
    fn exact_quantiles_and_counts() {
        let df = df!(
            "x" => [Some(4.0), None, Some(-1.0), Some(0.0), Some(10.0), Some(0.0)],
            "empty" => vec![None::<i64>; 6],
        )
        .unwrap();
        let s = summarize(&df, None, 0, 5, 3).unwrap();
        let x = &s.column_summaries[0];
        let n = x.numeric.as_ref().unwrap();
        // Sorted: -1, 0, 0, 4, 10.
        assert_eq!((n.min, n.max), (Some(-1.0), Some(10.0)));
        assert_eq!((n.q25, n.median, n.q75), (Some(0.0), Some(0.0), Some(4.0)));
        assert_eq!((n.zeros, n.negatives, x.distinct), (2, 1, 4));
        assert_eq!((x.non_null, x.missing), (5, 1));
        let empty = &s.column_summaries[1];
        let e = empty.numeric.as_ref().unwrap();
        assert_eq!((e.min, e.median, e.mean), (None, None, None));
        assert_eq!(
            (empty.distinct, empty.missing, empty.missing_pct),
            (0, 6, 100.0)
        );
    }

    #[test]
    fn summary_pages_columns() {
        let s = summarize(&frame(), None, 1, 1, 3).unwrap();
        assert_eq!(s.column_summaries.len(), 1);
        assert_eq!(s.column_summaries[0].name, "city");
        assert_eq!(s.next_column_offset, Some(2));
    }

    #[test]
    fn previews() {
        let (tail, offset) = preview(&frame(), RowWindow::Tail(2), Some(&["city".into()])).unwrap();
        assert_eq!((tail.height(), tail.width(), offset), (2, 1, 2));
        assert!(
            preview(
                &frame(),
                RowWindow::Slice {
                    offset: 9,
                    limit: 1
                },
                None
            )
            .is_err()
        );
    }

    #[test]
    fn counts_values() {
        let v = value_counts(&frame(), "city", 1).unwrap();
        assert_eq!(v.values[0].count, 2);
        assert_eq!(v.values[0].percent, 50.0);
        assert_eq!(
            (v.missing, v.distinct, v.others, v.others_count),
            (1, 2, 1, 1)
        );
    }
}
