//! Near-duplicate text values ("Jon Smith", "John Smith", "JOHN SMITH"):
//! finding clusters of them, and merging a cluster into one value.
//!
//! Work is done on distinct values, not rows, and only on pairs that could
//! reach the threshold: a pair is compared only if it passes a length filter
//! and shares one of the rarest q-grams (edit) or words (token) of each side
//! (prefix filtering), and for edit, enough q-grams in all (count
//! filtering). These filters lose no pair at or above the threshold, yet
//! leave a small fraction of all pairs to compare on real data; a cap on
//! comparisons keeps the worst case bounded too.

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::columns::resolve;
use crate::error::{OpsError, Result};

/// Values per cluster listed in a report (the most frequent first).
pub const VALUES_PER_CLUSTER: usize = 100;
/// Normalised values longer than this (in characters) are clustered only
/// with values that normalise to the same text: edit distance on long text
/// costs the product of the lengths, and long free text is rarely a
/// misspelt category.
pub const MAX_COMPARED_CHARS: usize = 200;
/// Candidate look-ups allowed per comparison of the budget: the look-ups
/// are cheap, but unbounded they could still cost more than the comparisons.
const LOOKUPS_PER_COMPARISON: u64 = 16;
/// Slack for float rounding, so that a pair exactly at the threshold counts.
const EPS: f64 = 1e-9;
/// q of the q-grams of the edit filter.
const Q: usize = 3;

/// How two normalised values are compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Similarity {
    /// 1 − Levenshtein distance / length of the longer value (in
    /// characters): catches typos and small spelling differences.
    #[default]
    Edit,
    /// Jaccard similarity of the sets of words, |A∩B| / |A∪B|: catches
    /// reordered words ("Smith, John" and "John Smith"), not misspellings.
    /// Text without spaces (e.g. Chinese or Japanese) is one word.
    Token,
}

impl Similarity {
    pub fn default_threshold(self) -> f64 {
        match self {
            Similarity::Edit => 0.85,
            Similarity::Token => 0.8,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Similarity::Edit => "edit",
            Similarity::Token => "token",
        }
    }
}

/// Options of [`find_similar`]; every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FuzzyOptions {
    pub method: Similarity,
    /// In (0, 1]; default 0.85 for edit, 0.8 for token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Clusters reported (the largest first).
    pub limit: usize,
    /// Similarity computations allowed before giving up with
    /// `complete: false`.
    pub max_comparisons: u64,
}

impl Default for FuzzyOptions {
    fn default() -> Self {
        FuzzyOptions {
            method: Similarity::Edit,
            threshold: None,
            limit: 50,
            max_comparisons: 20_000_000,
        }
    }
}

/// One original value of a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimilarValue {
    pub value: String,
    pub rows: usize,
    pub normalized: String,
}

/// Values that are similar to each other, directly or through a chain of
/// similar values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    /// The most frequent value (ties: the first in `values`), a good
    /// default to merge the others into.
    pub representative: String,
    /// Rows holding any of the values.
    pub rows: usize,
    /// Distinct values in the cluster (`values` lists at most
    /// [`VALUES_PER_CLUSTER`]).
    pub distinct: usize,
    /// By rows, most first, then by value.
    pub values: Vec<SimilarValue>,
}

/// The outcome of [`find_similar`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimilarReport {
    pub columns: Vec<String>,
    pub method: Similarity,
    pub threshold: f64,
    /// Distinct non-missing values (joined keys for several columns).
    pub distinct_values: usize,
    /// Similarity computations made.
    pub pairs_compared: u64,
    /// False when the comparison cap stopped the search: clusters are then
    /// those found so far.
    pub complete: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Distinct values too long to compare by edit distance (see
    /// [`MAX_COMPARED_CHARS`]); they still cluster by equal normalised text.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub long_values_not_compared: usize,
    pub total_clusters: usize,
    /// The largest `limit` clusters: by rows, most first, then by first value.
    pub clusters: Vec<Cluster>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Lower case, accents removed, punctuation as spaces, spaces collapsed and
/// trimmed: "  Café-de  FLORE! " → "cafe de flore".
///
/// Accents are removed only from Latin and Greek letters: elsewhere a
/// combining mark often makes a different letter (Japanese ガ is not カ,
/// Russian й is not и), and merging those would cluster distinct words.
pub fn normalize(text: &str) -> String {
    if text.is_ascii() {
        // Nothing to decompose: most values, and far cheaper.
        return collapse(text.chars().map(|c| c.to_ascii_lowercase()), text.len());
    }
    let mut stripped = String::with_capacity(text.len());
    let mut after_latin = false;
    for c in text.to_lowercase().nfkd() {
        if is_combining_mark(c) {
            if !after_latin {
                stripped.push(c);
            }
            continue;
        }
        after_latin = is_latin_or_greek(c);
        stripped.push(c);
    }
    collapse(stripped.nfc().flat_map(char::to_lowercase), stripped.len())
}

/// Punctuation and runs of spaces as one space, none at the ends.
fn collapse(chars: impl Iterator<Item = char>, capacity: usize) -> String {
    let mut out = String::with_capacity(capacity);
    let mut space = false;
    for c in chars {
        if matches!(c, '\u{200B}' | '\u{FEFF}' | '\u{00AD}') {
            // Invisible characters that exports leave inside words.
            continue;
        }
        if c.is_whitespace() || c.is_control() || is_punctuation(c) {
            space = !out.is_empty();
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    out
}

pub(crate) fn is_latin_or_greek(c: char) -> bool {
    c < '\u{0400}' || ('\u{1E00}'..='\u{1FFF}').contains(&c)
}

/// Punctuation, not symbols: "AT&T" and "AT T" are the same name, but an
/// emoji or a currency sign carries meaning.
fn is_punctuation(c: char) -> bool {
    if c.is_alphanumeric() {
        return false;
    }
    (c.is_ascii_punctuation() && !matches!(c, '$' | '+' | '<' | '=' | '>' | '^' | '`' | '|' | '~'))
        || matches!(c,
            '\u{00A1}' | '\u{00A7}' | '\u{00AB}' | '\u{00B6}' | '\u{00B7}' | '\u{00BB}' | '\u{00BF}'
            | '\u{2010}'..='\u{2027}'
            | '\u{2030}'..='\u{205E}'
            | '\u{3001}'..='\u{3003}'
            | '\u{3008}'..='\u{3011}'
            | '\u{3014}'..='\u{301F}'
            | '\u{30FB}'
            | '\u{FF01}'..='\u{FF0F}')
}

/// Finds clusters of similar values in `columns` (a row's value is its
/// columns' texts joined by a space; missing parts are left out and rows
/// missing every part are skipped). Values that normalise to the same text
/// always cluster; others cluster when their normalised texts are at least
/// `threshold` similar, directly or through a chain of similar values.
pub fn find_similar(
    df: &DataFrame,
    columns: &[String],
    opts: &FuzzyOptions,
) -> Result<SimilarReport> {
    if columns.is_empty() {
        return Err(OpsError::InvalidArgument(
            "name at least one text column to compare, e.g. [\"customer\"]".into(),
        ));
    }
    let columns = resolve(df, columns)?;
    let threshold = opts
        .threshold
        .unwrap_or_else(|| opts.method.default_threshold());
    if !(threshold > 0.0 && threshold <= 1.0) {
        return Err(OpsError::InvalidArgument(format!(
            "threshold must be above 0 and at most 1 (got {threshold}); {} is the default for the {} method, higher finds fewer, closer matches",
            opts.method.default_threshold(),
            opts.method.name()
        )));
    }
    if opts.max_comparisons == 0 {
        return Err(OpsError::InvalidArgument(
            "max_comparisons must be at least 1".into(),
        ));
    }

    let keys = distinct_keys(df, &columns)?;
    let forms = group_by_normal_form(&keys);
    let mut sets = UnionFind::new(forms.len());
    let (records, long) = match opts.method {
        Similarity::Edit => edit_records(&forms, threshold),
        Similarity::Token => token_records(&forms, threshold),
    };
    let budget = opts.max_comparisons;
    let (pairs_compared, complete) = match opts.method {
        Similarity::Edit => {
            let lengths: Vec<usize> = forms.iter().map(|f| f.norm.chars().count()).collect();
            join(
                &records,
                budget,
                &mut sets,
                |i, j| {
                    let (a, b) = (lengths[i], lengths[j]);
                    let longer = a.max(b);
                    if (a.abs_diff(b) as f64) > (1.0 - threshold) * longer as f64 + EPS {
                        return false;
                    }
                    // Count filter: at distance d they share all but Q·d of
                    // either's grams; a merge of two short sorted lists is
                    // far cheaper than the distance.
                    let distance = ((1.0 - threshold) * longer as f64 + EPS).floor() as usize;
                    let (ga, gb) = (&records[i].elems, &records[j].elems);
                    let needed = ga.len().max(gb.len()).saturating_sub(Q * distance);
                    needed == 0 || shared(ga, gb) >= needed
                },
                |i, j| {
                    strsim::normalized_levenshtein(&forms[i].norm, &forms[j].norm)
                        >= threshold - EPS
                },
            )
        }
        Similarity::Token => join(
            &records,
            budget,
            &mut sets,
            |i, j| {
                let (a, b) = (records[i].elems.len(), records[j].elems.len());
                threshold * a.max(b) as f64 <= a.min(b) as f64 + EPS
            },
            |i, j| jaccard(&records[i].elems, &records[j].elems) >= threshold - EPS,
        ),
    };

    let mut clusters = assemble(&keys, &forms, &mut sets);
    let total_clusters = clusters.len();
    clusters.truncate(opts.limit);
    let mut notes = Vec::new();
    if !complete {
        notes.push(format!(
            "stopped after {pairs_compared} comparisons among {} distinct values (max_comparisons is {budget}; it also bounds candidate look-ups, at {LOOKUPS_PER_COMPARISON} per comparison): the clusters are those found so far. To finish, compare fewer values (filter the rows first, e.g. one category at a time) or raise the threshold (now {threshold})",
            keys.len()
        ));
    }
    if long > 0 {
        notes.push(format!(
            "{long} distinct values longer than {MAX_COMPARED_CHARS} characters were matched only by equal normalised text"
        ));
    }
    Ok(SimilarReport {
        columns,
        method: opts.method,
        threshold,
        distinct_values: keys.len(),
        pairs_compared,
        complete,
        message: (!notes.is_empty()).then(|| notes.join("; ")),
        long_values_not_compared: long,
        total_clusters,
        clusters,
    })
}

/// Distinct row keys with their row counts. Polars counts the distinct
/// combinations, so only those are turned into keys here.
fn distinct_keys(df: &DataFrame, columns: &[String]) -> Result<Vec<(String, usize)>> {
    // Positional names: the user's names could clash with the count's.
    let parts = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let s = df.column(c)?.as_materialized_series();
            let text = if s.dtype() == &DataType::String {
                s.clone()
            } else {
                s.cast(&DataType::String)?
            };
            Ok(text.with_name(format!("k{i}").into()).into_column())
        })
        .collect::<Result<Vec<Column>>>()?;
    let names: Vec<Expr> = (0..columns.len()).map(|i| col(format!("k{i}"))).collect();
    let counted = DataFrame::new(df.height(), parts)?
        .lazy()
        .group_by(names)
        .agg([len().alias("n")])
        .collect()?;
    let texts = (0..columns.len())
        .map(|i| Ok(counted.column(&format!("k{i}"))?.str()?.clone()))
        .collect::<Result<Vec<StringChunked>>>()?;
    let counts = counted.column("n")?.cast(&DataType::UInt64)?;
    let counts = counts.u64()?;
    let mut iters: Vec<_> = texts.iter().map(|t| t.iter()).collect();
    // Missing parts are left out, so two combinations can make one key.
    let mut index: PlHashMap<String, usize> = PlHashMap::default();
    let mut keys: Vec<(String, usize)> = Vec::with_capacity(counted.height());
    for n in counts.iter() {
        let present: Vec<&str> = iters
            .iter_mut()
            .filter_map(|it| it.next().flatten())
            .collect();
        if present.is_empty() {
            continue;
        }
        let key = present.join(" ");
        let n = n.unwrap_or(0) as usize;
        if columns.len() == 1 {
            keys.push((key, n));
            continue;
        }
        match index.get(key.as_str()) {
            Some(&at) => keys[at].1 += n,
            None => {
                index.insert(key.clone(), keys.len());
                keys.push((key, n));
            }
        }
    }
    Ok(keys)
}

/// Distinct values sharing one normalised text.
struct Form {
    norm: String,
    /// Indices into the distinct keys.
    keys: Vec<usize>,
}

/// Groups keys by normalised text, sorted by it so that results (and where
/// the cap stops) do not depend on row order. Keys that normalise to nothing
/// (only punctuation or spaces) are left out: they are not names of anything.
fn group_by_normal_form(keys: &[(String, usize)]) -> Vec<Form> {
    let norms: Vec<String> = keys.iter().map(|(key, _)| normalize(key)).collect();
    let mut order: Vec<usize> = (0..keys.len()).filter(|&i| !norms[i].is_empty()).collect();
    order.sort_unstable_by(|&a, &b| norms[a].cmp(&norms[b]));
    let mut forms: Vec<Form> = Vec::new();
    for i in order {
        match forms.last_mut() {
            Some(last) if last.norm == norms[i] => last.keys.push(i),
            _ => forms.push(Form {
                norm: norms[i].clone(),
                keys: vec![i],
            }),
        }
    }
    forms
}

/// A value as the prefix filter sees it: its elements (q-grams or words)
/// as ranks, rarest first, and how many of them must be indexed.
struct Record {
    elems: Vec<u32>,
    prefix: usize,
    /// Compared with every other value: a pair at the threshold need not
    /// share any element (short values at low thresholds).
    loose: bool,
    /// Takes part in comparisons at all.
    active: bool,
}

/// Records of the edit filter. Elements are the distinct padded 3-grams:
/// an edit destroys at most Q gram occurrences, so values within distance d
/// share all but Q·d of either's distinct grams, and (with lengths within
/// the filter) d ≤ (1−t)·len/t for either value. Returns the records and
/// the number of distinct values left out as too long.
fn edit_records(forms: &[Form], t: f64) -> (Vec<Record>, usize) {
    const PAD_START: u64 = 0x11_0000;
    const PAD_END: u64 = 0x11_0001;
    let mut ids: PlHashMap<u64, u32> = PlHashMap::default();
    let mut chars: Vec<u64> = Vec::new();
    let mut lengths: Vec<usize> = Vec::with_capacity(forms.len());
    let mut raw: Vec<Option<Vec<u32>>> = Vec::with_capacity(forms.len());
    let mut long = 0;
    for form in forms {
        chars.clear();
        chars.extend([PAD_START; Q - 1]);
        chars.extend(form.norm.chars().map(|c| c as u64));
        chars.extend([PAD_END; Q - 1]);
        let len = chars.len() - 2 * (Q - 1);
        lengths.push(len);
        if len > MAX_COMPARED_CHARS {
            long += form.keys.len();
            raw.push(None);
            continue;
        }
        let mut grams: Vec<u64> = chars
            .windows(Q)
            .map(|w| (w[0] << 42) | (w[1] << 21) | w[2])
            .collect();
        grams.sort_unstable();
        grams.dedup();
        let elems = grams
            .into_iter()
            .map(|g| {
                let next = ids.len() as u32;
                *ids.entry(g).or_insert(next)
            })
            .collect();
        raw.push(Some(elems));
    }
    let records = rank(raw, ids.len(), |i, elems| {
        let max_distance = ((1.0 - t) * lengths[i] as f64 / t + EPS).floor() as usize;
        let destroyed = Q.saturating_mul(max_distance);
        (
            destroyed.saturating_add(1).min(elems.len()),
            destroyed >= elems.len(),
        )
    });
    (records, long)
}

/// Records of the token filter: sets of words. Jaccard ≥ t implies the
/// smaller set is at least t times the larger, and that the sets share at
/// least ⌈t·|A|⌉ words, so a prefix of |A| − ⌈t·|A|⌉ + 1 rarest words meets.
fn token_records(forms: &[Form], t: f64) -> (Vec<Record>, usize) {
    let mut ids: PlHashMap<&str, u32> = PlHashMap::default();
    let raw: Vec<Option<Vec<u32>>> = forms
        .iter()
        .map(|form| {
            let mut elems: Vec<u32> = form
                .norm
                .split(' ')
                .map(|w| {
                    let next = ids.len() as u32;
                    *ids.entry(w).or_insert(next)
                })
                .collect();
            elems.sort_unstable();
            elems.dedup();
            Some(elems)
        })
        .collect();
    let records = rank(raw, ids.len(), |_, elems| {
        let n = elems.len();
        let overlap = ((t * n as f64) - EPS).ceil().max(1.0) as usize;
        ((n + 1).saturating_sub(overlap).clamp(1, n), false)
    });
    (records, 0)
}

/// Renumbers elements by rarity (rarest first, ties by first id), sorts each
/// record's elements by that, and sizes its prefix with `prefix` (which
/// returns the prefix length and whether the record is loose).
fn rank(
    raw: Vec<Option<Vec<u32>>>,
    distinct: usize,
    prefix: impl Fn(usize, &[u32]) -> (usize, bool),
) -> Vec<Record> {
    let mut freq = vec![0u32; distinct];
    for elems in raw.iter().flatten() {
        for &e in elems {
            freq[e as usize] += 1;
        }
    }
    let mut order: Vec<u32> = (0..distinct as u32).collect();
    order.sort_unstable_by_key(|&e| (freq[e as usize], e));
    let mut ranks = vec![0u32; distinct];
    for (rank, &e) in order.iter().enumerate() {
        ranks[e as usize] = rank as u32;
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, elems)| match elems {
            None => Record {
                elems: Vec::new(),
                prefix: 0,
                loose: false,
                active: false,
            },
            Some(elems) => {
                let mut elems: Vec<u32> = elems.into_iter().map(|e| ranks[e as usize]).collect();
                elems.sort_unstable();
                let (prefix, loose) = prefix(i, &elems);
                Record {
                    elems,
                    prefix,
                    loose,
                    active: true,
                }
            }
        })
        .collect()
}

/// The prefix-filter self-join: values are taken from last to first, each
/// compared with the later ones indexed so far that share a prefix element
/// (plus every loose one), then indexed itself. `passes` is a cheap filter
/// (lengths, shared elements) run first; only `similar` counts as a
/// comparison. Pairs already in one cluster are not compared. Returns the
/// comparisons made and whether the search finished within `budget`.
fn join(
    records: &[Record],
    budget: u64,
    sets: &mut UnionFind,
    passes: impl Fn(usize, usize) -> bool,
    similar: impl Fn(usize, usize) -> bool,
) -> (u64, bool) {
    let n = records.len();
    let elements = records
        .iter()
        .flat_map(|r| r.elems.iter())
        .max()
        .map_or(0, |m| *m as usize + 1);
    let mut index: Vec<Vec<u32>> = vec![Vec::new(); elements];
    let mut loose_later: Vec<u32> = Vec::new();
    let mut seen = vec![u32::MAX; n];
    let mut candidates: Vec<u32> = Vec::new();
    let lookup_budget = budget.saturating_mul(LOOKUPS_PER_COMPARISON);
    let mut lookups: u64 = 0;
    let mut compared: u64 = 0;
    for i in (0..n).rev() {
        let record = &records[i];
        if !record.active {
            continue;
        }
        candidates.clear();
        let mut take = |j: u32, candidates: &mut Vec<u32>| {
            if seen[j as usize] != i as u32 {
                seen[j as usize] = i as u32;
                candidates.push(j);
            }
        };
        if record.loose {
            for (j, later) in records.iter().enumerate().skip(i + 1) {
                if later.active {
                    take(j as u32, &mut candidates);
                }
            }
            lookups += (n - i) as u64;
        } else {
            for &e in &record.elems[..record.prefix] {
                let postings = &index[e as usize];
                lookups += postings.len() as u64;
                for &j in postings {
                    take(j, &mut candidates);
                }
            }
            lookups += loose_later.len() as u64;
            for &j in &loose_later {
                take(j, &mut candidates);
            }
        }
        if lookups > lookup_budget {
            return (compared, false);
        }
        for &j in &candidates {
            let j = j as usize;
            if !passes(i, j) || sets.find(i) == sets.find(j) {
                continue;
            }
            if compared >= budget {
                return (compared, false);
            }
            compared += 1;
            if similar(i, j) {
                sets.union(i, j);
            }
        }
        if record.loose {
            loose_later.push(i as u32);
        } else {
            for &e in &record.elems[..record.prefix] {
                index[e as usize].push(i as u32);
            }
        }
    }
    (compared, true)
}

/// |A∩B| of two sorted sets.
fn shared(a: &[u32], b: &[u32]) -> usize {
    let (mut i, mut j, mut both) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                both += 1;
                i += 1;
                j += 1;
            }
        }
    }
    both
}

/// |A∩B| / |A∪B| of two sorted sets.
fn jaccard(a: &[u32], b: &[u32]) -> f64 {
    let both = shared(a, b);
    let union = a.len() + b.len() - both;
    if union == 0 {
        return 0.0;
    }
    both as f64 / union as f64
}

/// Clusters of at least two distinct values, largest first.
fn assemble(keys: &[(String, usize)], forms: &[Form], sets: &mut UnionFind) -> Vec<Cluster> {
    // Most values are alone: count first, and gather only real clusters.
    let roots: Vec<usize> = (0..forms.len()).map(|i| sets.find(i)).collect();
    let mut values_of = vec![0usize; forms.len()];
    for (form, &root) in forms.iter().zip(&roots) {
        values_of[root] += form.keys.len();
    }
    let mut groups: PlHashMap<usize, Vec<usize>> = PlHashMap::default();
    for (i, &root) in roots.iter().enumerate() {
        if values_of[root] >= 2 {
            groups.entry(root).or_default().push(i);
        }
    }
    let mut clusters: Vec<Cluster> = groups
        .into_values()
        .filter_map(|members| {
            let mut values: Vec<SimilarValue> = members
                .iter()
                .flat_map(|&f| {
                    forms[f].keys.iter().map(move |&k| SimilarValue {
                        value: keys[k].0.clone(),
                        rows: keys[k].1,
                        normalized: forms[f].norm.clone(),
                    })
                })
                .collect();
            if values.len() < 2 {
                return None;
            }
            values.sort_by(|a, b| b.rows.cmp(&a.rows).then_with(|| a.value.cmp(&b.value)));
            let rows = values.iter().map(|v| v.rows).sum();
            let distinct = values.len();
            values.truncate(VALUES_PER_CLUSTER);
            Some(Cluster {
                representative: values[0].value.clone(),
                rows,
                distinct,
                values,
            })
        })
        .collect();
    clusters.sort_by(|a, b| {
        b.rows
            .cmp(&a.rows)
            .then_with(|| a.values[0].value.cmp(&b.values[0].value))
    });
    clusters
}

struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] as usize != x {
            let grand = self.parent[self.parent[x] as usize];
            self.parent[x] = grand;
            x = grand as usize;
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a] < self.size[b] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a as u32;
        self.size[a] += self.size[b];
    }
}

/// Values to replace by one value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeGroup {
    pub values: Vec<String>,
    pub into: String,
}

/// Replaces every cell of the text column `column` whose value is listed in
/// a group by that group's `into`, in one pass (a→b and b→c turn a into b,
/// not c). Returns the new frame and the number of cells changed; when none
/// changes, the input frame itself.
pub fn merge_values(
    df: &DataFrame,
    column: &str,
    groups: &[MergeGroup],
) -> Result<(DataFrame, usize)> {
    if groups.is_empty() {
        return Err(OpsError::InvalidArgument(
            "give at least one group, e.g. {\"values\": [\"Jon Smith\", \"JOHN SMITH\"], \"into\": \"John Smith\"}"
                .into(),
        ));
    }
    resolve(df, &[column.to_string()])?;
    let s = df.column(column)?.as_materialized_series();
    if s.dtype() != &DataType::String {
        return Err(OpsError::WrongType(format!(
            "merging values needs a text column, but '{column}' is {}; cast it to string first",
            s.dtype()
        )));
    }
    let mut map: PlHashMap<&str, (usize, &str)> = PlHashMap::default();
    for (g, group) in groups.iter().enumerate() {
        for value in &group.values {
            if let Some((other, _)) = map.insert(value.as_str(), (g, group.into.as_str()))
                && other != g
            {
                return Err(OpsError::InvalidArgument(format!(
                    "'{value}' is listed in two groups (into '{}' and into '{}'); list each value once",
                    groups[other].into, group.into
                )));
            }
        }
    }
    let ca = s.str()?;
    let target = |v: &str| map.get(v).map(|(_, into)| *into).filter(|into| *into != v);
    let changed = ca.iter().flatten().filter(|v| target(v).is_some()).count();
    if changed == 0 {
        return Ok((df.clone(), 0));
    }
    let merged: StringChunked = ca
        .iter()
        .map(|v| v.map(|v| target(v).unwrap_or(v)))
        .collect();
    let mut out = df.clone();
    out.with_column(merged.into_series().with_name(column.into()).into_column())?;
    Ok((out, changed))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::columns::mark_column;

    fn names(values: &[Option<&str>]) -> DataFrame {
        df!("name" => values).unwrap()
    }

    fn opts(method: Similarity, threshold: Option<f64>) -> FuzzyOptions {
        FuzzyOptions {
            method,
            threshold,
            ..Default::default()
        }
    }

    /// Clusters as (value, rows) lists, in report order.
    fn clusters(report: &SimilarReport) -> Vec<Vec<(String, usize)>> {
        report
            .clusters
            .iter()
            .map(|c| c.values.iter().map(|v| (v.value.clone(), v.rows)).collect())
            .collect()
    }

    /// A small deterministic generator, so the tests need no crate.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, below: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % below
        }

        fn word(&mut self, len: usize, alphabet: &[u8]) -> String {
            (0..len)
                .map(|_| alphabet[self.next(alphabet.len() as u64) as usize] as char)
                .collect()
        }
    }

    #[test]
    fn normal_forms() {
        let cases = [
            ("  Café-de  FLORE! ", "cafe de flore"),
            ("ACME Inc.", "acme inc"),
            ("Smith, John", "smith john"),
            ("Ｆｕｌｌ　Ｗｉｄｔｈ", "full width"),
            ("İstanbul", "istanbul"),
            ("Ærøskøbing", "ærøskøbing"),
            ("Crème brûlée", "creme brulee"),
            ("Ἀθῆναι", "αθηναι"),
            // Marks that make other letters stay.
            ("ガス", "ガス"),
            ("Йорк", "йорк"),
            ("東京・大阪", "東京 大阪"),
            ("🍕 Pizza!!", "🍕 pizza"),
            ("AT&T", "at t"),
            ("a\u{200B}b\u{00AD}c", "abc"),
            ("tab\tand\nnewline", "tab and newline"),
            ("«quoted» — dash…", "quoted dash"),
            ("$5 + 10%", "$5 + 10"),
            ("...", ""),
            ("", ""),
        ];
        for (text, expected) in cases {
            assert_eq!(normalize(text), expected, "{text:?}");
        }
    }

    #[test]
    fn clusters_by_method_and_threshold() {
        type Case<'a> = (
            Vec<Option<&'a str>>,
            Similarity,
            Option<f64>,
            Vec<Vec<(&'a str, usize)>>,
        );
        let cases: Vec<Case> = vec![
            (
                vec![
                    Some("Jon Smith"),
                    Some("John Smith"),
                    Some("JOHN SMITH"),
                    Some("John Smith"),
                    Some("Mary Jones"),
                    None,
                ],
                Similarity::Edit,
                None,
                vec![vec![("John Smith", 2), ("JOHN SMITH", 1), ("Jon Smith", 1)]],
            ),
            (
                vec![
                    Some("Café de Flore"),
                    Some("Cafe de Flore"),
                    Some("Le Dôme"),
                ],
                Similarity::Edit,
                Some(1.0),
                vec![vec![("Cafe de Flore", 1), ("Café de Flore", 1)]],
            ),
            (
                vec![Some("Apple"), Some("Maple")],
                Similarity::Edit,
                Some(0.85),
                vec![],
            ),
            (
                vec![Some("Apple"), Some("Maple")],
                Similarity::Edit,
                Some(0.6),
                vec![vec![("Apple", 1), ("Maple", 1)]],
            ),
            // Equal normal forms cluster at any threshold.
            (
                vec![
                    Some("ACME Inc."),
                    Some("acme inc"),
                    Some("ACME, Inc"),
                    Some("Acme Ltd"),
                ],
                Similarity::Edit,
                Some(1.0),
                vec![vec![("ACME Inc.", 1), ("ACME, Inc", 1), ("acme inc", 1)]],
            ),
            (
                vec![Some("Smith, John"), Some("John Smith"), Some("John Smyth")],
                Similarity::Token,
                None,
                vec![vec![("John Smith", 1), ("Smith, John", 1)]],
            ),
            (
                vec![Some("Smith, John"), Some("John Smith")],
                Similarity::Edit,
                None,
                vec![],
            ),
            // Chains: a~b and b~c put a and c together.
            (
                vec![
                    Some("abcdefghij"),
                    Some("abcdefghiX"),
                    Some("abcdefghYX"),
                    Some("zzzzzzzzzz"),
                ],
                Similarity::Edit,
                Some(0.9),
                vec![vec![
                    ("abcdefghYX", 1),
                    ("abcdefghiX", 1),
                    ("abcdefghij", 1),
                ]],
            ),
            // CJK: one character in three differs.
            (
                vec![Some("東京都"), Some("東京都 "), Some("東京")],
                Similarity::Edit,
                None,
                vec![vec![("東京都", 1), ("東京都 ", 1)]],
            ),
            (
                vec![Some("東京都"), Some("東京")],
                Similarity::Edit,
                Some(0.6),
                vec![vec![("東京", 1), ("東京都", 1)]],
            ),
            (
                vec![Some("ガス"), Some("カス")],
                Similarity::Edit,
                Some(1.0),
                vec![],
            ),
            (
                vec![Some("🍕 Pizza"), Some("🍕 pizza!"), Some("Pizza")],
                Similarity::Edit,
                None,
                vec![vec![("🍕 Pizza", 1), ("🍕 pizza!", 1)]],
            ),
            // Representative: most rows, ties by value order.
            (
                vec![
                    Some("b corp"),
                    Some("B Corp"),
                    Some("B corp"),
                    Some("B Corp"),
                    Some("b corp"),
                ],
                Similarity::Edit,
                None,
                vec![vec![("B Corp", 2), ("b corp", 2), ("B corp", 1)]],
            ),
            // Clusters by rows, then first value.
            (
                vec![
                    Some("zeta"),
                    Some("Zeta"),
                    Some("alpha"),
                    Some("Alpha"),
                    Some("beta"),
                    Some("Beta"),
                    Some("beta"),
                ],
                Similarity::Edit,
                None,
                vec![
                    vec![("beta", 2), ("Beta", 1)],
                    vec![("Alpha", 1), ("alpha", 1)],
                    vec![("Zeta", 1), ("zeta", 1)],
                ],
            ),
            // Punctuation-only values name nothing.
            (
                vec![Some("..."), Some("-"), Some(""), Some(" ")],
                Similarity::Edit,
                None,
                vec![],
            ),
            (vec![None, Some("a"), None], Similarity::Edit, None, vec![]),
            (vec![], Similarity::Edit, None, vec![]),
            (vec![], Similarity::Token, None, vec![]),
        ];
        for (values, method, threshold, expected) in cases {
            let report =
                find_similar(&names(&values), &["name".into()], &opts(method, threshold)).unwrap();
            let expected: Vec<Vec<(String, usize)>> = expected
                .into_iter()
                .map(|c| c.into_iter().map(|(v, n)| (v.to_string(), n)).collect())
                .collect();
            assert_eq!(
                clusters(&report),
                expected,
                "{values:?} {method:?} {threshold:?}"
            );
            assert!(report.complete);
            assert_eq!(report.total_clusters, expected.len());
            for c in &report.clusters {
                assert_eq!(c.representative, c.values[0].value);
                assert_eq!(c.rows, c.values.iter().map(|v| v.rows).sum::<usize>());
                assert_eq!(c.distinct, c.values.len());
            }
        }
    }

    #[test]
    fn report_counts_and_forms() {
        let df = names(&[
            Some("Jon Smith"),
            Some("John Smith"),
            Some("John Smith"),
            None,
            Some("Ann"),
        ]);
        let report = find_similar(&df, &["name".into()], &FuzzyOptions::default()).unwrap();
        assert_eq!(report.distinct_values, 3);
        assert_eq!(report.threshold, 0.85);
        assert_eq!(report.pairs_compared, 1);
        assert!(report.message.is_none());
        let c = &report.clusters[0];
        assert_eq!(c.representative, "John Smith");
        assert_eq!(c.rows, 3);
        assert_eq!(c.values[1].normalized, "jon smith");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["method"], "edit");
        assert!(json.get("long_values_not_compared").is_none());
        let token = find_similar(&df, &["name".into()], &opts(Similarity::Token, None)).unwrap();
        assert_eq!(token.threshold, 0.8);
    }

    #[test]
    fn keys_join_columns_and_skip_missing_parts() {
        let df = df!(
            "first" => [Some("John"), Some("Jon"), None, Some("John"), None],
            "last" => [Some("Smith"), Some("Smith"), Some("Smith"), Some("Smith"), None],
            "n" => [1i64, 2, 3, 1, 5],
        )
        .unwrap();
        let report = find_similar(
            &df,
            &["first".into(), "last".into()],
            &FuzzyOptions::default(),
        )
        .unwrap();
        assert_eq!(report.distinct_values, 3);
        assert_eq!(
            clusters(&report),
            vec![vec![
                ("John Smith".to_string(), 2),
                ("Jon Smith".to_string(), 1)
            ]]
        );
        // Numbers are compared through their text.
        let report = find_similar(&df, &["n".into()], &opts(Similarity::Edit, Some(1.0))).unwrap();
        assert_eq!(report.distinct_values, 4);
        assert!(report.clusters.is_empty());
    }

    #[test]
    fn all_null_and_hidden_columns() {
        let df = df!("name" => [None::<&str>, None], "other" => [1, 2]).unwrap();
        let report = find_similar(&df, &["name".into()], &FuzzyOptions::default()).unwrap();
        assert_eq!(
            (
                report.distinct_values,
                report.total_clusters,
                report.complete
            ),
            (0, 0, true)
        );
        let typed = DataFrame::new(
            2,
            vec![
                Series::full_null("nothing".into(), 2, &DataType::Null).into_column(),
                Series::new("cat".into(), ["Café", "cafe"])
                    .cast(&DataType::from_categories(Categories::global()))
                    .unwrap()
                    .into_column(),
            ],
        )
        .unwrap();
        let report = find_similar(&typed, &["nothing".into()], &FuzzyOptions::default()).unwrap();
        assert_eq!((report.distinct_values, report.total_clusters), (0, 0));
        let report = find_similar(&typed, &["cat".into()], &FuzzyOptions::default()).unwrap();
        assert_eq!(report.total_clusters, 1);
        let err = merge_values(
            &typed,
            "cat",
            &[MergeGroup {
                values: vec!["cafe".into()],
                into: "Café".into(),
            }],
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("cast it to string"), "{err}");
        let hidden = mark_column("name");
        let err = find_similar(&df, &[hidden], &FuzzyOptions::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("not found"), "{err}");
    }

    #[test]
    fn bad_options_are_refused() {
        let df = names(&[Some("a")]);
        let cases = [
            (
                vec!["name".to_string()],
                opts(Similarity::Edit, Some(0.0)),
                "threshold must be above 0",
            ),
            (
                vec!["name".to_string()],
                opts(Similarity::Token, Some(1.5)),
                "0.8 is the default for the token method",
            ),
            (
                vec!["name".to_string()],
                opts(Similarity::Edit, Some(f64::NAN)),
                "threshold",
            ),
            (
                vec!["nmae".to_string()],
                FuzzyOptions::default(),
                "did you mean 'name'",
            ),
            (vec![], FuzzyOptions::default(), "name at least one"),
            (
                vec!["name".to_string()],
                FuzzyOptions {
                    max_comparisons: 0,
                    ..Default::default()
                },
                "max_comparisons",
            ),
        ];
        for (columns, o, expected) in cases {
            let err = find_similar(&df, &columns, &o).err().unwrap().to_string();
            assert!(err.contains(expected), "{expected:?} not in {err:?}");
        }
    }

    #[test]
    fn options_parse_with_defaults() {
        let o: FuzzyOptions = serde_json::from_str(r#"{"method": "token"}"#).unwrap();
        assert_eq!(
            o,
            FuzzyOptions {
                method: Similarity::Token,
                ..Default::default()
            }
        );
        assert!(serde_json::from_str::<FuzzyOptions>(r#"{"method": "soundex"}"#).is_err());
    }

    #[test]
    fn limit_bounds_the_report() {
        let values: Vec<Option<String>> = (0..30)
            .flat_map(|i| [Some(format!("Name {i}")), Some(format!("name {i}!"))])
            .collect();
        let df = df!("name" => values).unwrap();
        let o = FuzzyOptions {
            limit: 5,
            threshold: Some(1.0),
            ..Default::default()
        };
        let report = find_similar(&df, &["name".into()], &o).unwrap();
        assert_eq!(report.total_clusters, 30);
        assert_eq!(report.clusters.len(), 5);
        assert_eq!(report.clusters[0].values[0].value, "Name 0");
    }

    #[test]
    fn long_values_match_only_when_equal() {
        let long = "word ".repeat(50);
        let values = [
            Some(long.clone()),
            Some(format!("{long}!")),
            Some(format!("{long}x")),
        ];
        let df = df!("name" => values).unwrap();
        let report = find_similar(&df, &["name".into()], &FuzzyOptions::default()).unwrap();
        assert_eq!(report.long_values_not_compared, 3);
        assert_eq!(report.total_clusters, 1);
        assert_eq!(report.clusters[0].distinct, 2);
        assert!(report.message.unwrap().contains("longer than 200"));
    }

    /// The filters lose no pair: clusters equal those of comparing all pairs.
    #[test]
    fn filters_match_all_pairs() {
        let mut rng = Lcg(7);
        let base: Vec<String> = (0..40)
            .map(|_| {
                let len = 3 + rng.next(9) as usize;
                let words = 1 + rng.next(3) as usize;
                (0..words)
                    .map(|_| rng.word(len, b"abcd"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        // Variants: a letter changed, dropped or added; words swapped.
        let mut values = base.clone();
        for b in &base {
            let mut chars: Vec<char> = b.chars().collect();
            let at = rng.next(chars.len() as u64) as usize;
            match rng.next(4) {
                0 => chars[at] = 'e',
                1 => {
                    chars.remove(at);
                }
                2 => chars.insert(at, 'b'),
                _ => {
                    let mut words: Vec<&str> = b.split(' ').collect();
                    words.reverse();
                    chars = words.join(" ").chars().collect();
                }
            }
            values.push(chars.into_iter().collect());
        }
        let df = df!("name" => &values).unwrap();
        for method in [Similarity::Edit, Similarity::Token] {
            for t in [0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 1.0] {
                let report = find_similar(&df, &["name".into()], &opts(method, Some(t))).unwrap();
                let keys = distinct_keys(&df, &["name".into()]).unwrap();
                let forms = group_by_normal_form(&keys);
                let mut sets = UnionFind::new(forms.len());
                let words: Vec<Vec<&str>> = forms
                    .iter()
                    .map(|f| {
                        let mut w: Vec<&str> = f.norm.split(' ').collect();
                        w.sort_unstable();
                        w.dedup();
                        w
                    })
                    .collect();
                for i in 0..forms.len() {
                    for j in i + 1..forms.len() {
                        let sim = match method {
                            Similarity::Edit => {
                                strsim::normalized_levenshtein(&forms[i].norm, &forms[j].norm)
                            }
                            Similarity::Token => {
                                let both = words[i].iter().filter(|w| words[j].contains(w)).count();
                                both as f64 / (words[i].len() + words[j].len() - both) as f64
                            }
                        };
                        if sim >= t - EPS {
                            sets.union(i, j);
                        }
                    }
                }
                let expected = assemble(&keys, &forms, &mut sets);
                assert_eq!(report.total_clusters, expected.len(), "{method:?} {t}");
                assert_eq!(
                    report.clusters,
                    expected[..expected.len().min(50)],
                    "{method:?} {t}"
                );
                assert!(report.complete);
                let all_pairs = (forms.len() * (forms.len() - 1) / 2) as u64;
                assert!(report.pairs_compared <= all_pairs);
            }
        }
    }

    #[test]
    fn filters_compare_few_pairs() {
        let mut rng = Lcg(11);
        let mut values: Vec<String> = (0..3000)
            .map(|_| rng.word(10, b"abcdefghijklmnopqrstuvwxyz"))
            .collect();
        values.push(format!("{}x", &values[0][..9]));
        let df = df!("name" => &values).unwrap();
        for method in [Similarity::Edit, Similarity::Token] {
            let report = find_similar(&df, &["name".into()], &opts(method, None)).unwrap();
            assert!(report.complete);
            // Far below the 4.5 million pairs.
            assert!(
                report.pairs_compared < 10_000,
                "{method:?} {}",
                report.pairs_compared
            );
        }
        let report = find_similar(&df, &["name".into()], &FuzzyOptions::default()).unwrap();
        assert_eq!(report.total_clusters, 1);
        assert_eq!(report.clusters[0].distinct, 2);
    }

    #[test]
    fn comparison_cap_stops_early() {
        let mut rng = Lcg(3);
        let values: Vec<String> = (0..50_000)
            .map(|_| rng.word(8, b"abcdefghijklmnopqrstuvwxyz"))
            .collect();
        let df = df!("name" => &values).unwrap();
        let start = Instant::now();
        // A low threshold makes every pair a candidate.
        let o = FuzzyOptions {
            threshold: Some(0.5),
            max_comparisons: 20_000,
            ..Default::default()
        };
        let report = find_similar(&df, &["name".into()], &o).unwrap();
        assert!(!report.complete);
        assert_eq!(report.pairs_compared, 20_000);
        assert!(report.distinct_values > 49_000);
        let message = report.message.unwrap();
        assert!(
            message.contains("raise the threshold") && message.contains("filter"),
            "{message}"
        );
        assert!(start.elapsed().as_secs_f64() < 5.0, "{:?}", start.elapsed());
        // Where every pair lands in one cluster, comparisons are skipped but
        // look-ups still count.
        let o = FuzzyOptions {
            threshold: Some(0.1),
            max_comparisons: 1_000,
            ..Default::default()
        };
        let report = find_similar(&df.head(Some(5_000)), &["name".into()], &o).unwrap();
        assert!(!report.complete);
        assert!(report.pairs_compared <= 1_000);
    }

    #[test]
    fn merge_values_replaces_cells() {
        let df = names(&[
            Some("Jon Smith"),
            Some("JOHN SMITH"),
            Some("John Smith"),
            None,
            Some("Mary"),
            Some("Jon Smith"),
        ]);
        let group = |values: &[&str], into: &str| MergeGroup {
            values: values.iter().map(|v| v.to_string()).collect(),
            into: into.to_string(),
        };
        // (groups, changed, column afterwards)
        type Case<'a> = (Vec<MergeGroup>, usize, Vec<Option<&'a str>>);
        let cases: Vec<Case> = vec![
            (
                vec![group(&["Jon Smith", "JOHN SMITH"], "John Smith")],
                3,
                vec![
                    Some("John Smith"),
                    Some("John Smith"),
                    Some("John Smith"),
                    None,
                    Some("Mary"),
                    Some("John Smith"),
                ],
            ),
            // Listing the target itself changes nothing for it.
            (
                vec![group(
                    &["John Smith", "JOHN SMITH", "JOHN SMITH"],
                    "John Smith",
                )],
                1,
                vec![
                    Some("Jon Smith"),
                    Some("John Smith"),
                    Some("John Smith"),
                    None,
                    Some("Mary"),
                    Some("Jon Smith"),
                ],
            ),
            // One pass: Mary becomes Marie, not Jon Smith's target.
            (
                vec![group(&["Jon Smith"], "Mary"), group(&["Mary"], "Marie")],
                3,
                vec![
                    Some("Mary"),
                    Some("JOHN SMITH"),
                    Some("John Smith"),
                    None,
                    Some("Marie"),
                    Some("Mary"),
                ],
            ),
            (
                vec![group(&["Mary"], "マリー 🌸")],
                1,
                vec![
                    Some("Jon Smith"),
                    Some("JOHN SMITH"),
                    Some("John Smith"),
                    None,
                    Some("マリー 🌸"),
                    Some("Jon Smith"),
                ],
            ),
        ];
        for (groups, changed, expected) in cases {
            let (out, n) = merge_values(&df, "name", &groups).unwrap();
            assert_eq!(n, changed, "{groups:?}");
            assert_eq!(
                out.column("name")
                    .unwrap()
                    .str()
                    .unwrap()
                    .iter()
                    .collect::<Vec<_>>(),
                expected,
                "{groups:?}"
            );
        }
    }

    #[test]
    fn merge_values_without_change_returns_the_input() {
        let df = names(&[Some("a"), None]);
        for groups in [
            vec![MergeGroup {
                values: vec!["zzz".into()],
                into: "a".into(),
            }],
            vec![MergeGroup {
                values: vec!["a".into()],
                into: "a".into(),
            }],
            vec![MergeGroup {
                values: vec![],
                into: "b".into(),
            }],
        ] {
            let (out, n) = merge_values(&df, "name", &groups).unwrap();
            assert_eq!(n, 0);
            assert!(out.equals_missing(&df));
        }
        let empty = names(&[]);
        let (out, n) = merge_values(
            &empty,
            "name",
            &[MergeGroup {
                values: vec!["a".into()],
                into: "b".into(),
            }],
        )
        .unwrap();
        assert_eq!((out.height(), n), (0, 0));
    }

    #[test]
    fn merge_values_keeps_marks() {
        let df = names(&[Some("a"), None, Some("b")]);
        let (df, _) =
            crate::missing::mark_intentional_missing(&df, &["name".into()], None, false).unwrap();
        let (out, n) = merge_values(
            &df,
            "name",
            &[MergeGroup {
                values: vec!["b".into()],
                into: "a".into(),
            }],
        )
        .unwrap();
        assert_eq!(n, 1);
        assert_eq!(out.get_column_names(), df.get_column_names());
        assert!(
            out.column(&mark_column("name"))
                .unwrap()
                .equals_missing(df.column(&mark_column("name")).unwrap())
        );
    }

    #[test]
    fn merge_values_errors() {
        let df = df!("name" => ["a", "b"], "n" => [1, 2]).unwrap();
        let g = |values: &[&str], into: &str| MergeGroup {
            values: values.iter().map(|v| v.to_string()).collect(),
            into: into.to_string(),
        };
        let cases = [
            (
                "name",
                vec![g(&["a"], "x"), g(&["b", "a"], "y")],
                "'a' is listed in two groups",
            ),
            ("n", vec![g(&["1"], "2")], "cast it to string"),
            ("nmae", vec![g(&["a"], "x")], "did you mean 'name'"),
            ("name", vec![], "at least one group"),
        ];
        for (column, groups, expected) in cases {
            let err = merge_values(&df, column, &groups)
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains(expected), "{expected:?} not in {err:?}");
        }
    }
}
