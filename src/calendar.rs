//! Business calendars: when a desk is open, and SLA arithmetic in open time.
//!
//! A calendar is a time zone, opening intervals per weekday (several a
//! day), closed dates (one-off or yearly), and special days with their own
//! intervals. Business-time arithmetic walks the open intervals of each
//! local day, converted to UTC instants through the time zone, so a day
//! with a daylight-saving change has its true length and an interval that
//! spans the change is shorter or longer by the hour it gains or loses.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

use crate::config::HoursConfig;

/// Longest search for open time, in days; a calendar with no open time
/// within it makes deadlines "never" (validation prevents that).
const HORIZON_DAYS: i64 = 800;

/// An opening interval in local wall time, `[start, end)`; `end` may be
/// 24:00 (represented as `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    start: NaiveTime,
    end: Option<NaiveTime>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    tz: Tz,
    week: [Vec<Interval>; 7],
    closed: BTreeSet<NaiveDate>,
    yearly: BTreeSet<(u32, u32)>,
    special: BTreeMap<NaiveDate, Vec<Interval>>,
    always: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct CalendarError {
    pub path: String,
    pub message: String,
}

fn parse_time(s: &str) -> Option<Option<NaiveTime>> {
    if s == "24:00" {
        return Some(None);
    }
    NaiveTime::parse_from_str(s, "%H:%M").ok().map(Some)
}

fn parse_intervals(path: &str, list: &[String]) -> Result<Vec<Interval>, CalendarError> {
    let err = |m: String| CalendarError {
        path: path.to_string(),
        message: m,
    };
    let mut out: Vec<Interval> = Vec::new();
    for item in list {
        let (a, b) = item
            .split_once('-')
            .ok_or_else(|| err(format!("{item:?} is not an interval like \"08:00-12:30\"")))?;
        let start = parse_time(a.trim())
            .flatten()
            .ok_or_else(|| err(format!("{a:?} is not a time like \"08:00\"")))?;
        let end = parse_time(b.trim())
            .ok_or_else(|| err(format!("{b:?} is not a time like \"18:00\"")))?;
        if end.is_some_and(|e| e <= start) {
            return Err(err(format!("{item:?} ends before it starts")));
        }
        if let Some(prev) = out.last() {
            if prev.end.is_none_or(|e| e > start) {
                return Err(err(format!(
                    "{item:?} overlaps or precedes the interval before it"
                )));
            }
        }
        out.push(Interval { start, end });
    }
    Ok(out)
}

impl Calendar {
    /// Open around the clock: business time equals wall time.
    pub fn always(tz: Tz) -> Calendar {
        let all = vec![Interval {
            start: NaiveTime::MIN,
            end: None,
        }];
        Calendar {
            tz,
            week: std::array::from_fn(|_| all.clone()),
            closed: BTreeSet::new(),
            yearly: BTreeSet::new(),
            special: BTreeMap::new(),
            always: true,
        }
    }

    /// Builds a calendar from `[…hours]`; `path` prefixes error paths.
    pub fn from_config(tz: Tz, h: &HoursConfig, path: &str) -> Result<Calendar, CalendarError> {
        let days = [&h.mon, &h.tue, &h.wed, &h.thu, &h.fri, &h.sat, &h.sun];
        let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let mut week: [Vec<Interval>; 7] = Default::default();
        for i in 0..7 {
            week[i] = parse_intervals(&format!("{path}.{}", names[i]), days[i])?;
        }
        if week.iter().all(Vec::is_empty) {
            return Err(CalendarError {
                path: path.to_string(),
                message: "no opening hours on any weekday".into(),
            });
        }
        let mut closed = BTreeSet::new();
        let mut yearly = BTreeSet::new();
        for d in &h.holidays {
            if let Ok(date) = NaiveDate::parse_from_str(d, "%Y-%m-%d") {
                closed.insert(date);
            } else if let Some((m, day)) = d
                .split_once('-')
                .and_then(|(m, day)| Some((m.parse::<u32>().ok()?, day.parse::<u32>().ok()?)))
                .filter(|(m, day)| NaiveDate::from_ymd_opt(2024, *m, *day).is_some())
            {
                yearly.insert((m, day));
            } else {
                return Err(CalendarError {
                    path: format!("{path}.holidays"),
                    message: format!("{d:?} is neither \"YYYY-MM-DD\" nor a yearly \"MM-DD\""),
                });
            }
        }
        let mut special = BTreeMap::new();
        for (d, list) in &h.special {
            let date = NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| CalendarError {
                path: format!("{path}.special"),
                message: format!("{d:?} is not a date \"YYYY-MM-DD\""),
            })?;
            special.insert(date, parse_intervals(&format!("{path}.special.{d}"), list)?);
        }
        Ok(Calendar {
            tz,
            week,
            closed,
            yearly,
            special,
            always: false,
        })
    }

    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The opening intervals of a local date: a special day's own, none
    /// on a closed day, else the weekday's.
    fn intervals(&self, date: NaiveDate) -> &[Interval] {
        if let Some(s) = self.special.get(&date) {
            return s;
        }
        if self.closed.contains(&date) || self.yearly.contains(&(date.month(), date.day())) {
            return &[];
        }
        let i = match date.weekday() {
            Weekday::Mon => 0,
            Weekday::Tue => 1,
            Weekday::Wed => 2,
            Weekday::Thu => 3,
            Weekday::Fri => 4,
            Weekday::Sat => 5,
            Weekday::Sun => 6,
        };
        &self.week[i]
    }

    /// A local wall time as a UTC instant. In a DST gap the first
    /// existing instant after it; in a repeated hour the earlier one.
    fn instant(&self, date: NaiveDate, t: Option<NaiveTime>) -> i64 {
        let (date, t) = match t {
            Some(t) => (date, t),
            None => (date.succ_opt().unwrap_or(date), NaiveTime::MIN),
        };
        let local = date.and_time(t);
        for minutes in 0..=180 {
            let l = local + chrono::Duration::minutes(minutes);
            if let Some(z) = self.tz.from_local_datetime(&l).earliest() {
                return z.timestamp_millis();
            }
        }
        local.and_utc().timestamp_millis()
    }

    fn local_date(&self, ms: i64) -> NaiveDate {
        crate::engine::window::local_day(ms, self.tz)
    }

    /// Open intervals as UTC `[start, end)`, from the local day of `from_ms` on.
    fn open_from(&self, from_ms: i64) -> impl Iterator<Item = (i64, i64)> + '_ {
        let first = self.local_date(from_ms);
        (0..HORIZON_DAYS).flat_map(move |i| {
            let date = first + chrono::Duration::days(i);
            self.intervals(date).iter().map(move |iv| {
                (
                    self.instant(date, Some(iv.start)),
                    self.instant(date, iv.end),
                )
            })
        })
    }

    /// The instant when `dur_ms` of open time has passed after `start_ms`.
    pub fn add(&self, start_ms: i64, dur_ms: i64) -> i64 {
        if self.always {
            return start_ms.saturating_add(dur_ms);
        }
        let mut left = dur_ms;
        for (s, e) in self.open_from(start_ms) {
            if e <= start_ms {
                continue;
            }
            let from = s.max(start_ms);
            if left <= e - from {
                return from + left;
            }
            left -= e - from;
        }
        i64::MAX
    }

    /// The instant `dur_ms` of open time before `end_ms` (for due-soon).
    pub fn sub(&self, end_ms: i64, dur_ms: i64) -> i64 {
        if self.always {
            return end_ms.saturating_sub(dur_ms);
        }
        // Walk backwards day by day.
        let last = self.local_date(end_ms);
        let mut left = dur_ms;
        for i in 0..HORIZON_DAYS {
            let date = last - chrono::Duration::days(i);
            for iv in self.intervals(date).iter().rev() {
                let (s, e) = (
                    self.instant(date, Some(iv.start)),
                    self.instant(date, iv.end),
                );
                if s >= end_ms {
                    continue;
                }
                let to = e.min(end_ms);
                if left <= to - s {
                    return to - left;
                }
                left -= to - s;
            }
        }
        i64::MIN
    }

    /// Open time between two instants (0 when `b <= a`).
    pub fn between(&self, a: i64, b: i64) -> i64 {
        if b <= a {
            return 0;
        }
        if self.always {
            return b - a;
        }
        let mut total = 0;
        for (s, e) in self.open_from(a) {
            if s >= b {
                break;
            }
            if e <= a {
                continue;
            }
            total += e.min(b) - s.max(a);
        }
        total
    }
}

/// Formats an instant for messages and tests.
pub fn show(ms: i64, tz: Tz) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal(tz: &str, extra: &str) -> Calendar {
        let text = format!(
            "mon = [\"08:00-12:00\", \"13:00-18:00\"]\ntue = [\"08:00-18:00\"]\nwed = [\"08:00-18:00\"]\nthu = [\"08:00-18:00\"]\nfri = [\"08:00-18:00\"]\n{extra}"
        );
        let h: HoursConfig = toml::from_str(&text).expect("hours parse");
        Calendar::from_config(tz.parse().expect("tz"), &h, "hours").expect("valid")
    }

    fn at(c: &Calendar, local: &str) -> i64 {
        let l = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").expect("time");
        c.tz.from_local_datetime(&l)
            .earliest()
            .expect("exists")
            .timestamp_millis()
    }

    const H: i64 = 3_600_000;
    const M: i64 = 60_000;

    #[test]
    fn the_1755_case_skips_the_night() {
        let c = cal("Europe/Berlin", "");
        // Tuesday 17:55 + 2 h business = Wednesday 09:55.
        let due = c.add(at(&c, "2026-03-03 17:55"), 2 * H);
        assert_eq!(show(due, c.tz), "2026-03-04 09:55 CET");
    }

    #[test]
    fn friday_evening_skips_the_weekend_and_lunch() {
        let c = cal("Europe/Berlin", "");
        let due = c.add(at(&c, "2026-03-06 17:00"), 5 * H);
        // 1 h on Friday, then Monday 08:00-12:00 (4 h): due 12:00 Monday.
        assert_eq!(show(due, c.tz), "2026-03-09 12:00 CET");
        let due = c.add(at(&c, "2026-03-06 17:00"), 5 * H + 30 * M);
        assert_eq!(
            show(due, c.tz),
            "2026-03-09 13:30 CET",
            "lunch 12-13 is closed"
        );
    }

    #[test]
    fn holidays_yearly_dates_and_special_days() {
        let c = cal(
            "Europe/Berlin",
            "holidays = [\"2026-12-24\", \"12-25\", \"01-01\"]\n[special]\n\"2026-12-23\" = [\"08:00-10:00\"]\n",
        );
        // Tue 22 Dec 17:00 + 4 h: 1 h Tue, 2 h on the short Wed 23rd,
        // Thu 24th and Fri 25th closed, Sat/Sun closed, Mon 28th 08:00 + 1 h.
        let due = c.add(at(&c, "2026-12-22 17:00"), 4 * H);
        assert_eq!(show(due, c.tz), "2026-12-28 09:00 CET");
        // The yearly 01-01 applies in any year.
        let due = c.add(at(&c, "2027-12-31 17:30"), H);
        assert_eq!(show(due, c.tz), "2028-01-03 08:30 CET");
    }

    #[test]
    fn slas_longer_than_an_open_day() {
        let c = cal("Europe/Berlin", "");
        // 24 business hours from Monday 08:00: Mon 9 h, Tue 10 h, Wed 5 h.
        let due = c.add(at(&c, "2026-03-02 08:00"), 24 * H);
        assert_eq!(show(due, c.tz), "2026-03-04 13:00 CET");
        assert_eq!(c.between(at(&c, "2026-03-02 08:00"), due), 24 * H);
    }

    #[test]
    fn dst_spring_forward_and_fall_back_in_zurich() {
        let text = "mon=[\"06:00-22:00\"]\ntue=[\"06:00-22:00\"]\nwed=[\"06:00-22:00\"]\nthu=[\"06:00-22:00\"]\nfri=[\"06:00-22:00\"]\nsat=[\"00:00-24:00\"]\nsun=[\"00:00-24:00\"]\n";
        let h: HoursConfig = toml::from_str(text).expect("parse");
        let c =
            Calendar::from_config("Europe/Zurich".parse().expect("tz"), &h, "h").expect("valid");
        // Sat 28 Mar 2026 20:00 + 10 h: the night to Sunday has only 23 h
        // (02:00 -> 03:00), so 10 h of open time end at 07:00 local.
        let due = c.add(at(&c, "2026-03-28 20:00"), 10 * H);
        assert_eq!(show(due, c.tz), "2026-03-29 07:00 CEST");
        assert_eq!(
            due - at(&c, "2026-03-28 20:00"),
            10 * H,
            "open all night: business = wall"
        );
        // Sat 24 Oct 20:00 + 10 h: the night has 25 h (03:00 -> 02:00).
        let due = c.add(at(&c, "2026-10-24 20:00"), 10 * H);
        assert_eq!(show(due, c.tz), "2026-10-25 05:00 CET");
        // A weekday interval across no DST: Friday 21:00 + 2 h -> Sat 01:00.
        let due = c.add(at(&c, "2026-03-27 21:00"), 2 * H);
        assert_eq!(show(due, c.tz), "2026-03-28 01:00 CET");
    }

    #[test]
    fn sub_is_the_inverse_of_add() {
        let c = cal("Europe/Berlin", "holidays=[\"2026-03-10\"]");
        let start = at(&c, "2026-03-06 17:20");
        for d in [10 * M, 2 * H, 9 * H, 30 * H] {
            let due = c.add(start, d);
            assert_eq!(c.sub(due, d), start.max(c.sub(due, d)), "{d}");
            assert_eq!(c.between(c.sub(due, d), due), d);
        }
    }

    #[test]
    fn bad_hours_are_explained() {
        let h: HoursConfig = toml::from_str("mon=[\"18:00-08:00\"]").expect("parse");
        let e = Calendar::from_config(Tz::UTC, &h, "sites.hq.hours").expect_err("invalid");
        assert_eq!(e.path, "sites.hq.hours.mon");
        let h: HoursConfig =
            toml::from_str("mon=[\"08:00-12:00\"]\nholidays=[\"24.12.\"]").expect("parse");
        let e = Calendar::from_config(Tz::UTC, &h, "h").expect_err("invalid");
        assert_eq!(e.path, "h.holidays");
        let h = HoursConfig::default();
        assert!(
            Calendar::from_config(Tz::UTC, &h, "h").is_err(),
            "never open"
        );
    }
}
