//! The store's contract, run against every backend: memory, the embedded
//! SQLite store, a single Redis and a 3-node Redis Cluster. Each case is an
//! async fn taking a [`Harness`]; `per_backend!` at the bottom instantiates
//! one test per (backend, case). Time is the harness's hand-moved clock: no
//! case sleeps for TTL or GC.

use std::time::Duration;

use dfmcp_storage::{
    CommitOutcome, Committed, Edit, Intent, Loaded, OpRecord, Store, StoreConfig, StoreError,
    TableMeta, TaskEnd, TaskState, Updated, VersionStatus,
};
use polars::prelude::*;

use crate::harness::Harness;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn op(action: &str, summary: &str) -> OpRecord {
    OpRecord::new(action, serde_json::json!({ "test": true }), summary)
}

fn edit(df: DataFrame, summary: &str) -> Edit {
    Edit {
        df,
        meta: TableMeta::new(),
        op: op("test_op", summary),
    }
}

fn new() -> Intent {
    Intent::new()
}

fn id(op_id: &str) -> Intent {
    Intent::with_op_id(op_id)
}

/// Commits and expects a new version.
async fn commit(store: &Store, base: &Loaded, edit: Edit, op_id: &str) -> Committed {
    match store.commit(base, edit, &id(op_id)).await.unwrap() {
        CommitOutcome::Committed(c) => c,
        other => panic!("expected a new version, got {other:?}"),
    }
}

/// Loads the head, changes it to `value` and commits.
async fn set(store: &Store, sid: &str, table: &str, value: i64, op_id: &str) -> Committed {
    let base = store.load(sid, table).await.unwrap();
    let rows = base.df.height();
    commit(store, &base, edit(counter_frame(value, rows), op_id), op_id).await
}

fn counter_frame(value: i64, rows: usize) -> DataFrame {
    df!(
        "id" => (0..rows as i64).collect::<Vec<_>>(),
        "x" => vec![value; rows],
        "label" => (0..rows).map(|i| format!("row {i}")).collect::<Vec<_>>(),
    )
    .unwrap()
}

fn x_of(df: &DataFrame) -> i64 {
    df.column("x")
        .unwrap()
        .get(0)
        .unwrap()
        .extract::<i64>()
        .unwrap()
}

fn assert_frames_equal(a: &DataFrame, b: &DataFrame) {
    assert_eq!(a.schema(), b.schema(), "schemas differ");
    assert_eq!(a.shape(), b.shape(), "shapes differ");
    assert!(a.equals_missing(b), "frames differ:\n{a}\n{b}");
}

/// A session with a table `t` of 5 rows at x = 0.
async fn with_table(store: &Store) -> String {
    let sid = store.create_session(None).await.unwrap().id;
    store
        .create_table(&sid, "t", edit(counter_frame(0, 5), "v1"), &new())
        .await
        .unwrap();
    sid
}

/// Sessions and tables can be created, listed, loaded, changed and deleted.
async fn lifecycle(h: &Harness) {
    let store = h.store();
    let session = store.create_session(None).await.unwrap();
    assert_eq!(session.id.len(), 36, "a fresh session id is a UUID");
    let df = counter_frame(1, 100);
    let created = store
        .create_table(&session.id, "sales", edit(df.clone(), "load"), &new())
        .await
        .unwrap();
    assert_eq!((created.version, created.rows, created.cols), (1, 100, 3));

    let tables = store.list_tables(&session.id).await.unwrap();
    assert_eq!(tables.len(), 1);
    assert_eq!(
        (tables[0].name.as_str(), tables[0].rows, tables[0].version),
        ("sales", 100, 1)
    );
    let loaded = store.load(&session.id, "sales").await.unwrap();
    assert_frames_equal(&loaded.df, &df);

    let changed = counter_frame(2, 50);
    let c = commit(&store, &loaded, edit(changed.clone(), "change"), "op-1").await;
    assert_eq!((c.version, c.rows), (2, 50));
    // A fresh store (another process) sees the change.
    assert_frames_equal(
        &h.store().load(&session.id, "sales").await.unwrap().df,
        &changed,
    );

    let listed = store.list_sessions("", 10_000).await.unwrap();
    assert!(listed.iter().any(|s| s.id == session.id));
    store
        .drop_table(&session.id, "sales", &new())
        .await
        .unwrap();
    assert!(matches!(
        store.load(&session.id, "sales").await,
        Err(StoreError::TableNotFound { .. })
    ));
    store.delete_session(&session.id).await.unwrap();
    let err = store.session(&session.id).await.unwrap_err();
    assert!(matches!(err, StoreError::SessionNotFound { .. }));
    let listed = store.list_sessions("", 10_000).await.unwrap();
    assert!(!listed.iter().any(|s| s.id == session.id));
}

/// Undo and redo walk back and forth exactly, across many steps.
async fn undo_redo_many_steps(h: &Harness) {
    let store = h.store();
    let sid = store.create_session(None).await.unwrap().id;
    store
        .create_table(&sid, "t", edit(counter_frame(0, 10), "v0"), &new())
        .await
        .unwrap();
    for i in 1..=12 {
        let base = store.load(&sid, "t").await.unwrap();
        let df = counter_frame(i, 10 + i as usize);
        commit(
            &store,
            &base,
            edit(df, &format!("set {i}")),
            &format!("op-{i}"),
        )
        .await;
    }
    // A separate store, so every step really reads the backend.
    let reader = h.store();
    for i in (0..12).rev() {
        let moved = store.undo(&sid, "t", 1, &new()).await.unwrap();
        assert_eq!(moved.to.version, i as u64 + 1);
        let df = reader.load(&sid, "t").await.unwrap().df;
        assert_frames_equal(&df, &counter_frame(i, 10 + i as usize));
    }
    let err = store.undo(&sid, "t", 1, &new()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::NothingTo { what: "undo", .. }),
        "{err}"
    );
    for i in 1..=12 {
        store.redo(&sid, "t", 1, &new()).await.unwrap();
        assert_eq!(x_of(&reader.load(&sid, "t").await.unwrap().df), i);
    }
    assert!(matches!(
        store.redo(&sid, "t", 1, &new()).await,
        Err(StoreError::NothingTo { what: "redo", .. })
    ));
}

/// An undo of several steps moves the head once, and says what it passed.
async fn multi_step_undo_is_one_move(h: &Harness) {
    let store = h.store();
    let sid = with_table(&store).await;
    for i in 1..=4 {
        set(&store, &sid, "t", i, &format!("op{i}")).await;
    }
    let (rev_before, _) = store.table_state(&sid, "t").await.unwrap();
    let moved = store.undo(&sid, "t", 3, &new()).await.unwrap();
    assert_eq!((moved.from.version, moved.to.version), (5, 2));
    assert_eq!(moved.steps.len(), 3);
    assert_eq!(moved.rev, rev_before + 1, "one compare-and-set");
    assert_eq!(x_of(&h.store().load(&sid, "t").await.unwrap().df), 1);
    let history = store.history(&sid, "t").await.unwrap();
    assert_eq!(history.events.len(), 1, "one undo event");
    // Asking for more than there is moves as far as it can.
    let moved = store.redo(&sid, "t", 10, &new()).await.unwrap();
    assert_eq!((moved.steps.len(), moved.to.version), (3, 5));
}

/// Regression: a retried undo (same request) undid twice.
async fn a_retried_undo_moves_once(h: &Harness) {
    let store = h.store();
    let sid = with_table(&store).await;
    for i in 1..=3 {
        set(&store, &sid, "t", i, &format!("op{i}")).await;
    }
    let first = store.undo(&sid, "t", 1, &id("undo-1")).await.unwrap();
    assert!(!first.already_applied);
    let again = store.undo(&sid, "t", 1, &id("undo-1")).await.unwrap();
    assert!(again.already_applied);
    assert_eq!(again.to.version, first.to.version);
    assert_eq!(x_of(&h.store().load(&sid, "t").await.unwrap().df), 2);
    let redo = store.redo(&sid, "t", 1, &id("redo-1")).await.unwrap();
    let redo_again = store.redo(&sid, "t", 1, &id("redo-1")).await.unwrap();
    assert!(!redo.already_applied && redo_again.already_applied);
    assert_eq!(x_of(&h.store().load(&sid, "t").await.unwrap().df), 3);
}

/// With an expected version, a table at another version is left alone and
/// the error says what moved it.
async fn expected_versions_guard_every_write(h: &Harness) {
    let store = h.store();
    let sid = with_table(&store).await;
    set(&store, &sid, "t", 1, "op1").await;
    let stale = Intent::new().expecting(Some(1)).by(Some("alice".into()));
    let err = store
        .update(&sid, "t", &stale, |_| -> Result<(Edit, ()), String> {
            Err("must not run".into())
        })
        .await
        .err()
        .unwrap();
    let dfmcp_storage::UpdateError::Store(StoreError::VersionMismatch {
        expected,
        current,
        last_event,
        ..
    }) = err
    else {
        panic!("expected a version mismatch")
    };
    assert_eq!((expected, current.version), (1, 2));
    assert_eq!(last_event.unwrap().summary, "op1");
    for result in [
        store.undo(&sid, "t", 1, &stale).await.map(|_| ()),
        store.redo(&sid, "t", 1, &stale).await.map(|_| ()),
        store.rename_table(&sid, "t", "u", &stale).await,
        store.drop_table(&sid, "t", &stale).await,
    ] {
        assert!(
            matches!(result, Err(StoreError::VersionMismatch { .. })),
            "{result:?}"
        );
    }
    assert_eq!(
        x_of(&store.load(&sid, "t").await.unwrap().df),
        1,
        "nothing changed"
    );
    // The right version goes through, and the actor is recorded.
    let fresh = Intent::new().expecting(Some(2)).by(Some("alice".into()));
    let out = store
        .update(&sid, "t", &fresh, |l| -> Result<(Edit, ()), String> {
            Ok((edit(counter_frame(7, l.df.height()), "seven"), ()))
        })
        .await
        .unwrap();
    assert!(matches!(out, Updated::Applied { .. }));
    let history = store.history(&sid, "t").await.unwrap();
    assert_eq!(
        history.versions.last().unwrap().record.actor.as_deref(),
        Some("alice")
    );
}

/// An edit that changes nothing makes no version.
async fn an_unchanged_edit_makes_no_version(h: &Harness) {
    let store = h.store();
    let sid = with_table(&store).await;
    let base = store.load(&sid, "t").await.unwrap();
    let same = store
        .commit(&base, edit(base.df.clone(), "nothing"), &new())
        .await
        .unwrap();
    assert!(
        matches!(same, CommitOutcome::Unchanged { version: 1 }),
        "{same:?}"
    );
    assert_eq!(
        store.table_state(&sid, "t").await.unwrap().1.head.version,
        1
    );
}

/// A new commit after an undo discards the redo stack.
async fn new_commit_clears_redo(h: &Harness) {
    let store = h.store();
    let sid = with_table(&store).await;
    for i in 1..=3 {
        set(&store, &sid, "t", i, &format!("op{i}")).await;
    }
    store.undo(&sid, "t", 2, &new()).await.unwrap();
    let base = store.load(&sid, "t").await.unwrap();
    assert_eq!(x_of(&base.df), 1);
    commit(
        &store,
        &base,
        edit(counter_frame(99, 5), "branch"),
        "op-branch",
    )
    .await;
    assert!(matches!(
        store.redo(&sid, "t", 1, &new()).await,
        Err(StoreError::NothingTo { .. })
    ));
    let history = store.history(&sid, "t").await.unwrap();
    let statuses: Vec<(u64, VersionStatus)> = history
        .versions
        .iter()
        .map(|v| (v.record.version, v.status))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (1, VersionStatus::Undoable),
            (2, VersionStatus::Undoable),
            (3, VersionStatus::Discarded),
            (4, VersionStatus::Discarded),
            (5, VersionStatus::Current),
        ]
    );
    assert_eq!(history.events.len(), 1, "one undo event of two steps");
}

/// Only `history_limit` steps can be undone; older versions fall off.
async fn history_cap(h: &Harness) {
    let store = h.store_with(|c| c.history_limit = 3);
    let sid = with_table(&store).await;
    for i in 1..=6 {
        set(&store, &sid, "t", i, &format!("op{i}")).await;
    }
    for expected in [5, 4, 3] {
        store.undo(&sid, "t", 1, &new()).await.unwrap();
        assert_eq!(x_of(&store.load(&sid, "t").await.unwrap().df), expected);
    }
    let err = store.undo(&sid, "t", 1, &new()).await.unwrap_err();
    assert!(err.to_string().contains("history limit of 3"), "{err}");
    let history = store.history(&sid, "t").await.unwrap();
    let beyond = history
        .versions
        .iter()
        .filter(|v| v.status == VersionStatus::BeyondUndoLimit)
        .count();
    assert_eq!(beyond, 3, "versions 1..=3 are applied but beyond the limit");
    assert_eq!(history.versions.len(), 7, "the log keeps every operation");
    assert!(!history.trimmed);
}

/// Logs are trimmed to the newest records, and a dropped table's log goes.
async fn logs_are_bounded(h: &Harness) {
    let store = h.store_with(|c| c.log_limit = 5);
    let sid = with_table(&store).await;
    for i in 1..=8 {
        set(&store, &sid, "t", i, &format!("op{i}")).await;
    }
    let history = store.history(&sid, "t").await.unwrap();
    assert_eq!(history.versions.len(), 5);
    assert!(history.trimmed);
    assert_eq!(history.versions.last().unwrap().record.version, 9);
    let (_, state) = store.table_state(&sid, "t").await.unwrap();
    store.drop_table(&sid, "t", &new()).await.unwrap();
    let log = h
        .backend()
        .read_log(&sid, &state.uid, 100, h.now())
        .await
        .unwrap();
    assert!(log.is_empty(), "regression: drop_table left its log behind");
}

/// Sessions expire after their idle TTL; each access pushes expiry back.
async fn ttl_expiry_and_refresh(h: &Harness) {
    let store = h.store_with(|c| c.session_ttl = Duration::from_secs(3600));
    let sid = with_table(&store).await;
    for _ in 0..3 {
        h.clock.advance(Duration::from_secs(2400));
        // Each access refreshes the expiry: 2 hours in, still alive.
        store.load(&sid, "t").await.unwrap();
    }
    h.clock.advance(Duration::from_secs(3601));
    let err = store.load(&sid, "t").await.unwrap_err();
    assert!(matches!(err, StoreError::SessionNotFound { .. }), "{err}");
    let listed = store.list_sessions("", 10_000).await.unwrap();
    assert!(!listed.iter().any(|s| s.id == sid));
    store.purge_expired().await.unwrap();
    assert_eq!(store.usage(&sid).await.unwrap().blobs, 0);
}

/// Data that no retained version references is collected after the grace.
async fn gc_removes_unreferenced_chunks(h: &Harness) {
    let store = h.store_with(|c| {
        c.history_limit = 1;
        c.gc_grace = Duration::from_secs(60);
    });
    let sid = store.create_session(None).await.unwrap().id;
    store
        .create_table(&sid, "t", edit(counter_frame(0, 2000), "v1"), &new())
        .await
        .unwrap();
    for i in 1..=5 {
        let base = store.load(&sid, "t").await.unwrap();
        let mut df = base.df.clone();
        df.with_column(Column::new("x".into(), vec![i; 2000]))
            .unwrap();
        commit(&store, &base, edit(df, "c"), &format!("op{i}")).await;
    }
    let before = store.usage(&sid).await.unwrap();
    // Within the grace nothing goes.
    assert_eq!(store.gc(&sid).await.unwrap().deleted, 0);
    h.clock.advance(Duration::from_secs(61));
    let report = store.gc(&sid).await.unwrap();
    let after = store.usage(&sid).await.unwrap();
    assert!(
        report.deleted >= 3,
        "old versions' x columns and manifests go: {report:?}"
    );
    assert_eq!(after.blobs, before.blobs - report.deleted);
    assert!(after.bytes < before.bytes);
    // What is left still loads: the head and the one undo step.
    let fresh = h.store();
    assert_eq!(x_of(&fresh.load(&sid, "t").await.unwrap().df), 5);
    store.undo(&sid, "t", 1, &new()).await.unwrap();
    assert_eq!(x_of(&fresh.load(&sid, "t").await.unwrap().df), 4);
    // Dropping the table leaves everything collectable.
    store.drop_table(&sid, "t", &new()).await.unwrap();
    h.clock.advance(Duration::from_secs(61));
    store.gc(&sid).await.unwrap();
    assert_eq!(store.usage(&sid).await.unwrap().blobs, 0);
}

/// Maintenance collects every due session, even when one of them fails.
async fn maintenance_collects_what_is_due(h: &Harness) {
    let store = h.store_with(|c| {
        c.history_limit = 1;
        c.gc_grace = Duration::from_secs(60);
    });
    let sids = [with_table(&store).await, with_table(&store).await];
    for sid in &sids {
        for i in 1..=3 {
            set(&store, sid, "t", i, &format!("op{i}")).await;
        }
    }
    let before: u64 = {
        let mut total = 0;
        for sid in &sids {
            total += store.usage(sid).await.unwrap().bytes;
        }
        total
    };
    h.clock.advance(Duration::from_secs(61));
    let report = store.maintain().await.unwrap();
    assert!(
        report.gc.deleted > 0 && report.failed.is_empty(),
        "{report:?}"
    );
    let mut after = 0;
    for sid in &sids {
        after += store.usage(sid).await.unwrap().bytes;
    }
    assert!(after < before);
}

/// Values that compress about equally in every column and every edit, so
/// "one column" is a fair unit of stored bytes.
fn scrambled(row: usize, col: usize, round: usize) -> f64 {
    let x = (row as u64 + 1)
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add((col as u64 + 1).wrapping_mul(1_442_695_040_888_963_407))
        .wrapping_add((round as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    (x >> 44) as f64 / 16.0
}

fn wide_frame(rows: usize, cols: usize) -> DataFrame {
    let columns: Vec<Column> = (0..cols)
        .map(|c| {
            let values: Vec<f64> = (0..rows).map(|r| scrambled(r, c, 0)).collect();
            Column::new(format!("c{c}").into(), values)
        })
        .collect();
    DataFrame::new(rows, columns).unwrap()
}

/// A one-column change of a wide table stores about one column, and so do
/// 30 undo steps of single-column edits cost about 30 columns.
async fn dedupe_single_column_edits(h: &Harness) {
    let store = h.store();
    let sid = store.create_session(None).await.unwrap().id;
    let (rows, cols) = (20_000, 20);
    store
        .create_table(&sid, "wide", edit(wide_frame(rows, cols), "load"), &new())
        .await
        .unwrap();
    let base_usage = store.usage(&sid).await.unwrap().bytes;
    let one_column = base_usage / cols as u64;

    let mut edits: u64 = 0;
    for round in 0..30 {
        let base = store.load(&sid, "wide").await.unwrap();
        let mut df = base.df.clone();
        let target = format!("c{}", round % cols);
        let values: Vec<f64> = (0..rows)
            .map(|r| scrambled(r, round % cols, round + 1))
            .collect();
        df.with_column(Column::new(target.as_str().into(), values))
            .unwrap();
        let committed = commit(
            &store,
            &base,
            edit(df, "edit one column"),
            &format!("op{round}"),
        )
        .await;
        assert!(
            committed.parts_reused >= cols - 1,
            "untouched columns are reused: {committed:?}"
        );
        edits += 1;
        if round == 0 {
            let grown = store.usage(&sid).await.unwrap().bytes - base_usage;
            assert!(
                grown <= one_column * 2 + 16 * 1024,
                "one edited column stored {grown} bytes; a column is about {one_column}"
            );
        }
    }
    let grown = store.usage(&sid).await.unwrap().bytes - base_usage;
    // Each commit also writes a manifest of a few KB.
    assert!(
        grown <= one_column * (edits + 2) + edits * 8 * 1024,
        "{edits} single-column edits stored {grown} bytes, about {} columns' worth",
        grown / one_column.max(1)
    );
    assert!(grown < base_usage * 3, "far less than {edits} whole tables");

    if !h.backend().capabilities().native_frames {
        // Content addressing: the same values rebuilt from scratch (no shared
        // memory with what was stored) add nothing, not even a version.
        let head = h.store().load(&sid, "wide").await.unwrap();
        let rebuilt = DataFrame::new(
            head.df.height(),
            head.df
                .columns()
                .iter()
                .map(|c| Column::new(c.name().clone(), c.as_materialized_series().rechunk()))
                .collect(),
        )
        .unwrap();
        let before = store.usage(&sid).await.unwrap().bytes;
        let outcome = h
            .store()
            .commit(&head, edit(rebuilt, "same values"), &new())
            .await
            .unwrap();
        assert!(
            matches!(outcome, CommitOutcome::Unchanged { .. }),
            "{outcome:?}"
        );
        assert_eq!(store.usage(&sid).await.unwrap().bytes, before);
    }
}

fn every_dtype(rows: usize) -> DataFrame {
    let n = rows as i64;
    let nullable = |i: i64| (i % 3 != 0).then_some(i);
    let mut columns = vec![
        Column::new(
            "i8".into(),
            (0..n)
                .map(|i| nullable(i).map(|v| (v % 100) as i8))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "i16".into(),
            (0..n)
                .map(|i| nullable(i).map(|v| v as i16))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "i32".into(),
            (0..n)
                .map(|i| nullable(i).map(|v| v as i32 * -7))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "i64".into(),
            (0..n)
                .map(|i| nullable(i).map(|v| v * 1_000_000_007))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "u8".into(),
            (0..n).map(|i| (i % 200) as u8).collect::<Vec<_>>(),
        ),
        Column::new("u32".into(), (0..n).map(|i| i as u32).collect::<Vec<_>>()),
        Column::new(
            "u64".into(),
            (0..n)
                .map(|i| nullable(i).map(|v| v as u64 * 3))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "f32".into(),
            (0..n)
                .map(|i| nullable(i).map(|v| v as f32 / 3.0))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "f64".into(),
            (0..n)
                .map(|i| match i % 5 {
                    0 => None,
                    1 => Some(f64::NAN),
                    2 => Some(f64::INFINITY),
                    _ => Some(i as f64 * 0.1),
                })
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "bool".into(),
            (0..n)
                .map(|i| (i % 4 != 0).then_some(i % 2 == 0))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "str".into(),
            (0..n)
                .map(|i| (i % 6 != 0).then(|| format!("välue ✓ {i}")))
                .collect::<Vec<_>>(),
        ),
        Column::new("all_null".into(), vec![None::<i64>; rows]),
    ];
    let temporal = [
        ("date", DataType::Date),
        ("dt_ms", DataType::Datetime(TimeUnit::Milliseconds, None)),
        (
            "dt_us_utc",
            DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
        ),
        (
            "dt_ns_paris",
            DataType::Datetime(
                TimeUnit::Nanoseconds,
                TimeZone::opt_try_new(Some("Europe/Paris")).unwrap(),
            ),
        ),
        ("dur_ms", DataType::Duration(TimeUnit::Milliseconds)),
        ("dur_us", DataType::Duration(TimeUnit::Microseconds)),
        ("time", DataType::Time),
    ];
    for (name, dtype) in temporal {
        let raw: Vec<Option<i64>> = (0..n)
            .map(|i| {
                nullable(i).map(|v| match dtype {
                    DataType::Date => v % 20_000,
                    DataType::Time => (v % 86_400) * 1_000_000_000,
                    _ => v * 86_400_123,
                })
            })
            .collect();
        let s = Series::new(name.into(), raw);
        let s = if dtype == DataType::Date {
            s.cast(&DataType::Int32).unwrap().cast(&dtype).unwrap()
        } else {
            s.cast(&dtype).unwrap()
        };
        columns.push(s.into_column());
    }
    DataFrame::new(rows, columns).unwrap()
}

/// Every dtype we ingest survives a round trip through the backend, with
/// nulls everywhere, in empty tables and in tables without columns.
async fn dtypes_round_trip(h: &Harness) {
    let store = h.store();
    let sid = store.create_session(None).await.unwrap().id;
    let cases = [
        ("many_rows", every_dtype(5000)),
        ("few_rows", every_dtype(7)),
        ("no_rows", every_dtype(0)),
        ("no_columns", DataFrame::empty_with_height(3)),
        ("nothing", DataFrame::empty()),
    ];
    for (name, df) in &cases {
        store
            .create_table(&sid, name, edit(df.clone(), "load"), &new())
            .await
            .unwrap();
    }
    // A fresh store has no cache: this decodes what the backend holds.
    let fresh = h.store();
    for (name, df) in &cases {
        let loaded = fresh.load(&sid, name).await.unwrap();
        assert_frames_equal(&loaded.df, df);
        assert_eq!(loaded.df.height(), df.height(), "{name}");
    }
}

/// Values of a frame whose columns are patched: floats with -0.0, NaN and
/// missing values, integers, text, dates and flags.
fn patchable_frame(rows: usize) -> DataFrame {
    let n = rows as i64;
    df!(
        "f" => (0..n)
            .map(|i| match i % 11 {
                0 => None,
                1 => Some(0.0),
                2 => Some(f64::NAN),
                _ => Some(i as f64 / 3.0),
            })
            .collect::<Vec<_>>(),
        "i" => (0..n).map(|i| (i % 5 != 0).then_some(i * 11)).collect::<Vec<_>>(),
        "s" => (0..n)
            .map(|i| (i % 6 != 0).then(|| format!("value {}", i % 977)))
            .collect::<Vec<_>>(),
        "b" => (0..n).map(|i| (i % 4 != 0).then_some(i % 3 == 0)).collect::<Vec<_>>(),
    )
    .unwrap()
    .lazy()
    .with_column(
        (lit(19_000i32) + col("i").cast(DataType::Int32) % lit(400))
            .cast(DataType::Date)
            .alias("d"),
    )
    .collect()
    .unwrap()
}

/// Fills the missing values of every column but `d` with one value each,
/// and turns 0.0 into -0.0: a tenth to a fifth of each column's cells.
fn filled(df: &DataFrame, round: i64) -> DataFrame {
    df.clone()
        .lazy()
        .with_columns([
            when(col("f").eq(lit(0.0)))
                .then(lit(-0.0))
                .otherwise(col("f").fill_null(lit(round as f64 + 0.5)))
                .alias("f"),
            col("i").fill_null(lit(round)),
            col("s").fill_null(lit(format!("filled {round}"))),
            col("b").fill_null(lit(round % 2 == 0)),
        ])
        .collect()
        .unwrap()
}

/// The bits of every float, so that -0.0 and 0.0 (and NaNs) compare apart.
fn float_bits(df: &DataFrame) -> Vec<Option<u64>> {
    df.column("f")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .map(|v| v.map(f64::to_bits))
        .collect()
}

/// A change of a few cells is stored as a patch of the old column, not as a
/// new copy, and reads back exactly, however many patches are stacked; undo
/// reads the old values from under them.
async fn few_changed_cells_are_patched(h: &Harness) {
    let store = h.store();
    let sid = store.create_session(None).await.unwrap().id;
    let original = patchable_frame(40_000);
    store
        .create_table(&sid, "t", edit(original.clone(), "load"), &new())
        .await
        .unwrap();
    let mut expected = vec![original.clone()];
    for round in 1..=7 {
        let base = store.load(&sid, "t").await.unwrap();
        let mut next = if round == 1 {
            filled(&base.df, round)
        } else {
            // A few cells of one column, stacked on the last patch.
            let mut f: Vec<Option<f64>> =
                base.df.column("f").unwrap().f64().unwrap().iter().collect();
            for row in (round as usize..f.len()).step_by(97) {
                f[row] = Some(-(row as f64) - round as f64);
            }
            let mut df = base.df.clone();
            df.with_column(Column::new("f".into(), f)).unwrap();
            df
        };
        if round == 6 {
            // A value becoming missing cannot be a patch: stored whole.
            let mut i: Vec<Option<i64>> = next.column("i").unwrap().i64().unwrap().iter().collect();
            i[1] = None;
            next.with_column(Column::new("i".into(), i)).unwrap();
        }
        commit(
            &store,
            &base,
            edit(next.clone(), "patch"),
            &format!("p{round}"),
        )
        .await;
        expected.push(next);
        // A fresh store has no cache: what the backend holds, decoded.
        let loaded = h.store().load(&sid, "t").await.unwrap();
        assert_frames_equal(&loaded.df, expected.last().unwrap());
        assert_eq!(
            float_bits(&loaded.df),
            float_bits(expected.last().unwrap()),
            "round {round}"
        );
    }
    for back in (0..expected.len() - 1).rev() {
        store.undo(&sid, "t", 1, &new()).await.unwrap();
        let loaded = h.store().load(&sid, "t").await.unwrap();
        assert_frames_equal(&loaded.df, &expected[back]);
        assert_eq!(
            float_bits(&loaded.df),
            float_bits(&expected[back]),
            "undone to {back}"
        );
    }

    if !h.backend().capabilities().native_frames {
        // With parts of the default size (not the harness's small ones, whose
        // Parquet footers would outweigh the data), a fill stores a fraction
        // of what the table takes.
        let store =
            h.store_with(|c| c.part_target_bytes = StoreConfig::default().part_target_bytes);
        let sid = store.create_session(None).await.unwrap().id;
        store
            .create_table(&sid, "t", edit(original.clone(), "load"), &new())
            .await
            .unwrap();
        let whole = store.usage(&sid).await.unwrap().bytes;
        let base = store.load(&sid, "t").await.unwrap();
        let committed = commit(&store, &base, edit(filled(&base.df, 1), "fill"), "fill").await;
        let grown = store.usage(&sid).await.unwrap().bytes - whole;
        assert!(
            grown * 4 < whole,
            "a fill of a fifth of the cells stored {grown} bytes of a {whole}-byte table: {committed:?}"
        );
    }
}

/// Of two writers starting from the same version, the second one loses.
async fn compare_and_set_conflicts(h: &Harness) {
    let (a, b) = (h.store(), h.store());
    let sid = with_table(&a).await;
    let base_a = a.load(&sid, "t").await.unwrap();
    let base_b = b.load(&sid, "t").await.unwrap();
    commit(&a, &base_a, edit(counter_frame(1, 5), "a"), "op-a").await;
    let err = b
        .commit(&base_b, edit(counter_frame(2, 5), "b"), &id("op-b"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(x_of(&b.load(&sid, "t").await.unwrap().df), 1);
}

/// A retried commit (same operation id) is not applied twice.
async fn retried_commit_applies_once(h: &Harness) {
    let store = h.store();
    let sid = with_table(&store).await;
    let base = store.load(&sid, "t").await.unwrap();
    let first = commit(&store, &base, edit(counter_frame(1, 5), "once"), "op-42").await;
    let again = store
        .commit(&base, edit(counter_frame(1, 5), "once"), &id("op-42"))
        .await
        .unwrap();
    let CommitOutcome::AlreadyApplied { version, record } = again else {
        panic!("expected already applied, got {again:?}")
    };
    assert_eq!(version, first.version);
    assert_eq!(record.unwrap().summary, "once");
    let history = store.history(&sid, "t").await.unwrap();
    assert_eq!(history.versions.len(), 2);
    // update() with a known id does nothing either.
    let out = store
        .update(
            &sid,
            "t",
            &id("op-42"),
            |_l| -> Result<(Edit, ()), String> { Err("must not run".into()) },
        )
        .await;
    assert!(matches!(
        out,
        Ok(Updated::AlreadyApplied { version: 2, .. })
    ));
    // A retried creation finds the table its first attempt made.
    let intent = id("load-1");
    store
        .create_table(&sid, "loaded", edit(counter_frame(5, 2), "load"), &intent)
        .await
        .unwrap();
    let found = store
        .tables_with_ops(&sid, &["load-1".to_string()])
        .await
        .unwrap();
    assert_eq!(found["load-1"].name, "loaded");
}

/// Rename, copy and drop, and the errors that name what exists.
async fn rename_copy_drop(h: &Harness) {
    let store = h.store();
    let sid = store
        .create_session(Some("named-session_1"))
        .await
        .unwrap()
        .id;
    assert_eq!(sid, "named-session_1");
    assert!(matches!(
        store.create_session(Some("named-session_1")).await,
        Err(StoreError::SessionExists { .. })
    ));
    assert!(matches!(
        store.create_session(Some("bad id!")).await,
        Err(StoreError::InvalidName { .. })
    ));
    store
        .create_table(&sid, "a", edit(counter_frame(1, 5), "v1"), &new())
        .await
        .unwrap();
    store
        .create_table(&sid, "b", edit(counter_frame(2, 5), "v1"), &new())
        .await
        .unwrap();
    set(&store, &sid, "a", 3, "op").await;

    assert!(matches!(
        store.rename_table(&sid, "a", "b", &new()).await,
        Err(StoreError::TableExists { .. })
    ));
    store
        .rename_table(&sid, "a", "renamed", &id("rename-1"))
        .await
        .unwrap();
    // A retried rename succeeds without doing anything.
    store
        .rename_table(&sid, "a", "renamed", &id("rename-1"))
        .await
        .unwrap();
    let err = store.load(&sid, "a").await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("renamed") && text.contains("b"), "{text}");
    // History and undo go with the name.
    let history = store.history(&sid, "renamed").await.unwrap();
    assert_eq!(history.versions.len(), 2);
    store.undo(&sid, "renamed", 1, &new()).await.unwrap();
    assert_eq!(x_of(&store.load(&sid, "renamed").await.unwrap().df), 1);

    let other = store.create_session(None).await.unwrap().id;
    let copied = store
        .copy_table(&sid, "renamed", &other, "copy", &new())
        .await
        .unwrap();
    assert_eq!(copied.version, 1);
    let fresh = h.store();
    assert_frames_equal(
        &fresh.load(&other, "copy").await.unwrap().df,
        &counter_frame(1, 5),
    );
    assert!(matches!(
        store
            .copy_table(&sid, "renamed", &other, "copy", &new())
            .await,
        Err(StoreError::TableExists { .. })
    ));
    store.drop_table(&sid, "renamed", &new()).await.unwrap();
    assert_eq!(store.list_tables(&sid).await.unwrap().len(), 1);
    // The copy does not depend on the source.
    store.delete_session(&sid).await.unwrap();
    assert_frames_equal(
        &h.store().load(&other, "copy").await.unwrap().df,
        &counter_frame(1, 5),
    );
}

/// Concurrent read-modify-commit with retry keeps every increment, and no
/// writer gives up.
async fn concurrent_updates_keep_every_change(h: &Harness) {
    let sid = with_table(&h.store()).await;
    let (writers, each) = (6, 5);
    let mut tasks = Vec::new();
    for w in 0..writers {
        // A store per writer: separate caches, like separate processes.
        let store = std::sync::Arc::new(h.store());
        let sid = sid.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..each {
                let out = store
                    .update(
                        &sid,
                        "t",
                        &id(&format!("w{w}-{i}")),
                        |loaded| -> Result<(Edit, ()), String> {
                            let x = x_of(&loaded.df);
                            Ok((edit(counter_frame(x + 1, 5), "increment"), ()))
                        },
                    )
                    .await;
                assert!(
                    matches!(out, Ok(Updated::Applied { .. })),
                    "writer {w} step {i}"
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let store = h.store();
    assert_eq!(
        x_of(&store.load(&sid, "t").await.unwrap().df),
        (writers * each) as i64
    );
    let history = store.history(&sid, "t").await.unwrap();
    let versions: Vec<u64> = history.versions.iter().map(|v| v.record.version).collect();
    assert_eq!(
        versions,
        (1..=(writers * each) as u64 + 1).collect::<Vec<_>>()
    );
    // Each version's parent is the one before: a linear history.
    for v in &history.versions[1..] {
        assert_eq!(v.record.from_version, Some(v.record.version - 1));
    }
}

/// Tables over the size cap are refused with a clear error.
async fn too_large_is_refused(h: &Harness) {
    let store = h.store_with(|c| c.max_table_bytes = 10_000);
    let sid = store.create_session(None).await.unwrap().id;
    let err = store
        .create_table(&sid, "big", edit(counter_frame(0, 10_000), "load"), &new())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("limit"), "{err}");
    // Short text lives in 16-byte views that polars' estimate leaves out:
    // 1,000 codes of 8 characters are "8,000 bytes" to polars and hold
    // 16,000, over the cap.
    let codes: Vec<String> = (0..1000).map(|i| format!("c{i:07}")).collect();
    let text = DataFrame::new_infer_height(vec![Column::new("code".into(), codes)]).unwrap();
    assert!(text.estimated_size() < 10_000);
    let err = store
        .create_table(&sid, "codes", edit(text, "load"), &new())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
}

/// Metadata travels with versions and is undone with them.
async fn metadata_is_versioned(h: &Harness) {
    let store = h.store();
    let sid = with_table(&store).await;
    let base = store.load(&sid, "t").await.unwrap();
    let mut meta = TableMeta::new();
    meta.insert("note".into(), serde_json::json!("hello"));
    let changed = Edit {
        df: base.df.clone(),
        meta,
        op: op("meta", "m"),
    };
    commit(&store, &base, changed, "op-m").await;
    assert_eq!(
        h.store().load(&sid, "t").await.unwrap().meta["note"],
        "hello"
    );
    store.undo(&sid, "t", 1, &new()).await.unwrap();
    assert!(h.store().load(&sid, "t").await.unwrap().meta.is_empty());
}

/// Sessions outlive a day of idleness only if the TTL says so.
async fn default_ttl_is_a_day(h: &Harness) {
    let store = h.store();
    let sid = with_table(&store).await;
    h.clock.advance(DAY - Duration::from_secs(120));
    store.load(&sid, "t").await.unwrap();
    h.clock.advance(DAY + Duration::from_secs(1));
    assert!(store.load(&sid, "t").await.is_err());
}

/// A task's state is in the store: another store on the same backend (another
/// process) sees it start, beat, get a cancel request and end; a task whose
/// worker stops beating is lost, not running forever; GC leaves its records.
async fn tasks_are_seen_from_every_process(h: &Harness) {
    let worker = h.store();
    let other = h.store();
    let sid = with_table(&worker).await;
    let uid = dfmcp_storage::new_uid();
    assert_eq!(other.task(&sid, &uid).await.unwrap(), None);
    let start = worker
        .task_start(&sid, &uid, "initialize_data_table")
        .await
        .unwrap();
    let working = |state: Option<TaskState>| match state {
        Some(TaskState::Working {
            message,
            cancel_requested,
            ..
        }) => (message, cancel_requested),
        other => panic!("not working: {other:?}"),
    };
    assert_eq!(
        working(other.task(&sid, &uid).await.unwrap()),
        (None, false)
    );
    for second in 1..=30u64 {
        h.clock.advance(Duration::from_secs(1));
        if second % 2 == 0 {
            let cancel = worker
                .task_beat(&sid, &uid, &start, &format!("working ({second} s)"))
                .await
                .unwrap();
            assert!(!cancel);
        }
        let (message, _) = working(other.task(&sid, &uid).await.unwrap());
        let beat = second - second % 2;
        let expected = (beat > 0).then(|| format!("working ({beat} s)"));
        assert_eq!(message, expected);
    }
    // Collection leaves task records alone, however old.
    h.clock.advance(Duration::from_secs(6 * 3600));
    worker.gc(&sid).await.unwrap();
    assert!(other.task(&sid, &uid).await.unwrap().is_some());
    h.clock.advance(Duration::from_secs(1));
    worker
        .task_beat(&sid, &uid, &start, "still here")
        .await
        .unwrap();
    assert!(other.task_cancel(&sid, &uid).await.unwrap());
    assert_eq!(
        working(other.task(&sid, &uid).await.unwrap()),
        (Some("still here".into()), true)
    );
    assert!(
        worker
            .task_beat(&sid, &uid, &start, "stopping")
            .await
            .unwrap()
    );
    worker
        .task_end(&sid, &uid, TaskEnd::Cancelled, serde_json::json!({}))
        .await
        .unwrap();
    match other.task(&sid, &uid).await.unwrap() {
        Some(TaskState::Ended { end, .. }) => assert_eq!(end, TaskEnd::Cancelled),
        other => panic!("{other:?}"),
    }
    // A task whose worker went away is lost once it has been silent a while.
    let lost = dfmcp_storage::new_uid();
    let start = worker
        .task_start(&sid, &lost, "export_table")
        .await
        .unwrap();
    worker
        .task_beat(&sid, &lost, &start, "begun")
        .await
        .unwrap();
    h.clock.advance(Duration::from_millis(
        dfmcp_storage::LOST_AFTER_MS as u64 - 1_000,
    ));
    working(other.task(&sid, &lost).await.unwrap());
    h.clock.advance(Duration::from_secs(2));
    assert!(matches!(
        other.task(&sid, &lost).await.unwrap(),
        Some(TaskState::Lost { .. })
    ));
    // Ids that cannot be ours are refused; unknown ones are absent.
    assert!(other.task(&sid, "../etc").await.is_err());
    assert!(
        !other
            .task_cancel(&sid, &dfmcp_storage::new_uid())
            .await
            .unwrap()
    );
}

crate::per_backend!(
    tasks_are_seen_from_every_process,
    lifecycle,
    undo_redo_many_steps,
    multi_step_undo_is_one_move,
    a_retried_undo_moves_once,
    expected_versions_guard_every_write,
    an_unchanged_edit_makes_no_version,
    new_commit_clears_redo,
    history_cap,
    logs_are_bounded,
    ttl_expiry_and_refresh,
    gc_removes_unreferenced_chunks,
    maintenance_collects_what_is_due,
    dedupe_single_column_edits,
    dtypes_round_trip,
    few_changed_cells_are_patched,
    compare_and_set_conflicts,
    retried_commit_applies_once,
    rename_copy_drop,
    concurrent_updates_keep_every_change,
    too_large_is_refused,
    metadata_is_versioned,
    default_ttl_is_a_day,
);
