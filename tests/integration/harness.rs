//! Test infrastructure: store construction per backend (the Redis servers
//! come from the `tests` support library).

use std::sync::Arc;

use dfmcp_storage::{
    Backend, MemoryBackend, RedisBackend, RedisConfig, SqliteBackend, Store, StoreConfig,
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
/// their state (one data dir, one key prefix), like processes sharing a backend.
pub struct Harness {
    backend: Arc<dyn Backend>,
    /// Keeps the SQLite data directory alive as long as the harness.
    _dir: Option<tempfile::TempDir>,
}

impl Harness {
    pub async fn new(kind: Kind) -> Self {
        let (backend, dir): (Arc<dyn Backend>, _) = match kind {
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
        };
        Harness { backend, _dir: dir }
    }

    pub fn backend(&self) -> Arc<dyn Backend> {
        self.backend.clone()
    }

    /// A store with test-friendly defaults (small parts, so multi-part paths
    /// are exercised) changed by `tweak`.
    pub fn store_with(&self, tweak: impl FnOnce(&mut StoreConfig)) -> Store {
        let mut config = StoreConfig {
            part_target_bytes: 64 * 1024,
            ..StoreConfig::default()
        };
        tweak(&mut config);
        Store::new(self.backend.clone(), config)
    }

    pub fn store(&self) -> Store {
        self.store_with(|_| {})
    }
}
