//! Pure transformations and inspections of polars DataFrames: fill and drop
//! missing values, deduplicate, rename, drop, cast, filter (SQL conditions),
//! sort, SQL queries, summaries, previews and value counts.
//!
//! Nothing here touches storage, files or MCP: every function takes frames and
//! returns frames (or reports). Mutations are also available as data,
//! [`Operation`], so a history can record them and replay them.
//!
//! ```
//! use dfmcp_ops::{FillStrategy, Operation};
//! use polars::prelude::*;
//!
//! let df = df!("Price" => [Some(10.0), None, Some(30.0)]).unwrap();
//! let op = Operation::FillMissing {
//!     columns: Some(vec!["Price".into()]),
//!     strategy: FillStrategy::Mean,
//!     value: None,
//!     limit: None,
//! };
//! let applied = op.apply(&df, &Default::default()).unwrap();
//! assert_eq!(applied.summary, "Filled 1 missing value in Price with mean 20");
//! ```

pub mod columns;
mod error;
pub mod fuzzy;
pub mod inspect;
pub mod missing;
mod operation;
pub mod outliers;
pub mod recipe;
pub mod recipe_code;
pub mod reshape;
pub mod sql;
pub mod text;
pub mod transform;
pub mod validate;
pub mod values;

pub use error::{Limit, OpsError, Result};
pub use missing::{FillStrategy, How};
pub use operation::{Applied, Meta, Operation, code_warnings};
pub use transform::{Keep, SortKey};

use polars::prelude::{BooleanChunked, DataFrame, PolarsResult};

/// The rows of `df` where `mask` holds. The mask is made one chunk first:
/// where a column and the mask both have several chunks of different
/// lengths, polars copies the whole column to line them up, and the columns
/// of a stored table are cut into parts by their own width. With one chunk
/// only the mask is sliced.
pub(crate) fn keep_rows(df: &DataFrame, mask: &BooleanChunked) -> PolarsResult<DataFrame> {
    df.filter(&mask.rechunk())
}
