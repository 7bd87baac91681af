//! The `dataframe-mcp` server: an MCP server that loads tabular files into
//! named sessions and cleans, inspects and transforms them, with every change
//! a new version (exact undo/redo, readable history).
//!
//! Only this crate knows MCP, JSON Schema and the command line. It wires
//! [`dfmcp_ingest`] (files → frames), [`dfmcp_ops`] (pure transformations),
//! [`dfmcp_plot`] (charts) and [`dfmcp_storage`] (versioned sessions) behind
//! thin tool handlers: parse, call, render.

mod arguments;
pub mod caller;
pub mod config;
mod error;
mod http;
mod import;
mod logs;
mod paths;
mod progress;
mod prompts;
mod render;
mod resources;
mod server;
mod summaries;
mod tasks;
mod tools;
mod watch;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use dfmcp_storage::{Backend, MemoryBackend, RedisBackend, RedisConfig, SqliteBackend, Store};
use rmcp::ServiceExt;
use rmcp::service::ServerInitializeError;

pub use caller::{Caller, Principal};
pub use config::{Cli, Command, Config, ImportArgs, RedisFallback, StorageKind, Transport};
pub use error::ToolError;
pub use http::{Tokens, serve_http};
pub use import::import;
pub use paths::PathPolicy;
pub use server::{AppState, DataFrameServer, ToolSelection};

/// The configured backend, with a description for people and, when the
/// server fell back to another store than the one asked for, why.
pub struct OpenedBackend {
    pub backend: Arc<dyn Backend>,
    pub description: String,
    pub fallback: Option<String>,
}

/// Opens the configured backend.
pub async fn open_backend(config: &Config) -> anyhow::Result<OpenedBackend> {
    Ok(match config.storage {
        StorageKind::Memory => OpenedBackend {
            backend: Arc::new(MemoryBackend::new()),
            description: "in-memory storage (lost on exit)".into(),
            fallback: None,
        },
        StorageKind::Embedded => {
            let dir = config.data_dir().context(
                "no data directory: the platform has no user data directory; pass --data-dir",
            )?;
            let backend =
                tokio::task::spawn_blocking(move || SqliteBackend::open(&dir).map(|b| (b, dir)))
                    .await
                    .context("opening the data directory")??;
            OpenedBackend {
                description: format!("embedded storage in {}", backend.1.display()),
                backend: Arc::new(backend.0),
                fallback: None,
            }
        }
        StorageKind::Redis => {
            let mut redis = RedisConfig::new(config.redis_url.clone());
            redis.cluster = config.redis_cluster;
            redis.prefix = config.redis_prefix.clone();
            redis.max_request_bytes = config.redis_max_request_bytes;
            redis.ca_cert = config.redis_ca_cert.clone();
            let shown = dfmcp_storage::backend::redis::redact_url(&redis.url);
            let description = format!(
                "Redis {} at {shown} (prefix {})",
                if redis.cluster { "cluster" } else { "server" },
                redis.prefix
            );
            let opened: anyhow::Result<Arc<dyn Backend>> = if redis.cluster {
                RedisBackend::cluster(&redis)
                    .await
                    .map(|b| Arc::new(b) as Arc<dyn Backend>)
                    .map_err(Into::into)
            } else {
                RedisBackend::single(&redis)
                    .map(|b| Arc::new(b) as Arc<dyn Backend>)
                    .map_err(Into::into)
            };
            let reachable = match &opened {
                Ok(backend) => ping(backend.as_ref()).await,
                Err(e) => Err(e.to_string()),
            };
            match (reachable, config.redis_fallback) {
                (Ok(()), _) => OpenedBackend {
                    backend: opened?,
                    description,
                    fallback: None,
                },
                (Err(why), RedisFallback::Memory) => {
                    let note = format!(
                        "Redis at {shown} was unreachable when this server started ({why}); it runs on the in-memory store: sessions are not shared with other processes and are lost when it exits"
                    );
                    tracing::error!("{note}");
                    OpenedBackend {
                        backend: Arc::new(MemoryBackend::new()),
                        description: "in-memory storage (fallback: Redis was unreachable)".into(),
                        fallback: Some(note),
                    }
                }
                // Without a fallback, an unreachable Redis at start is fine:
                // the connection comes up when Redis does.
                (Err(_), RedisFallback::None) => OpenedBackend {
                    backend: opened?,
                    description,
                    fallback: None,
                },
            }
        }
    })
}

/// One cheap round trip to the backend.
async fn ping(backend: &dyn Backend) -> Result<(), String> {
    let now = dfmcp_storage::now_ms();
    match tokio::time::timeout(Duration::from_secs(5), backend.list_sessions("", 1, now)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 5 s".into()),
    }
}

/// Builds the server state from a configuration.
pub async fn build(config: &Config, transport: &'static str) -> anyhow::Result<DataFrameServer> {
    let opened = open_backend(config).await?;
    let store = Store::new(opened.backend, config.store_config());
    let forbidden: Vec<_> = match config.storage {
        StorageKind::Embedded => config.data_dir().into_iter().collect(),
        _ => Vec::new(),
    };
    let remote = transport == "http";
    let mut paths = PathPolicy::new(&config.configured_dirs(), &forbidden);
    if remote {
        paths = paths.remote();
    }
    tracing::info!(storage = %opened.description, allowed = ?paths.allowed(), "starting");
    DataFrameServer::new(AppState {
        store,
        paths,
        ingest: config.ingest_limits(),
        query: config.query_limits(),
        max_chars: config.max_response_tokens.saturating_mul(4).max(8_000),
        use_client_roots: !config.ignore_client_roots && !remote,
        storage: opened.description,
        fallback: opened.fallback,
        transport,
        public_url: config.public_url.clone(),
        summaries: Default::default(),
        read_only: config.read_only,
    })
    .select_tools(&ToolSelection {
        read_only: config.read_only,
        only: config.tools.clone(),
        exclude: config.exclude_tools.clone(),
    })
    .map_err(anyhow::Error::msg)
}

/// Purges expired sessions and collects garbage now and then, for as long
/// as the returned task runs.
pub fn spawn_maintenance(server: &DataFrameServer) -> tokio::task::JoinHandle<()> {
    let server = server.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            match server.state.store.maintain().await {
                Ok(report) => {
                    if report.purged > 0 || report.gc.deleted > 0 {
                        tracing::info!(
                            purged = report.purged,
                            deleted = report.gc.deleted,
                            bytes = report.gc.bytes_freed,
                            "maintenance"
                        );
                    }
                    for (session, why) in report.failed {
                        tracing::warn!(%session, %why, "collecting a session failed; retried at the next pass");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "maintenance failed"),
            }
        }
    })
}

/// Serves MCP over stdin/stdout until the client disconnects. A client that
/// closes its end, before or after initializing, is a normal end.
pub async fn serve_stdio(config: Config) -> anyhow::Result<()> {
    let server = build(&config, "stdio").await?;
    let maintenance = spawn_maintenance(&server);
    let outcome = server.serve(rmcp::transport::stdio()).await;
    let result = match outcome {
        Ok(service) => {
            let reason = service.waiting().await;
            tracing::info!(?reason, "client disconnected");
            Ok(())
        }
        Err(ServerInitializeError::ConnectionClosed(_)) => {
            tracing::info!("the client closed the connection without a session");
            Ok(())
        }
        Err(e) => Err(anyhow::Error::new(e).context("starting the MCP session on stdio")),
    };
    maintenance.abort();
    result
}
