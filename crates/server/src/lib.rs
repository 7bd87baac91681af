//! The `dataframe-mcp` server: an MCP server over stdio that loads tabular
//! files into named sessions and cleans, inspects and transforms them, with
//! every change a new version (exact undo/redo, readable history).
//!
//! Only this crate knows MCP and JSON Schema. It wires [`dfmcp_ingest`]
//! (files → frames), [`dfmcp_ops`] (pure transformations) and
//! [`dfmcp_storage`] (versioned sessions) behind thin tool handlers:
//! parse, call, render.

pub mod config;
mod paths;
mod render;
mod server;
mod tools;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use dfmcp_storage::{Backend, MemoryBackend, RedisBackend, RedisConfig, SqliteBackend, Store};
use rmcp::ServiceExt;

pub use config::{Config, StorageKind};
pub use paths::PathPolicy;
pub use server::{AppState, DataFrameServer};

/// Opens the configured backend; returns it with a description for people.
pub async fn open_backend(config: &Config) -> anyhow::Result<(Arc<dyn Backend>, String)> {
    Ok(match config.storage {
        StorageKind::Memory => (
            Arc::new(MemoryBackend::new()),
            "in-memory storage (lost on exit)".into(),
        ),
        StorageKind::Embedded => {
            let dir = config.data_dir().context(
                "no data directory: the platform has no user data directory; pass --data-dir",
            )?;
            let backend =
                tokio::task::spawn_blocking(move || SqliteBackend::open(&dir).map(|b| (b, dir)))
                    .await
                    .context("opening the data directory")??;
            let shown = format!("embedded storage in {}", backend.1.display());
            (Arc::new(backend.0), shown)
        }
        StorageKind::Redis => {
            let mut redis = RedisConfig::new(config.redis_url.clone());
            redis.cluster = config.redis_cluster;
            redis.prefix = config.redis_prefix.clone();
            let shown = format!(
                "Redis {} at {} (prefix {})",
                if redis.cluster { "cluster" } else { "server" },
                dfmcp_storage::backend::redis::redact_url(&redis.url),
                redis.prefix
            );
            let backend: Arc<dyn Backend> = if redis.cluster {
                Arc::new(RedisBackend::cluster(&redis).await?)
            } else {
                Arc::new(RedisBackend::single(&redis)?)
            };
            (backend, shown)
        }
    })
}

/// Builds the server state from a configuration.
pub async fn build(config: &Config) -> anyhow::Result<DataFrameServer> {
    let (backend, storage) = open_backend(config).await?;
    let mut store_config = config.store_config();
    store_config.hidden_column_prefix = Some(dfmcp_ops::columns::MARK_PREFIX.to_string());
    let store = Store::new(backend, store_config);
    let paths = PathPolicy::new(&config.configured_dirs());
    tracing::info!(%storage, allowed = ?paths.allowed(), "starting");
    Ok(DataFrameServer::new(AppState {
        store,
        paths,
        limits: dfmcp_ingest::Limits {
            max_file_bytes: config.max_file_bytes,
            max_rows: config.max_rows,
        },
        max_chars: config.max_response_tokens.saturating_mul(4).max(8_000),
        use_client_roots: !config.ignore_client_roots,
        storage,
    }))
}

/// Serves MCP over stdin/stdout until the client disconnects.
pub async fn serve_stdio(config: Config) -> anyhow::Result<()> {
    let server = build(&config).await?;
    let maintenance = {
        let server = server.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                match server.state.store.maintain().await {
                    Ok((purged, gc)) if purged > 0 || gc.deleted > 0 => {
                        tracing::info!(
                            purged,
                            deleted = gc.deleted,
                            bytes = gc.bytes_freed,
                            "maintenance"
                        )
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "maintenance failed"),
                }
            }
        })
    };
    let service = server
        .serve(rmcp::transport::stdio())
        .await
        .context("starting the MCP session on stdio")?;
    let reason = service.waiting().await;
    maintenance.abort();
    tracing::info!(?reason, "client disconnected");
    Ok(())
}
