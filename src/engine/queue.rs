//! A queue: where calls wait, and the service-level counters about them.
//!
//! Service level (default formula) = answered within threshold /
//! (answered + abandoned − short abandons + exited): a caller who left by
//! a timeout or an exit key was not answered in time. Refused callers never
//! entered the queue and are not in it. The raw counters are kept and
//! exported so other formulas can be computed in PromQL.

use super::histogram::Histogram;
use super::ledger::{Ledger, Slot};
use super::settings::QueueParams;
use super::tally::{DayTally, SalesTotals};
use super::window::{Daily, Rolling};
use crate::buckets;
use crate::event::ExitReason;

/// Call counters of a queue (cumulative, or per day / minute).
#[derive(Debug, Default, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QueueCounts {
    pub offered: u64,
    pub answered: u64,
    pub answered_in_sl: u64,
    pub abandoned: u64,
    pub abandoned_short: u64,
    pub transferred_out: u64,
    pub outbound: u64,
    /// Rings at an agent that were not taken (the caller kept waiting).
    pub missed: u64,
    /// Waiting callers who left without an agent other than by hanging
    /// up (timeout, exit key, empty queue): not answered in threshold.
    pub exited: u64,
    /// Callers turned away before the queue (full, joinempty, closed).
    pub refused: u64,
}

impl std::ops::AddAssign for QueueCounts {
    /// Every field, so that no sum over minutes forgets one.
    fn add_assign(&mut self, x: QueueCounts) {
        let QueueCounts {
            offered,
            answered,
            answered_in_sl,
            abandoned,
            abandoned_short,
            transferred_out,
            outbound,
            missed,
            exited,
            refused,
        } = x;
        self.offered += offered;
        self.answered += answered;
        self.answered_in_sl += answered_in_sl;
        self.abandoned += abandoned;
        self.abandoned_short += abandoned_short;
        self.transferred_out += transferred_out;
        self.outbound += outbound;
        self.missed += missed;
        self.exited += exited;
        self.refused += refused;
    }
}

impl QueueCounts {
    /// The default service-level formula; `None` when nothing counts yet.
    pub fn service_level(&self) -> Option<f64> {
        let denom =
            (self.answered + self.abandoned + self.exited).saturating_sub(self.abandoned_short);
        (denom > 0).then(|| self.answered_in_sl as f64 / denom as f64)
    }
}

#[derive(Debug, Default, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct QueueDay {
    pub counts: QueueCounts,
    pub tally: DayTally,
}

/// One minute of the rolling window.
pub type QueueMinute = QueueCounts;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Queue {
    /// Resolved from the configuration (and `site`) when loaded.
    #[serde(skip)]
    pub params: QueueParams,
    /// The site the queue belongs to (kept: it may come from an event).
    pub site: crate::event::Text,
    pub totals: QueueCounts,
    pub today: Daily<QueueDay>,
    pub hour: Rolling<QueueMinute>,
    pub wait: Histogram,
    pub talk: Histogram,
    pub hold: Histogram,
    pub wrap: Histogram,
    pub sales: SalesTotals,
    /// Exits and refusals by `ExitReason` index (cumulative).
    #[serde(default)]
    pub exits: [u64; ExitReason::ALL.len()],
    /// Callbacks owed, created by source (requested, abandoned).
    pub callbacks_created: [u64; 2],
    /// Callbacks closed, by `CloseReason` index.
    pub callbacks_closed: [u64; 5],
    pub last_activity_ms: i64,
    /// Sums per interval, for the scorecards and the guardrail.
    pub ledger: Ledger,
}

impl Queue {
    pub fn new(params: QueueParams) -> Queue {
        Queue {
            site: crate::event::Text::from(params.site.as_str()),
            params,
            totals: QueueCounts::default(),
            today: Daily::default(),
            hour: Rolling::default(),
            wait: Histogram::new(&buckets::WAIT),
            talk: Histogram::new(&buckets::TALK),
            hold: Histogram::new(&buckets::HOLD),
            wrap: Histogram::new(&buckets::WRAP),
            sales: SalesTotals::default(),
            exits: [0; ExitReason::ALL.len()],
            callbacks_created: [0; 2],
            callbacks_closed: [0; 5],
            last_activity_ms: i64::MIN,
            ledger: Ledger::default(),
        }
    }

    /// Applies `f` to the cumulative, today's and this minute's counters.
    fn count(&mut self, t: i64, f: impl Fn(&mut QueueCounts)) {
        self.last_activity_ms = self.last_activity_ms.max(t);
        f(&mut self.totals);
        if let Some(d) = self.today.at_mut(t, self.params.tz) {
            f(&mut d.counts);
        }
        if let Some(m) = self.hour.at_mut(t) {
            f(m);
        }
        f(&mut self.slot(t).counts);
    }

    /// The ledger slot of the interval holding `t`.
    pub fn slot(&mut self, t: i64) -> &mut Slot {
        self.ledger.at(t, self.params.interval_ms)
    }

    pub fn day(&mut self, t: i64) -> Option<&mut DayTally> {
        self.last_activity_ms = self.last_activity_ms.max(t);
        self.today.at_mut(t, self.params.tz).map(|d| &mut d.tally)
    }

    pub fn offered(&mut self, t: i64, outbound: bool) {
        if outbound {
            self.count(t, |c| c.outbound += 1);
        } else {
            self.count(t, |c| c.offered += 1);
        }
    }

    pub fn answered(&mut self, t: i64, wait_ms: i64) {
        let in_sl = wait_ms <= self.params.sl_threshold_ms;
        self.count(t, |c| {
            c.answered += 1;
            if in_sl {
                c.answered_in_sl += 1;
            }
        });
        self.wait.observe(wait_ms as f64 / 1000.0);
        let slot = self.slot(t);
        slot.wait_ms = slot.wait_ms.saturating_add(wait_ms);
        slot.max_wait_ms = slot.max_wait_ms.max(wait_ms);
    }

    pub fn missed(&mut self, t: i64) {
        self.count(t, |c| c.missed += 1);
    }

    pub fn abandoned(&mut self, t: i64, wait_ms: i64) {
        let short = wait_ms < self.params.short_abandon_ms;
        self.count(t, |c| {
            c.abandoned += 1;
            if short {
                c.abandoned_short += 1;
            }
        });
        let slot = self.slot(t);
        slot.max_wait_ms = slot.max_wait_ms.max(wait_ms);
    }

    /// A resync's close is counted by reason only: how that caller left
    /// is unknown, so neither its wait nor the service level hears of it.
    pub fn exited(&mut self, t: i64, wait_ms: i64, reason: ExitReason) {
        self.exits[reason.index()] += 1;
        if reason.counts_against_service_level() {
            self.count(t, |c| c.exited += 1);
            let slot = self.slot(t);
            slot.max_wait_ms = slot.max_wait_ms.max(wait_ms);
        }
    }

    pub fn refused(&mut self, t: i64, reason: ExitReason) {
        self.count(t, |c| c.refused += 1);
        self.exits[reason.index()] += 1;
    }

    pub fn transferred_out(&mut self, t: i64) {
        self.count(t, |c| c.transferred_out += 1);
    }
}
