//! The pixel buffer, the embedded font, the common chart frame (title,
//! subtitle, axes) and PNG encoding.

use std::sync::OnceLock;

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::cartesian::Cartesian2d;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::{
    BitMapBackend, ChartBuilder, ChartContext, DrawingArea, IntoDrawingArea, IntoFont, Text,
};
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, RGBColor, TextStyle, register_font};

use crate::PlotError;
use crate::axis::Axis;

/// DejaVu Sans, so that text renders the same everywhere without any system
/// font (see assets/DejaVu-LICENSE.txt).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

pub(crate) const INK: RGBColor = RGBColor(33, 33, 33);
pub(crate) const MUTED: RGBColor = RGBColor(105, 105, 105);
pub(crate) const GRID: RGBColor = RGBColor(225, 225, 225);
pub(crate) const BLUE: RGBColor = RGBColor(31, 119, 180);
pub(crate) const ORANGE: RGBColor = RGBColor(230, 120, 20);
pub(crate) const GREY_BAR: RGBColor = RGBColor(150, 150, 150);
pub(crate) const BACKGROUND: RGBColor = RGBColor(255, 255, 255);

pub(crate) type Root<'b> = DrawingArea<BitMapBackend<'b>, Shift>;
pub(crate) type Coord = Cartesian2d<Ticked, Ticked>;
pub(crate) type Chart<'b> = ChartContext<'static, BitMapBackend<'b>, Coord>;

fn ensure_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    if *REGISTERED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT).is_ok()) {
        Ok(())
    } else {
        Err(PlotError::Render(
            "the embedded font could not be loaded".into(),
        ))
    }
}

/// Font sizes scaled to the picture, so small thumbnails stay legible and
/// large ones are not dominated by tiny text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    pub text: f64,
    pub small: f64,
    pub title: f64,
}

impl Sizes {
    pub fn of(root: &Root) -> Sizes {
        let (w, h) = root.dim_in_pixel();
        Sizes::for_picture(w, h)
    }

    pub fn for_picture(w: u32, h: u32) -> Sizes {
        let text = (f64::from(w.min(h)) / 38.0).clamp(11.0, 18.0).round();
        Sizes {
            text,
            small: (text * 0.9).round(),
            title: (text * 1.45).round(),
        }
    }
}

pub(crate) fn style(size: f64, color: &'static RGBColor) -> TextStyle<'static> {
    TextStyle::from((FAMILY, size).into_font()).color(color)
}

pub(crate) fn text_width(root: &Root, text: &str, style: &TextStyle) -> u32 {
    root.estimate_text_size(text, style)
        .map(|(w, _)| w)
        .unwrap_or(0)
}

/// `text`, cut with an ellipsis so that it is at most `max_px` wide.
pub(crate) fn fit(root: &Root, text: &str, style: &TextStyle, max_px: u32) -> String {
    // Labels come from data: a newline or tab would draw as a box glyph.
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text_width(root, &text, style) <= max_px {
        return text;
    }
    let chars: Vec<char> = text.chars().collect();
    let (mut lo, mut hi) = (0usize, chars.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let candidate: String = chars[..mid].iter().collect::<String>() + "…";
        if text_width(root, &candidate, style) <= max_px {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    chars[..lo].iter().collect::<String>() + "…"
}

/// Draw into a white RGB buffer of the given size and encode it as PNG.
pub(crate) fn draw_png(
    width: u32,
    height: u32,
    draw: impl FnOnce(&Root) -> Result<(), PlotError>,
) -> Result<Vec<u8>, PlotError> {
    ensure_font()?;
    let mut buf = vec![255u8; width as usize * height as usize * 3];
    {
        let backend = BitMapBackend::with_buffer_and_format(&mut buf, (width, height))
            .map_err(|e| PlotError::Render(e.to_string()))?;
        let root = backend.into_drawing_area();
        root.fill(&BACKGROUND)?;
        draw(&root)?;
        root.present()?;
    }
    encode_png(&buf, width, height)
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, PlotError> {
    let mut out = Vec::with_capacity(rgb.len() / 8);
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Balanced);
    let fail = |e: png::EncodingError| PlotError::Render(format!("PNG encoding failed: {e}"));
    let mut writer = encoder.write_header().map_err(fail)?;
    writer.write_image_data(rgb).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(out)
}

/// A linear axis whose ticks are exactly the ones [`Axis`] chose; plotters'
/// own tick search is never run (it can loop for a very long time or assert
/// on extreme ranges).
#[derive(Debug, Clone)]
pub(crate) struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ticked {
    fn of(axis: &Axis) -> Ticked {
        Ticked {
            lo: axis.lo,
            hi: axis.hi,
            ticks: axis.ticks(),
        }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let share = (value - self.lo) / (self.hi - self.lo);
        let length = f64::from(limit.1) - f64::from(limit.0);
        let px = f64::from(limit.0) + length * share;
        // Far outside the picture is as good as anywhere outside it, and
        // keeps the backend's integer arithmetic away from overflow.
        if px.is_nan() {
            limit.0
        } else {
            px.round().clamp(-100_000.0, 100_000.0) as i32
        }
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Ticks and grid are the "bold" points; there are no light ones.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

/// What surrounds the plotting area.
pub(crate) struct Frame<'t> {
    pub title: &'t str,
    /// One muted line under the title: counts, what was skipped.
    pub subtitle: &'t str,
    pub x_desc: &'t str,
    pub y_desc: &'t str,
    /// Grid lines across the chart at the ticks of each axis.
    pub x_grid: bool,
    pub y_grid: bool,
    /// Extra room under the x axis (for rotated labels) instead of plotters'
    /// own tick labels there.
    pub x_label_room: Option<u32>,
    /// Extra room right of the plot, for a legend.
    pub right_room: u32,
}

impl Frame<'_> {
    pub fn new<'t>(
        title: &'t str,
        subtitle: &'t str,
        x_desc: &'t str,
        y_desc: &'t str,
    ) -> Frame<'t> {
        Frame {
            title,
            subtitle,
            x_desc,
            y_desc,
            x_grid: true,
            y_grid: true,
            x_label_room: None,
            right_room: 0,
        }
    }
}

/// The room the title and subtitle take at the top.
fn header_height(sizes: &Sizes) -> u32 {
    (sizes.title * 1.6 + sizes.small * 1.5 + 8.0) as u32
}

fn draw_header(root: &Root, frame: &Frame, sizes: &Sizes) -> Result<(), PlotError> {
    let (w, _) = root.dim_in_pixel();
    let max = w.saturating_sub(24);
    let title_style = style(sizes.title, &INK).pos(Pos::new(HPos::Center, VPos::Top));
    let title = fit(root, frame.title, &title_style, max);
    root.draw(&Text::new(title, ((w / 2) as i32, 8), title_style))?;
    if !frame.subtitle.is_empty() {
        let sub_style = style(sizes.small, &MUTED).pos(Pos::new(HPos::Center, VPos::Top));
        let sub = fit(root, frame.subtitle, &sub_style, max);
        let y = (8.0 + sizes.title * 1.45) as i32;
        root.draw(&Text::new(sub, ((w / 2) as i32, y), sub_style))?;
    }
    Ok(())
}

/// Title, axes, ticks and grid; returns the chart to draw the data on.
pub(crate) fn chart<'b>(
    root: &Root<'b>,
    frame: &Frame,
    x: &Axis,
    y: &Axis,
) -> Result<Chart<'b>, PlotError> {
    let sizes = Sizes::of(root);
    draw_header(root, frame, &sizes)?;
    let (w, h) = root.dim_in_pixel();
    let label = style(sizes.text, &INK);
    let desc = style(sizes.text, &INK);

    let widest_y = y
        .labels()
        .iter()
        .map(|l| text_width(root, l, &label))
        .max()
        .unwrap_or(0);
    let desc_h = (sizes.text * 1.4) as u32;
    let y_area = (widest_y
        + 14
        + if frame.y_desc.is_empty() {
            4
        } else {
            desc_h + 6
        })
    .min(w * 45 / 100);
    let x_area = match frame.x_label_room {
        Some(room) => {
            room + if frame.x_desc.is_empty() {
                4
            } else {
                desc_h + 6
            }
        }
        None => {
            (sizes.text * 1.3) as u32
                + 12
                + if frame.x_desc.is_empty() {
                    4
                } else {
                    desc_h + 4
                }
        }
    }
    .min(h * 45 / 100);

    let top = header_height(&sizes);
    let body = root.margin(top, 6, 6, 22 + frame.right_room);
    let mut chart = ChartBuilder::on(&body)
        .x_label_area_size(x_area)
        .y_label_area_size(y_area)
        .build_cartesian_2d(Ticked::of(x), Ticked::of(y))?;

    let (plot_w, plot_h) = chart.plotting_area().dim_in_pixel();
    let x_desc = fit(root, frame.x_desc, &desc, plot_w);
    let y_desc = fit(root, frame.y_desc, &desc, plot_h);
    let x_fmt = |v: &f64| x.label_at(*v);
    let y_fmt = |v: &f64| y.label_at(*v);
    let no_label = |_: &f64| String::new();
    let mut mesh = chart.configure_mesh();
    mesh.label_style(label.clone())
        .axis_desc_style(desc)
        .axis_style(MUTED)
        .bold_line_style(GRID)
        .y_label_formatter(&y_fmt)
        .x_desc(x_desc)
        .y_desc(y_desc);
    if frame.x_label_room.is_some() {
        mesh.x_label_formatter(&no_label);
    } else {
        mesh.x_label_formatter(&x_fmt);
    }
    if !frame.x_grid {
        mesh.disable_x_mesh();
    }
    if !frame.y_grid {
        mesh.disable_y_mesh();
    }
    mesh.draw()?;
    Ok(chart)
}

/// A muted sentence in the middle of the plotting area, for charts with
/// nothing (or little) to show.
pub(crate) fn note(root: &Root, chart: &Chart, text: &str) -> Result<(), PlotError> {
    let sizes = Sizes::of(root);
    let area = chart.plotting_area();
    let (xr, yr) = (area.get_x_range(), area.get_y_range());
    let (px, py) =
        chart.backend_coord(&(xr.start / 2.0 + xr.end / 2.0, yr.start / 2.0 + yr.end / 2.0));
    let (plot_w, _) = area.dim_in_pixel();
    let s = style(sizes.text * 1.1, &MUTED).pos(Pos::new(HPos::Center, VPos::Center));
    let text = fit(root, text, &s, plot_w.saturating_sub(16));
    root.draw(&Text::new(text, (px, py), s))?;
    Ok(())
}

/// About how many ticks fit along the x axis of a picture this wide.
pub(crate) fn x_ticks(width: u32, scale: crate::axis::Scale) -> usize {
    let per_tick = match scale {
        crate::axis::Scale::Number => 85,
        crate::axis::Scale::Time | crate::axis::Scale::Date => 115,
    };
    (width.saturating_sub(140) / per_tick) as usize
}

/// About how many ticks fit along the y axis of a picture this tall.
pub(crate) fn y_ticks(height: u32) -> usize {
    (height.saturating_sub(150) / 45) as usize
}

/// Axes with no ticks and a note in the middle: for charts with nothing to
/// draw, which still show what was asked for.
pub(crate) fn empty(root: &Root, frame: &Frame, text: &str) -> Result<(), PlotError> {
    let blank = Axis::custom(0.0, 1.0, Vec::new());
    let chart = chart(root, frame, &blank, &blank)?;
    note(root, &chart, text)
}
