//! Finding columns and reading them as numbers, with the errors a caller can
//! act on.

use polars::prelude::*;

use crate::axis::Scale;
use crate::{ChartKind, PlotError, format};

/// How the values of a plotted column are read and labelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ValueKind {
    Number,
    Date,
    /// `zoned` is true when the column has a time zone: instants are still
    /// labelled in UTC, and the axis says so.
    Datetime {
        zoned: bool,
    },
}

impl ValueKind {
    pub fn scale(&self) -> Scale {
        match self {
            ValueKind::Number => Scale::Number,
            ValueKind::Date => Scale::Date,
            ValueKind::Datetime { .. } => Scale::Time,
        }
    }

    /// A value for a summary line.
    pub fn show(&self, v: f64) -> String {
        match self {
            ValueKind::Number => format::num(v),
            ValueKind::Date | ValueKind::Datetime { .. } => format::when(v),
        }
    }

    /// An axis description: the column's name, plus the zone we label in.
    pub fn axis_name(&self, name: &str) -> String {
        match self {
            ValueKind::Datetime { zoned: true } => format!("{name} (UTC)"),
            _ => name.to_string(),
        }
    }
}

pub(crate) fn value_kind(dtype: &DataType) -> Option<ValueKind> {
    match dtype {
        DataType::Date => Some(ValueKind::Date),
        DataType::Datetime(_, tz) => Some(ValueKind::Datetime {
            zoned: tz.is_some(),
        }),
        d if d.is_primitive_numeric() || d.is_decimal() => Some(ValueKind::Number),
        _ => None,
    }
}

/// A dtype as a person would name it in a sentence.
pub(crate) fn describe(dtype: &DataType) -> String {
    match dtype {
        DataType::String => "string".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Categorical(..) => "categorical".into(),
        DataType::Enum(..) => "enum".into(),
        DataType::Date => "date".into(),
        DataType::Datetime(..) => "datetime".into(),
        DataType::Duration(_) => "a duration".into(),
        DataType::Time => "a time of day".into(),
        DataType::List(_) => "a list".into(),
        DataType::Struct(_) => "a struct".into(),
        DataType::Binary | DataType::BinaryOffset => "binary".into(),
        DataType::Null => "all null (no type)".into(),
        d if d.is_integer() => format!("an integer ({d})"),
        d if d.is_float() => format!("a float ({d})"),
        d => d.to_string(),
    }
}

pub(crate) fn column<'a>(df: &'a DataFrame, name: &str) -> Result<&'a Column, PlotError> {
    df.column(name).map_err(|_| not_found(df, name))
}

fn not_found(df: &DataFrame, name: &str) -> PlotError {
    let names: Vec<&str> = df.get_column_names().iter().map(|s| s.as_str()).collect();
    const SHOWN: usize = 50;
    let available = if names.is_empty() {
        "(none: the table has no columns)".to_string()
    } else {
        let mut list = names
            .iter()
            .take(SHOWN)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        if names.len() > SHOWN {
            list.push_str(&format!(" … and {} more", names.len() - SHOWN));
        }
        list
    };
    let lower = name.to_lowercase();
    let best = names
        .iter()
        .map(|n| {
            let score = if n.to_lowercase() == lower {
                1.0
            } else {
                strsim::jaro_winkler(&n.to_lowercase(), &lower)
            };
            (score, *n)
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let suggestion = match best {
        Some((score, n)) if score >= 0.85 => format!("; did you mean `{n}`?"),
        _ => String::new(),
    };
    PlotError::ColumnNotFound {
        name: name.to_string(),
        suggestion,
        available,
    }
}

/// What a chart accepts for a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accept {
    NumberOrTime,
    Number,
}

/// A column read as `f64`: numbers as they are, dates and datetimes as
/// seconds since the Unix epoch.
pub(crate) struct Values {
    pub kind: ValueKind,
    ca: Float64Chunked,
    factor: f64,
}

impl Values {
    pub fn read(
        df: &DataFrame,
        name: &str,
        chart: ChartKind,
        field: &'static str,
        accept: Accept,
    ) -> Result<Values, PlotError> {
        let col = column(df, name)?;
        let dtype = col.dtype();
        let kind = value_kind(dtype)
            .filter(|k| accept == Accept::NumberOrTime || *k == ValueKind::Number)
            .ok_or_else(|| wrong_type(chart, field, name, dtype, accept))?;
        let series = col.as_materialized_series();
        let (floats, factor) = match (&kind, dtype) {
            (ValueKind::Number, _) => (series.cast(&DataType::Float64)?, 1.0),
            (ValueKind::Date, _) => (
                series.to_physical_repr().cast(&DataType::Float64)?,
                86_400.0,
            ),
            (ValueKind::Datetime { .. }, DataType::Datetime(unit, _)) => {
                let per_second = match unit {
                    TimeUnit::Nanoseconds => 1e9,
                    TimeUnit::Microseconds => 1e6,
                    TimeUnit::Milliseconds => 1e3,
                };
                (
                    series.to_physical_repr().cast(&DataType::Float64)?,
                    1.0 / per_second,
                )
            }
            _ => return Err(wrong_type(chart, field, name, dtype, accept)),
        };
        let ca = floats.f64()?.rechunk().into_owned();
        Ok(Values { kind, ca, factor })
    }

    pub fn len(&self) -> usize {
        self.ca.len()
    }

    /// Every row in order; `None` for a null. NaN and infinities pass through.
    pub fn iter(&self) -> impl Iterator<Item = Option<f64>> + '_ {
        let factor = self.factor;
        self.ca.iter().map(move |v| v.map(|v| v * factor))
    }

    /// The value of one row (`None` for a null or a row out of range).
    pub fn get(&self, row: usize) -> Option<f64> {
        self.ca.get(row).map(|v| v * self.factor)
    }

    pub fn tally(&self) -> Tally {
        let mut t = Tally::default();
        for v in self.iter() {
            t.add(v);
        }
        t
    }
}

/// What a pass over values found: how many could be drawn, and why the rest
/// could not.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tally {
    pub rows: usize,
    pub null: usize,
    pub nan: usize,
    pub infinite: usize,
    pub finite: usize,
    pub min: f64,
    pub max: f64,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            rows: 0,
            null: 0,
            nan: 0,
            infinite: 0,
            finite: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Tally {
    pub fn add(&mut self, v: Option<f64>) {
        self.rows += 1;
        match v {
            None => self.null += 1,
            Some(v) if v.is_nan() => self.nan += 1,
            Some(v) if v.is_infinite() => self.infinite += 1,
            Some(v) => {
                self.finite += 1;
                self.min = self.min.min(v);
                self.max = self.max.max(v);
            }
        }
    }

    /// "; 188 missing and 2 infinite not drawn", or "" when all were drawn.
    pub fn skipped(&self) -> String {
        let mut parts = Vec::new();
        if self.null > 0 {
            parts.push(format!("{} missing", format::count(self.null)));
        }
        if self.nan > 0 {
            parts.push(format!("{} NaN", format::count(self.nan)));
        }
        if self.infinite > 0 {
            parts.push(format!("{} infinite", format::count(self.infinite)));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("; {} not drawn", parts.join(" and "))
        }
    }
}

fn wrong_type(
    chart: ChartKind,
    field: &'static str,
    name: &str,
    dtype: &DataType,
    accept: Accept,
) -> PlotError {
    let expected = match accept {
        Accept::NumberOrTime => "a numeric or date",
        Accept::Number => "a numeric",
    };
    let textual = matches!(
        dtype,
        DataType::String | DataType::Boolean | DataType::Categorical(..) | DataType::Enum(..)
    );
    let hint = match (chart, field) {
        (_, _) if matches!(dtype, DataType::Duration(_) | DataType::Time) => {
            "cast it to a number first (for example total seconds), then plot that".to_string()
        }
        (ChartKind::Histogram, _) if textual => "use kind=bar for value counts".to_string(),
        (ChartKind::Box, _) if textual => format!(
            "use kind=bar for its value counts, or pass it as `by` to get one box per `{name}` value"
        ),
        (_, _) if textual && matches!(dtype, DataType::String) => {
            "pick a numeric column, or cast this one to a number first if it holds numbers as text"
                .to_string()
        }
        (ChartKind::Line, "y") if value_kind(dtype).is_some() => {
            "a line plots a numeric y against x; put the date column in `x`".to_string()
        }
        _ => "pick a numeric column, or use kind=bar for value counts".to_string(),
    };
    PlotError::WrongType {
        kind: chart.as_str(),
        field,
        column: name.to_string(),
        expected,
        actual: describe(dtype),
        hint,
    }
}

/// One group of rows sharing a value of the grouping column.
pub(crate) struct Group {
    /// The value as text; "(missing)" for the null group.
    pub label: String,
    pub is_null: bool,
    pub len: usize,
    /// Row numbers, filled only when asked for.
    pub rows: Vec<IdxSize>,
}

/// The most frequent values of a column.
pub(crate) struct Grouping {
    /// Largest first; ties go to the value seen first in the table. The null
    /// group, when kept, comes after the others.
    pub groups: Vec<Group>,
    pub distinct: usize,
    /// Values (and their rows) not among `groups`.
    pub other_values: usize,
    pub other_rows: usize,
}

/// The `top` most frequent values of `name`, plus its nulls as a group of
/// their own when `keep_null` is set.
pub(crate) fn top_groups(
    df: &DataFrame,
    name: &str,
    top: usize,
    keep_null: bool,
    want_rows: bool,
) -> Result<Grouping, PlotError> {
    let col = column(df, name)?;
    let keys_df = DataFrame::new_infer_height(vec![col.clone()])?;
    let gb = keys_df.group_by([name])?;
    let keys = gb.keys();
    let key = keys
        .first()
        .ok_or_else(|| PlotError::Render(format!("grouping by `{name}` returned no keys")))?
        .as_materialized_series();
    let key_null = key.is_null();
    let groups = gb.get_groups();

    let mut order: Vec<(usize, usize, IdxSize)> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (i, g.len(), g.first()))
        .collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));

    let is_null = |i: usize| key_null.get(i).unwrap_or(false);
    let mut chosen: Vec<usize> = order
        .iter()
        .filter(|(i, _, _)| !is_null(*i))
        .take(top)
        .map(|(i, _, _)| *i)
        .collect();
    if keep_null {
        chosen.extend(
            order
                .iter()
                .filter(|(i, _, _)| is_null(*i))
                .map(|(i, _, _)| *i),
        );
    }

    let labels = key_labels(key, &chosen)?;
    let mut out = Vec::with_capacity(chosen.len());
    for (&i, label) in chosen.iter().zip(labels) {
        let g = groups.get(i);
        let rows = if want_rows {
            match g {
                GroupsIndicator::Idx((_, idx)) => idx.as_slice().to_vec(),
                GroupsIndicator::Slice([first, len]) => (first..first + len).collect(),
            }
        } else {
            Vec::new()
        };
        let null = is_null(i);
        out.push(Group {
            label: if null { "(missing)".into() } else { label },
            is_null: null,
            len: g.len(),
            rows,
        });
    }
    let shown_rows: usize = out.iter().map(|g| g.len).sum();
    let total_rows = df.height();
    Ok(Grouping {
        distinct: order.len(),
        other_values: order.len() - out.len(),
        other_rows: total_rows.saturating_sub(shown_rows),
        groups: out,
    })
}

/// The chosen keys as text, read only for the few groups that are drawn.
fn key_labels(key: &Series, chosen: &[usize]) -> Result<Vec<String>, PlotError> {
    let idx = IdxCa::from_vec(
        PlSmallStr::EMPTY,
        chosen.iter().map(|&i| i as IdxSize).collect(),
    );
    let picked = key.take(&idx)?;
    if let Ok(text) = picked.cast(&DataType::String)
        && let Ok(ca) = text.str()
    {
        return Ok(ca
            .iter()
            .zip(0..)
            .map(|(s, i)| match s {
                Some(s) => s.to_string(),
                None => any_label(&picked, i),
            })
            .collect());
    }
    Ok((0..picked.len()).map(|i| any_label(&picked, i)).collect())
}

fn any_label(s: &Series, i: usize) -> String {
    match s.get(i) {
        Ok(AnyValue::Null) | Err(_) => "(missing)".into(),
        Ok(v) => v.to_string(),
    }
}
