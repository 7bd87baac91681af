//! Reading a table's log: which version stands where relative to the head.
//! Pure: the store reads the state and the log, this sorts them out.

use std::collections::{HashMap, HashSet};

use crate::model::{EventKind, LogRecord, TableState};

use super::types::{HistoryEntry, VersionStatus};

/// Splits log records into committed versions (with their status) and the
/// other events (undo, redo, rename), both oldest first.
pub(crate) fn classify(
    state: &TableState,
    records: Vec<LogRecord>,
) -> (Vec<HistoryEntry>, Vec<LogRecord>) {
    let (commits, events): (Vec<LogRecord>, Vec<LogRecord>) = records
        .into_iter()
        .partition(|r| r.kind == EventKind::Commit);
    // Ancestors of the head are applied: follow parent links.
    let parents: HashMap<u64, Option<u64>> = commits
        .iter()
        .map(|r| (r.version, r.from_version))
        .collect();
    let mut applied = HashSet::new();
    let mut cursor = Some(state.head.version);
    while let Some(v) = cursor {
        if !applied.insert(v) {
            break;
        }
        cursor = parents.get(&v).copied().flatten();
    }
    let undoable: HashSet<u64> = state.undo.iter().map(|v| v.version).collect();
    let redoable: HashSet<u64> = state.redo.iter().map(|v| v.version).collect();
    let versions = commits
        .into_iter()
        .map(|record| {
            let v = record.version;
            let status = if v == state.head.version {
                VersionStatus::Current
            } else if undoable.contains(&v) {
                VersionStatus::Undoable
            } else if redoable.contains(&v) {
                VersionStatus::Redoable
            } else if applied.contains(&v) {
                VersionStatus::BeyondUndoLimit
            } else {
                VersionStatus::Discarded
            };
            HistoryEntry { record, status }
        })
        .collect();
    (versions, events)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::model::{FORMAT_VERSION, VersionRef};
    use crate::versioning;

    use VersionStatus::*;

    fn version(n: u64) -> VersionRef {
        VersionRef {
            version: n,
            manifest: format!("m{n}"),
            rows: 1,
            cols: 1,
            action: "op".into(),
            summary: format!("v{n}"),
            at_ms: 0,
            actor: None,
        }
    }

    fn commit_record(v: u64, from: Option<u64>) -> LogRecord {
        LogRecord {
            kind: EventKind::Commit,
            version: v,
            from_version: from,
            at_ms: 0,
            op_id: None,
            action: "op".into(),
            params: serde_json::Value::Null,
            summary: format!("v{v}"),
            rows_before: None,
            cols_before: None,
            rows_after: 1,
            cols_after: 1,
            actor: None,
        }
    }

    fn event(kind: EventKind, v: u64, from: u64) -> LogRecord {
        LogRecord {
            kind,
            from_version: Some(from),
            ..commit_record(v, None)
        }
    }

    /// Replays a script of steps — `c` commit, `u` undo, `r` redo — with an
    /// undo limit, then checks the status of every committed version.
    fn check(script: &str, limit: usize, expected: &[(u64, VersionStatus)]) {
        let mut state = TableState {
            format: FORMAT_VERSION,
            uid: "t".into(),
            name: "t".into(),
            created_ms: 0,
            next_version: 2,
            head: version(1),
            undo: vec![],
            redo: vec![],
            retired: vec![],
            recent_ops: VecDeque::new(),
        };
        let mut log = vec![commit_record(1, None)];
        for step in script.chars() {
            let before = state.head.version;
            match step {
                'c' => {
                    let v = state.next_version;
                    state = versioning::commit(&state, version(v), None, limit, 0, 0);
                    log.push(commit_record(v, Some(before)));
                }
                'u' => {
                    state = versioning::undo(&state, 1, limit, 0, 0).expect("undo").0;
                    log.push(event(EventKind::Undo, state.head.version, before));
                }
                'r' => {
                    state = versioning::redo(&state, 1, limit, 0, 0).expect("redo").0;
                    log.push(event(EventKind::Redo, state.head.version, before));
                }
                other => panic!("unknown step {other}"),
            }
        }
        let events_expected = script.chars().filter(|c| *c != 'c').count();
        let (versions, events) = classify(&state, log);
        let got: Vec<(u64, VersionStatus)> = versions
            .iter()
            .map(|e| (e.record.version, e.status))
            .collect();
        assert_eq!(got, expected, "script {script:?} limit {limit}");
        assert_eq!(events.len(), events_expected);
    }

    #[test]
    fn statuses() {
        check("", 50, &[(1, Current)]);
        check("cc", 50, &[(1, Undoable), (2, Undoable), (3, Current)]);
        check("ccu", 50, &[(1, Undoable), (2, Current), (3, Redoable)]);
        check("ccuu", 50, &[(1, Current), (2, Redoable), (3, Redoable)]);
        check("ccuur", 50, &[(1, Undoable), (2, Current), (3, Redoable)]);
        check(
            "ccuc",
            50,
            &[(1, Undoable), (2, Undoable), (3, Discarded), (4, Current)],
        );
        check(
            "ccc",
            1,
            &[
                (1, BeyondUndoLimit),
                (2, BeyondUndoLimit),
                (3, Undoable),
                (4, Current),
            ],
        );
        check(
            "cccuu",
            2,
            &[
                (1, BeyondUndoLimit),
                (2, Current),
                (3, Redoable),
                (4, Redoable),
            ],
        );
        check("cur", 50, &[(1, Undoable), (2, Current)]);
    }
}
