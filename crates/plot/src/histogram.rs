use plotters::prelude::Rectangle;
use plotters::style::Color;

use crate::axis::{Axis, Scale};
use crate::canvas::{self, BACKGROUND, BLUE, Frame};
use crate::data::{Accept, ValueKind, Values};
use crate::{ChartKind, Ctx, DEFAULT_BINS, PlotError, format};

pub(crate) fn draw(ctx: &Ctx) -> Result<(Vec<u8>, String), PlotError> {
    let name = ctx.need("x", "the numeric or date column whose distribution to draw")?;
    let values = Values::read(
        ctx.df,
        name,
        ChartKind::Histogram,
        "x",
        Accept::NumberOrTime,
    )?;
    let title = ctx.title(|| format!("Histogram of {name}"));
    let tally = values.tally();
    let x_desc = values.kind.axis_name(name);
    let skipped = tally.skipped();

    if tally.finite == 0 {
        let why = if tally.rows == 0 {
            "the table has no rows".to_string()
        } else {
            format!(
                "none of its {} values is a finite number",
                format::count(tally.rows)
            )
        };
        let summary = format!("Histogram of {name}: nothing drawn, {why}{skipped}");
        let frame = Frame::new(&title, "", &x_desc, "count");
        let bytes = canvas::draw_png(ctx.width, ctx.height, |root| {
            canvas::empty(root, &frame, &format!("No values to draw: {why}"))
        })?;
        return Ok((bytes, summary));
    }

    let (lo, hi) = (tally.min, tally.max);
    let scale = values.kind.scale();
    // Small whole-number ranges (ratings, counts of children) read best with
    // one bar per value, centred on it, instead of bins that split them.
    let per_integer = values.kind == ValueKind::Number
        && ctx.spec.bins.is_none()
        && hi - lo < 50.0
        && values
            .iter()
            .flatten()
            .filter(|v| v.is_finite())
            .all(|v| v.fract() == 0.0);
    let (edge_lo, edge_hi, bins) = if per_integer {
        (lo - 0.5, hi + 0.5, (hi - lo) as usize + 1)
    } else {
        (lo, hi, ctx.spec.bins.unwrap_or(DEFAULT_BINS))
    };
    let x = Axis::new(
        scale,
        edge_lo,
        edge_hi,
        0.01,
        canvas::x_ticks(ctx.width, scale),
    );

    // Bin in chart coordinates, where every span is finite.
    let (c_lo, c_hi) = (x.coord(edge_lo), x.coord(edge_hi));
    let (c_lo, c_hi) = if c_hi > c_lo {
        (c_lo, c_hi)
    } else {
        // One distinct value: a single bar as wide as one bin of the axis.
        let half = (x.hi - x.lo) / (2.0 * bins as f64);
        (c_lo - half, c_lo + half)
    };
    let width = (c_hi - c_lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for v in values.iter().flatten().filter(|v| v.is_finite()) {
        let i = ((x.coord(v) - c_lo) / width).floor();
        let i = if i.is_nan() {
            0
        } else {
            (i.max(0.0) as usize).min(bins - 1)
        };
        counts[i] += 1;
    }
    let tallest = counts.iter().copied().max().unwrap_or(0);
    let y = Axis::new(
        Scale::Number,
        0.0,
        tallest as f64 * 1.06,
        0.0,
        canvas::y_ticks(ctx.height),
    );

    let shown = |v: f64| values.kind.show(v);
    let bins_phrase = if per_integer {
        format!("{} bars, one per whole number", format::count(bins))
    } else if lo == hi {
        "1 bar: every value is the same".to_string()
    } else {
        format!("{} bins", format::count(bins))
    };
    let range_phrase = if lo == hi {
        format!("all equal to {}", shown(lo))
    } else {
        format!("from {} to {}", shown(lo), shown(hi))
    };
    let summary = format!(
        "Histogram of {name}: {} values in {bins_phrase} {range_phrase}{skipped}",
        format::count(tally.finite)
    );
    let bin_width = if per_integer || lo == hi {
        String::new()
    } else {
        let w = hi / bins as f64 - lo / bins as f64;
        match values.kind.scale() {
            Scale::Number => format!(" of width {}", format::short(w)),
            Scale::Time | Scale::Date => format!(" of {}", format::span(w)),
        }
    };
    let subtitle = format!(
        "{} values in {bins_phrase}{bin_width}{}",
        format::count(tally.finite),
        skipped.replacen("; ", " · ", 1)
    );
    let frame = Frame {
        x_grid: false,
        ..Frame::new(&title, &subtitle, &x_desc, "count")
    };

    let bytes = canvas::draw_png(ctx.width, ctx.height, |root| {
        let mut chart = canvas::chart(root, &frame, &x, &y)?;
        let (plot_w, _) = chart.plotting_area().dim_in_pixel();
        let outline = f64::from(plot_w) / bins as f64 >= 6.0;
        let bars = counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| {
                let x0 = c_lo + width * i as f64;
                [(x0, 0.0), (x0 + width, *c as f64)]
            });
        chart.draw_series(bars.clone().map(|r| Rectangle::new(r, BLUE.filled())))?;
        if outline {
            chart.draw_series(bars.map(|r| Rectangle::new(r, BACKGROUND.stroke_width(1))))?;
        }
        Ok(())
    })?;
    Ok((bytes, summary))
}
