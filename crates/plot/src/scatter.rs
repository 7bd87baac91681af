use plotters::prelude::Circle;
use plotters::style::Color;

use crate::axis::Axis;
use crate::canvas::{self, BLUE, Frame};
use crate::data::{Accept, Tally, Values};
use crate::{ChartKind, Ctx, MAX_SCATTER_POINTS, PlotError, format};

pub(crate) fn draw(ctx: &Ctx) -> Result<(Vec<u8>, String), PlotError> {
    let x_name = ctx.need("x", "the column for the horizontal axis")?;
    let y_name = ctx.need("y", "the numeric column for the vertical axis")?;
    let xs = Values::read(
        ctx.df,
        x_name,
        ChartKind::Scatter,
        "x",
        Accept::NumberOrTime,
    )?;
    let ys = Values::read(
        ctx.df,
        y_name,
        ChartKind::Scatter,
        "y",
        Accept::NumberOrTime,
    )?;
    let title = ctx.title(|| format!("{y_name} against {x_name}"));
    let x_desc = xs.kind.axis_name(x_name);
    let y_desc = ys.kind.axis_name(y_name);

    let both = || {
        xs.iter().zip(ys.iter()).filter_map(|(x, y)| match (x, y) {
            (Some(x), Some(y)) if x.is_finite() && y.is_finite() => Some((x, y)),
            _ => None,
        })
    };
    let (mut tx, mut ty) = (Tally::default(), Tally::default());
    for (x, y) in both() {
        tx.add(Some(x));
        ty.add(Some(y));
    }
    let valid = tx.finite;
    let rows = xs.len();
    let skipped = rows - valid;
    let skipped_phrase = if skipped > 0 {
        format!(
            "; {} rows with a missing or non-finite x or y not drawn",
            format::count(skipped)
        )
    } else {
        String::new()
    };

    if valid == 0 {
        let why = if rows == 0 {
            "the table has no rows".to_string()
        } else {
            format!("no row has both {x_name} and {y_name} as finite numbers")
        };
        let summary = format!("Scatter of {y_name} against {x_name}: nothing drawn, {why}");
        let frame = Frame::new(&title, "", &x_desc, &y_desc);
        let bytes = canvas::draw_png(ctx.width, ctx.height, |root| {
            canvas::empty(root, &frame, &format!("No points to draw: {why}"))
        })?;
        return Ok((bytes, summary));
    }

    // Every k-th point is a deterministic sample that keeps the table's order
    // and, unlike a random one, gives the same picture every time.
    let stride = valid.div_ceil(MAX_SCATTER_POINTS).max(1);
    let x = Axis::new(
        xs.kind.scale(),
        tx.min,
        tx.max,
        0.04,
        canvas::x_ticks(ctx.width, xs.kind.scale()),
    );
    let y = Axis::new(
        ys.kind.scale(),
        ty.min,
        ty.max,
        0.05,
        canvas::y_ticks(ctx.height),
    );
    let points: Vec<(f64, f64)> = both()
        .step_by(stride)
        .map(|(a, b)| (x.coord(a), y.coord(b)))
        .collect();
    let drawn = points.len();

    let sample = if stride > 1 {
        format!(
            "{} of {} points drawn (every {})",
            format::count(drawn),
            format::count(valid),
            ordinal(stride)
        )
    } else {
        format!("{} points", format::count(valid))
    };
    let summary = format!(
        "Scatter of {y_name} against {x_name}: {sample}{skipped_phrase}; x from {} to {}, y from {} to {}",
        xs.kind.show(tx.min),
        xs.kind.show(tx.max),
        ys.kind.show(ty.min),
        ys.kind.show(ty.max)
    );
    let subtitle = format!("{sample}{}", skipped_phrase.replacen("; ", " · ", 1));
    let frame = Frame::new(&title, &subtitle, &x_desc, &y_desc);

    let bytes = canvas::draw_png(ctx.width, ctx.height, |root| {
        let mut chart = canvas::chart(root, &frame, &x, &y)?;
        let (radius, alpha) = match drawn {
            0..=500 => (4, 0.75),
            501..=5000 => (3, 0.5),
            _ => (2, 0.35),
        };
        let style = BLUE.mix(alpha).filled();
        chart.draw_series(points.iter().map(|p| Circle::new(*p, radius, style)))?;
        Ok(())
    })?;
    Ok((bytes, summary))
}

/// 2 -> "2nd point", 50 -> "50th point".
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{}{suffix} point", format::count(n))
}
