//! The sums kept per queue, team and agent: contacts, handling time and
//! sales. One shape for all three so that a definition (AHT, conversion,
//! net revenue) is computed one way everywhere.

use crate::event::SaleKind;

/// Sales counters that only grow (Prometheus `_total` series).
#[derive(Debug, Default, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SalesTotals {
    pub by_kind: [u64; 6],
    pub revenue: f64,
    /// Incremental revenue of sales that added value.
    pub gain: f64,
    /// Incremental revenue lost (downgrades), as a positive amount.
    pub loss: f64,
    pub cancelled: u64,
    pub cancelled_revenue: f64,
}

impl SalesTotals {
    pub fn add(&mut self, kind: SaleKind, revenue: f64, incremental: f64) {
        self.by_kind[kind.index()] += 1;
        self.revenue += revenue;
        if incremental >= 0.0 {
            self.gain += incremental;
        } else {
            self.loss -= incremental;
        }
    }

    pub fn cancel(&mut self, revenue: f64) {
        self.cancelled += 1;
        self.cancelled_revenue += revenue;
    }

    pub fn count(&self) -> u64 {
        self.by_kind.iter().sum()
    }
}

/// Today's contact and sales figures; sales are net of cancellations.
#[derive(Debug, Default, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DayTally {
    /// Contacts whose conversation ended (or task completed) today.
    pub contacts: u64,
    /// Of those, the ones carrying at least one sale not cancelled.
    pub converted: u64,
    /// Contacts whose after-call work ended today: the AHT population.
    pub wrapped: u64,
    pub talk_ms: i64,
    pub hold_ms: i64,
    pub wrap_ms: i64,
    pub sales: u64,
    pub revenue: f64,
    pub incremental: f64,
    pub cancelled: u64,
}

impl DayTally {
    /// Average handling time (talk + hold + wrap) in seconds.
    pub fn aht_s(&self) -> Option<f64> {
        (self.wrapped > 0).then(|| {
            (self.talk_ms + self.hold_ms + self.wrap_ms) as f64 / 1000.0 / self.wrapped as f64
        })
    }

    pub fn avg_s(&self, ms: i64) -> Option<f64> {
        (self.wrapped > 0).then(|| ms as f64 / 1000.0 / self.wrapped as f64)
    }

    pub fn conversion(&self) -> Option<f64> {
        (self.contacts > 0).then(|| self.converted as f64 / self.contacts as f64)
    }

    pub fn wrapped(&mut self, talk_ms: i64, hold_ms: i64, wrap_ms: i64) {
        self.wrapped += 1;
        self.talk_ms += talk_ms;
        self.hold_ms += hold_ms;
        self.wrap_ms += wrap_ms;
    }

    pub fn sold(&mut self, revenue: f64, incremental: f64) {
        self.sales += 1;
        self.revenue += revenue;
        self.incremental += incremental;
    }

    pub fn unsold(&mut self, revenue: f64, incremental: f64) {
        self.sales = self.sales.saturating_sub(1);
        self.revenue -= revenue;
        self.incremental -= incremental;
        self.cancelled += 1;
    }
}
