//! The ledger: a queue's sums per interval (15 minutes by default), kept
//! for `retention.goal_intervals`, from which the scorecards add up any
//! period (today, week, month, the last hour) and the guardrail judges
//! each interval on its own.
//!
//! Sparse: only intervals in which something happened hold a slot, so a
//! queue that is quiet at night costs nothing then. Events are booked in
//! the interval of their own time (a sale cancelled later is taken off
//! the interval the sale was booked in), so a replay builds the same
//! ledger. Agents keep one too, of today only, when agent scorecards
//! are on (`privacy.agent_scorecards`).

use std::collections::BTreeMap;

use super::queue::QueueCounts;
use super::tally::DayTally;
use crate::buckets;

/// Completion-time histogram: counts per `buckets::COMPLETION` bound,
/// and the last for longer.
pub type Durations = [u32; 13];

#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskSlot {
    pub kind: u8,
    pub met: u64,
    pub missed: u64,
    pub durations: Durations,
}

#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Slot {
    pub counts: QueueCounts,
    /// Sum of the waits of calls answered.
    pub wait_ms: i64,
    /// Longest wait of a call answered or abandoned.
    pub max_wait_ms: i64,
    pub tally: DayTally,
    /// Tasks completed, by kind (few kinds per interval: a small list).
    pub tasks: Vec<TaskSlot>,
    /// QA scores given in the interval (docs/quality.md).
    pub qa: super::qa::QaSums,
    /// Coaching sums of the tagged contacts handled in the interval.
    pub coach: super::qa::CoachSums,
}

impl Slot {
    pub fn task(&mut self, kind: u8) -> &mut TaskSlot {
        let i = match self.tasks.iter().position(|t| t.kind == kind) {
            Some(i) => i,
            None => {
                self.tasks.push(TaskSlot {
                    kind,
                    ..TaskSlot::default()
                });
                self.tasks.len() - 1
            }
        };
        &mut self.tasks[i]
    }
}

/// Sums per interval: a queue's `Slot`s, or (for agent scorecards) an
/// agent's `DayTally`s.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ledger<S = Slot> {
    /// Keyed by the interval's start (UTC ms, a multiple of its length).
    slots: BTreeMap<i64, S>,
}

impl<S> Default for Ledger<S> {
    fn default() -> Self {
        Ledger {
            slots: BTreeMap::new(),
        }
    }
}

impl<S: Default> Ledger<S> {
    /// The slot of the interval holding `t`, created on first use.
    pub fn at(&mut self, t: i64, interval_ms: i64) -> &mut S {
        let start = t.div_euclid(interval_ms).saturating_mul(interval_ms);
        self.slots.entry(start).or_default()
    }

    /// The slot of the interval holding `t`, if it exists.
    pub fn get_mut(&mut self, t: i64, interval_ms: i64) -> Option<&mut S> {
        let start = t.div_euclid(interval_ms).saturating_mul(interval_ms);
        self.slots.get_mut(&start)
    }

    /// Slots whose interval starts in `[from, to)`, with their starts.
    pub fn range(&self, from: i64, to: i64) -> impl Iterator<Item = (i64, &S)> {
        self.slots.range(from..to.max(from)).map(|(k, v)| (*k, v))
    }

    /// Drops the intervals that start before `before`.
    pub fn prune(&mut self, before: i64) {
        if self
            .slots
            .first_key_value()
            .is_some_and(|(k, _)| *k < before)
        {
            self.slots = self.slots.split_off(&before);
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// The histogram bucket of a completion time.
pub fn duration_bucket(ms: i64) -> usize {
    let s = ms as f64 / 1000.0;
    buckets::COMPLETION
        .iter()
        .position(|b| s <= *b)
        .unwrap_or(buckets::COMPLETION.len())
}

/// The `q` quantile of a completion histogram, interpolated linearly
/// within its bucket as Prometheus' `histogram_quantile` does; the open
/// last bucket answers its lower bound.
pub fn quantile(d: &Durations, q: f64) -> Option<f64> {
    let total: u64 = d.iter().map(|n| *n as u64).sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut seen = 0u64;
    for (i, n) in d.iter().enumerate() {
        let before = seen;
        seen += *n as u64;
        if (seen as f64) >= rank && *n > 0 {
            let lo = if i == 0 {
                0.0
            } else {
                buckets::COMPLETION[i - 1]
            };
            let Some(hi) = buckets::COMPLETION.get(i) else {
                return Some(lo);
            };
            let within = (rank - before as f64) / *n as f64;
            return Some(lo + (hi - lo) * within);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_align_to_their_interval_and_prune_by_start() {
        let mut l: Ledger = Ledger::default();
        let q = 900_000;
        l.at(1_000, q).counts.offered += 1;
        l.at(899_999, q).counts.offered += 1;
        l.at(900_000, q).counts.offered += 1;
        assert_eq!(l.len(), 2);
        let firsts: Vec<u64> = l.range(0, 900_000).map(|(_, s)| s.counts.offered).collect();
        assert_eq!(firsts, [2]);
        l.prune(900_000);
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn quantiles_interpolate_within_a_bucket() {
        let mut d: Durations = [0; 13];
        // Ten completions between 15 and 30 minutes.
        d[duration_bucket(20 * 60_000)] += 10;
        assert_eq!(quantile(&d, 0.5), Some(1350.0));
        assert_eq!(quantile(&d, 0.9), Some(900.0 + 900.0 * 0.9));
        assert_eq!(quantile(&[0; 13], 0.5), None);
    }
}
