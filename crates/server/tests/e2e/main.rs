//! The real `dataframe-mcp` binary (built by cargo for this test, see
//! `CARGO_BIN_EXE_dataframe-mcp`): its command line, several processes on one
//! store, crashes, hostile calls under a memory cap, and a concurrency soak.
//! One test binary with modules: each test binary relinks polars.

mod cli;
mod hostile;
mod http;
mod live;
mod process;
mod soak;
mod tasks;

use std::path::Path;

use serde_json::{Value, json};
use tests::mcp::Server;

pub const SALES: &str =
    "id,region,price,quantity\n1,EU,10.0,3\n2,US,,1\n3,EU,30.0,\n4,APAC,20.0,2\n4,APAC,20.0,2\n";

/// The server binary under test.
pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_dataframe-mcp"))
}

/// A server process on `storage` and a client of it with its own handler
/// (to hear notifications, or to declare capabilities); also the pid.
pub async fn client_with<H: rmcp::ServiceExt<rmcp::RoleClient>>(
    storage: &tests::mcp::Storage,
    allow: &Path,
    handler: H,
) -> (rmcp::service::RunningService<rmcp::RoleClient, H>, u32) {
    let mut cmd = tokio::process::Command::new(bin());
    Server::configure(&mut cmd, Some(storage), allow, &[]);
    let (transport, _) = rmcp::transport::TokioChildProcess::builder(cmd)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn dataframe-mcp");
    let pid = transport.id().expect("pid");
    let client = tokio::time::timeout(std::time::Duration::from_secs(30), handler.serve(transport))
        .await
        .expect("initialize within 30 s")
        .expect("MCP initialize");
    (client, pid)
}

pub fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.to_string_lossy().into_owned()
}

pub fn ids(session: &str, table: &str) -> Value {
    json!({ "session_id": session, "table": table })
}

pub fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

pub async fn load_sales(server: &Server, dir: &Path) -> String {
    let file = write(dir, "sales.csv", SALES);
    let out = server
        .ok("initialize_data_table", json!({ "file_path": file }))
        .await;
    assert_eq!(out["tables"][0]["table"], "sales");
    assert_eq!(out["tables"][0]["rows"], 5);
    assert!(out["created_session"].as_bool().unwrap());
    out["session_id"].as_str().unwrap().to_string()
}

pub fn price_of_row(preview: &Value, row: usize) -> Value {
    let columns = preview["columns"].as_array().unwrap();
    let idx = columns.iter().position(|c| c["name"] == "price").unwrap();
    preview["rows"][row][idx].clone()
}
