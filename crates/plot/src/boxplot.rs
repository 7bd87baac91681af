use plotters::prelude::{Circle, PathElement, Rectangle};
use plotters::style::Color;

use crate::axis::Axis;
use crate::canvas::{self, BLUE, Frame, INK, ORANGE, Sizes};
use crate::data::{self, Accept, Tally, Values};
use crate::{ChartKind, Ctx, MAX_BOXES, PlotError, format};

/// Outliers drawn per box; the rest are counted in the summary. They are
/// picked evenly from the sorted outliers, so the most extreme always show.
const MAX_OUTLIERS_DRAWN: usize = 200;

/// Five-number summary with Tukey's whiskers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BoxStats {
    pub n: usize,
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    /// The most extreme values within 1.5 IQR of the box.
    pub whisker_lo: f64,
    pub whisker_hi: f64,
    pub outliers: usize,
    /// At most `MAX_OUTLIERS_DRAWN`, including the smallest and largest.
    pub drawn_outliers: Vec<f64>,
    pub min: f64,
    pub max: f64,
}

/// `sorted` must be sorted ascending, finite and non-empty.
pub(crate) fn box_stats(sorted: &[f64]) -> BoxStats {
    let n = sorted.len();
    let q1 = quantile(sorted, 0.25);
    let median = quantile(sorted, 0.5);
    let q3 = quantile(sorted, 0.75);
    // Halved so that the fences of huge values stay finite.
    let half_iqr = q3 / 2.0 - q1 / 2.0;
    let lo_fence = q1 - 3.0 * half_iqr;
    let hi_fence = q3 + 3.0 * half_iqr;
    let inside_lo = sorted.partition_point(|v| *v < lo_fence);
    let inside_hi = sorted.partition_point(|v| *v <= hi_fence);
    let (whisker_lo, whisker_hi) = if inside_lo < inside_hi {
        (sorted[inside_lo], sorted[inside_hi - 1])
    } else {
        (q1, q3)
    };
    let outliers: Vec<f64> = sorted[..inside_lo]
        .iter()
        .chain(&sorted[inside_hi..])
        .copied()
        .collect();
    let drawn_outliers = spread(&outliers, MAX_OUTLIERS_DRAWN);
    BoxStats {
        n,
        q1,
        median,
        q3,
        whisker_lo,
        whisker_hi,
        outliers: outliers.len(),
        drawn_outliers,
        min: sorted[0],
        max: sorted[n - 1],
    }
}

/// Linear interpolation between the closest ranks (numpy's default).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let h = p * (sorted.len() - 1) as f64;
    let (i, frac) = (h.floor() as usize, h.fract());
    match sorted.get(i + 1) {
        Some(&next) if frac > 0.0 => {
            let here = sorted[i];
            let gap = next - here;
            if gap.is_finite() {
                here + frac * gap
            } else {
                here * (1.0 - frac) + next * frac
            }
        }
        _ => sorted[i],
    }
}

/// At most `max` items, evenly spaced, always including the first and last.
fn spread(items: &[f64], max: usize) -> Vec<f64> {
    if items.len() <= max {
        return items.to_vec();
    }
    let last = items.len() - 1;
    (0..max).map(|k| items[k * last / (max - 1)]).collect()
}

struct Drawn {
    label: String,
    rows: usize,
    tally: Tally,
    stats: Option<BoxStats>,
}

pub(crate) fn draw(ctx: &Ctx) -> Result<(Vec<u8>, String), PlotError> {
    let name = ctx.need("x", "the numeric column whose distribution to summarise")?;
    let values = Values::read(ctx.df, name, ChartKind::Box, "x", Accept::NumberOrTime)?;
    let by = ctx.spec.by.as_deref();
    let title = ctx.title(|| match by {
        Some(by) => format!("Distribution of {name} by {by}"),
        None => format!("Distribution of {name}"),
    });

    let collect = |rows: &mut dyn Iterator<Item = Option<f64>>| {
        let mut tally = Tally::default();
        let mut finite = Vec::new();
        for v in rows {
            tally.add(v);
            if let Some(v) = v.filter(|v| v.is_finite()) {
                finite.push(v);
            }
        }
        finite.sort_by(f64::total_cmp);
        let stats = (!finite.is_empty()).then(|| box_stats(&finite));
        (tally, stats)
    };

    let (boxes, left_out) = match by {
        None => {
            let (tally, stats) = collect(&mut values.iter());
            let drawn = Drawn {
                label: name.to_string(),
                rows: values.len(),
                tally,
                stats,
            };
            (vec![drawn], None)
        }
        Some(by) => {
            let grouping = data::top_groups(ctx.df, by, MAX_BOXES, true, true)?;
            let mut boxes = Vec::with_capacity(grouping.groups.len());
            for g in &grouping.groups {
                let (tally, stats) = collect(&mut g.rows.iter().map(|&r| values.get(r as usize)));
                boxes.push(Drawn {
                    label: g.label.clone(),
                    rows: g.len,
                    tally,
                    stats,
                });
            }
            let left_out = (grouping.other_values > 0).then(|| {
                format!(
                    "{} smaller groups ({} rows) left out",
                    format::count(grouping.other_values),
                    format::count(grouping.other_rows)
                )
            });
            (boxes, left_out)
        }
    };

    let mut total = Tally::default();
    for b in &boxes {
        total.null += b.tally.null;
        total.nan += b.tally.nan;
        total.infinite += b.tally.infinite;
        total.finite += b.tally.finite;
    }
    let skipped = total.skipped();
    let with_values: Vec<&BoxStats> = boxes.iter().filter_map(|b| b.stats.as_ref()).collect();
    let x_desc = by.map(str::to_string).unwrap_or_default();
    let y_desc = values.kind.axis_name(name);
    let show = |v: f64| values.kind.show(v);

    if with_values.is_empty() {
        let why = if values.len() == 0 {
            "the table has no rows".to_string()
        } else {
            format!("`{name}` has no finite values")
        };
        let summary = format!("Box plot of {name}: nothing drawn, {why}{skipped}");
        let frame = Frame::new(&title, "", &x_desc, &y_desc);
        let bytes = canvas::draw_png(ctx.width, ctx.height, |root| {
            canvas::empty(root, &frame, &format!("No values to draw: {why}"))
        })?;
        return Ok((bytes, summary));
    }

    let outliers: usize = with_values.iter().map(|s| s.outliers).sum();
    let drawn_outliers: usize = with_values.iter().map(|s| s.drawn_outliers.len()).sum();
    let outlier_phrase = match (outliers, drawn_outliers) {
        (0, _) => "no outliers beyond 1.5 IQR".to_string(),
        (o, d) if o == d => format!("{} outliers beyond 1.5 IQR", format::count(o)),
        (o, d) => format!(
            "{} outliers beyond 1.5 IQR ({} of them drawn)",
            format::count(o),
            format::count(d)
        ),
    };
    let mut summary = match (by, with_values.as_slice()) {
        (None, [s]) => format!(
            "Box plot of {name}: {} values, median {}, quartiles {} and {}, whiskers from {} to {}; {outlier_phrase}",
            format::count(s.n),
            show(s.median),
            show(s.q1),
            show(s.q3),
            show(s.whisker_lo),
            show(s.whisker_hi)
        ),
        _ => {
            let medians = with_values.iter().map(|s| s.median);
            let lo = medians.clone().fold(f64::INFINITY, f64::min);
            let hi = medians.fold(f64::NEG_INFINITY, f64::max);
            let covered: usize = boxes.iter().map(|b| b.rows).sum();
            format!(
                "Box plot of {name} by {}: {} groups covering {} of {} rows, medians from {} to {}; {outlier_phrase}",
                by.unwrap_or_default(),
                format::count(boxes.len()),
                format::count(covered),
                format::count(ctx.df.height()),
                show(lo),
                show(hi)
            )
        }
    };
    if let Some(left_out) = &left_out {
        summary.push_str(&format!("; {left_out}"));
    }
    let empty_groups = boxes.iter().filter(|b| b.stats.is_none()).count();
    if empty_groups > 0 {
        summary.push_str(&format!(
            "; {} groups have no values to draw",
            format::count(empty_groups)
        ));
    }
    summary.push_str(&skipped);

    let subtitle = {
        let mut parts = vec![
            format!("{} values", format::count(total.finite)),
            "box: quartiles, line: median, whiskers: 1.5 IQR".to_string(),
        ];
        parts.extend(left_out.clone());
        parts.join(" · ")
    };

    let lo = with_values
        .iter()
        .map(|s| s.min)
        .fold(f64::INFINITY, f64::min);
    let hi = with_values
        .iter()
        .map(|s| s.max)
        .fold(f64::NEG_INFINITY, f64::max);
    let y = Axis::new(
        values.kind.scale(),
        lo,
        hi,
        0.05,
        canvas::y_ticks(ctx.height),
    );
    let frame = Frame {
        x_grid: false,
        ..Frame::new(&title, &subtitle, &x_desc, &y_desc)
    };

    let bytes = canvas::draw_png(ctx.width, ctx.height, |root| {
        let sizes = Sizes::of(root);
        let (w, _) = root.dim_in_pixel();
        let n = boxes.len();
        let slot_px = (w.saturating_sub(160) / n as u32).max(10);
        let label_style = canvas::style(sizes.text, &INK);
        let labels = boxes
            .iter()
            .map(|b| canvas::fit(root, &format::clip(&b.label, 60), &label_style, slot_px - 6))
            .collect();
        let x = Axis::categorical(labels);
        let mut chart = canvas::chart(root, &frame, &x, &y)?;
        // Wide slots (one or two boxes) would give slabs; 120 px is plenty.
        let (plot_w, _) = chart.plotting_area().dim_in_pixel();
        let slot = f64::from(plot_w.max(1)) / n as f64;
        let half = (60.0 / slot).min(0.3);
        let cap = half * 0.4;
        for (i, b) in boxes.iter().enumerate() {
            let Some(s) = &b.stats else {
                continue;
            };
            let c = i as f64 + 0.5;
            let (left, right) = (c - half, c + half);
            let line = INK.stroke_width(1);
            chart.draw_series([
                PathElement::new(vec![(c, y.coord(s.q3)), (c, y.coord(s.whisker_hi))], line),
                PathElement::new(vec![(c, y.coord(s.q1)), (c, y.coord(s.whisker_lo))], line),
                PathElement::new(
                    vec![
                        (c - cap, y.coord(s.whisker_hi)),
                        (c + cap, y.coord(s.whisker_hi)),
                    ],
                    line,
                ),
                PathElement::new(
                    vec![
                        (c - cap, y.coord(s.whisker_lo)),
                        (c + cap, y.coord(s.whisker_lo)),
                    ],
                    line,
                ),
            ])?;
            let corners = [(left, y.coord(s.q1)), (right, y.coord(s.q3))];
            chart.draw_series([
                Rectangle::new(corners, BLUE.mix(0.35).filled()),
                Rectangle::new(corners, BLUE.stroke_width(1)),
            ])?;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(left, y.coord(s.median)), (right, y.coord(s.median))],
                ORANGE.stroke_width(3),
            )))?;
            chart.draw_series(
                s.drawn_outliers
                    .iter()
                    .map(|v| Circle::new((c, y.coord(*v)), 3, INK.mix(0.6).stroke_width(1))),
            )?;
        }
        Ok(())
    })?;
    Ok((bytes, summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quartiles_interpolate_linearly() {
        let s = box_stats(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!((s.q1, s.median, s.q3), (1.75, 2.5, 3.25));
        assert_eq!((s.whisker_lo, s.whisker_hi, s.outliers), (1.0, 4.0, 0));

        let mut v: Vec<f64> = (1..=9).map(f64::from).collect();
        v.push(100.0);
        let s = box_stats(&v);
        assert_eq!(s.median, 5.5);
        assert_eq!(s.q1, 3.25);
        assert_eq!(s.q3, 7.75);
        assert_eq!(s.whisker_hi, 9.0);
        assert_eq!(s.outliers, 1);
        assert_eq!(s.drawn_outliers, vec![100.0]);

        let s = box_stats(&[7.0]);
        assert_eq!(
            (s.q1, s.median, s.q3, s.whisker_lo, s.whisker_hi),
            (7.0, 7.0, 7.0, 7.0, 7.0)
        );

        let s = box_stats(&[-f64::MAX, f64::MAX]);
        assert!(s.median.is_finite() && s.q1.is_finite() && s.q3.is_finite());
    }

    #[test]
    fn outliers_drawn_are_bounded_and_keep_the_extremes() {
        let mut v: Vec<f64> = (0..10_000)
            .map(|i| 100.0 + f64::from(i) / 10_000.0)
            .collect();
        v.extend((0..300).map(|i| -1000.0 + f64::from(i)));
        v.extend((0..300).map(|i| 5000.0 + f64::from(i)));
        v.sort_by(f64::total_cmp);
        let s = box_stats(&v);
        assert_eq!(s.outliers, 600);
        assert_eq!(s.drawn_outliers.len(), MAX_OUTLIERS_DRAWN);
        assert_eq!(s.drawn_outliers.first(), Some(&-1000.0));
        assert_eq!(s.drawn_outliers.last(), Some(&5299.0));
        assert!(s.whisker_lo >= 100.0 && s.whisker_hi <= 101.0);
    }
}
