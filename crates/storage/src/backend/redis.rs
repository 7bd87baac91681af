//! Redis backend: state shared by many server processes and machines.
//!
//! Every key of a session carries the hash tag `{<session>}`, so each atomic
//! script touches one slot and the same code runs on a single node and on a
//! Redis Cluster. Keys (with the default prefix `dfmcp:`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `dfmcp:{s}:meta` | hash | created, last access, ttl (its existence is the session's) |
//! | `dfmcp:{s}:revs` | hash | table name → revision |
//! | `dfmcp:{s}:tables` | hash | table name → state document |
//! | `dfmcp:{s}:log` | list | `<table uid>\t<log record>` |
//! | `dfmcp:{s}:blobs` | hash | blob id → bytes |
//! | `dfmcp:{s}:btime` | hash | blob id → last touch (ms) |
//! | `dfmcp:sessions` | set | session ids (an index; entries of expired sessions are pruned when listed) |
//!
//! Every key of a session expires after the session's idle TTL and every access
//! refreshes all of them, so Redis itself expires idle sessions. The server must
//! run with `maxmemory-policy noeviction`: an evicted key would corrupt a session.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{RedisError, Script, Value};

use super::{
    Backend, Blob, BlobInfo, Capabilities, CasOutcome, LogAppend, SessionMeta, TableChange,
    TableRecord,
};
use crate::error::{Result, StoreError};

/// How to reach Redis.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// One URL (`redis://`, `rediss://`, `redis+unix://`), or for a cluster
    /// one or more seed node URLs separated by commas.
    pub url: String,
    pub cluster: bool,
    /// Prefix of every key (default `dfmcp:`), so several deployments can
    /// share one Redis.
    pub prefix: String,
    /// How long one command may take; large blobs need more than the
    /// client's 500 ms default.
    pub response_timeout: Duration,
    pub connection_timeout: Duration,
}

impl RedisConfig {
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            cluster: false,
            prefix: "dfmcp:".into(),
            response_timeout: Duration::from_secs(30),
            connection_timeout: Duration::from_secs(5),
        }
    }
}

/// A Redis backend over any async connection: [`ConnectionManager`] for a
/// single node, [`ClusterConnection`] for a cluster.
#[derive(Clone)]
pub struct RedisBackend<C> {
    conn: C,
    prefix: String,
    /// The URL with any password masked, for messages.
    shown_url: String,
    secret: Option<String>,
}

impl<C> std::fmt::Debug for RedisBackend<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("url", &self.shown_url)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisBackend<ConnectionManager> {
    /// A single-node backend. It connects lazily and reconnects by itself, so
    /// it can be created while Redis is down.
    pub fn single(config: &RedisConfig) -> Result<Self> {
        install_crypto_provider();
        let shown = redact_url(&config.url);
        let client = redis::Client::open(config.url.as_str()).map_err(|e| StoreError::Backend {
            backend: "redis",
            message: format!(
                "invalid REDIS_URL {shown}: {}",
                scrub(&e.to_string(), password(&config.url))
            ),
        })?;
        let manager_config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(config.response_timeout))
            .set_connection_timeout(Some(config.connection_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let conn = client
            .get_connection_manager_lazy(manager_config)
            .map_err(|e| map_err(e, &shown, password(&config.url)))?;
        Ok(RedisBackend {
            conn,
            prefix: config.prefix.clone(),
            shown_url: shown,
            secret: password(&config.url).map(str::to_string),
        })
    }
}

impl RedisBackend<ClusterConnection> {
    /// A cluster backend from one or more seed nodes.
    pub async fn cluster(config: &RedisConfig) -> Result<Self> {
        install_crypto_provider();
        let urls: Vec<&str> = config
            .url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        let shown = urls
            .iter()
            .map(|u| redact_url(u))
            .collect::<Vec<_>>()
            .join(",");
        let secret = urls.iter().find_map(|u| password(u)).map(str::to_string);
        let client = redis::cluster::ClusterClientBuilder::new(urls)
            .connection_timeout(config.connection_timeout)
            .response_timeout(config.response_timeout)
            .build()
            .map_err(|e| map_err(e, &shown, secret.as_deref()))?;
        let conn = client
            .get_async_connection()
            .await
            .map_err(|e| map_err(e, &shown, secret.as_deref()))?;
        Ok(RedisBackend {
            conn,
            prefix: config.prefix.clone(),
            shown_url: shown,
            secret,
        })
    }
}

fn install_crypto_provider() {
    // rustls panics at the first TLS handshake unless a process-wide provider
    // is installed; installing twice is an error we can ignore.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The password in a URL, if any.
fn password(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let pass = userinfo.split_once(':').map_or(userinfo, |(_, p)| p);
    (!pass.is_empty()).then_some(pass)
}

/// The URL with its password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match password(url) {
        Some(pass) => url.replacen(&format!("{pass}@"), "***@", 1),
        None => url.to_string(),
    }
}

fn scrub(message: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() => message.replace(s, "***"),
        _ => message.to_string(),
    }
}

fn map_err(e: RedisError, shown_url: &str, secret: Option<&str>) -> StoreError {
    let message = scrub(&e.to_string(), secret);
    let down = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_unrecoverable_error()
        || e.is_cluster_error()
        || message.contains("CLUSTERDOWN")
        || message.contains("LOADING")
        || message.contains("TRYAGAIN");
    if down {
        return StoreError::Unavailable {
            backend: "redis",
            message: format!("{shown_url}: {message}"),
        };
    }
    let hint = if message.contains("OOM") {
        " (Redis is out of memory: raise maxmemory; keep maxmemory-policy noeviction)"
    } else if message.contains("NOAUTH") || message.contains("WRONGPASS") {
        " (check the credentials in REDIS_URL)"
    } else {
        ""
    };
    StoreError::Backend {
        backend: "redis",
        message: format!("{message}{hint}"),
    }
}

struct Keys {
    meta: String,
    revs: String,
    tables: String,
    log: String,
    blobs: String,
    btime: String,
}

impl Keys {
    fn all(&self) -> [&str; 6] {
        [
            &self.meta,
            &self.revs,
            &self.tables,
            &self.log,
            &self.blobs,
            &self.btime,
        ]
    }
}

static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('HSET', KEYS[1], 'created', ARGV[1], 'last', ARGV[2], 'ttl', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"#,
    )
});

static OPEN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], 'last', ARGV[1])
local ttl = redis.call('HGET', KEYS[1], 'ttl')
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
local meta = redis.call('HMGET', KEYS[1], 'created', 'last', 'ttl')
if ARGV[2] == '' then return {meta, false, false} end
local rev = redis.call('HGET', KEYS[2], ARGV[2])
if not rev then return {meta, false, false} end
return {meta, rev, redis.call('HGET', KEYS[3], ARGV[2])}
"#,
    )
});

static CAS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, '', ''} end
local n = tonumber(ARGV[2])
local i = 3
for c = 1, n do
  local cur = redis.call('HGET', KEYS[2], ARGV[i])
  if ARGV[i + 1] == '' then
    if cur then return {0, ARGV[i], cur} end
  elseif cur ~= ARGV[i + 1] then
    return {0, ARGV[i], cur or ''}
  end
  i = i + 4
end
i = 3
for c = 1, n do
  if ARGV[i + 2] == '' then
    redis.call('HDEL', KEYS[2], ARGV[i])
    redis.call('HDEL', KEYS[3], ARGV[i])
  else
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2])
    redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 3])
  end
  i = i + 4
end
local m = tonumber(ARGV[i])
for j = 1, m do redis.call('RPUSH', KEYS[4], ARGV[i + j]) end
redis.call('HSET', KEYS[1], 'last', ARGV[1])
local ttl = redis.call('HGET', KEYS[1], 'ttl')
for k = 1, #KEYS do redis.call('PEXPIRE', KEYS[k], ttl) end
return {1, '', ''}
"#,
    )
});

static LIST_TABLES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {{}, {}} end
return {redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3])}
"#,
    )
});

static PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local ttl = redis.call('HGET', KEYS[1], 'ttl')
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[1])
end
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
return 1
"#,
    )
});

static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local out = {}
for i = 2, #ARGV do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[1])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"#,
    )
});

static LIST_BLOBS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('HGETALL', KEYS[2])
local out = {}
for i = 1, #t, 2 do
  out[#out + 1] = t[i]
  out[#out + 1] = t[i + 1]
  out[#out + 1] = redis.call('HSTRLEN', KEYS[1], t[i])
end
return out
"#,
    )
});

static DELETE_BLOBS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local freed = 0
local cutoff = tonumber(ARGV[1])
for i = 2, #ARGV do
  local t = redis.call('HGET', KEYS[2], ARGV[i])
  if (not t) or tonumber(t) < cutoff then
    freed = freed + redis.call('HSTRLEN', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
  end
end
return freed
"#,
    )
});

/// Ids per HMGET: parts are at most ~8 MiB, so one reply stays bounded.
const GET_BATCH: usize = 8;

impl<C> RedisBackend<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    fn keys(&self, session: &str) -> Keys {
        let base = format!("{}{{{session}}}", self.prefix);
        Keys {
            meta: format!("{base}:meta"),
            revs: format!("{base}:revs"),
            tables: format!("{base}:tables"),
            log: format!("{base}:log"),
            blobs: format!("{base}:blobs"),
            btime: format!("{base}:btime"),
        }
    }

    fn index_key(&self) -> String {
        format!("{}sessions", self.prefix)
    }

    fn err(&self, e: RedisError) -> StoreError {
        map_err(e, &self.shown_url, self.secret.as_deref())
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T> {
        cmd.query_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))
    }
}

fn meta_from(id: &str, fields: &[Option<String>]) -> Option<SessionMeta> {
    let num = |i: usize| fields.get(i)?.as_deref()?.parse::<i64>().ok();
    Some(SessionMeta {
        id: id.to_string(),
        created_ms: num(0)?,
        last_access_ms: num(1)?,
        ttl_ms: num(2)?,
    })
}

fn pairs(value: Value) -> Vec<(Vec<u8>, Vec<u8>)> {
    let items = match value {
        Value::Array(items) => items,
        Value::Map(map) => map.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    };
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut iter = items.into_iter();
    while let (Some(k), Some(v)) = (iter.next(), iter.next()) {
        if let (Ok(k), Ok(v)) = (
            redis::from_redis_value::<Vec<u8>>(k),
            redis::from_redis_value::<Vec<u8>>(v),
        ) {
            out.push((k, v));
        }
    }
    out
}

#[async_trait]
impl<C> Backend for RedisBackend<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    fn name(&self) -> &'static str {
        "redis"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            native_frames: false,
            shared: true,
            native_ttl: true,
        }
    }

    async fn create_session(&self, meta: &SessionMeta) -> Result<bool> {
        let keys = self.keys(&meta.id);
        let created: i64 = CREATE
            .key(&keys.all()[..])
            .arg(meta.created_ms)
            .arg(meta.last_access_ms)
            .arg(meta.ttl_ms)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        if created == 1 {
            self.query::<()>(redis::cmd("SADD").arg(self.index_key()).arg(&meta.id))
                .await?;
        }
        Ok(created == 1)
    }

    async fn open(
        &self,
        session: &str,
        table: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<(SessionMeta, Option<TableRecord>)>> {
        let keys = self.keys(session);
        type Reply = Option<(Vec<Option<String>>, Option<u64>, Option<Vec<u8>>)>;
        let reply: Reply = OPEN
            .key(&keys.all()[..])
            .arg(now_ms)
            .arg(table.unwrap_or(""))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        let Some((fields, rev, doc)) = reply else {
            return Ok(None);
        };
        let meta = meta_from(session, &fields).ok_or_else(|| {
            StoreError::Corrupt(format!("session {session} has unreadable metadata"))
        })?;
        let record = match (table, rev, doc) {
            (Some(name), Some(rev), Some(doc)) => Some(TableRecord {
                name: name.to_string(),
                rev,
                doc: Bytes::from(doc),
            }),
            _ => None,
        };
        Ok(Some((meta, record)))
    }

    async fn list_sessions(&self, now_ms: i64) -> Result<Vec<SessionMeta>> {
        let ids: Vec<String> = self
            .query(redis::cmd("SMEMBERS").arg(self.index_key()))
            .await?;
        let mut live = Vec::new();
        let mut dead = Vec::new();
        for id in ids {
            let fields: Vec<Option<String>> = self
                .query(
                    redis::cmd("HMGET")
                        .arg(self.keys(&id).meta)
                        .arg("created")
                        .arg("last")
                        .arg("ttl"),
                )
                .await?;
            match meta_from(&id, &fields) {
                Some(meta) if !meta.is_expired(now_ms) => live.push(meta),
                _ => dead.push(id),
            }
        }
        if !dead.is_empty() {
            self.query::<()>(redis::cmd("SREM").arg(self.index_key()).arg(&dead))
                .await?;
        }
        Ok(live)
    }

    async fn delete_session(&self, session: &str) -> Result<bool> {
        let keys = self.keys(session);
        let deleted: i64 = self.query(redis::cmd("DEL").arg(&keys.all()[..])).await?;
        self.query::<()>(redis::cmd("SREM").arg(self.index_key()).arg(session))
            .await?;
        // The meta key is what makes a session exist.
        Ok(deleted > 0)
    }

    async fn purge_expired(&self, _now_ms: i64) -> Result<Vec<String>> {
        // Redis expires every key of an idle session by itself.
        Ok(Vec::new())
    }

    async fn list_tables(&self, session: &str) -> Result<Vec<TableRecord>> {
        let keys = self.keys(session);
        let (revs, docs): (Value, Value) = LIST_TABLES
            .key(&keys.meta)
            .key(&keys.revs)
            .key(&keys.tables)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        let docs: std::collections::HashMap<Vec<u8>, Vec<u8>> = pairs(docs).into_iter().collect();
        let mut out = Vec::new();
        for (name, rev) in pairs(revs) {
            let rev = String::from_utf8_lossy(&rev).parse::<u64>().unwrap_or(0);
            if let Some(doc) = docs.get(&name) {
                out.push(TableRecord {
                    name: String::from_utf8_lossy(&name).into_owned(),
                    rev,
                    doc: Bytes::from(doc.clone()),
                });
            }
        }
        Ok(out)
    }

    async fn cas_tables(
        &self,
        session: &str,
        changes: &[TableChange],
        log: &[LogAppend],
        now_ms: i64,
    ) -> Result<CasOutcome> {
        let keys = self.keys(session);
        let mut inv = CAS.prepare_invoke();
        inv.key(&keys.all()[..]).arg(now_ms).arg(changes.len());
        for change in changes {
            inv.arg(&change.name).arg(
                change
                    .expected_rev
                    .map(|r| r.to_string())
                    .unwrap_or_default(),
            );
            match &change.new {
                Some((rev, doc)) => inv.arg(rev.to_string()).arg(doc.as_ref()),
                None => inv.arg("").arg(""),
            };
        }
        inv.arg(log.len());
        for entry in log {
            let mut line = Vec::with_capacity(entry.table_uid.len() + 1 + entry.record.len());
            line.extend_from_slice(entry.table_uid.as_bytes());
            line.push(b'\t');
            line.extend_from_slice(&entry.record);
            inv.arg(line);
        }
        let (code, name, current): (i64, String, String) = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        Ok(match code {
            1 => CasOutcome::Applied,
            -1 => CasOutcome::SessionGone,
            _ => CasOutcome::Conflict {
                name,
                current: current.parse().ok(),
            },
        })
    }

    async fn read_log(&self, session: &str, table_uid: &str) -> Result<Vec<Bytes>> {
        let lines: Vec<Vec<u8>> = self
            .query(
                redis::cmd("LRANGE")
                    .arg(self.keys(session).log)
                    .arg(0)
                    .arg(-1),
            )
            .await?;
        let prefix = format!("{table_uid}\t");
        Ok(lines
            .into_iter()
            .filter_map(|line| {
                line.strip_prefix(prefix.as_bytes())
                    .map(Bytes::copy_from_slice)
            })
            .collect())
    }

    async fn put_blobs(
        &self,
        session: &str,
        blobs: Vec<(String, Blob)>,
        now_ms: i64,
    ) -> Result<()> {
        if blobs.is_empty() {
            return Ok(());
        }
        let keys = self.keys(session);
        let mut inv = PUT.prepare_invoke();
        inv.key(&keys.meta)
            .key(&keys.blobs)
            .key(&keys.btime)
            .arg(now_ms);
        for (id, blob) in &blobs {
            let Blob::Bytes(bytes) = blob else {
                return Err(StoreError::Internal(
                    "the redis backend stores encoded blobs only".into(),
                ));
            };
            inv.arg(id).arg(bytes.as_ref());
        }
        let ok: i64 = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        if ok == 0 {
            return Err(StoreError::SessionNotFound { id: session.into() });
        }
        Ok(())
    }

    async fn touch_blobs(&self, session: &str, ids: &[String], now_ms: i64) -> Result<Vec<bool>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys = self.keys(session);
        let mut out = Vec::with_capacity(ids.len());
        for batch in ids.chunks(4096) {
            let flags: Vec<i64> = TOUCH
                .key(&keys.blobs)
                .key(&keys.btime)
                .arg(now_ms)
                .arg(batch)
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(|e| self.err(e))?;
            out.extend(flags.into_iter().map(|f| f == 1));
        }
        Ok(out)
    }

    async fn get_blobs(&self, session: &str, ids: &[String]) -> Result<Vec<Option<Blob>>> {
        let key = self.keys(session).blobs;
        let mut out = Vec::with_capacity(ids.len());
        for batch in ids.chunks(GET_BATCH) {
            let values: Vec<Option<Vec<u8>>> =
                self.query(redis::cmd("HMGET").arg(&key).arg(batch)).await?;
            out.extend(
                values
                    .into_iter()
                    .map(|v| v.map(|b| Blob::Bytes(Bytes::from(b)))),
            );
        }
        Ok(out)
    }

    async fn list_blobs(&self, session: &str) -> Result<Vec<BlobInfo>> {
        let keys = self.keys(session);
        let flat: Vec<Value> = LIST_BLOBS
            .key(&keys.blobs)
            .key(&keys.btime)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(flat.len() / 3);
        let mut iter = flat.into_iter();
        while let (Some(id), Some(touched), Some(size)) = (iter.next(), iter.next(), iter.next()) {
            let id: String = redis::from_redis_value(id).map_err(|e| self.err(e.into()))?;
            let touched: String =
                redis::from_redis_value(touched).map_err(|e| self.err(e.into()))?;
            let size: u64 = redis::from_redis_value(size).map_err(|e| self.err(e.into()))?;
            out.push(BlobInfo {
                id,
                size,
                touched_ms: touched.parse().unwrap_or(0),
            });
        }
        Ok(out)
    }

    async fn delete_blobs(
        &self,
        session: &str,
        ids: &[String],
        untouched_before_ms: i64,
    ) -> Result<u64> {
        let keys = self.keys(session);
        let mut freed = 0;
        for batch in ids.chunks(1024) {
            let n: u64 = DELETE_BLOBS
                .key(&keys.blobs)
                .key(&keys.btime)
                .arg(untouched_before_ms)
                .arg(batch)
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(|e| self.err(e))?;
            freed += n;
        }
        Ok(freed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            redact_url("rediss://default:s3cret@eu1.upstash.io:6379"),
            "rediss://default:***@eu1.upstash.io:6379"
        );
        assert_eq!(
            redact_url("redis://:pw@localhost/0"),
            "redis://:***@localhost/0"
        );
        assert_eq!(
            redact_url("redis://localhost:6379"),
            "redis://localhost:6379"
        );
        assert_eq!(
            redact_url("redis+unix:///tmp/redis.sock"),
            "redis+unix:///tmp/redis.sock"
        );
        assert_eq!(
            scrub("auth failed for s3cret", Some("s3cret")),
            "auth failed for ***"
        );
    }
}
