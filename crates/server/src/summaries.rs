//! Summaries are immutable per version: a version's content never changes,
//! so each column summary (and the duplicate-row count) is remembered by the
//! version's manifest id. A repeated summary costs a lookup; a new version
//! recomputes, its columns in parallel.

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

type ColumnKey = (Arc<str>, String, usize);

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
    /// The summary of `df`, the content of manifest `version`: remembered
    /// column summaries and duplicate count where there are, the rest
    /// computed (in parallel) and remembered. Returns the summary and how
    /// many column summaries were computed.
    pub fn summarize(
        &self,
        version: &str,
        df: &DataFrame,
        ask: &SummaryAsk<'_>,
    ) -> dfmcp_ops::Result<(TableSummary, usize)> {
        let version: Arc<str> = Arc::from(version);
        let (names, page) = inspect::summary_page(df, ask.columns, ask.offset, ask.limit)?;
        let known: Vec<Option<ColumnSummary>> = {
            let mut columns = self.columns.lock().unwrap_or_else(|p| p.into_inner());
            page.iter()
                .map(|name| {
                    columns
                        .get(&(version.clone(), name.clone(), ask.top))
                        .cloned()
                })
                .collect()
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
        let computed = missing
            .par_iter()
            .map(|name| inspect::summarize_column(df, name, ask.top))
            .collect::<dfmcp_ops::Result<Vec<_>>>()?;
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
            for summary in &computed {
                columns.put(
                    (version.clone(), summary.name.clone(), ask.top),
                    summary.clone(),
                );
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
    fn a_version_is_summarised_once() {
        let cache = SummaryCache::default();
        let df = df!("a" => [Some(1.0), None, Some(3.0)], "b" => ["x", "y", "x"]).unwrap();
        let ask = SummaryAsk {
            columns: None,
            offset: 0,
            limit: 25,
            top: 5,
        };
        let (first, computed) = cache.summarize("m1", &df, &ask).unwrap();
        assert_eq!(computed, 2);
        let (again, computed) = cache.summarize("m1", &df, &ask).unwrap();
        assert_eq!(computed, 0, "a repeated summary is a lookup");
        assert_eq!(first, again);
        assert_eq!(first, inspect::summarize(&df, None, 0, 25, 5).unwrap());
        // A page of it, and other top-value counts.
        let page = SummaryAsk {
            columns: Some(&["b".to_string()][..]),
            ..ask
        };
        assert_eq!(cache.summarize("m1", &df, &page).unwrap().1, 0);
        let more = SummaryAsk { top: 9, ..ask };
        assert_eq!(cache.summarize("m1", &df, &more).unwrap().1, 2);
        // A new version is summarised afresh.
        let filled = df!("a" => [1.0, 0.0, 3.0], "b" => ["x", "y", "x"]).unwrap();
        let (second, computed) = cache.summarize("m2", &filled, &ask).unwrap();
        assert_eq!(computed, 2);
        assert_eq!(second.column_summaries[0].missing, 0);
    }
}
