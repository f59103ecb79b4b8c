//! Duplicate detection by event id, bounded in count and in time.
//!
//! A sender may retry anything it did not see acknowledged; the ids of
//! applied events are remembered for the configured horizon (and at most
//! `capacity` of them, oldest forgotten first) so that a retry is counted
//! as a duplicate instead of being applied twice.

use std::collections::VecDeque;
use std::hash::BuildHasher;

use hashbrown::hash_table::{Entry, HashTable};

use crate::event::Text;

/// A remembered id's place in `order`: 32 bits of its hash (so growing
/// the table never re-hashes the strings) and its position, wrapping
/// (the capacity stays far below 2^31, so `seq - head` is unambiguous).
/// Eight bytes a slot: the table is the largest part of the detector.
#[derive(Debug, Clone, Copy)]
struct Slot {
    tag: u32,
    /// Absolute position, wrapping: `order[seq - head]`.
    seq: u32,
}

/// The table's hash of a slot: spreads the stored 32 bits over 64, since
/// hashbrown takes its control tag from the top bits.
fn spread(tag: u32) -> u64 {
    u64::from(tag).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The most ids remembered, whatever the configuration says.
pub const MAX_CAPACITY: usize = 1 << 30;

/// The ids live once, in arrival order; the hash table only points into
/// that queue. Per event this costs one string hash and one probe
/// (profiling showed the former set-plus-queue spending half of
/// `Engine::apply` on hashing, cloning and re-hashing ids).
/// Serialised as the ordered ids only; the table is rebuilt on load.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Dedup {
    #[serde(skip)]
    seen: HashTable<Slot>,
    order: VecDeque<(i64, Text)>,
    /// The absolute position of `order.front()`, wrapping.
    #[serde(skip)]
    head: u32,
    #[serde(skip)]
    state: foldhash::fast::RandomState,
    #[serde(skip)]
    capacity: usize,
    #[serde(skip)]
    horizon_ms: i64,
}

impl Dedup {
    pub fn new(capacity: usize, horizon_ms: i64) -> Self {
        Dedup {
            capacity: capacity.min(MAX_CAPACITY),
            horizon_ms,
            ..Dedup::default()
        }
    }

    /// Restores the lookup table and the configured bounds after loading.
    pub fn restore(self, capacity: usize, horizon_ms: i64) -> Self {
        let mut d = Dedup::new(capacity, horizon_ms);
        for (t, id) in self.order {
            d.insert(&id, t);
        }
        d
    }

    fn tag(&self, id: &str) -> u32 {
        // The low half: foldhash mixes every input bit into both halves.
        self.state.hash_one(id) as u32
    }

    pub fn contains(&self, id: &str) -> bool {
        let tag = self.tag(id);
        let (order, head) = (&self.order, self.head);
        self.seen
            .find(spread(tag), |s| {
                s.tag == tag && id_at(order, head, s.seq) == Some(id)
            })
            .is_some()
    }

    /// Records an applied event's id at `now`.
    pub fn insert(&mut self, id: &Text, now_ms: i64) {
        let tag = self.tag(id);
        let seq = self.head.wrapping_add(self.order.len() as u32);
        let (order, head) = (&self.order, self.head);
        let same = |s: &Slot| s.tag == tag && id_at(order, head, s.seq) == Some(id.as_str());
        match self.seen.entry(spread(tag), same, |s| spread(s.tag)) {
            Entry::Occupied(_) => return,
            Entry::Vacant(v) => {
                v.insert(Slot { tag, seq });
            }
        }
        self.order.push_back((now_ms, id.clone()));
        while self.order.len() > self.capacity {
            self.pop();
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
        // After a burst, give the room back (neither shrinks by itself).
        if self.order.capacity() > 4096 && self.order.len() * 4 < self.order.capacity() {
            self.order.shrink_to_fit();
            self.seen.shrink_to_fit(|s| spread(s.tag));
        }
        n
    }

    fn pop(&mut self) {
        if let Some((_, id)) = self.order.pop_front() {
            let (tag, seq) = (self.tag(&id), self.head);
            if let Ok(e) = self.seen.find_entry(spread(tag), |s| s.seq == seq) {
                e.remove();
            }
            self.head = self.head.wrapping_add(1);
        }
    }
}

fn id_at(order: &VecDeque<(i64, Text)>, head: u32, seq: u32) -> Option<&str> {
    order
        .get(seq.wrapping_sub(head) as usize)
        .map(|(_, id)| id.as_str())
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
        d.insert(&"c".into(), 1020);
        d.insert(&"d".into(), 1030);
        assert!(
            d.contains("c") && d.contains("d"),
            "a repeat is not a second entry"
        );
        let back: Dedup =
            postcard::from_bytes(&postcard::to_allocvec(&d).expect("encode")).expect("decode");
        let back = back.restore(2, 1000);
        assert!(back.contains("c") && back.contains("d") && !back.contains("b"));
        assert_eq!(back.order.len(), 2);
    }

    #[test]
    fn expiry_after_a_burst_gives_the_room_back() {
        let mut d = Dedup::new(1_000_000, 1000);
        for i in 0..50_000 {
            d.insert(&Text::from(format!("e{i}")), 0);
        }
        d.insert(&"late".into(), 5000);
        let before = d.order.capacity();
        assert_eq!(d.expire(5500), 50_000);
        assert!(d.order.capacity() * 4 < before && d.contains("late"));
    }

    proptest::proptest! {
        /// Against a naive model (a queue searched linearly), over random
        /// inserts of a small id alphabet, expiries and capacities.
        #[test]
        fn agrees_with_a_naive_queue(
            start in proptest::sample::select(vec![0u32, u32::MAX - 5]),
            cap in 1usize..8,
            ops in proptest::collection::vec((0u8..12, 0i64..50, proptest::bool::ANY), 0..200),
        ) {
            let mut d = Dedup::new(cap, 100);
            d.head = start; // positions wrap around u32::MAX
            let mut model: VecDeque<(i64, String)> = VecDeque::new();
            let mut now = 0;
            for (id, dt, expire) in ops {
                now += dt;
                let id = format!("e{id}");
                if expire {
                    d.expire(now);
                    while model.front().is_some_and(|(t, _)| now - t > 100) {
                        model.pop_front();
                    }
                } else {
                    d.insert(&Text::from(id.as_str()), now);
                    if !model.iter().any(|(_, x)| *x == id) {
                        model.push_back((now, id));
                        while model.len() > cap {
                            model.pop_front();
                        }
                    }
                }
                for k in 0..12u8 {
                    let k = format!("e{k}");
                    proptest::prop_assert_eq!(d.contains(&k), model.iter().any(|(_, x)| *x == k));
                }
            }
        }
    }
}
