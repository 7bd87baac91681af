//! Test infrastructure: store construction per backend (the Redis servers
//! come from the `tests` support library), with one hand-moved clock per
//! harness so that TTL and GC tests never sleep.

use std::sync::Arc;

use dfmcp_storage::{
    Backend, ManualClock, MemoryBackend, RedisBackend, RedisConfig, SqliteBackend, Store,
    StoreConfig,
};
pub use tests::redis::{ControlledRedis, random_prefix, redis_cluster_urls, redis_url};

/// Which backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    Sqlite,
    Redis,
    RedisCluster,
}

/// Builds stores of one backend kind; stores built by one harness share
/// their state (one data dir, one key prefix) and their clock, like
/// processes sharing a backend.
pub struct Harness {
    backend: Arc<dyn Backend>,
    pub clock: Arc<ManualClock>,
    /// Keeps the SQLite data directory alive as long as the harness.
    _dir: Option<tempfile::TempDir>,
}

/// A backend of `kind` (a fresh data directory or key prefix).
pub async fn backend(kind: Kind) -> (Arc<dyn Backend>, Option<tempfile::TempDir>) {
    match kind {
        Kind::Memory => (Arc::new(MemoryBackend::new()), None),
        Kind::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            (
                Arc::new(SqliteBackend::open(dir.path()).expect("open sqlite store")),
                Some(dir),
            )
        }
        Kind::Redis => {
            let mut cfg = RedisConfig::new(redis_url());
            cfg.prefix = random_prefix();
            (
                Arc::new(RedisBackend::single(&cfg).expect("redis backend")),
                None,
            )
        }
        Kind::RedisCluster => {
            let urls = tokio::task::spawn_blocking(redis_cluster_urls)
                .await
                .expect("cluster setup");
            let mut cfg = RedisConfig::new(urls);
            cfg.cluster = true;
            cfg.prefix = random_prefix();
            (
                Arc::new(
                    RedisBackend::cluster(&cfg)
                        .await
                        .expect("redis cluster backend"),
                ),
                None,
            )
        }
    }
}

impl Harness {
    pub async fn new(kind: Kind) -> Self {
        let (backend, dir) = backend(kind).await;
        Harness {
            backend,
            clock: Arc::new(ManualClock::new()),
            _dir: dir,
        }
    }

    pub fn backend(&self) -> Arc<dyn Backend> {
        self.backend.clone()
    }

    /// A store with test-friendly defaults (small parts, so multi-part paths
    /// are exercised; the harness clock) changed by `tweak`.
    pub fn store_with(&self, tweak: impl FnOnce(&mut StoreConfig)) -> Store {
        let mut config = StoreConfig {
            part_target_bytes: 64 * 1024,
            clock: self.clock.clone(),
            ..StoreConfig::default()
        };
        tweak(&mut config);
        Store::new(self.backend.clone(), config)
    }

    pub fn store(&self) -> Store {
        self.store_with(|_| {})
    }

    pub fn now(&self) -> i64 {
        use dfmcp_storage::Clock;
        self.clock.now_ms()
    }
}

/// Instantiates one test per (backend, case) for async fns taking a
/// [`Harness`].
#[macro_export]
macro_rules! per_backend {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                super::$case(&$crate::harness::Harness::new($crate::harness::Kind::Memory).await).await
            })*
        }
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                super::$case(&$crate::harness::Harness::new($crate::harness::Kind::Sqlite).await).await
            })*
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                super::$case(&$crate::harness::Harness::new($crate::harness::Kind::Redis).await).await
            })*
        }
        mod redis_cluster {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                super::$case(&$crate::harness::Harness::new($crate::harness::Kind::RedisCluster).await).await
            })*
        }
    };
}
