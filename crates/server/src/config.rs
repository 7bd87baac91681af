//! Command-line flags, each with an environment-variable fallback.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use dfmcp_storage::{Compression, StoreConfig};

/// Where sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StorageKind {
    /// On disk in the data directory (SQLite + files); survives restarts,
    /// shared by processes on this machine. The default.
    #[value(alias = "sqlite", alias = "disk", alias = "default")]
    Embedded,
    /// In this process only; gone when it exits.
    Memory,
    /// A Redis server or cluster: shared by processes on many machines.
    Redis,
}

/// How clients reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// One client over stdin/stdout (the default).
    Stdio,
    /// Streamable HTTP at /mcp, for many clients; with uploads, downloads,
    /// health checks, bearer tokens and rate limits.
    Http,
}

/// What to do when Redis cannot be reached at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RedisFallback {
    /// Refuse to start (the default): nothing is silently not shared.
    None,
    /// Start on the in-memory store, and say so in every result.
    Memory,
}

/// An MCP server for loading, cleaning and transforming tabular data, with
/// sessions that survive restarts and exact undo/redo.
#[derive(Debug, Clone, Parser)]
#[command(name = "dataframe-mcp", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,

    /// More allowed directories, as plain arguments (how desktop launchers
    /// pass the folders a user picked).
    #[arg(value_name = "DIR")]
    pub dirs: Vec<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// Parses the command line; directories given as plain arguments are
    /// allowed like `--allow-dir`s.
    pub fn from_args() -> Self {
        Self::parse().merged()
    }

    fn merged(mut self) -> Self {
        self.config.allow_dirs.append(&mut self.dirs);
        self
    }
}

/// What to do instead of serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Load a file into the configured store and print the session id and
    /// tables, so that a backend or a script can hand the session to an agent.
    Import(ImportArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub config: Config,

    /// The file to load (every table it holds is loaded).
    pub file: PathBuf,

    /// Session to load into (created if new); default a fresh one.
    #[arg(long)]
    pub session_id: Option<String>,

    /// Name of the table (default: the sheet or file name).
    #[arg(long)]
    pub table_name: Option<String>,

    /// Load the session on behalf of this principal (as named in the HTTP
    /// tokens file), so that only they see it.
    #[arg(long)]
    pub principal: Option<String>,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Everything that configures the server.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// How clients reach the server.
    #[arg(
        long,
        env = "DATAFRAME_MCP_TRANSPORT",
        value_enum,
        default_value = "stdio"
    )]
    pub transport: Transport,

    /// Address to listen on with --transport http.
    #[arg(long, env = "DATAFRAME_MCP_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,

    /// File of bearer tokens for HTTP: one `principal token` pair per line
    /// (or `principal blake3:<hex of the token's hash>`); # starts a comment.
    #[arg(long, env = "DATAFRAME_MCP_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,

    /// Serve HTTP without tokens even on a non-loopback address (everyone is
    /// one anonymous principal). Only behind a proxy that authenticates.
    #[arg(long, env = "DATAFRAME_MCP_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,

    /// Host header values HTTP requests may carry (DNS-rebinding
    /// protection); default localhost, 127.0.0.1, ::1 and the listen address.
    #[arg(
        long = "allowed-host",
        env = "DATAFRAME_MCP_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,

    /// Origin header values browser requests may carry (e.g.
    /// https://app.example.com); default: requests with an Origin are refused.
    #[arg(
        long = "allowed-origin",
        env = "DATAFRAME_MCP_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// Requests per second each principal may make over HTTP (a token
    /// bucket, kept in Redis when the store is Redis).
    #[arg(long, env = "DATAFRAME_MCP_RATE_LIMIT", default_value_t = 20.0)]
    pub rate_limit: f64,

    /// How many requests a principal may make at once above the rate.
    #[arg(long, env = "DATAFRAME_MCP_RATE_BURST", default_value_t = 40.0)]
    pub rate_burst: f64,

    /// The server's public base URL (e.g. https://mcp.example.com), used in
    /// download links; default: http(s) (from X-Forwarded-Proto) and the
    /// request's Host.
    #[arg(long, env = "DATAFRAME_MCP_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Seconds in-flight HTTP calls may take to finish after SIGTERM/SIGINT.
    #[arg(
        long,
        env = "DATAFRAME_MCP_SHUTDOWN_GRACE_SECONDS",
        default_value_t = 30
    )]
    pub shutdown_grace_seconds: u64,

    /// Where sessions are stored.
    #[arg(
        long = "storage",
        env = "STORAGE_BACKEND",
        value_enum,
        default_value = "embedded"
    )]
    pub storage: StorageKind,

    /// Data directory of the embedded store [default: the platform's user data
    /// directory, e.g. ~/.local/share/dataframe-mcp; an empty value means
    /// the default too].
    #[arg(
        long,
        env = "DATAFRAME_MCP_DATA_DIR",
        value_parser = clap::builder::TypedValueParser::map(
            clap::builder::OsStringValueParser::new(),
            PathBuf::from
        )
    )]
    pub data_dir: Option<PathBuf>,

    /// Redis URL: redis://, rediss:// (TLS) or redis+unix://; for a cluster,
    /// seed node URLs separated by commas.
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub redis_url: String,

    /// Treat REDIS_URL as a Redis Cluster.
    #[arg(long, env = "REDIS_CLUSTER")]
    pub redis_cluster: bool,

    /// Prefix of every Redis key, so several deployments can share a server.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "dfmcp:")]
    pub redis_prefix: String,

    /// PEM file of the certificate authority of a rediss:// server whose
    /// certificate a public authority did not sign.
    #[arg(long, env = "REDIS_CA_CERT")]
    pub redis_ca_cert: Option<PathBuf>,

    /// Largest request or reply sent to Redis, in bytes (hosted Redis such as
    /// Upstash refuses requests over 10 MB).
    #[arg(long, env = "REDIS_MAX_REQUEST_BYTES", default_value_t = 8 << 20)]
    pub redis_max_request_bytes: u64,

    /// When Redis is unreachable at start: refuse to start (none), or run on
    /// the in-memory store and say so in every result (memory).
    #[arg(long, env = "REDIS_FALLBACK", value_enum, default_value = "none")]
    pub redis_fallback: RedisFallback,

    /// Idle time after which a session expires, in seconds.
    #[arg(long, env = "SESSION_TTL_SECONDS", default_value_t = 86_400)]
    pub session_ttl_seconds: u64,

    /// Undo steps kept per table (older ones fall off).
    #[arg(long, env = "HISTORY_LIMIT", default_value_t = 50)]
    pub history_limit: usize,

    /// A directory the server may read files from and write exports to
    /// (repeatable). With none given (and no client roots), only the user's
    /// home directory. The data directory is never readable or writable.
    #[arg(long = "allow-dir", value_name = "DIR")]
    pub allow_dirs: Vec<PathBuf>,

    /// Allowed directories from the environment, separated like PATH.
    #[arg(long, env = "DATAFRAME_MCP_ALLOW_DIRS", hide = true)]
    pub allow_dirs_env: Option<std::ffi::OsString>,

    /// Ignore the directories (roots) an MCP client offers.
    #[arg(long, env = "DATAFRAME_MCP_IGNORE_ROOTS")]
    pub ignore_client_roots: bool,

    /// Offer only the tools that read (and loading files): no tool changes,
    /// drops or exports a table, and query_sql cannot save_as.
    #[arg(long, env = "DATAFRAME_MCP_READ_ONLY")]
    pub read_only: bool,

    /// Offer only these tools (comma-separated names).
    #[arg(long, env = "DATAFRAME_MCP_TOOLS", value_delimiter = ',')]
    pub tools: Vec<String>,

    /// Never offer these tools (comma-separated names).
    #[arg(long, env = "DATAFRAME_MCP_EXCLUDE_TOOLS", value_delimiter = ',')]
    pub exclude_tools: Vec<String>,

    /// Upper bound of one tool result, in tokens (about 4 characters each).
    #[arg(long, env = "MAX_RESPONSE_TOKENS", default_value_t = 12_000)]
    pub max_response_tokens: usize,

    /// Largest table kept in a session, in bytes in memory [default: a
    /// quarter of the machine's (or container's) memory, at least 512 MiB].
    #[arg(long, env = "MAX_TABLE_BYTES", default_value_t = machine_share(4, 512 << 20))]
    pub max_table_bytes: u64,

    /// Largest file accepted by initialize_data_table or an upload, in bytes
    /// [default: half the machine's memory, at least 2 GB].
    #[arg(long, env = "MAX_FILE_BYTES", default_value_t = machine_share(2, 2_000_000_000))]
    pub max_file_bytes: u64,

    /// Most rows per loaded table (the table's size in memory is the
    /// tighter bound for most tables).
    #[arg(long, env = "MAX_ROWS", default_value_t = 1_000_000_000)]
    pub max_rows: usize,

    /// Most columns per loaded table.
    #[arg(long, env = "MAX_COLUMNS", default_value_t = 20_000)]
    pub max_columns: usize,

    /// Most rows any step of a SQL query may produce (joins included).
    #[arg(long, env = "MAX_QUERY_ROWS", default_value_t = 100_000_000)]
    pub max_query_rows: u64,

    /// Most bytes any step of a SQL query may hold.
    #[arg(long, env = "MAX_QUERY_BYTES", default_value_t = 2 << 30)]
    pub max_query_bytes: u64,

    /// Compression of stored snapshots: zstd, zstd:<level>, lz4, snappy, uncompressed.
    #[arg(long, env = "STORAGE_COMPRESSION", default_value = "zstd")]
    pub compression: Compression,

    /// Memory for decoded tables cached in this process, in bytes; versions
    /// share their unchanged columns, counted once [default: a quarter of the
    /// machine's memory, at least 1 GiB, so that the largest table a session
    /// may hold stays decoded between calls].
    #[arg(long, env = "CACHE_BYTES", default_value_t = machine_share(4, 1 << 30))]
    pub cache_bytes: u64,

    /// Seconds unreferenced snapshot data is kept before it is deleted.
    #[arg(long, env = "GC_GRACE_SECONDS", default_value_t = 300)]
    pub gc_grace_seconds: u64,
}

/// Memory this process may use: the machine's, or less when its container
/// (cgroup v2 `memory.max`, v1 `memory.limit_in_bytes`) or an address-space
/// limit says so.
pub fn memory_available() -> Option<u64> {
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
                .map(|kb| kb * 1024)
        });
    let container = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(p).ok())
    .filter_map(|v| v.trim().parse::<u64>().ok())
    .min();
    // An address-space cap (`ulimit -v`, `prlimit --as`) bounds us too.
    let address_space = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max address space"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|soft| soft.parse::<u64>().ok())
        });
    [machine, container, address_space]
        .into_iter()
        .flatten()
        .min()
}

/// `1/divisor` of the memory available, but at least `floor`.
fn machine_share(divisor: u64, floor: u64) -> u64 {
    memory_available()
        .map(|m| m / divisor.max(1))
        .unwrap_or(floor)
        .max(floor)
}

impl Config {
    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            session_ttl: Duration::from_secs(self.session_ttl_seconds.max(1)),
            history_limit: self.history_limit,
            max_table_bytes: self.max_table_bytes,
            compression: self.compression,
            gc_grace: Duration::from_secs(self.gc_grace_seconds),
            cache_bytes: usize::try_from(self.cache_bytes).unwrap_or(usize::MAX),
            hidden_column_prefix: Some(dfmcp_ops::columns::MARK_PREFIX.to_string()),
            ..StoreConfig::default()
        }
    }

    pub fn ingest_limits(&self) -> dfmcp_ingest::Limits {
        dfmcp_ingest::Limits {
            max_file_bytes: self.max_file_bytes,
            max_rows: self.max_rows,
            max_columns: self.max_columns,
            ..dfmcp_ingest::Limits::default()
        }
    }

    pub fn query_limits(&self) -> dfmcp_ops::sql::QueryLimits {
        dfmcp_ops::sql::QueryLimits {
            max_rows: self.max_query_rows,
            max_bytes: self.max_query_bytes,
            ..dfmcp_ops::sql::QueryLimits::default()
        }
    }

    /// Allowed directories from flags and the environment.
    pub fn configured_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = self.allow_dirs.clone();
        if let Some(env) = &self.allow_dirs_env {
            dirs.extend(std::env::split_paths(env).filter(|p| !p.as_os_str().is_empty()));
        }
        dirs
    }

    /// The embedded store's directory.
    pub fn data_dir(&self) -> Option<PathBuf> {
        // An empty value (an unset field of a launcher's config) is unset.
        let given = self.data_dir.clone().filter(|d| !d.as_os_str().is_empty());
        given.or_else(|| {
            directories::ProjectDirs::from("", "", "dataframe-mcp")
                .map(|d| d.data_dir().to_path_buf())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use clap::Parser;

    use super::*;

    /// The way an MCP Bundle launches the server: every directory the user
    /// picked as an argument, and an unset data directory as "".
    #[test]
    fn a_launcher_can_pass_many_dirs_and_an_empty_data_dir() {
        let cli = Cli::try_parse_from(["dataframe-mcp", "--data-dir", "", "/srv/a", "/srv/b"])
            .unwrap()
            .merged();
        assert_eq!(
            cli.config.configured_dirs(),
            [PathBuf::from("/srv/a"), PathBuf::from("/srv/b")]
        );
        let data = cli.config.data_dir().unwrap();
        assert!(!data.as_os_str().is_empty());
        assert!(data.ends_with("dataframe-mcp"), "{data:?}");
        // Repeating the flag still works, and a subcommand still parses.
        let cli = Cli::try_parse_from([
            "dataframe-mcp",
            "--allow-dir",
            "/a",
            "--allow-dir",
            "/b",
            "import",
            "x.csv",
        ])
        .unwrap()
        .merged();
        assert_eq!(cli.config.configured_dirs().len(), 2);
        assert!(cli.command.is_some());
    }
}
