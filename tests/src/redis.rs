//! Throwaway Redis servers and clusters for tests and benchmarks.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A redis-server (or several) that lives as long as the test process: it
/// is started through `sh`, which kills it when our end of its stdin closes,
/// which the OS does when this process exits, however it exits.
pub struct Throwaway {
    _keepalive: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

fn redis_server_path() -> String {
    for candidate in [
        "redis-server",
        "/usr/bin/redis-server",
        "/usr/local/bin/redis-server",
    ] {
        if Command::new(candidate)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return candidate.to_string();
        }
    }
    panic!(
        "redis-server is not installed and REDIS_URL is not set: these tests need a real Redis. Install it (apt-get install redis-server) or point REDIS_URL at a server"
    );
}

/// A free loopback port (and, with `bus`, port + 10000 free too for a
/// cluster bus).
pub fn free_port(bus: bool) -> u16 {
    for _ in 0..200 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local addr").port();
        if port > 55000 && bus {
            continue;
        }
        if !bus || TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port found");
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("redis-server on port {port} did not start within 10 s");
}

/// Starts redis-server processes (one per argument list) tied to this process.
fn spawn_tied(servers: &[Vec<String>]) -> Throwaway {
    let bin = redis_server_path();
    let mut script = String::new();
    for args in servers {
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        script.push_str(&format!("{bin} {} & pids=\"$pids $!\"\n", quoted.join(" ")));
    }
    script.push_str("read _ignored\nkill $pids 2>/dev/null\nwait\n");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start sh for redis-server");
    let stdin = child.stdin.take().expect("piped stdin");
    Throwaway {
        _keepalive: Mutex::new(stdin),
        _child: Mutex::new(child),
    }
}

fn server_args(port: u16, dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--maxmemory-policy",
        "noeviction",
        "--dir",
        &dir.to_string_lossy(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn temp_root() -> &'static Path {
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    ROOT.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

/// The URL of a Redis for tests: `REDIS_URL`, or a throwaway server.
pub fn redis_url() -> String {
    static URL: OnceLock<(String, Option<Throwaway>)> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("REDIS_URL") {
            return (url, None);
        }
        let port = free_port(false);
        let dir = temp_root().join(format!("redis-{port}"));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let server = spawn_tied(&[server_args(port, &dir, &[])]);
        wait_for_port(port);
        (format!("redis://127.0.0.1:{port}"), Some(server))
    })
    .0
    .clone()
}

/// A throwaway redis-server of its own with extra arguments (limits, TLS),
/// and the port it listens on. It lives as long as the returned handle.
pub fn redis_with_args(extra: &[&str]) -> (u16, Throwaway) {
    let port = free_port(false);
    let dir = temp_root().join(format!("custom-{port}"));
    std::fs::create_dir_all(&dir).expect("redis dir");
    let mut args = server_args(port, &dir, extra);
    // A TLS-only server listens on its TLS port: the plain one is off.
    let tls_port = extra
        .iter()
        .position(|a| *a == "--tls-port")
        .and_then(|i| extra.get(i + 1))
        .and_then(|p| p.parse::<u16>().ok());
    if tls_port.is_some()
        && let Some(i) = args.iter().position(|a| a == "--port")
    {
        args[i + 1] = "0".into();
    }
    let server = spawn_tied(&[args]);
    let listening = tls_port.unwrap_or(port);
    wait_for_port(listening);
    (listening, server)
}

/// Seed URLs of a local 3-node Redis Cluster (started once per test process),
/// or `REDIS_CLUSTER_URLS` when set.
pub fn redis_cluster_urls() -> String {
    static URLS: OnceLock<(String, Option<Throwaway>)> = OnceLock::new();
    URLS.get_or_init(|| {
        if let Ok(urls) = std::env::var("REDIS_CLUSTER_URLS") {
            return (urls, None);
        }
        let ports: Vec<u16> = (0..3)
            .map(|_| {
                // Distinct ports whose bus ports are free too.
                loop {
                    let p = free_port(true);
                    if TcpListener::bind(("127.0.0.1", p)).is_ok() {
                        break p;
                    }
                }
            })
            .collect();
        let servers: Vec<Vec<String>> = ports
            .iter()
            .map(|&p| {
                let dir = temp_root().join(format!("cluster-{p}"));
                std::fs::create_dir_all(&dir).expect("cluster dir");
                server_args(
                    p,
                    &dir,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        &dir.join("nodes.conf").to_string_lossy(),
                    ],
                )
            })
            .collect();
        let tied = spawn_tied(&servers);
        for &p in &ports {
            wait_for_port(p);
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for p in &ports {
            create.arg(format!("127.0.0.1:{p}"));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create (is redis-tools installed?)");
        assert!(
            out.status.success(),
            "creating the test cluster failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        // Wait until every node agrees the cluster is up.
        let deadline = Instant::now() + Duration::from_secs(20);
        for p in &ports {
            loop {
                let info = Command::new("redis-cli")
                    .args(["-p", &p.to_string(), "cluster", "info"])
                    .output()
                    .expect("redis-cli cluster info");
                if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the test cluster never reached cluster_state:ok"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let urls = ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        (urls, Some(tied))
    })
    .0
    .clone()
}

/// A redis-server this test controls: it can be stopped and started again on
/// the same port (for fault tests).
pub struct ControlledRedis {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl ControlledRedis {
    pub fn start() -> Self {
        let port = free_port(false);
        let dir = temp_root().join(format!("controlled-{port}"));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut this = ControlledRedis {
            port,
            dir,
            child: None,
        };
        this.resume();
        this
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again). It persists every write to an append-only
    /// file, so a restart brings the data back.
    pub fn resume(&mut self) {
        let args = [
            "--port".to_string(),
            self.port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            self.dir.to_string_lossy().into_owned(),
            "--appendonly".into(),
            "yes".into(),
            "--appendfsync".into(),
            "always".into(),
            "--maxmemory-policy".into(),
            "noeviction".into(),
        ];
        let child = Command::new(redis_server_path())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        wait_for_port(self.port);
        // Wait until the append-only file is loaded.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = Command::new("redis-cli")
                .args(["-p", &self.port.to_string(), "ping"])
                .output();
            if out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("PONG")) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "restarted redis never answered PONG"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ControlledRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A random key prefix, so tests sharing one Redis never see each other.
pub fn random_prefix() -> String {
    format!("dfmcp-test-{}:", uuid::Uuid::new_v4().simple())
}
