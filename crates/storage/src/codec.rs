//! Column data to blobs and back: row parts, Parquet encoding, content ids.

use std::io::Cursor;
use std::str::FromStr;

use bytes::Bytes;
use polars::prelude::*;
use polars_parquet::write::{
    Encoding, FileWriter, Version, WriteOptions, ZstdLevel, get_dtype_encoding, row_group_iter,
    to_parquet_schema,
};
use rayon::prelude::*;

use crate::error::{Result, StoreError};
use crate::ids::content_id;

/// Parquet compression of stored column parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Zstd(i32),
    Lz4,
    Snappy,
    Uncompressed,
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Zstd(1)
    }
}

impl FromStr for Compression {
    type Err = String;

    /// `zstd`, `zstd:<level>`, `lz4`, `snappy` or `uncompressed`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "zstd" => Ok(Compression::Zstd(1)),
            "lz4" => Ok(Compression::Lz4),
            "snappy" => Ok(Compression::Snappy),
            "uncompressed" | "none" => Ok(Compression::Uncompressed),
            other => match other.strip_prefix("zstd:").map(str::parse::<i32>) {
                Some(Ok(level)) if (1..=22).contains(&level) => Ok(Compression::Zstd(level)),
                _ => Err(format!(
                    "unknown compression '{s}': use zstd, zstd:<1-22>, lz4, snappy or uncompressed"
                )),
            },
        }
    }
}

impl Compression {
    fn to_parquet(self) -> ParquetCompression {
        match self {
            Compression::Zstd(level) => ParquetCompression::Zstd(ZstdLevel::try_new(level).ok()),
            Compression::Lz4 => ParquetCompression::Lz4Raw,
            Compression::Snappy => ParquetCompression::Snappy,
            Compression::Uncompressed => ParquetCompression::Uncompressed,
        }
    }
}

/// How column data is cut into parts and encoded.
#[derive(Debug, Clone, Copy)]
pub struct Codec {
    pub compression: Compression,
    /// Aim for parts of about this many bytes in memory.
    pub part_target_bytes: usize,
    /// Never store an encoded part larger than this (hosted Redis caps a
    /// request at 10 MB).
    pub part_max_bytes: usize,
}

impl Default for Codec {
    fn default() -> Self {
        Codec {
            compression: Compression::default(),
            part_target_bytes: 4 << 20,
            part_max_bytes: 8 << 20,
        }
    }
}

/// The name every stored column gets inside its Parquet part, so that a
/// rename changes no stored bytes.
const PART_COLUMN: &str = "c";

/// One encoded row part of a column.
pub struct EncodedPart {
    pub id: String,
    pub rows: u64,
    pub bytes: Bytes,
}

impl Codec {
    /// Rows per part for a column: a power of two, so that part boundaries of
    /// an edited column mostly stay where they were (and unchanged parts dedupe).
    pub fn rows_per_part(&self, column: &Series) -> usize {
        let rows = column.len().max(1);
        let bytes = column.estimated_size().max(1);
        let per_row = bytes.div_ceil(rows).max(1);
        let target = (self.part_target_bytes / per_row).max(1024);
        // Largest power of two not above target.
        1usize << (usize::BITS - 1 - target.leading_zeros())
    }

    /// Splits a column into row ranges of `rows_per_part` (an empty column is
    /// one empty part, so its dtype survives).
    pub fn ranges(&self, column: &Series) -> Vec<(usize, usize)> {
        let len = column.len();
        if len == 0 {
            return vec![(0, 0)];
        }
        let step = self.rows_per_part(column);
        (0..len)
            .step_by(step)
            .map(|start| (start, step.min(len - start)))
            .collect()
    }

    /// Encodes a column into parts (in parallel), each addressed by its hash.
    pub fn encode_column(&self, column: &Series) -> Result<Vec<EncodedPart>> {
        let ranges = self.ranges(column);
        let encoded: Vec<Vec<EncodedPart>> = ranges
            .into_par_iter()
            .map(|(offset, len)| self.encode_range(column, offset, len))
            .collect::<Result<_>>()?;
        Ok(encoded.into_iter().flatten().collect())
    }

    fn encode_range(&self, column: &Series, offset: usize, len: usize) -> Result<Vec<EncodedPart>> {
        let part = column.slice(offset as i64, len);
        let bytes = self.encode_part(&part)?;
        if bytes.len() > self.part_max_bytes && len > 1 {
            // Halve until every piece fits the per-request limit.
            let half = len / 2;
            let mut left = self.encode_range(column, offset, half)?;
            left.extend(self.encode_range(column, offset + half, len - half)?);
            return Ok(left);
        }
        Ok(vec![EncodedPart {
            id: content_id('c', &bytes),
            rows: len as u64,
            bytes: Bytes::from(bytes),
        }])
    }

    fn encode_part(&self, part: &Series) -> Result<Vec<u8>> {
        // One arrow chunk in, one row group out: the bytes then depend only on
        // the values, which is what makes content addressing dedupe.
        let column = part.rechunk().with_name(PART_COLUMN.into()).into_column();
        let df = DataFrame::new(part.len(), vec![column])?;
        let schema = df.schema().to_arrow(CompatLevel::newest());
        let options = WriteOptions {
            statistics: StatisticsOptions::empty(),
            compression: self.compression.to_parquet().into(),
            version: Version::V1,
            data_page_size: None,
        };
        let fields = to_parquet_schema(&schema)?.fields().to_vec();
        // Polars' choice, but floats plain: to decide on a dictionary it
        // hashes every value (half the cost of encoding a part), and most
        // float columns have too many distinct values to gain from one.
        let encodings: Vec<Vec<Encoding>> = schema
            .iter_values()
            .map(|field| match field.dtype {
                ArrowDataType::Float32 | ArrowDataType::Float64 => vec![Encoding::Plain],
                ref dtype => get_dtype_encoding(dtype),
            })
            .collect();
        let mut buf = Vec::with_capacity(part.estimated_size() / 2 + 1024);
        let mut writer = FileWriter::try_new(&mut buf, schema, options)?;
        // As polars' writer does, an empty part is a schema and no row group.
        for batch in df.iter_chunks(CompatLevel::newest(), false) {
            if batch.is_empty() {
                continue;
            }
            let rows = batch.len() as u64;
            let group = row_group_iter(batch, encodings.clone().into(), fields.clone(), options);
            writer.write(rows, group)?;
        }
        writer.end(None)?;
        Ok(buf)
    }
}

/// Decodes one Parquet part back into a column named `name`.
pub fn decode_part(bytes: &[u8], name: &str) -> Result<Series> {
    let df = ParquetReader::new(Cursor::new(bytes))
        .read_parallel(ParallelStrategy::None)
        .finish()?;
    let column = df.columns().first().ok_or_else(|| {
        StoreError::Corrupt(format!("a stored part of column '{name}' has no data"))
    })?;
    Ok(column
        .as_materialized_series()
        .clone()
        .with_name(name.into()))
}

/// Joins decoded parts of one column, in order.
pub fn concat_parts(name: &str, parts: Vec<Series>) -> Result<Series> {
    let mut iter = parts.into_iter();
    let Some(mut first) = iter.next() else {
        return Err(StoreError::Corrupt(format!(
            "column '{name}' has no stored parts"
        )));
    };
    for part in iter {
        first.append_owned(part)?;
    }
    Ok(first.with_name(name.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_parses() {
        assert_eq!("zstd".parse(), Ok(Compression::Zstd(1)));
        assert_eq!("ZSTD:9".parse(), Ok(Compression::Zstd(9)));
        assert_eq!("lz4".parse(), Ok(Compression::Lz4));
        assert!("zstd:99".parse::<Compression>().is_err());
        assert!("gzip".parse::<Compression>().is_err());
    }

    #[test]
    fn parts_round_trip_and_dedupe() {
        let codec = Codec {
            part_target_bytes: 8 * 1024,
            ..Codec::default()
        };
        let values: Vec<i64> = (0..100_000).collect();
        let s = Series::new("x".into(), values);
        let parts = codec.encode_column(&s).unwrap();
        assert!(
            parts.len() > 1,
            "a 800 KB column is split at an 8 KiB target"
        );
        let again = codec
            .encode_column(&s.clone().with_name("renamed".into()))
            .unwrap();
        let ids: Vec<_> = parts.iter().map(|p| &p.id).collect();
        let ids_again: Vec<_> = again.iter().map(|p| &p.id).collect();
        assert_eq!(ids, ids_again, "same values, same ids, whatever the name");

        let decoded: Vec<Series> = parts
            .iter()
            .map(|p| decode_part(&p.bytes, "x").unwrap())
            .collect();
        let back = concat_parts("x", decoded).unwrap();
        assert!(back.equals_missing(&s));
    }

    #[test]
    fn oversized_parts_are_split() {
        let codec = Codec {
            compression: Compression::Uncompressed,
            part_target_bytes: 64 << 20,
            part_max_bytes: 64 * 1024,
        };
        let values: Vec<f64> = (0..200_000).map(|i| (i as f64).sin()).collect();
        let s = Series::new("x".into(), values);
        let parts = codec.encode_column(&s).unwrap();
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.bytes.len() <= 64 * 1024));
        assert_eq!(parts.iter().map(|p| p.rows).sum::<u64>(), 200_000);
    }
}
