//! Live updates between processes: a client of process A subscribed to a
//! table hears, within a second, the change process B makes on the same
//! store (one embedded data directory, or one Redis).

// resources/subscribe and logging are deprecated for the 2026-07-28 revision;
// clients of the earlier revisions use them, and these tests are such clients.
#![allow(deprecated)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::RoleClient;
use rmcp::model::{ReadResourceRequestParams, SubscribeRequestParams};
use rmcp::service::RunningService;
use serde_json::json;
use tests::mcp::{Server, Storage};

use crate::{bin, client_with, ids, load_sales, with};

/// The URIs of the updates a client heard.
#[derive(Clone, Default)]
struct Updates(Arc<Mutex<Vec<String>>>);

impl rmcp::ClientHandler for Updates {
    fn on_resource_updated(
        &self,
        params: rmcp::model::ResourceUpdatedNotificationParam,
        _context: rmcp::service::NotificationContext<RoleClient>,
    ) -> impl std::future::Future<Output = ()> + Send + '_ {
        self.0.lock().unwrap().push(params.uri);
        std::future::ready(())
    }
}

async fn subscriber(
    storage: &Storage,
    allow: &std::path::Path,
) -> (RunningService<RoleClient, Updates>, Updates) {
    let updates = Updates::default();
    let (client, _) = client_with(storage, allow, updates.clone()).await;
    (client, updates)
}

async fn another_process_changes_are_heard(storage: Storage) {
    let dir = tempfile::tempdir().unwrap();
    let b = Server::start(bin(), &storage, dir.path(), &[]).await;
    let session = load_sales(&b, dir.path()).await;
    let (a, updates) = subscriber(&storage, dir.path()).await;
    let uri = format!("dataframe://{session}/sales");
    a.subscribe(SubscribeRequestParams::new(&uri))
        .await
        .unwrap();

    let t = ids(&session, "sales");
    b.ok(
        "fill_missing",
        with(t.clone(), json!({ "strategy": "zero" })),
    )
    .await;
    let changed = Instant::now();
    while updates.0.lock().unwrap().is_empty() {
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "A heard nothing within 1 s of B's change"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(*updates.0.lock().unwrap(), vec![uri.clone()]);
    // What A reads now is B's version.
    let view = a
        .read_resource(ReadResourceRequestParams::new(&uri))
        .await
        .unwrap();
    let text = serde_json::to_string(&view.contents).unwrap();
    assert!(text.contains("Version 2"), "{text}");
    let _ = a.cancel().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_changes_are_heard_embedded() {
    let dir = tempfile::tempdir().unwrap();
    another_process_changes_are_heard(Storage::embedded(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_changes_are_heard_redis() {
    another_process_changes_are_heard(Storage::redis()).await;
}
