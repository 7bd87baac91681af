//! A scripted session against the real server over stdio, on the embedded
//! on-disk store (the default; nothing to install):
//! initialize → summary → fill_missing → preview → undo → redo → history.
//!
//! ```text
//! cargo run -p examples --example quickstart
//! ```
//!
//! It builds the server binary if needed, writes a small messy CSV to a temp
//! directory, starts `dataframe-mcp --data-dir <tmp>/data --allow-dir <tmp>` as
//! a child process and talks MCP to it.

#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::Command as StdCommand;

use anyhow::{Context, bail};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::transport::TokioChildProcess;
use rmcp::{ServiceExt, object};
use serde_json::Value;
use tokio::process::Command;

const MESSY_CSV: &str = "\
order_id;region;product;price;quantity;ordered
1001;EU;Widget;23,50;3;2024-01-05
1002;US;Gadget;;1;2024-01-06
1003;EU;Widget;21,00;;2024-01-07
1004;APAC;Gizmo;99,90;2;2024-01-08
1005;US;Gadget;54,25;1;
1006;EU;;18,75;4;2024-01-10
1007;US;Widget;;2;2024-01-11
";

/// The server binary next to this example's own target directory, built if
/// missing or stale (cargo decides, and shows its progress). The workspace
/// pins one feature set per dependency (crates/workspace-hack), so this build
/// and `cargo test --workspace` share every compiled dependency.
fn server_binary() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("DATAFRAME_MCP_BIN") {
        return Ok(PathBuf::from(path));
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("Building the dataframe-mcp server (the first build takes several minutes)…");
    let mut build = StdCommand::new(cargo);
    build.args(["build", "-p", "dataframe-mcp", "--bin", "dataframe-mcp"]);
    // `cargo run` gave this process the variables of its own package; some
    // build scripts (ring's) watch CARGO_MANIFEST_DIR, and would make this
    // build compile them again, and everything above them (polars).
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || [
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
            ]
            .contains(&&*name)
        {
            build.env_remove(&*name);
        }
    }
    let status = build
        .status()
        .context("running cargo build for the server")?;
    if !status.success() {
        bail!("building dataframe-mcp failed");
    }
    // target/<profile>/examples/quickstart → target/<profile>/dataframe-mcp
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(|p| p.parent())
        .context("unexpected example location")?;
    let bin = profile_dir.join(format!("dataframe-mcp{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        // `cargo run --release --example` builds the example in release but
        // the server above in debug: fall back to the debug binary.
        let debug = profile_dir
            .parent()
            .context("no target dir")?
            .join("debug")
            .join("dataframe-mcp");
        if debug.exists() {
            return Ok(debug);
        }
        bail!("server binary not found at {}", bin.display());
    }
    Ok(bin)
}

fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn step(title: &str, result: &CallToolResult) -> anyhow::Result<()> {
    println!("\n── {title} ──");
    let text = text_of(result);
    for line in text.lines().take(16) {
        println!("{line}");
    }
    if result.is_error == Some(true) {
        bail!("{title} failed: {text}");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bin = server_binary()?;
    let dir = tempfile::tempdir()?;
    let csv = dir.path().join("orders.csv");
    std::fs::write(&csv, MESSY_CSV)?;

    let mut command = Command::new(&bin);
    command
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--allow-dir")
        .arg(dir.path())
        .env("RUST_LOG", "warn");
    let client = ().serve(TokioChildProcess::new(command)?).await?;
    let info = client
        .peer_info()
        .and_then(|i| i.server_info.clone())
        .map(|s| format!("{} {}", s.name, s.version));
    println!("Connected to {}", info.unwrap_or_default());

    let call = |name: &'static str, args: Value| {
        let client = &client;
        async move {
            let args = match args {
                Value::Object(map) => map,
                _ => Default::default(),
            };
            client
                .call_tool(CallToolRequestParams::new(name).with_arguments(args))
                .await
                .with_context(|| format!("calling {name}"))
        }
    };

    let init = call(
        "initialize_data_table",
        object!({ "file_path": csv.to_string_lossy(), "decimal_comma": true }).into(),
    )
    .await?;
    step("initialize_data_table", &init)?;
    let structured = init
        .structured_content
        .clone()
        .context("no structured result")?;
    let session = structured["session_id"]
        .as_str()
        .context("no session id")?
        .to_string();
    let table = structured["tables"][0]["table"]
        .as_str()
        .context("no table")?
        .to_string();
    let id = |extra: Value| {
        let mut args = object!({ "session_id": session.clone(), "table": table.clone() });
        if let Value::Object(more) = extra {
            args.extend(more);
        }
        Value::Object(args)
    };

    step(
        "get_table_summary",
        &call("get_table_summary", id(Value::Null)).await?,
    )?;
    step(
        "fill_missing (price, median)",
        &call(
            "fill_missing",
            id(serde_json::json!({ "columns": ["price"], "strategy": "median" })),
        )
        .await?,
    )?;
    step(
        "preview_rows",
        &call("preview_rows", id(serde_json::json!({ "limit": 5 }))).await?,
    )?;
    step("undo", &call("undo", id(Value::Null)).await?)?;
    step("redo", &call("redo", id(Value::Null)).await?)?;
    step("get_history", &call("get_history", id(Value::Null)).await?)?;
    step(
        "validate (checks, changes nothing)",
        &call(
            "validate",
            id(serde_json::json!({ "rules": [
                { "column": "order_id", "rule": "unique" },
                { "column": "product", "rule": "not_null" },
                { "column": "price", "rule": "range", "min": 0, "max": 50 },
            ] })),
        )
        .await?,
    )?;
    step(
        "group_aggregate (into a new table)",
        &call(
            "group_aggregate",
            id(serde_json::json!({
                "by": ["region"],
                "aggregates": [{ "column": "price", "function": "sum" }, { "function": "count", "as": "orders" }],
                "save_as": "by_region",
            })),
        )
        .await?,
    )?;
    step(
        "plot (a PNG comes back as image content)",
        &call(
            "plot",
            id(serde_json::json!({ "kind": "bar", "x": "region" })),
        )
        .await?,
    )?;

    client.cancel().await?;
    println!(
        "\nDone. The session lived in {} (deleted now).",
        dir.path().join("data").display()
    );
    Ok(())
}
