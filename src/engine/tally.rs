//! The sums kept per queue, team and agent: contacts, handling time and
//! sales. One shape for all three so that a definition (AHT, conversion,
//! net revenue) is computed one way everywhere.

use crate::event::SaleKind;
use crate::money::Money;

/// Sales counters that only grow (Prometheus `_total` series).
#[derive(Debug, Default, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SalesTotals {
    pub by_kind: [u64; 6],
    pub revenue: Money,
    /// Incremental revenue of sales that added value.
    pub gain: Money,
    /// Incremental revenue lost (downgrades), as a positive amount.
    pub loss: Money,
    pub cancelled: u64,
    pub cancelled_revenue: Money,
}

impl SalesTotals {
    pub fn add(&mut self, kind: SaleKind, revenue: Money, incremental: Money) {
        let n = &mut self.by_kind[kind.index()];
        *n = n.saturating_add(1);
        self.revenue = self.revenue.saturating_add(revenue);
        if incremental.is_negative() {
            self.loss = self.loss.saturating_add(incremental.abs());
        } else {
            self.gain = self.gain.saturating_add(incremental);
        }
    }

    pub fn cancel(&mut self, revenue: Money) {
        self.cancelled = self.cancelled.saturating_add(1);
        self.cancelled_revenue = self.cancelled_revenue.saturating_add(revenue);
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
    pub revenue: Money,
    pub incremental: Money,
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
        self.wrapped = self.wrapped.saturating_add(1);
        self.talk_ms = self.talk_ms.saturating_add(talk_ms);
        self.hold_ms = self.hold_ms.saturating_add(hold_ms);
        self.wrap_ms = self.wrap_ms.saturating_add(wrap_ms);
    }

    pub fn sold(&mut self, revenue: Money, incremental: Money) {
        self.sales = self.sales.saturating_add(1);
        self.revenue = self.revenue.saturating_add(revenue);
        self.incremental = self.incremental.saturating_add(incremental);
    }

    pub fn unsold(&mut self, revenue: Money, incremental: Money) {
        self.sales = self.sales.saturating_sub(1);
        self.revenue = self.revenue.saturating_sub(revenue);
        self.incremental = self.incremental.saturating_sub(incremental);
        self.cancelled = self.cancelled.saturating_add(1);
    }
}
