//! Fixed-bucket histograms for the Prometheus exposition.
//!
//! Buckets are chosen per measured quantity (see `metric.rs`); observing
//! is an index search over at most a dozen bounds, with no allocation.

/// Cumulative-on-render histogram with static bucket bounds (seconds).
/// Serialised without its bounds: they are static and restored by
/// `Histogram::with_bounds` when a snapshot is loaded.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Histogram {
    #[serde(skip, default = "no_bounds")]
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

fn no_bounds() -> &'static [f64] {
    &[]
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    /// Re-attaches the static bounds after deserialisation.
    pub fn set_bounds(&mut self, bounds: &'static [f64]) {
        self.counts.resize(bounds.len(), 0);
        self.bounds = bounds;
    }

    pub fn observe(&mut self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }

    pub fn bounds(&self) -> &'static [f64] {
        self.bounds
    }

    /// Cumulative counts per bound (the `le` buckets without `+Inf`).
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let mut acc = 0;
        self.bounds.iter().zip(&self.counts).map(move |(b, c)| {
            acc += c;
            (*b, acc)
        })
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_inclusive() {
        static B: [f64; 3] = [1.0, 5.0, 10.0];
        let mut h = Histogram::new(&B);
        for v in [0.5, 1.0, 3.0, 20.0] {
            h.observe(v);
        }
        let c: Vec<_> = h.cumulative().collect();
        assert_eq!(c, vec![(1.0, 2), (5.0, 3), (10.0, 3)]);
        assert_eq!(h.count(), 4);
        assert_eq!(h.sum(), 24.5);
    }
}
