//! The backend behaviour suite: one test per sentence under `# Behavior` in
//! `dfmcp_storage::Backend`'s docs, run on every backend (memory, SQLite, a
//! Redis server, a Redis Cluster). Times are passed in, so nothing sleeps.

use bytes::Bytes;
use dfmcp_storage::backend::{
    Backend, Blob, CasOutcome, CasRequest, LogAppend, SessionMeta, TableChange,
};
use dfmcp_storage::{StoreError, Throttle};

use crate::harness::Harness;

const HOUR: i64 = 3_600_000;

fn meta(id: &str, now: i64) -> SessionMeta {
    SessionMeta {
        id: id.to_string(),
        created_ms: now,
        last_access_ms: now,
        ttl_ms: HOUR,
    }
}

/// A fresh session id (sessions of one backend are shared by its tests).
fn sid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn blob(text: &str) -> Blob {
    Blob::Bytes(Bytes::from(text.to_string()))
}

fn bytes_of(blob: &Option<Blob>) -> Option<Vec<u8>> {
    match blob {
        Some(Blob::Bytes(b)) => Some(b.to_vec()),
        _ => None,
    }
}

/// The bytes `get_blobs` gives for `ids`, in order.
async fn contents(
    b: &dyn Backend,
    session: &str,
    ids: &[String],
    now: i64,
) -> Vec<Option<Vec<u8>>> {
    b.get_blobs(session, ids, now)
        .await
        .unwrap()
        .iter()
        .map(bytes_of)
        .collect()
}

fn put_table(name: &str, rev: u64, expected: Option<u64>) -> TableChange {
    TableChange {
        name: name.into(),
        expected_rev: expected,
        new: Some((rev, Bytes::from(format!("doc {name} {rev}")))),
    }
}

fn cas(changes: Vec<TableChange>) -> CasRequest {
    CasRequest {
        changes,
        ..CasRequest::default()
    }
}

async fn created(b: &dyn Backend, now: i64) -> String {
    let id = sid();
    assert!(b.create_session(&meta(&id, now)).await.unwrap());
    id
}

// ----- create_session --------------------------------------------------------

/// Returns `true` and stores `meta` when no live session has this id.
async fn create_stores_the_session(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    let id = created(b.as_ref(), now).await;
    let (found, _) = b.open(&id, None, now).await.unwrap().unwrap();
    assert_eq!((found.created_ms, found.ttl_ms), (now, HOUR));
}

/// Returns `false` and changes nothing when a live session with this id exists.
async fn create_refuses_a_live_id(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    let id = created(b.as_ref(), now).await;
    b.cas_tables(&id, &cas(vec![put_table("t", 1, None)]), now)
        .await
        .unwrap();
    let mut again = meta(&id, now + 1);
    again.ttl_ms = 5;
    assert!(!b.create_session(&again).await.unwrap());
    let (found, record) = b.open(&id, Some("t"), now + 2).await.unwrap().unwrap();
    assert_eq!(found.ttl_ms, HOUR);
    assert!(record.is_some(), "the table is still there");
}

/// An expired session with this id is replaced: none of its tables, logs or
/// blobs are visible in the new one.
async fn create_replaces_an_expired_session(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    let id = created(b.as_ref(), now).await;
    b.cas_tables(
        &id,
        &CasRequest {
            changes: vec![put_table("t", 1, None)],
            log: vec![LogAppend {
                table_uid: "u1".into(),
                record: Bytes::from_static(b"r1"),
                keep: 10,
            }],
            drop_logs: vec![],
        },
        now,
    )
    .await
    .unwrap();
    b.put_blobs(&id, vec![("b1".into(), blob("x"))], now)
        .await
        .unwrap();
    let later = now + HOUR + 1;
    assert!(b.create_session(&meta(&id, later)).await.unwrap());
    assert_eq!(b.list_tables(&id, later).await.unwrap(), Some(vec![]));
    assert!(b.read_log(&id, "u1", 10, later).await.unwrap().is_empty());
    assert!(b.list_blobs(&id, later).await.unwrap().is_empty());
    assert_eq!(
        bytes_of(&b.get_blobs(&id, &["b1".into()], later).await.unwrap()[0]),
        None
    );
}

// ----- open ------------------------------------------------------------------

/// Returns `None` for a missing or expired session.
async fn open_missing_or_expired_is_none(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    assert!(b.open(&sid(), None, now).await.unwrap().is_none());
    let id = created(b.as_ref(), now).await;
    assert!(b.open(&id, None, now + HOUR).await.unwrap().is_none());
}

/// Refreshes `last_access_ms` to `now_ms` at least when refresh is due.
async fn open_refreshes_when_due(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    let id = created(b.as_ref(), now).await;
    let half = now + HOUR / 2;
    let (found, _) = b.open(&id, None, half).await.unwrap().unwrap();
    assert_eq!(found.last_access_ms, half);
    // Alive past the first expiry, because the open refreshed it.
    assert!(b.open(&id, None, now + HOUR + 1).await.unwrap().is_some());
}

/// The record is `None` when the table does not exist.
async fn open_without_the_table_gives_no_record(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    let id = created(b.as_ref(), now).await;
    let (_, record) = b.open(&id, Some("nope"), now).await.unwrap().unwrap();
    assert!(record.is_none());
}

// ----- list_sessions ---------------------------------------------------------

/// A session id's namespace is the part before its first '.'; expired
/// sessions are never listed.
async fn sessions_are_listed_by_namespace(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    let ns = format!("ns{}", uuid::Uuid::new_v4().simple());
    let a = format!("{ns}.a");
    let c = format!("{ns}.c");
    for id in [&a, &c] {
        assert!(b.create_session(&meta(id, now)).await.unwrap());
    }
    let mut expired = meta(&format!("{ns}.old"), now - HOUR - 5);
    expired.last_access_ms = now - HOUR - 5;
    b.create_session(&expired).await.unwrap();
    let mut listed: Vec<String> = b
        .list_sessions(&ns, 100, now)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    listed.sort();
    assert_eq!(listed, vec![a.clone(), c.clone()]);
    assert_eq!(b.list_sessions(&ns, 1, now).await.unwrap().len(), 1);
    let plain = created(b.as_ref(), now).await;
    let top: Vec<String> = b
        .list_sessions("", 100_000, now)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert!(top.contains(&plain));
    assert!(
        !top.contains(&a),
        "namespaced ids are not in the empty namespace"
    );
}

// ----- delete_session ----------------------------------------------------------

/// Returns whether a live session existed; deleting a missing session
/// succeeds and returns `false`.
async fn delete_says_whether_it_existed(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    let id = created(b.as_ref(), now).await;
    assert!(b.delete_session(&id, now).await.unwrap());
    assert!(!b.delete_session(&id, now).await.unwrap());
    assert!(!b.delete_session(&sid(), now).await.unwrap());
    assert!(b.open(&id, None, now).await.unwrap().is_none());
}

/// A session created again under the same id afterwards starts empty, and
/// nothing the deletion does later can remove its data.
async fn a_recreated_session_keeps_its_own_data(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    let id = created(b.as_ref(), now).await;
    b.put_blobs(&id, vec![("old".into(), blob("old"))], now)
        .await
        .unwrap();
    b.delete_session(&id, now).await.unwrap();
    assert!(b.create_session(&meta(&id, now)).await.unwrap());
    assert!(b.list_blobs(&id, now).await.unwrap().is_empty());
    b.put_blobs(&id, vec![("new".into(), blob("new"))], now)
        .await
        .unwrap();
    // Deleting the (already deleted) first incarnation again changes nothing
    // of the second; only a delete of the live one does.
    let got = b.get_blobs(&id, &["new".into()], now).await.unwrap();
    assert_eq!(bytes_of(&got[0]).as_deref(), Some(&b"new"[..]));
}

// ----- purge_expired ---------------------------------------------------------

/// Live sessions are untouched (and expired ones are gone, purged or not).
async fn purge_keeps_live_sessions(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    let live = created(b.as_ref(), now).await;
    let old = created(b.as_ref(), now - HOUR + 10).await;
    let purged = b.purge_expired(now + 20).await.unwrap();
    assert!(!purged.contains(&live));
    assert!(b.open(&live, None, now + 20).await.unwrap().is_some());
    assert!(b.open(&old, None, now + 20).await.unwrap().is_none());
}

// ----- list_tables -----------------------------------------------------------

/// Returns `None` for a missing or expired session.
async fn list_tables_of_a_missing_session_is_none(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    assert_eq!(b.list_tables(&sid(), now).await.unwrap(), None);
    let id = created(b.as_ref(), now).await;
    b.cas_tables(&id, &cas(vec![put_table("t", 1, None)]), now)
        .await
        .unwrap();
    assert_eq!(b.list_tables(&id, now).await.unwrap().unwrap().len(), 1);
    assert_eq!(b.list_tables(&id, now + HOUR).await.unwrap(), None);
}

// ----- cas_tables ------------------------------------------------------------

/// On a revision mismatch nothing is written and the first mismatching table
/// is reported with its current revision.
async fn a_conflicting_cas_writes_nothing(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    let id = created(b.as_ref(), now).await;
    b.cas_tables(&id, &cas(vec![put_table("a", 1, None)]), now)
        .await
        .unwrap();
    let outcome = b
        .cas_tables(
            &id,
            &CasRequest {
                changes: vec![put_table("new", 1, None), put_table("a", 9, Some(7))],
                log: vec![LogAppend {
                    table_uid: "u".into(),
                    record: Bytes::from_static(b"r"),
                    keep: 5,
                }],
                drop_logs: vec![],
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        outcome,
        CasOutcome::Conflict {
            name: "a".into(),
            current: Some(1)
        }
    );
    let tables = b.list_tables(&id, now).await.unwrap().unwrap();
    assert_eq!(tables.len(), 1, "'new' was not written");
    assert!(b.read_log(&id, "u", 5, now).await.unwrap().is_empty());
    let absent = b
        .cas_tables(&id, &cas(vec![put_table("ghost", 2, Some(1))]), now)
        .await
        .unwrap();
    assert_eq!(
        absent,
        CasOutcome::Conflict {
            name: "ghost".into(),
            current: None
        }
    );
}

/// A missing or expired session gives `SessionGone` and writes nothing.
async fn cas_on_a_missing_session_is_session_gone(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    let id = sid();
    assert_eq!(
        b.cas_tables(&id, &cas(vec![put_table("t", 1, None)]), now)
            .await
            .unwrap(),
        CasOutcome::SessionGone
    );
    assert!(b.open(&id, None, now).await.unwrap().is_none());
}

/// An applied change refreshes the session's expiry to `now_ms`.
async fn cas_refreshes_the_session(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    let id = created(b.as_ref(), now).await;
    let later = now + HOUR - 1;
    assert_eq!(
        b.cas_tables(&id, &cas(vec![put_table("t", 1, None)]), later)
            .await
            .unwrap(),
        CasOutcome::Applied
    );
    assert!(b.open(&id, None, now + HOUR + 10).await.unwrap().is_some());
}

/// Log records are appended with the change, and each log is trimmed to its
/// `keep`; dropped logs are deleted.
async fn cas_appends_trims_and_drops_logs(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    let id = created(b.as_ref(), now).await;
    for i in 0..6u64 {
        let change = put_table("t", i + 1, (i > 0).then_some(i));
        let request = CasRequest {
            changes: vec![change],
            log: vec![LogAppend {
                table_uid: "uid-t".into(),
                record: Bytes::from(format!("r{i}")),
                keep: 4,
            }],
            drop_logs: vec![],
        };
        assert_eq!(
            b.cas_tables(&id, &request, now).await.unwrap(),
            CasOutcome::Applied
        );
    }
    let log = b.read_log(&id, "uid-t", 100, now).await.unwrap();
    let texts: Vec<String> = log
        .iter()
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .collect();
    assert_eq!(texts, ["r2", "r3", "r4", "r5"]);
    let drop = CasRequest {
        changes: vec![TableChange {
            name: "t".into(),
            expected_rev: Some(6),
            new: None,
        }],
        log: vec![],
        drop_logs: vec!["uid-t".into()],
    };
    assert_eq!(
        b.cas_tables(&id, &drop, now).await.unwrap(),
        CasOutcome::Applied
    );
    assert!(b.read_log(&id, "uid-t", 100, now).await.unwrap().is_empty());
}

// ----- read_log --------------------------------------------------------------

/// The newest `limit` records, oldest first; a missing session gives none.
async fn read_log_gives_the_newest_oldest_first(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    let id = created(b.as_ref(), now).await;
    for i in 0..5u64 {
        let request = CasRequest {
            changes: vec![put_table("t", i + 1, (i > 0).then_some(i))],
            log: vec![LogAppend {
                table_uid: "u".into(),
                record: Bytes::from(format!("r{i}")),
                keep: 100,
            }],
            drop_logs: vec![],
        };
        b.cas_tables(&id, &request, now).await.unwrap();
    }
    let last_two: Vec<Bytes> = b.read_log(&id, "u", 2, now).await.unwrap();
    assert_eq!(last_two, [Bytes::from("r3"), Bytes::from("r4")]);
    assert!(b.read_log(&id, "other", 10, now).await.unwrap().is_empty());
    assert!(b.read_log(&sid(), "u", 10, now).await.unwrap().is_empty());
}

// ----- blobs -----------------------------------------------------------------

/// Idempotent: storing a blob again keeps it and refreshes its touch time.
async fn put_is_idempotent(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    let id = created(b.as_ref(), now).await;
    b.put_blobs(&id, vec![("k".into(), blob("same"))], now)
        .await
        .unwrap();
    b.put_blobs(&id, vec![("k".into(), blob("same"))], now + 50)
        .await
        .unwrap();
    let listed = b.list_blobs(&id, now + 50).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].touched_ms, now + 50);
    assert_eq!(listed[0].size, 4);
}

/// One put of many blobs (more than a backend writes at once, an id given
/// twice) stores each under its own id, with its own bytes.
async fn put_stores_many_blobs_each_under_its_id(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    let id = created(b.as_ref(), now).await;
    let content = |i: usize| format!("{i}:{}", "x".repeat(i * 37));
    let mut blobs: Vec<(String, Blob)> = (0..37)
        .map(|i| (format!("p{i}"), blob(&content(i))))
        .collect();
    blobs.push(("p5".into(), blob(&content(5))));
    b.put_blobs(&id, blobs, now).await.unwrap();
    let ids: Vec<String> = (0..37).map(|i| format!("p{i}")).collect();
    let got = contents(b.as_ref(), &id, &ids, now).await;
    let want: Vec<Option<Vec<u8>>> = (0..37).map(|i| Some(content(i).into_bytes())).collect();
    assert_eq!(got, want);
    let mut listed = b.list_blobs(&id, now).await.unwrap();
    listed.sort_by_key(|l| l.size);
    assert_eq!(listed.len(), 37);
    for (i, l) in listed.iter().enumerate() {
        assert_eq!(l.size, content(i).len() as u64);
    }
}

/// A missing or expired session is an error and stores nothing.
async fn put_into_a_missing_session_fails(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    let id = sid();
    let err = b
        .put_blobs(&id, vec![("k".into(), blob("x"))], now)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::SessionNotFound { .. }), "{err}");
    assert!(b.list_blobs(&id, now).await.unwrap().is_empty());
}

/// `touch_blobs` says, per id in order, whether the blob exists; in a
/// missing session every id reports `false`.
async fn touch_reports_presence(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    let id = created(b.as_ref(), now).await;
    b.put_blobs(&id, vec![("a".into(), blob("1"))], now)
        .await
        .unwrap();
    let ids = vec!["x".to_string(), "a".to_string()];
    assert_eq!(
        b.touch_blobs(&id, &ids, now + 9).await.unwrap(),
        [false, true]
    );
    assert_eq!(
        b.list_blobs(&id, now + 9).await.unwrap()[0].touched_ms,
        now + 9
    );
    assert_eq!(
        b.touch_blobs(&sid(), &ids, now).await.unwrap(),
        [false, false]
    );
}

/// `get_blobs` returns one entry per id, in order, `None` for an id not
/// stored; in a missing session every entry is `None`.
async fn get_returns_one_entry_per_id(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    let id = created(b.as_ref(), now).await;
    b.put_blobs(
        &id,
        vec![("a".into(), blob("A")), ("c".into(), blob("C"))],
        now,
    )
    .await
    .unwrap();
    let ids: Vec<String> = ["c", "b", "a"].iter().map(|s| s.to_string()).collect();
    let got = contents(b.as_ref(), &id, &ids, now).await;
    assert_eq!(got, [Some(b"C".to_vec()), None, Some(b"A".to_vec())]);
    let missing = b.get_blobs(&sid(), &ids, now).await.unwrap();
    assert!(missing.iter().all(Option::is_none) && missing.len() == 3);
}

/// `list_blobs` gives every blob with its size and last touch; a missing
/// session has none.
async fn list_blobs_gives_sizes_and_touches(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    let id = created(b.as_ref(), now).await;
    b.put_blobs(&id, vec![("a".into(), blob("12345"))], now)
        .await
        .unwrap();
    let listed = b.list_blobs(&id, now).await.unwrap();
    assert_eq!(
        (listed[0].id.as_str(), listed[0].size, listed[0].touched_ms),
        ("a", 5, now)
    );
    assert!(b.list_blobs(&sid(), now).await.unwrap().is_empty());
}

/// A blob touched at or after the cutoff is kept; missing ids and missing
/// sessions are skipped.
async fn delete_keeps_recently_touched_blobs(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    let id = created(b.as_ref(), now).await;
    b.put_blobs(
        &id,
        vec![("old".into(), blob("12")), ("new".into(), blob("345"))],
        now,
    )
    .await
    .unwrap();
    b.touch_blobs(&id, &["new".into()], now + 100)
        .await
        .unwrap();
    let ids: Vec<String> = ["old", "new", "missing"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let freed = b.delete_blobs(&id, &ids, now + 100).await.unwrap();
    assert_eq!(freed, 2);
    let left: Vec<String> = b
        .list_blobs(&id, now + 100)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(left, ["new"]);
    assert_eq!(b.delete_blobs(&sid(), &ids, now).await.unwrap(), 0);
}

// ----- take_token ------------------------------------------------------------

/// A new bucket starts full; an empty one says how long until a token is
/// there and takes nothing; time refills it.
async fn buckets_start_full_and_refill(h: &Harness) {
    let b = h.backend();
    let now = h.now();
    let bucket = format!("t{}", uuid::Uuid::new_v4().simple());
    for _ in 0..3 {
        assert_eq!(
            b.take_token(&bucket, 2.0, 3.0, now).await.unwrap(),
            Throttle::Allowed
        );
    }
    // Empty: one token at 2 per second is 500 ms away, and asking again
    // does not push it further.
    for _ in 0..2 {
        assert_eq!(
            b.take_token(&bucket, 2.0, 3.0, now).await.unwrap(),
            Throttle::RetryAfterMs(500)
        );
    }
    assert_eq!(
        b.take_token(&bucket, 2.0, 3.0, now + 500).await.unwrap(),
        Throttle::Allowed
    );
    // Never more than the burst, however long it waited.
    let later = now + 60_000;
    for _ in 0..3 {
        assert_eq!(
            b.take_token(&bucket, 2.0, 3.0, later).await.unwrap(),
            Throttle::Allowed
        );
    }
    assert!(matches!(
        b.take_token(&bucket, 2.0, 3.0, later).await.unwrap(),
        Throttle::RetryAfterMs(_)
    ));
    // Buckets are separate.
    let other = format!("{bucket}x");
    assert_eq!(
        b.take_token(&other, 2.0, 3.0, later).await.unwrap(),
        Throttle::Allowed
    );
}

crate::per_backend!(
    buckets_start_full_and_refill,
    create_stores_the_session,
    create_refuses_a_live_id,
    create_replaces_an_expired_session,
    open_missing_or_expired_is_none,
    open_refreshes_when_due,
    open_without_the_table_gives_no_record,
    sessions_are_listed_by_namespace,
    delete_says_whether_it_existed,
    a_recreated_session_keeps_its_own_data,
    purge_keeps_live_sessions,
    list_tables_of_a_missing_session_is_none,
    a_conflicting_cas_writes_nothing,
    cas_on_a_missing_session_is_session_gone,
    cas_refreshes_the_session,
    cas_appends_trims_and_drops_logs,
    read_log_gives_the_newest_oldest_first,
    put_is_idempotent,
    put_stores_many_blobs_each_under_its_id,
    put_into_a_missing_session_fails,
    touch_reports_presence,
    get_returns_one_entry_per_id,
    list_blobs_gives_sizes_and_touches,
    delete_keeps_recently_touched_blobs,
);
