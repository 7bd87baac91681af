//! `dataframe-mcp`: parse flags, log to stderr, then serve MCP on stdio or
//! HTTP, or import a file.

use dfmcp_server::{Cli, Command, Transport};
use tracing_subscriber::EnvFilter;

#[cfg(unix)]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::from_args();
    // stdout is the MCP channel over stdio: every log line goes to stderr.
    tracing_subscriber::fmt()
        .with_env_filter(
            // rmcp logs every stateless HTTP request's service start and end
            // at info: noise at one line per call.
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,rmcp::service=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    match cli.command {
        Some(Command::Import(args)) => dfmcp_server::import(args).await,
        None => match cli.config.transport {
            Transport::Stdio => dfmcp_server::serve_stdio(cli.config).await,
            Transport::Http => dfmcp_server::serve_http(cli.config).await,
        },
    }
}
