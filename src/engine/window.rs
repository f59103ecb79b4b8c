//! Time windows: "today" in a site's time zone, and the rolling last hour.
//!
//! Both are fixed-size and allocation-free on the hot path. A [`Daily`]
//! keeps its day's bounds in UTC milliseconds so that "is this event in
//! today?" is two comparisons, not a time-zone conversion per event; the
//! time-zone arithmetic runs once per day rollover.

use chrono::{NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// The local calendar date of an instant.
pub fn local_day(ms: i64, tz: Tz) -> NaiveDate {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.with_timezone(&tz).date_naive(),
        None => NaiveDate::MIN,
    }
}

/// The UTC millisecond bounds `[start, end)` of a local day. A midnight
/// that does not exist (a DST jump at 00:00) starts the day at the first
/// instant that does.
pub fn day_bounds(day: NaiveDate, tz: Tz) -> (i64, i64) {
    let start_of = |d: NaiveDate| -> i64 {
        let midnight = d.and_hms_opt(0, 0, 0).unwrap_or_default();
        for minutes in 0..=180 {
            let t = midnight + chrono::Duration::minutes(minutes);
            if let Some(z) = tz.from_local_datetime(&t).earliest() {
                return z.timestamp_millis();
            }
        }
        midnight.and_utc().timestamp_millis()
    };
    let next = day.succ_opt().unwrap_or(day);
    (start_of(day), start_of(next))
}

/// Values that belong to one local day and reset at the next.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Daily<T> {
    start: i64,
    end: i64,
    value: T,
}

impl<T: Default> Default for Daily<T> {
    fn default() -> Self {
        Daily {
            start: i64::MIN,
            end: i64::MIN,
            value: T::default(),
        }
    }
}

impl<T: Default> Daily<T> {
    /// The bucket for an event at `ms`: today's, a fresh one when `ms` is
    /// on a later day, `None` when `ms` is on an earlier day (a late event
    /// counts in the totals but not in a day already over).
    pub fn at_mut(&mut self, ms: i64, tz: Tz) -> Option<&mut T> {
        if ms >= self.end {
            let (start, end) = day_bounds(local_day(ms, tz), tz);
            self.start = start;
            self.end = end;
            self.value = T::default();
        }
        (ms >= self.start).then_some(&mut self.value)
    }

    /// Today's values as of `now`, if anything happened today.
    pub fn get(&self, now_ms: i64) -> Option<&T> {
        (now_ms >= self.start && now_ms < self.end).then_some(&self.value)
    }

    /// Whether `ms` falls in the day this bucket currently holds.
    pub fn holds(&self, ms: i64) -> bool {
        ms >= self.start && ms < self.end
    }
}

/// Minutes in the rolling window.
pub const ROLLING_MINUTES: i64 = 60;

/// Per-minute buckets covering the last hour.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Rolling<T> {
    minutes: Vec<i64>,
    values: Vec<T>,
}

impl<T: Default + Copy> Default for Rolling<T> {
    fn default() -> Self {
        Rolling {
            minutes: vec![i64::MIN; ROLLING_MINUTES as usize],
            values: vec![T::default(); ROLLING_MINUTES as usize],
        }
    }
}

impl<T: Default + Copy> Rolling<T> {
    /// The bucket of the minute of `ms`, or `None` if that minute has
    /// already been overwritten by a later one (older than the window).
    pub fn at_mut(&mut self, ms: i64) -> Option<&mut T> {
        let minute = ms.div_euclid(60_000);
        let slot = minute.rem_euclid(ROLLING_MINUTES) as usize;
        if self.minutes[slot] < minute {
            self.minutes[slot] = minute;
            self.values[slot] = T::default();
        }
        (self.minutes[slot] == minute).then_some(&mut self.values[slot])
    }

    /// Folds the buckets of the minutes in `(now - 60 min, now]`.
    pub fn fold<A>(&self, now_ms: i64, init: A, mut f: impl FnMut(A, &T) -> A) -> A {
        let now_min = now_ms.div_euclid(60_000);
        let mut acc = init;
        for (m, v) in self.minutes.iter().zip(self.values.iter()) {
            if *m > now_min - ROLLING_MINUTES && *m <= now_min {
                acc = f(acc, v);
            }
        }
        acc
    }
}

/// `[from, to)` of a period around `now`, local to `tz`.
pub fn period_bounds(
    period: crate::config::Period,
    now_ms: i64,
    tz: Tz,
    interval_ms: i64,
) -> (i64, i64) {
    use chrono::Datelike;
    let today = local_day(now_ms, tz);
    match period {
        crate::config::Period::Today => day_bounds(today, tz),
        crate::config::Period::Week => {
            let monday =
                today - chrono::Duration::days(today.weekday().num_days_from_monday() as i64);
            let (from, _) = day_bounds(monday, tz);
            let (_, to) = day_bounds(monday + chrono::Duration::days(6), tz);
            (from, to)
        }
        crate::config::Period::Month => {
            let first = today.with_day(1).unwrap_or(today);
            let next = first
                .checked_add_months(chrono::Months::new(1))
                .unwrap_or(first);
            (day_bounds(first, tz).0, day_bounds(next, tz).0)
        }
        crate::config::Period::Rolling60m => {
            let from = (now_ms - 3_600_000).div_euclid(interval_ms) * interval_ms;
            (from, now_ms.saturating_add(interval_ms))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("valid")
            .timestamp_millis()
    }

    #[test]
    fn today_starts_at_local_midnight() {
        let tz: Tz = "Europe/Berlin".parse().expect("tz");
        let mut d: Daily<u32> = Daily::default();
        // 23:30 UTC on 1 March is 00:30 on 2 March in Berlin.
        *d.at_mut(ms("2026-03-01T22:30:00Z"), tz).expect("today") += 1;
        *d.at_mut(ms("2026-03-01T23:30:00Z"), tz).expect("next day") += 1;
        assert_eq!(d.get(ms("2026-03-01T23:31:00Z")), Some(&1));
        // A late event from the previous local day is not today's.
        assert!(d.at_mut(ms("2026-03-01T22:59:00Z"), tz).is_none());
        // Nothing happened on 3 March yet.
        assert_eq!(d.get(ms("2026-03-02T23:00:01Z")), None);
    }

    #[test]
    fn day_bounds_follow_dst() {
        let tz: Tz = "Europe/Zurich".parse().expect("tz");
        let day = NaiveDate::from_ymd_opt(2026, 3, 29).expect("date");
        let (s, e) = day_bounds(day, tz);
        assert_eq!(e - s, 23 * 3_600_000, "spring-forward day has 23 hours");
        let day = NaiveDate::from_ymd_opt(2026, 10, 25).expect("date");
        let (s, e) = day_bounds(day, tz);
        assert_eq!(e - s, 25 * 3_600_000, "fall-back day has 25 hours");
    }

    #[test]
    fn rolling_keeps_only_the_last_hour() {
        let mut r: Rolling<u32> = Rolling::default();
        let t0 = ms("2026-03-02T08:00:00Z");
        *r.at_mut(t0).expect("slot") += 1;
        *r.at_mut(t0 + 30 * 60_000).expect("slot") += 2;
        let sum = |now| r.fold(now, 0, |a, v| a + v);
        assert_eq!(sum(t0 + 59 * 60_000), 3);
        assert_eq!(sum(t0 + 60 * 60_000), 2, "the 08:00 minute left the window");
        *r.at_mut(t0 + 61 * 60_000).expect("slot") += 4;
        // 08:00's slot is reused by 09:00; an event from 08:00 is now too old.
        *r.at_mut(t0 + 60 * 60_000).expect("slot") += 8;
        assert!(r.at_mut(t0).is_none());
    }
}
