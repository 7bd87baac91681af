//! Numbers and instants as people read them, in summaries and tick labels.

use chrono::DateTime;

/// `9812` -> `9,812`.
pub(crate) fn count(n: usize) -> String {
    group_thousands(&n.to_string())
}

/// A value for a summary line: about six significant digits, no noise.
pub(crate) fn num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    if !(1e-4..1e15).contains(&a) {
        return sci(v, 3);
    }
    let decimals = (5 - a.log10().floor() as i32).clamp(0, 8) as usize;
    let s = fixed(v, decimals);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Three significant digits, for approximate quantities like bin widths.
pub(crate) fn short(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() || a == 0.0 || !(1e-4..1e15).contains(&a) {
        return num(v);
    }
    let decimals = (2 - a.log10().floor() as i32).clamp(0, 8) as usize;
    let s = fixed(v, decimals);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Fixed decimals with thousands separators; never prints `-0`.
pub(crate) fn fixed(v: f64, decimals: usize) -> String {
    let s = format!("{:.*}", decimals, v);
    let (sign, body) = match s.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", s.as_str()),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let is_zero = int.chars().all(|c| c == '0') && frac.is_none_or(|f| f.chars().all(|c| c == '0'));
    let sign = if is_zero { "" } else { sign };
    let mut out = format!("{sign}{}", group_thousands(int));
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// Scientific notation with `digits` after the point, e.g. `1.500e17`.
pub(crate) fn sci(v: f64, digits: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    format!("{:.*e}", digits, v)
}

fn group_thousands(digits: &str) -> String {
    let n = digits.len();
    let mut out = String::with_capacity(n + n / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (n - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds since the Unix epoch (UTC) with a chrono format; `None` when the
/// instant is outside what chrono can represent.
pub(crate) fn instant(secs: f64, fmt: &str) -> Option<String> {
    if !secs.is_finite() {
        return None;
    }
    let whole = secs.floor();
    if whole.abs() > 8.0e15 {
        return None;
    }
    let nanos = ((secs - whole) * 1e9).round().clamp(0.0, 999_999_999.0) as u32;
    DateTime::from_timestamp(whole as i64, nanos).map(|t| t.format(fmt).to_string())
}

/// An instant for a summary line: the date alone when it falls on midnight.
pub(crate) fn when(secs: f64) -> String {
    let fmt = if secs.rem_euclid(86_400.0) == 0.0 {
        "%Y-%m-%d"
    } else if secs.fract() == 0.0 {
        "%Y-%m-%d %H:%M:%S"
    } else {
        "%Y-%m-%d %H:%M:%S%.3f"
    };
    instant(secs, fmt).unwrap_or_else(|| format!("{} s since 1970", num(secs)))
}

/// A duration in seconds, in the largest unit that keeps it readable.
pub(crate) fn span(secs: f64) -> String {
    let a = secs.abs();
    let (v, unit) = if a >= 2.0 * 365.25 * 86_400.0 {
        (secs / (365.25 * 86_400.0), "years")
    } else if a >= 2.0 * 86_400.0 {
        (secs / 86_400.0, "days")
    } else if a >= 2.0 * 3600.0 {
        (secs / 3600.0, "hours")
    } else if a >= 120.0 {
        (secs / 60.0, "minutes")
    } else {
        (secs, "seconds")
    };
    format!("{} {unit}", num((v * 10.0).round() / 10.0))
}

/// Cut `s` to at most `max` characters, marking the cut with an ellipsis.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(count(0), "0");
        assert_eq!(count(9812), "9,812");
        assert_eq!(count(1_000_000), "1,000,000");
        assert_eq!(num(0.5), "0.5");
        assert_eq!(num(1203.0), "1,203");
        assert_eq!(num(1234.56), "1,234.56");
        assert_eq!(num(-0.0), "0");
        assert_eq!(num(2.5e20), "2.500e20");
        assert_eq!(fixed(-0.0001, 2), "0.00");
        assert_eq!(fixed(-1234.5, 1), "-1,234.5");
        assert_eq!(fixed(999.0, 0), "999");
        assert_eq!(short(19.0785), "19.1");
        assert_eq!(short(1234.6), "1,235");
        assert_eq!(sci(0.0, 2), "0");
    }

    #[test]
    fn instants_read_well() {
        assert_eq!(when(0.0), "1970-01-01");
        assert_eq!(when(86_400.0 + 3661.0), "1970-01-02 01:01:01");
        assert_eq!(instant(1e300, "%Y"), None);
        assert_eq!(span(3.0 * 86_400.0), "3 days");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("ab", 4), "ab");
    }
}
