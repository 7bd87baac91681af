//! The tool handlers, in process: a server built from command-line flags,
//! driven by rmcp's client over an in-memory pipe, on every storage kind.
//! (The real binary is driven by the server package's end-to-end tests.)

use std::path::Path;

use clap::Parser;
use dfmcp_server::Cli;
use serde_json::{Value, json};
use tests::mcp::{Server, Storage, text};

/// A server built exactly as the binary builds it from these flags.
async fn serve(storage: &Storage, allow: &Path, extra: &[&str]) -> Server {
    let mut args: Vec<String> = vec!["dataframe-mcp".into(), "--allow-dir".into()];
    args.push(allow.display().to_string());
    match storage {
        Storage::Memory => args.extend(["--storage".into(), "memory".into()]),
        Storage::Embedded(dir) => {
            args.extend(["--storage".into(), "embedded".into(), "--data-dir".into()]);
            args.push(dir.display().to_string());
        }
        Storage::Redis { url, prefix } => {
            args.extend([
                "--storage".into(),
                "redis".into(),
                "--redis-url".into(),
                url.clone(),
                "--redis-prefix".into(),
                prefix.clone(),
            ]);
        }
        Storage::RedisCluster { urls, prefix } => {
            args.extend([
                "--storage".into(),
                "redis".into(),
                "--redis-cluster".into(),
                "--redis-url".into(),
                urls.clone(),
                "--redis-prefix".into(),
                prefix.clone(),
            ]);
        }
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let config = Cli::try_parse_from(args).expect("flags").config;
    let server = dfmcp_server::build(&config, "stdio").await.expect("build");
    Server::in_process(server).await
}

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
    let server = serve(&storage, dir.path(), &[]).await;
    let session = load_sales(&server, dir.path()).await;
    let t = ids(&session, "sales");

    let summary = server.ok("get_table_summary", t.clone()).await;
    let columns = summary["column_summaries"].as_array().unwrap();
    let price = columns.iter().find(|c| c["name"] == "price").unwrap();
    assert_eq!(price["missing"], 1);
    assert_eq!(price["numeric"]["mean"], 20.0);
    assert_eq!(summary["duplicate_rows"], 2);

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
    let server = serve(&Storage::Memory, dir.path(), &[]).await;
    let info = server.client().peer_info().unwrap();
    let implementation = info.server_info.clone().expect("server info");
    assert_eq!(implementation.name, "dataframe-mcp");
    assert_eq!(implementation.version, env!("CARGO_PKG_VERSION"));
    assert!(implementation.title.is_some() && implementation.website_url.is_some());
    let icon = &implementation.icons.as_ref().expect("an icon")[0];
    assert!(
        icon.src.starts_with("data:image/svg+xml;base64,"),
        "{}",
        icon.src
    );
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
        "add_column",
        "update_column",
        "undo",
        "redo",
        "get_history",
        "export_recipe",
        "apply_recipe",
        "query_sql",
        "export_table",
        "health",
        "clean_text",
        "parse_dates",
        "split_column",
        "merge_columns",
        "find_outliers",
        "find_duplicates",
        "merge_duplicates",
        "validate",
        "group_aggregate",
        "pivot",
        "unpivot",
        "join_tables",
        "plot",
    ];
    expected.sort();
    assert_eq!(names, expected);
    // Output schemas only where the structure is what a client reads; a
    // change's shape is the same for every mutating tool and said once in
    // the instructions.
    let with_output = [
        "get_table_summary",
        "preview_rows",
        "value_counts",
        "query_sql",
    ];
    for tool in &tools {
        assert_eq!(
            tool.output_schema.is_some(),
            with_output.contains(&tool.name.as_ref()),
            "{}",
            tool.name
        );
        let input = Value::Object(tool.input_schema.as_ref().clone());
        assert_portable(&tool.name, &input);
        if let Some(output) = &tool.output_schema {
            assert_portable(&tool.name, &Value::Object(output.as_ref().clone()));
        }
        // References would need a $defs the lean schemas no longer carry.
        assert!(
            !input.to_string().contains("$ref"),
            "{} has a $ref",
            tool.name
        );
        assert!(
            tool.description.as_deref().is_some_and(|d| d.len() > 30),
            "{}",
            tool.name
        );
        assert!(
            tool.title.as_deref().is_some_and(|t| !t.is_empty()),
            "{} has no title",
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
            "health",
            "find_duplicates",
            "validate",
            "plot",
        ];
        assert_eq!(
            a.read_only_hint == Some(true),
            read_only.contains(&tool.name.as_ref()),
            "{}",
            tool.name
        );
        let destructive = [
            "drop_table",
            "delete_session",
            "export_table",
            "export_recipe",
        ];
        if destructive.contains(&tool.name.as_ref()) {
            assert_eq!(a.destructive_hint, Some(true), "{}", tool.name);
        }
    }
    // What a client reads before its first call: the whole tools/list answer
    // stays within 32,000 characters of JSON (about 8k tokens).
    let answer = serde_json::to_string(&json!({
        "jsonrpc": "2.0",
        "id": 2,
        "result": rmcp::model::ListToolsResult::with_all_items(tools.clone()),
    }))
    .unwrap();
    assert!(
        answer.len() <= 32_000,
        "tools/list is {} characters of JSON, over the 32,000 budget",
        answer.len()
    );
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
    let server = serve(&Storage::Memory, dir.path(), &[]).await;
    let session = load_sales(&server, dir.path()).await;
    let t = ids(&session, "sales");

    let e = server
        .err("get_table_summary", ids("no-such-session", "sales"))
        .await;
    assert!(
        e.contains("initialize_data_table") && e.contains("list_sessions"),
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
        .err("sort_rows", with(t.clone(), json!({ "by": 7 })))
        .await;
    assert!(e.contains("`by`"), "{e}");

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
    let server = serve(&Storage::Memory, dir.path(), &[]).await;
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
    assert_eq!(summary["column_summaries"][0]["intentional_missing"], 1);
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
    assert_eq!(v["values"][0]["value"], "EU");
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
    let server = serve(
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
    let size = text(&result).len()
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
    assert_eq!(summary["column_summaries"].as_array().unwrap().len(), 25);
    assert_eq!(summary["next_column_offset"], 25);

    let q = server
        .ok(
            "query_sql",
            json!({ "session_id": session, "sql": "SELECT * FROM wide", "limit": 1000 }),
        )
        .await;
    assert_eq!(q["truncated"], true);
    server.stop().await;
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

    let server = serve(&Storage::Memory, dir.path(), &[]).await;
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

/// Defects 3 and 4: a client's request id makes a retry a retry (for
/// changes, undo and loads), reusing it for something else is refused, and
/// an expected version guards a change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_and_expected_versions() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&Storage::Memory, dir.path(), &[]).await;
    let session = load_sales(&server, dir.path()).await;
    let t = ids(&session, "sales");
    let fill = with(
        t.clone(),
        json!({ "columns": ["price"], "strategy": "zero", "request_id": "req-1" }),
    );
    let first = server.ok("fill_missing", fill.clone()).await;
    assert_eq!(first["version"], 2);
    let again = server.call("fill_missing", fill).await;
    assert_ne!(again.is_error, Some(true), "a retry is a success");
    let again_value = again.structured_content.clone().unwrap();
    assert_eq!(again_value["already_applied"], true);
    assert_eq!(again_value["version"], 2);
    assert!(
        text(&again).contains("already been applied"),
        "{}",
        text(&again)
    );
    let reused = server
        .err(
            "drop_duplicates",
            with(t.clone(), json!({ "request_id": "req-1" })),
        )
        .await;
    assert!(
        reused.contains("req-1") && reused.contains("new request_id"),
        "{reused}"
    );

    let stale = server
        .err(
            "drop_duplicates",
            with(t.clone(), json!({ "expected_version": 1 })),
        )
        .await;
    assert!(
        stale.contains("version 2, not 1") && stale.contains("fill_missing"),
        "{stale}"
    );
    server
        .ok(
            "drop_duplicates",
            with(t.clone(), json!({ "expected_version": 2 })),
        )
        .await;

    let undo = with(t.clone(), json!({ "request_id": "undo-1" }));
    let u1 = server.ok("undo", undo.clone()).await;
    let u2 = server.ok("undo", undo).await;
    assert_eq!(u1["version"], 2);
    assert_eq!(u2["already_applied"], true);
    assert_eq!(u2["version"], 2, "undone once");

    // A retried load lands in the same session and loads nothing twice.
    let file = write(dir.path(), "again.csv", "a,b\n1,2\n");
    let load = json!({ "file_path": file, "request_id": "load-77" });
    let l1 = server.ok("initialize_data_table", load.clone()).await;
    let l2 = server.ok("initialize_data_table", load).await;
    assert_eq!(l1["session_id"], l2["session_id"]);
    assert_eq!(l2["already_applied"], true);
    let tables = server
        .ok("list_tables", json!({ "session_id": l1["session_id"] }))
        .await;
    assert_eq!(tables["tables"].as_array().unwrap().len(), 1);
    server.stop().await;
}

/// A change that changes nothing makes no version, and undo still takes
/// back the last real change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_that_change_nothing_make_no_version() {
    for storage in [Storage::Memory, Storage::redis()] {
        let dir = tempfile::tempdir().unwrap();
        let server = serve(&storage, dir.path(), &[]).await;
        let session = load_sales(&server, dir.path()).await;
        let t = ids(&session, "sales");
        let fill = with(
            t.clone(),
            json!({ "columns": ["price"], "strategy": "mean" }),
        );
        assert_eq!(server.ok("fill_missing", fill.clone()).await["version"], 2);
        for (tool, args) in [
            ("fill_missing", fill.clone()),
            (
                "filter_rows",
                with(t.clone(), json!({ "condition": "id > 0" })),
            ),
            (
                "rename_columns",
                with(t.clone(), json!({ "mapping": { "id": "id" } })),
            ),
            (
                "cast_columns",
                with(t.clone(), json!({ "casts": { "region": "string" } })),
            ),
            ("sort_rows", with(t.clone(), json!({ "by": ["id"] }))),
            (
                "update_column",
                with(
                    t.clone(),
                    json!({ "column": "region", "expression": "region", "where": "id > 2" }),
                ),
            ),
        ] {
            let r = server.call(tool, args).await;
            let value = r.structured_content.clone().unwrap();
            assert_eq!(value["changed"], false, "{tool}: {}", text(&r));
            assert_eq!(value["version"], 2, "{tool}");
            assert!(text(&r).contains("no version was made"), "{}", text(&r));
        }
        let undone = server.ok("undo", t.clone()).await;
        assert_eq!(undone["version"], 1);
        let preview = server.ok("preview_rows", t.clone()).await;
        assert_eq!(
            price_of_row(&preview, 1),
            Value::Null,
            "the missing value is back"
        );
        // Once the duplicate row is gone, dropping duplicates again is a no-op.
        let dropped = server.ok("drop_duplicates", t.clone()).await;
        assert_eq!(dropped["changed"], true);
        let r = server.call("drop_duplicates", t.clone()).await;
        let value = r.structured_content.clone().unwrap();
        assert_eq!(value["changed"], false, "{}", text(&r));
        assert_eq!(value["version"], dropped["version"]);
        assert!(text(&r).contains("no version was made"), "{}", text(&r));
        server.stop().await;
    }
}

/// Defect 11: with the data directory inside an allowed directory, an
/// export could overwrite the store and a load could read its files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_is_out_of_reach() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = serve(&Storage::Embedded(data.clone()), dir.path(), &[]).await;
    let session = load_sales(&server, dir.path()).await;
    let t = ids(&session, "sales");
    let db = data.join("store.sqlite3");
    let e = server
        .err(
            "export_table",
            with(t.clone(), json!({ "path": db, "overwrite": true })),
        )
        .await;
    assert!(e.contains("data directory"), "{e}");
    let e = server
        .err("initialize_data_table", json!({ "file_path": db }))
        .await;
    assert!(e.contains("data directory"), "{e}");
    // The store is intact.
    server.ok("preview_rows", t).await;
    server.stop().await;
}

/// Defect 5 in process: queries and loads that would exhaust memory or the
/// stack are refused with the limit that stopped them, and the server goes
/// on (the real binary under a memory cap is tested by the server package).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_calls_are_refused_with_their_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&Storage::Memory, dir.path(), &[]).await;
    let mut csv = String::from("id,g,s\n");
    for i in 0..30_000 {
        csv.push_str(&format!("{i},{},abcdefgh\n", i % 3));
    }
    let file = write(dir.path(), "t.csv", &csv);
    let out = server
        .ok("initialize_data_table", json!({ "file_path": file }))
        .await;
    let session = out["session_id"].as_str().unwrap().to_string();
    let sql = |q: &str| json!({ "session_id": session, "sql": q });
    for (query, limit) in [
        (
            "SELECT COUNT(*) FROM t a CROSS JOIN t b",
            "--max-query-rows",
        ),
        (
            "SELECT COUNT(*) FROM t a JOIN t b ON a.g = b.g",
            "--max-query-rows",
        ),
        ("SELECT lpad(s, 1000000000) FROM t", "--max-query-bytes"),
    ] {
        let e = server.err("query_sql", sql(query)).await;
        assert!(e.contains(limit), "{query}: {e}");
    }
    let union = vec!["SELECT 1 AS x"; 1000].join(" UNION ALL ");
    let e = server.err("query_sql", sql(&union)).await;
    assert!(e.contains("UNION"), "{e}");
    let ors = (0..100_000)
        .map(|i| format!("id = {i}"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let e = server
        .err(
            "filter_rows",
            with(ids(&session, "t"), json!({ "condition": ors })),
        )
        .await;
    assert!(e.contains("IN ("), "{e}");
    let deep = write(
        dir.path(),
        "deep.json",
        &format!("[{{\"a\": {}1{}}}]", "[".repeat(10_000), "]".repeat(10_000)),
    );
    let e = server
        .err("initialize_data_table", json!({ "file_path": deep }))
        .await;
    assert!(e.contains("levels deep"), "{e}");
    let e = server
        .err(
            "initialize_data_table",
            json!({ "file_path": file, "skip_rows": 1_000_000_000_000_000u64 }),
        )
        .await;
    assert!(e.contains("skip"), "{e}");
    // Regression: at its maximum, value_counts said "raise limit".
    let v = server
        .call(
            "value_counts",
            with(
                ids(&session, "t"),
                json!({ "column": "id", "limit": 100_000 }),
            ),
        )
        .await;
    assert!(text(&v).contains("GROUP BY"), "{}", text(&v));
    // Regression: a result of millions of rows was reported as "of 1,001".
    let q = server
        .call(
            "query_sql",
            json!({ "session_id": session, "sql": "SELECT * FROM t", "limit": 5 }),
        )
        .await;
    assert!(text(&q).contains("of more than"), "{}", text(&q));
    assert!(q.structured_content.unwrap().get("total_rows").is_none());
    // Still serving.
    server.ok("preview_rows", ids(&session, "t")).await;
    server.stop().await;
}

/// Defect 15: file columns named like internal bookkeeping are renamed with
/// a note instead of vanishing, and a column named like a temporary name does
/// not break renames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_names_never_collide_with_user_columns() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&Storage::Memory, dir.path(), &[]).await;
    let file = write(
        dir.path(),
        "odd.csv",
        "__dfmcp_intentional_missing__id,__dfmcp_tmp_0,x\n1,2,3\n",
    );
    let out = server
        .ok("initialize_data_table", json!({ "file_path": file }))
        .await;
    let session = out["session_id"].as_str().unwrap().to_string();
    assert_eq!(out["tables"][0]["columns"], 3);
    let notes = out["tables"][0]["notes"].to_string();
    assert!(notes.contains("reserved"), "{notes}");
    let t = ids(&session, "odd");
    server
        .ok(
            "rename_columns",
            with(t.clone(), json!({ "mapping": { "x": "y" } })),
        )
        .await;
    let preview = server.ok("preview_rows", t).await;
    assert_eq!(preview["columns"].as_array().unwrap().len(), 3);
    server.stop().await;
}

/// The health tool reports what an operator needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&Storage::redis(), dir.path(), &[]).await;
    load_sales(&server, dir.path()).await;
    let health = server.ok("health", json!({})).await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["store_reachable"], true);
    assert_eq!(health["sessions"], 1);
    assert_eq!(health["transport"], "stdio");
    assert!(health["storage"].as_str().unwrap().contains("Redis"));
    server.stop().await;
}

/// Argument errors speak of the schema a model sees, and natural shorthands
/// are accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argument_errors_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&Storage::Memory, dir.path(), &[]).await;
    let session = load_sales(&server, dir.path()).await;
    let t = ids(&session, "sales");
    let sorted = server
        .ok("sort_rows", with(t.clone(), json!({ "by": ["price"] })))
        .await;
    assert!(sorted["summary"].as_str().unwrap().contains("price"));
    // One value where a list is wanted is a list of one.
    let filled = server
        .ok(
            "fill_missing",
            with(t.clone(), json!({ "columns": "price", "strategy": "zero" })),
        )
        .await;
    assert!(
        filled["summary"].as_str().unwrap().contains("price"),
        "{filled}"
    );
    let sorted = server
        .ok("sort_rows", with(t.clone(), json!({ "by": "quantity" })))
        .await;
    assert!(
        sorted["summary"].as_str().unwrap().contains("quantity"),
        "{sorted}"
    );
    let e = server
        .err("sort_rows", with(t.clone(), json!({ "by": [7] })))
        .await;
    assert!(
        e.contains("input schema") && !e.contains("SortKeyWire"),
        "{e}"
    );
    // The field, what it takes, what came and an example.
    assert!(
        e.contains("`by[0]` must be a string or an object {column, descending}, not a number 7"),
        "{e}"
    );
    assert!(e.contains("e.g. [\"region\""), "{e}");
    let e = server
        .err(
            "fill_missing",
            with(t.clone(), json!({ "strategy": "avg" })),
        )
        .await;
    assert!(e.contains("`strategy` must be one of \"mean\""), "{e}");
    let e = server
        .err(
            "fill_missing",
            with(t.clone(), json!({ "stratgy": "mean" })),
        )
        .await;
    assert!(e.contains("`strategy` is required"), "{e}");
    let e = server
        .err(
            "group_aggregate",
            with(t.clone(), json!({ "aggregates": [{ "column": "price", "function": "total" }], "save_as": "x" })),
        )
        .await;
    assert!(e.contains("`aggregates[0].function` must be one of"), "{e}");
    server.stop().await;
}

/// `--read-only` offers only the tools that read, loading, and SQL without
/// save_as; `--tools` and `--exclude-tools` narrow the list further, and an
/// unknown name stops the server from starting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_and_tool_lists_narrow_the_surface() {
    let dir = tempfile::tempdir().unwrap();
    let names = |tools: Vec<rmcp::model::Tool>| -> Vec<String> {
        let mut names: Vec<String> = tools.into_iter().map(|t| t.name.to_string()).collect();
        names.sort();
        names
    };
    let server = serve(&Storage::Memory, dir.path(), &["--read-only"]).await;
    let offered = names(server.client().list_all_tools().await.unwrap());
    for tool in server.client().list_all_tools().await.unwrap() {
        let reads = tool
            .annotations
            .as_ref()
            .and_then(|a| a.read_only_hint)
            .unwrap_or(false);
        assert!(
            reads || ["initialize_data_table", "query_sql"].contains(&tool.name.as_ref()),
            "{} changes data",
            tool.name
        );
    }
    for hidden in [
        "fill_missing",
        "undo",
        "redo",
        "drop_table",
        "delete_session",
        "export_table",
        "rename_columns",
        "clean_text",
        "parse_dates",
        "find_outliers",
        "merge_duplicates",
        "group_aggregate",
        "join_tables",
    ] {
        assert!(!offered.iter().any(|n| n == hidden), "{hidden} is offered");
    }
    let session = load_sales(&server, dir.path()).await;
    let t = ids(&session, "sales");
    server.ok("get_table_summary", t.clone()).await;
    let rows = server
        .ok(
            "query_sql",
            json!({ "session_id": session, "sql": "SELECT count(*) AS n FROM sales" }),
        )
        .await;
    assert_eq!(rows["rows"][0][0], 5);
    let e = server
        .err(
            "query_sql",
            json!({ "session_id": session, "sql": "SELECT * FROM sales", "save_as": "copy" }),
        )
        .await;
    assert!(e.contains("read-only"), "{e}");
    let refused = server
        .client()
        .call_tool(
            rmcp::model::CallToolRequestParams::new("fill_missing").with_arguments(
                with(t, json!({ "strategy": "mean" }))
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        )
        .await;
    let changed = refused.is_ok_and(|r| r.is_error != Some(true));
    assert!(!changed, "a hidden tool cannot be called");
    server.stop().await;

    let narrow = serve(
        &Storage::Memory,
        dir.path(),
        &[
            "--tools",
            "initialize_data_table,preview_rows,query_sql",
            "--exclude-tools",
            "query_sql",
        ],
    )
    .await;
    assert_eq!(
        names(narrow.client().list_all_tools().await.unwrap()),
        ["initialize_data_table", "preview_rows"]
    );
    narrow.stop().await;

    let config = Cli::try_parse_from([
        "dataframe-mcp",
        "--storage",
        "memory",
        "--exclude-tools",
        "fil_missing",
    ])
    .unwrap()
    .config;
    let e = dfmcp_server::build(&config, "stdio")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("unknown tool 'fil_missing'") && e.contains("fill_missing"),
        "{e}"
    );
}

/// Collects the messages of progress notifications.
#[derive(Clone, Default)]
struct ProgressListener(std::sync::Arc<std::sync::Mutex<Vec<(f64, String)>>>);

impl rmcp::ClientHandler for ProgressListener {
    fn on_progress(
        &self,
        params: rmcp::model::ProgressNotificationParam,
        _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) -> impl std::future::Future<Output = ()> + Send + '_ {
        // Notifications may be handled out of order: keep them in the
        // order of their progress values.
        let mut heard = self.0.lock().unwrap();
        heard.push((params.progress, params.message.unwrap_or_default()));
        heard.sort_by(|a, b| a.0.total_cmp(&b.0));
        std::future::ready(())
    }
}

/// A call that asks for progress (rmcp's client asks on every request)
/// hears that its work started, then every second until it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_with_a_progress_token_get_progress() {
    use rmcp::ServiceExt;
    let dir = tempfile::tempdir().unwrap();
    let config = Cli::try_parse_from([
        "dataframe-mcp",
        "--storage",
        "memory",
        "--allow-dir",
        dir.path().to_str().unwrap(),
    ])
    .unwrap()
    .config;
    let server = dfmcp_server::build(&config, "stdio").await.unwrap();
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let listener = ProgressListener::default();
    let client = listener.clone().serve(client_io).await.unwrap();
    let file = write(dir.path(), "sales.csv", SALES);
    let args = json!({ "file_path": file }).as_object().unwrap().clone();

    let mut meta = rmcp::model::RequestMetaObject::default();
    meta.set_progress_token(rmcp::model::ProgressToken(
        rmcp::model::NumberOrString::Number(7),
    ));
    let mut asked =
        rmcp::model::CallToolRequestParams::new("initialize_data_table").with_arguments(args);
    asked.meta = Some(meta);
    assert_ne!(client.call_tool(asked).await.unwrap().is_error, Some(true));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while listener.0.lock().unwrap().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let heard = listener.0.lock().unwrap().clone();
    assert_eq!(
        heard.first().map(|(_, m)| m.as_str()),
        Some("initialize_data_table started")
    );
    // The ticker stops with the call.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(listener.0.lock().unwrap().len(), heard.len(), "{heard:?}");
    let _ = client.cancel().await;
}
