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
//! | `dfmcp:{s}:logs` | set | uids of the tables that have a log |
//! | `dfmcp:{s}:log:<uid>` | list | one table's log records, trimmed to the newest |
//! | `dfmcp:{s}:blobs` | hash | blob id → bytes |
//! | `dfmcp:{s}:btime` | hash | blob id → last touch (ms) |
//! | `dfmcp:ns:<namespace>:sessions` | set | session ids of a namespace (an index; entries of expired sessions are pruned when listed) |
//!
//! Every key of a session expires after the session's idle TTL and every access
//! refreshes all of them, so Redis itself expires idle sessions. The server must
//! run with `maxmemory-policy noeviction`: an evicted key would corrupt a session.
//! Scripts reach a table's log key through the session's hash tag, so it is
//! always in the slot of the keys they are given.

use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{RedisError, Script, TlsCertificates, Value};

use super::{
    Backend, Blob, BlobInfo, Capabilities, CasOutcome, CasRequest, SessionMeta, TableRecord,
    Throttle, namespace_of,
};
use crate::error::{Result, StoreError};

/// The default bound of one request or reply: hosted Redis (Upstash)
/// refuses requests over 10 MB.
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 8 << 20;

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
    /// Largest request or reply, in bytes (default 8 MiB).
    pub max_request_bytes: u64,
    /// A PEM file of the certificate authority that signed the server's TLS
    /// certificate, for `rediss://` servers with a private CA.
    pub ca_cert: Option<PathBuf>,
}

impl RedisConfig {
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            cluster: false,
            prefix: "dfmcp:".into(),
            response_timeout: Duration::from_secs(30),
            connection_timeout: Duration::from_secs(5),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            ca_cert: None,
        }
    }

    fn certificates(&self) -> Result<Option<TlsCertificates>> {
        let Some(path) = &self.ca_cert else {
            return Ok(None);
        };
        let pem = std::fs::read(path).map_err(|e| {
            StoreError::io(
                format!("reading the Redis CA certificate {}", path.display()),
                e,
            )
        })?;
        Ok(Some(TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        }))
    }
}

/// A Redis backend over any async connection: [`ConnectionManager`] for a
/// single node, [`ClusterConnection`] for a cluster.
#[derive(Clone)]
pub struct RedisBackend<C> {
    conn: C,
    prefix: String,
    max_request_bytes: u64,
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
        let secret = password(&config.url);
        let client = match config.certificates()? {
            Some(certs) => redis::Client::build_with_tls(config.url.as_str(), certs),
            None => redis::Client::open(config.url.as_str()),
        }
        .map_err(|e| {
            StoreError::backend(
                "redis",
                format!(
                    "invalid Redis URL {shown}: {}",
                    scrub(&e.to_string(), secret)
                ),
                None,
            )
        })?;
        let manager_config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(config.response_timeout))
            .set_connection_timeout(Some(config.connection_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let conn = client
            .get_connection_manager_lazy(manager_config)
            .map_err(|e| map_err(e, &shown, secret))?;
        Ok(RedisBackend {
            conn,
            prefix: config.prefix.clone(),
            max_request_bytes: config.max_request_bytes,
            shown_url: shown,
            secret: secret.map(str::to_string),
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
        let mut builder = redis::cluster::ClusterClientBuilder::new(urls)
            .connection_timeout(config.connection_timeout)
            .response_timeout(config.response_timeout);
        if let Some(certs) = config.certificates()? {
            builder = builder.certs(certs);
        }
        let client = builder
            .build()
            .map_err(|e| map_err(e, &shown, secret.as_deref()))?;
        let conn = client
            .get_async_connection()
            .await
            .map_err(|e| map_err(e, &shown, secret.as_deref()))?;
        Ok(RedisBackend {
            conn,
            prefix: config.prefix.clone(),
            max_request_bytes: config.max_request_bytes,
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

/// An error that keeps the scrubbed message only: Redis' own error can quote
/// the URL, password included, so it is not kept as a source.
fn map_err(e: RedisError, shown_url: &str, secret: Option<&str>) -> StoreError {
    let message = scrub(&e.to_string(), secret);
    // A server loading its dataset after a restart, a cluster failing over
    // or down: the request did not run and will work again soon.
    let transient = matches!(
        e.retry_method(),
        redis::RetryMethod::WaitAndRetry
            | redis::RetryMethod::Reconnect
            | redis::RetryMethod::ReconnectFromInitialConnections
            | redis::RetryMethod::RefreshSlotsAndRetry
    );
    let down = transient
        || e.is_io_error()
        || e.is_timeout()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_unrecoverable_error()
        || e.is_cluster_error()
        || message.contains("CLUSTERDOWN")
        || message.contains("LOADING")
        || message.contains("TRYAGAIN");
    if down {
        return StoreError::unavailable("redis", format!("{shown_url}: {message}"), None);
    }
    let hint = if message.contains("OOM") {
        " (Redis is out of memory: raise maxmemory; keep maxmemory-policy noeviction)"
    } else if message.contains("NOAUTH") || message.contains("WRONGPASS") {
        " (check the credentials in the Redis URL)"
    } else {
        ""
    };
    StoreError::backend("redis", format!("{message}{hint}"), None)
}

struct Keys {
    meta: String,
    revs: String,
    tables: String,
    logs: String,
    blobs: String,
    btime: String,
    /// `<prefix>{<session>}:log:`, to which a table uid is appended.
    log_base: String,
}

impl Keys {
    fn all(&self) -> [&str; 6] {
        [
            &self.meta,
            &self.revs,
            &self.tables,
            &self.logs,
            &self.blobs,
            &self.btime,
        ]
    }
}

/// Lua shared by the scripts below: whether the session (KEYS[1]) is live at
/// `now` by its own clock (Redis also expires it, in real time; checking the
/// stored times too makes expiry follow the store's clock on every backend),
/// and refreshing every key of a session (KEYS[1..6] and the per-table log
/// lists named in KEYS[4]) to the session's TTL.
const REFRESH: &str = r#"
local function alive(now)
  local m = redis.call('HMGET', KEYS[1], 'last', 'ttl')
  if not m[1] or not m[2] then return false end
  return tonumber(m[1]) + tonumber(m[2]) > tonumber(now)
end
local function refresh(log_base)
  local ttl = redis.call('HGET', KEYS[1], 'ttl')
  for i = 1, 6 do redis.call('PEXPIRE', KEYS[i], ttl) end
  for _, uid in ipairs(redis.call('SMEMBERS', KEYS[4])) do
    redis.call('PEXPIRE', log_base .. uid, ttl)
  end
end
local function drop_all(log_base)
  for _, uid in ipairs(redis.call('SMEMBERS', KEYS[4])) do
    redis.call('UNLINK', log_base .. uid)
  end
  redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
end
"#;

fn script(body: &str) -> Script {
    Script::new(&format!("{REFRESH}{body}"))
}

// ARGV: created, last, ttl, log base
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
if alive(ARGV[1]) then return 0 end
drop_all(ARGV[4])
redis.call('HSET', KEYS[1], 'created', ARGV[1], 'last', ARGV[2], 'ttl', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"#,
    )
});

// ARGV: now, table name or '', log base
static OPEN: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
if not alive(ARGV[1]) then return false end
redis.call('HSET', KEYS[1], 'last', ARGV[1])
refresh(ARGV[3])
local meta = redis.call('HMGET', KEYS[1], 'created', 'last', 'ttl')
if ARGV[2] == '' then return {meta, false, false} end
local rev = redis.call('HGET', KEYS[2], ARGV[2])
if not rev then return {meta, false, false} end
return {meta, rev, redis.call('HGET', KEYS[3], ARGV[2])}
"#,
    )
});

// ARGV: log base, now
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local existed = alive(ARGV[2]) and 1 or 0
drop_all(ARGV[1])
return existed
"#,
    )
});

// ARGV: now, log base, n changes, then per change: name, expected rev or '',
// new rev or '' (delete), doc; then m log appends: uid, keep, record; then
// d dropped log uids.
static CAS: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
if not alive(ARGV[1]) then return {-1, '', ''} end
local base = ARGV[2]
local n = tonumber(ARGV[3])
local i = 4
for c = 1, n do
  local cur = redis.call('HGET', KEYS[2], ARGV[i])
  if ARGV[i + 1] == '' then
    if cur then return {0, ARGV[i], cur} end
  elseif cur ~= ARGV[i + 1] then
    return {0, ARGV[i], cur or ''}
  end
  i = i + 4
end
i = 4
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
i = i + 1
for j = 1, m do
  local key = base .. ARGV[i]
  redis.call('RPUSH', key, ARGV[i + 2])
  redis.call('LTRIM', key, -tonumber(ARGV[i + 1]), -1)
  redis.call('SADD', KEYS[4], ARGV[i])
  i = i + 3
end
local d = tonumber(ARGV[i])
i = i + 1
for j = 1, d do
  redis.call('UNLINK', base .. ARGV[i])
  redis.call('SREM', KEYS[4], ARGV[i])
  i = i + 1
end
redis.call('HSET', KEYS[1], 'last', ARGV[1])
refresh(base)
return {1, '', ''}
"#,
    )
});

// ARGV: now
static LIST_TABLES: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
if not alive(ARGV[1]) then return false end
return {redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3])}
"#,
    )
});

// ARGV: limit, now
static READ_LOG: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
if not alive(ARGV[2]) then return {} end
return redis.call('LRANGE', KEYS[2], -tonumber(ARGV[1]), -1)
"#,
    )
});

static PUT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
if not alive(ARGV[1]) then return 0 end
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
    script(
        r#"
local out = {}
local live = alive(ARGV[1])
for i = 2, #ARGV do
  if live and redis.call('HEXISTS', KEYS[2], ARGV[i]) == 1 then
    local t = tonumber(redis.call('HGET', KEYS[3], ARGV[i]) or '0')
    if t < tonumber(ARGV[1]) then redis.call('HSET', KEYS[3], ARGV[i], ARGV[1]) end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"#,
    )
});

// ARGV: now, then ids
static GET: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
if not alive(ARGV[1]) then return {} end
return redis.call('HMGET', KEYS[2], unpack(ARGV, 2))
"#,
    )
});

// ARGV: now
static LIST_BLOBS: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
if not alive(ARGV[1]) then return {} end
local t = redis.call('HGETALL', KEYS[3])
local out = {}
for i = 1, #t, 2 do
  out[#out + 1] = t[i]
  out[#out + 1] = t[i + 1]
  out[#out + 1] = redis.call('HSTRLEN', KEYS[2], t[i])
end
return out
"#,
    )
});

// ARGV: per second, burst, now. Returns 0 when allowed, else ms to wait.
static TAKE_TOKEN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(b[1]) or burst, tonumber(b[2]) or now
local elapsed = math.max(0, now - at) / 1000
tokens = math.min(burst, tokens + elapsed * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.max(1, math.ceil((1 - tokens) / rate * 1000))
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 60000)
return wait
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
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 and ((not t) or tonumber(t) < cutoff) then
    freed = freed + redis.call('HSTRLEN', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
  end
end
return freed
"#,
    )
});

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
            logs: format!("{base}:logs"),
            blobs: format!("{base}:blobs"),
            btime: format!("{base}:btime"),
            log_base: format!("{base}:log:"),
        }
    }

    fn index_key(&self, namespace: &str) -> String {
        format!("{}ns:{namespace}:sessions", self.prefix)
    }

    fn err(&self, e: RedisError) -> StoreError {
        map_err(e, &self.shown_url, self.secret.as_deref())
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T> {
        cmd.query_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))
    }

    async fn session_meta(&self, id: &str) -> Result<Option<SessionMeta>> {
        let fields: Vec<Option<String>> = self
            .query(
                redis::cmd("HMGET")
                    .arg(self.keys(id).meta)
                    .arg("created")
                    .arg("last")
                    .arg("ttl"),
            )
            .await?;
        Ok(meta_from(id, &fields))
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
            max_request_bytes: Some(self.max_request_bytes),
        }
    }

    async fn create_session(&self, meta: &SessionMeta) -> Result<bool> {
        let keys = self.keys(&meta.id);
        let created: i64 = CREATE
            .key(&keys.all()[..])
            .arg(meta.created_ms)
            .arg(meta.last_access_ms)
            .arg(meta.ttl_ms)
            .arg(&keys.log_base)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        if created == 1 {
            self.query::<()>(
                redis::cmd("SADD")
                    .arg(self.index_key(namespace_of(&meta.id)))
                    .arg(&meta.id),
            )
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
            .arg(&keys.log_base)
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

    async fn list_sessions(
        &self,
        namespace: &str,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<SessionMeta>> {
        let index = self.index_key(namespace);
        let mut live = Vec::new();
        let mut dead = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, ids): (u64, Vec<String>) = self
                .query(
                    redis::cmd("SSCAN")
                        .arg(&index)
                        .arg(cursor)
                        .arg("COUNT")
                        .arg(500),
                )
                .await?;
            // One round trip for the page: the connection pipelines them.
            let metas = futures::future::join_all(ids.iter().map(|id| self.session_meta(id))).await;
            for (id, meta) in ids.into_iter().zip(metas) {
                match meta? {
                    Some(meta) if !meta.is_expired(now_ms) => {
                        if live.len() < limit {
                            live.push(meta);
                        }
                    }
                    _ => dead.push(id),
                }
            }
            cursor = next;
            if cursor == 0 || live.len() >= limit {
                break;
            }
        }
        if !dead.is_empty() {
            self.query::<()>(redis::cmd("SREM").arg(&index).arg(&dead))
                .await?;
        }
        Ok(live)
    }

    async fn delete_session(&self, session: &str, now_ms: i64) -> Result<bool> {
        let keys = self.keys(session);
        let existed: i64 = DELETE
            .key(&keys.all()[..])
            .arg(&keys.log_base)
            .arg(now_ms)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        self.query::<()>(
            redis::cmd("SREM")
                .arg(self.index_key(namespace_of(session)))
                .arg(session),
        )
        .await?;
        Ok(existed == 1)
    }

    async fn purge_expired(&self, _now_ms: i64) -> Result<Vec<String>> {
        // Redis expires every key of an idle session by itself.
        Ok(Vec::new())
    }

    async fn list_tables(&self, session: &str, now_ms: i64) -> Result<Option<Vec<TableRecord>>> {
        let keys = self.keys(session);
        let reply: Option<(Value, Value)> = LIST_TABLES
            .key(&keys.meta)
            .key(&keys.revs)
            .key(&keys.tables)
            .arg(now_ms)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        let Some((revs, docs)) = reply else {
            return Ok(None);
        };
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
        Ok(Some(out))
    }

    async fn cas_tables(
        &self,
        session: &str,
        request: &CasRequest,
        now_ms: i64,
    ) -> Result<CasOutcome> {
        let keys = self.keys(session);
        let mut inv = CAS.prepare_invoke();
        inv.key(&keys.all()[..])
            .arg(now_ms)
            .arg(&keys.log_base)
            .arg(request.changes.len());
        for change in &request.changes {
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
        inv.arg(request.log.len());
        for entry in &request.log {
            inv.arg(&entry.table_uid)
                .arg(entry.keep.max(1))
                .arg(entry.record.as_ref());
        }
        inv.arg(request.drop_logs.len());
        for uid in &request.drop_logs {
            inv.arg(uid);
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

    async fn read_log(
        &self,
        session: &str,
        table_uid: &str,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<Bytes>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let keys = self.keys(session);
        let lines: Vec<Vec<u8>> = READ_LOG
            .key(&keys.meta)
            .key(format!("{}{table_uid}", keys.log_base))
            .arg(limit)
            .arg(now_ms)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        Ok(lines.into_iter().map(Bytes::from).collect())
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
                .key(&keys.meta)
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

    async fn get_blobs(
        &self,
        session: &str,
        ids: &[String],
        now_ms: i64,
    ) -> Result<Vec<Option<Blob>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // The store batches ids so that one reply stays under the request
        // limit; here they go in one script call.
        let keys = self.keys(session);
        let mut out = Vec::with_capacity(ids.len());
        // Lua's unpack() takes at most ~8000 values.
        for batch in ids.chunks(1000) {
            let values: Vec<Option<Vec<u8>>> = GET
                .key(&keys.meta)
                .key(&keys.blobs)
                .arg(now_ms)
                .arg(batch)
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(|e| self.err(e))?;
            if values.is_empty() {
                // The session is gone.
                return Ok(vec![None; ids.len()]);
            }
            out.extend(
                values
                    .into_iter()
                    .map(|v| v.map(|b| Blob::Bytes(Bytes::from(b)))),
            );
        }
        Ok(out)
    }

    async fn list_blobs(&self, session: &str, now_ms: i64) -> Result<Vec<BlobInfo>> {
        let keys = self.keys(session);
        let flat: Vec<Value> = LIST_BLOBS
            .key(&keys.meta)
            .key(&keys.blobs)
            .key(&keys.btime)
            .arg(now_ms)
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

    async fn take_token(
        &self,
        bucket: &str,
        per_second: f64,
        burst: f64,
        now_ms: i64,
    ) -> Result<Throttle> {
        let key = format!("{}{{rl:{bucket}}}", self.prefix);
        let wait: i64 = TAKE_TOKEN
            .key(key)
            .arg(per_second)
            .arg(burst)
            .arg(now_ms)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        Ok(if wait == 0 {
            Throttle::Allowed
        } else {
            Throttle::RetryAfterMs(wait)
        })
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

    /// A server still loading its data after a restart answers LOADING: that
    /// is the store being unavailable for a moment, not a failure to report
    /// as such (the load benchmark's outage run found it reported as one).
    #[test]
    fn transient_server_states_are_unavailability() {
        for kind in [
            redis::ServerErrorKind::BusyLoading,
            redis::ServerErrorKind::TryAgain,
            redis::ServerErrorKind::ClusterDown,
            redis::ServerErrorKind::MasterDown,
            redis::ServerErrorKind::ReadOnly,
        ] {
            let e = RedisError::from((redis::ErrorKind::Server(kind), "the server said so"));
            let mapped = map_err(e, "redis://127.0.0.1:6379", None);
            assert!(
                matches!(mapped, StoreError::Unavailable { .. }),
                "{kind:?}: {mapped:?}"
            );
        }
        let e = RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm),
            "no permission",
        ));
        assert!(matches!(
            map_err(e, "redis://127.0.0.1:6379", None),
            StoreError::Backend { .. }
        ));
    }

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
