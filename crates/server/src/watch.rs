//! Live updates of table resources: whoever moves a table's head — this
//! process or another on the same store — its subscribers hear
//! `notifications/resources/updated`.
//!
//! The head is read from the store, not learned from this process's own
//! commits, so a change made by any process is seen the same way and no
//! backend needs a channel of its own: every [`POLL`], one small state read
//! per subscribed table (the same read every tool call starts with). A
//! table's head is its (version, manifest); undo, redo, a commit, a rename
//! away or a drop all change what the resource reads, and each is one
//! notification. The loop runs only while someone is subscribed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use dfmcp_storage::{Store, StoreError};

use crate::server::AppState;
use rmcp::RoleServer;
use rmcp::model::ResourceUpdatedNotificationParam;
use rmcp::service::SubscriptionSink;

/// How often subscribed heads are read: well inside the second a user
/// expects, a few small reads a second per subscribed table.
pub const POLL: Duration = Duration::from_millis(250);

/// Where an update goes.
#[derive(Clone)]
pub enum Notify {
    /// A `resources/subscribe` client (sessionful protocol revisions).
    Peer(rmcp::Peer<RoleServer>),
    /// A `subscriptions/listen` stream (2026-07-28).
    Stream(SubscriptionSink),
}

impl Notify {
    async fn send(&self, uri: &str) -> bool {
        match self {
            Notify::Peer(peer) => peer
                .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                .await
                .is_ok(),
            Notify::Stream(sink) => sink.notify_resource_updated(uri).await.is_ok(),
        }
    }
}

/// What a table's resource reads, as far as change goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Head {
    At { version: u64, manifest: String },
    Gone,
}

struct Subscription {
    /// The store's session id and the table.
    key: (String, String),
    /// The URI the subscriber used, echoed in every notification.
    uri: String,
    notify: Notify,
}

#[derive(Default)]
struct State {
    subs: HashMap<u64, Subscription>,
    heads: HashMap<(String, String), Head>,
    next: u64,
    polling: bool,
}

/// Subscriptions of one process.
#[derive(Clone, Default)]
pub struct Watcher {
    state: Arc<Mutex<State>>,
}

impl Watcher {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Watches `table` of the stored `session` for `notify` until
    /// [`Watcher::remove`]; returns the subscription's id. Changes after this
    /// call are reported, even ones made before the first poll.
    pub async fn add(
        &self,
        app: &Arc<AppState>,
        session: String,
        table: String,
        uri: String,
        notify: Notify,
    ) -> u64 {
        let key = (session, table);
        let baseline = head(&app.store, &key).await;
        let (id, start) = {
            let mut state = self.lock();
            state.next += 1;
            let id = state.next;
            if let Some(head) = baseline {
                state.heads.entry(key.clone()).or_insert(head);
            }
            state.subs.insert(id, Subscription { key, uri, notify });
            let start = !state.polling;
            state.polling = true;
            (id, start)
        };
        if start {
            let this = self.clone();
            let app = app.clone();
            tokio::spawn(async move { this.poll(app).await });
        }
        id
    }

    pub fn remove(&self, id: u64) {
        let mut state = self.lock();
        if let Some(sub) = state.subs.remove(&id)
            && !state.subs.values().any(|s| s.key == sub.key)
        {
            state.heads.remove(&sub.key);
        }
    }

    /// The ids of the subscriptions to `uri` made through `peer`-style
    /// notifiers (for `resources/unsubscribe`).
    pub fn find(&self, uri: &str) -> Vec<u64> {
        self.lock()
            .subs
            .iter()
            .filter(|(_, s)| s.uri == uri && matches!(s.notify, Notify::Peer(_)))
            .map(|(id, _)| *id)
            .collect()
    }

    async fn poll(&self, app: Arc<AppState>) {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let keys: Vec<(String, String)> = {
                let mut state = self.lock();
                if state.subs.is_empty() {
                    state.polling = false;
                    return;
                }
                let mut keys: Vec<_> = state.subs.values().map(|s| s.key.clone()).collect();
                keys.sort();
                keys.dedup();
                keys
            };
            for key in keys {
                let Some(now) = head(&app.store, &key).await else {
                    continue;
                };
                let targets: Vec<(u64, String, Notify)> = {
                    let mut state = self.lock();
                    let before = state.heads.insert(key.clone(), now.clone());
                    if before.is_none_or(|b| b == now) {
                        continue;
                    }
                    state
                        .subs
                        .iter()
                        .filter(|(_, s)| s.key == key)
                        .map(|(id, s)| (*id, s.uri.clone(), s.notify.clone()))
                        .collect()
                };
                for (id, uri, notify) in targets {
                    // A subscriber that is gone (its connection closed)
                    // needs no more.
                    if !notify.send(&uri).await {
                        self.remove(id);
                    }
                }
            }
        }
    }
}

/// The head of a table, `None` when the store cannot say right now (it is
/// unreachable): no news is not a change.
async fn head(store: &Store, key: &(String, String)) -> Option<Head> {
    match store.table_state(&key.0, &key.1).await {
        Ok((_, state)) => Some(Head::At {
            version: state.head.version,
            manifest: state.head.manifest,
        }),
        Err(StoreError::SessionNotFound { .. } | StoreError::TableNotFound { .. }) => {
            Some(Head::Gone)
        }
        Err(e) => {
            tracing::debug!(error = %e, "reading a subscribed table's head");
            None
        }
    }
}
