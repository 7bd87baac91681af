//! A server under test over HTTP: the real binary with `--transport http` on
//! a free loopback port, MCP clients through rmcp's Streamable HTTP client,
//! and plain HTTP for the other routes (uploads, downloads, health).

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use futures::FutureExt;
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation, ProtocolVersion};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientLifecycleMode, ClientServiceExt, ServiceExt};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::mcp::{Server, Storage};
use crate::redis::free_port;

/// reqwest is built without a TLS provider of its own: the process's rustls
/// provider (ring, as the store uses) must be installed before a client is.
fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A plain HTTP client for the routes that are not MCP.
pub fn http_client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("an HTTP client")
}

/// A dataframe-mcp process serving HTTP.
pub struct HttpServer {
    child: Child,
    pub port: u16,
    pub pid: u32,
    stderr: Arc<Mutex<Vec<String>>>,
    _tokens: Option<tempfile::NamedTempFile>,
}

impl HttpServer {
    /// Starts `bin` serving HTTP on a free port with `storage`, bearer
    /// `tokens` (principal, token) unless empty, and `extra` arguments; waits
    /// until `/healthz` answers.
    pub async fn start(
        bin: &Path,
        storage: &Storage,
        tokens: &[(&str, &str)],
        extra: &[&str],
    ) -> HttpServer {
        let port = free_port(false);
        Self::start_on(bin, port, storage, tokens, extra).await
    }

    /// As [`HttpServer::start`], on a given port.
    pub async fn start_on(
        bin: &Path,
        port: u16,
        storage: &Storage,
        tokens: &[(&str, &str)],
        extra: &[&str],
    ) -> HttpServer {
        let mut cmd = Command::new(bin);
        cmd.args(["--transport", "http", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        storage.apply(&mut cmd);
        let tokens_file = (!tokens.is_empty()).then(|| {
            let file = tempfile::NamedTempFile::new().expect("tokens file");
            let text: String = tokens
                .iter()
                .map(|(principal, token)| format!("{principal} {token}\n"))
                .collect();
            std::fs::write(file.path(), text).expect("write tokens");
            cmd.arg("--tokens-file").arg(file.path());
            file
        });
        let mut child = cmd.spawn().expect("spawn dataframe-mcp --transport http");
        let pid = child.id().expect("child pid");
        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(stderr) = child.stderr.take() {
            let sink = lines.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    let mut v = sink.lock().unwrap_or_else(|p| p.into_inner());
                    v.push(line);
                    if v.len() > 500 {
                        v.remove(0);
                    }
                }
            });
        }
        let server = HttpServer {
            child,
            port,
            pid,
            stderr: lines,
            _tokens: tokens_file,
        };
        server.wait_healthy().await;
        server
    }

    async fn wait_healthy(&self) {
        let client = http_client();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = client.get(self.url("/healthz")).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the HTTP server did not answer /healthz within 60 s\nstderr:\n{}",
                self.stderr_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// An MCP client of this server with `token` (none: no Authorization).
    pub async fn connect(&self, token: Option<&str>) -> Server {
        self.connect_with(token, ProtocolVersion::LATEST_WITH_INITIALIZE)
            .await
            .unwrap_or_else(|e| panic!("MCP over HTTP: {e}\nstderr:\n{}", self.stderr_tail()))
    }

    /// An MCP client that asks for protocol `version`, or the error of its
    /// handshake.
    pub async fn connect_with(
        &self,
        token: Option<&str>,
        version: ProtocolVersion,
    ) -> Result<Server, String> {
        connect(
            &self.url("/mcp"),
            token,
            version,
            self.pid,
            self.stderr.clone(),
        )
        .await
    }

    pub fn stderr_tail(&self) -> String {
        tail(&self.stderr)
    }

    /// Sends SIGTERM (a graceful stop).
    pub fn terminate(&self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
    }

    /// Waits for the process to exit; its exit code, or `None` if it did
    /// not exit within `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(Ok(status)) => Some(status.code().unwrap_or(-1)),
            _ => None,
        }
    }
}

fn tail(lines: &Arc<Mutex<Vec<String>>>) -> String {
    let lines = lines.lock().unwrap_or_else(|p| p.into_inner());
    let start = lines.len().saturating_sub(40);
    lines[start..].join("\n")
}

/// An MCP client of the Streamable HTTP endpoint `url`.
pub async fn connect(
    url: &str,
    token: Option<&str>,
    version: ProtocolVersion,
    pid: u32,
    stderr: Arc<Mutex<Vec<String>>>,
) -> Result<Server, String> {
    install_crypto();
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_string());
    if let Some(token) = token {
        config = config.auth_header(token.to_string());
    }
    let transport = StreamableHttpClientTransport::from_config(config);
    let info = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("dataframe-mcp-tests", "0"),
    )
    .with_protocol_version(version.clone());
    // Revisions without a handshake (2026-07-28 on) discover the server
    // and send every request stateless.
    let connecting = if version.has_initialize() {
        info.serve(transport).boxed()
    } else {
        info.serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![version],
            },
        )
        .boxed()
    };
    let client = tokio::time::timeout(Duration::from_secs(30), connecting)
        .await
        .map_err(|_| "no answer to initialize within 30 s".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(Server::from_client(client, pid, stderr))
}
