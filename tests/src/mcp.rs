//! Driving the real `dataframe-mcp` binary over stdio with rmcp's client.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::harness;

/// The server binary, built by `cargo test --workspace` (the server package's
/// own integration test makes cargo build it) next to this test binary.
pub fn server_binary() -> PathBuf {
    if let Ok(path) = std::env::var("DATAFRAME_MCP_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/integration-… → target/<profile>/dataframe-mcp
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join(format!("dataframe-mcp{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the suite with `cargo test --workspace` (it builds the server), or `cargo build -p dataframe-mcp` first",
        bin.display()
    );
    // `cargo test -p tests` alone does not rebuild the server: refuse to test
    // a binary older than the sources it is built from.
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .expect("binary mtime");
    let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates");
    if let Some(newer) = newest_source(&crates).filter(|(t, _)| *t > built) {
        panic!(
            "{} is older than {}: run `cargo test --workspace` (or `cargo build -p dataframe-mcp`) so the end-to-end tests drive the current code",
            bin.display(),
            newer.1.display()
        );
    }
    bin
}

fn newest_source(dir: &std::path::Path) -> Option<(std::time::SystemTime, PathBuf)> {
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let candidate = if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "tests") {
                continue;
            }
            newest_source(&path)
        } else if path.extension().is_some_and(|e| e == "rs" || e == "toml") {
            entry.metadata().ok()?.modified().ok().map(|t| (t, path))
        } else {
            None
        };
        if let Some(c) = candidate
            && newest.as_ref().is_none_or(|n| c.0 > n.0)
        {
            newest = Some(c);
        }
    }
    newest
}

/// How a server under test stores its sessions.
#[derive(Debug, Clone)]
pub enum Storage {
    Memory,
    Embedded(PathBuf),
    Redis { url: String, prefix: String },
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
}

/// A running server and a client connected to it.
pub struct Server {
    client: Option<RunningService<RoleClient, ()>>,
    pub pid: u32,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub async fn start(storage: &Storage, allow: &std::path::Path, extra: &[&str]) -> Server {
        Self::start_with(Some(storage), allow, extra).await
    }

    /// Starts a server with no storage configuration at all (the defaults).
    pub async fn start_raw(allow: &std::path::Path, extra: &[&str]) -> Server {
        Self::start_with(None, allow, extra).await
    }

    async fn start_with(
        storage: Option<&Storage>,
        allow: &std::path::Path,
        extra: &[&str],
    ) -> Server {
        let mut cmd = Command::new(server_binary());
        cmd.arg("--allow-dir")
            .arg(allow)
            .args(extra)
            .env("RUST_LOG", "info")
            .env_remove("STORAGE_BACKEND")
            .env_remove("REDIS_URL")
            .env_remove("DATAFRAME_MCP_DATA_DIR");
        match storage {
            None => {}
            Some(Storage::Memory) => {
                cmd.args(["--storage", "memory"]);
            }
            Some(Storage::Embedded(dir)) => {
                cmd.args(["--storage", "embedded", "--data-dir"]).arg(dir);
            }
            Some(Storage::Redis { url, prefix }) => {
                cmd.args(["--storage", "redis"])
                    .env("REDIS_URL", url)
                    .env("REDIS_KEY_PREFIX", prefix);
            }
        }
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
        let client = tokio::time::timeout(Duration::from_secs(30), ().serve(transport))
            .await
            .expect("server did not initialize within 30 s")
            .expect("MCP initialize");
        Server {
            client: Some(client),
            pid,
            stderr: lines,
        }
    }

    pub fn client(&self) -> &RunningService<RoleClient, ()> {
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
