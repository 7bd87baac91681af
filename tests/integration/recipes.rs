//! Recipes: a session of operations exported, then replayed on another file
//! whose columns have other names, giving what doing it by hand gives.

use std::path::Path;

use clap::Parser;
use dfmcp_server::Cli;
use serde_json::{Value, json};
use tests::mcp::Server;

async fn serve(allow: &Path) -> Server {
    let config = Cli::try_parse_from([
        "dataframe-mcp",
        "--storage",
        "memory",
        "--allow-dir",
        allow.to_str().unwrap(),
    ])
    .unwrap()
    .config;
    Server::in_process(dfmcp_server::build(&config, "stdio").await.unwrap()).await
}

fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.to_string_lossy().into_owned()
}

fn with(base: &Value, extra: Value) -> Value {
    let mut out = base.clone();
    out.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    out
}

const JANUARY: &str = "id,region,price,qty,note\n\
1,EU,10.5,3,a\n2,US,,1,b\n3,EU,30.0,,c\n4,APAC,2.0,2,d\n4,APAC,2.0,2,d\n5,US,12.0,7,e\n6,EU,,4,f\n";
const FEBRUARY: &str = "ID,Region,Price,Qty,Note\n\
10,US,8.0,,x\n11,EU,,5,y\n12,EU,40.0,1,z\n12,EU,40.0,1,z\n13,APAC,1.0,9,w\n14,US,,2,v\n15,EU,6.5,3,u\n";

/// The ten operations, in one table's names.
fn operations(names: &[(&str, &str)]) -> Vec<(&'static str, Value)> {
    let n = |c: &str| {
        names
            .iter()
            .find(|(k, _)| *k == c)
            .map_or(c.to_string(), |(_, v)| v.to_string())
    };
    vec![
        (
            "fill_missing",
            json!({ "strategy": "mean", "columns": [n("price")] }),
        ),
        (
            "fill_missing",
            json!({ "strategy": "zero", "columns": [n("qty")] }),
        ),
        ("drop_duplicates", json!({})),
        ("cast_columns", json!({ "casts": { n("id"): "str" } })),
        (
            "filter_rows",
            json!({ "condition": format!("\"{}\" > 5 AND \"{}\" <> 'APAC'", n("price"), n("region")) }),
        ),
        (
            "add_column",
            json!({ "column": "total", "expression": format!("\"{}\" * \"{}\"", n("price"), n("qty")) }),
        ),
        (
            "update_column",
            json!({
                "column": n("price"),
                "expression": format!("\"{}\" * 2", n("price")),
                "where": format!("\"{}\" = 'EU'", n("region")),
            }),
        ),
        (
            "rename_columns",
            json!({ "mapping": { n("qty"): "quantity" } }),
        ),
        (
            "sort_rows",
            json!({ "by": [{ "column": n("price"), "descending": true }] }),
        ),
        ("drop_columns", json!({ "columns": [n("note")] })),
    ]
}

/// January loaded as table `jan` of a new session and put through the ten
/// operations: (the file, the session, the table's ids).
async fn january_cleaned(server: &Server, dir: &Path) -> (String, String, Value) {
    let jan = write(dir, "jan.csv", JANUARY);
    let loaded = server
        .ok(
            "initialize_data_table",
            json!({ "file_path": jan, "table_name": "jan" }),
        )
        .await;
    let session = loaded["session_id"].as_str().unwrap().to_string();
    let jan_t = json!({ "session_id": session, "table": "jan" });
    for (tool, args) in operations(&[]) {
        server.ok(tool, with(&jan_t, args)).await;
    }
    (jan, session, jan_t)
}

/// A mapping argument: recipe column → table column.
fn mapping_of(names: &[(&str, &str)]) -> Value {
    names
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

async fn csv_of(server: &Server, dir: &Path, target: &Value, name: &str) -> String {
    let path = dir.join(name);
    server
        .ok("export_table", with(target, json!({ "path": path })))
        .await;
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipe_replays_on_next_months_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let (_, session, jan_t) = january_cleaned(&server, dir.path()).await;
    let feb = write(dir.path(), "feb.csv", FEBRUARY);
    // An undone step is not part of the recipe.
    server
        .ok(
            "drop_columns",
            with(&jan_t, json!({ "columns": ["region"] })),
        )
        .await;
    let undone = server.ok("undo", jan_t.clone()).await;
    assert_eq!(undone["version"], 11, "{undone}");

    let exported = server.ok("export_recipe", jan_t.clone()).await;
    let recipe = exported["recipe"].clone();
    let steps = recipe["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 10, "{recipe}");
    assert_eq!(steps[0]["action"], "fill_missing");
    assert_eq!(steps[4]["reads"], json!(["price", "region"]));
    assert!(exported["skipped"][0].as_str().unwrap().starts_with("v1 "));

    // February: the same file with other column names, loaded twice.
    for table in ["by_recipe", "by_hand", "dry", "broken"] {
        server
            .ok(
                "initialize_data_table",
                json!({ "file_path": feb, "session_id": session, "table_name": table }),
            )
            .await;
    }
    let target = |t: &str| json!({ "session_id": session, "table": t });
    let names = [
        ("id", "ID"),
        ("region", "Region"),
        ("price", "Price"),
        ("qty", "Qty"),
        ("note", "Note"),
    ];
    let mapping = mapping_of(&names);

    // A dry run commits nothing and says what each step would do.
    let dry = server
        .ok(
            "apply_recipe",
            with(
                &target("dry"),
                json!({ "recipe": recipe, "mapping": mapping, "dry_run": true }),
            ),
        )
        .await;
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["steps"].as_array().unwrap().len(), 10);
    assert_eq!(dry["steps"][0]["cells_changed"], 2, "{dry}");
    assert_eq!(dry["steps"][2]["rows_after"], 6, "{dry}");
    let history = server.ok("get_history", target("dry")).await;
    assert_eq!(history["current_version"], 1);

    // By recipe, with the mapping, and by hand: the same table.
    let applied = server
        .ok(
            "apply_recipe",
            with(
                &target("by_recipe"),
                json!({ "recipe": recipe, "mapping": mapping, "request_id": "feb-recipe" }),
            ),
        )
        .await;
    assert_eq!(applied["undo_steps"], 10, "{applied}");
    assert_eq!(applied["version"], 11);
    for (tool, args) in operations(&names) {
        server.ok(tool, with(&target("by_hand"), args)).await;
    }
    let by_recipe = csv_of(&server, dir.path(), &target("by_recipe"), "a.csv").await;
    let by_hand = csv_of(&server, dir.path(), &target("by_hand"), "b.csv").await;
    assert_eq!(by_recipe, by_hand);
    assert!(
        by_recipe.starts_with("ID,Region,Price,quantity,total\n"),
        "{by_recipe}"
    );
    // February keeps five rows through the recipe (filled, deduplicated,
    // filtered), EU prices doubled after the total was computed.
    assert_eq!(by_recipe.lines().count(), 6, "{by_recipe}");
    assert!(by_recipe.contains("\n12,EU,80.0,1,40.0\n"), "{by_recipe}");

    // A retry with the same request id applies nothing again.
    let again = server
        .ok(
            "apply_recipe",
            with(
                &target("by_recipe"),
                json!({ "recipe": recipe, "mapping": mapping, "request_id": "feb-recipe" }),
            ),
        )
        .await;
    assert_eq!(again["version"], 11, "{again}");
    // One undo of the reported steps takes it all back.
    let back = server
        .ok("undo", with(&target("by_recipe"), json!({ "steps": 10 })))
        .await;
    assert_eq!(back["version"], 1);

    // Without the mapping, the first step names the missing column.
    let e = server
        .err(
            "apply_recipe",
            with(&target("broken"), json!({ "recipe": recipe })),
        )
        .await;
    assert!(
        e.starts_with("step 1 (fill_missing) cannot apply: column 'price' not found"),
        "{e}"
    );
    assert!(e.contains("Nothing was changed"), "{e}");
    assert!(e.contains("pass mapping"), "{e}");
    // A mapping that misses one column: the steps before it stay, and the
    // error says how to take them back.
    let partial = mapping_of(&names[..4]);
    let e = server
        .err(
            "apply_recipe",
            with(
                &target("broken"),
                json!({ "recipe": recipe, "mapping": partial }),
            ),
        )
        .await;
    assert!(e.starts_with("step 10 (drop_columns) cannot apply"), "{e}");
    assert!(e.contains("undo with steps=9"), "{e}");

    // A recipe file round-trips.
    let path = dir.path().join("cleaning.json");
    server
        .ok("export_recipe", with(&jan_t, json!({ "path": path })))
        .await;
    let refused = server
        .err("export_recipe", with(&jan_t, json!({ "path": path })))
        .await;
    assert!(refused.contains("already exists"), "{refused}");
    let from_file = server
        .ok(
            "apply_recipe",
            with(
                &target("dry"),
                json!({ "recipe_path": path, "mapping": mapping, "dry_run": true }),
            ),
        )
        .await;
    assert_eq!(from_file["steps"], dry["steps"]);
    let not_a_recipe = server
        .err(
            "apply_recipe",
            with(&target("dry"), json!({ "recipe": { "steps": 3 } })),
        )
        .await;
    assert!(not_a_recipe.contains("not a recipe"), "{not_a_recipe}");
    server.stop().await;
}

/// Runs a generated polars script on `input`, writing `out`; returns what
/// it wrote (the script's stderr on failure, the script itself on a
/// mismatch is for the caller).
fn run_python(script: &Path, input: &str, out: &Path) -> String {
    let run = std::process::Command::new("python3")
        .arg(script)
        .arg(input)
        .arg(out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::read_to_string(out).unwrap()
}

/// Whether `python3` with polars can run here; CI installs it and sets
/// DFMCP_REQUIRE_PYTHON_POLARS, so there a missing polars is a failure.
fn python_polars() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import polars"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("DFMCP_REQUIRE_PYTHON_POLARS").is_none(),
            "python3 with polars is required here (pip install polars)"
        );
        eprintln!("NOT RUN: python3 with polars is not installed (pip install polars)");
    }
    ok
}

/// The recipe as code gives what the server gives: the polars script run by
/// Python's polars on the original file, and the SQL run by query_sql on the
/// original table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipes_as_code_give_the_same_table() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let (jan, _, jan_t) = january_cleaned(&server, dir.path()).await;
    let s = |v: Value| v["session_id"].as_str().unwrap().to_string();
    let cleaned = csv_of(&server, dir.path(), &jan_t, "cleaned.csv").await;

    // SQL: every step but the mean fill (v2) says itself exactly in SQL,
    // the sort too (rows that tie on price keep their order).
    let exported = server
        .ok(
            "export_recipe",
            with(&jan_t, json!({ "from_version": 3, "code": "sql" })),
        )
        .await;
    let sql = exported["code"].as_str().unwrap().to_string();
    assert!(exported.get("code_notes").is_none(), "{exported}");
    let raw = s(server
        .ok(
            "initialize_data_table",
            json!({ "file_path": jan, "table_name": "jan" }),
        )
        .await);
    let raw_t = json!({ "session_id": raw, "table": "jan" });
    server
        .ok(
            "fill_missing",
            with(&raw_t, json!({ "strategy": "mean", "columns": ["price"] })),
        )
        .await;
    server
        .ok(
            "query_sql",
            json!({ "session_id": raw, "sql": sql, "save_as": "via_sql" }),
        )
        .await;
    let via_sql = csv_of(
        &server,
        dir.path(),
        &json!({ "session_id": raw, "table": "via_sql" }),
        "via_sql.csv",
    )
    .await;
    assert_eq!(via_sql, cleaned, "{sql}");
    let unsaid = server
        .ok("export_recipe", with(&jan_t, json!({ "code": "sql" })))
        .await;
    assert!(
        unsaid["code_notes"][0]
            .as_str()
            .unwrap()
            .starts_with("step 1 (fill_missing) has no exact SQL"),
        "{unsaid}"
    );

    // polars: the whole recipe, run by Python on the original file.
    if !python_polars() {
        return;
    }
    let script = dir.path().join("recipe.py");
    server
        .ok(
            "export_recipe",
            with(&jan_t, json!({ "code": "polars", "path": script })),
        )
        .await;
    let out = dir.path().join("by_python.csv");
    let by_python = run_python(&script, &jan, &out);
    assert_eq!(
        by_python,
        cleaned,
        "{}",
        std::fs::read_to_string(&script).unwrap()
    );
    server.stop().await;
}

const PEOPLE_JAN: &str = "id,name,city,when,amount,full\n\
1,  Jon   Smith ,Paris,03/04/2024,10.0,Ada Lovelace\n\
2,John Smith,Paris,01/02/2024,12.0,Grace Brewster Hopper\n\
3,JOHN SMITH,Lyon,05/06/2024,-999,Plato\n\
4,Zoë Ådams,Lyon,07/08/2024,11.0,\n\
5,Zoe Adams,Nice,not a date,13.0,Alan Turing\n\
6,Ann Lee,Nice,09/10/2024,-999,Ann Lee\n";
const PEOPLE_FEB: &str = "ID,Name,City,When,Amount,Full\n\
7,Jon Smith ,Lyon,02/03/2024,8.0,Mary Shelley\n\
8,ÉMILE Zola,Nice,04/05/2024,-999,Emile Zola\n\
9,john smith,Paris,06/07/2024,9.5,\n\
10,Ann  Lee,Paris,08/09/2024,7.0,Ann B Lee\n";

/// The text, date, column and quality operations, in one table's names.
fn cleaning(n: impl Fn(&str) -> String) -> Vec<(&'static str, Value)> {
    vec![
        (
            "clean_text",
            json!({ "columns": [n("name")], "trim": true, "collapse_spaces": true, "strip_accents": true, "case": "lower" }),
        ),
        ("parse_dates", json!({ "columns": [n("when")] })),
        (
            "split_column",
            json!({ "column": n("full"), "separator": " ", "into": ["first", "last"] }),
        ),
        (
            "merge_columns",
            json!({ "columns": [n("city"), n("id")], "into": "place", "separator": "-" }),
        ),
        (
            "find_outliers",
            json!({ "columns": [n("amount")], "method": "zscore", "threshold": 1, "action": "flag" }),
        ),
        (
            "merge_duplicates",
            json!({ "column": n("name"), "groups": [{ "values": ["jon smith"], "into": "john smith" }] }),
        ),
    ]
}

/// The newer operations replay like the first ones: on next month's file
/// with other names, by recipe equals by hand; and the polars code gives
/// the server's table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleaning_operations_replay_and_run_as_polars() {
    let s = |v: Value| v["session_id"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path()).await;
    let jan = write(dir.path(), "people_jan.csv", PEOPLE_JAN);
    let feb = write(dir.path(), "people_feb.csv", PEOPLE_FEB);
    let loaded = server
        .ok(
            "initialize_data_table",
            json!({ "file_path": jan, "table_name": "jan" }),
        )
        .await;
    let session = loaded["session_id"].as_str().unwrap().to_string();
    let target = |t: &str| json!({ "session_id": session, "table": t });
    for (tool, args) in cleaning(|c| c.to_string()) {
        server.ok(tool, with(&target("jan"), args)).await;
    }
    let exported = server.ok("export_recipe", target("jan")).await;
    let recipe = exported["recipe"].clone();
    assert_eq!(recipe["steps"].as_array().unwrap().len(), 6, "{recipe}");
    // The detected date format is part of the recipe.
    assert_eq!(
        recipe["steps"][1]["formats"],
        json!(["%m/%d/%Y"]),
        "{recipe}"
    );

    for table in ["by_recipe", "by_hand"] {
        server
            .ok(
                "initialize_data_table",
                json!({ "file_path": feb, "session_id": session, "table_name": table }),
            )
            .await;
    }
    let capital = |c: &str| match c {
        "id" => "ID".to_string(),
        _ => {
            let mut s = c.to_string();
            s[..1].make_ascii_uppercase();
            s
        }
    };
    let names: Vec<(String, String)> = ["id", "name", "city", "when", "amount", "full"]
        .iter()
        .map(|c| (c.to_string(), capital(c)))
        .collect();
    let mapping: Value = names
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let applied = server
        .ok(
            "apply_recipe",
            with(
                &target("by_recipe"),
                json!({ "recipe": recipe, "mapping": mapping }),
            ),
        )
        .await;
    assert_eq!(applied["undo_steps"], 6, "{applied}");
    // By hand, February's dates would be detected afresh; the recipe keeps
    // January's format (month first), which is what a monthly job wants.
    for (tool, args) in cleaning(capital) {
        let args = if tool == "parse_dates" {
            json!({ "columns": ["When"], "formats": ["%m/%d/%Y"] })
        } else {
            args
        };
        server.ok(tool, with(&target("by_hand"), args)).await;
    }
    let by_recipe = csv_of(&server, dir.path(), &target("by_recipe"), "r.csv").await;
    let by_hand = csv_of(&server, dir.path(), &target("by_hand"), "h.csv").await;
    assert_eq!(by_recipe, by_hand);
    assert!(
        by_recipe.starts_with("ID,Name,City,place,When,Amount,Full,first,last,is_outlier\n"),
        "{by_recipe}"
    );
    assert!(
        by_recipe
            .contains("\n8,emile zola,Nice,Nice-8,2024-04-05,-999.0,Emile Zola,Emile,Zola,true\n"),
        "{by_recipe}"
    );
    assert!(by_recipe.contains("\n7,john smith,"), "{by_recipe}");

    // A table made by group_aggregate replays as an aggregation.
    server
        .ok(
            "group_aggregate",
            with(
                &target("jan"),
                json!({ "by": ["city"], "aggregates": [{ "column": "amount", "function": "sum" }], "save_as": "totals" }),
            ),
        )
        .await;
    let totals = server.ok("export_recipe", target("totals")).await;
    server
        .ok(
            "initialize_data_table",
            json!({ "file_path": feb, "session_id": session, "table_name": "feb_totals" }),
        )
        .await;
    server
        .ok(
            "apply_recipe",
            with(
                &target("feb_totals"),
                json!({ "recipe": totals["recipe"], "mapping": { "city": "City", "amount": "Amount" } }),
            ),
        )
        .await;
    let feb_totals = csv_of(&server, dir.path(), &target("feb_totals"), "t.csv").await;
    assert_eq!(
        feb_totals,
        "City,amount_sum\nLyon,8.0\nNice,-999.0\nParis,16.5\n"
    );

    if !python_polars() {
        return;
    }
    let cleaned = csv_of(&server, dir.path(), &target("jan"), "jan_clean.csv").await;
    let script = dir.path().join("people.py");
    server
        .ok(
            "export_recipe",
            with(&target("jan"), json!({ "code": "polars", "path": script })),
        )
        .await;
    let out = dir.path().join("people_python.csv");
    assert_eq!(
        run_python(&script, &jan, &out),
        cleaned,
        "{}",
        std::fs::read_to_string(&script).unwrap()
    );
    // Tables made by reshaping, as code run on the raw file: the same.
    let raw = s(server
        .ok(
            "initialize_data_table",
            json!({ "file_path": jan, "table_name": "raw" }),
        )
        .await);
    let raw_t = json!({ "session_id": raw, "table": "raw" });
    for (tool, args) in [
        (
            "group_aggregate",
            json!({ "by": ["city"], "aggregates": [{ "column": "amount", "function": "mean" }, { "function": "count" }] }),
        ),
        (
            "pivot",
            json!({ "index": ["city"], "columns": "id", "values": "amount" }),
        ),
        (
            "unpivot",
            json!({ "index": ["id"], "columns": ["city", "amount"] }),
        ),
    ] {
        let made = server
            .ok(tool, with(&raw_t, with(&args, json!({ "save_as": tool }))))
            .await;
        let made_t = json!({ "session_id": raw, "table": made["table"] });
        let by_server = csv_of(&server, dir.path(), &made_t, &format!("{tool}.csv")).await;
        let script = dir.path().join(format!("{tool}.py"));
        server
            .ok(
                "export_recipe",
                with(&made_t, json!({ "code": "polars", "path": script })),
            )
            .await;
        let out = dir.path().join(format!("{tool}_python.csv"));
        assert_eq!(
            run_python(&script, &jan, &out),
            by_server,
            "{tool}: {}",
            std::fs::read_to_string(&script).unwrap()
        );
    }
    server.stop().await;
}
