//! Files made for download (a table exported over HTTP), kept in the
//! session's store so that any process can serve them, and gone with the
//! session. Stored as parts under the backend's request limit plus a small
//! index; garbage collection leaves them alone (their ids start with `x`).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::Store;
use super::snapshot::batches;
use crate::backend::Blob;
use crate::error::{Result, StoreError};
use crate::ids::new_uid;

/// The prefix of export blob ids, which collection skips.
pub(crate) const EXPORT_PREFIX: char = 'x';

#[derive(Serialize, Deserialize)]
struct ExportIndex {
    name: String,
    size: u64,
    /// Part ids with their sizes.
    parts: Vec<(String, u64)>,
}

impl Store {
    /// Keeps `bytes` as a downloadable file named `name`; returns its id.
    pub async fn put_export(&self, session: &str, name: &str, bytes: Vec<u8>) -> Result<String> {
        let id = format!("{EXPORT_PREFIX}{}", new_uid());
        let part_size = self.payload_limit().unwrap_or(8 << 20).clamp(1, 8 << 20) as usize;
        let bytes = Bytes::from(bytes);
        let mut parts = Vec::new();
        let mut blobs = Vec::new();
        for (i, start) in (0..bytes.len()).step_by(part_size).enumerate() {
            let part = bytes.slice(start..(start + part_size).min(bytes.len()));
            let part_id = format!("{id}.{i}");
            let size = part.len() as u64;
            parts.push((part_id.clone(), size));
            blobs.push(((part_id, Blob::Bytes(part)), size));
        }
        let now = self.now();
        for batch in batches(blobs, self.payload_limit(), 1000) {
            self.backend.put_blobs(session, batch, now).await?;
        }
        let index = ExportIndex {
            name: name.to_string(),
            size: bytes.len() as u64,
            parts,
        };
        let index = serde_json::to_vec(&index)
            .map_err(|e| StoreError::Internal(format!("export index encoding failed: {e}")))?;
        self.backend
            .put_blobs(
                session,
                vec![(id.clone(), Blob::Bytes(Bytes::from(index)))],
                now,
            )
            .await?;
        Ok(id)
    }

    /// A file kept with [`Store::put_export`]: its name and bytes, or `None`
    /// when the session has no such export.
    pub async fn get_export(&self, session: &str, id: &str) -> Result<Option<(String, Vec<u8>)>> {
        if !id.starts_with(EXPORT_PREFIX) || id.contains('.') {
            return Ok(None);
        }
        let now = self.now();
        let Some(Some(Blob::Bytes(index))) = self
            .backend
            .get_blobs(session, &[id.to_string()], now)
            .await?
            .pop()
        else {
            return Ok(None);
        };
        let index: ExportIndex = serde_json::from_slice(&index)
            .map_err(|e| StoreError::Corrupt(format!("export {id} is unreadable: {e}")))?;
        let mut out = Vec::with_capacity(index.size as usize);
        let blobs = self.get_blobs_checked(session, index.parts).await?;
        for blob in blobs {
            match blob {
                Blob::Bytes(b) => out.extend_from_slice(&b),
                Blob::Frame(_) => {
                    return Err(StoreError::Corrupt(format!("export {id} holds a frame")));
                }
            }
        }
        Ok(Some((index.name, out)))
    }
}
