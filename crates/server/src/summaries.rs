//! Summaries are facts about content, which never changes: a column summary
//! is remembered by the column's name and content id (and its marks'), the
//! duplicate-row count by the version's manifest id. A repeated summary costs
//! a lookup; a new version recomputes only the columns it changed, in
//! parallel.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use dfmcp_ops::inspect::{self, ColumnSummary, TableSummary};
use lru::LruCache;
use polars::prelude::DataFrame;
use rayon::prelude::*;

/// Column summaries remembered (each is small: a few numbers and at most 20
/// top values of 80 characters).
const COLUMNS: usize = 8192;
/// Duplicate-row counts remembered.
const TABLES: usize = 1024;
/// Frames larger than this have their columns summarised one at a time.
const ONE_AT_A_TIME_BYTES: usize = 1 << 30;

/// (column name, content id of the column and of its marks, top values).
type ColumnKey = (String, usize);

pub struct SummaryCache {
    columns: Mutex<LruCache<ColumnKey, ColumnSummary>>,
    duplicates: Mutex<LruCache<Arc<str>, usize>>,
}

impl Default for SummaryCache {
    fn default() -> Self {
        SummaryCache {
            columns: Mutex::new(LruCache::new(
                NonZeroUsize::new(COLUMNS).unwrap_or(NonZeroUsize::MIN),
            )),
            duplicates: Mutex::new(LruCache::new(
                NonZeroUsize::new(TABLES).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }
}

/// What a summary request asks for.
pub struct SummaryAsk<'a> {
    pub columns: Option<&'a [String]>,
    pub offset: usize,
    pub limit: usize,
    pub top: usize,
}

impl SummaryCache {
    /// The summary of a page of `df`'s columns, `df` being the content of
    /// manifest `version` and `column_ids` a content id per column of `df`,
    /// in order (see `Loaded::column_ids`): remembered column summaries and
    /// duplicate count where there are, the rest computed and remembered.
    /// Returns the summary and how many column summaries were computed.
    pub fn summarize(
        &self,
        version: &str,
        column_ids: &[String],
        df: &DataFrame,
        ask: &SummaryAsk<'_>,
    ) -> dfmcp_ops::Result<(TableSummary, usize)> {
        let version: Arc<str> = Arc::from(version);
        let (names, page) = inspect::summary_page(df, ask.columns, ask.offset, ask.limit)?;
        let id_of = |name: &str| df.get_column_index(name).and_then(|i| column_ids.get(i));
        let keys: Vec<ColumnKey> = page
            .iter()
            .map(|name| {
                let column = id_of(name).map_or_else(|| format!("{version}/{name}"), String::clone);
                let marks =
                    id_of(&dfmcp_ops::columns::mark_column(name)).map_or("", String::as_str);
                (format!("{name}\u{0}{column}\u{0}{marks}"), ask.top)
            })
            .collect();
        let known: Vec<Option<ColumnSummary>> = {
            let mut columns = self.columns.lock().unwrap_or_else(|p| p.into_inner());
            keys.iter().map(|key| columns.get(key).cloned()).collect()
        };
        let duplicates = self
            .duplicates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&version)
            .copied();
        let missing: Vec<&String> = page
            .iter()
            .zip(&known)
            .filter(|(_, k)| k.is_none())
            .map(|(name, _)| name)
            .collect();
        // Each column's summary holds a sorted copy of it: beside a large
        // frame, one at a time (each still sorts and counts on every thread).
        let summarize = |name: &&String| inspect::summarize_column(df, name, ask.top);
        let computed: Vec<ColumnSummary> = if dfmcp_memory::frame_bytes(df) > ONE_AT_A_TIME_BYTES {
            missing
                .iter()
                .map(summarize)
                .collect::<dfmcp_ops::Result<_>>()?
        } else {
            missing
                .par_iter()
                .map(summarize)
                .collect::<dfmcp_ops::Result<_>>()?
        };
        let fresh = computed.len();
        // After the columns: a column of distinct values among them spares
        // hashing every row.
        let duplicates = match duplicates {
            Some(n) => n,
            None => {
                let page: Vec<ColumnSummary> =
                    known.iter().flatten().chain(&computed).cloned().collect();
                inspect::duplicate_rows(df, &page)?
            }
        };
        {
            let mut columns = self.columns.lock().unwrap_or_else(|p| p.into_inner());
            let missing_keys = keys.iter().zip(&known).filter(|(_, k)| k.is_none());
            for ((key, _), summary) in missing_keys.zip(&computed) {
                columns.put(key.clone(), summary.clone());
            }
        }
        self.duplicates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(version, duplicates);
        let mut computed = computed.into_iter();
        let summaries = known
            .into_iter()
            .map(|k| k.or_else(|| computed.next()))
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
        Ok((
            inspect::assemble(df, &names, ask.offset, summaries, duplicates),
            fresh,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    #[test]
    fn a_column_is_summarised_once() {
        let cache = SummaryCache::default();
        let df = df!("a" => [Some(1.0), None, Some(3.0)], "b" => ["x", "y", "x"]).unwrap();
        let ids = |a: &str, b: &str| vec![a.to_string(), b.to_string()];
        let ask = SummaryAsk {
            columns: None,
            offset: 0,
            limit: 25,
            top: 5,
        };
        let (first, computed) = cache.summarize("m1", &ids("a1", "b1"), &df, &ask).unwrap();
        assert_eq!(computed, 2);
        let (again, computed) = cache.summarize("m1", &ids("a1", "b1"), &df, &ask).unwrap();
        assert_eq!(computed, 0, "a repeated summary is a lookup");
        assert_eq!(first, again);
        assert_eq!(first, inspect::summarize(&df, None, 0, 25, 5).unwrap());
        // A page of it, and other top-value counts.
        let page = SummaryAsk {
            columns: Some(&["b".to_string()][..]),
            ..ask
        };
        let b_only = cache.summarize("m1", &ids("a1", "b1"), &df, &page);
        assert_eq!(b_only.unwrap().1, 0);
        let more = SummaryAsk { top: 9, ..ask };
        let more = cache.summarize("m1", &ids("a1", "b1"), &df, &more);
        assert_eq!(more.unwrap().1, 2);
        // A new version summarises only the column it changed.
        let filled = df!("a" => [1.0, 0.0, 3.0], "b" => ["x", "y", "x"]).unwrap();
        let (second, computed) = cache
            .summarize("m2", &ids("a2", "b1"), &filled, &ask)
            .unwrap();
        assert_eq!(computed, 1);
        assert_eq!(second.column_summaries[0].missing, 0);
        assert_eq!(second, inspect::summarize(&filled, None, 0, 25, 5).unwrap());
        // The same content under another name is another summary.
        let renamed = df!("a" => [1.0, 0.0, 3.0], "c" => ["x", "y", "x"]).unwrap();
        let (third, computed) = cache
            .summarize("m3", &ids("a2", "b1"), &renamed, &ask)
            .unwrap();
        assert_eq!(computed, 1);
        assert_eq!(third.column_summaries[1].name, "c");
    }

    /// Marking values as intentionally missing changes the column's
    /// summary though the column itself is unchanged.
    #[test]
    fn marks_are_part_of_a_column_key() {
        let cache = SummaryCache::default();
        let ask = SummaryAsk {
            columns: None,
            offset: 0,
            limit: 25,
            top: 5,
        };
        let plain = df!("a" => [Some(1.0), None]).unwrap();
        let (before, _) = cache
            .summarize("m1", &["a1".to_string()], &plain, &ask)
            .unwrap();
        assert_eq!(before.column_summaries[0].intentional_missing, 0);
        let mark = dfmcp_ops::columns::mark_column("a");
        let marked = df!("a" => [Some(1.0), None], mark.as_str() => [false, true]).unwrap();
        let ids = ["a1".to_string(), "m1".to_string()];
        let (after, computed) = cache.summarize("m2", &ids, &marked, &ask).unwrap();
        assert_eq!(computed, 1);
        assert_eq!(after.column_summaries[0].intentional_missing, 1);
    }
}
