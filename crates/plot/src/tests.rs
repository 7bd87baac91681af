//! Renders every kind of chart from realistic tables and checks the pictures
//! themselves: a valid PNG of the asked size, with the data actually drawn.

use std::io::Cursor;

use polars::prelude::*;

use crate::{ChartKind, PlotError, PlotSpec, Png, render};

/// A deterministic stream of numbers in [0, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

const CITIES: [&str; 12] = [
    "Lisbon", "Porto", "Madrid", "Paris", "Berlin", "Zürich", "Kraków", "Oslo", "Athens", "Dublin",
    "Vienna", "Rome",
];

/// 5,000 sales: prices with some nulls, quantities, skewed cities with some
/// nulls, dates over about a year, timestamps, and awkward columns.
fn sales() -> DataFrame {
    let n = 5_000;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut price = Vec::with_capacity(n);
    let mut qty = Vec::with_capacity(n);
    let mut city = Vec::with_capacity(n);
    for i in 0..n {
        let base = (rng.next() * 3.0).exp() * 20.0;
        price.push((i % 37 != 0).then_some((base * 100.0).round() / 100.0));
        qty.push(1 + (rng.next() * rng.next() * 20.0) as i64);
        let c = (rng.next() * rng.next() * CITIES.len() as f64) as usize;
        city.push((i % 53 != 0).then_some(CITIES[c]));
    }
    let days: Vec<i32> = (0..n as i32).map(|i| 18_628 + i / 14).collect();
    let millis: Vec<i64> = (0..n as i64)
        .map(|i| 1_609_459_200_000 + i * 97_000)
        .collect();
    let mut df = df!(
        "price" => price,
        "qty" => qty,
        "city" => city,
        "all_null" => vec![None::<f64>; n],
        "größe 📏" => (0..n).map(|i| (i % 100) as f64 / 10.0).collect::<Vec<_>>(),
        "flag" => (0..n).map(|i| i % 3 == 0).collect::<Vec<_>>(),
    )
    .unwrap();
    let day = Series::new("day".into(), days)
        .cast(&DataType::Date)
        .unwrap();
    let ts = Series::new("ts".into(), millis)
        .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
        .unwrap();
    df.with_column(day.into()).unwrap();
    df.with_column(ts.into()).unwrap();
    df
}

fn spec(kind: ChartKind, x: Option<&str>, y: Option<&str>) -> PlotSpec {
    PlotSpec {
        x: x.map(str::to_string),
        y: y.map(str::to_string),
        ..PlotSpec::new(kind)
    }
}

struct Decoded {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

fn decode(bytes: &[u8]) -> Decoded {
    let decoder = png::Decoder::new(Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut rgb = vec![0; reader.output_buffer_size().expect("a sane size")];
    let info = reader.next_frame(&mut rgb).expect("PNG image data");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    rgb.truncate(info.buffer_size());
    Decoded {
        width: info.width,
        height: info.height,
        rgb,
    }
}

/// Why the picture does not look drawn, if it does not.
fn blank_reason(img: &Decoded) -> Option<String> {
    let pixels = img.rgb.len() / 3;
    let luma: Vec<f64> = img
        .rgb
        .chunks_exact(3)
        .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
        .collect();
    let mean = luma.iter().sum::<f64>() / pixels as f64;
    let variance = luma.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / pixels as f64;
    let changed = img
        .rgb
        .chunks_exact(3)
        .filter(|p| p != &[255, 255, 255])
        .count();
    if variance < 50.0 {
        return Some(format!("pixel variance {variance:.1} is too low"));
    }
    if changed * 100 < pixels {
        return Some(format!(
            "only {changed} of {pixels} pixels differ from the background"
        ));
    }
    None
}

/// Pixels of the data colours (saturated blue or red-orange), as opposed to
/// the greys of text, axes and grid.
fn data_pixels(img: &Decoded) -> usize {
    img.rgb
        .chunks_exact(3)
        .filter(|p| {
            let (r, b) = (i32::from(p[0]), i32::from(p[2]));
            let blue = b - r > 40;
            let warm = r - b > 60;
            blue || warm
        })
        .count()
}

/// Asserts a real chart of the asked size with data on it.
fn check_chart(png: &Png, spec: &PlotSpec, min_data_share: f64) -> Decoded {
    assert_eq!(&png.bytes[..8], b"\x89PNG\r\n\x1a\n");
    let img = decode(&png.bytes);
    assert_eq!((img.width, img.height), (png.width, png.height));
    assert_eq!(img.width, spec.width.unwrap_or(800));
    assert_eq!(img.height, spec.height.unwrap_or(500));
    assert_eq!(img.rgb.len(), img.width as usize * img.height as usize * 3);
    dump(png, "chart", spec);
    if let Some(reason) = blank_reason(&img) {
        panic!(
            "{:?} looks blank: {reason}; summary: {}",
            spec.kind, png.summary
        );
    }
    // Data must stay inside the chart: none over the title.
    let title_rows = Decoded {
        width: img.width,
        height: 40,
        rgb: img.rgb[..img.width as usize * 40 * 3].to_vec(),
    };
    assert_eq!(
        data_pixels(&title_rows),
        0,
        "{:?}: data drawn over the title; summary: {}",
        spec.kind,
        png.summary
    );
    let share = data_pixels(&img) as f64 / (img.width * img.height) as f64;
    assert!(
        share >= min_data_share,
        "{:?}: only {:.3}% of pixels are data colours; summary: {}",
        spec.kind,
        share * 100.0,
        png.summary
    );
    assert!(!png.summary.is_empty() && !png.summary.contains('\n'));
    img
}

/// Saves the chart when DFMCP_PLOT_DUMP names a folder, to look at.
fn dump(png: &Png, prefix: &str, spec: &PlotSpec) {
    if let Ok(dir) = std::env::var("DFMCP_PLOT_DUMP") {
        let name = format!(
            "{prefix}-{}-{}-{}-{}x{}.png",
            spec.kind,
            spec.x.as_deref().unwrap_or("_"),
            spec.y.as_deref().or(spec.by.as_deref()).unwrap_or("_"),
            png.width,
            png.height
        );
        let _ = std::fs::write(std::path::Path::new(&dir).join(name), &png.bytes);
    }
}

fn white_png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().unwrap();
    w.write_image_data(&vec![255; (width * height * 3) as usize])
        .unwrap();
    w.finish().unwrap();
    out
}

#[test]
fn the_checks_reject_a_blank_picture() {
    let img = decode(&white_png(800, 500));
    assert!(blank_reason(&img).is_some());
    assert_eq!(data_pixels(&img), 0);
}

#[test]
fn every_kind_draws_its_data() {
    let df = sales();
    let by_city = PlotSpec {
        by: Some("city".into()),
        ..spec(ChartKind::Box, Some("price"), None)
    };
    let cases = [
        (spec(ChartKind::Histogram, Some("price"), None), 0.05),
        (spec(ChartKind::Histogram, Some("day"), None), 0.05),
        (spec(ChartKind::Histogram, Some("qty"), None), 0.05),
        (spec(ChartKind::Bar, Some("city"), None), 0.05),
        (spec(ChartKind::Bar, Some("flag"), None), 0.05),
        (spec(ChartKind::Scatter, Some("qty"), Some("price")), 0.01),
        (spec(ChartKind::Line, Some("day"), Some("price")), 0.003),
        (spec(ChartKind::Line, Some("ts"), Some("qty")), 0.003),
        (spec(ChartKind::Box, Some("price"), None), 0.01),
        (by_city, 0.01),
        (spec(ChartKind::Missing, None, None), 0.01),
    ];
    for (spec, share) in cases {
        let png = render(&df, &spec).unwrap_or_else(|e| panic!("{spec:?}: {e}"));
        check_chart(&png, &spec, share);
    }
}

#[test]
fn summaries_say_what_was_drawn_and_left_out() {
    let df = sales();
    let nulls = 5_000usize.div_ceil(37);

    let h = render(&df, &spec(ChartKind::Histogram, Some("price"), None)).unwrap();
    let drawn = 5_000 - nulls;
    assert!(
        h.summary.starts_with(&format!(
            "Histogram of price: {} values in 20 bins from ",
            crate::format::count(drawn)
        )),
        "{}",
        h.summary
    );
    assert!(
        h.summary.ends_with(&format!("; {nulls} missing not drawn")),
        "{}",
        h.summary
    );

    let b = render(&df, &spec(ChartKind::Bar, Some("city"), None)).unwrap();
    assert!(b.summary.contains("(missing)"), "{}", b.summary);
    assert!(
        b.summary.contains("of 12 distinct values") || b.summary.contains("all 12 distinct"),
        "{}",
        b.summary
    );

    let top3 = PlotSpec {
        top: Some(3),
        ..spec(ChartKind::Bar, Some("city"), None)
    };
    let b = render(&df, &top3).unwrap();
    assert!(b.summary.contains("(9 other values)"), "{}", b.summary);

    let m = render(&df, &spec(ChartKind::Missing, None, None)).unwrap();
    assert!(m.summary.contains("all_null 100%"), "{}", m.summary);
    assert!(m.summary.contains("price 2.7%"), "{}", m.summary);

    let bx = render(&df, &spec(ChartKind::Box, Some("price"), None)).unwrap();
    assert!(bx.summary.contains("median"), "{}", bx.summary);

    let ignored = PlotSpec {
        bins: Some(5),
        ..spec(ChartKind::Scatter, Some("qty"), Some("price"))
    };
    let s = render(&df, &ignored).unwrap();
    assert!(
        s.summary.ends_with("(bins not used by kind=scatter)"),
        "{}",
        s.summary
    );
}

#[test]
fn big_tables_are_sampled_and_bucketed() {
    let n = 100_000;
    let df = df!(
        "x" => (0..n).map(f64::from).collect::<Vec<_>>(),
        "y" => (0..n).map(|i| (f64::from(i) / 1000.0).sin()).collect::<Vec<_>>(),
    )
    .unwrap();
    let s = spec(ChartKind::Scatter, Some("x"), Some("y"));
    let png = render(&df, &s).unwrap();
    assert!(
        png.summary
            .contains("20,000 of 100,000 points drawn (every 5th point)"),
        "{}",
        png.summary
    );
    check_chart(&png, &s, 0.01);

    let l = spec(ChartKind::Line, Some("x"), Some("y"));
    let png = render(&df, &l).unwrap();
    assert!(
        png.summary.contains("averaged into 1,000 buckets"),
        "{}",
        png.summary
    );
    check_chart(&png, &l, 0.003);
}

#[test]
fn wide_tables_show_the_first_columns_of_the_missing_map() {
    let rows = 1_000;
    let columns: Vec<Column> = (0..75)
        .map(|c| {
            let values: Vec<Option<i64>> = (0..rows)
                .map(|r| ((r * (c + 1)) % 97 != 0 && (c != 3 || r < 600)).then_some(r))
                .collect();
            Column::new(format!("column_{c}").into(), values)
        })
        .collect();
    let df = DataFrame::new_infer_height(columns).unwrap();
    for (w, h) in [(800, 500), (200, 200)] {
        let s = PlotSpec {
            width: Some(w),
            height: Some(h),
            ..spec(ChartKind::Missing, None, None)
        };
        let png = render(&df, &s).unwrap();
        check_chart(&png, &s, 0.002);
        assert!(
            png.summary
                .contains("15 more columns not shown (only the first 60 are drawn)"),
            "{}",
            png.summary
        );
        assert!(png.summary.contains("column_3 40.7%"), "{}", png.summary);
    }
}

#[test]
fn short_pictures_draw_fewer_bars_and_say_so() {
    let df = sales();
    let s = PlotSpec {
        width: Some(300),
        height: Some(200),
        ..spec(ChartKind::Bar, Some("price"), None)
    };
    let png = render(&df, &s).unwrap();
    check_chart(&png, &s, 0.002);
    assert!(
        png.summary
            .contains("bars fit in a picture 200 pixels high"),
        "{}",
        png.summary
    );
}

#[test]
fn sizes_are_exact_and_bounded() {
    let df = sales();
    for (w, h) in [(200, 200), (2000, 200), (200, 2000), (1234, 567)] {
        for kind in [ChartKind::Histogram, ChartKind::Bar, ChartKind::Missing] {
            let s = PlotSpec {
                width: Some(w),
                height: Some(h),
                ..spec(kind, (kind != ChartKind::Missing).then_some("price"), None)
            };
            let png = render(&df, &s).unwrap();
            dump(&png, "size", &s);
            let img = decode(&png.bytes);
            assert_eq!((img.width, img.height), (w, h));
            assert!(blank_reason(&img).is_none(), "{kind:?} {w}x{h}");
        }
    }
    for (field, w, h) in [
        ("width", 199, 500),
        ("width", 2001, 500),
        ("height", 800, 0),
    ] {
        let s = PlotSpec {
            width: Some(w),
            height: Some(h),
            ..spec(ChartKind::Histogram, Some("price"), None)
        };
        let err = render(&df, &s).unwrap_err();
        assert!(matches!(err, PlotError::OutOfRange { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(field) && msg.contains("from 200 to 2000"),
            "{msg}"
        );
    }
    let bins = PlotSpec {
        bins: Some(0),
        ..spec(ChartKind::Histogram, Some("price"), None)
    };
    assert!(
        render(&df, &bins)
            .unwrap_err()
            .to_string()
            .contains("`bins` = 0 is out of range: use a value from 1 to 200")
    );
    let top = PlotSpec {
        top: Some(51),
        ..spec(ChartKind::Bar, Some("city"), None)
    };
    assert!(
        render(&df, &top)
            .unwrap_err()
            .to_string()
            .contains("from 1 to 50")
    );
}

#[test]
fn errors_say_what_to_do() {
    let df = sales();
    let err = render(&df, &spec(ChartKind::Histogram, Some("prices"), None)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("column `prices` not found; did you mean `price`?"),
        "{msg}"
    );
    assert!(
        msg.contains("the columns are: price, qty, city, all_null"),
        "{msg}"
    );

    let msg = render(&df, &spec(ChartKind::Histogram, Some("city"), None))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("`city` is string"), "{msg}");
    assert!(msg.contains("use kind=bar for value counts"), "{msg}");

    let msg = render(&df, &spec(ChartKind::Scatter, Some("qty"), Some("city")))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("`y`") && msg.contains("`city` is string"),
        "{msg}"
    );

    let msg = render(&df, &spec(ChartKind::Line, Some("day"), Some("ts")))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("needs a numeric column as `y`"), "{msg}");

    let msg = render(&df, &spec(ChartKind::Box, Some("city"), None))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("pass it as `by`"), "{msg}");

    let msg = render(&df, &spec(ChartKind::Scatter, Some("qty"), None))
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("kind=scatter needs `y`"), "{msg}");

    let msg = render(&df, &spec(ChartKind::Box, Some("price"), Some("city")))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("does not use `y`") && msg.contains("`by`"),
        "{msg}"
    );

    let by_unknown = PlotSpec {
        by: Some("town".into()),
        ..spec(ChartKind::Box, Some("price"), None)
    };
    let msg = render(&df, &by_unknown).unwrap_err().to_string();
    assert!(msg.starts_with("column `town` not found"), "{msg}");
}

/// Every kind on tables with nothing, or very little, to draw: an honest
/// chart or an error, never a panic.
#[test]
fn edge_tables_do_not_panic() {
    let n = 300;
    let mut edge = df!(
        "all_null" => vec![None::<f64>; n],
        "one_value" => vec![42.0; n],
        "nan_inf" => (0..n).map(|i| match i % 4 { 0 => f64::NAN, 1 => f64::INFINITY, 2 => f64::NEG_INFINITY, _ => i as f64 }).collect::<Vec<_>>(),
        "huge" => (0..n).map(|i| if i % 2 == 0 { f64::MAX } else { -f64::MAX }).collect::<Vec<_>>(),
        "tiny" => (0..n).map(|i| i as f64 * 1e-300).collect::<Vec<_>>(),
        "big_int" => (0..n).map(|i| u64::MAX - i as u64).collect::<Vec<_>>(),
        "名前" => (0..n).map(|i| format!("値{}", i % 7)).collect::<Vec<_>>(),
        "text_nulls" => vec![None::<&str>; n],
    )
    .unwrap();
    let null_typed = Series::new_null("null_typed".into(), n);
    edge.with_column(null_typed.into()).unwrap();
    let empty = edge.head(Some(0));
    let one_row = edge.head(Some(1));
    let no_columns = DataFrame::empty();

    let numeric = [
        "all_null",
        "one_value",
        "nan_inf",
        "huge",
        "tiny",
        "big_int",
    ];
    let mut specs = vec![spec(ChartKind::Missing, None, None)];
    for x in numeric {
        specs.push(spec(ChartKind::Histogram, Some(x), None));
        specs.push(spec(ChartKind::Box, Some(x), None));
        specs.push(PlotSpec {
            by: Some("名前".into()),
            ..spec(ChartKind::Box, Some(x), None)
        });
        specs.push(spec(ChartKind::Bar, Some(x), None));
        for y in numeric {
            specs.push(spec(ChartKind::Scatter, Some(x), Some(y)));
            specs.push(spec(ChartKind::Line, Some(x), Some(y)));
        }
    }
    for x in ["名前", "text_nulls", "null_typed"] {
        specs.push(spec(ChartKind::Bar, Some(x), None));
        specs.push(spec(ChartKind::Histogram, Some(x), None));
    }

    for df in [&edge, &empty, &one_row] {
        for s in &specs {
            match render(df, s) {
                Ok(png) => {
                    let img = decode(&png.bytes);
                    assert_eq!((img.width, img.height), (800, 500));
                    // A chart with a note and no data is sparse, but never
                    // an empty picture: title, axes and the note are there.
                    let changed = img
                        .rgb
                        .chunks_exact(3)
                        .filter(|p| p != &[255, 255, 255])
                        .count();
                    assert!(
                        changed * 500 > img.rgb.len() / 3,
                        "{s:?} on {} rows: only {changed} pixels drawn; {}",
                        df.height(),
                        png.summary
                    );
                    assert!(!png.summary.is_empty());
                    dump(&png, &format!("edge-{}rows", df.height()), s);
                }
                Err(e) => {
                    let msg = e.to_string();
                    assert!(
                        matches!(e, PlotError::WrongType { .. }),
                        "{s:?} on {} rows: unexpected error {msg}",
                        df.height()
                    );
                }
            }
        }
    }
    let png = render(&no_columns, &spec(ChartKind::Missing, None, None)).unwrap();
    assert!(png.summary.contains("no columns"), "{}", png.summary);
    let err = render(&no_columns, &spec(ChartKind::Bar, Some("a"), None)).unwrap_err();
    assert!(
        err.to_string().contains("the table has no columns"),
        "{err}"
    );

    let h = render(&edge, &spec(ChartKind::Histogram, Some("all_null"), None)).unwrap();
    assert!(h.summary.contains("nothing drawn"), "{}", h.summary);
    let h = render(&edge, &spec(ChartKind::Histogram, Some("nan_inf"), None)).unwrap();
    assert!(
        h.summary.contains("75 NaN and 150 infinite not drawn"),
        "{}",
        h.summary
    );
    let h = render(&edge, &spec(ChartKind::Histogram, Some("one_value"), None)).unwrap();
    assert!(h.summary.contains("all equal to 42"), "{}", h.summary);
}

#[test]
fn specs_read_from_json() {
    let s: PlotSpec =
        serde_json::from_str(r#"{"kind":"box","x":"price","by":"city","width":640}"#).unwrap();
    assert_eq!(s.kind, ChartKind::Box);
    assert_eq!(s.by.as_deref(), Some("city"));
    assert_eq!(s.width, Some(640));
    assert_eq!(s.height, None);
    let k: ChartKind = serde_json::from_str(r#""missing""#).unwrap();
    assert_eq!(k, ChartKind::Missing);
    assert!(serde_json::from_str::<PlotSpec>(r#"{"kind":"pie"}"#).is_err());
}
