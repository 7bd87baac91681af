//! The pool CPU-heavy work runs on: a fixed set of threads with large stacks,
//! fed fairly from per-lane queues.
//!
//! - A job holds its worker until it really ends, whether or not its caller
//!   still waits: the bound on parallel work holds under cancellation.
//! - A caller that goes away cancels its job: a job not started yet is
//!   skipped, a running one sees [`Cancel::is_cancelled`] at its next check.
//! - Lanes (one per session) take turns, and one lane never runs more than
//!   `per_lane` jobs at once, so one session's heavy calls leave a worker for
//!   every other session.
//! - Threads have big stacks (default 64 MiB) because deep expression trees
//!   are walked recursively by the SQL parser and planner.

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::error::{Result, StoreError};

/// Tells a running job that its caller is gone.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once the caller is gone: for `?` in loops.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(StoreError::Cancelled)
        } else {
            Ok(())
        }
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

type Job = Box<dyn FnOnce() + Send + 'static>;

struct Queued {
    job: Job,
    cancel: Cancel,
}

#[derive(Default)]
struct State {
    /// Lanes with queued jobs, in turn order.
    turns: VecDeque<String>,
    queues: HashMap<String, VecDeque<Queued>>,
    running: HashMap<String, usize>,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    per_lane: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next runnable job: the first lane in turn order that has work and
    /// room, which then goes to the back of the line.
    fn next(&self, state: &mut State) -> Option<(String, Queued)> {
        let position = state
            .turns
            .iter()
            .position(|lane| state.running.get(lane).copied().unwrap_or(0) < self.per_lane)?;
        let lane = state.turns.remove(position)?;
        let queue = state.queues.get_mut(&lane)?;
        let queued = queue.pop_front()?;
        if queue.is_empty() {
            state.queues.remove(&lane);
        } else {
            state.turns.push_back(lane.clone());
        }
        *state.running.entry(lane.clone()).or_default() += 1;
        Some((lane, queued))
    }

    fn worker(self: Arc<Self>) {
        loop {
            let (lane, queued) = {
                let mut state = self.lock();
                loop {
                    if let Some(found) = self.next(&mut state) {
                        break found;
                    }
                    if state.shutdown {
                        return;
                    }
                    state = self.wake.wait(state).unwrap_or_else(|p| p.into_inner());
                }
            };
            if !queued.cancel.is_cancelled() {
                (queued.job)();
            }
            let mut state = self.lock();
            if let Some(n) = state.running.get_mut(&lane) {
                *n -= 1;
                if *n == 0 {
                    state.running.remove(&lane);
                }
            }
            drop(state);
            self.wake.notify_all();
        }
    }
}

/// The compute pool of a store.
pub struct Compute {
    shared: Arc<Shared>,
    threads: usize,
}

impl std::fmt::Debug for Compute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compute")
            .field("threads", &self.threads)
            .field("per_lane", &self.shared.per_lane)
            .finish()
    }
}

impl Compute {
    /// `threads` workers with `stack_bytes` of stack each; one lane runs at
    /// most `threads - 1` jobs at once (1 with a single worker).
    pub fn new(threads: usize, stack_bytes: usize) -> Self {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            per_lane: threads.saturating_sub(1).max(1),
        });
        for i in 0..threads {
            let shared = shared.clone();
            // A pool that cannot start a thread is a machine out of
            // resources; the jobs then wait for the workers that did start.
            if let Err(e) = std::thread::Builder::new()
                .name(format!("dfmcp-compute-{i}"))
                .stack_size(stack_bytes)
                .spawn(move || shared.worker())
            {
                tracing::error!(error = %e, "starting a compute thread failed");
            }
        }
        Compute { shared, threads }
    }

    /// Runs `f` on the pool in `lane` and waits for its result. Dropping the
    /// returned future cancels the job (see the module docs).
    pub async fn run<T, F>(&self, lane: &str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Cancel) -> T + Send + 'static,
    {
        let cancel = Cancel::default();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job_cancel = cancel.clone();
        let job: Job = Box::new(move || {
            let outcome = catch_unwind(AssertUnwindSafe(|| f(&job_cancel)));
            let _ = tx.send(outcome.map_err(panic_message));
        });
        {
            let mut state = self.shared.lock();
            let queue = state.queues.entry(lane.to_string()).or_default();
            let first = queue.is_empty();
            queue.push_back(Queued {
                job,
                cancel: cancel.clone(),
            });
            if first {
                state.turns.push_back(lane.to_string());
            }
        }
        self.shared.wake.notify_all();
        let guard = CancelOnDrop(cancel);
        let outcome = rx.await;
        std::mem::forget(guard);
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) => Err(StoreError::Internal(format!(
                "a worker panicked: {message}"
            ))),
            Err(_) => Err(StoreError::Internal(
                "a worker stopped without an answer".into(),
            )),
        }
    }

    /// Jobs waiting to start, over all lanes.
    pub fn queued(&self) -> usize {
        self.shared.lock().queues.values().map(VecDeque::len).sum()
    }
}

impl Drop for Compute {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.wake.notify_all();
    }
}

struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn results_and_panics_come_back() {
        let pool = Compute::new(2, 1 << 20);
        assert_eq!(pool.run("a", |_| 21 * 2).await.unwrap(), 42);
        let err = pool
            .run("a", |_| -> i32 { panic!("boom") })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
        assert_eq!(pool.run("a", |_| 1).await.unwrap(), 1, "the pool survives");
    }

    /// Regression: the slot was released when the caller's future was
    /// dropped, while the job kept running.
    #[tokio::test]
    async fn a_dropped_caller_keeps_its_slot_until_the_job_ends() {
        let pool = Arc::new(Compute::new(1, 1 << 20));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let job = |running: Arc<AtomicUsize>, peak: Arc<AtomicUsize>| {
            move |cancel: &Cancel| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                // Ignores cancellation for a while, as polars work does.
                std::thread::sleep(Duration::from_millis(150));
                let seen = cancel.is_cancelled();
                running.fetch_sub(1, Ordering::SeqCst);
                seen
            }
        };
        let first = {
            let pool = pool.clone();
            let f = job(running.clone(), peak.clone());
            tokio::spawn(async move { pool.run("a", f).await })
        };
        while running.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        first.abort();
        let second = pool.run("b", job(running.clone(), peak.clone())).await;
        assert!(!second.unwrap());
        assert_eq!(peak.load(Ordering::SeqCst), 1, "never two jobs at once");
    }

    #[tokio::test]
    async fn a_job_whose_caller_left_before_it_started_is_skipped() {
        let pool = Arc::new(Compute::new(1, 1 << 20));
        let ran = Arc::new(AtomicBool::new(false));
        let blocker = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run("a", |_| std::thread::sleep(Duration::from_millis(100)))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let waiting = {
            let pool = pool.clone();
            let ran = ran.clone();
            tokio::spawn(async move {
                pool.run("b", move |_| ran.store(true, Ordering::SeqCst))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        waiting.abort();
        blocker.await.unwrap().unwrap();
        pool.run("c", |_| ()).await.unwrap();
        assert!(!ran.load(Ordering::SeqCst));
    }

    /// One lane's heavy jobs never take every worker.
    #[tokio::test]
    async fn another_lane_gets_a_worker_while_one_lane_is_busy() {
        let pool = Arc::new(Compute::new(2, 1 << 20));
        let released = Arc::new(AtomicBool::new(false));
        // Each heavy job holds its worker until the other lane's job ran (or
        // 10 s passed, which is what starvation would look like).
        let heavy: Vec<_> = (0..3)
            .map(|_| {
                let pool = pool.clone();
                let released = released.clone();
                tokio::spawn(async move {
                    pool.run("busy", move |_| {
                        let deadline = std::time::Instant::now() + Duration::from_secs(10);
                        while !released.load(Ordering::SeqCst)
                            && std::time::Instant::now() < deadline
                        {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        released.load(Ordering::SeqCst)
                    })
                    .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(30)).await;
        let flag = released.clone();
        pool.run("other", move |_| flag.store(true, Ordering::SeqCst))
            .await
            .unwrap();
        for h in heavy {
            assert!(h.await.unwrap().unwrap(), "a heavy job held every worker");
        }
    }
}
