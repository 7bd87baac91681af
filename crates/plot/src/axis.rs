//! Axis ranges and tick marks, computed here rather than by plotters so that
//! every finite input (a single value, spans near `f64::MAX`, dates far in the
//! past) gets a sane range, a bounded number of ticks and readable labels.

use chrono::{DateTime, Datelike, NaiveDate};

use crate::format;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scale {
    Number,
    /// Seconds since the Unix epoch, labelled as UTC dates and times.
    Time,
    /// Like `Time`, for values that are whole days: no tick between midnights.
    Date,
}

/// One axis of a chart. Positions on the chart ("coordinates") are values
/// divided by `div`, which is 1 unless the span would overflow an `f64`.
#[derive(Debug, Clone)]
pub(crate) struct Axis {
    pub lo: f64,
    pub hi: f64,
    div: f64,
    ticks: Vec<f64>,
    labels: Vec<String>,
}

impl Axis {
    /// An axis over the data values `lo..=hi`, widened by `pad` times the span
    /// on each side, with at most about `max_ticks` labelled ticks.
    pub fn new(scale: Scale, lo: f64, hi: f64, pad: f64, max_ticks: usize) -> Axis {
        let (mut lo, mut hi) = (lo.min(hi), lo.max(hi));
        if !lo.is_finite() || !hi.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        let max_ticks = max_ticks.clamp(2, 30);
        let mut div = 1.0;
        // Shrinking by a power of two is exact, and 4^8 is far more than any
        // span of finite values needs to become finite.
        for _ in 0..8 {
            let (l, h) = (lo / div, hi / div);
            let span = h - l;
            let roomy = (l.abs().max(h.abs()) * 2.0).is_finite();
            if roomy && (l - 2.0 * span).is_finite() && (h + 2.0 * span).is_finite() {
                break;
            }
            div *= 4.0;
        }
        let (mut l, mut h) = (lo / div, hi / div);
        let magnitude = l.abs().max(h.abs());
        if h - l <= magnitude * 1e-12 {
            // One distinct value: centre it in a range wide enough to label.
            let c = l / 2.0 + h / 2.0;
            let half = match scale {
                Scale::Time | Scale::Date => 86_400.0,
                Scale::Number if c == 0.0 => 1.0,
                Scale::Number => c.abs() * 0.1,
            };
            (l, h) = (c - half, c + half);
            if h <= l {
                // A day is below the resolution of instants this far out.
                let half = c.abs() * 0.1;
                (l, h) = (c - half, c + half);
            }
        } else {
            let span = h - l;
            (l, h) = (l - span * pad, h + span * pad);
        }
        let (ticks, labels) = match scale {
            Scale::Time | Scale::Date if div == 1.0 => {
                time_ticks(l, h, max_ticks, scale == Scale::Date)
                    .unwrap_or_else(|| number_ticks(l, h, max_ticks, div))
            }
            _ => number_ticks(l, h, max_ticks, div),
        };
        Axis {
            lo: l,
            hi: h,
            div,
            ticks,
            labels,
        }
    }

    /// `labels.len()` slots of width one, each labelled at its centre; slot 0
    /// is nearest the origin.
    pub fn categorical(labels: Vec<String>) -> Axis {
        let n = labels.len().max(1);
        Axis {
            lo: 0.0,
            hi: n as f64,
            div: 1.0,
            ticks: (0..labels.len()).map(|i| i as f64 + 0.5).collect(),
            labels,
        }
    }

    /// An axis with ticks chosen by the caller (positions are coordinates).
    pub fn custom(lo: f64, hi: f64, ticks: Vec<(f64, String)>) -> Axis {
        let (ticks, labels) = ticks.into_iter().unzip();
        Axis {
            lo,
            hi,
            div: 1.0,
            ticks,
            labels,
        }
    }

    /// The chart coordinate of a data value, kept inside the axis so that
    /// nothing is drawn over the labels.
    pub fn coord(&self, v: f64) -> f64 {
        let c = v / self.div;
        if c.is_nan() {
            self.lo
        } else {
            c.clamp(self.lo, self.hi)
        }
    }

    pub fn ticks(&self) -> Vec<f64> {
        self.ticks.clone()
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The label of the tick at coordinate `c` (plotters asks with the exact
    /// positions we gave it).
    pub fn label_at(&self, c: f64) -> String {
        let nearest = self
            .ticks
            .iter()
            .enumerate()
            .min_by(|a, b| (a.1 - c).abs().total_cmp(&(b.1 - c).abs()));
        match nearest {
            Some((i, _)) => self.labels.get(i).cloned().unwrap_or_default(),
            None => String::new(),
        }
    }
}

/// "Nice" ticks at multiples of 1, 2, 2.5 or 5 times a power of ten.
fn number_ticks(l: f64, h: f64, max_ticks: usize, div: f64) -> (Vec<f64>, Vec<String>) {
    let fallback = || {
        let ticks = vec![l, l / 2.0 + h / 2.0, h];
        let labels = ticks.iter().map(|t| format::num(t * div)).collect();
        (ticks, labels)
    };
    let span = h - l;
    let raw = span / max_ticks as f64;
    if !(raw > 0.0 && raw.is_finite()) {
        return fallback();
    }
    let mag = 10f64.powi(raw.log10().floor() as i32);
    if !(mag > 0.0 && mag.is_finite()) {
        return fallback();
    }
    let (m, step) = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| (*m, m * mag))
        .find(|(_, s)| *s >= raw)
        .unwrap_or((10.0, 10.0 * mag));
    // The tolerance keeps 0.3 / 0.1 = 2.9999999999999996 a tick.
    let first = (l / step - 1e-9).ceil();
    let last = (h / step + 1e-9).floor();
    let n = last - first + 1.0;
    if !(1.0..=1000.0).contains(&n) {
        return fallback();
    }
    let mut ticks: Vec<f64> = (0..n as usize).map(|i| (first + i as f64) * step).collect();
    ticks.dedup();
    let biggest = (l * div).abs().max((h * div).abs());
    let decimals = (-(step * div).log10().floor() + if m == 2.5 { 1.0 } else { 0.0 }).max(0.0);
    let labels = if !(1e-4..1e15).contains(&biggest) || decimals > 9.0 {
        // Enough digits that neighbouring ticks read differently.
        (1..=6)
            .map(|d| {
                ticks
                    .iter()
                    .map(|t| format::sci(t * div, d))
                    .collect::<Vec<_>>()
            })
            .find(|ls| ls.windows(2).all(|w| w[0] != w[1]))
            .unwrap_or_else(|| ticks.iter().map(|t| format::sci(t * div, 6)).collect())
    } else {
        ticks
            .iter()
            .map(|t| format::fixed(t * div, decimals as usize))
            .collect()
    };
    (ticks, labels)
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Seconds(f64),
    Months(i64),
    Years(i64),
}

impl Step {
    fn approx_secs(self) -> f64 {
        match self {
            Step::Seconds(s) => s,
            Step::Months(m) => m as f64 * 2_629_746.0,
            Step::Years(y) => y as f64 * 31_556_952.0,
        }
    }
}

const DAY: f64 = 86_400.0;
const STEPS: [Step; 40] = [
    Step::Seconds(1.0),
    Step::Seconds(2.0),
    Step::Seconds(5.0),
    Step::Seconds(10.0),
    Step::Seconds(15.0),
    Step::Seconds(30.0),
    Step::Seconds(60.0),
    Step::Seconds(120.0),
    Step::Seconds(300.0),
    Step::Seconds(600.0),
    Step::Seconds(900.0),
    Step::Seconds(1800.0),
    Step::Seconds(3600.0),
    Step::Seconds(7200.0),
    Step::Seconds(10_800.0),
    Step::Seconds(21_600.0),
    Step::Seconds(43_200.0),
    Step::Seconds(DAY),
    Step::Seconds(2.0 * DAY),
    Step::Seconds(7.0 * DAY),
    Step::Months(1),
    Step::Months(2),
    Step::Months(3),
    Step::Months(6),
    Step::Years(1),
    Step::Years(2),
    Step::Years(5),
    Step::Years(10),
    Step::Years(20),
    Step::Years(50),
    Step::Years(100),
    Step::Years(200),
    Step::Years(500),
    Step::Years(1000),
    Step::Years(2000),
    Step::Years(5000),
    Step::Years(10_000),
    Step::Years(20_000),
    Step::Years(50_000),
    Step::Years(100_000),
];

/// Calendar-aligned ticks (midnights, first days of months, years); `None`
/// when the range is outside the dates chrono can name.
fn time_ticks(
    l: f64,
    h: f64,
    max_ticks: usize,
    whole_days: bool,
) -> Option<(Vec<f64>, Vec<String>)> {
    const LIMIT: f64 = 200_000.0 * 31_556_952.0;
    if l.abs() > LIMIT || h.abs() > LIMIT {
        return None;
    }
    let span = h - l;
    if span < max_ticks as f64 && !whole_days {
        // Under a second per tick: fractional seconds, labelled with a clock.
        let (ticks, _) = number_ticks(l, h, max_ticks, 1.0);
        let labels = ticks
            .iter()
            .map(|t| format::instant(*t, "%H:%M:%S%.3f"))
            .collect::<Option<Vec<_>>>()?;
        return Some((ticks, labels));
    }
    let step = STEPS
        .iter()
        .copied()
        .filter(|s| !whole_days || s.approx_secs() >= DAY)
        .find(|s| span / s.approx_secs() <= max_ticks as f64)
        .unwrap_or(Step::Years(100_000));
    let ticks = match step {
        Step::Seconds(s) => {
            // Weeks start on Mondays; 1970-01-05 was one.
            let offset = if s == 7.0 * DAY { 4.0 * DAY } else { 0.0 };
            let first = ((l - offset) / s).ceil();
            (0..1000)
                .map(|i| (first + i as f64) * s + offset)
                .take_while(|t| *t <= h)
                .collect::<Vec<_>>()
        }
        Step::Months(m) => {
            let start = DateTime::from_timestamp(l.floor() as i64, 0)?;
            let index = i64::from(start.year()) * 12 + i64::from(start.month0());
            let first = index.div_euclid(m) * m;
            let mut out = Vec::new();
            for k in 0..1000 {
                let idx = first + k * m;
                let t = month_start(idx.div_euclid(12), idx.rem_euclid(12) + 1)?;
                if t > h {
                    break;
                }
                if t >= l {
                    out.push(t);
                }
            }
            out
        }
        Step::Years(y) => {
            let start = DateTime::from_timestamp(l.floor() as i64, 0)?;
            let first = i64::from(start.year()).div_euclid(y) * y;
            let mut out = Vec::new();
            for k in 0..1000 {
                let t = month_start(first + k * y, 1)?;
                if t > h {
                    break;
                }
                if t >= l {
                    out.push(t);
                }
            }
            out
        }
    };
    if ticks.is_empty() {
        // No calendar boundary inside the range: label its middle instead.
        let mid = l / 2.0 + h / 2.0;
        let fmt = if whole_days {
            "%Y-%m-%d"
        } else {
            "%Y-%m-%d %H:%M:%S"
        };
        return Some((vec![mid], vec![format::instant(mid, fmt)?]));
    }
    let fmt = match step {
        Step::Seconds(s) if s < DAY => {
            let same_day = ticks
                .first()
                .zip(ticks.last())
                .is_none_or(|(a, b)| (a / DAY).floor() == (b / DAY).floor());
            match (same_day, s < 60.0) {
                (true, true) => "%H:%M:%S",
                (true, false) => "%H:%M",
                (false, true) => "%m-%d %H:%M:%S",
                (false, false) => "%m-%d %H:%M",
            }
        }
        Step::Seconds(_) => "%Y-%m-%d",
        Step::Months(_) => "%Y-%m",
        Step::Years(_) => "%Y",
    };
    let labels = ticks
        .iter()
        .map(|t| format::instant(*t, fmt))
        .collect::<Option<Vec<_>>>()?;
    Some((ticks, labels))
}

fn month_start(year: i64, month: i64) -> Option<f64> {
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, u32::try_from(month).ok()?, 1)?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(axis: &Axis) {
        assert!(
            axis.lo.is_finite() && axis.hi.is_finite() && axis.lo < axis.hi,
            "{axis:?}"
        );
        assert!(!axis.ticks.is_empty(), "{axis:?}");
        assert!(axis.ticks.len() <= 40, "{axis:?}");
        assert_eq!(axis.ticks.len(), axis.labels.len());
        for t in &axis.ticks {
            assert!(t.is_finite(), "{axis:?}");
        }
    }

    #[test]
    fn number_ticks_are_nice() {
        let a = Axis::new(Scale::Number, 0.0, 100.0, 0.0, 6);
        assert_eq!(a.labels, ["0", "20", "40", "60", "80", "100"]);
        let a = Axis::new(Scale::Number, 0.5, 1203.0, 0.0, 6);
        assert_eq!(a.labels.first().map(String::as_str), Some("250"));
        assert!(a.labels.contains(&"1,000".to_string()), "{:?}", a.labels);
        let a = Axis::new(Scale::Number, 0.0, 0.3, 0.0, 4);
        assert_eq!(a.labels, ["0.0", "0.1", "0.2", "0.3"]);
        check(&a);
    }

    #[test]
    fn awkward_ranges_still_get_an_axis() {
        for (lo, hi) in [
            (5.0, 5.0),
            (0.0, 0.0),
            (-f64::MAX, f64::MAX),
            (f64::MAX, f64::MAX),
            (1e-300, 2e-300),
            (1e16, 1e16 + 2.0),
            (f64::NAN, 1.0),
            (-1.0, f64::INFINITY),
        ] {
            check(&Axis::new(Scale::Number, lo, hi, 0.05, 8));
            check(&Axis::new(Scale::Time, lo, hi, 0.05, 8));
            check(&Axis::new(Scale::Date, lo, hi, 0.05, 8));
        }
        let a = Axis::new(Scale::Number, -f64::MAX, f64::MAX, 0.05, 8);
        assert!(a.labels.iter().any(|l| l.contains('e')), "{:?}", a.labels);
        assert_eq!(a.coord(f64::INFINITY), a.hi);
        assert!(a.coord(f64::MAX) < a.hi);
    }

    #[test]
    fn time_ticks_follow_the_calendar() {
        let day = |y, m, d| month_start(y, m).unwrap() + (d - 1) as f64 * DAY;
        let a = Axis::new(Scale::Time, day(2020, 1, 1), day(2024, 12, 31), 0.0, 6);
        assert_eq!(a.labels, ["2020", "2021", "2022", "2023", "2024"]);
        let a = Axis::new(Scale::Time, day(2021, 1, 10), day(2021, 6, 20), 0.0, 8);
        assert_eq!(
            a.labels,
            ["2021-02", "2021-03", "2021-04", "2021-05", "2021-06"]
        );
        let a = Axis::new(Scale::Time, day(2021, 3, 1), day(2021, 3, 5), 0.0, 8);
        assert_eq!(a.labels[0], "03-01 00:00");
        assert_eq!(a.labels[1], "03-01 12:00");
        let a = Axis::new(Scale::Date, day(2021, 3, 1), day(2021, 3, 5), 0.0, 8);
        assert_eq!(
            a.labels,
            [
                "2021-03-01",
                "2021-03-02",
                "2021-03-03",
                "2021-03-04",
                "2021-03-05"
            ]
        );
        let a = Axis::new(Scale::Date, day(2021, 3, 1), day(2021, 3, 1), 0.0, 8);
        assert_eq!(a.labels, ["2021-02-28", "2021-03-01", "2021-03-02"]);
        let a = Axis::new(
            Scale::Time,
            day(2021, 3, 1),
            day(2021, 3, 1) + 3600.0,
            0.0,
            8,
        );
        assert_eq!(a.labels[0], "00:00");
        let a = Axis::new(Scale::Time, 0.25, 0.75, 0.0, 6);
        assert!(a.labels[0].starts_with("00:00:00."), "{:?}", a.labels);
        check(&a);
    }
}
