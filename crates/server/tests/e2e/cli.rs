//! The binary's command line. (Its presence also makes `cargo test` build the
//! `dataframe-mcp` binary, which the end-to-end tests in `tests/` drive.)

use std::process::Command;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dataframe-mcp"))
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
    let out = Command::new(env!("CARGO_BIN_EXE_dataframe-mcp"))
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
