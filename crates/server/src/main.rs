//! `dataframe-mcp`: parse flags, log to stderr, serve MCP on stdio.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = dfmcp_server::Config::parse();
    // stdout is the MCP channel: every log line goes to stderr.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    dfmcp_server::serve_stdio(config).await
}
