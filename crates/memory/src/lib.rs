//! The bytes a polars frame really holds in memory.
//!
//! polars' `estimated_size` counts a text column as the bytes of its strings
//! ("the optimal usage", in its own words). It leaves out the 16-byte view
//! every row of a text column has, and short strings live inside that view:
//! a column of 8-character codes holds 16 bytes a row and is reported as 8.
//! A frame of such columns holds about twice what polars reports, so caches,
//! table limits and summaries that must bound memory count it here instead.

use std::collections::HashSet;

use polars::prelude::{Column, DataFrame, Series};
use polars_arrow::array::{
    Array, BinaryViewArrayGeneric, FixedSizeListArray, ListArray, StructArray, ViewType,
};
use polars_arrow::bitmap::Bitmap;
use polars_arrow::compute::aggregate::estimated_bytes_size;
use polars_arrow::datatypes::PhysicalType;
use polars_arrow::offset::Offset;

/// Bytes of a text view: its length, buffer index, offset and prefix (or the
/// whole string when it is at most 12 bytes).
const VIEW_BYTES: usize = 16;

/// The bytes the frame's columns hold (a buffer shared by two columns is
/// counted in each).
pub fn frame_bytes(df: &DataFrame) -> usize {
    df.columns().iter().map(column_bytes).sum()
}

/// The bytes one column holds.
pub fn column_bytes(column: &Column) -> usize {
    series_bytes(column.as_materialized_series())
}

/// The bytes one series holds: a string buffer its chunks share (as the
/// chunks of a filtered column do) is counted once.
pub fn series_bytes(series: &Series) -> usize {
    let mut seen = HashSet::new();
    series
        .chunks()
        .iter()
        .map(|chunk| array_bytes(chunk.as_ref(), &mut seen))
        .sum()
}

fn array_bytes(array: &dyn Array, seen: &mut HashSet<usize>) -> usize {
    let any = array.as_any();
    let counted = match array.dtype().to_physical_type() {
        PhysicalType::Utf8View => any
            .downcast_ref::<BinaryViewArrayGeneric<str>>()
            .map(|a| view_bytes(a, seen)),
        PhysicalType::BinaryView => any
            .downcast_ref::<BinaryViewArrayGeneric<[u8]>>()
            .map(|a| view_bytes(a, seen)),
        PhysicalType::LargeList => any
            .downcast_ref::<ListArray<i64>>()
            .map(|a| list_bytes(a, seen)),
        PhysicalType::List => any
            .downcast_ref::<ListArray<i32>>()
            .map(|a| list_bytes(a, seen)),
        PhysicalType::FixedSizeList => any
            .downcast_ref::<FixedSizeListArray>()
            .map(|a| array_bytes(a.values().as_ref(), seen) + validity_bytes(a.validity())),
        PhysicalType::Struct => any.downcast_ref::<StructArray>().map(|a| {
            a.values()
                .iter()
                .map(|field| array_bytes(field.as_ref(), seen))
                .sum::<usize>()
                + validity_bytes(a.validity())
        }),
        _ => None,
    };
    counted.unwrap_or_else(|| estimated_bytes_size(array))
}

fn list_bytes<O: Offset>(array: &ListArray<O>, seen: &mut HashSet<usize>) -> usize {
    array.offsets().len_proxy() * size_of::<O>()
        + array_bytes(array.values().as_ref(), seen)
        + validity_bytes(array.validity())
}

fn view_bytes<T: ViewType + ?Sized>(
    array: &BinaryViewArrayGeneric<T>,
    seen: &mut HashSet<usize>,
) -> usize {
    let buffers: usize = array
        .data_buffers()
        .iter()
        .filter(|buffer| seen.insert(buffer.as_ptr() as usize))
        .map(|buffer| buffer.len())
        .sum();
    array.views().len() * VIEW_BYTES + buffers + validity_bytes(array.validity())
}

fn validity_bytes(validity: Option<&Bitmap>) -> usize {
    validity.map_or(0, |bits| bits.len().div_ceil(8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    #[test]
    fn short_text_counts_its_views() {
        let codes: Vec<String> = (0..10_000).map(|i| format!("c{i:07}")).collect();
        let s = Series::new("code".into(), codes);
        // polars counts the 8 bytes of each string; each row holds a 16-byte
        // view with the string inside it.
        assert_eq!(s.estimated_size(), 80_000);
        assert_eq!(series_bytes(&s), 160_000);
    }

    #[test]
    fn long_text_counts_views_and_buffers_once() {
        let long: Vec<String> = (0..1_000).map(|i| format!("{i:040}")).collect();
        let s = Series::new("long".into(), long);
        let one = series_bytes(&s);
        assert_eq!(one, 1_000 * VIEW_BYTES + 40_000);
        // A filter keeps the string buffers and makes new views: the chunks
        // of the result share buffers, which are counted once.
        let mask = BooleanChunked::from_iter_values("m".into(), (0..1_000).map(|i| i % 2 == 0));
        let halves = Series::try_from((
            PlSmallStr::from("long"),
            vec![
                s.slice(0, 500).chunks()[0].clone(),
                s.slice(500, 500).chunks()[0].clone(),
            ],
        ))
        .unwrap();
        assert_eq!(halves.chunks().len(), 2);
        assert_eq!(series_bytes(&halves), one, "shared buffers counted once");
        let kept = s.filter(&mask).unwrap();
        assert!(series_bytes(&kept) <= 500 * VIEW_BYTES + 40_000);
    }

    #[test]
    fn numbers_match_polars() {
        let df = df!(
            "a" => [Some(1i64), None, Some(3)],
            "b" => [1.5f64, 2.5, 3.5],
            "c" => [true, false, true],
        )
        .unwrap();
        assert_eq!(frame_bytes(&df), df.estimated_size());
    }

    #[test]
    fn nested_text_counts_its_views() {
        let inner = Series::new("x".into(), ["a", "b", "c", "d"]);
        let list = Series::new("l".into(), [inner.slice(0, 2), inner.slice(2, 2)]);
        assert!(
            series_bytes(&list) >= 4 * VIEW_BYTES,
            "{}",
            series_bytes(&list)
        );
        let fields = [inner.clone(), Series::new("n".into(), [1i32, 2, 3, 4])];
        let st = StructChunked::from_series("s".into(), 4, fields.iter())
            .unwrap()
            .into_series();
        assert!(
            series_bytes(&st) >= 4 * VIEW_BYTES + 16,
            "{}",
            series_bytes(&st)
        );
    }
}
