//! Versioned table storage: sessions of named tables, each a chain of
//! immutable, content-addressed snapshots with exact undo/redo, over pluggable
//! backends (in-memory, embedded SQLite + files, Redis).
//!
//! The main type is [`Store`]: it holds the versioning, undo/redo, TTL,
//! garbage collection and caching logic, written once over the [`Backend`]
//! trait of primitive operations. Backends: [`MemoryBackend`],
//! [`SqliteBackend`], [`RedisBackend`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), dfmcp_storage::StoreError> {
//! use std::sync::Arc;
//! use dfmcp_storage::{Edit, Intent, MemoryBackend, OpRecord, Store, StoreConfig};
//! use polars::prelude::*;
//!
//! let store = Store::new(Arc::new(MemoryBackend::new()), StoreConfig::default());
//! let session = store.create_session(None).await?;
//! let df = df!("price" => [1.0, 2.0])?;
//! let op = OpRecord::new("load", serde_json::json!({}), "Loaded 2 rows");
//! let edit = Edit { df, meta: Default::default(), op };
//! store.create_table(&session.id, "sales", edit, &Intent::new()).await?;
//! let loaded = store.load(&session.id, "sales").await?;
//! assert_eq!(loaded.df.height(), 2);
//! # Ok(()) }
//! ```

pub mod backend;
mod cache;
mod clock;
pub mod codec;
mod error;
mod ids;
pub mod model;
mod store;
pub mod versioning;

pub use backend::memory::MemoryBackend;
pub use backend::redis::{RedisBackend, RedisConfig};
pub use backend::sqlite::SqliteBackend;
pub use backend::{Backend, Capabilities, SessionMeta, Throttle, namespace_of};
pub use clock::{Clock, ManualClock, SystemClock};
pub use codec::Compression;
pub use error::{Result, Revision, StoreError};
pub use ids::{
    new_session_id, new_uid, now_ms, validate_session_id, validate_stored_session_id,
    validate_table_name,
};
pub use model::{LogRecord, OpRecord, TableMeta, TableState, VersionRef};
pub use store::{
    BEAT_MS, Cancel, CommitOutcome, Committed, Compute, Edit, GcReport, History, HistoryEntry,
    Intent, LOST_AFTER_MS, Loaded, Maintenance, Moved, Store, StoreConfig, TableInfo, TaskEnd,
    TaskStart, TaskState, UpdateError, Updated, Usage, VersionStatus,
};
