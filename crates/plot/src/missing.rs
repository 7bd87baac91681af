use plotters::prelude::{PathElement, Rectangle, Text};
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{Color, FontTransform, RGBColor};
use polars::prelude::*;

use crate::axis::{Axis, Scale};
use crate::canvas::{self, Frame, GRID, INK, MUTED, Sizes};
use crate::{Ctx, MAX_MISSING_COLUMNS, PlotError, format};

/// Room for the colour key right of the map.
const LEGEND_ROOM: u32 = 70;

/// Missing cells per row band of one column.
struct ColumnMap {
    name: String,
    missing: usize,
    per_band: Vec<u32>,
}

pub(crate) fn draw(ctx: &Ctx) -> Result<(Vec<u8>, String), PlotError> {
    let df = ctx.df;
    let rows = df.height();
    let total_cols = df.width();
    let shown_cols = total_cols.min(MAX_MISSING_COLUMNS);
    let title = ctx.title(|| "Missing values".to_string());
    let left_out = (total_cols > shown_cols).then(|| {
        format!(
            "{} more columns not shown (only the first {} are drawn)",
            format::count(total_cols - shown_cols),
            format::count(shown_cols)
        )
    });

    if rows == 0 || total_cols == 0 {
        let why = if total_cols == 0 {
            "the table has no columns"
        } else {
            "the table has no rows"
        };
        let summary = format!(
            "Missing-value map: nothing drawn, {why} ({} rows × {} columns)",
            format::count(rows),
            format::count(total_cols)
        );
        let frame = Frame::new(&title, "", "", "row");
        let bytes = canvas::draw_png(ctx.width, ctx.height, |root| {
            canvas::empty(root, &frame, &format!("Nothing to draw: {why}"))
        })?;
        return Ok((bytes, summary));
    }

    let columns = &df.columns()[..shown_cols];
    let label_room = {
        let longest = columns
            .iter()
            .map(|c| c.name().chars().count())
            .max()
            .unwrap_or(1);
        // Rotated names hang below the map; a third of the height at most.
        (longest.min(24) as u32 * 8 + 10).min(ctx.height / 3)
    };
    let mut subtitle = format!(
        "{} rows × {} columns · darker = larger share of the rows in a band missing (null or NaN)",
        format::count(rows),
        format::count(total_cols)
    );
    if let Some(l) = &left_out {
        subtitle = format!("{subtitle} · {l}");
    }
    let frame = Frame {
        x_grid: false,
        y_grid: false,
        x_label_room: Some(label_room),
        right_room: LEGEND_ROOM,
        ..Frame::new(&title, &subtitle, "", "row")
    };

    let x = Axis::categorical(vec![String::new(); shown_cols]);
    // Row 0 at the top: coordinates run from `rows` (top) down to 0.
    let base = Axis::new(
        Scale::Number,
        0.0,
        rows as f64,
        0.0,
        canvas::y_ticks(ctx.height),
    );
    let ticks = base
        .ticks()
        .into_iter()
        .zip(base.labels().iter().cloned())
        .filter(|(t, _)| t.fract() == 0.0 && *t >= 0.0 && *t < rows as f64)
        .map(|(t, l)| (rows as f64 - t, l))
        .collect();
    let y = Axis::custom(0.0, rows as f64, ticks);

    let mut maps: Vec<ColumnMap> = Vec::new();
    let mut bands = 0usize;
    let bytes = canvas::draw_png(ctx.width, ctx.height, |root| {
        let sizes = Sizes::of(root);
        let mut chart = canvas::chart(root, &frame, &x, &y)?;
        let (plot_w, plot_h) = chart.plotting_area().dim_in_pixel();
        bands = rows.min(plot_h.max(1) as usize);
        maps = columns
            .iter()
            .map(|c| column_map(c, rows, bands))
            .collect::<Result<_, _>>()?;

        // The first row of band b; bands hold floor or ceil of rows / bands.
        let start = |b: usize| ((b as u128 * rows as u128).div_ceil(bands as u128)) as f64;
        let mut cells = Vec::new();
        for (c, map) in maps.iter().enumerate() {
            for (b, &m) in map.per_band.iter().enumerate() {
                if m == 0 {
                    continue;
                }
                let (r0, r1) = (start(b), start(b + 1));
                let share = f64::from(m) / (r1 - r0).max(1.0);
                cells.push(Rectangle::new(
                    [
                        (c as f64, rows as f64 - r0),
                        (c as f64 + 1.0, rows as f64 - r1),
                    ],
                    shade(share).filled(),
                ));
            }
        }
        chart.draw_series(cells)?;

        let col_px = f64::from(plot_w) / shown_cols as f64;
        if col_px >= 4.0 {
            chart.draw_series(
                (1..shown_cols).map(|c| {
                    PathElement::new(vec![(c as f64, 0.0), (c as f64, rows as f64)], GRID)
                }),
            )?;
        }

        // Column names, rotated to read upwards and ending at the axis.
        let name_size = (col_px * 0.8).min(sizes.text).max(6.0);
        let name_style = canvas::style(name_size, &INK)
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Right, VPos::Center));
        let upright = canvas::style(name_size, &INK);
        // Narrow columns get every k-th name, so names never overprint.
        let every = (7.0 / col_px).ceil().max(1.0) as usize;
        for (c, map) in maps.iter().enumerate().step_by(every) {
            let (px, py) = chart.backend_coord(&(c as f64 + 0.5, 0.0));
            let name = canvas::fit(root, &map.name, &upright, label_room.saturating_sub(8));
            root.draw(&Text::new(name, (px, py + 6), name_style.clone()))?;
        }

        // Colour key: a gradient from none to all missing.
        let (left, top) = chart.backend_coord(&(shown_cols as f64, rows as f64));
        let (_, bottom) = chart.backend_coord(&(shown_cols as f64, 0.0));
        let key_x = left + 16;
        let height = (bottom - top).max(1);
        for k in 0..height {
            let share = f64::from(height - k) / f64::from(height);
            root.draw(&Rectangle::new(
                [(key_x, top + k), (key_x + 12, top + k + 1)],
                shade(share).filled(),
            ))?;
        }
        root.draw(&Rectangle::new(
            [(key_x, top), (key_x + 12, bottom)],
            MUTED.stroke_width(1),
        ))?;
        let key_style = canvas::style(sizes.small, &INK).pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new("100%", (key_x + 16, top + 4), key_style.clone()))?;
        root.draw(&Text::new("0%", (key_x + 16, bottom - 4), key_style))?;
        Ok(())
    })?;

    let mut with_missing: Vec<&ColumnMap> = maps.iter().filter(|m| m.missing > 0).collect();
    with_missing.sort_by_key(|m| std::cmp::Reverse(m.missing));
    let band_rows = rows as f64 / bands.max(1) as f64;
    let mut summary = format!(
        "Missing-value map of {} rows × {} columns ({}): ",
        format::count(rows),
        format::count(shown_cols),
        if bands == rows {
            "one pixel row per table row".to_string()
        } else {
            format!(
                "rows in {} bands of about {}",
                format::count(bands),
                format::num((band_rows * 10.0).round() / 10.0)
            )
        }
    );
    if with_missing.is_empty() {
        summary.push_str("no missing values (null or NaN) in any column shown");
    } else {
        let listed = with_missing
            .iter()
            .take(5)
            .map(|m| {
                format!(
                    "{} {}%",
                    m.name,
                    format::num((m.missing as f64 / rows as f64 * 1000.0).round() / 10.0)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        summary.push_str(&format!(
            "{} of {} columns have missing values (null or NaN): {listed}{}",
            format::count(with_missing.len()),
            format::count(shown_cols),
            if with_missing.len() > 5 { ", …" } else { "" }
        ));
    }
    if let Some(l) = left_out {
        summary.push_str(&format!("; {l}"));
    }
    Ok((bytes, summary))
}

fn column_map(col: &Column, rows: usize, bands: usize) -> Result<ColumnMap, PlotError> {
    let mut per_band = vec![0u32; bands];
    let band_of = |i: usize| ((i as u128 * bands as u128) / rows as u128) as usize;
    let mut missing = 0usize;
    let mut mark = |i: usize| {
        missing += 1;
        per_band[band_of(i).min(bands - 1)] += 1;
    };
    if col.dtype().is_float() {
        let floats = col.as_materialized_series().cast(&DataType::Float64)?;
        for (i, v) in floats.f64()?.iter().enumerate() {
            if v.is_none_or(f64::is_nan) {
                mark(i);
            }
        }
    } else if col.null_count() > 0 {
        let nulls = col.is_null();
        for (i, is_null) in nulls.iter().enumerate() {
            if is_null == Some(true) {
                mark(i);
            }
        }
    }
    Ok(ColumnMap {
        name: col.name().to_string(),
        missing,
        per_band,
    })
}

/// White for nothing missing, through orange to dark red for all missing.
/// The square root makes a few missing cells in a band visible.
fn shade(share: f64) -> RGBColor {
    let t = share.clamp(0.0, 1.0).sqrt();
    let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(lerp(253.0, 153.0), lerp(212.0, 0.0), lerp(158.0, 13.0))
}
