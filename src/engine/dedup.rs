//! Duplicate detection by event id, bounded in count and in time.
//!
//! A sender may retry anything it did not see acknowledged; the ids of
//! applied events are remembered for the configured horizon (and at most
//! `capacity` of them, oldest forgotten first) so that a retry is counted
//! as a duplicate instead of being applied twice.

use std::collections::VecDeque;

use crate::event::Text;

type Set = std::collections::HashSet<Text, foldhash::fast::RandomState>;

/// Serialised as the ordered ids only; the set is rebuilt on load.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Dedup {
    #[serde(skip)]
    seen: Set,
    order: VecDeque<(i64, Text)>,
    #[serde(skip)]
    capacity: usize,
    #[serde(skip)]
    horizon_ms: i64,
}

impl Dedup {
    pub fn new(capacity: usize, horizon_ms: i64) -> Self {
        Dedup {
            seen: Set::default(),
            order: VecDeque::new(),
            capacity,
            horizon_ms,
        }
    }

    /// Restores the lookup set and the configured bounds after loading.
    pub fn restore(mut self, capacity: usize, horizon_ms: i64) -> Self {
        self.capacity = capacity;
        self.horizon_ms = horizon_ms;
        self.seen = self.order.iter().map(|(_, id)| id.clone()).collect();
        while self.order.len() > capacity {
            self.pop();
        }
        self
    }

    pub fn contains(&self, id: &str) -> bool {
        self.seen.contains(id)
    }

    /// Records an applied event's id at `now`.
    pub fn insert(&mut self, id: &Text, now_ms: i64) {
        if self.seen.insert(id.clone()) {
            self.order.push_back((now_ms, id.clone()));
            while self.order.len() > self.capacity {
                self.pop();
            }
        }
    }

    /// Forgets ids older than the horizon; returns how many.
    pub fn expire(&mut self, now_ms: i64) -> usize {
        let mut n = 0;
        while self
            .order
            .front()
            .is_some_and(|(t, _)| now_ms - t > self.horizon_ms)
        {
            self.pop();
            n += 1;
        }
        n
    }

    fn pop(&mut self) {
        if let Some((_, id)) = self.order.pop_front() {
            self.seen.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_by_capacity_and_by_horizon() {
        let mut d = Dedup::new(2, 1000);
        d.insert(&"a".into(), 0);
        d.insert(&"b".into(), 10);
        d.insert(&"c".into(), 20);
        assert!(!d.contains("a"), "capacity 2 evicts the oldest");
        assert!(d.contains("b") && d.contains("c"));
        d.expire(1015);
        assert!(!d.contains("b") && d.contains("c"));
    }
}
