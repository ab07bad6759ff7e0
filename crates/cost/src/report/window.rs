//! The report's time window (`--since 24h`, or `--start/--end` in RFC 3339), the CloudWatch period
//! used to read it, and the UTC hour/day buckets rows are grouped into.
//!
//! The period is chosen so that every bucket lies inside one UTC hour (it divides 3,600 s and the
//! window is aligned to it): summing buckets per hour or per day is then exact. It is also never
//! finer than CloudWatch keeps for data that old (60 s for 15 days, 5 min for 63 days, 1 h after
//! that; GetMetricData's documentation on retention), and coarse enough to keep a query near
//! 1,440 data points.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

pub const HOUR: i64 = 3_600;
pub const DAY: i64 = 86_400;
/// 30 days, the projection's horizon.
pub const MONTH: i64 = 30 * DAY;

/// Periods (seconds) that divide an hour, finest first.
const PERIODS: &[i64] = &[60, 120, 300, 600, 900, 1_200, 1_800, 3_600];
/// Buckets per query aimed at: enough resolution, few pages.
const TARGET_BUCKETS: i64 = 1_440;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WindowError {
    #[error("invalid duration {0:?}: use a number and a unit, e.g. 90m, 24h, 7d, 2w")]
    BadDuration(String),
    #[error("invalid time {value:?}: use RFC 3339, e.g. 2025-07-20T00:00:00Z ({reason})")]
    BadTime { value: String, reason: String },
    #[error("the window is empty: --start {start} is not before --end {end}")]
    Empty { start: String, end: String },
    #[error("the window is too long: CloudWatch keeps metrics 455 days")]
    TooLong,
}

/// `90m`, `24h`, `7d`, `2w` → seconds. (Four units; a crate such as humantime would accept far
/// more than a report window needs.)
pub fn parse_since(text: &str) -> Result<Duration, WindowError> {
    let bad = || WindowError::BadDuration(text.to_owned());
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let unit_secs = match unit {
        "m" | "min" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(bad());
    }
    n.checked_mul(unit_secs)
        .map(Duration::from_secs)
        .ok_or_else(bad)
}

/// An RFC 3339 time with `Z` or an offset.
pub fn parse_time(text: &str) -> Result<DateTime, WindowError> {
    DateTime::from_str(text.trim(), Format::DateTimeWithOffset).map_err(|e| WindowError::BadTime {
        value: text.to_owned(),
        reason: e.to_string(),
    })
}

/// `[start, end)` in epoch seconds, aligned to `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
    /// Seconds per CloudWatch data point.
    pub period: i64,
}

impl Window {
    /// Resolves the flags against `now`: `--start` wins over `--since`; `--end` defaults to now.
    pub fn resolve(
        since: Duration,
        start: Option<DateTime>,
        end: Option<DateTime>,
        now: SystemTime,
    ) -> Result<Self, WindowError> {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let end = end.map(|e| e.secs()).unwrap_or(now);
        let start = match start {
            Some(s) => s.secs(),
            None => end - since.as_secs() as i64,
        };
        if start >= end {
            return Err(WindowError::Empty {
                start: rfc3339(start),
                end: rfc3339(end),
            });
        }
        if end - start > 455 * DAY {
            return Err(WindowError::TooLong);
        }
        let period = choose_period(now - start, end - start);
        Ok(Window {
            start: start.div_euclid(period) * period,
            end: (end + period - 1).div_euclid(period) * period,
            period,
        })
    }

    pub fn seconds(&self) -> i64 {
        self.end - self.start
    }

    pub fn start_time(&self) -> DateTime {
        DateTime::from_secs(self.start)
    }

    pub fn end_time(&self) -> DateTime {
        DateTime::from_secs(self.end)
    }

    /// The part of `[from, from + len)` inside the window, in seconds.
    pub fn overlap(&self, from: i64, len: i64) -> i64 {
        (self.end.min(from + len) - self.start.max(from)).max(0)
    }

    /// Bucket starts (`size` = HOUR or DAY, UTC) covering the window.
    pub fn buckets(&self, size: i64) -> Vec<i64> {
        let first = self.start.div_euclid(size) * size;
        (0..)
            .map(|i| first + i * size)
            .take_while(|b| *b < self.end)
            .collect()
    }
}

/// The finest period CloudWatch still has for data `age` seconds old, coarsened until the window
/// is about `TARGET_BUCKETS` data points long.
fn choose_period(age: i64, length: i64) -> i64 {
    let retention_floor = if age <= 15 * DAY {
        60
    } else if age <= 63 * DAY {
        300
    } else {
        3_600
    };
    PERIODS
        .iter()
        .copied()
        .filter(|p| *p >= retention_floor)
        .find(|p| length / p <= TARGET_BUCKETS)
        .unwrap_or(3_600)
}

/// `2025-07-20T13:00:00Z`.
pub fn rfc3339(secs: i64) -> String {
    DateTime::from_secs(secs)
        .fmt(Format::DateTime)
        .unwrap_or_else(|_| secs.to_string())
}

/// `2025-07-20` (a UTC day bucket's label).
pub fn day_label(secs: i64) -> String {
    rfc3339(secs).chars().take(10).collect()
}

/// `2025-07-20T13:00Z` (a UTC hour bucket's label).
pub fn hour_label(secs: i64) -> String {
    let full = rfc3339(secs);
    format!("{}Z", &full[..16.min(full.len())])
}

/// A span for people: `24 h`, `7 d`, `90 min`, `36 h`.
pub fn human_span(secs: i64) -> String {
    if secs % DAY == 0 && secs >= 2 * DAY {
        format!("{} d", secs / DAY)
    } else if secs % HOUR == 0 {
        format!("{} h", secs / HOUR)
    } else if secs % 60 == 0 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    }

    #[test]
    fn since_units() {
        assert_eq!(parse_since("90m").unwrap().as_secs(), 5_400);
        assert_eq!(parse_since("24h").unwrap().as_secs(), 86_400);
        assert_eq!(parse_since("7d").unwrap().as_secs(), 604_800);
        assert_eq!(parse_since("2w").unwrap().as_secs(), 1_209_600);
        for bad in [
            "",
            "h",
            "24",
            "0h",
            "1y",
            "-3h",
            "1.5h",
            "99999999999999999999h",
        ] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rfc3339_with_offsets() {
        let z = parse_time("2025-07-20T12:00:00Z").unwrap();
        let off = parse_time("2025-07-20T14:00:00+02:00").unwrap();
        assert_eq!(z, off);
        assert!(parse_time("2025-07-20 12:00").is_err());
    }

    #[test]
    fn last_24h_is_minute_aligned_with_60s_periods() {
        let now = 1_753_000_000 + 17; // not on a minute
        let w = Window::resolve(Duration::from_secs(86_400), None, None, at(now)).unwrap();
        assert_eq!(w.period, 60);
        assert_eq!(w.start % 60, 0);
        assert_eq!(w.end % 60, 0);
        assert!(w.start <= now - 86_400 && w.end >= now);
        assert_eq!(w.seconds(), 86_400 + 60);
    }

    #[test]
    fn long_or_old_windows_get_coarser_periods() {
        let now = 1_753_000_000;
        let week = Window::resolve(Duration::from_secs(7 * DAY as u64), None, None, at(now));
        assert_eq!(week.unwrap().period, 600); // 10,080 min / 600 s = 1,008 points
        let old = Window::resolve(
            Duration::ZERO,
            Some(DateTime::from_secs(now - 20 * DAY)),
            Some(DateTime::from_secs(now - 20 * DAY + HOUR)),
            at(now),
        );
        assert_eq!(old.unwrap().period, 300); // 60 s data is gone after 15 days
        let older = Window::resolve(Duration::from_secs(90 * DAY as u64), None, None, at(now));
        assert_eq!(older.unwrap().period, 3_600);
    }

    #[test]
    fn empty_and_reversed_windows_are_errors() {
        let t = DateTime::from_secs(1_753_000_000);
        let r = Window::resolve(Duration::ZERO, Some(t), Some(t), at(1_753_000_000));
        assert!(matches!(r, Err(WindowError::Empty { .. })));
    }

    #[test]
    fn buckets_and_overlap() {
        // 2025-03-01T20:00Z to 2025-03-02T04:00Z
        let start = 1_740_859_200;
        let w = Window {
            start,
            end: start + 8 * HOUR,
            period: 3_600,
        };
        let days = w.buckets(DAY);
        assert_eq!(days.len(), 2);
        assert_eq!(day_label(days[0]), "2025-03-01");
        assert_eq!(day_label(days[1]), "2025-03-02");
        assert_eq!(w.overlap(days[0], DAY), 4 * HOUR);
        assert_eq!(w.overlap(days[1], DAY), 4 * HOUR);
        assert_eq!(w.buckets(HOUR).len(), 8);
        assert_eq!(hour_label(start), "2025-03-01T20:00Z");
        assert_eq!(human_span(8 * HOUR), "8 h");
        assert_eq!(human_span(7 * DAY), "7 d");
        assert_eq!(human_span(86_460), "1441 min");
    }
}
