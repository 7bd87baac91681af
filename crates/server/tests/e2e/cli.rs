//! The binary's command line, and how it starts and ends.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::bin;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin())
        .args(args)
        .output()
        .expect("run dataframe-mcp");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_explains_every_option_with_its_environment_variable() {
    let (ok, stdout, _) = run(&["--help"]);
    assert!(ok);
    for needle in [
        "--storage",
        "STORAGE_BACKEND",
        "--data-dir",
        "REDIS_URL",
        "SESSION_TTL_SECONDS",
        "HISTORY_LIMIT",
        "--allow-dir",
        "MAX_RESPONSE_TOKENS",
        "MAX_TABLE_BYTES",
        "[default: 86400]",
        "[default: 50]",
    ] {
        assert!(stdout.contains(needle), "--help lacks {needle}:\n{stdout}");
    }
}

#[test]
fn version_is_our_own() {
    let (ok, stdout, _) = run(&["--version"]);
    assert!(ok);
    assert_eq!(
        stdout.trim(),
        format!("dataframe-mcp {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_bad_flag_fails_with_a_message_on_stderr_not_stdout() {
    let (ok, stdout, stderr) = run(&["--storage", "floppy"]);
    assert!(!ok);
    assert!(stdout.is_empty(), "stdout is the MCP channel");
    assert!(
        stderr.contains("floppy") && stderr.contains("embedded"),
        "{stderr}"
    );
}

#[test]
fn an_unwritable_data_dir_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = Command::new(bin())
        .args(["--data-dir"])
        .arg(file.join("data"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("data directory"), "{stderr}");
    assert!(out.stdout.is_empty());
}

/// Waits for a child to exit (killing it after 30 s) and returns its status
/// and stderr.
fn finish(mut child: std::process::Child) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
            }
            return (status, stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not exit within 30 s of its input closing");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn() -> std::process::Child {
    Command::new(bin())
        .args(["--storage", "memory"])
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A client that goes away before saying anything: a normal end, exit 0.
#[test]
fn closing_stdin_at_once_is_a_clean_exit() {
    let mut child = spawn();
    drop(child.stdin.take());
    let (status, stderr) = finish(child);
    assert!(status.success(), "exit {status}: {stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
}

/// Regression: a client of the 2026-07-28 revision (no initialize
/// handshake) that discovers the server and closes stdin made it exit 1 with
/// "connection closed: initialize request".
#[test]
fn a_sessionless_client_that_closes_stdin_is_a_clean_exit() {
    let mut child = spawn();
    let mut stdin = child.stdin.take().unwrap();
    let request = serde_json::json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "server/discover",
        "params": { "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": { "name": "probe", "version": "1" }
        } }
    });
    writeln!(stdin, "{request}").unwrap();
    stdin.flush().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let reply: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(reply["id"], 1, "{line}");
    assert!(reply.get("result").is_some(), "{line}");
    drop(stdin);
    let (status, stderr) = finish(child);
    assert!(status.success(), "exit {status}: {stderr}");
    assert!(!stderr.contains("initialize request"), "{stderr}");
}

/// The real binary started read-only (by flag or by environment) lists no
/// tool that changes data: every tool it offers is annotated read-only,
/// except loading and SQL, whose save_as it refuses.
#[test]
fn read_only_hides_every_mutating_tool() {
    for (args, env) in [
        (&["--storage", "memory", "--read-only"][..], None),
        (
            &["--storage", "memory"][..],
            Some(("DATAFRAME_MCP_READ_ONLY", "true")),
        ),
    ] {
        let mut command = Command::new(bin());
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some((k, v)) = env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        for message in [
            serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": { "name": "probe", "version": "1" } } }),
            serde_json::json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
            serde_json::json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }),
        ] {
            writeln!(stdin, "{message}").unwrap();
        }
        stdin.flush().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let tools = loop {
            let mut line = String::new();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "no tools/list answer"
            );
            let reply: serde_json::Value = serde_json::from_str(&line).unwrap();
            if reply["id"] == 2 {
                break reply["result"]["tools"].as_array().unwrap().clone();
            }
        };
        drop(stdin);
        let (status, stderr) = finish(child);
        assert!(status.success(), "exit {status}: {stderr}");
        let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
        for tool in &tools {
            let name = tool["name"].as_str().unwrap();
            assert!(
                tool["annotations"]["readOnlyHint"] == true
                    || ["initialize_data_table", "query_sql"].contains(&name),
                "{name} is offered by a read-only server ({args:?} {env:?})"
            );
        }
        for reading in ["get_table_summary", "find_duplicates", "validate", "plot"] {
            assert!(names.contains(&reading), "{reading} missing: {names:?}");
        }
        assert!(names.len() < 20, "{names:?}");
    }
}
