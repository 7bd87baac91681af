//! Garbage collection: deleting blobs no retained version references, and
//! the periodic maintenance that purges expired sessions and collects the
//! sessions whose retired data has passed its grace period.

use std::collections::HashSet;

use super::Store;
use super::types::{GcReport, Maintenance};
use crate::error::{Result, StoreError};
use crate::versioning;

impl Store {
    /// Marks a session for collection once the grace period has passed.
    pub(crate) fn schedule_gc(&self, session: &str) {
        let at = self.now() + self.grace_ms() + 1;
        let mut map = self.gc_due.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(session.to_string())
            .and_modify(|t| *t = (*t).max(at))
            .or_insert(at);
    }

    /// Housekeeping to run now and then: purges expired sessions and collects
    /// garbage in sessions whose retired data has passed its grace period. A
    /// session whose collection fails is tried again at the next pass; the
    /// others still run.
    pub async fn maintain(&self) -> Result<Maintenance> {
        let purged = self.purge_expired().await?;
        let now = self.now();
        let due: Vec<String> = {
            let mut map = self.gc_due.lock().unwrap_or_else(|p| p.into_inner());
            let due: Vec<String> = map
                .iter()
                .filter(|(_, at)| **at <= now)
                .map(|(s, _)| s.clone())
                .collect();
            for s in &due {
                map.remove(s);
            }
            due
        };
        let mut report = Maintenance {
            purged,
            ..Maintenance::default()
        };
        for session in due {
            match self.gc(&session).await {
                Ok(gc) => {
                    report.gc.deleted += gc.deleted;
                    report.gc.bytes_freed += gc.bytes_freed;
                    report.gc.kept += gc.kept;
                }
                Err(StoreError::SessionNotFound { .. }) => {}
                Err(e) => {
                    self.schedule_gc(&session);
                    report.failed.push((session, e.to_string()));
                }
            }
        }
        Ok(report)
    }

    /// Deletes the session's blobs that no retained version references and
    /// that nobody touched for one grace period.
    pub async fn gc(&self, session: &str) -> Result<GcReport> {
        let now = self.now();
        let cutoff = now - self.grace_ms();
        let records = self
            .backend
            .list_tables(session, now)
            .await?
            .ok_or_else(|| StoreError::SessionNotFound { id: session.into() })?;
        let mut manifests: HashSet<String> = HashSet::new();
        for record in records {
            let state = super::parse_state(&record)?;
            manifests.extend(versioning::live_manifests(&state).map(str::to_string));
            manifests.extend(
                state
                    .retired
                    .iter()
                    .filter(|r| r.at_ms >= cutoff)
                    .map(|r| r.manifest.clone()),
            );
        }
        let mut referenced: HashSet<String> = HashSet::new();
        for id in &manifests {
            match self.manifest(session, id).await {
                Ok(m) => referenced.extend(m.blob_ids().map(str::to_string)),
                // A manifest written but never published is simply garbage.
                Err(StoreError::Corrupt(_)) => {}
                Err(e) => return Err(e),
            }
        }
        referenced.extend(manifests);
        let blobs = self.backend.list_blobs(session, now).await?;
        // Exports are not part of any version: they live as long as the
        // session.
        let candidates: Vec<String> = blobs
            .iter()
            .filter(|b| !b.id.starts_with(super::exports::EXPORT_PREFIX))
            .filter(|b| !referenced.contains(&b.id) && b.touched_ms < cutoff)
            .map(|b| b.id.clone())
            .collect();
        let bytes_freed = if candidates.is_empty() {
            0
        } else {
            self.backend
                .delete_blobs(session, &candidates, cutoff)
                .await?
        };
        Ok(GcReport {
            deleted: candidates.len(),
            bytes_freed,
            kept: blobs.len() - candidates.len(),
        })
    }
}
