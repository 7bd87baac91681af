//! Talking MCP to a server under test with rmcp's client: the real binary
//! over stdio (a child process), or a server value in this process over an
//! in-memory pipe.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult, ClientConfig};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServerHandler, ServiceExt};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::redis as harness;

/// How a server under test stores its sessions.
#[derive(Debug, Clone)]
pub enum Storage {
    Memory,
    Embedded(PathBuf),
    Redis { url: String, prefix: String },
    RedisCluster { urls: String, prefix: String },
}

impl Storage {
    pub fn redis() -> Self {
        Storage::Redis {
            url: harness::redis_url(),
            prefix: harness::random_prefix(),
        }
    }

    pub fn embedded(dir: &std::path::Path) -> Self {
        Storage::Embedded(dir.join("data"))
    }

    /// A Redis Cluster given by its seed URLs (comma-separated).
    pub fn redis_cluster(urls: &str) -> Self {
        Storage::RedisCluster {
            urls: urls.to_string(),
            prefix: harness::random_prefix(),
        }
    }

    /// Adds the arguments and environment that select this storage.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env_remove("STORAGE_BACKEND")
            .env_remove("REDIS_URL")
            .env_remove("REDIS_CLUSTER")
            .env_remove("DATAFRAME_MCP_DATA_DIR");
        match self {
            Storage::Memory => {
                cmd.args(["--storage", "memory"]);
            }
            Storage::Embedded(dir) => {
                cmd.args(["--storage", "embedded", "--data-dir"]).arg(dir);
            }
            Storage::Redis { url, prefix } => {
                cmd.args(["--storage", "redis"])
                    .env("REDIS_URL", url)
                    .env("REDIS_KEY_PREFIX", prefix);
            }
            Storage::RedisCluster { urls, prefix } => {
                cmd.args(["--storage", "redis", "--redis-cluster"])
                    .env("REDIS_URL", urls)
                    .env("REDIS_KEY_PREFIX", prefix);
            }
        }
    }
}

/// A running server and a client connected to it.
pub struct Server {
    client: Option<RunningService<RoleClient, ClientConfig>>,
    /// The child process, for a server that runs as one.
    pub pid: u32,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// A server value run in this process, connected over an in-memory pipe.
    pub async fn in_process<S: ServerHandler>(server: S) -> Server {
        let (server_io, client_io) = tokio::io::duplex(1 << 20);
        tokio::spawn(async move {
            if let Ok(running) = server.serve(server_io).await {
                let _ = running.waiting().await;
            }
        });
        let client = tokio::time::timeout(
            Duration::from_secs(30),
            ClientConfig::default().serve(client_io),
        )
        .await
        .expect("server did not initialize within 30 s")
        .expect("MCP initialize");
        Server {
            client: Some(client),
            pid: std::process::id(),
            stderr: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The binary at `bin` as a child process.
    pub async fn start(bin: &Path, storage: &Storage, allow: &Path, extra: &[&str]) -> Server {
        Self::start_with(bin, Some(storage), allow, extra).await
    }

    /// Starts a server with no storage configuration at all (the defaults).
    pub async fn start_raw(bin: &Path, allow: &Path, extra: &[&str]) -> Server {
        Self::start_with(bin, None, allow, extra).await
    }

    async fn start_with(
        bin: &Path,
        storage: Option<&Storage>,
        allow: &Path,
        extra: &[&str],
    ) -> Server {
        let mut cmd = Command::new(bin);
        Self::configure(&mut cmd, storage, allow, extra);
        Self::spawn(cmd).await
    }

    /// Adds the arguments and environment of a test server to `cmd` (whose
    /// program is the server binary, or a wrapper such as `prlimit` whose
    /// arguments end with it).
    pub fn configure(cmd: &mut Command, storage: Option<&Storage>, allow: &Path, extra: &[&str]) {
        cmd.arg("--allow-dir")
            .arg(allow)
            .args(extra)
            .env("RUST_LOG", "info")
            .env_remove("STORAGE_BACKEND")
            .env_remove("REDIS_URL")
            .env_remove("DATAFRAME_MCP_DATA_DIR");
        if let Some(storage) = storage {
            storage.apply(cmd);
        }
    }

    /// Starts `cmd` (a configured server command) and connects to it.
    pub async fn spawn(cmd: Command) -> Server {
        let (transport, stderr) = TokioChildProcess::builder(cmd)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dataframe-mcp");
        let pid = transport.id().expect("child pid");
        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(stderr) = stderr {
            let sink = lines.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    let mut v = sink.lock().unwrap_or_else(|p| p.into_inner());
                    v.push(line);
                    if v.len() > 300 {
                        v.remove(0);
                    }
                }
            });
        }
        let client = tokio::time::timeout(
            Duration::from_secs(30),
            ClientConfig::default().serve(transport),
        )
        .await
        .expect("server did not initialize within 30 s")
        .expect("MCP initialize");
        Server {
            client: Some(client),
            pid,
            stderr: lines,
        }
    }

    /// A connected client of a server running as process `pid`.
    pub(crate) fn from_client(
        client: RunningService<RoleClient, ClientConfig>,
        pid: u32,
        stderr: Arc<Mutex<Vec<String>>>,
    ) -> Server {
        Server {
            client: Some(client),
            pid,
            stderr,
        }
    }

    /// Whether the server process still runs.
    pub fn alive(&self) -> bool {
        std::process::Command::new("kill")
            .args(["-0", &self.pid.to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }

    pub fn client(&self) -> &RunningService<RoleClient, ClientConfig> {
        self.client.as_ref().expect("client is connected")
    }

    pub fn stderr_tail(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .rev()
            .take(30)
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub async fn call(&self, tool: &str, args: Value) -> CallToolResult {
        let args = match args {
            Value::Object(map) => map,
            Value::Null => Default::default(),
            other => panic!("arguments must be an object, got {other}"),
        };
        let request = CallToolRequestParams::new(tool.to_string()).with_arguments(args);
        match tokio::time::timeout(Duration::from_secs(120), self.client().call_tool(request)).await
        {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => panic!(
                "{tool}: protocol error {e}\nserver stderr:\n{}",
                self.stderr_tail()
            ),
            Err(_) => panic!(
                "{tool}: no answer within 120 s\nserver stderr:\n{}",
                self.stderr_tail()
            ),
        }
    }

    /// Calls a tool that must succeed; returns its structured content.
    pub async fn ok(&self, tool: &str, args: Value) -> Value {
        let result = self.call(tool, args).await;
        assert_ne!(
            result.is_error,
            Some(true),
            "{tool} failed: {}\nserver stderr:\n{}",
            text(&result),
            self.stderr_tail()
        );
        let value = result
            .structured_content
            .clone()
            .unwrap_or_else(|| panic!("{tool} returned no structured content: {}", text(&result)));
        assert!(!text(&result).is_empty(), "{tool} returned no text");
        value
    }

    /// Calls a tool that must fail with an isError result; returns its text.
    pub async fn err(&self, tool: &str, args: Value) -> String {
        let result = self.call(tool, args).await;
        assert_eq!(
            result.is_error,
            Some(true),
            "{tool} should have failed but returned: {}",
            text(&result)
        );
        text(&result)
    }

    /// Kills the process outright (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-9", &self.pid.to_string()])
            .status();
        // Dropping the client closes its pipes.
        self.client.take();
    }

    /// Disconnects politely and waits for the process to exit.
    pub async fn stop(mut self) {
        if let Some(client) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), client.cancel()).await;
        }
    }
}

/// The text content of a result.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}
