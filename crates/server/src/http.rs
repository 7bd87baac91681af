//! Serving over HTTP: rmcp's Streamable HTTP service at `/mcp` (stateless,
//! so any instance answers any request), uploads at `POST /v1/files`,
//! downloads of exports at `GET /v1/exports/{id}`, `/healthz` and `/readyz`;
//! bearer tokens mapped to principals, per-principal rate limits, Host and
//! Origin checks, graceful shutdown.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dfmcp_storage::{StoreError, Throttle};
use futures::StreamExt;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::caller::{Caller, Principal};
use crate::config::Config;
use crate::error::ToolError;
use crate::server::DataFrameServer;
use crate::wire::InitializeRequest;

/// Principals and the hashes of their tokens (tokens themselves are never
/// kept, logged or echoed).
#[derive(Debug, Default)]
pub struct Tokens {
    entries: Vec<(String, blake3::Hash)>,
}

impl Tokens {
    /// Reads `principal token` (or `principal blake3:<hex>`) lines.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the tokens file {}", path.display()))?;
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(principal), Some(secret), None) = (parts.next(), parts.next(), parts.next())
            else {
                bail!(
                    "{} line {}: expected `principal token`",
                    path.display(),
                    n + 1
                );
            };
            let hash = match secret.strip_prefix("blake3:") {
                Some(hex) => blake3::Hash::from_hex(hex).with_context(|| {
                    format!("{} line {}: not a blake3 hash", path.display(), n + 1)
                })?,
                None => blake3::hash(secret.as_bytes()),
            };
            entries.push((principal.to_string(), hash));
        }
        if entries.is_empty() {
            bail!("the tokens file {} holds no tokens", path.display());
        }
        Ok(Tokens { entries })
    }

    /// The principal of a presented token. Every entry is compared, in
    /// constant time (blake3 hashes compare so), whether or not one matched.
    pub fn principal(&self, token: &str) -> Option<&str> {
        let presented = blake3::hash(token.as_bytes());
        let mut found = None;
        for (principal, hash) in &self.entries {
            if *hash == presented {
                found = Some(principal.as_str());
            }
        }
        found
    }
}

/// What the HTTP layer shares.
#[derive(Clone)]
struct Http {
    server: DataFrameServer,
    tokens: Option<Arc<Tokens>>,
    rate: f64,
    burst: f64,
    max_upload: u64,
    hosts: Arc<Vec<String>>,
    origins: Arc<Vec<String>>,
    /// Cancelled on SIGTERM: `/readyz` turns 503 while calls drain.
    stopping: CancellationToken,
}

fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// Bearer tokens → principal (in the request's extensions, where the tools
/// find it); 401 otherwise.
async fn authenticate(State(http): State<Http>, mut request: Request, next: Next) -> Response {
    if let Some(tokens) = &http.tokens {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let Some(principal) = presented.and_then(|t| tokens.principal(t)) else {
            // Guessing tokens is throttled per client address: 10 misses,
            // then one a second.
            let peer = request
                .extensions()
                .get::<axum::extract::ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string())
                .unwrap_or_default();
            let store = &http.server.state.store;
            if let Ok(Throttle::RetryAfterMs(ms)) = store
                .backend()
                .take_token(&format!("a{peer}"), 1.0, 10.0, store.now())
                .await
            {
                return too_many(ms);
            }
            let mut response = json_error(
                StatusCode::UNAUTHORIZED,
                "a valid bearer token is required: send Authorization: Bearer <token>",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"dataframe-mcp\""),
            );
            return response;
        };
        let principal = Principal(principal.to_string());
        request.extensions_mut().insert(principal);
    }
    next.run(request).await
}

/// 429 with Retry-After in whole seconds.
fn too_many(ms: i64) -> Response {
    let seconds = ((ms + 999) / 1000).max(1);
    let mut response = json_error(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many requests; retry in {seconds} s"),
    );
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// A token bucket per principal; 429 with Retry-After when it is empty.
async fn rate_limit(State(http): State<Http>, request: Request, next: Next) -> Response {
    let caller = caller_of(&request);
    let bucket = format!("p{}", caller.namespace);
    let store = &http.server.state.store;
    match store
        .backend()
        .take_token(&bucket, http.rate, http.burst, store.now())
        .await
    {
        Ok(Throttle::Allowed) => next.run(request).await,
        Ok(Throttle::RetryAfterMs(ms)) => too_many(ms),
        // The store being down is reported by the call itself.
        Err(_) => next.run(request).await,
    }
}

/// The Host and Origin checks rmcp makes for /mcp, for the other routes.
async fn check_host(State(http): State<Http>, request: Request, next: Next) -> Response {
    // HTTP/2 carries the authority in the URI, not in a Host header.
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let host = host.as_str();
    let host_name = host
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(name, _)| name)
        .trim_start_matches('[')
        .trim_end_matches(']');
    if !http.hosts.is_empty()
        && !http
            .hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host) || h.eq_ignore_ascii_case(host_name))
    {
        return json_error(StatusCode::FORBIDDEN, "this Host is not allowed");
    }
    if let Some(origin) = request.headers().get(header::ORIGIN)
        && !http.origins.iter().any(|o| {
            origin.to_str().is_ok_and(|v| {
                v.trim_end_matches('/')
                    .eq_ignore_ascii_case(o.trim_end_matches('/'))
            })
        })
    {
        return json_error(StatusCode::FORBIDDEN, "this Origin is not allowed");
    }
    next.run(request).await
}

/// The options of an upload: `initialize_data_table`'s, as query
/// parameters (or, in a multipart form, as fields before `file`).
#[derive(Debug, Default, Deserialize)]
struct UploadQuery {
    filename: Option<String>,
    session_id: Option<String>,
    table_name: Option<String>,
    /// Comma-separated sheet names.
    sheets: Option<String>,
    delimiter: Option<String>,
    encoding: Option<String>,
    has_header: Option<bool>,
    skip_rows: Option<usize>,
    max_rows: Option<usize>,
    decimal_comma: Option<bool>,
    request_id: Option<String>,
}

impl UploadQuery {
    fn set(&mut self, field: &str, value: String) -> Result<(), String> {
        let flag = |v: &str| match v {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(format!("{field} must be true or false")),
        };
        let number = |v: &str| {
            v.parse::<usize>()
                .map_err(|_| format!("{field} must be a whole number"))
        };
        match field {
            "filename" => self.filename = Some(value),
            "session_id" => self.session_id = Some(value),
            "table_name" => self.table_name = Some(value),
            "sheets" => self.sheets = Some(value),
            "delimiter" => self.delimiter = Some(value),
            "encoding" => self.encoding = Some(value),
            "has_header" => self.has_header = Some(flag(&value)?),
            "skip_rows" => self.skip_rows = Some(number(&value)?),
            "max_rows" => self.max_rows = Some(number(&value)?),
            "decimal_comma" => self.decimal_comma = Some(flag(&value)?),
            "request_id" => self.request_id = Some(value),
            _ => {}
        }
        Ok(())
    }

    fn request(self) -> InitializeRequest {
        InitializeRequest {
            session_id: self.session_id.filter(|s| !s.is_empty()),
            table_name: self.table_name.filter(|s| !s.is_empty()),
            sheets: self.sheets.map(|s| {
                s.split(',')
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty())
                    .collect()
            }),
            delimiter: self.delimiter,
            encoding: self.encoding,
            has_header: self.has_header,
            skip_rows: self.skip_rows,
            max_rows: self.max_rows,
            decimal_comma: self.decimal_comma,
            request_id: self.request_id,
            ..InitializeRequest::default()
        }
    }
}

/// The HTTP status of a failed load or download.
fn status_of(error: &ToolError) -> StatusCode {
    match error {
        ToolError::Store(StoreError::Unavailable { .. }) => StatusCode::SERVICE_UNAVAILABLE,
        ToolError::Store(StoreError::SessionNotFound { .. }) => StatusCode::NOT_FOUND,
        ToolError::Store(StoreError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn caller_of(request: &Request) -> Caller {
    request
        .extensions()
        .get::<Principal>()
        .map(|p| Caller::principal(&p.0))
        .unwrap_or_else(Caller::local)
}

/// Streams an upload to a temporary file, refusing more than `max` bytes.
async fn receive(
    mut chunks: impl futures::Stream<Item = Result<bytes::Bytes, String>> + Unpin,
    max: u64,
) -> Result<tempfile::NamedTempFile, Response> {
    let mut file = tempfile::NamedTempFile::new().map_err(|e| {
        json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("no room for the upload: {e}"),
        )
    })?;
    let mut size = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| json_error(StatusCode::BAD_REQUEST, e))?;
        size += chunk.len() as u64;
        if size > max {
            return Err(json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the upload is over the limit of {max} bytes (--max-file-bytes)"),
            ));
        }
        file.write_all(&chunk).map_err(|e| {
            json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("storing the upload failed: {e}"),
            )
        })?;
    }
    Ok(file)
}

/// Most bytes a multipart form may send outside of field contents (its
/// preamble and each part's headers), which the parser must hold in memory.
const FORM_HEADERS: u64 = 64 << 10;
/// Longest option field of a form.
const FORM_FIELD: usize = 4096;

/// The request body, refusing more than [`FORM_HEADERS`] bytes while the
/// parser looks for the next part's headers (it buffers them whole).
///
/// The body is shared so that after a refusal the rest of a short request
/// can still be read (see [`drain`]).
struct HeaderGuard {
    body: SharedBody,
    in_headers: Arc<std::sync::atomic::AtomicBool>,
    seen: Arc<std::sync::atomic::AtomicU64>,
}

type SharedBody = Arc<std::sync::Mutex<axum::body::BodyDataStream>>;

/// Reads and discards what is left of a refused request, up to a bound:
/// closing a connection with unread bytes makes the kernel send a reset,
/// which can destroy the refusal before the client reads it.
async fn drain(body: &SharedBody) {
    const MOST: usize = 1 << 20;
    let mut left = MOST;
    let read = async {
        while left > 0 {
            let next = futures::future::poll_fn(|cx| {
                body.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .poll_next_unpin(cx)
            })
            .await;
            match next {
                Some(Ok(chunk)) => left = left.saturating_sub(chunk.len()),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), read).await;
}

impl futures::Stream for HeaderGuard {
    type Item = Result<bytes::Bytes, std::io::Error>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::sync::atomic::Ordering;
        let polled = self
            .body
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .poll_next_unpin(cx);
        if let std::task::Poll::Ready(Some(Ok(chunk))) = &polled
            && self.in_headers.load(Ordering::Relaxed)
            && self.seen.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64
                > FORM_HEADERS
        {
            return std::task::Poll::Ready(Some(Err(std::io::Error::other(
                "the form's part headers are too long",
            ))));
        }
        polled.map(|item| item.map(|r| r.map_err(std::io::Error::other)))
    }
}

/// Reads a multipart form: the field `file` streamed to a temporary file
/// under `max` bytes, other fields as options of `query`.
async fn receive_form(
    request: Request,
    query: &mut UploadQuery,
    max: u64,
) -> Result<(tempfile::NamedTempFile, Option<String>), Response> {
    use std::sync::atomic::{AtomicBool, AtomicU64};
    let boundary = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| multer::parse_boundary(v).ok())
        .ok_or_else(|| json_error(StatusCode::BAD_REQUEST, "the form has no boundary"))?;
    let in_headers = Arc::new(AtomicBool::new(true));
    let seen = Arc::new(AtomicU64::new(0));
    let shared: SharedBody = Arc::new(std::sync::Mutex::new(
        request.into_body().into_data_stream(),
    ));
    let body = HeaderGuard {
        body: shared.clone(),
        in_headers: in_headers.clone(),
        seen: seen.clone(),
    };
    let form = multer::Multipart::new(body, boundary);
    let result = read_form(form, &in_headers, &seen, query, max).await;
    if result.is_err() {
        drain(&shared).await;
    }
    result
}

async fn read_form(
    mut form: multer::Multipart<'static>,
    in_headers: &std::sync::atomic::AtomicBool,
    seen: &std::sync::atomic::AtomicU64,
    query: &mut UploadQuery,
    max: u64,
) -> Result<(tempfile::NamedTempFile, Option<String>), Response> {
    use std::sync::atomic::Ordering;
    let bad = |e: multer::Error| {
        let message =
            if in_headers.load(Ordering::Relaxed) && seen.load(Ordering::Relaxed) > FORM_HEADERS {
                format!("the form's part headers are too long (over {FORM_HEADERS} bytes)")
            } else {
                format!("the form is malformed: {e}")
            };
        json_error(StatusCode::BAD_REQUEST, message)
    };
    let mut received = None;
    loop {
        in_headers.store(true, Ordering::Relaxed);
        seen.store(0, Ordering::Relaxed);
        let Some(mut field) = form.next_field().await.map_err(bad)? else {
            break;
        };
        in_headers.store(false, Ordering::Relaxed);
        let field_name = field.name().unwrap_or_default().to_string();
        if field_name == "file" {
            let name = field.file_name().map(str::to_string);
            let chunks = field.map(|c| c.map_err(|e| e.to_string()));
            received = Some((receive(Box::pin(chunks), max).await?, name));
        } else {
            // Option fields are short: anything long is not one.
            let mut value = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(bad)? {
                value.extend_from_slice(&chunk);
                if value.len() > FORM_FIELD {
                    return Err(json_error(
                        StatusCode::BAD_REQUEST,
                        format!("form field {field_name} is over {FORM_FIELD} bytes"),
                    ));
                }
            }
            let value = String::from_utf8_lossy(&value).into_owned();
            query
                .set(&field_name, value)
                .map_err(|e| json_error(StatusCode::BAD_REQUEST, e))?;
        }
    }
    match received {
        Some((file, name)) => Ok((file, name.or(query.filename.clone()))),
        None => Err(json_error(
            StatusCode::BAD_REQUEST,
            "the form has no field named file: send the file as form field `file`",
        )),
    }
}

/// `POST /v1/files`: a multipart form (field `file`) or a raw body with
/// `?filename=`; loads it like `initialize_data_table`.
async fn upload(
    State(http): State<Http>,
    Query(query): Query<UploadQuery>,
    request: Request,
) -> Response {
    let caller = caller_of(&request);
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let mut query = query;
    if !multipart
        && query
            .filename
            .as_deref()
            .is_none_or(|n| n.trim().is_empty())
    {
        return json_error(
            StatusCode::BAD_REQUEST,
            "give the file's name (?filename=sales.csv): its extension helps tell the format",
        );
    }
    // A refused upload may leave some of its body unread: the connection
    // then cannot carry another request, and the client is told so.
    let closing = |mut response: Response| {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    };
    let (file, name) = if multipart {
        match receive_form(request, &mut query, http.max_upload).await {
            Ok(received) => received,
            Err(response) => return closing(response),
        }
    } else {
        let chunks = request
            .into_body()
            .into_data_stream()
            .map(|c| c.map_err(|e| e.to_string()));
        match receive(Box::pin(chunks), http.max_upload).await {
            Ok(file) => (file, query.filename.clone()),
            Err(response) => return closing(response),
        }
    };
    let Some(name) = name.filter(|n| !n.trim().is_empty()) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "give the file's name (?filename=sales.csv): its extension helps tell the format",
        );
    };
    // Only the last component: a client's path means nothing here.
    let name = name
        .rsplit(['/', '\\'])
        .next()
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
        .unwrap_or("upload")
        .to_string();
    match http
        .server
        .load_upload(&caller, file, &name, query.request())
        .await
    {
        Ok(loaded) => {
            let mut body = serde_json::to_value(&loaded).unwrap_or_default();
            caller.scrub_json(&mut body);
            axum::Json(body).into_response()
        }
        Err(e) => json_error(status_of(&e), caller.scrub(&e.to_string())),
    }
}

/// `GET /v1/exports/{session}.{export}`: the owner's file, or 404.
async fn download(
    State(http): State<Http>,
    axum::extract::Path(id): axum::extract::Path<String>,
    request: Request,
) -> Response {
    let caller = caller_of(&request);
    let not_found = || {
        json_error(
            StatusCode::NOT_FOUND,
            "no such export (or it expired with its session)",
        )
    };
    let Some((session, export)) = id.rsplit_once('.') else {
        return not_found();
    };
    let Ok(stored) = caller.stored(session) else {
        return not_found();
    };
    match http.server.state.store.get_export(&stored, export).await {
        Ok(Some((name, bytes))) => {
            let disposition = format!(
                "attachment; filename=\"{}\"",
                name.replace(['"', '\\', '\r', '\n'], "_")
            );
            let mut response = Response::new(Body::from(bytes));
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            if let Ok(value) = HeaderValue::from_str(&disposition) {
                headers.insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
        Ok(None) => not_found(),
        Err(e) => {
            let e = ToolError::from(e);
            json_error(status_of(&e), caller.scrub(&e.to_string()))
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: whether this instance should get traffic. No token is
/// needed, so it says only what a load balancer needs: nothing about where
/// the store is or what went wrong (the `health` tool and the logs do).
async fn readyz(State(http): State<Http>) -> Response {
    let stopping = http.stopping.is_cancelled();
    let health = http.server.check_health(None).await;
    let ready = health.store_reachable && !stopping;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if stopping { "stopping" } else if ready { "ok" } else { "store unreachable" },
        "store_reachable": health.store_reachable,
        "store_round_trip_ms": health.store_round_trip_ms,
        "version": health.version,
        "transport": health.transport,
    });
    (status, axum::Json(body)).into_response()
}

/// The Host values allowed by default: loopback names and the listen address.
fn default_hosts(listen: SocketAddr) -> Vec<String> {
    let mut hosts = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    hosts.push(listen.ip().to_string());
    hosts
}

/// Serves HTTP until SIGTERM/SIGINT; in-flight calls get the grace period to
/// finish.
pub async fn serve_http(config: Config) -> anyhow::Result<()> {
    let loopback = config.listen.ip().is_loopback();
    let tokens = match &config.tokens_file {
        Some(path) => Some(Arc::new(Tokens::read(path)?)),
        None => None,
    };
    if tokens.is_none() && !loopback && !config.insecure_no_auth {
        bail!(
            "refusing to serve {} without authentication: give --tokens-file (DATAFRAME_MCP_TOKENS_FILE), or --insecure-no-auth if a proxy in front authenticates",
            config.listen
        );
    }
    if tokens.is_none() && !loopback {
        tracing::warn!(
            listen = %config.listen,
            "SERVING WITHOUT AUTHENTICATION on a non-loopback address (--insecure-no-auth): anyone who reaches it can read and change every session"
        );
    }
    let server = crate::build(&config, "http").await?;
    let maintenance = crate::spawn_maintenance(&server);
    let hosts = if config.allowed_hosts.is_empty() {
        default_hosts(config.listen)
    } else {
        config.allowed_hosts.clone()
    };
    let http = Http {
        server: server.clone(),
        tokens,
        rate: config.rate_limit.max(0.001),
        burst: config.rate_burst.max(1.0),
        max_upload: config.max_file_bytes,
        hosts: Arc::new(hosts.clone()),
        origins: Arc::new(config.allowed_origins.clone()),
        stopping: CancellationToken::new(),
    };
    let stopping = http.stopping.clone();
    let streams = CancellationToken::new();
    let mut mcp_config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_allowed_hosts(hosts)
        .with_cancellation_token(streams.child_token());
    if !config.allowed_origins.is_empty() {
        mcp_config = mcp_config.with_allowed_origins(config.allowed_origins.clone());
    }
    let mcp = StreamableHttpService::new(
        {
            let server = server.clone();
            move || Ok(server.clone())
        },
        Arc::new(NeverSessionManager::default()),
        mcp_config,
    );
    let authenticated = Router::new()
        .nest_service("/mcp", mcp)
        // Uploads are streamed to disk under --max-file-bytes, not held in
        // memory under axum's default 2 MB body limit.
        .route(
            "/v1/files",
            post(upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/v1/exports/{id}", get(download))
        .layer(middleware::from_fn_with_state(http.clone(), rate_limit))
        .layer(middleware::from_fn_with_state(http.clone(), authenticate))
        .layer(middleware::from_fn_with_state(http.clone(), check_host));
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(authenticated)
        .with_state(http);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    tracing::info!(listen = %listener.local_addr()?, "serving MCP over HTTP at /mcp");

    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let serve = axum::serve(listener, app).with_graceful_shutdown({
        let stopping = stopping.clone();
        async move { stopping.cancelled().await }
    });
    let mut serving = tokio::spawn(async move { serve.await });
    tokio::select! {
        result = &mut serving => {
            result.context("the HTTP server stopped")??;
        }
        () = shutdown_signal() => {
            tracing::info!("shutting down: no new connections; in-flight calls may finish");
            stopping.cancel();
            let grace = Duration::from_secs(config.shutdown_grace_seconds);
            if tokio::time::timeout(grace, &mut serving).await.is_err() {
                tracing::warn!("in-flight calls did not finish within {grace:?}; stopping anyway");
            }
            streams.cancel();
        }
    }
    maintenance.abort();
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_map_to_principals_and_accept_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        let hashed = blake3::hash(b"bob-secret").to_hex();
        std::fs::write(
            &path,
            format!("# comment\nalice alice-secret\nbob blake3:{hashed}\n"),
        )
        .unwrap();
        let tokens = Tokens::read(&path).unwrap();
        assert_eq!(tokens.principal("alice-secret"), Some("alice"));
        assert_eq!(tokens.principal("bob-secret"), Some("bob"));
        assert_eq!(tokens.principal("nope"), None);
        assert!(!format!("{tokens:?}").contains("alice-secret"));
        std::fs::write(&path, "alice\n").unwrap();
        assert!(Tokens::read(&path).is_err());
    }
}
