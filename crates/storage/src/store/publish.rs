//! The compare-and-set protocol every head move goes through: commit, undo,
//! redo, rename and drop build a [`CasRequest`] from the state they read and
//! publish it here.
//!
//! A publish whose reply is lost (the backend became unavailable after
//! receiving it) has an unknown outcome; before trying again the state is
//! read back, and the operation id recorded in it (or, for a drop, the
//! table's absence) tells whether the first attempt landed. So a retry never
//! applies an operation twice.

use std::time::Duration;

use super::Store;
use crate::backend::{CasOutcome, CasRequest, TableRecord};
use crate::error::{Result, StoreError};
use crate::versioning;

/// Where to look, after an unknown outcome, for whether a publish landed.
pub(crate) enum Landed<'a> {
    /// The table `name` remembers `op_id`.
    OpRecorded { name: &'a str, op_id: &'a str },
    /// The table `name` is gone.
    Gone { name: &'a str },
}

pub(crate) enum Published {
    Applied,
    /// An earlier attempt of this very operation had landed; `record` is the
    /// table as it is now (absent after a drop).
    AlreadyLanded {
        record: Option<TableRecord>,
    },
    /// Nothing was written: `name` is at `current` (`None`: absent).
    Conflict {
        name: String,
        current: Option<u64>,
    },
}

const UNKNOWN_OUTCOME_ATTEMPTS: u32 = 3;

impl Store {
    pub(crate) async fn publish(
        &self,
        session: &str,
        request: &CasRequest,
        landed: Landed<'_>,
    ) -> Result<Published> {
        let mut unknown: Option<StoreError> = None;
        for attempt in 0..UNKNOWN_OUTCOME_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            if unknown.is_some() {
                match self.landed(session, &landed).await {
                    Ok(Some(record)) => return Ok(Published::AlreadyLanded { record }),
                    Ok(None) => {}
                    Err(e @ StoreError::Unavailable { .. }) => {
                        unknown = Some(e);
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            match self.backend.cas_tables(session, request, self.now()).await {
                Ok(CasOutcome::Applied) => return Ok(Published::Applied),
                Ok(CasOutcome::SessionGone) => {
                    return Err(StoreError::SessionNotFound { id: session.into() });
                }
                Ok(CasOutcome::Conflict { name, current }) => {
                    // Our own earlier attempt may be what moved it.
                    if let Some(record) = self.landed(session, &landed).await? {
                        return Ok(Published::AlreadyLanded { record });
                    }
                    return Ok(Published::Conflict { name, current });
                }
                Err(e @ StoreError::Unavailable { .. }) => unknown = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(unknown.unwrap_or_else(|| StoreError::Internal("publish retries exhausted".into())))
    }

    /// `Some(table as it is now)` when the operation is found to have landed.
    async fn landed(
        &self,
        session: &str,
        landed: &Landed<'_>,
    ) -> Result<Option<Option<TableRecord>>> {
        let name = match landed {
            Landed::OpRecorded { name, .. } | Landed::Gone { name } => *name,
        };
        let Some((_, record)) = self.backend.open(session, Some(name), self.now()).await? else {
            return Err(StoreError::SessionNotFound { id: session.into() });
        };
        Ok(match (landed, record) {
            (Landed::Gone { .. }, None) => Some(None),
            (Landed::OpRecorded { op_id, .. }, Some(record)) => {
                let state = super::parse_state(&record)?;
                versioning::knows(&state, op_id).then_some(Some(record))
            }
            _ => None,
        })
    }
}
