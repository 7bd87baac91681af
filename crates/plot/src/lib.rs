//! Charts of a polars [`DataFrame`] rendered to PNG bytes in memory.
//!
//! [`render`] draws one chart described by a [`PlotSpec`]: a histogram, a bar
//! chart of value counts, a scatter plot, a line over an ordered column, box
//! plots, or a map of the missing values of the whole table. Along with the
//! picture comes a one-line summary of what was drawn and what was left out,
//! so that a reader who cannot see the image is not misled.
//!
//! Text uses an embedded copy of DejaVu Sans: no system font is needed.
//! Memory stays bounded by the column being read (one `f64` per row, at
//! most a pair per row for line charts) plus the pixel buffer.

mod axis;
mod bar;
mod boxplot;
mod canvas;
mod data;
mod error;
mod format;
mod histogram;
mod line;
mod missing;
mod scatter;

use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

pub use error::PlotError;

/// The kinds of chart [`render`] draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartKind {
    /// Distribution of one numeric or date column (`x`), in `bins` bins.
    Histogram,
    /// The `top` most frequent values of any column (`x`), missing included.
    Bar,
    /// Two numeric or date columns against each other (`x`, `y`).
    Scatter,
    /// A numeric `y` over a date, datetime or numeric `x`, sorted by `x`.
    Line,
    /// Median, quartiles, whiskers and outliers of a numeric `x`, optionally
    /// one box per value of `by`.
    Box,
    /// Where the table's values are missing: columns across, rows down.
    Missing,
}

impl ChartKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChartKind::Histogram => "histogram",
            ChartKind::Bar => "bar",
            ChartKind::Scatter => "scatter",
            ChartKind::Line => "line",
            ChartKind::Box => "box",
            ChartKind::Missing => "missing",
        }
    }
}

impl std::fmt::Display for ChartKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to draw. Only `kind` is required; see each field for the kinds that
/// read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlotSpec {
    pub kind: ChartKind,
    /// histogram, bar, box: the column to draw. scatter, line: the
    /// horizontal axis (line: a date, datetime or numeric column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// scatter, line: the vertical axis, a numeric column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// box: draw one box per value of this column (the 20 largest groups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// histogram: number of bins, 1 to 200 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bins: Option<usize>,
    /// bar: how many of the most frequent values to draw, 1 to 50 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top: Option<usize>,
    /// Picture width in pixels, 200 to 2000 (default 800).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Picture height in pixels, 200 to 2000 (default 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Title over the chart (default: derived from the kind and columns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

impl PlotSpec {
    /// A spec of `kind` with every option left to its default.
    pub fn new(kind: ChartKind) -> PlotSpec {
        PlotSpec {
            kind,
            x: None,
            y: None,
            by: None,
            bins: None,
            top: None,
            width: None,
            height: None,
            title: None,
        }
    }
}

/// A rendered chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Png {
    /// A complete PNG file (8-bit RGB).
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// One line saying what was drawn and what was left out.
    pub summary: String,
}

pub const DEFAULT_WIDTH: u32 = 800;
pub const DEFAULT_HEIGHT: u32 = 500;
pub const MIN_SIZE: u32 = 200;
pub const MAX_SIZE: u32 = 2000;
pub const DEFAULT_BINS: usize = 20;
pub const MAX_BINS: usize = 200;
pub const DEFAULT_TOP: usize = 20;
pub const MAX_TOP: usize = 50;
/// Box plots draw at most this many groups.
pub const MAX_BOXES: usize = 20;
/// Scatter plots draw at most this many points (an evenly spaced sample).
pub const MAX_SCATTER_POINTS: usize = 20_000;
/// The missing-value map shows at most this many columns.
pub const MAX_MISSING_COLUMNS: usize = 60;

/// Draw `spec` from `df`.
///
/// Errors name the problem and the fix: an unknown column (listing the
/// columns), a column of the wrong type (naming the kind of chart to use
/// instead), a missing field or an option out of range. A table or column
/// with nothing to draw still gives a chart, with a note saying so.
pub fn render(df: &DataFrame, spec: &PlotSpec) -> Result<Png, PlotError> {
    let (width, height) = validate(spec)?;
    let ctx = Ctx {
        df,
        spec,
        width,
        height,
    };
    let (bytes, summary) = match spec.kind {
        ChartKind::Histogram => histogram::draw(&ctx)?,
        ChartKind::Bar => bar::draw(&ctx)?,
        ChartKind::Scatter => scatter::draw(&ctx)?,
        ChartKind::Line => line::draw(&ctx)?,
        ChartKind::Box => boxplot::draw(&ctx)?,
        ChartKind::Missing => missing::draw(&ctx)?,
    };
    let ignored = ignored_fields(spec);
    let summary = if ignored.is_empty() {
        summary
    } else {
        format!(
            "{summary} ({} not used by kind={})",
            ignored.join(", "),
            spec.kind
        )
    };
    Ok(Png {
        bytes,
        width,
        height,
        summary,
    })
}

/// What every chart module receives.
pub(crate) struct Ctx<'a> {
    pub df: &'a DataFrame,
    pub spec: &'a PlotSpec,
    pub width: u32,
    pub height: u32,
}

impl Ctx<'_> {
    /// A field the kind cannot do without.
    pub fn need(&self, field: &'static str, what: &'static str) -> Result<&str, PlotError> {
        let value = match field {
            "x" => &self.spec.x,
            "y" => &self.spec.y,
            _ => &self.spec.by,
        };
        value.as_deref().ok_or(PlotError::MissingField {
            kind: self.spec.kind.as_str(),
            field,
            what,
        })
    }

    /// The caller's title, or the derived one.
    pub fn title(&self, derived: impl FnOnce() -> String) -> String {
        match self.spec.title.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => t.to_string(),
            _ => derived(),
        }
    }
}

fn validate(spec: &PlotSpec) -> Result<(u32, u32), PlotError> {
    let check = |field: &'static str, value: u64, min: u64, max: u64| {
        if (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(PlotError::OutOfRange {
                field,
                value,
                min,
                max,
            })
        }
    };
    let width = spec.width.unwrap_or(DEFAULT_WIDTH);
    let height = spec.height.unwrap_or(DEFAULT_HEIGHT);
    check("width", width.into(), MIN_SIZE.into(), MAX_SIZE.into())?;
    check("height", height.into(), MIN_SIZE.into(), MAX_SIZE.into())?;
    if let Some(bins) = spec.bins {
        check("bins", bins as u64, 1, MAX_BINS as u64)?;
    }
    if let Some(top) = spec.top {
        check("top", top as u64, 1, MAX_TOP as u64)?;
    }
    if spec.kind == ChartKind::Box && spec.y.is_some() {
        // Other libraries put the values in `y` and the groups in `x`; a
        // silent reading of the other convention would draw the wrong chart.
        return Err(PlotError::FieldNotUsed {
            kind: "box",
            field: "y",
            hint: "put the numeric column in `x`, and the column to group by (if any) in `by`",
        });
    }
    Ok((width, height))
}

/// Fields the caller set that this kind does not read.
fn ignored_fields(spec: &PlotSpec) -> Vec<&'static str> {
    let used: &[&str] = match spec.kind {
        ChartKind::Histogram => &["x", "bins"],
        ChartKind::Bar => &["x", "top"],
        ChartKind::Scatter | ChartKind::Line => &["x", "y"],
        ChartKind::Box => &["x", "by"],
        ChartKind::Missing => &[],
    };
    [
        ("x", spec.x.is_some()),
        ("y", spec.y.is_some()),
        ("by", spec.by.is_some()),
        ("bins", spec.bins.is_some()),
        ("top", spec.top.is_some()),
    ]
    .into_iter()
    .filter(|(name, set)| *set && !used.contains(name))
    .map(|(name, _)| name)
    .collect()
}

#[cfg(test)]
mod tests;
