//! The cleaning, quality, reshaping and chart tools through MCP: what each
//! returns, what it changes (and what it leaves alone), and how it undoes.

use std::path::Path;

use base64::Engine;
use clap::Parser;
use dfmcp_server::Cli;
use serde_json::{Value, json};
use tests::mcp::{Server, text};

async fn serve(allow: &Path, extra: &[&str]) -> Server {
    let mut args = vec![
        "dataframe-mcp",
        "--storage",
        "memory",
        "--allow-dir",
        allow.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let config = Cli::try_parse_from(args).unwrap().config;
    Server::in_process(dfmcp_server::build(&config, "stdio").await.unwrap()).await
}

fn with(base: &Value, extra: Value) -> Value {
    let mut out = base.clone();
    out.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    out
}

const PEOPLE: &str = "id,name,city,when,amount,full\n\
1,  Jon   Smith ,Paris,03/04/2024,10.0,Ada Lovelace\n\
2,John Smith,paris,01/02/2024,12.0,Grace Brewster Hopper\n\
3,JOHN SMITH,Lyon,05/06/2024,-999,Plato\n\
4,Zoë Ådams,Lyon,07/08/2024,11.0,\n\
5,Zoe Adams,Nice,not a date,13.0,Alan Turing\n\
6,Ann Lee,Nice,09/10/2024,-999,Ann Lee\n\
7,Ann Lee,Paris,11/12/2024,-999,X Y\n\
8,Bob Ray,Paris,12/12/2024,9.0,A B\n";

/// A session with PEOPLE loaded as `people`: (session, table ids).
async fn people(server: &Server, dir: &Path) -> (String, Value) {
    let path = dir.join("people.csv");
    std::fs::write(&path, PEOPLE).unwrap();
    let loaded = server
        .ok(
            "initialize_data_table",
            json!({ "file_path": path, "table_name": "people" }),
        )
        .await;
    let session = loaded["session_id"].as_str().unwrap().to_string();
    let t = json!({ "session_id": session, "table": "people" });
    (session, t)
}

/// One column of a table, as JSON values, by SQL.
async fn column(server: &Server, session: &str, sql: &str) -> Vec<Value> {
    let rows = server
        .ok("query_sql", json!({ "session_id": session, "sql": sql }))
        .await;
    rows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].clone())
        .collect()
}

async fn version(server: &Server, t: &Value) -> u64 {
    server.ok("get_history", t.clone()).await["current_version"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_dates_and_columns_change_and_undo() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]).await;
    let (session, t) = people(&server, dir.path()).await;

    let cleaned = server
        .ok(
            "clean_text",
            with(
                &t,
                json!({ "columns": ["name"], "trim": true, "collapse_spaces": true }),
            ),
        )
        .await;
    assert_eq!(cleaned["details"]["values_changed"], 1, "{cleaned}");
    let names = column(&server, &session, "SELECT name FROM people LIMIT 1").await;
    assert_eq!(names, [json!("Jon Smith")]);
    // Nothing left to clean: no version.
    let again = server
        .ok(
            "clean_text",
            with(&t, json!({ "columns": ["name"], "trim": true })),
        )
        .await;
    assert_eq!(again["changed"], false, "{again}");

    // Every date reads both ways: month first, said; one value unreadable.
    let result = server
        .call("parse_dates", with(&t, json!({ "columns": ["when"] })))
        .await;
    let said = text(&result);
    assert!(said.contains("day first"), "{said}");
    assert!(said.contains("'not a date'"), "{said}");
    let parsed = result.structured_content.unwrap();
    assert_eq!(
        parsed["details"]["columns"][0]["formats"],
        json!(["%m/%d/%Y"])
    );
    assert_eq!(parsed["details"]["columns"][0]["failed"], 1);
    let first = column(&server, &session, "SELECT \"when\" FROM people LIMIT 1").await;
    assert_eq!(first, [json!("2024-03-04")]);
    // The history records the format found, so a replay reads alike.
    let history = server.ok("get_history", t.clone()).await;
    let last = history["operations"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["parameters"]["formats"], json!(["%m/%d/%Y"]), "{last}");
    server.ok("undo", t.clone()).await;
    server
        .ok(
            "parse_dates",
            with(&t, json!({ "columns": ["when"], "day_first": true })),
        )
        .await;
    let first = column(&server, &session, "SELECT \"when\" FROM people LIMIT 1").await;
    assert_eq!(first, [json!("2024-04-03")]);

    let split = server
        .ok(
            "split_column",
            with(
                &t,
                json!({ "column": "full", "separator": " ", "into": ["first", "last"] }),
            ),
        )
        .await;
    assert_eq!(split["columns_after"], 8, "{split}");
    let lasts = column(&server, &session, "SELECT \"last\" FROM people").await;
    assert_eq!(lasts[1], json!("Brewster Hopper"));
    assert_eq!(lasts[2], Value::Null);
    let merged = server
        .ok(
            "merge_columns",
            with(
                &t,
                json!({ "columns": ["city", "id"], "into": "place", "separator": "-", "drop_originals": true }),
            ),
        )
        .await;
    assert_eq!(merged["columns_after"], 7, "{merged}");
    let places = column(&server, &session, "SELECT place FROM people LIMIT 2").await;
    assert_eq!(places, [json!("Paris-1"), json!("paris-2")]);
    let taken = server
        .err(
            "split_column",
            with(
                &t,
                json!({ "column": "name", "separator": " ", "into": ["first", "x"] }),
            ),
        )
        .await;
    assert!(taken.contains("already exists"), "{taken}");

    // Undo walks back through every one of them.
    let before = version(&server, &t).await;
    let back = server
        .ok("undo", with(&t, json!({ "steps": before - 1 })))
        .await;
    assert_eq!(back["version"], 1);
    let raw = column(&server, &session, "SELECT name FROM people LIMIT 1").await;
    assert_eq!(raw, [json!("  Jon   Smith ")]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_tools_report_without_changing_and_act_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]).await;
    let (session, t) = people(&server, dir.path()).await;

    let report = server
        .call(
            "find_outliers",
            with(
                &t,
                json!({ "columns": ["amount"], "method": "zscore", "threshold": 1 }),
            ),
        )
        .await;
    let said = text(&report);
    assert!(said.contains("3 outliers"), "{said}");
    assert!(said.contains("occurs 3 times"), "{said}");
    assert_eq!(version(&server, &t).await, 1);
    let flagged = server
        .ok(
            "find_outliers",
            with(
                &t,
                json!({ "columns": ["amount"], "method": "zscore", "threshold": 1, "action": "flag" }),
            ),
        )
        .await;
    assert_eq!(flagged["version"], 2, "{flagged}");
    let flags = column(
        &server,
        &session,
        "SELECT count(*) FROM people WHERE is_outlier",
    )
    .await;
    assert_eq!(flags, [json!(3)]);
    server
        .ok(
            "find_outliers",
            with(
                &t,
                json!({ "columns": ["amount"], "method": "zscore", "threshold": 1, "action": "null" }),
            ),
        )
        .await;
    let missing = column(
        &server,
        &session,
        "SELECT count(*) FROM people WHERE amount IS NULL",
    )
    .await;
    assert_eq!(missing, [json!(3)]);

    let clusters = server
        .ok("find_duplicates", with(&t, json!({ "columns": ["name"] })))
        .await;
    let report = &clusters["report"];
    assert_eq!(report["total_clusters"], 2, "{clusters}");
    let smiths = report["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["rows"] == 3)
        .unwrap_or_else(|| panic!("{clusters}"));
    let values: Vec<String> = smiths["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(values.len(), 3, "{smiths}");
    let merged = server
        .ok(
            "merge_duplicates",
            with(
                &t,
                json!({ "column": "name", "groups": [{ "values": values, "into": "John Smith" }] }),
            ),
        )
        .await;
    assert_eq!(merged["details"]["cells_changed"], 2, "{merged}");
    let johns = column(
        &server,
        &session,
        "SELECT count(*) FROM people WHERE name = 'John Smith'",
    )
    .await;
    assert_eq!(johns, [json!(3)]);

    let at = version(&server, &t).await;
    let checked = server
        .ok(
            "validate",
            with(
                &t,
                json!({ "rules": [
                    { "column": "id", "rule": "unique" },
                    { "column": "full", "rule": "not_null" },
                    { "column": "city", "rule": "allowed", "values": ["Paris", "Lyon", "Nice"] },
                    { "column": "when", "rule": "type", "type": "date" },
                ] }),
            ),
        )
        .await;
    let rules = checked["report"]["rules"].as_array().unwrap();
    let violations: Vec<u64> = rules
        .iter()
        .map(|r| r["violations"].as_u64().unwrap())
        .collect();
    assert_eq!(violations, [0, 1, 1, 1], "{checked}");
    assert_eq!(rules[2]["examples"][0]["row"], 1, "{checked}");
    assert_eq!(rules[3]["examples"][0]["value"], "not a date", "{checked}");
    assert_eq!(version(&server, &t).await, at);
    let bad = server
        .err(
            "validate",
            with(
                &t,
                json!({ "rules": [{ "column": "id", "rule": "sorted" }] }),
            ),
        )
        .await;
    assert!(bad.contains("rule 1"), "{bad}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reshaping_saves_new_tables_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &["--max-query-rows", "20"]).await;
    let (session, t) = people(&server, dir.path()).await;

    let args = json!({
        "by": ["city"],
        "aggregates": [{ "column": "amount", "function": "max" }, { "function": "count", "as": "n" }],
        "save_as": "by_city",
        "request_id": "group-1",
    });
    let grouped = server.ok("group_aggregate", with(&t, args.clone())).await;
    assert_eq!(grouped["rows"], 4, "{grouped}");
    assert_eq!(grouped["source"], "people@v1");
    let retry = server.ok("group_aggregate", with(&t, args.clone())).await;
    assert_eq!(retry["already_applied"], true, "{retry}");
    assert_eq!(retry["source"], "people@v1", "{retry}");
    // The same request id for another table's worth of work is refused.
    let mut other = args.clone();
    other["by"] = json!(["name"]);
    let reused = server.err("group_aggregate", with(&t, other)).await;
    assert!(reused.contains("group-1"), "{reused}");
    let counts = column(&server, &session, "SELECT n FROM by_city ORDER BY city").await;
    // Lyon, Nice, Paris, paris: text sorts by code point.
    assert_eq!(counts, [json!(2), json!(2), json!(3), json!(1)]);
    let taken = server
        .err(
            "group_aggregate",
            with(
                &t,
                json!({ "aggregates": [{ "function": "count" }], "save_as": "by_city" }),
            ),
        )
        .await;
    assert!(taken.contains("already exists"), "{taken}");
    // The new table's history starts from where it came from, and replays.
    let recipe = server
        .ok(
            "export_recipe",
            json!({ "session_id": session, "table": "by_city" }),
        )
        .await;
    assert_eq!(
        recipe["recipe"]["steps"][0]["action"], "group_aggregate",
        "{recipe}"
    );

    let pivoted = server
        .ok(
            "pivot",
            with(
                &t,
                json!({ "index": ["city"], "columns": "name", "values": "amount", "function": "sum", "save_as": "wide" }),
            ),
        )
        .await;
    assert_eq!(pivoted["rows"], 4, "{pivoted}");
    let long = server
        .ok(
            "unpivot",
            with(
                &t,
                json!({ "index": ["id"], "columns": ["city", "name"], "save_as": "long" }),
            ),
        )
        .await;
    assert_eq!(long["rows"], 16, "{long}");

    let joined = server
        .ok(
            "join_tables",
            with(
                &t,
                json!({ "other": "by_city", "on": ["city"], "how": "left", "save_as": "joined" }),
            ),
        )
        .await;
    assert_eq!(joined["rows"], 8, "{joined}");
    let n = column(&server, &session, "SELECT n FROM joined WHERE id = 1").await;
    assert_eq!(n, [json!(3)]);
    // Keys that repeat on both sides multiply: 3² + 1 + 2² + 2² rows.
    let self_join = server
        .ok(
            "join_tables",
            with(
                &t,
                json!({ "other": "people", "on": ["city"], "save_as": "pairs" }),
            ),
        )
        .await;
    assert_eq!(self_join["rows"], 18, "{self_join}");
    let names: Vec<&str> = self_join["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(&names[..4], ["id", "name", "city", "when"], "{self_join}");
    assert!(names.contains(&"name_right"), "{self_join}");
    // Over the row limit, a join is refused before it is made.
    let long_t = json!({ "session_id": session, "table": "long" });
    let big = server
        .err(
            "join_tables",
            with(
                &long_t,
                json!({ "other": "long", "on": ["variable"], "save_as": "x" }),
            ),
        )
        .await;
    assert!(big.contains("would make 128 rows"), "{big}");
    server.stop().await;
}

/// Width and height from a PNG's header.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (w, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plots_are_images_of_the_asked_size() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]).await;
    let (_, t) = people(&server, dir.path()).await;
    let kinds = [
        json!({ "kind": "histogram", "x": "amount" }),
        json!({ "kind": "bar", "x": "city" }),
        json!({ "kind": "scatter", "x": "id", "y": "amount" }),
        json!({ "kind": "line", "x": "id", "y": "amount", "width": 640, "height": 400 }),
        json!({ "kind": "box", "x": "amount", "by": "city" }),
        json!({ "kind": "missing" }),
    ];
    for args in kinds {
        let result = server.call("plot", with(&t, args.clone())).await;
        assert_ne!(result.is_error, Some(true), "{}", text(&result));
        let image = result
            .content
            .iter()
            .find_map(|c| c.as_image())
            .unwrap_or_else(|| panic!("no image for {args}"));
        assert_eq!(image.mime_type, "image/png");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&image.data)
            .unwrap();
        let expected = (
            args.get("width").and_then(Value::as_u64).unwrap_or(800) as u32,
            args.get("height").and_then(Value::as_u64).unwrap_or(500) as u32,
        );
        assert_eq!(png_size(&bytes), expected, "{args}");
    }
    let path = dir.path().join("chart.png");
    let written = server
        .call(
            "plot",
            with(&t, json!({ "kind": "bar", "x": "city", "path": path })),
        )
        .await;
    assert!(text(&written).contains("Written to"), "{}", text(&written));
    assert_eq!(png_size(&std::fs::read(&path).unwrap()), (800, 500));
    let refused = server
        .err(
            "plot",
            with(&t, json!({ "kind": "bar", "x": "city", "path": path })),
        )
        .await;
    assert!(refused.contains("already exists"), "{refused}");
    let wrong = server
        .err(
            "plot",
            with(&t, json!({ "kind": "histogram", "x": "city" })),
        )
        .await;
    assert!(wrong.contains("bar"), "{wrong}");
    server.stop().await;
}
