//! End to end: the real binary over stdio, on every storage kind.

use std::path::Path;

use serde_json::{Value, json};

use crate::mcp::{Server, Storage};

const SALES: &str =
    "id,region,price,quantity\n1,EU,10.0,3\n2,US,,1\n3,EU,30.0,\n4,APAC,20.0,2\n4,APAC,20.0,2\n";

fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.to_string_lossy().into_owned()
}

fn ids(session: &str, table: &str) -> Value {
    json!({ "session_id": session, "table": table })
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

async fn load_sales(server: &Server, dir: &Path) -> String {
    let file = write(dir, "sales.csv", SALES);
    let out = server
        .ok("initialize_data_table", json!({ "file_path": file }))
        .await;
    assert_eq!(out["tables"][0]["table"], "sales");
    assert_eq!(out["tables"][0]["rows"], 5);
    assert!(out["created_session"].as_bool().unwrap());
    out["session_id"].as_str().unwrap().to_string()
}

fn price_of_row(preview: &Value, row: usize) -> Value {
    let columns = preview["columns"].as_array().unwrap();
    let idx = columns.iter().position(|c| c["name"] == "price").unwrap();
    preview["rows"][row][idx].clone()
}

/// initialize → summary → fill_missing → preview → undo → redo → history.
async fn full_flow(storage: Storage) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&storage, dir.path(), &[]).await;
    let session = load_sales(&server, dir.path()).await;
    let t = ids(&session, "sales");

    let summary = server.ok("get_table_summary", t.clone()).await;
    let columns = summary["summary"]["column_summaries"].as_array().unwrap();
    let price = columns.iter().find(|c| c["name"] == "price").unwrap();
    assert_eq!(price["missing"], 1);
    assert_eq!(price["numeric"]["mean"], 20.0);
    assert_eq!(summary["summary"]["duplicate_rows"], 2);

    let filled = server
        .ok(
            "fill_missing",
            with(
                t.clone(),
                json!({ "columns": ["price"], "strategy": "mean" }),
            ),
        )
        .await;
    assert_eq!(
        filled["summary"],
        "Filled 1 missing value in price with mean 20"
    );
    assert_eq!(filled["version"], 2);
    assert_eq!(filled["details"]["columns"][0]["filled"], 1);

    let preview = server.ok("preview_rows", t.clone()).await;
    assert_eq!(price_of_row(&preview, 1), json!(20.0));

    let undone = server.ok("undo", t.clone()).await;
    assert_eq!(undone["version"], 1);
    assert_eq!(undone["redo_steps"], 1);
    let preview = server.ok("preview_rows", t.clone()).await;
    assert_eq!(price_of_row(&preview, 1), Value::Null);

    let redone = server.ok("redo", t.clone()).await;
    assert_eq!(redone["version"], 2);
    let preview = server.ok("preview_rows", t.clone()).await;
    assert_eq!(price_of_row(&preview, 1), json!(20.0));

    let history = server.ok("get_history", t.clone()).await;
    let ops = history["operations"].as_array().unwrap();
    assert_eq!(ops.len(), 2);
    assert_eq!(ops[0]["action"], "initialize_data_table");
    assert_eq!(ops[1]["action"], "fill_missing");
    assert_eq!(ops[1]["parameters"]["strategy"], "mean");
    assert_eq!(ops[1]["status"], "current");
    assert_eq!(ops[1]["rows_before"], 5);
    assert_eq!(history["current_version"], 2);
    assert_eq!(history["can_undo"], true);
    assert_eq!(history["can_redo"], false);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_on_memory() {
    full_flow(Storage::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_on_embedded() {
    let dir = tempfile::tempdir().unwrap();
    full_flow(Storage::embedded(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_on_redis() {
    full_flow(Storage::redis()).await;
}

/// The public tool names, annotations and schemas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_are_listed_with_annotations_and_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&Storage::Memory, dir.path(), &[]).await;
    let info = server.client().peer_info().unwrap();
    let implementation = info.server_info.clone().expect("server info");
    assert_eq!(implementation.name, "dataframe-mcp");
    assert_eq!(implementation.version, env!("CARGO_PKG_VERSION"));
    assert!(
        info.instructions
            .as_deref()
            .unwrap_or("")
            .contains("initialize_data_table")
    );
    let tools = server.client().list_all_tools().await.unwrap();
    let mut names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    let mut expected = vec![
        "initialize_data_table",
        "inspect_file",
        "list_sessions",
        "list_tables",
        "rename_table",
        "drop_table",
        "delete_session",
        "get_table_summary",
        "preview_rows",
        "value_counts",
        "fill_missing",
        "drop_missing",
        "drop_duplicates",
        "mark_intentional_missing",
        "rename_columns",
        "drop_columns",
        "cast_columns",
        "filter_rows",
        "sort_rows",
        "undo",
        "redo",
        "get_history",
        "query_sql",
        "export_table",
    ];
    expected.sort();
    assert_eq!(names, expected);
    for tool in &tools {
        assert!(
            tool.output_schema.is_some(),
            "{} has no output schema",
            tool.name
        );
        let input = Value::Object(tool.input_schema.as_ref().clone());
        let output = Value::Object(tool.output_schema.as_ref().unwrap().as_ref().clone());
        assert_portable(&tool.name, &input);
        assert_portable(&tool.name, &output);
        assert!(
            tool.description.as_deref().is_some_and(|d| d.len() > 30),
            "{}",
            tool.name
        );
        let a = tool
            .annotations
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no annotations", tool.name));
        let read_only = [
            "inspect_file",
            "list_sessions",
            "list_tables",
            "get_table_summary",
            "preview_rows",
            "value_counts",
            "get_history",
        ];
        assert_eq!(
            a.read_only_hint == Some(true),
            read_only.contains(&tool.name.as_ref()),
            "{}",
            tool.name
        );
        let destructive = ["drop_table", "delete_session", "export_table"];
        if destructive.contains(&tool.name.as_ref()) {
            assert_eq!(a.destructive_hint, Some(true), "{}", tool.name);
        }
    }
    server.stop().await;
}

/// Schemas strict clients accept: one type per schema (no `["integer",
/// "null"]`), and no bare `true` / keyword-less schemas.
fn assert_portable(tool: &str, schema: &Value) {
    fn walk(tool: &str, path: &str, v: &Value) {
        match v {
            Value::Object(map) => {
                assert!(
                    !map.get("type").is_some_and(Value::is_array),
                    "{tool}: type array at {path}"
                );
                assert!(
                    map.get("items") != Some(&Value::Bool(true)),
                    "{tool}: bare true at {path}/items"
                );
                if let Some(Value::Object(props)) = map.get("properties") {
                    for (name, prop) in props {
                        assert!(prop.is_object(), "{tool}: bare schema at {path}/{name}");
                        let keywords = ["type", "$ref", "anyOf", "oneOf", "allOf", "enum", "const"];
                        assert!(
                            keywords.iter().any(|k| prop.get(k).is_some()),
                            "{tool}: {path}/{name} accepts anything: {prop}"
                        );
                    }
                }
                for (k, child) in map {
                    walk(tool, &format!("{path}/{k}"), child);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(tool, path, i)),
            _ => {}
        }
    }
    walk(tool, "", schema);
}

/// Every error case gives an isError result a model can act on, and the
/// server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_actionable_and_never_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&Storage::Memory, dir.path(), &[]).await;
    let session = load_sales(&server, dir.path()).await;
    let t = ids(&session, "sales");

    let e = server
        .err("get_table_summary", ids("no-such-session", "sales"))
        .await;
    assert!(
        e.contains("initialize_data_table") && e.contains(&session),
        "{e}"
    );

    let e = server.err("preview_rows", ids(&session, "sale")).await;
    assert!(e.contains("not found") && e.contains("sales"), "{e}");

    let e = server
        .err(
            "fill_missing",
            with(
                t.clone(),
                json!({ "columns": ["prise"], "strategy": "mean" }),
            ),
        )
        .await;
    assert!(e.contains("did you mean 'price'"), "{e}");

    let e = server
        .err(
            "fill_missing",
            with(
                t.clone(),
                json!({ "columns": ["region"], "strategy": "mean" }),
            ),
        )
        .await;
    assert!(e.contains("numeric") && e.contains("mode"), "{e}");

    let e = server
        .err(
            "filter_rows",
            with(t.clone(), json!({ "condition": "price >> 3 AND" })),
        )
        .await;
    assert!(e.contains("SQL") || e.contains("sql"), "{e}");

    let e = server
        .err(
            "query_sql",
            json!({ "session_id": session, "sql": "SELECT * FROM read_csv('/etc/passwd')" }),
        )
        .await;
    assert!(e.contains("refused") && e.contains("read_csv"), "{e}");

    let e = server
        .err(
            "query_sql",
            json!({ "session_id": session, "sql": "SELEC price FROM sales" }),
        )
        .await;
    assert!(e.to_lowercase().contains("sql"), "{e}");

    let e = server
        .err(
            "initialize_data_table",
            json!({ "file_path": "/etc/passwd" }),
        )
        .await;
    assert!(e.contains("outside") && e.contains("--allow-dir"), "{e}");

    let e = server
        .err(
            "initialize_data_table",
            json!({ "file_path": dir.path().join("missing.csv") }),
        )
        .await;
    assert!(e.contains("not found"), "{e}");

    let e = server
        .err(
            "export_table",
            with(t.clone(), json!({ "path": "/tmp/../etc/out.csv" })),
        )
        .await;
    assert!(e.contains("outside") || e.contains("does not exist"), "{e}");

    // Arguments that do not match the schema: an error result, not a crash.
    let e = server.err("fill_missing", t.clone()).await;
    assert!(e.contains("strategy"), "{e}");
    let e = server
        .err("sort_rows", with(t.clone(), json!({ "by": "price" })))
        .await;
    assert!(!e.is_empty());

    let e = server.err("undo", t.clone()).await;
    assert!(e.contains("first version"), "{e}");

    let e = server
        .err(
            "cast_columns",
            with(
                t.clone(),
                json!({ "casts": { "region": "float" }, "strict": true }),
            ),
        )
        .await;
    assert!(
        e.contains("cannot be converted") && e.contains("'EU'"),
        "{e}"
    );

    // Still alive and consistent.
    let preview = server.ok("preview_rows", t.clone()).await;
    assert_eq!(preview["total_rows"], 5);
    server.stop().await;
}

/// The transformations, through the protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleaning_and_transforming_tools() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&Storage::Memory, dir.path(), &[]).await;
    let session = load_sales(&server, dir.path()).await;
    let t = ids(&session, "sales");

    let d = server.ok("drop_duplicates", t.clone()).await;
    assert_eq!(
        (d["rows_before"].as_u64(), d["rows_after"].as_u64()),
        (Some(5), Some(4))
    );
    let m = server
        .ok(
            "mark_intentional_missing",
            with(t.clone(), json!({ "columns": ["quantity"], "condition": "id = 3", "reason": "not ordered yet" })),
        )
        .await;
    assert_eq!(m["details"]["columns"][0]["changed"], 1);
    assert_eq!(m["columns_after"], 4, "marks are not visible columns");
    let f = server
        .ok(
            "fill_missing",
            with(t.clone(), json!({ "strategy": "zero" })),
        )
        .await;
    let qty = f["details"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["column"] == "quantity")
        .unwrap()
        .clone();
    assert_eq!(qty["intentional_kept"], 1);
    let summary = server
        .ok(
            "get_table_summary",
            with(t.clone(), json!({ "columns": ["quantity"] })),
        )
        .await;
    assert_eq!(
        summary["summary"]["column_summaries"][0]["intentional_missing"],
        1
    );
    assert_eq!(
        summary["intentional_missing_reasons"]["quantity"],
        "not ordered yet"
    );

    server
        .ok(
            "rename_columns",
            with(t.clone(), json!({ "mapping": { "quantity": "qty" } })),
        )
        .await;
    let c = server
        .ok(
            "cast_columns",
            with(t.clone(), json!({ "casts": { "id": "string" } })),
        )
        .await;
    assert_eq!(c["details"]["columns"][0]["to"], "str");
    let f = server
        .ok(
            "filter_rows",
            with(t.clone(), json!({ "condition": "region <> 'US'" })),
        )
        .await;
    assert_eq!(f["rows_after"], 3);
    let s = server
        .ok(
            "sort_rows",
            with(
                t.clone(),
                json!({ "by": [{ "column": "price", "descending": true }] }),
            ),
        )
        .await;
    assert!(s["summary"].as_str().unwrap().contains("price descending"));
    let p = server
        .ok(
            "preview_rows",
            with(t.clone(), json!({ "columns": ["price", "qty"] })),
        )
        .await;
    assert_eq!(
        p["rows"][0],
        json!([30.0, null]),
        "the marked null is still there, sorted first"
    );
    let v = server
        .ok(
            "value_counts",
            with(t.clone(), json!({ "column": "region" })),
        )
        .await;
    assert_eq!(v["counts"]["values"][0]["value"], "EU");
    server
        .ok(
            "drop_columns",
            with(t.clone(), json!({ "columns": ["qty"] })),
        )
        .await;
    let dm = server.ok("drop_missing", t.clone()).await;
    assert_eq!(dm["rows_after"], 3);

    // SQL with save_as, then the new table has its own history.
    let q = server
        .ok(
            "query_sql",
            json!({ "session_id": session, "sql": "SELECT region, SUM(price) AS total FROM sales GROUP BY region ORDER BY region", "save_as": "totals" }),
        )
        .await;
    assert_eq!(q["saved_as"], "totals");
    assert_eq!(q["rows"], json!([["APAC", 20.0], ["EU", 40.0]]));
    let tables = server
        .ok("list_tables", json!({ "session_id": session }))
        .await;
    assert_eq!(tables["tables"].as_array().unwrap().len(), 2);
    let h = server.ok("get_history", ids(&session, "totals")).await;
    assert_eq!(h["operations"][0]["action"], "query_sql");

    // Export and load back.
    let out = dir.path().join("out.parquet");
    let e = server
        .ok("export_table", with(t.clone(), json!({ "path": out })))
        .await;
    assert_eq!(e["rows"], 3);
    let again = server
        .err("export_table", with(t.clone(), json!({ "path": out })))
        .await;
    assert!(again.contains("overwrite"), "{again}");
    server
        .ok(
            "export_table",
            with(t.clone(), json!({ "path": out, "overwrite": true })),
        )
        .await;
    let back = server
        .ok(
            "initialize_data_table",
            json!({ "file_path": out, "session_id": session, "table_name": "reloaded" }),
        )
        .await;
    assert_eq!(back["tables"][0]["rows"], 3);
    assert_eq!(back["created_session"], false);
    let csv_out = dir.path().join("out.csv");
    server
        .ok("export_table", with(t.clone(), json!({ "path": csv_out })))
        .await;
    let csv = std::fs::read_to_string(&csv_out).unwrap();
    assert!(csv.starts_with("id,region,price\n"), "{csv}");

    server
        .ok(
            "rename_table",
            json!({ "session_id": session, "table": "reloaded", "new_name": "final" }),
        )
        .await;
    server.ok("drop_table", ids(&session, "final")).await;
    server
        .ok("delete_session", json!({ "session_id": session }))
        .await;
    let sessions = server.ok("list_sessions", json!({})).await;
    assert!(
        !sessions["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["session_id"] == session)
    );
    server.stop().await;
}

/// Results stay under the response cap and say how to page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_are_bounded_and_paged() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::new();
    let cols = 60;
    csv.push_str(
        &(0..cols)
            .map(|c| format!("column_{c}"))
            .collect::<Vec<_>>()
            .join(","),
    );
    csv.push('\n');
    for r in 0..3000 {
        csv.push_str(
            &(0..cols)
                .map(|c| format!("value-{r}-{c}-{}", "x".repeat(20)))
                .collect::<Vec<_>>()
                .join(","),
        );
        csv.push('\n');
    }
    let file = write(dir.path(), "wide.csv", &csv);
    let server = Server::start(
        &Storage::Memory,
        dir.path(),
        &["--max-response-tokens", "5000"],
    )
    .await;
    let out = server
        .ok("initialize_data_table", json!({ "file_path": file }))
        .await;
    let session = out["session_id"].as_str().unwrap().to_string();
    let t = ids(&session, "wide");

    let result = server
        .call("preview_rows", with(t.clone(), json!({ "limit": 500 })))
        .await;
    let size = crate::mcp::text(&result).len()
        + result
            .structured_content
            .as_ref()
            .unwrap()
            .to_string()
            .len();
    assert!(size <= 5000 * 4, "preview is {size} characters");
    let preview = result.structured_content.unwrap();
    assert_eq!(preview["truncated"], true);
    let shown = preview["rows"].as_array().unwrap().len();
    assert!((1..500).contains(&shown), "{shown}");
    assert!(
        preview["next"]
            .as_str()
            .unwrap()
            .contains(&format!("offset={shown}"))
    );
    let next = server
        .ok(
            "preview_rows",
            with(t.clone(), json!({ "offset": shown, "limit": 1 })),
        )
        .await;
    assert_eq!(next["offset"], shown);

    let summary = server.ok("get_table_summary", t.clone()).await;
    assert_eq!(
        summary["summary"]["column_summaries"]
            .as_array()
            .unwrap()
            .len(),
        25
    );
    assert_eq!(summary["summary"]["next_column_offset"], 25);

    let q = server
        .ok(
            "query_sql",
            json!({ "session_id": session, "sql": "SELECT * FROM wide", "limit": 1000 }),
        )
        .await;
    assert_eq!(q["truncated"], true);
    server.stop().await;
}

/// Stop the server, start a new one: the session, its history and undo are there.
async fn restart_keeps_sessions(storage: Storage) {
    let dir = tempfile::tempdir().unwrap();
    let first = Server::start(&storage, dir.path(), &[]).await;
    let session = load_sales(&first, dir.path()).await;
    let t = ids(&session, "sales");
    first
        .ok(
            "fill_missing",
            with(t.clone(), json!({ "strategy": "forward" })),
        )
        .await;
    first.ok("drop_duplicates", t.clone()).await;
    first.stop().await;

    let second = Server::start(&storage, dir.path(), &[]).await;
    let sessions = second.ok("list_sessions", json!({})).await;
    assert!(
        sessions["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["session_id"] == session)
    );
    let history = second.ok("get_history", t.clone()).await;
    assert_eq!(history["operations"].as_array().unwrap().len(), 3);
    assert_eq!(history["current_version"], 3);
    let undone = second.ok("undo", t.clone()).await;
    assert_eq!(
        undone["rows"], 5,
        "undoing drop_duplicates brings the duplicate back"
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_sessions_on_redis() {
    restart_keeps_sessions(Storage::redis()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_sessions_on_embedded() {
    let dir = tempfile::tempdir().unwrap();
    restart_keeps_sessions(Storage::embedded(dir.path())).await;
}

/// With no configuration but the data dir, a restarted server finds the
/// session: the embedded store is the default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_is_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_string_lossy().into_owned();
    let a = Server::start_raw(dir.path(), &["--data-dir", &data_arg]).await;
    let session = load_sales(&a, dir.path()).await;
    a.ok(
        "fill_missing",
        with(ids(&session, "sales"), json!({ "strategy": "backward" })),
    )
    .await;
    a.stop().await;
    let b = Server::start_raw(dir.path(), &["--data-dir", &data_arg]).await;
    let tables = b.ok("list_tables", json!({ "session_id": session })).await;
    assert_eq!(tables["tables"][0]["table"], "sales");
    assert_eq!(tables["tables"][0]["version"], 2);
    b.ok("undo", ids(&session, "sales")).await;
    b.stop().await;
    assert!(data.join("store.sqlite3").exists());
}

/// Two servers on one store: A loads, B fills, A sees it and undoes it.
async fn two_servers_share_state(storage: Storage) {
    let dir = tempfile::tempdir().unwrap();
    let a = Server::start(&storage, dir.path(), &[]).await;
    let b = Server::start(&storage, dir.path(), &[]).await;
    let session = load_sales(&a, dir.path()).await;
    let t = ids(&session, "sales");
    b.ok(
        "fill_missing",
        with(
            t.clone(),
            json!({ "columns": ["price"], "strategy": "constant", "value": 99 }),
        ),
    )
    .await;
    let preview = a.ok("preview_rows", t.clone()).await;
    assert_eq!(price_of_row(&preview, 1), json!(99.0));
    let undone = a.ok("undo", t.clone()).await;
    assert_eq!(
        undone["moved"][0],
        "Filled 1 missing value in price with constant 99"
    );
    let preview = b.ok("preview_rows", t.clone()).await;
    assert_eq!(price_of_row(&preview, 1), Value::Null);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_state_on_redis() {
    two_servers_share_state(Storage::redis()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_state_on_embedded() {
    let dir = tempfile::tempdir().unwrap();
    two_servers_share_state(Storage::embedded(dir.path())).await;
}

/// Two processes fill different columns of one table at the same time; both
/// changes are kept (the loser of the compare-and-set re-applies).
async fn concurrent_fills_from_two_processes(storage: Storage) {
    let dir = tempfile::tempdir().unwrap();
    let a = Server::start(&storage, dir.path(), &[]).await;
    let b = Server::start(&storage, dir.path(), &[]).await;
    let session = load_sales(&a, dir.path()).await;
    let t = ids(&session, "sales");
    for round in 0..5 {
        let (ra, rb) = tokio::join!(
            a.call(
                "fill_missing",
                with(
                    t.clone(),
                    json!({ "columns": ["price"], "strategy": "constant", "value": round })
                )
            ),
            b.call(
                "fill_missing",
                with(
                    t.clone(),
                    json!({ "columns": ["quantity"], "strategy": "constant", "value": round })
                )
            )
        );
        assert_ne!(ra.is_error, Some(true), "{}", crate::mcp::text(&ra));
        assert_ne!(rb.is_error, Some(true), "{}", crate::mcp::text(&rb));
        let summary = a.ok("get_table_summary", t.clone()).await;
        for c in summary["summary"]["column_summaries"].as_array().unwrap() {
            assert_eq!(
                c["missing"], 0,
                "round {round}: {} lost its fill",
                c["name"]
            );
        }
        // Reset both columns for the next round.
        a.ok("undo", with(t.clone(), json!({ "steps": 2 }))).await;
    }
    let history = a.ok("get_history", t.clone()).await;
    assert_eq!(history["current_version"], 1);
    let discarded = history["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["status"] == "undone (redoable)" || o["status"] == "discarded")
        .count();
    assert_eq!(discarded, 10, "every fill was committed once");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_fills_from_two_processes_on_redis() {
    concurrent_fills_from_two_processes(Storage::redis()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_fills_from_two_processes_on_embedded() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_fills_from_two_processes(Storage::embedded(dir.path())).await;
}

/// Copying tables between sessions, and loading a workbook with a bad sheet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workbooks_and_copies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("book.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let s1 = book.add_worksheet().set_name("Orders").unwrap();
    s1.write_row(0, 0, ["id", "amount"]).unwrap();
    s1.write_row(1, 0, [1.0, 9.5]).unwrap();
    s1.write_row(2, 0, [2.0, 7.25]).unwrap();
    book.add_worksheet().set_name("Empty").unwrap();
    let s3 = book.add_worksheet().set_name("Clients 2024").unwrap();
    s3.write_row(0, 0, ["name", "city"]).unwrap();
    s3.write_row(1, 0, ["Ana", "Lisbon"]).unwrap();
    book.save(&path).unwrap();

    let server = Server::start(&Storage::Memory, dir.path(), &[]).await;
    let out = server
        .ok(
            "initialize_data_table",
            json!({ "file_path": path, "session_id": "books" }),
        )
        .await;
    let names: Vec<&str> = out["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["table"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Orders", "Clients_2024"]);
    assert_eq!(out["problems"][0]["source"], "sheet 'Empty'");
    assert_eq!(out["session_id"], "books");

    let copy = server
        .ok(
            "initialize_data_table",
            json!({ "source_session_id": "books", "source_tables": ["Orders"] }),
        )
        .await;
    let copied_session = copy["session_id"].as_str().unwrap();
    assert_ne!(copied_session, "books");
    assert_eq!(copy["tables"][0]["rows"], 2);
    let preview = server
        .ok("preview_rows", ids(copied_session, "Orders"))
        .await;
    assert_eq!(preview["rows"][1], json!([2, 7.25]));
    // Table names keep their case in SQL, and names can be quoted.
    let q = server
        .ok(
            "query_sql",
            json!({ "session_id": "books", "sql": "SELECT SUM(amount) AS total FROM Orders" }),
        )
        .await;
    assert_eq!(q["rows"], json!([[16.75]]));
    let q = server
        .ok(
            "query_sql",
            json!({ "session_id": "books", "sql": "SELECT COUNT(*) AS n FROM \"Clients_2024\"" }),
        )
        .await;
    assert_eq!(q["rows"], json!([[1]]));
    let err = server
        .err(
            "initialize_data_table",
            json!({ "file_path": path, "session_id": "books", "sheets": ["Nope"] }),
        )
        .await;
    assert!(err.contains("Orders") && err.contains("Nope"), "{err}");
    server.stop().await;
}

/// Several server processes do read-modify-commit on one table at once, each
/// removing its own rows: a lost update would bring rows back. Every change
/// is kept and the history is linear.
async fn no_lost_updates_across_processes(storage: Storage) {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,v\n");
    for i in 0..100 {
        csv.push_str(&format!("{i},{}\n", i * 10));
    }
    let file = write(dir.path(), "rows.csv", &csv);
    let first = Server::start(&storage, dir.path(), &[]).await;
    let out = first
        .ok(
            "initialize_data_table",
            json!({ "file_path": file, "session_id": "race" }),
        )
        .await;
    assert_eq!(out["tables"][0]["rows"], 100);
    let mut servers = vec![first];
    for _ in 0..2 {
        servers.push(Server::start(&storage, dir.path(), &[]).await);
    }
    let per_process = 4;
    let work = servers.iter().enumerate().map(|(p, server)| async move {
        for k in 0..per_process {
            let id = p * 10 + k;
            let r = server
                .call("filter_rows", json!({ "session_id": "race", "table": "rows", "condition": format!("id <> {id}") }))
                .await;
            assert_ne!(r.is_error, Some(true), "process {p}: {}", crate::mcp::text(&r));
        }
    });
    futures::future::join_all(work).await;
    let check = &servers[0];
    let removed: Vec<usize> = (0..servers.len())
        .flat_map(|p| (0..per_process).map(move |k| p * 10 + k))
        .collect();
    let q = check
        .ok("query_sql", json!({ "session_id": "race", "sql": "SELECT COUNT(*) AS n, SUM(v) AS total FROM rows" }))
        .await;
    let expected_total: usize = (0..100)
        .filter(|i| !removed.contains(i))
        .map(|i| i * 10)
        .sum();
    assert_eq!(q["rows"][0], json!([100 - removed.len(), expected_total]));
    let history = check
        .ok(
            "get_history",
            json!({ "session_id": "race", "table": "rows", "limit": 100 }),
        )
        .await;
    let versions: Vec<u64> = history["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, (1..=removed.len() as u64 + 1).collect::<Vec<_>>());
    assert!(
        history["operations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["status"] != "discarded")
    );
    for server in servers {
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_lost_updates_across_processes_on_redis() {
    no_lost_updates_across_processes(Storage::redis()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_lost_updates_across_processes_on_embedded() {
    let dir = tempfile::tempdir().unwrap();
    no_lost_updates_across_processes(Storage::embedded(dir.path())).await;
}
