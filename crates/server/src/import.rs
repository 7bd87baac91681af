//! `dataframe-mcp import FILE`: load a file into the configured store from a
//! script or a web backend, and print the session to hand to an agent.

use std::io::Write;

use anyhow::Context;

use crate::caller::Caller;
use crate::config::ImportArgs;
use crate::wire::InitializeRequest;

/// Loads `args.file` and prints the session id and tables (JSON with
/// `--json`) on stdout.
pub async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let server = crate::build(&args.config, "cli").await?;
    let caller = match &args.principal {
        Some(name) => Caller::principal(name),
        None => Caller::local(),
    };
    let req = InitializeRequest {
        session_id: args.session_id.clone(),
        table_name: args.table_name.clone(),
        ..InitializeRequest::default()
    };
    let loaded = server
        .load_local(&caller, &args.file, req)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("importing {}", args.file.display()))?;
    // The command's answer (not a log line): stdout is not an MCP channel here.
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&loaded)?)?;
        return Ok(());
    }
    writeln!(out, "session_id: {}", loaded.session_id)?;
    for table in &loaded.tables {
        writeln!(
            out,
            "table: {} ({} rows × {} columns, from {})",
            table.table, table.rows, table.columns, table.source
        )?;
    }
    for problem in &loaded.problems {
        writeln!(out, "problem: {}: {}", problem.source, problem.message)?;
    }
    for note in &loaded.notes {
        writeln!(out, "note: {note}")?;
    }
    Ok(())
}
