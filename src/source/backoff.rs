//! The one reconnect/retry policy every source uses.
//!
//! Exponential from `min` to `max` with up to a quarter of jitter, so a
//! fleet of daemons that lost the same PBX or broker does not come back
//! in lockstep. A session that got going resets it.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_millis(250), Duration::from_secs(30))
    }
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        let min = min.max(Duration::from_millis(1));
        Backoff {
            min,
            max: max.max(min),
            next: min,
        }
    }

    /// The delay before the next attempt; doubles the one after.
    pub fn step(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = base.as_millis() as u64 / 4;
        let extra = if jitter == 0 {
            0
        } else {
            rand::random::<u64>() % jitter
        };
        base + Duration::from_millis(extra)
    }

    /// Back to the shortest delay (the peer answered).
    pub fn reset(&mut self) {
        self.next = self.min;
    }

    /// Waits the next delay; `false` if shutdown came first.
    pub async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let d = self.step();
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_with_bounded_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(700));
        let bases = [100u64, 200, 400, 700, 700];
        for base in bases {
            let d = b.step().as_millis() as u64;
            assert!(d >= base && d < base + base / 4 + 1, "{d} for base {base}");
        }
        b.reset();
        assert!(b.step() < Duration::from_millis(126));
    }
}
