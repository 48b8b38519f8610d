//! The audit's chart: jobs per day, stacked by status, as SVG geometry the
//! template draws. No script, no external library.

use chrono::{Duration, NaiveDate};

use crate::store::stats::DayCount;

/// Statuses from the bottom of a bar to its top.
pub const STACK: [&str; 6] = [
    "succeeded",
    "partial",
    "failed",
    "timed_out",
    "unknown",
    "pending",
];

const WIDTH: f64 = 720.0;
/// The phone's chart: fewer days in a narrower drawing, so its labels keep
/// their size instead of shrinking with a wide one.
pub const NARROW_WIDTH: f64 = 360.0;
pub const NARROW_DAYS: i64 = 14;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 40.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 24.0;

/// One coloured segment of a day's bar.
pub struct Segment {
    pub x: String,
    pub y: String,
    pub width: String,
    pub height: String,
    pub status: &'static str,
    /// The tooltip: `2026-11-29: 3 succeeded`.
    pub label: String,
}

/// A label on an axis.
pub struct Tick {
    pub x: String,
    pub y: String,
    pub text: String,
}

/// A status and its total over the range.
pub struct LegendItem {
    pub status: &'static str,
    pub count: i64,
}

/// The drawn chart.
pub struct Chart {
    pub width: u32,
    pub height: u32,
    pub first_day: String,
    pub last_day: String,
    pub days: usize,
    pub total: i64,
    pub segments: Vec<Segment>,
    pub x_ticks: Vec<Tick>,
    pub y_ticks: Vec<Tick>,
    pub legend: Vec<LegendItem>,
    /// The baseline's y.
    pub axis_y: String,
    pub axis_x0: String,
    pub axis_x1: String,
}

fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// The smallest of 1, 2, 5, 10, 20, 50, ... not below `n`.
fn nice_max(n: i64) -> i64 {
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if m * step >= n {
                return m * step;
            }
        }
        step *= 10;
    }
}

/// Lays out the days from `start` to `end` (exclusive) with their counts.
pub fn build(start: NaiveDate, end: NaiveDate, counts: &[DayCount]) -> Chart {
    build_sized(start, end, counts, WIDTH)
}

/// The chart of the days from `start` up to `end` (excluded), `width` wide.
pub fn build_sized(start: NaiveDate, end: NaiveDate, counts: &[DayCount], width: f64) -> Chart {
    let days: Vec<NaiveDate> = (0..(end - start).num_days().max(0))
        .map(|i| start + Duration::days(i))
        .collect();
    let n = days.len().max(1) as f64;
    let count_of = |day: &str, status: &str| {
        counts
            .iter()
            .filter(|c| c.day == day && c.status == status)
            .map(|c| c.count)
            .sum::<i64>()
    };
    let day_keys: Vec<String> = days
        .iter()
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect();
    let daily_max = day_keys
        .iter()
        .map(|d| STACK.iter().map(|s| count_of(d, s)).sum::<i64>())
        .max()
        .unwrap_or(0);
    let y_max = nice_max(daily_max.max(1));
    let plot_w = width - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / n;
    let bar_w = (slot * 0.7).max(1.0);
    let base = TOP + plot_h;

    let mut segments = Vec::new();
    for (i, day) in day_keys.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
        let mut y = base;
        for status in STACK {
            let count = count_of(day, status);
            if count == 0 {
                continue;
            }
            let h = count as f64 / y_max as f64 * plot_h;
            y -= h;
            segments.push(Segment {
                x: px(x),
                y: px(y),
                width: px(bar_w),
                height: px(h),
                status,
                label: format!("{day}: {count} {}", status.replace('_', " ")),
            });
        }
    }
    let every = days
        .len()
        .div_ceil(if width < WIDTH { 5 } else { 8 })
        .max(1);
    let x_ticks = days
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(i, d)| Tick {
            x: px(LEFT + slot * i as f64 + slot / 2.0),
            y: px(HEIGHT - 6.0),
            text: d.format("%m-%d").to_string(),
        })
        .collect();
    let y_ticks = [0, y_max / 2, y_max]
        .into_iter()
        .filter(|v| *v == 0 || *v == y_max || y_max % 2 == 0)
        .map(|v| Tick {
            x: px(LEFT - 6.0),
            y: px(base - v as f64 / y_max as f64 * plot_h + 4.0),
            text: v.to_string(),
        })
        .collect();
    let legend = STACK
        .iter()
        .map(|status| LegendItem {
            status,
            count: counts
                .iter()
                .filter(|c| c.status == *status && day_keys.contains(&c.day))
                .map(|c| c.count)
                .sum(),
        })
        .collect::<Vec<_>>();
    Chart {
        width: width as u32,
        height: HEIGHT as u32,
        first_day: day_keys.first().cloned().unwrap_or_default(),
        last_day: day_keys.last().cloned().unwrap_or_default(),
        days: days.len(),
        total: legend.iter().map(|l| l.count).sum(),
        segments,
        x_ticks,
        y_ticks,
        legend,
        axis_y: px(base),
        axis_x0: px(LEFT),
        axis_x1: px(width - RIGHT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn count(d: &str, status: &str, n: i64) -> DayCount {
        DayCount {
            day: d.into(),
            status: status.into(),
            count: n,
        }
    }

    #[test]
    fn maxima_round_up_to_one_two_or_five() {
        assert_eq!(nice_max(1), 1);
        assert_eq!(nice_max(3), 5);
        assert_eq!(nice_max(7), 10);
        assert_eq!(nice_max(120), 200);
    }

    #[test]
    fn each_day_stacks_its_statuses_and_totals_add_up() {
        let counts = [
            count("2026-11-02", "succeeded", 3),
            count("2026-11-02", "failed", 1),
            count("2026-11-03", "timed_out", 2),
        ];
        let chart = build(day("2026-11-01"), day("2026-11-04"), &counts);
        assert_eq!(chart.days, 3);
        assert_eq!(chart.total, 6);
        assert_eq!(chart.first_day, "2026-11-01");
        assert_eq!(chart.last_day, "2026-11-03");
        let statuses: Vec<_> = chart.segments.iter().map(|s| s.status).collect();
        assert_eq!(statuses, ["succeeded", "failed", "timed_out"]);
        assert_eq!(chart.segments[1].label, "2026-11-02: 1 failed");
        // The failed segment sits on top of the succeeded one.
        let y = |i: usize| chart.segments[i].y.parse::<f64>().unwrap();
        assert!(y(1) < y(0));
    }

    #[test]
    fn an_empty_range_draws_nothing() {
        let chart = build(day("2026-11-01"), day("2026-11-01"), &[]);
        assert_eq!(chart.days, 0);
        assert!(chart.segments.is_empty());
    }
}
