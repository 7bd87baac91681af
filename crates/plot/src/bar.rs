use plotters::prelude::{Rectangle, Text};
use plotters::style::Color;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::axis::{Axis, Scale};
use crate::canvas::{self, BLUE, Frame, GREY_BAR, INK, Sizes};
use crate::data::{self, ValueKind};
use crate::{Ctx, DEFAULT_TOP, PlotError, format};

pub(crate) fn draw(ctx: &Ctx) -> Result<(Vec<u8>, String), PlotError> {
    let name = ctx.need("x", "the column whose most frequent values to count")?;
    let col = data::column(ctx.df, name)?;
    let numeric = data::value_kind(col.dtype()) == Some(ValueKind::Number);
    let asked = ctx.spec.top.unwrap_or(DEFAULT_TOP);
    // Each bar needs a line of text for its label; a short picture holds
    // fewer bars than asked rather than overprinting their labels.
    let text = Sizes::for_picture(ctx.width, ctx.height).text;
    let fit = ((f64::from(ctx.height) - 130.0) / (text * 1.25))
        .floor()
        .max(2.0) as usize;
    // One slot is kept for the missing bar.
    let top = asked.min(fit.saturating_sub(1).max(1));
    let grouping = data::top_groups(ctx.df, name, top, true, false)?;
    let title = ctx.title(|| format!("Most frequent values of {name}"));
    let rows = ctx.df.height();

    if grouping.groups.is_empty() {
        let summary = format!("Bar chart of {name}: nothing drawn, the table has no rows");
        let frame = Frame::new(&title, "", "count", name);
        let bytes = canvas::draw_png(ctx.width, ctx.height, |root| {
            canvas::empty(root, &frame, "No values to draw: the table has no rows")
        })?;
        return Ok((bytes, summary));
    }

    let groups = &grouping.groups;
    let shown_values = groups.iter().filter(|g| !g.is_null).count();
    let distinct_values = grouping.distinct - groups.iter().filter(|g| g.is_null).count();
    let missing = groups.iter().find(|g| g.is_null).map_or(0, |g| g.len);
    let covered: usize = groups.iter().filter(|g| !g.is_null).map(|g| g.len).sum();

    let mut summary = format!(
        "Bar chart of {name}: the {} most frequent of {} distinct values, covering {} of {} rows",
        format::count(shown_values),
        format::count(distinct_values),
        format::count(covered),
        format::count(rows)
    );
    if shown_values == distinct_values {
        summary = format!(
            "Bar chart of {name}: all {} distinct values, covering {} of {} rows",
            format::count(distinct_values),
            format::count(covered),
            format::count(rows)
        );
    }
    if grouping.other_values > 0 {
        summary.push_str(&format!(
            "; ({} other values) in {} rows not drawn",
            format::count(grouping.other_values),
            format::count(grouping.other_rows)
        ));
    }
    if missing > 0 {
        summary.push_str(&format!(
            "; {} missing shown as the bar (missing)",
            format::count(missing)
        ));
    }
    if top < asked && grouping.other_values > 0 {
        summary.push_str(&format!(
            "; only {top} bars fit in a picture {} pixels high",
            ctx.height
        ));
    }
    let most = &groups[0];
    summary.push_str(&format!(
        "; most frequent: {} ({} rows)",
        format::clip(&most.label, 40),
        format::count(most.len)
    ));
    if numeric && grouping.other_values > 0 {
        summary.push_str("; kind=histogram shows the distribution of all values");
    }

    let mut subtitle = if shown_values == distinct_values {
        format!("all {} distinct values", format::count(distinct_values))
    } else {
        format!(
            "top {} of {} distinct values",
            format::count(shown_values),
            format::count(distinct_values)
        )
    };
    if missing > 0 {
        subtitle.push_str(" and the missing ones");
    }
    if grouping.other_values > 0 {
        subtitle.push_str(&format!(
            " · {} other values ({} rows) not shown",
            format::count(grouping.other_values),
            format::count(grouping.other_rows)
        ));
    }

    let tallest = groups.iter().map(|g| g.len).max().unwrap_or(1);
    let x = Axis::new(
        Scale::Number,
        0.0,
        tallest as f64 * 1.12,
        0.0,
        canvas::x_ticks(ctx.width, Scale::Number),
    );
    let frame = Frame {
        y_grid: false,
        ..Frame::new(&title, &subtitle, "rows", "")
    };

    let bytes = canvas::draw_png(ctx.width, ctx.height, |root| {
        let sizes = Sizes::of(root);
        let (w, _) = root.dim_in_pixel();
        let label_style = canvas::style(sizes.text, &INK);
        // The largest bar goes on top, so slots are numbered from the bottom.
        let n = groups.len();
        let labels = (0..n)
            .map(|slot| {
                let text = format::clip(&groups[n - 1 - slot].label, 60);
                canvas::fit(root, &text, &label_style, w * 30 / 100)
            })
            .collect();
        let y = Axis::categorical(labels);
        let mut chart = canvas::chart(root, &frame, &x, &y)?;
        let bars = groups.iter().enumerate().map(|(i, g)| {
            let slot = (n - 1 - i) as f64;
            let color = if g.is_null { GREY_BAR } else { BLUE };
            Rectangle::new(
                [(0.0, slot + 0.15), (x.coord(g.len as f64), slot + 0.85)],
                color.filled(),
            )
        });
        chart.draw_series(bars)?;

        let (_, plot_h) = chart.plotting_area().dim_in_pixel();
        let count_size = (f64::from(plot_h) / n as f64 * 0.6).min(sizes.small);
        if count_size >= 8.0 {
            let count_style =
                canvas::style(count_size, &INK).pos(Pos::new(HPos::Left, VPos::Center));
            for (i, g) in groups.iter().enumerate() {
                let slot = (n - 1 - i) as f64;
                let (px, py) = chart.backend_coord(&(x.coord(g.len as f64), slot + 0.5));
                root.draw(&Text::new(
                    format::count(g.len),
                    (px + 4, py),
                    count_style.clone(),
                ))?;
            }
        }
        Ok(())
    })?;
    Ok((bytes, summary))
}
