//! `rediss://` against a real redis-server speaking TLS on a loopback port,
//! with a certificate authority and server certificate made by `openssl`
//! for the test (defect 10: TLS had never run).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use dfmcp_storage::{Intent, OpRecord, RedisBackend, RedisConfig, Store, StoreConfig, TableMeta};
use polars::prelude::*;

use crate::harness::random_prefix;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed to make the test certificates (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for localhost / 127.0.0.1, in `dir`.
fn make_certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=dfmcp test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_a_private_ca_stores_and_loads() {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    let tls_port = tests::redis::free_port(false).to_string();
    let cert = dir.path().join("server.crt");
    let key = dir.path().join("server.key");
    let ca = dir.path().join("ca.crt");
    let (port, _server) = {
        let args: Vec<String> = vec![
            "--tls-port".into(),
            tls_port,
            "--tls-cert-file".into(),
            cert.display().to_string(),
            "--tls-key-file".into(),
            key.display().to_string(),
            "--tls-ca-cert-file".into(),
            ca.display().to_string(),
            "--tls-auth-clients".into(),
            "no".into(),
            "--requirepass".into(),
            "s3cret-pw".into(),
        ];
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            tests::redis::redis_with_args(&refs)
        })
        .await
        .unwrap()
    };

    let mut cfg = RedisConfig::new(format!("rediss://:s3cret-pw@localhost:{port}"));
    cfg.prefix = random_prefix();
    cfg.ca_cert = Some(ca.clone());
    let store = Store::new(
        Arc::new(RedisBackend::single(&cfg).unwrap()),
        StoreConfig::default(),
    );
    let sid = store.create_session(None).await.unwrap().id;
    let df = df!("x" => [1i64, 2, 3], "y" => ["a", "b", "c"]).unwrap();
    let edit = dfmcp_storage::Edit {
        df: df.clone(),
        meta: TableMeta::new(),
        op: OpRecord::new("load", serde_json::json!({}), "load"),
    };
    store
        .create_table(&sid, "t", edit, &Intent::new())
        .await
        .unwrap();
    let fresh = Store::new(
        Arc::new(RedisBackend::single(&cfg).unwrap()),
        StoreConfig::default(),
    );
    assert!(fresh.load(&sid, "t").await.unwrap().df.equals_missing(&df));

    // Without the CA the server's certificate is not trusted: a clear error,
    // not a panic (a rustls provider is installed) nor a hang.
    let mut untrusted = cfg.clone();
    untrusted.ca_cert = None;
    let store = Store::new(
        Arc::new(RedisBackend::single(&untrusted).unwrap()),
        StoreConfig::default(),
    );
    let err = store.create_session(None).await.unwrap_err();
    assert!(!err.to_string().contains("s3cret-pw"), "{err}");

    // A wrong password is an error that does not repeat the password.
    let mut wrong = cfg.clone();
    wrong.url = format!("rediss://:not-the-pw@localhost:{port}");
    let store = Store::new(
        Arc::new(RedisBackend::single(&wrong).unwrap()),
        StoreConfig::default(),
    );
    let err = store.create_session(None).await.unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("not-the-pw"), "{text}");
}
