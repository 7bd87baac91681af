//! What a call is doing, for whoever watches it: progress notifications to a
//! client that asked (a request with a progress token) and the heartbeat
//! messages of a task.
//!
//! Handlers say which phase they are in with [`phase`] ("reading sales.csv
//! (412 MB)", "storing 3,000,000 rows × 6 columns"); polars reports nothing
//! while it parses, so a phase is as fine-grained as a message can honestly
//! get. The phase lives in a task-local set for the call, so no signature
//! carries it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::RoleServer;

/// The current phase of one call, and a signal when it changes.
#[derive(Clone, Default)]
pub struct Phase {
    now: Arc<Mutex<Option<String>>>,
    changed: Arc<tokio::sync::Notify>,
}

impl Phase {
    pub fn get(&self) -> Option<String> {
        self.now.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, what: String) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = Some(what);
        // A stored permit: a watcher that is not waiting right now still
        // hears of it.
        self.changed.notify_one();
    }

    /// Waits until the phase changes (or changed since the last wait).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// A message for a watcher: the tool, its phase, the time so far.
    pub fn message(&self, tool: &str, started: Instant) -> String {
        let seconds = started.elapsed().as_secs();
        match self.get() {
            Some(phase) => format!("{tool}: {phase} ({seconds} s)"),
            None => format!("{tool} working ({seconds} s)"),
        }
    }

    /// Runs `f` with this as the phase [`phase`] sets.
    pub async fn scope<F: Future>(self, f: F) -> F::Output {
        CURRENT.scope(self, f).await
    }
}

tokio::task_local! {
    static CURRENT: Phase;
}

/// Says what the current call is doing now (nothing outside a call).
pub fn phase(what: impl Into<String>) {
    let _ = CURRENT.try_with(|p| p.set(what.into()));
}

/// A size in bytes for people.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64;
    let mut unit = "";
    for u in UNITS {
        value /= 1000.0;
        unit = u;
        if value < 1000.0 {
            break;
        }
    }
    format!("{value:.1} {unit}")
}

/// Progress notifications for one call, sent until dropped: one as the work
/// starts, one as each phase begins, and one every second between.
pub struct Progress(tokio::task::JoinHandle<()>);

impl Progress {
    pub fn start(
        peer: rmcp::Peer<RoleServer>,
        token: rmcp::model::ProgressToken,
        tool: String,
        phase: Phase,
    ) -> Self {
        Progress(tokio::spawn(async move {
            let started = Instant::now();
            for step in 0u32.. {
                let message = if step == 0 {
                    format!("{tool} started")
                } else {
                    phase.message(&tool, started)
                };
                let note =
                    rmcp::model::ProgressNotificationParam::new(token.clone(), f64::from(step))
                        .with_message(message);
                // A client that stopped listening (or a transport without
                // notifications) needs no more.
                if peer.notify_progress(note).await.is_err() {
                    return;
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = phase.changed() => {}
                }
            }
        }))
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn phases_are_per_call() {
        let first = Phase::default();
        let second = Phase::default();
        let started = Instant::now();
        first
            .clone()
            .scope(async {
                phase("reading a.csv (1.2 MB)");
                second
                    .clone()
                    .scope(async { phase("storing 10 rows × 2 columns") })
                    .await;
            })
            .await;
        assert!(
            first
                .message("load", started)
                .starts_with("load: reading a.csv (1.2 MB) (")
        );
        assert_eq!(second.get().as_deref(), Some("storing 10 rows × 2 columns"));
        // Outside a call, nothing to set and nothing breaks.
        phase("ignored");
        assert!(
            Phase::default()
                .message("x", started)
                .starts_with("x working (")
        );
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(1_234_567), "1.2 MB");
        assert_eq!(size(3_000_000_000), "3.0 GB");
    }
}
