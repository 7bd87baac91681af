//! The MCP surface beyond tools, in process: resources and their links,
//! subscriptions, completions, prompts, logging and cancellation.

// resources/subscribe and logging are deprecated for the 2026-07-28 revision;
// clients of the earlier revisions use them, and these tests are such clients.
#![allow(deprecated)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use dfmcp_server::Cli;
use rmcp::model::{
    ArgumentInfo, CallToolRequestParams, CompleteRequestParams, CompletionContext,
    GetPromptRequestParams, LoggingLevel, ReadResourceRequestParams, Reference, ResourceContents,
    SetLevelRequestParams, SubscribeRequestParams,
};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

/// Notifications a client heard.
#[derive(Clone, Default)]
struct Heard {
    updated: Arc<Mutex<Vec<String>>>,
    logs: Arc<Mutex<Vec<Value>>>,
    progress: Arc<Mutex<Vec<(f64, String)>>>,
}

impl rmcp::ClientHandler for Heard {
    fn on_resource_updated(
        &self,
        params: rmcp::model::ResourceUpdatedNotificationParam,
        _context: rmcp::service::NotificationContext<RoleClient>,
    ) -> impl std::future::Future<Output = ()> + Send + '_ {
        self.updated.lock().unwrap().push(params.uri);
        std::future::ready(())
    }

    fn on_progress(
        &self,
        params: rmcp::model::ProgressNotificationParam,
        _context: rmcp::service::NotificationContext<RoleClient>,
    ) -> impl std::future::Future<Output = ()> + Send + '_ {
        // Notifications may be handled out of order: keep them in the
        // order of their progress values.
        let mut heard = self.progress.lock().unwrap();
        heard.push((params.progress, params.message.unwrap_or_default()));
        heard.sort_by(|a, b| a.0.total_cmp(&b.0));
        std::future::ready(())
    }

    fn on_logging_message(
        &self,
        params: rmcp::model::LoggingMessageNotificationParam,
        _context: rmcp::service::NotificationContext<RoleClient>,
    ) -> impl std::future::Future<Output = ()> + Send + '_ {
        self.logs.lock().unwrap().push(params.data);
        std::future::ready(())
    }
}

/// A server built from `flags` as the binary builds it, and a client that
/// records what it hears.
async fn connect(flags: &[&str]) -> (RunningService<RoleClient, Heard>, Heard) {
    connect_with(flags, rmcp::service::ClientLifecycleMode::Initialize).await
}

async fn connect_with(
    flags: &[&str],
    lifecycle: rmcp::service::ClientLifecycleMode,
) -> (RunningService<RoleClient, Heard>, Heard) {
    use rmcp::service::ClientServiceExt;
    let mut args = vec!["dataframe-mcp"];
    args.extend(flags);
    let config = Cli::try_parse_from(args).unwrap().config;
    let server = dfmcp_server::build(&config, "stdio").await.unwrap();
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let heard = Heard::default();
    let client = heard
        .clone()
        .serve_with_lifecycle(client_io, lifecycle)
        .await
        .unwrap();
    (client, heard)
}

/// A server on the memory store allowed to read `dir`, and its client.
async fn on_memory(dir: &Path) -> (RunningService<RoleClient, Heard>, Heard) {
    connect(&["--storage", "memory", "--allow-dir", dir.to_str().unwrap()]).await
}

async fn call(client: &RunningService<RoleClient, Heard>, tool: &str, args: Value) -> Value {
    let result = client
        .call_tool(
            CallToolRequestParams::new(tool.to_string())
                .with_arguments(args.as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{tool}: {result:?}");
    result.structured_content.unwrap()
}

/// Flags of a server on the embedded store in `dir`: servers built with them
/// share one store, as processes on one data directory do.
fn shared_store(dir: &Path) -> Vec<String> {
    let data = dir.join("data");
    [
        "--storage",
        "embedded",
        "--data-dir",
        data.to_str().unwrap(),
        "--allow-dir",
        dir.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.to_string_lossy().into_owned()
}

const SALES: &str = "id,region,price\n1,EU,10.0\n2,US,\n3,EU,30.0\n";

fn text_of(contents: &ResourceContents) -> String {
    match contents {
        ResourceContents::TextResourceContents { text, .. } => text.clone(),
        other => panic!("not text: {other:?}"),
    }
}

async fn read(client: &RunningService<RoleClient, Heard>, uri: &str) -> Result<String, String> {
    client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .map(|r| text_of(&r.contents[0]))
        .map_err(|e| e.to_string())
}

async fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_are_resources_with_links_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let (client, _) = on_memory(dir.path()).await;
    let file = write(dir.path(), "sales.csv", SALES);
    let loaded = client
        .call_tool(
            CallToolRequestParams::new("initialize_data_table")
                .with_arguments(json!({ "file_path": file }).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    let session = loaded.structured_content.as_ref().unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let uri = format!("dataframe://{session}/sales");
    // The load links the table it made.
    let links: Vec<String> = loaded
        .content
        .iter()
        .filter_map(|c| c.as_resource_link().map(|l| l.uri.clone()))
        .collect();
    assert_eq!(links, vec![uri.clone()]);

    let templates = client.list_resource_templates(None).await.unwrap();
    let names: Vec<&str> = templates
        .resource_templates
        .iter()
        .map(|t| t.uri_template.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "dataframe://{session_id}/{table}",
            "dataframe://{session_id}/{table}/history"
        ]
    );
    let listed = client.list_all_resources().await.unwrap();
    assert_eq!(
        listed.iter().map(|r| r.uri.as_str()).collect::<Vec<_>>(),
        [uri.as_str()]
    );

    let view = read(&client, &uri).await.unwrap();
    for expected in [
        "Version 1",
        "3 rows × 3 columns",
        "`price`: f64",
        "`region`: str",
        "EU",
    ] {
        assert!(view.contains(expected), "{expected} not in {view}");
    }
    call(
        &client,
        "fill_missing",
        json!({ "session_id": session, "table": "sales", "strategy": "zero", "columns": ["price"] }),
    )
    .await;
    let history = read(&client, &format!("{uri}/history")).await.unwrap();
    assert!(history.contains("v2"), "{history}");
    assert!(history.contains("fill_missing"), "{history}");
    assert!(read(&client, &uri).await.unwrap().contains("Version 2"));

    // An export links the file it wrote (and the table it read).
    let out = dir.path().join("out.csv");
    let exported = client
        .call_tool(
            CallToolRequestParams::new("export_table").with_arguments(
                json!({ "session_id": session, "table": "sales", "path": out })
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        )
        .await
        .unwrap();
    let links: Vec<String> = exported
        .content
        .iter()
        .filter_map(|c| c.as_resource_link().map(|l| l.uri.clone()))
        .collect();
    let file_uri = format!("file://{}", std::fs::canonicalize(&out).unwrap().display());
    assert!(links.contains(&file_uri), "{links:?}");
    assert!(links.contains(&uri), "{links:?}");

    // Unknown tables, sessions and URIs are errors that say what exists.
    let missing = read(&client, &format!("dataframe://{session}/nope"))
        .await
        .unwrap_err();
    assert!(missing.contains("nope"), "{missing}");
    let foreign = read(&client, "file:///etc/passwd").await.unwrap_err();
    assert!(
        foreign.contains("dataframe://{session_id}/{table}"),
        "{foreign}"
    );
    let _ = client.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_offer_own_sessions_tables_columns_and_strategies() {
    let dir = tempfile::tempdir().unwrap();
    let (client, _) = on_memory(dir.path()).await;
    let file = write(dir.path(), "sales.csv", SALES);
    call(
        &client,
        "initialize_data_table",
        json!({ "file_path": file, "session_id": "q1_sales" }),
    )
    .await;
    call(
        &client,
        "initialize_data_table",
        json!({ "file_path": file, "session_id": "q2_sales", "table_name": "orders" }),
    )
    .await;
    let template = Reference::for_resource("dataframe://{session_id}/{table}");
    let complete = |reference: Reference, name: &str, value: &str, known: &[(&str, &str)]| {
        let mut params = CompleteRequestParams::new(reference, ArgumentInfo::new(name, value));
        if !known.is_empty() {
            params.context = Some(CompletionContext::with_arguments(
                known
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ));
        }
        let client = &client;
        async move { client.complete(params).await.unwrap().completion.values }
    };
    assert_eq!(
        complete(template.clone(), "session_id", "q", &[]).await,
        ["q1_sales", "q2_sales"]
    );
    assert_eq!(
        complete(template.clone(), "session_id", "Q2", &[]).await,
        ["q2_sales"]
    );
    assert_eq!(
        complete(template.clone(), "table", "", &[("session_id", "q2_sales")]).await,
        ["orders"]
    );
    assert_eq!(
        complete(
            Reference::for_prompt("prepare_for_analysis"),
            "target_column",
            "pr",
            &[("session_id", "q1_sales"), ("table", "sales")]
        )
        .await,
        ["price"]
    );
    assert!(
        complete(template.clone(), "table", "", &[("session_id", "nobody")])
            .await
            .is_empty()
    );
    assert_eq!(
        complete(template, "strategy", "me", &[]).await,
        ["mean", "median"]
    );
    let _ = client.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_render_with_their_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let (client, _) = on_memory(dir.path()).await;
    let prompts = client.list_all_prompts().await.unwrap();
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "profile_and_clean",
            "explain_history",
            "prepare_for_analysis"
        ]
    );
    let args = json!({ "session_id": "s1", "table": "orders", "target_column": "churned" });
    let prompt = client
        .get_prompt(
            GetPromptRequestParams::new("prepare_for_analysis")
                .with_arguments(args.as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    let body = prompt.messages[0].content.as_text().unwrap().text.clone();
    for expected in ["`orders`", "`s1`", "`churned`", "get_table_summary"] {
        assert!(body.contains(expected), "{expected} not in {body}");
    }
    let missing = client
        .get_prompt(GetPromptRequestParams::new("explain_history"))
        .await
        .unwrap_err()
        .to_string();
    assert!(missing.contains("session_id and table"), "{missing}");
    let _ = client.cancel().await;
}

/// A subscriber hears a change made through another server on the same data
/// directory (another process's store, caches and all), and stops hearing
/// after unsubscribing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_hear_changes_made_by_another_server() {
    let dir = tempfile::tempdir().unwrap();
    let flags = shared_store(dir.path());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (a, heard) = connect(&flags).await;
    let (b, _) = connect(&flags).await;
    let file = write(dir.path(), "sales.csv", SALES);
    let session =
        call(&b, "initialize_data_table", json!({ "file_path": file })).await["session_id"]
            .as_str()
            .unwrap()
            .to_string();
    let uri = format!("dataframe://{session}/sales");
    a.subscribe(SubscribeRequestParams::new(&uri))
        .await
        .unwrap();
    let missing = a
        .subscribe(SubscribeRequestParams::new(format!(
            "dataframe://{session}/nope"
        )))
        .await
        .unwrap_err()
        .to_string();
    assert!(missing.contains("nope"), "{missing}");

    let target = json!({ "session_id": session, "table": "sales" });
    call(
        &b,
        "fill_missing",
        json!({ "session_id": session, "table": "sales", "strategy": "zero" }),
    )
    .await;
    wait_until("A hears B's fill", Duration::from_secs(1), || {
        !heard.updated.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(*heard.updated.lock().unwrap(), vec![uri.clone()]);
    // Undo moves the head back: another update.
    call(&b, "undo", target.clone()).await;
    wait_until("A hears B's undo", Duration::from_secs(1), || {
        heard.updated.lock().unwrap().len() == 2
    })
    .await;
    // A read changes nothing; an unsubscribed client hears nothing more.
    call(&b, "preview_rows", target.clone()).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(heard.updated.lock().unwrap().len(), 2);
    a.unsubscribe(rmcp::model::UnsubscribeRequestParams::new(&uri))
        .await
        .unwrap();
    call(&b, "redo", target).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(heard.updated.lock().unwrap().len(), 2);
    let _ = a.cancel().await;
    let _ = b.cancel().await;
}

// Logging is deprecated by SEP-2577; clients of earlier revisions use it.
#[allow(deprecated)]
async fn set_level(client: &RunningService<RoleClient, Heard>, level: LoggingLevel) {
    client
        .set_level(SetLevelRequestParams::new(level))
        .await
        .unwrap();
}

/// A client of the 2026-07-28 revision listens (subscriptions/listen) and
/// hears the change another server makes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_of_the_current_revision_hear_updates() {
    let dir = tempfile::tempdir().unwrap();
    let flags = shared_store(dir.path());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (a, _) = connect_with(
        &flags,
        rmcp::service::ClientLifecycleMode::Discover {
            preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
        },
    )
    .await;
    let (b, _) = connect(&flags).await;
    let file = write(dir.path(), "sales.csv", SALES);
    let session =
        call(&b, "initialize_data_table", json!({ "file_path": file })).await["session_id"]
            .as_str()
            .unwrap()
            .to_string();
    let uri = format!("dataframe://{session}/sales");
    let mut subscription = a
        .peer()
        .listen(
            rmcp::model::SubscriptionFilter::builder()
                .resource_subscription(&uri)
                .resource_subscription("https://example.com/not-ours")
                .build(),
        )
        .await
        .unwrap();
    assert_eq!(
        subscription.acknowledged().resource_subscriptions,
        Some(vec![uri.clone()])
    );
    call(
        &b,
        "drop_duplicates",
        json!({ "session_id": session, "table": "sales", "subset": ["region"] }),
    )
    .await;
    let heard = tokio::time::timeout(Duration::from_secs(1), subscription.next())
        .await
        .expect("an update within 1 s")
        .unwrap();
    match heard {
        Some(rmcp::model::ServerNotification::ResourceUpdatedNotification(n)) => {
            assert_eq!(n.params.uri, uri)
        }
        other => panic!("{other:?}"),
    }
    let _ = a.cancel().await;
    let _ = b.cancel().await;
}

/// Problems met while loading reach a client that listens to logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_problems_are_logged_to_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let (client, heard) = on_memory(dir.path()).await;
    set_level(&client, LoggingLevel::Info).await;
    // A workbook with one empty sheet: the other loads, the empty one is a
    // problem, reported in the result and logged.
    let path = dir.path().join("book.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let orders = book.add_worksheet().set_name("Orders").unwrap();
    orders.write_row(0, 0, ["id", "price"]).unwrap();
    orders.write_row(1, 0, [1.0, 9.5]).unwrap();
    book.add_worksheet().set_name("Empty").unwrap();
    book.save(&path).unwrap();
    let loaded = call(
        &client,
        "initialize_data_table",
        json!({ "file_path": path }),
    )
    .await;
    assert_eq!(loaded["problems"][0]["source"], "sheet 'Empty'", "{loaded}");
    wait_until("the problem is logged", Duration::from_secs(5), || {
        !heard.logs.lock().unwrap().is_empty()
    })
    .await;
    let logs = heard.logs.lock().unwrap().clone();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0]["tool"], "initialize_data_table");
    assert!(
        logs[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("sheet 'Empty': "),
        "{logs:?}"
    );
    // At level error, warnings are not sent.
    set_level(&client, LoggingLevel::Error).await;
    call(
        &client,
        "initialize_data_table",
        json!({ "file_path": path }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(heard.logs.lock().unwrap().len(), 1);
    let _ = client.cancel().await;
}

/// A load's progress says what it is doing as it does it: reading the file
/// (and its size), then storing the rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_says_what_a_load_is_doing() {
    let dir = tempfile::tempdir().unwrap();
    let (client, heard) = on_memory(dir.path()).await;
    let file = write(dir.path(), "big.csv", &big_csv(100_000));
    call(
        &client,
        "initialize_data_table",
        json!({ "file_path": file }),
    )
    .await;
    wait_until("the storing phase is heard", Duration::from_secs(5), || {
        heard
            .progress
            .lock()
            .unwrap()
            .iter()
            .any(|(_, m)| m.contains("storing"))
    })
    .await;
    let heard: Vec<String> = heard
        .progress
        .lock()
        .unwrap()
        .iter()
        .map(|(_, m)| m.clone())
        .collect();
    assert_eq!(heard[0], "initialize_data_table started");
    let reading = heard
        .iter()
        .position(|m| {
            m.starts_with("initialize_data_table: reading ")
                && m.contains("big.csv (")
                && m.contains(" MB) (")
        })
        .unwrap_or_else(|| panic!("{heard:?}"));
    let storing = heard
        .iter()
        .position(|m| {
            m.starts_with("initialize_data_table: storing 100,000 rows × 4 columns as table `big`")
        })
        .unwrap_or_else(|| panic!("{heard:?}"));
    assert!(reading < storing, "{heard:?}");
    let _ = client.cancel().await;
}

fn big_csv(rows: u64) -> String {
    let mut csv = String::from("id,region,price,note\n");
    for i in 0..rows {
        csv.push_str(&format!("{i},R{},{}.5,row number {i}\n", i % 7, i % 1000));
    }
    csv
}

/// A load cancelled by the client commits nothing, and the server answers
/// the next call at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_load_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (client, heard) = on_memory(dir.path()).await;
    // Big enough that parsing it takes a while in a debug build.
    let file = write(dir.path(), "big.csv", &big_csv(4_000_000));
    let mut params = CallToolRequestParams::new("initialize_data_table").with_arguments(
        json!({ "file_path": file, "session_id": "big" })
            .as_object()
            .unwrap()
            .clone(),
    );
    let mut meta = rmcp::model::RequestMetaObject::default();
    meta.set_progress_token(rmcp::model::ProgressToken(
        rmcp::model::NumberOrString::Number(1),
    ));
    params.meta = Some(meta);
    let request =
        rmcp::model::ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(params));
    let handle = client
        .send_cancellable_request(request, rmcp::service::PeerRequestOptions::no_options())
        .await
        .unwrap();
    // Cancelled while the file is being read.
    wait_until("the load starts reading", Duration::from_secs(10), || {
        heard
            .progress
            .lock()
            .unwrap()
            .iter()
            .any(|(_, m)| m.contains("reading"))
    })
    .await;
    handle.cancel(Some("changed my mind".into())).await.unwrap();
    let started = std::time::Instant::now();
    let sessions = call(&client, "list_sessions", json!({})).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the next call waited {:?}",
        started.elapsed()
    );
    assert!(sessions["sessions"].is_array(), "{sessions}");
    // Whatever the parse was doing when the cancel came, no table lands.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let tables = client
        .call_tool(
            CallToolRequestParams::new("list_tables")
                .with_arguments(json!({ "session_id": "big" }).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    let listed = tables
        .structured_content
        .map(|s| s["tables"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default();
    assert!(listed.is_empty(), "{listed:?}");
    let _ = client.cancel().await;
}
