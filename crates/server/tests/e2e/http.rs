//! Serving over HTTP: two real server processes on one throwaway Redis,
//! rmcp's Streamable HTTP client, uploads, downloads, tokens, principals,
//! rate limits, readiness and graceful shutdown.

use std::time::{Duration, Instant};

use rmcp::model::ProtocolVersion;
use serde_json::{Value, json};
use tests::http::{HttpServer, http_client};
use tests::mcp::Storage;
use tests::redis::{ControlledRedis, random_prefix};

use super::{SALES, bin, ids, price_of_row, with};

const TOKENS: &[(&str, &str)] = &[("alice", "alice-token-1"), ("bob", "bob-token-2")];
const ALICE: &str = "alice-token-1";
const BOB: &str = "bob-token-2";

/// Uploads `content` as `name` (multipart) with `token`; the status and JSON.
async fn upload(
    server: &HttpServer,
    token: &str,
    name: &str,
    content: &str,
    query: &str,
) -> (u16, Value) {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(content.as_bytes().to_vec()).file_name(name.to_string()),
    );
    let response = http_client()
        .post(server.url(&format!("/v1/files{query}")))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// A user uploads through instance A, works through instance B, sees it on
/// A and undoes there: any instance answers any call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_session() {
    let storage = Storage::redis();
    let a = HttpServer::start(bin(), &storage, TOKENS, &[]).await;
    let b = HttpServer::start(bin(), &storage, TOKENS, &[]).await;

    let (status, loaded) = upload(&a, ALICE, "sales.csv", SALES, "").await;
    assert_eq!(status, 200, "{loaded}");
    assert_eq!(loaded["tables"][0]["table"], "sales");
    assert_eq!(loaded["tables"][0]["rows"], 5);
    assert_eq!(loaded["created_session"], true);
    let session = loaded["session_id"].as_str().unwrap().to_string();
    assert!(
        uuid::Uuid::parse_str(&session).is_ok(),
        "a fresh session id is a UUID: {session}"
    );
    let t = ids(&session, "sales");

    let on_b = b.connect(Some(ALICE)).await;
    let summary = on_b.ok("get_table_summary", t.clone()).await;
    assert_eq!(summary["rows"], 5, "{summary}");
    on_b.ok(
        "fill_missing",
        with(t.clone(), json!({ "strategy": "zero" })),
    )
    .await;

    let on_a = a.connect(Some(ALICE)).await;
    let preview = on_a.ok("preview_rows", t.clone()).await;
    assert_eq!(price_of_row(&preview, 1), json!(0.0), "{preview}");
    let history = on_a.ok("get_history", t.clone()).await;
    assert_eq!(history["current_version"], 2);
    assert_eq!(history["operations"][1]["by"], "alice", "{history}");
    on_a.ok("undo", t.clone()).await;
    let preview = on_b.ok("preview_rows", t.clone()).await;
    assert_eq!(price_of_row(&preview, 1), Value::Null, "B sees A's undo");
    on_b.ok("redo", t.clone()).await;

    // Server-side paths mean nothing to a remote client.
    let e = on_a
        .err(
            "initialize_data_table",
            json!({ "file_path": "/etc/hostname" }),
        )
        .await;
    assert!(e.contains("POST /v1/files"), "{e}");
    let e = on_a
        .err(
            "export_table",
            with(t.clone(), json!({ "path": "/tmp/x.csv" })),
        )
        .await;
    assert!(e.contains("POST /v1/files"), "{e}");

    // Exports: a link that only the owner's token opens.
    let result = on_b.call("export_table", t.clone()).await;
    assert_ne!(result.is_error, Some(true), "{}", tests::mcp::text(&result));
    let exported = result.structured_content.clone().unwrap();
    let url = exported["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!("http://127.0.0.1:{}/v1/exports/", b.port)),
        "{url}"
    );
    assert!(
        result
            .content
            .iter()
            .any(|c| c.as_resource_link().is_some_and(|l| l.uri == url)),
        "the result carries a resource link"
    );
    // Downloaded from the other instance: the file lives in the store.
    let on_other = url.replace(&format!(":{}/", b.port), &format!(":{}/", a.port));
    let client = http_client();
    let got = client
        .get(&on_other)
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    let csv = got.text().await.unwrap();
    assert!(csv.starts_with("id,region,price,quantity\n"), "{csv}");
    assert_eq!(csv.lines().count(), 6);
    let stolen = client.get(&on_other).bearer_auth(BOB).send().await.unwrap();
    assert_eq!(stolen.status(), 404, "another principal cannot download it");
    let anonymous = client.get(&on_other).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);

    on_a.stop().await;
    on_b.stop().await;
}

/// Principal 2 can neither see, list, read, copy nor change principal 1's
/// session, and gets exactly the answer an unknown id gets; the same
/// caller-chosen id names two separate sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn principals_never_see_each_other() {
    let storage = Storage::redis();
    let server = HttpServer::start(bin(), &storage, TOKENS, &[]).await;
    let (status, loaded) = upload(&server, ALICE, "sales.csv", SALES, "").await;
    assert_eq!(status, 200, "{loaded}");
    let session = loaded["session_id"].as_str().unwrap().to_string();
    let alice = server.connect(Some(ALICE)).await;
    let bob = server.connect(Some(BOB)).await;

    let listed = bob.ok("list_sessions", json!({})).await;
    assert!(!listed.to_string().contains(&session), "{listed}");
    let listed = alice.ok("list_sessions", json!({})).await;
    assert!(listed.to_string().contains(&session), "{listed}");

    let unknown = uuid::Uuid::new_v4().to_string();
    let same_as_unknown = |e: String| e.replace(&session, &unknown);
    let attempts = [
        ("preview_rows", ids(&session, "sales")),
        ("get_table_summary", ids(&session, "sales")),
        ("list_tables", json!({ "session_id": session })),
        (
            "fill_missing",
            with(ids(&session, "sales"), json!({ "strategy": "zero" })),
        ),
        ("undo", ids(&session, "sales")),
        ("drop_table", ids(&session, "sales")),
        ("delete_session", json!({ "session_id": session })),
        (
            "query_sql",
            json!({ "session_id": session, "sql": "SELECT * FROM sales" }),
        ),
        (
            "initialize_data_table",
            json!({ "source_session_id": session }),
        ),
    ];
    for (tool, args) in attempts {
        let theirs = bob.err(tool, args.clone()).await;
        let swapped: Value =
            serde_json::from_str(&args.to_string().replace(&session, &unknown)).unwrap();
        let nobodys = bob.err(tool, swapped).await;
        assert_eq!(
            same_as_unknown(theirs.clone()),
            nobodys,
            "{tool}: another's session must look exactly like an unknown one"
        );
        assert!(!theirs.contains("alice"), "{tool}: {theirs}");
    }
    // Resources and completions are scoped the same way.
    let complete = |client: &tests::mcp::Server| {
        let params = rmcp::model::CompleteRequestParams::new(
            rmcp::model::Reference::for_resource("dataframe://{session_id}/{table}"),
            rmcp::model::ArgumentInfo::new("session_id", ""),
        );
        let client = client.client().peer().clone();
        async move { client.complete(params).await.unwrap().completion.values }
    };
    assert!(complete(&alice).await.contains(&session));
    assert!(!complete(&bob).await.contains(&session));
    let uris = |resources: Vec<rmcp::model::Resource>| -> Vec<String> {
        resources.into_iter().map(|r| r.uri.clone()).collect()
    };
    let uri = format!("dataframe://{session}/sales");
    assert!(uris(alice.client().list_all_resources().await.unwrap()).contains(&uri));
    assert!(!uris(bob.client().list_all_resources().await.unwrap()).contains(&uri));
    let read = |client: &tests::mcp::Server, uri: String| {
        let client = client.client().peer().clone();
        async move {
            client
                .read_resource(rmcp::model::ReadResourceRequestParams::new(uri))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    };
    assert!(read(&alice, uri.clone()).await.is_ok());
    let theirs = read(&bob, uri.clone()).await.unwrap_err();
    let nobodys = read(&bob, format!("dataframe://{unknown}/sales"))
        .await
        .unwrap_err();
    assert_eq!(same_as_unknown(theirs), nobodys);

    // Nothing of Alice's changed.
    let history = alice.ok("get_history", ids(&session, "sales")).await;
    assert_eq!(history["current_version"], 1);

    // Both choose "sales" as their session id: two sessions.
    let (s1, a1) = upload(&server, ALICE, "one.csv", "x\n1\n", "?session_id=shared").await;
    let (s2, b1) = upload(&server, BOB, "two.csv", "y\n2\n3\n", "?session_id=shared").await;
    assert_eq!((s1, s2), (200, 200), "{a1} {b1}");
    assert_eq!(a1["session_id"], "shared");
    assert_eq!(b1["session_id"], "shared");
    let mine = alice
        .ok("list_tables", json!({ "session_id": "shared" }))
        .await;
    let theirs = bob
        .ok("list_tables", json!({ "session_id": "shared" }))
        .await;
    assert_eq!(mine["tables"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine["tables"][0]["table"], "one");
    assert_eq!(theirs["tables"][0]["table"], "two");
    alice.stop().await;
    bob.stop().await;
}

/// No token or a wrong one: 401 with a Bearer challenge, on every route but
/// the health checks; a foreign Host or Origin: 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_hosts_and_origins_are_checked() {
    let server = HttpServer::start(bin(), &Storage::Memory, TOKENS, &[]).await;
    let client = http_client();
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": { "name": "curl", "version": "0" } }
    });
    for token in [None, Some("wrong"), Some("alice-token-1x")] {
        let mut request = client
            .post(server.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .json(&initialize);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "token {token:?}");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("alice-token"), "tokens are never echoed");
    }
    let (status, _) = upload(&server, "wrong", "a.csv", "x\n1\n", "").await;
    assert_eq!(status, 401);
    assert!(
        server
            .connect_with(None, ProtocolVersion::V_2025_11_25)
            .await
            .is_err()
    );
    assert_eq!(
        client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // The right token, through a plain JSON-RPC POST as curl would send it.
    let response = client
        .post(server.url("/mcp"))
        .bearer_auth(ALICE)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer["result"]["serverInfo"]["name"], "dataframe-mcp",
        "{answer}"
    );

    let rebinding = client
        .post(server.url("/mcp"))
        .bearer_auth(ALICE)
        .header("host", "evil.example")
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .unwrap();
    assert_eq!(rebinding.status(), 403);
    let cross_site = client
        .post(server.url("/v1/files?filename=a.csv"))
        .bearer_auth(ALICE)
        .header("origin", "https://evil.example")
        .body("x\n1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    let logs = server.stderr_tail();
    assert!(
        !logs.contains("alice-token-1"),
        "tokens never reach the logs"
    );

    // The scheme is case-insensitive.
    let lower = client
        .post(server.url("/mcp"))
        .header("authorization", format!("bearer {ALICE}"))
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), 200);
    // /readyz tells a balancer what it needs and nothing about the store.
    let ready: Value = client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(ready.get("storage").is_none(), "{ready}");
    // Guessing tokens is throttled.
    let mut statuses = Vec::new();
    for i in 0..15 {
        let r = client
            .get(server.url("/v1/exports/a.xb"))
            .bearer_auth(format!("guess-{i}"))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
}

/// A form cannot make the server hold more than a bounded amount: part
/// headers that never end and long option fields are refused; the server
/// answers the next call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_forms_are_refused() {
    let server = HttpServer::start(bin(), &Storage::Memory, TOKENS, &[]).await;
    let client = http_client();
    let boundary = "XyZ";
    let mut endless =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"");
    endless.push_str(&"A".repeat(2 << 20));
    let r = client
        .post(server.url("/v1/files"))
        .bearer_auth(ALICE)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(endless)
        .send()
        .await;
    // The server may close the connection before the client has sent it all.
    if let Ok(r) = r {
        assert_eq!(r.status(), 400);
        let body = r.text().await.unwrap();
        assert!(body.contains("too long"), "{body}");
    }
    let form = reqwest::multipart::Form::new()
        .text("session_id", "x".repeat(10_000))
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"a\n1\n".to_vec()).file_name("a.csv"),
        );
    let r = client
        .post(server.url("/v1/files"))
        .bearer_auth(ALICE)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("over 4096 bytes"));
    let (status, loaded) = upload(&server, ALICE, "a.csv", "a\n1\n", "").await;
    assert_eq!(status, 200, "{loaded}");
}

/// The current protocol revision and the two before it all work, on one
/// stateless endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_revisions_all_work() {
    let server = HttpServer::start(bin(), &Storage::Memory, TOKENS, &[]).await;
    let (status, loaded) = upload(&server, ALICE, "sales.csv", SALES, "").await;
    assert_eq!(status, 200, "{loaded}");
    let session = loaded["session_id"].as_str().unwrap().to_string();
    for version in [
        ProtocolVersion::V_2025_06_18,
        ProtocolVersion::V_2025_11_25,
        ProtocolVersion::LATEST,
    ] {
        let client = server
            .connect_with(Some(ALICE), version.clone())
            .await
            .unwrap_or_else(|e| panic!("{version:?}: {e}"));
        let summary = client.ok("get_table_summary", ids(&session, "sales")).await;
        assert_eq!(summary["rows"], 5, "{version:?}");
        client.stop().await;
    }
}

/// Over the burst, 429 with Retry-After; the bucket is the principal's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429() {
    let server = HttpServer::start(
        bin(),
        &Storage::redis(),
        TOKENS,
        &["--rate-limit", "0.5", "--rate-burst", "3"],
    )
    .await;
    let client = http_client();
    let fetch = |token: &'static str| {
        client
            .get(server.url("/v1/exports/nothing.xnothing"))
            .bearer_auth(token)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(fetch(ALICE).await.unwrap().status(), 404);
    }
    let limited = fetch(ALICE).await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "retry after {retry}");
    assert_eq!(
        fetch(BOB).await.unwrap().status(),
        404,
        "Bob has his own bucket"
    );
}

/// `/readyz` says 503 while Redis is down and 200 once it is back; calls in
/// between fail with a clear error and the process stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_store() {
    let mut redis = ControlledRedis::start();
    let storage = Storage::Redis {
        url: redis.url(),
        prefix: random_prefix(),
    };
    let server = HttpServer::start(bin(), &storage, TOKENS, &[]).await;
    let client = http_client();
    let ready = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let facts: Value = ready.json().await.unwrap();
    assert_eq!(facts["store_reachable"], true);
    assert_eq!(facts["transport"], "http");
    assert!(facts["store_round_trip_ms"].as_f64().is_some(), "{facts}");

    let (status, loaded) = upload(&server, ALICE, "sales.csv", SALES, "").await;
    assert_eq!(status, 200, "{loaded}");
    let session = loaded["session_id"].as_str().unwrap().to_string();
    let alice = server.connect(Some(ALICE)).await;

    redis.stop();
    let down = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(down.status(), 503);
    let e = alice.err("preview_rows", ids(&session, "sales")).await;
    assert!(e.contains("unavailable"), "{e}");
    let (status, body) = upload(&server, ALICE, "b.csv", "x\n1\n", "").await;
    assert_eq!(status, 503, "{body}");

    redis.resume();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = client.get(server.url("/readyz")).send().await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "/readyz never came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let preview = alice.ok("preview_rows", ids(&session, "sales")).await;
    assert_eq!(preview["total_rows"], 5);
    alice.stop().await;
}

/// SIGTERM: an upload still being sent finishes and is answered; new
/// connections are refused; the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_calls_finish() {
    let mut server = HttpServer::start(bin(), &Storage::Memory, TOKENS, &[]).await;
    let (send, receive) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream_of(receive));
    let request = http_client()
        .post(server.url("/v1/files?filename=slow.csv"))
        .bearer_auth(ALICE)
        .body(body)
        .send();
    let in_flight = tokio::spawn(request);
    send.send(Ok(b"a,b\n".to_vec())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.terminate();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err(),
        "no new connections once stopping"
    );
    send.send(Ok(b"1,2\n3,4\n".to_vec())).await.unwrap();
    drop(send);
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight upload is answered");
    assert_eq!(response.status(), 200);
    let loaded: Value = response.json().await.unwrap();
    assert_eq!(loaded["tables"][0]["rows"], 2, "{loaded}");
    let code = server.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(code, Some(0), "{}", server.stderr_tail());
}

/// A stream of the chunks sent on `receive`.
fn tokio_stream_of(
    mut receive: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::poll_fn(move |cx| receive.poll_recv(cx))
}

/// Uploads are streamed to disk: several megabytes in a form are fine, and
/// more than --max-file-bytes is refused with 413.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_uploads_stream_under_the_cap() {
    let server = HttpServer::start(
        bin(),
        &Storage::Memory,
        TOKENS,
        &["--max-file-bytes", "6000000"],
    )
    .await;
    let mut csv = String::from("id,name,value\n");
    let mut i = 0;
    while csv.len() < 4_000_000 {
        csv.push_str(&format!("{i},name-{i},{}\n", i % 97));
        i += 1;
    }
    let (status, loaded) = upload(&server, ALICE, "big.csv", &csv, "").await;
    assert_eq!(status, 200, "{loaded}");
    assert_eq!(loaded["tables"][0]["rows"], i);
    let raw = http_client()
        .post(server.url("/v1/files?filename=big.csv"))
        .bearer_auth(ALICE)
        .body(csv.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    csv.push_str(&csv.clone());
    let (status, refused) = upload(&server, ALICE, "huge.csv", &csv, "").await;
    assert_eq!(status, 413, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("--max-file-bytes"),
        "{refused}"
    );
}

/// Without tokens the server only listens on loopback, unless told loudly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_addresses_need_tokens() {
    let port = tests::redis::free_port(false);
    let out = tokio::process::Command::new(bin())
        .args(["--transport", "http", "--storage", "memory", "--listen"])
        .arg(format!("0.0.0.0:{port}"))
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--tokens-file"), "{stderr}");

    let mut open = tokio::process::Command::new(bin())
        .args([
            "--transport",
            "http",
            "--storage",
            "memory",
            "--insecure-no-auth",
            "--listen",
        ])
        .arg(format!("0.0.0.0:{port}"))
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::BufReader::new(open.stderr.take().unwrap());
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen.contains("WITHOUT AUTHENTICATION") && Instant::now() < deadline {
        use tokio::io::AsyncBufReadExt;
        let mut line = String::new();
        match tokio::time::timeout(Duration::from_secs(30), stderr.read_line(&mut line)).await {
            Ok(Ok(n)) if n > 0 => seen.push_str(&line),
            _ => break,
        }
    }
    assert!(seen.contains("WITHOUT AUTHENTICATION"), "{seen}");
    let _ = open.kill().await;
}

/// `dataframe-mcp import` loads a file for a principal; their HTTP client
/// then finds the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_hands_a_session_to_a_principal() {
    let storage = Storage::redis();
    let Storage::Redis { url, prefix } = &storage else {
        unreachable!()
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sales.csv");
    std::fs::write(&file, SALES).unwrap();
    let out = tokio::process::Command::new(bin())
        .args([
            "import",
            "--storage",
            "redis",
            "--principal",
            "alice",
            "--json",
        ])
        .arg(&file)
        .env("REDIS_URL", url)
        .env("REDIS_KEY_PREFIX", prefix)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let session = printed["session_id"].as_str().unwrap().to_string();
    assert_eq!(printed["tables"][0]["table"], "sales");

    let server = HttpServer::start(bin(), &storage, TOKENS, &[]).await;
    let alice = server.connect(Some(ALICE)).await;
    let summary = alice.ok("get_table_summary", ids(&session, "sales")).await;
    assert_eq!(summary["rows"], 5);
    let bob = server.connect(Some(BOB)).await;
    bob.err("get_table_summary", ids(&session, "sales")).await;
    alice.stop().await;
    bob.stop().await;
}
