use plotters::prelude::{Circle, PathElement};
use plotters::style::Color;

use crate::axis::{Axis, Scale};
use crate::canvas::{self, BLUE, Frame};
use crate::data::{Accept, Values};
use crate::{ChartKind, Ctx, PlotError, format};

/// Above this many distinct x values the line is averaged into buckets:
/// more points than pixels only draws a solid band.
const MAX_DISTINCT_X: usize = 2_000;
const BUCKETS: usize = 1_000;

pub(crate) fn draw(ctx: &Ctx) -> Result<(Vec<u8>, String), PlotError> {
    let x_name = ctx.need(
        "x",
        "the date, datetime or numeric column to order the line by",
    )?;
    let y_name = ctx.need("y", "the numeric column to draw as a line")?;
    let xs = Values::read(ctx.df, x_name, ChartKind::Line, "x", Accept::NumberOrTime)?;
    let ys = Values::read(ctx.df, y_name, ChartKind::Line, "y", Accept::Number)?;
    let title = ctx.title(|| format!("{y_name} over {x_name}"));
    let x_desc = xs.kind.axis_name(x_name);

    let mut pairs: Vec<(f64, f64)> = xs
        .iter()
        .zip(ys.iter())
        .filter_map(|(x, y)| match (x, y) {
            (Some(x), Some(y)) if x.is_finite() && y.is_finite() => Some((x, y)),
            _ => None,
        })
        .collect();
    let rows = xs.len();
    let valid = pairs.len();
    let skipped = if rows > valid {
        format!(
            "; {} rows with a missing or non-finite x or y not drawn",
            format::count(rows - valid)
        )
    } else {
        String::new()
    };

    if valid == 0 {
        let why = if rows == 0 {
            "the table has no rows".to_string()
        } else {
            format!("no row has both {x_name} and {y_name} as finite values")
        };
        let summary = format!("Line of {y_name} over {x_name}: nothing drawn, {why}");
        let frame = Frame::new(&title, "", &x_desc, y_name);
        let bytes = canvas::draw_png(ctx.width, ctx.height, |root| {
            canvas::empty(root, &frame, &format!("Nothing to draw: {why}"))
        })?;
        return Ok((bytes, summary));
    }

    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let distinct = 1 + pairs.windows(2).filter(|w| w[0].0 != w[1].0).count();
    let (x_min, x_max) = (pairs[0].0, pairs[valid - 1].0);
    let (points, how) = if distinct > MAX_DISTINCT_X {
        let points = bucket_means(&pairs, x_min, x_max);
        let how = format!(
            "{} rows averaged into {} buckets of x (mean {y_name} per bucket)",
            format::count(valid),
            format::count(points.len())
        );
        (points, how)
    } else if distinct < valid {
        let points = mean_per_x(&pairs);
        let how = format!(
            "{} points, the mean {y_name} at each of {} distinct x values ({} rows)",
            format::count(points.len()),
            format::count(distinct),
            format::count(valid)
        );
        (points, how)
    } else {
        (pairs, format!("{} points", format::count(valid)))
    };
    let (y_min, y_max) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });

    let summary = format!(
        "Line of {y_name} over {x_name}: {how}{skipped}; x from {} to {}, y from {} to {}",
        xs.kind.show(x_min),
        xs.kind.show(x_max),
        format::num(y_min),
        format::num(y_max)
    );
    let subtitle = format!("{how}{}", skipped.replacen("; ", " · ", 1));
    let frame = Frame::new(&title, &subtitle, &x_desc, y_name);
    let x = Axis::new(
        xs.kind.scale(),
        x_min,
        x_max,
        0.01,
        canvas::x_ticks(ctx.width, xs.kind.scale()),
    );
    let y = Axis::new(
        Scale::Number,
        y_min,
        y_max,
        0.06,
        canvas::y_ticks(ctx.height),
    );

    let bytes = canvas::draw_png(ctx.width, ctx.height, |root| {
        let mut chart = canvas::chart(root, &frame, &x, &y)?;
        let coords: Vec<(f64, f64)> = points
            .iter()
            .map(|(a, b)| (x.coord(*a), y.coord(*b)))
            .collect();
        // Separate segments: plotters joins a wide polyline with unbounded
        // miters, which shoot far outside the chart at sharp turns.
        let width = if coords.len() > 400 { 1 } else { 2 };
        chart.draw_series(
            coords
                .windows(2)
                .map(|w| PathElement::new(vec![w[0], w[1]], BLUE.stroke_width(width))),
        )?;
        // Few points, or a single one, would be hard to see as a line alone.
        if coords.len() <= 60 {
            chart.draw_series(coords.iter().map(|p| Circle::new(*p, 3, BLUE.filled())))?;
        }
        Ok(())
    })?;
    Ok((bytes, summary))
}

/// Mean x and mean y of the rows in each of `BUCKETS` equal slices of the x
/// range; empty slices are left out, so gaps in x show as straight segments.
fn bucket_means(sorted: &[(f64, f64)], x_min: f64, x_max: f64) -> Vec<(f64, f64)> {
    // Halving first keeps the span finite for values near f64::MAX.
    let span = x_max / 2.0 - x_min / 2.0;
    let mut sums = vec![(0.0f64, 0.0f64, 0usize); BUCKETS];
    for &(x, y) in sorted {
        let f = (x / 2.0 - x_min / 2.0) / span;
        let i = if f.is_finite() {
            ((f * BUCKETS as f64) as usize).min(BUCKETS - 1)
        } else {
            0
        };
        let s = &mut sums[i];
        // Running means: sums of huge values would overflow.
        s.2 += 1;
        let n = s.2 as f64;
        s.0 += x / n - s.0 / n;
        s.1 += y / n - s.1 / n;
    }
    sums.into_iter()
        .filter(|s| s.2 > 0)
        .map(|(x, y, _)| (x, y))
        .collect()
}

/// One point per distinct x, at the mean of its y values.
fn mean_per_x(sorted: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    let mut n = 0usize;
    for &(x, y) in sorted {
        match out.last_mut() {
            Some(last) if last.0 == x => {
                n += 1;
                last.1 += y / n as f64 - last.1 / n as f64;
            }
            _ => {
                out.push((x, y));
                n = 1;
            }
        }
    }
    out
}
