//! Pure transitions of a table's state document: commit, undo, redo.
//!
//! The store computes the next state with these and publishes it by
//! compare-and-set; nothing here does I/O.

use crate::model::{RECENT_OPS, Retired, TableState, VersionRef};

/// The state after committing `head` on top of `state`.
///
/// The old head goes on the undo stack; the redo stack is cleared (its
/// versions can no longer be reached); the undo stack keeps at most `limit`
/// entries. Everything dropped is retired at `now_ms`; retired entries older
/// than `grace_ms` are forgotten.
pub fn commit(
    state: &TableState,
    mut head: VersionRef,
    op_id: Option<&str>,
    limit: usize,
    now_ms: i64,
    grace_ms: i64,
) -> TableState {
    let mut next = state.clone();
    head.version = state.next_version;
    next.next_version += 1;
    let old_head = std::mem::replace(&mut next.head, head);
    next.undo.push(old_head);
    let mut dropped: Vec<VersionRef> = std::mem::take(&mut next.redo);
    if next.undo.len() > limit {
        let excess = next.undo.len() - limit;
        dropped.extend(next.undo.drain(..excess));
    }
    retire(&mut next, dropped, now_ms, grace_ms);
    if let Some(op_id) = op_id {
        remember(&mut next, op_id);
    }
    next
}

/// The state after undoing up to `steps` steps (fewer when the undo stack is
/// shorter), with the versions left behind in the order they were undone;
/// `None` when nothing can be undone.
pub fn undo(
    state: &TableState,
    steps: usize,
    limit: usize,
    now_ms: i64,
    grace_ms: i64,
) -> Option<(TableState, Vec<VersionRef>)> {
    let mut next = state.clone();
    let mut moved = Vec::new();
    for _ in 0..steps {
        let Some(previous) = next.undo.pop() else {
            break;
        };
        let current = std::mem::replace(&mut next.head, previous);
        moved.push(current.clone());
        next.redo.push(current);
    }
    if moved.is_empty() {
        return None;
    }
    let mut dropped = Vec::new();
    if next.redo.len() > limit {
        let excess = next.redo.len() - limit;
        dropped.extend(next.redo.drain(..excess));
    }
    retire(&mut next, dropped, now_ms, grace_ms);
    Some((next, moved))
}

/// The state after redoing up to `steps` steps, with the versions reached in
/// order; `None` when nothing can be redone.
pub fn redo(
    state: &TableState,
    steps: usize,
    limit: usize,
    now_ms: i64,
    grace_ms: i64,
) -> Option<(TableState, Vec<VersionRef>)> {
    let mut next = state.clone();
    let mut moved = Vec::new();
    for _ in 0..steps {
        let Some(following) = next.redo.pop() else {
            break;
        };
        moved.push(following.clone());
        let current = std::mem::replace(&mut next.head, following);
        next.undo.push(current);
    }
    if moved.is_empty() {
        return None;
    }
    let mut dropped = Vec::new();
    if next.undo.len() > limit {
        let excess = next.undo.len() - limit;
        dropped.extend(next.undo.drain(..excess));
    }
    retire(&mut next, dropped, now_ms, grace_ms);
    Some((next, moved))
}

/// Records an operation id, so that a retry of the same operation is
/// recognised; the oldest ids fall off.
pub fn remember(state: &mut TableState, op_id: &str) {
    state.recent_ops.push_back(op_id.to_string());
    while state.recent_ops.len() > RECENT_OPS {
        state.recent_ops.pop_front();
    }
}

/// Whether `op_id` is among the operations this state remembers.
pub fn knows(state: &TableState, op_id: &str) -> bool {
    state.recent_ops.iter().any(|id| id == op_id)
}

/// Manifests retired by the transition from `before` to `after` (newly
/// retired entries, not merely a longer list).
pub fn newly_retired<'a>(before: &TableState, after: &'a TableState) -> Vec<&'a str> {
    after
        .retired
        .iter()
        .filter(|r| !before.retired.contains(r))
        .map(|r| r.manifest.as_str())
        .collect()
}

fn retire(state: &mut TableState, dropped: Vec<VersionRef>, now_ms: i64, grace_ms: i64) {
    state.retired.retain(|r| r.at_ms >= now_ms - grace_ms);
    for version in dropped {
        // A manifest can still be live elsewhere in the stacks (an identical
        // version); then it is not retired.
        if !live_manifests(state).any(|m| m == version.manifest) {
            state.retired.push(Retired {
                manifest: version.manifest,
                at_ms: now_ms,
            });
        }
    }
}

/// Manifests the stacks and head reference.
pub fn live_manifests(state: &TableState) -> impl Iterator<Item = &str> {
    std::iter::once(&state.head)
        .chain(&state.undo)
        .chain(&state.redo)
        .map(|v| v.manifest.as_str())
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::model::FORMAT_VERSION;

    fn version(n: u64) -> VersionRef {
        VersionRef {
            version: n,
            manifest: format!("m{n}"),
            rows: n,
            cols: 1,
            action: "op".into(),
            summary: format!("op {n}"),
            at_ms: 0,
            actor: None,
        }
    }

    fn fresh() -> TableState {
        TableState {
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
        }
    }

    fn heads(state: &TableState) -> (Vec<u64>, u64, Vec<u64>) {
        (
            state.undo.iter().map(|v| v.version).collect(),
            state.head.version,
            state.redo.iter().map(|v| v.version).collect(),
        )
    }

    #[test]
    fn undo_redo_walk_the_stacks() {
        let mut s = fresh();
        for n in 2..=4 {
            s = commit(&s, version(n), None, 50, 0, 0);
        }
        assert_eq!(heads(&s), (vec![1, 2, 3], 4, vec![]));
        s = undo(&s, 1, 50, 0, 0).unwrap().0;
        s = undo(&s, 1, 50, 0, 0).unwrap().0;
        assert_eq!(heads(&s), (vec![1], 2, vec![4, 3]));
        s = redo(&s, 1, 50, 0, 0).unwrap().0;
        assert_eq!(heads(&s), (vec![1, 2], 3, vec![4]));
    }

    #[test]
    fn commit_after_undo_clears_redo_and_retires_it() {
        let mut s = fresh();
        s = commit(&s, version(100), None, 50, 0, 0);
        s = undo(&s, 1, 50, 0, 0).unwrap().0;
        s = commit(&s, version(200), Some("op-x"), 50, 10, 100);
        assert_eq!(heads(&s), (vec![1], 3, vec![]));
        assert_eq!(s.retired.len(), 1);
        assert_eq!(s.retired[0].manifest, "m100");
        assert!(redo(&s, 1, 50, 0, 0).is_none());
        assert_eq!(s.recent_ops, ["op-x"]);
    }

    #[test]
    fn history_is_capped() {
        let mut s = fresh();
        for n in 2..=10 {
            s = commit(&s, version(n), None, 3, 0, 1000);
        }
        assert_eq!(heads(&s).0.len(), 3);
        assert_eq!(s.retired.len(), 6);
        let (after, moved) = undo(&s, 10, 3, 0, 0).unwrap();
        assert_eq!(moved.len(), 3, "only the kept steps can be undone");
        assert!(undo(&after, 1, 3, 0, 0).is_none());
    }

    #[test]
    fn multi_step_moves_are_one_transition() {
        let mut s = fresh();
        for n in 2..=5 {
            s = commit(&s, version(n), None, 50, 0, 0);
        }
        let (back, moved) = undo(&s, 3, 50, 0, 0).unwrap();
        assert_eq!(heads(&back), (vec![1], 2, vec![5, 4, 3]));
        assert_eq!(
            moved.iter().map(|v| v.version).collect::<Vec<_>>(),
            [5, 4, 3]
        );
        let (forth, moved) = redo(&back, 5, 50, 0, 0).unwrap();
        assert_eq!(heads(&forth), (vec![1, 2, 3, 4], 5, vec![]));
        assert_eq!(
            moved.iter().map(|v| v.version).collect::<Vec<_>>(),
            [3, 4, 5]
        );
    }

    /// Regression: retirements were detected by comparing list lengths, which
    /// missed a transition that pruned one old entry and added one.
    #[test]
    fn newly_retired_sees_a_prune_plus_an_add() {
        let mut s = fresh();
        s = commit(&s, version(100), None, 0, 0, 100);
        let before = s.clone();
        s = commit(&s, version(200), None, 0, 500, 100);
        assert_eq!(before.retired.len(), s.retired.len());
        assert_eq!(newly_retired(&before, &s), ["m100"]);
    }

    #[test]
    fn retired_entries_expire_after_grace() {
        let mut s = fresh();
        s = commit(&s, version(100), None, 0, 0, 100);
        assert_eq!(s.retired.len(), 1);
        s = commit(&s, version(200), None, 0, 500, 100);
        assert_eq!(
            s.retired.len(),
            1,
            "the first retirement is older than the grace"
        );
        assert_eq!(s.retired[0].at_ms, 500);
    }

    #[test]
    fn a_manifest_still_in_use_is_not_retired() {
        let mut s = fresh();
        s = commit(&s, version(100), None, 50, 0, 100);
        s = undo(&s, 1, 50, 0, 100).unwrap().0;
        // The same content committed again: the discarded redo entry shares
        // the new head's manifest.
        s = commit(&s, version(100), None, 50, 0, 100);
        assert!(s.retired.is_empty());
    }
}
