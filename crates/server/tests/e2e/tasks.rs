//! Loads as MCP tasks across processes: a task started on process A is
//! followed (progress, result) and cancelled from process B on the same
//! store, and a task whose process is killed is reported failed.

use std::time::{Duration, Instant};

use rmcp::RoleClient;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelTaskParams, ClientCapabilities, ClientConfig,
    GetTaskParams, Implementation, TaskPayload, TaskStatus,
};
use rmcp::service::RunningService;
use serde_json::json;
use tests::mcp::Storage;

use crate::{client_with, write};

type Client = RunningService<RoleClient, ClientConfig>;

/// A server process and a client that declares the tasks extension.
async fn tasks_client(storage: &Storage, allow: &std::path::Path) -> (Client, u32) {
    let info = ClientConfig::new(
        ClientCapabilities::builder().enable_tasks().build(),
        Implementation::new("tasks-test", "1"),
    );
    client_with(storage, allow, info).await
}

/// A CSV of `rows` rows (3M take a debug build about a second to load).
fn big_csv(dir: &std::path::Path, name: &str, rows: u64) -> String {
    let mut csv = String::from("id,region,price,note\n");
    for i in 0..rows {
        csv.push_str(&format!("{i},R{},{}.5,row number {i}\n", i % 7, i % 1000));
    }
    write(dir, name, &csv)
}

async fn start_load(client: &Client, file: &str, session: &str) -> String {
    let args = json!({ "file_path": file, "session_id": session });
    match client
        .call_tool_once(
            CallToolRequestParams::new("initialize_data_table")
                .with_arguments(args.as_object().unwrap().clone()),
        )
        .await
        .unwrap()
    {
        CallToolResponse::Task(created) => {
            assert_eq!(created.task.status, TaskStatus::Working);
            created.task.task_id
        }
        other => panic!("expected a task, got {other:?}"),
    }
}

async fn status(client: &Client, task_id: &str) -> (TaskStatus, Option<String>, TaskPayload) {
    let got = client
        .get_task(GetTaskParams::new(task_id))
        .await
        .unwrap()
        .task;
    (got.task.status, got.task.status_message, got.payload)
}

async fn until_done(client: &Client, task_id: &str, within: Duration) -> TaskPayload {
    let deadline = Instant::now() + within;
    loop {
        let (status, _, payload) = status(client, task_id).await;
        if status.is_terminal() {
            return payload;
        }
        assert!(
            Instant::now() < deadline,
            "task still {status:?} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn tasks_across_processes(storage: Storage) {
    let dir = tempfile::tempdir().unwrap();
    let file = big_csv(dir.path(), "big.csv", 3_000_000);
    let (a, _) = tasks_client(&storage, dir.path()).await;
    let (b, _) = tasks_client(&storage, dir.path()).await;

    // Started on A, followed from B: working with a message, then the
    // loaded table as the result.
    let task = start_load(&a, &file, "tasked").await;
    assert!(task.starts_with("tasked:"), "{task}");
    let (first, message, _) = status(&b, &task).await;
    assert_eq!(first, TaskStatus::Working);
    assert!(message.unwrap().contains("initialize_data_table"));
    match until_done(&b, &task, Duration::from_secs(120)).await {
        TaskPayload::Completed { result } => {
            let tables = &result["structuredContent"]["tables"];
            assert_eq!(tables[0]["table"], "big", "{result:?}");
            assert_eq!(tables[0]["rows"], 3_000_000);
        }
        other => panic!("{other:?}"),
    }

    // Cancelled from B while A loads (a file big enough that the cancel,
    // seen by A within a quarter second, comes first): cancelled, and no
    // table lands.
    let bigger = big_csv(dir.path(), "bigger.csv", 8_000_000);
    let task = start_load(&a, &bigger, "cancelled").await;
    b.cancel_task(CancelTaskParams::new(&task)).await.unwrap();
    match until_done(&b, &task, Duration::from_secs(120)).await {
        TaskPayload::Cancelled => {}
        other => panic!("{other:?}"),
    }
    let listed = b
        .call_tool(
            CallToolRequestParams::new("list_tables").with_arguments(
                json!({ "session_id": "cancelled" })
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        )
        .await
        .unwrap();
    let tables = listed.structured_content.unwrap()["tables"].clone();
    assert_eq!(tables, json!([]), "a cancelled load committed {tables}");

    // Unknown tasks are an error, not a guess.
    let unknown = b
        .get_task(GetTaskParams::new(
            "tasked:0123456789abcdef0123456789abcdef",
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("no task"), "{unknown}");
    let _ = a.cancel().await;
    let _ = b.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_across_processes_embedded() {
    let dir = tempfile::tempdir().unwrap();
    tasks_across_processes(Storage::embedded(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_across_processes_redis() {
    tasks_across_processes(Storage::redis()).await;
}

/// A task whose process is killed is reported failed by another process
/// once its heartbeats stop, never as running forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_of_a_killed_process_is_failed() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::embedded(dir.path());
    let file = big_csv(dir.path(), "big.csv", 3_000_000);
    let (a, pid) = tasks_client(&storage, dir.path()).await;
    let (b, _) = tasks_client(&storage, dir.path()).await;
    let task = start_load(&a, &file, "doomed").await;
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    match until_done(&b, &task, Duration::from_secs(30)).await {
        TaskPayload::Failed { error } => {
            let message = error["message"].as_str().unwrap();
            assert!(message.contains("stopped before it finished"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    drop(a);
    let _ = b.cancel().await;
}
