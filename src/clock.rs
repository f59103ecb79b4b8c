//! Where "now" comes from.
//!
//! The engine never reads the system time itself: it is handed a [`Clock`].
//! The daemon uses the system clock; offline replay and tests use the event
//! clock (now = the latest event time applied), which makes every age and
//! deadline a pure function of the input.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// A source of the current time in Unix milliseconds.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
    /// Called by the writer with each applied event's time; only the event
    /// clock cares.
    fn observe(&self, _event_ms: i64) {}
}

/// Wall-clock time.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// Now is the latest event time seen (never goes backwards).
#[derive(Debug, Default)]
pub struct EventClock {
    latest: AtomicI64,
}

impl Clock for EventClock {
    fn now_ms(&self) -> i64 {
        self.latest.load(Ordering::Acquire)
    }
    fn observe(&self, event_ms: i64) {
        self.latest.fetch_max(event_ms, Ordering::AcqRel);
    }
}

/// A clock a test sets by hand.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicI64,
}

impl ManualClock {
    pub fn new(now_ms: i64) -> Self {
        ManualClock {
            now: AtomicI64::new(now_ms),
        }
    }
    pub fn set(&self, now_ms: i64) {
        self.now.store(now_ms, Ordering::Release);
    }
    pub fn advance(&self, by_ms: i64) {
        self.now.fetch_add(by_ms, Ordering::AcqRel);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::Acquire)
    }
}

pub type SharedClock = Arc<dyn Clock>;
