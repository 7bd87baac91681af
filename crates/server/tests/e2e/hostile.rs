//! Hostile calls against the real binary under a 4 GB address-space cap
//! (`prlimit --as`): each is refused with the limit that stopped it, and the
//! process answers the next call (defect 5: each of these used to abort it).

use serde_json::json;
use tests::mcp::{Server, Storage, text};
use tokio::process::Command;

use crate::{bin, ids, with, write};

const CAP: &str = "--as=4000000000";

async fn capped(dir: &std::path::Path) -> Server {
    let mut cmd = Command::new("prlimit");
    cmd.arg(CAP).arg("--").arg(bin());
    Server::configure(&mut cmd, Some(&Storage::Memory), dir, &[]);
    Server::spawn(cmd).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_calls_never_kill_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = capped(dir.path()).await;
    let mut csv = String::from("id,g,s\n");
    for i in 0..40_000 {
        csv.push_str(&format!("{i},{},abcdefgh\n", i % 3));
    }
    let file = write(dir.path(), "t.csv", &csv);
    let out = server
        .ok("initialize_data_table", json!({ "file_path": file }))
        .await;
    let session = out["session_id"].as_str().unwrap().to_string();
    let t = ids(&session, "t");
    let sql = |q: String, save: bool| {
        let mut args = json!({ "session_id": session, "sql": q });
        if save {
            args["save_as"] = json!("saved");
        }
        args
    };
    let doubling = {
        let ctes: Vec<String> = (0..32)
            .map(|i| {
                let from = if i == 0 {
                    "t".to_string()
                } else {
                    format!("x{}", i - 1)
                };
                format!("x{i} AS (SELECT s || s AS s FROM {from})")
            })
            .collect();
        format!("WITH {} SELECT s FROM x31", ctes.join(", "))
    };
    let ors = (0..100_000)
        .map(|i| format!("id = {i}"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "query_sql",
            sql("SELECT COUNT(*) FROM t a CROSS JOIN t b".into(), false),
            "rows",
        ),
        (
            "query_sql",
            sql("SELECT * FROM t a JOIN t b ON a.g = b.g".into(), true),
            "rows",
        ),
        (
            "query_sql",
            sql(
                "SELECT a.g, COUNT(*) FROM t a JOIN t b ON a.g = b.g GROUP BY a.g".into(),
                false,
            ),
            "rows",
        ),
        ("query_sql", sql(doubling, false), "over the limit"),
        (
            "query_sql",
            sql(
                "SELECT string_agg(lpad(s, 100000), ',') FROM t".into(),
                false,
            ),
            "over the limit",
        ),
        (
            "query_sql",
            sql(vec!["SELECT 1 AS x"; 1000].join(" UNION ALL "), false),
            "UNION",
        ),
        (
            "query_sql",
            sql(format!("SELECT * FROM t WHERE {ors}"), false),
            "limit",
        ),
        (
            "filter_rows",
            with(t.clone(), json!({ "condition": ors })),
            "limit",
        ),
        (
            "mark_intentional_missing",
            with(t.clone(), json!({ "columns": ["s"], "condition": ors })),
            "limit",
        ),
    ];
    for (tool, args, says) in cases {
        let e = server.err(tool, args).await;
        assert!(e.contains(says), "{tool}: {e}");
        assert!(server.alive(), "{tool} killed the server");
    }
    for depth in [1_000, 10_000] {
        let deep = write(
            dir.path(),
            &format!("deep{depth}.json"),
            &format!("[{{\"a\": {}1{}}}]", "[".repeat(depth), "]".repeat(depth)),
        );
        let e = server
            .err("initialize_data_table", json!({ "file_path": deep }))
            .await;
        assert!(e.contains("levels deep"), "{e}");
    }
    // One header line of two million fields.
    let header = (0..2_000_000)
        .map(|i| format!("c{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let wide = write(dir.path(), "wide.csv", &format!("{header}\n1\n"));
    let e = server
        .err("initialize_data_table", json!({ "file_path": wide }))
        .await;
    assert!(e.contains("--max-columns"), "{e}");
    let e = server
        .err(
            "initialize_data_table",
            json!({ "file_path": file, "skip_rows": 1_000_000_000_000_000u64 }),
        )
        .await;
    assert!(e.contains("skip"), "{e}");
    // Alive and well.
    let preview = server.ok("preview_rows", t).await;
    assert_eq!(preview["total_rows"], 40_000);
    assert!(text(&server.call("health", json!({})).await).contains("Status ok"));
    server.stop().await;
}
