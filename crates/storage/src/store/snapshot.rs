//! Snapshot I/O: planning which column parts a new version can reuse,
//! encoding and writing the rest with its manifest, and reading versions back
//! into frames. Every request stays under the backend's request limit.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use polars::prelude::*;
use polars::series::BitRepr;
use rayon::prelude::*;

use super::Store;
use crate::backend::Blob;
use crate::cache::{CachedTable, chunk_addresses};
use crate::codec::{Codec, concat_parts, decode_part};
use crate::error::{Result, StoreError};
use crate::ids::{content_id, new_uid};
use crate::model::{ColumnEntry, FORMAT_VERSION, Manifest, PATCHED_MANIFEST_FORMAT, PartRef};

use super::types::Edit;

/// Room left in a request for everything but the payload (keys, ids, script).
pub(crate) const REQUEST_OVERHEAD: u64 = 64 << 10;

/// At most this many blobs per request, however small (Lua's unpack() and
/// argument lists have limits of their own).
const MAX_BLOBS_PER_REQUEST: usize = 1000;

#[derive(Default)]
pub(crate) struct WriteStats {
    pub written: usize,
    pub reused: usize,
    pub bytes_written: u64,
    pub parts: Vec<Vec<PartRef>>,
}

/// A newly encoded part and its bytes.
struct PlannedPart {
    part: PartRef,
    blob: Blob,
}

struct PlannedColumn {
    name: String,
    dtype: String,
    /// The column's parts: those of the base version it is identical to,
    /// or, once encoded and written, its new ones; `None` until then.
    parts: Option<Vec<PartRef>>,
    /// The base column of the same name and type that a changed column may
    /// be stored as a patch of: its index in the base frame and its parts.
    patch_base: Option<(usize, Vec<PartRef>)>,
}

/// A column that differs from the base column of its name in at most one
/// row in this many is stored as a patch of it: encoding the changed cells
/// costs a fraction of encoding the column.
const PATCH_MAX_SHARE: usize = 4;

/// Patches stacked on one column before it is stored whole again, so that
/// reading a column changed many times stays near one decode.
const MAX_LAYERS: u32 = 4;

/// Most bytes of frame encoded at once by a commit: the encoded parts are
/// held until written, so this bounds the extra memory of a commit.
const ENCODE_GROUP_BYTES: u64 = 256 << 20;

/// Most stored bytes fetched at once when a version is read back.
const DECODE_GROUP_BYTES: u64 = 64 << 20;

/// Splits `items` (each with its size) into batches of at most `max_bytes`
/// (when bounded) and `max_count` items; an item larger than `max_bytes` goes
/// alone.
pub(crate) fn batches<T>(
    items: impl IntoIterator<Item = (T, u64)>,
    max_bytes: Option<u64>,
    max_count: usize,
) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut current: Vec<T> = Vec::new();
    let mut bytes = 0u64;
    for (item, size) in items {
        let over_bytes = max_bytes.is_some_and(|max| bytes + size > max);
        if !current.is_empty() && (over_bytes || current.len() >= max_count) {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(item);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

impl Store {
    /// The payload bound of one request, if the backend has one.
    pub(crate) fn payload_limit(&self) -> Option<u64> {
        self.backend
            .capabilities()
            .max_request_bytes
            .map(|max| max.saturating_sub(REQUEST_OVERHEAD).max(1))
    }

    /// Stores the blobs of a new version (only those not stored yet) and its
    /// manifest; returns the manifest id.
    pub(crate) async fn write_version(
        &self,
        session: &str,
        name: &str,
        edit: &Edit,
        base_manifest: Option<&str>,
        now: i64,
    ) -> Result<(String, WriteStats)> {
        let size = dfmcp_memory::frame_bytes(&edit.df) as u64;
        if size > self.config.max_table_bytes {
            return Err(StoreError::TooLarge {
                name: name.into(),
                size,
                limit: self.config.max_table_bytes,
            });
        }
        let base = base_manifest.and_then(|m| self.frames.get(session, m));
        let native = self.backend.capabilities().native_frames;
        let codec = self.codec;
        let df = edit.df.clone();
        let plan_base = base.clone();
        let mut plan = self
            .compute
            .run(session, move |_| {
                Ok::<_, StoreError>(plan_columns(&df, plan_base.as_deref(), native))
            })
            .await??;

        // Which reused parts does the backend still hold? Touching them also
        // keeps them from being collected before our head is published. A
        // column with a vanished part (collected while the base stayed
        // cached) cannot be referenced: it is encoded afresh below.
        let reused_ids: Vec<String> = plan
            .iter()
            .flat_map(|c| {
                let patched = c.patch_base.iter().flat_map(|(_, parts)| parts);
                c.parts.iter().flatten().chain(patched)
            })
            .map(|p| p.id.clone())
            .collect();
        let present = self.backend.touch_blobs(session, &reused_ids, now).await?;
        let missing: HashSet<&String> = reused_ids
            .iter()
            .zip(&present)
            .filter(|(_, present)| !**present)
            .map(|(id, _)| id)
            .collect();
        let mut stats = WriteStats::default();
        let vanished = |parts: &[PartRef]| parts.iter().any(|p| missing.contains(&p.id));
        for column in &mut plan {
            if column.parts.as_deref().is_some_and(vanished) {
                column.parts = None;
            }
            if column
                .patch_base
                .as_ref()
                .is_some_and(|(_, parts)| vanished(parts))
            {
                column.patch_base = None;
            }
        }
        stats.reused = plan.iter().flat_map(|c| c.parts.iter().flatten()).count();

        // New columns are encoded and written a group at a time, so the
        // encoded bytes in memory stay near one group's, not the table's.
        let fresh: Vec<usize> = (0..plan.len())
            .filter(|&i| plan[i].parts.is_none())
            .collect();
        let mut seen: HashSet<String> = HashSet::new();
        // The last group's parts go out with the manifest, in one request;
        // each earlier one before the next group is encoded.
        let mut pending: Vec<(String, Blob)> = Vec::new();
        for group in encode_groups(&edit.df, &fresh, ENCODE_GROUP_BYTES) {
            let earlier = std::mem::take(&mut pending);
            self.put_all(session, earlier, &mut stats, now).await?;
            let df = edit.df.clone();
            let targets: Vec<(usize, Option<PatchBase>)> = group
                .iter()
                .map(|&i| {
                    let patch = plan[i].patch_base.as_ref().and_then(|(at, parts)| {
                        let old = base.as_ref()?.df.columns().get(*at)?.clone();
                        Some((old, parts.clone()))
                    });
                    (i, patch)
                })
                .collect();
            let encoded = self
                .compute
                .run(session, move |_| {
                    targets
                        .into_par_iter()
                        .map(|(i, patch)| {
                            store_column(
                                df.columns()[i].as_materialized_series(),
                                patch,
                                native,
                                &codec,
                            )
                        })
                        .collect::<Result<Vec<_>>>()
                })
                .await??;
            let new_ids: Vec<String> = encoded
                .iter()
                .flat_map(|stored| &stored.fresh)
                .map(|p| p.part.id.clone())
                .collect();
            // Parts the backend already holds (the same values stored
            // before) are touched, not written again.
            let held: HashSet<String> = new_ids
                .iter()
                .zip(self.backend.touch_blobs(session, &new_ids, now).await?)
                .filter(|(_, present)| *present)
                .map(|(id, _)| id.clone())
                .collect();
            let mut to_put: Vec<(String, Blob)> = Vec::new();
            for (i, stored) in group.into_iter().zip(encoded) {
                stats.reused += stored.kept.len();
                let mut refs = stored.kept;
                for planned in stored.fresh {
                    if !held.contains(&planned.part.id) && seen.insert(planned.part.id.clone()) {
                        to_put.push((planned.part.id.clone(), planned.blob));
                    } else {
                        stats.reused += 1;
                    }
                    refs.push(planned.part);
                }
                plan[i].parts = Some(refs);
            }
            stats.written += to_put.len();
            pending = to_put;
        }

        let mut entries = Vec::with_capacity(plan.len());
        for column in plan {
            let parts = column.parts.unwrap_or_default();
            stats.parts.push(parts.clone());
            entries.push(ColumnEntry {
                name: column.name,
                dtype: column.dtype,
                parts,
            });
        }
        let patched = entries.iter().any(|c| c.parts.iter().any(|p| p.layer > 0));
        let manifest = Manifest {
            format: if patched {
                PATCHED_MANIFEST_FORMAT
            } else {
                FORMAT_VERSION
            },
            rows: edit.df.height() as u64,
            columns: entries,
            meta: edit.meta.clone(),
        };
        let manifest_bytes = serde_json::to_vec(&manifest)
            .map_err(|e| StoreError::Internal(format!("manifest encoding failed: {e}")))?;
        if let Some(limit) = self.payload_limit()
            && manifest_bytes.len() as u64 > limit
        {
            return Err(StoreError::TooWide {
                name: name.into(),
                size: manifest_bytes.len() as u64,
                limit,
            });
        }
        let manifest_id = content_id('m', &manifest_bytes);
        // A change that changed nothing has the base's manifest, stored.
        if base_manifest != Some(manifest_id.as_str()) {
            pending.push((
                manifest_id.clone(),
                Blob::Bytes(Bytes::from(manifest_bytes)),
            ));
        }
        self.put_all(session, pending, &mut stats, now).await?;
        self.manifests
            .insert(session, &manifest_id, Arc::new(manifest));
        Ok((manifest_id, stats))
    }

    /// Writes blobs in requests under the backend's limit.
    async fn put_all(
        &self,
        session: &str,
        blobs: Vec<(String, Blob)>,
        stats: &mut WriteStats,
        now: i64,
    ) -> Result<()> {
        let sized = blobs.into_iter().map(|(id, blob)| {
            let size = blob.size();
            ((id, blob), size)
        });
        for batch in batches(sized, self.payload_limit(), MAX_BLOBS_PER_REQUEST) {
            stats.bytes_written += batch.iter().map(|(_, b)| b.size()).sum::<u64>();
            self.backend.put_blobs(session, batch, now).await?;
        }
        Ok(())
    }

    /// Loads a specific manifest of a session (from cache or backend).
    pub(crate) async fn materialize(
        &self,
        session: &str,
        manifest_id: &str,
    ) -> Result<Arc<CachedTable>> {
        if let Some(hit) = self.frames.get(session, manifest_id) {
            return Ok(hit);
        }
        let manifest = self.manifest(session, manifest_id).await?;
        // Columns are fetched and decoded a group at a time: the stored bytes
        // in memory stay near one group's beside the growing frame.
        let groups = batches(
            manifest.columns.iter().enumerate().map(|(i, c)| {
                let stored: u64 = c.parts.iter().map(|p| p.bytes).sum();
                (i, stored)
            }),
            Some(DECODE_GROUP_BYTES),
            usize::MAX,
        );
        let mut columns = Vec::with_capacity(manifest.columns.len());
        for group in groups {
            let parts: Vec<(String, u64)> = group
                .iter()
                .flat_map(|&i| &manifest.columns[i].parts)
                .map(|p| (p.id.clone(), p.bytes))
                .collect();
            let blobs = self.get_blobs_checked(session, parts).await?;
            let decode_manifest = manifest.clone();
            let decoded = self
                .compute
                .run(session, move |cancel| {
                    if cancel.is_cancelled() {
                        return Err(StoreError::Cancelled);
                    }
                    let entries: Vec<&ColumnEntry> =
                        group.iter().map(|&i| &decode_manifest.columns[i]).collect();
                    decode_columns(&entries, blobs)
                })
                .await??;
            columns.extend(decoded);
        }
        let df = DataFrame::new(manifest.rows as usize, columns)?;
        let cached = Arc::new(CachedTable::new(
            df,
            manifest.meta.clone(),
            manifest.columns.iter().map(|c| c.parts.clone()).collect(),
        ));
        self.frames.insert(session, manifest_id, cached.clone());
        Ok(cached)
    }

    pub(crate) async fn manifest(&self, session: &str, id: &str) -> Result<Arc<Manifest>> {
        if let Some(hit) = self.manifests.get(session, id) {
            return Ok(hit);
        }
        let blob = self
            .backend
            .get_blobs(session, &[id.to_string()], self.now())
            .await?
            .pop()
            .flatten()
            .ok_or_else(|| StoreError::Corrupt(format!("manifest {id} is missing")))?;
        let Blob::Bytes(bytes) = blob else {
            return Err(StoreError::Corrupt(format!(
                "manifest {id} is not a document"
            )));
        };
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::Corrupt(format!("manifest {id} is unreadable: {e}")))?;
        if manifest.format > PATCHED_MANIFEST_FORMAT {
            return Err(StoreError::IncompatibleFormat {
                location: format!("manifest {id}"),
                found: manifest.format,
                supported: PATCHED_MANIFEST_FORMAT,
            });
        }
        let manifest = Arc::new(manifest);
        self.manifests.insert(session, id, manifest.clone());
        Ok(manifest)
    }

    /// Reads blobs whose sizes are known, in requests under the backend's
    /// limit; a missing one is damage.
    pub(crate) async fn get_blobs_checked(
        &self,
        session: &str,
        ids: Vec<(String, u64)>,
    ) -> Result<Vec<Blob>> {
        let mut out = Vec::with_capacity(ids.len());
        for batch in batches(ids, self.payload_limit(), MAX_BLOBS_PER_REQUEST) {
            let blobs = self.backend.get_blobs(session, &batch, self.now()).await?;
            for (blob, id) in blobs.into_iter().zip(&batch) {
                out.push(blob.ok_or_else(|| StoreError::Corrupt(format!("part {id} is missing")))?);
            }
        }
        Ok(out)
    }

    /// Copies blobs (of known sizes) from one session to another, in
    /// requests under the backend's limit. Returns (blobs, bytes) written.
    pub(crate) async fn copy_blobs(
        &self,
        from: &str,
        to: &str,
        ids: Vec<(String, u64)>,
        now: i64,
    ) -> Result<(usize, u64)> {
        let mut written = 0;
        let mut bytes = 0;
        for batch in batches(ids, self.payload_limit(), MAX_BLOBS_PER_REQUEST) {
            let sized: Vec<(String, u64)> = batch.iter().map(|id| (id.clone(), 0)).collect();
            let blobs = self.get_blobs_checked(from, sized).await?;
            written += blobs.len();
            bytes += blobs.iter().map(Blob::size).sum::<u64>();
            self.backend
                .put_blobs(to, batch.into_iter().zip(blobs).collect(), now)
                .await?;
        }
        Ok((written, bytes))
    }
}

/// Groups columns to encode so that a group holds at most `max` bytes of the
/// frame (a wider column goes alone).
fn encode_groups(df: &DataFrame, columns: &[usize], max: u64) -> Vec<Vec<usize>> {
    batches(
        columns.iter().map(|&i| {
            let size = df.columns()[i].as_materialized_series().estimated_size() as u64;
            (i, size)
        }),
        Some(max),
        usize::MAX,
    )
}

/// Decides, per column, which stored parts of the base version it can reuse
/// (`parts: None` means it must be encoded).
fn plan_columns(df: &DataFrame, base: Option<&CachedTable>, native: bool) -> Vec<PlannedColumn> {
    let index = base.map(IdentityIndex::new);
    df.columns()
        .iter()
        .map(|column| {
            let parts = match (&index, base) {
                (Some(index), Some(base)) => index.find(base, column).map(<[PartRef]>::to_vec),
                _ => None,
            };
            // Frames kept as they are cost nothing to store whole.
            let patch_base = match (&parts, base) {
                (None, Some(base)) if !native => patch_base(base, column),
                _ => None,
            };
            PlannedColumn {
                name: column.name().to_string(),
                dtype: column.dtype().to_string(),
                parts,
                patch_base,
            }
        })
        .collect()
}

/// The base column `column` may be stored as a patch of: the one of the same
/// name, type and length, with room for another layer.
fn patch_base(base: &CachedTable, column: &Column) -> Option<(usize, Vec<PartRef>)> {
    let at = base.df.get_column_index(column.name())?;
    let old = &base.df.columns()[at];
    let parts = base.parts.get(at)?;
    let fits = old.dtype() == column.dtype()
        && old.len() == column.len()
        && !column.is_empty()
        && top_layer(parts) < MAX_LAYERS
        && patchable(column.dtype());
    fits.then(|| (at, parts.clone()))
}

/// The highest layer of a column's parts (0 when it has no patch).
fn top_layer(parts: &[PartRef]) -> u32 {
    parts.iter().map(|p| p.layer).max().unwrap_or(0)
}

/// Types whose cells compare exactly (bit for bit), so that a patch restores
/// every value as it was given: -0.0 stays -0.0, a NaN keeps its payload.
fn patchable(dtype: &DataType) -> bool {
    dtype.is_primitive_numeric()
        || matches!(
            dtype,
            DataType::Boolean
                | DataType::String
                | DataType::Date
                | DataType::Datetime(_, _)
                | DataType::Duration(_)
                | DataType::Time
        )
}

/// What a changed column is stored as.
struct Stored {
    /// Parts of the base column it keeps (a patch stacks on them).
    kept: Vec<PartRef>,
    /// New parts, to be written.
    fresh: Vec<PlannedPart>,
}

/// How `new` differs from `old` (same type and length).
enum Difference {
    /// Not a cell: the old parts hold it already.
    None,
    /// A few cells: the patch holds their new values, null elsewhere.
    Cells(Series),
    /// Too many cells, or a value became missing (which a patch, whose nulls
    /// mean "unchanged", cannot say).
    Whole,
}

fn difference(old: &Column, new: &Series) -> Result<Difference> {
    let same = match new.dtype() {
        DataType::Boolean | DataType::String => old.as_materialized_series().equal_missing(new)?,
        _ => match (old.bit_repr(), new.clone().into_column().bit_repr()) {
            (Some(BitRepr::U8(a)), Some(BitRepr::U8(b))) => a.equal_missing(&b),
            (Some(BitRepr::U16(a)), Some(BitRepr::U16(b))) => a.equal_missing(&b),
            (Some(BitRepr::U32(a)), Some(BitRepr::U32(b))) => a.equal_missing(&b),
            (Some(BitRepr::U64(a)), Some(BitRepr::U64(b))) => a.equal_missing(&b),
            _ => return Ok(Difference::Whole),
        },
    };
    let changed = !same;
    let count = changed.sum().unwrap_or(0) as usize;
    if count == 0 {
        return Ok(Difference::None);
    }
    if count > new.len() / PATCH_MAX_SHARE || (&changed & &new.is_null()).any() {
        return Ok(Difference::Whole);
    }
    Ok(Difference::Cells(only_where(new, &changed)?))
}

/// `values` with every cell outside `mask` made null. The arrays keep their
/// buffers and get a new validity: no copy of the values, where a zip with a
/// column of nulls copied them, and slowly when chunks did not line up.
fn only_where(values: &Series, mask: &BooleanChunked) -> Result<Series> {
    let lengths = |chunks: &[ArrayRef]| chunks.iter().map(|c| c.len()).collect::<Vec<_>>();
    let (values, mask) = if lengths(values.chunks()) == lengths(mask.chunks()) {
        (values.clone(), mask.clone())
    } else {
        (values.rechunk(), mask.rechunk().into_owned())
    };
    let physical = values.to_physical_repr();
    let chunks: Vec<ArrayRef> = physical
        .chunks()
        .iter()
        .zip(mask.downcast_iter())
        .map(|(array, keep)| {
            let keep = match keep.validity() {
                Some(valid) => keep.values() & valid,
                None => keep.values().clone(),
            };
            let validity = match array.validity() {
                Some(valid) => valid & &keep,
                None => keep,
            };
            array.with_validity(Some(validity))
        })
        .collect();
    let patch = Series::try_from((values.name().clone(), chunks))?;
    Ok(patch.cast(values.dtype())?)
}

/// A base column a changed column may be stored as a patch of, and its parts.
type PatchBase = (Column, Vec<PartRef>);

fn store_column(
    series: &Series,
    patch_of: Option<PatchBase>,
    native: bool,
    codec: &Codec,
) -> Result<Stored> {
    if native {
        let blob = Blob::Frame(series.clone());
        return Ok(Stored {
            kept: Vec::new(),
            fresh: vec![PlannedPart {
                part: PartRef {
                    id: format!("f{}", new_uid()),
                    rows: series.len() as u64,
                    bytes: blob.size(),
                    layer: 0,
                },
                blob,
            }],
        });
    }
    let (kept, values, layer) = match patch_of {
        Some((old, parts)) => match difference(&old, series)? {
            Difference::None => {
                return Ok(Stored {
                    kept: parts,
                    fresh: Vec::new(),
                });
            }
            Difference::Cells(patch) => {
                let layer = top_layer(&parts) + 1;
                (parts, patch, layer)
            }
            Difference::Whole => (Vec::new(), series.clone(), 0),
        },
        None => (Vec::new(), series.clone(), 0),
    };
    let fresh = codec
        .encode_column(&values)?
        .into_iter()
        .map(|p| PlannedPart {
            part: PartRef {
                id: p.id,
                rows: p.rows,
                bytes: p.bytes.len() as u64,
                layer,
            },
            blob: Blob::Bytes(p.bytes),
        })
        .collect();
    Ok(Stored { kept, fresh })
}

/// The base version's columns by their first chunk's address, so finding
/// an untouched column is a lookup, not a scan of every base column (which
/// made whole-table edits of wide tables quadratic).
struct IdentityIndex {
    by_first_chunk: HashMap<usize, Vec<usize>>,
}

impl IdentityIndex {
    fn new(base: &CachedTable) -> Self {
        let mut by_first_chunk: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, column) in base.df.columns().iter().enumerate() {
            if let Some(first) = chunk_addresses(column).first() {
                by_first_chunk.entry(*first).or_default().push(i);
            }
        }
        IdentityIndex { by_first_chunk }
    }

    /// The parts of a base column holding the very same data as `column`
    /// (same arrow arrays, not merely equal values), if any.
    fn find<'a>(&self, base: &'a CachedTable, column: &Column) -> Option<&'a [PartRef]> {
        let addresses = chunk_addresses(column);
        let candidates = self.by_first_chunk.get(addresses.first()?)?;
        candidates
            .iter()
            .copied()
            .find(|&i| {
                let other = &base.df.columns()[i];
                other.dtype() == column.dtype()
                    && other.len() == column.len()
                    && chunk_addresses(other) == addresses
            })
            .and_then(|i| base.parts.get(i).map(Vec::as_slice))
    }
}

fn decode_columns(columns: &[&ColumnEntry], blobs: Vec<Blob>) -> Result<Vec<Column>> {
    let mut blobs = blobs.into_iter();
    let mut jobs = Vec::with_capacity(columns.len());
    for column in columns {
        let parts: Vec<Blob> = blobs.by_ref().take(column.parts.len()).collect();
        jobs.push((*column, parts));
    }
    jobs.into_par_iter()
        .map(|(column, parts)| {
            let name = column.name.as_str();
            let series: Vec<Series> = parts
                .into_par_iter()
                .map(|blob| match blob {
                    Blob::Bytes(bytes) => decode_part(&bytes, name),
                    Blob::Frame(s) => Ok(s.with_name(name.into())),
                })
                .collect::<Result<_>>()?;
            Ok(apply_layers(column, series)?.into_column())
        })
        .collect()
}

/// Joins a column's parts, layer by layer, each patch over what is below.
fn apply_layers(column: &ColumnEntry, parts: Vec<Series>) -> Result<Series> {
    let name = column.name.as_str();
    let mut layers: Vec<Vec<Series>> = Vec::new();
    for (part, series) in column.parts.iter().zip(parts) {
        let layer = part.layer as usize;
        if layers.len() <= layer {
            layers.resize_with(layer + 1, Vec::new);
        }
        layers[layer].push(series);
    }
    let mut layers = layers.into_iter();
    let mut values = concat_parts(name, layers.next().unwrap_or_default())?;
    for patch in layers.filter(|l| !l.is_empty()) {
        let patch = concat_parts(name, patch)?;
        if patch.len() != values.len() || patch.dtype() != values.dtype() {
            return Err(StoreError::Corrupt(format!(
                "a patch of column '{name}' does not fit its values ({} {} rows over {} {} rows)",
                patch.dtype(),
                patch.len(),
                values.dtype(),
                values.len()
            )));
        }
        values = patch.zip_with(&patch.is_not_null(), &values)?;
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(sizes: &[u64], max: Option<u64>, count: usize, expected: &[&[u64]]) {
        let got = batches(sizes.iter().map(|&s| (s, s)), max, count);
        let expected: Vec<Vec<u64>> = expected.iter().map(|b| b.to_vec()).collect();
        assert_eq!(got, expected, "sizes {sizes:?} max {max:?} count {count}");
    }

    /// A commit encodes a bounded share of the frame at a time.
    #[test]
    fn columns_are_encoded_in_bounded_groups() {
        let df = df!(
            "a" => vec![1i64; 1000],
            "b" => vec![2i64; 1000],
            "c" => vec!["a much wider value than eight bytes"; 1000],
            "d" => vec![4i64; 1000],
        )
        .unwrap();
        let sizes: Vec<u64> = df
            .columns()
            .iter()
            .map(|c| c.as_materialized_series().estimated_size() as u64)
            .collect();
        let max = sizes[0] + sizes[1];
        assert!(sizes[2] > max, "{sizes:?}");
        assert_eq!(
            encode_groups(&df, &[0, 1, 2, 3], max),
            vec![vec![0, 1], vec![2], vec![3]]
        );
        assert_eq!(encode_groups(&df, &[1, 3], max), vec![vec![1, 3]]);
        assert!(encode_groups(&df, &[], max).is_empty());
    }

    #[test]
    fn batching_stays_under_the_limits() {
        check(&[], Some(10), 5, &[]);
        check(&[3, 3, 3], Some(10), 5, &[&[3, 3, 3]]);
        check(&[4, 4, 4], Some(10), 5, &[&[4, 4], &[4]]);
        check(&[10, 1], Some(10), 5, &[&[10], &[1]]);
        check(&[12, 1], Some(10), 5, &[&[12], &[1]]);
        check(&[1, 1, 1], None, 2, &[&[1, 1], &[1]]);
        check(&[1, 1, 1], None, 100, &[&[1, 1, 1]]);
    }

    /// A patch holds exactly the changed cells, bit for bit, whatever the
    /// chunks of the two versions.
    #[test]
    fn differences_are_exact_cells() {
        let chunked = |values: Vec<Option<f64>>, cut: usize| {
            let mut s = Series::new("x".into(), &values[..cut]);
            s.append(&Series::new("x".into(), &values[cut..])).unwrap();
            s
        };
        let old: Vec<Option<f64>> = (0..40)
            .map(|i| match i % 10 {
                0 => None,
                1 => Some(0.0),
                2 => Some(f64::NAN),
                _ => Some(i as f64),
            })
            .collect();
        let mut new = old.clone();
        new[0] = Some(7.0); // was missing
        new[1] = Some(-0.0); // equal to 0.0, not the same bits
        new[5] = Some(-5.0);
        let (old_s, new_s) = (chunked(old.clone(), 13), chunked(new.clone(), 29));
        let Difference::Cells(patch) = difference(&old_s.into_column(), &new_s).unwrap() else {
            panic!("three changed cells of 40 make a patch");
        };
        let bits = |s: &Series| -> Vec<Option<u64>> {
            s.f64()
                .unwrap()
                .iter()
                .map(|v| v.map(f64::to_bits))
                .collect()
        };
        let mut expected = vec![None; 40];
        for row in [0, 1, 5] {
            expected[row] = new[row].map(f64::to_bits);
        }
        assert_eq!(bits(&patch), expected);
        // Applied over the old values, it gives the new ones back.
        let entry = ColumnEntry {
            name: "x".into(),
            dtype: "f64".into(),
            parts: vec![
                PartRef {
                    id: "a".into(),
                    rows: 40,
                    bytes: 1,
                    layer: 0,
                },
                PartRef {
                    id: "b".into(),
                    rows: 40,
                    bytes: 1,
                    layer: 1,
                },
            ],
        };
        let back = apply_layers(&entry, vec![chunked(old.clone(), 7), patch]).unwrap();
        assert_eq!(bits(&back), bits(&Series::new("x".into(), &new)));

        // Unchanged, too many changes, or a value going missing: no patch.
        let same = chunked(old.clone(), 3);
        assert!(matches!(
            difference(&chunked(old.clone(), 20).into_column(), &same).unwrap(),
            Difference::None
        ));
        let many: Vec<Option<f64>> = old.iter().map(|v| v.map(|x| x + 1.0)).collect();
        assert!(matches!(
            difference(&same.clone().into_column(), &Series::new("x".into(), many)).unwrap(),
            Difference::Whole
        ));
        let mut gone = old.clone();
        gone[4] = None;
        assert!(matches!(
            difference(&same.into_column(), &Series::new("x".into(), gone)).unwrap(),
            Difference::Whole
        ));

        // Text and dates keep their types.
        let text_old = Series::new(
            "t".into(),
            [Some("a"), None, Some("c"), Some("d"), Some("e")],
        );
        let text_new = Series::new(
            "t".into(),
            [Some("a"), Some("b"), Some("c"), Some("d"), Some("e")],
        );
        let Difference::Cells(patch) = difference(&text_old.into_column(), &text_new).unwrap()
        else {
            panic!("one changed text cell of 5 makes a patch");
        };
        assert!(patch.equals_missing(&Series::new(
            "t".into(),
            [None, Some("b"), None, None, None]
        )));
        let day = |v: Vec<Option<i32>>| Series::new("d".into(), v).cast(&DataType::Date).unwrap();
        let Difference::Cells(patch) = difference(
            &day(vec![Some(1), None, Some(3), Some(4), Some(5)]).into_column(),
            &day(vec![Some(1), Some(2), Some(3), Some(4), Some(5)]),
        )
        .unwrap() else {
            panic!("one changed date of 5 makes a patch");
        };
        assert_eq!(patch.dtype(), &DataType::Date);
        assert!(patch.equals_missing(&day(vec![None, Some(2), None, None, None])));
    }

    /// Regression: finding untouched columns compared every column with every
    /// base column (filter_rows on 4 rows × 20,000 columns took 42 s).
    #[test]
    fn identity_matches_only_the_same_arrays() {
        let base_df = df!("a" => [1, 2, 3], "b" => [1, 2, 3], "c" => ["x", "y", "z"]).unwrap();
        let parts = |tag: &str| {
            vec![PartRef {
                id: tag.into(),
                rows: 3,
                bytes: 1,
                layer: 0,
            }]
        };
        let base = CachedTable::new(
            base_df.clone(),
            Default::default(),
            vec![parts("pa"), parts("pb"), parts("pc")],
        );
        let index = IdentityIndex::new(&base);
        // Untouched (the same arrays): found, wherever it sits.
        let same = base_df.column("b").unwrap().clone();
        assert_eq!(index.find(&base, &same).unwrap()[0].id, "pb");
        // Equal values, different arrays: not the same data.
        let equal = Column::new("a".into(), [1, 2, 3]);
        assert!(index.find(&base, &equal).is_none());
    }
}
