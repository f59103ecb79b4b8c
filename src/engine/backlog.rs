//! The backlog: open tasks by id, and open callbacks by customer.
//!
//! Tasks live in one slab (`Vec` of slots, freed slots reused) with two
//! hash tables of `u32` slot numbers over it: one by task id, one by
//! (site, customer) for the callbacks that have a customer. Compared with
//! a map of boxed tasks plus a separate customer index this saves a heap
//! allocation and two fat table slots per task (a backlog of a million
//! callbacks is the size the benchmark issue asks about), and keeping
//! both indexes in one type means no way of adding or removing a task can
//! forget one of them.
//!
//! The customer index is a multi-map keyed by a hash of the pair; every
//! slot found is checked against its task's site and customer, so a hash
//! collision costs a comparison, never a wrong match. A task's id, its
//! customer and its callback's site must not change while it is here
//! (`get_mut` callers only touch progress fields).

use std::hash::BuildHasher;

use hashbrown::hash_table::HashTable;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;

use super::Task;
use crate::event::Text;

/// Marks the end of the free list.
const NONE: u32 = u32::MAX;

#[derive(Debug)]
enum Slot {
    Full {
        id: Text,
        task: Task,
    },
    /// A freed slot; the next free one.
    Free(u32),
}

#[derive(Debug, Default)]
pub struct Backlog {
    slots: Vec<Slot>,
    /// First free slot, or `NONE`.
    free: Option<u32>,
    len: usize,
    by_id: HashTable<u32>,
    by_customer: HashTable<u32>,
    state: foldhash::fast::RandomState,
}

fn full(slots: &[Slot], i: u32) -> Option<(&Text, &Task)> {
    match slots.get(i as usize) {
        Some(Slot::Full { id, task }) => Some((id, task)),
        _ => None,
    }
}

/// The (site, customer) a task is indexed under, if any.
fn owed_key(task: &Task) -> Option<(&str, &str)> {
    Some((
        task.callback.as_ref()?.site.as_str(),
        task.customer.as_deref()?,
    ))
}

impl Backlog {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn id_hash(&self, id: &str) -> u64 {
        self.state.hash_one(id)
    }

    fn owed_hash(&self, site: &str, customer: &str) -> u64 {
        self.state.hash_one((site, customer))
    }

    fn slot_of(&self, id: &str) -> Option<u32> {
        let slots = &self.slots;
        self.by_id
            .find(self.id_hash(id), |&i| {
                full(slots, i).is_some_and(|(x, _)| x == id)
            })
            .copied()
    }

    pub fn contains_key(&self, id: &str) -> bool {
        self.slot_of(id).is_some()
    }

    pub fn get(&self, id: &str) -> Option<&Task> {
        full(&self.slots, self.slot_of(id)?).map(|(_, t)| t)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Task> {
        let i = self.slot_of(id)?;
        match self.slots.get_mut(i as usize) {
            Some(Slot::Full { task, .. }) => Some(task),
            _ => None,
        }
    }

    /// Adds a task; an open task with the same id is replaced.
    pub fn insert(&mut self, id: Text, task: Task) {
        self.remove(&id);
        let (id_hash, owed) = (
            self.id_hash(&id),
            owed_key(&task).map(|(s, c)| self.owed_hash(s, c)),
        );
        let entry = Slot::Full { id, task };
        let i = match self.free {
            Some(i) => {
                let next = match self.slots.get(i as usize) {
                    Some(Slot::Free(next)) => *next,
                    _ => NONE,
                };
                self.free = (next != NONE).then_some(next);
                self.slots[i as usize] = entry;
                i
            }
            None => {
                self.slots.push(entry);
                (self.slots.len() - 1) as u32
            }
        };
        self.len += 1;
        let Backlog {
            slots,
            by_id,
            by_customer,
            state,
            ..
        } = self;
        by_id.insert_unique(id_hash, i, |&j| {
            full(slots, j).map_or(0, |(x, _)| state.hash_one(x.as_str()))
        });
        if let Some(h) = owed {
            by_customer.insert_unique(h, i, |&j| {
                full(slots, j)
                    .and_then(|(_, t)| owed_key(t))
                    .map_or(0, |k| state.hash_one(k))
            });
        }
    }

    /// Takes a task out, with both index entries.
    pub fn remove(&mut self, id: &str) -> Option<Task> {
        let i = self.slot_of(id)?;
        let hash = self.id_hash(id);
        if let Ok(e) = self.by_id.find_entry(hash, |&j| j == i) {
            e.remove();
        }
        let owed = full(&self.slots, i)
            .and_then(|(_, t)| owed_key(t))
            .map(|(s, c)| self.owed_hash(s, c));
        if let Some(h) = owed {
            if let Ok(e) = self.by_customer.find_entry(h, |&j| j == i) {
                e.remove();
            }
        }
        let next = self.free.unwrap_or(NONE);
        let slot = std::mem::replace(self.slots.get_mut(i as usize)?, Slot::Free(next));
        self.free = Some(i);
        self.len -= 1;
        match slot {
            Slot::Full { task, .. } => Some(task),
            Slot::Free(_) => None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Text, &Task)> {
        self.slots.iter().filter_map(|s| match s {
            Slot::Full { id, task } => Some((id, task)),
            Slot::Free(_) => None,
        })
    }

    pub fn keys(&self) -> impl Iterator<Item = &Text> {
        self.iter().map(|(id, _)| id)
    }

    pub fn values(&self) -> impl Iterator<Item = &Task> {
        self.iter().map(|(_, t)| t)
    }

    /// The open callbacks owed to `customer` at `site`, in no particular
    /// order.
    pub fn owed_to<'a>(
        &'a self,
        site: &'a str,
        customer: &'a str,
    ) -> impl Iterator<Item = (&'a Text, &'a Task)> + 'a {
        self.by_customer
            .iter_hash(self.owed_hash(site, customer))
            .filter_map(move |&i| {
                let (id, t) = full(&self.slots, i)?;
                (owed_key(t) == Some((site, customer))).then_some((id, t))
            })
    }

    /// Gives memory back after a backlog spike: when at most a quarter of
    /// the slots are in use (and there are more than a few thousand),
    /// rebuilds the slab and both indexes at the size needed now. Slots
    /// are never moved otherwise, so this is the only place a spike's
    /// memory is returned. O(open tasks), at most once per spike.
    pub fn compact(&mut self) -> bool {
        if self.slots.len() <= 4096 || self.len * 4 > self.slots.len() {
            return false;
        }
        let old = std::mem::take(&mut self.slots);
        let mut fresh = Backlog {
            slots: Vec::with_capacity(self.len),
            state: self.state.clone(),
            ..Backlog::default()
        };
        fresh.by_id.reserve(self.len, |_| 0);
        for slot in old {
            if let Slot::Full { id, task } = slot {
                fresh.insert(id, task);
            }
        }
        *self = fresh;
        true
    }

    /// Slots allocated (used or free).
    pub fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    /// Entries in the customer index (for tests of its invariant).
    pub fn owed_entries(&self) -> usize {
        self.by_customer.len()
    }
}

impl<'a> IntoIterator for &'a Backlog {
    type Item = (&'a Text, &'a Task);
    type IntoIter = Box<dyn Iterator<Item = (&'a Text, &'a Task)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// Written as a map of id to task, like the map it replaced, so
/// snapshots keep their format.
impl serde::Serialize for Backlog {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.len))?;
        for (id, t) in self.iter() {
            m.serialize_entry(id, t)?;
        }
        m.end()
    }
}

impl<'de> serde::Deserialize<'de> for Backlog {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Backlog;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of task id to task")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Backlog, A::Error> {
                let mut b = Backlog::default();
                while let Some((id, task)) = a.next_entry::<Text, Task>()? {
                    b.insert(id, task);
                }
                Ok(b)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::engine::{Callback, CallbackSource};

    fn task(customer: Option<&str>, site: Option<&str>, created: i64) -> Task {
        let mut t = Task::for_tests();
        t.customer = customer.map(Text::from);
        t.created_ms = created;
        t.callback = site.map(|s| {
            Box::new(Callback {
                source: CallbackSource::Requested,
                call: None,
                site: Text::from(s),
                requests: 1,
                unsuccessful: 0,
                last_attempt_ms: None,
            })
        });
        t
    }

    #[test]
    fn compaction_returns_a_spike_and_keeps_what_is_open() {
        let mut b = Backlog::default();
        for i in 0..20_000 {
            let customer = format!("c{}", i % 7);
            b.insert(
                Text::from(format!("t{i}")),
                task(Some(&customer), Some("hq"), i),
            );
        }
        for i in 0..20_000 {
            if i % 10 != 0 {
                b.remove(&format!("t{i}"));
            }
        }
        let before = b.capacity();
        assert!(b.compact(), "a tenth in use: compacted");
        assert!(b.capacity() * 4 < before, "{} -> {}", before, b.capacity());
        assert_eq!(b.len(), 2_000);
        assert!(b.contains_key("t10") && !b.contains_key("t11"));
        assert_eq!(b.owed_entries(), 2_000);
        assert_eq!(
            b.owed_to("hq", "c3").count(),
            (0..20_000).filter(|i| i % 10 == 0 && i % 7 == 3).count()
        );
        assert!(!b.compact(), "nothing more to give back");
    }

    proptest::proptest! {
        /// Against a `BTreeMap` model: inserts, replacements and removals
        /// in any order (freed slots are reused), and the customer index
        /// finds exactly the open callbacks of each (site, customer).
        #[test]
        fn agrees_with_a_map(ops in proptest::collection::vec((0u8..16, 0u8..4, proptest::bool::ANY), 0..300)) {
            let mut b = Backlog::default();
            let mut model: BTreeMap<String, (Option<String>, bool)> = BTreeMap::new();
            for (n, (id, cust, add)) in ops.into_iter().enumerate() {
                let id = format!("t{id}");
                let customer = (cust > 0).then(|| format!("c{cust}"));
                if add {
                    let callback = cust != 2;
                    b.insert(Text::from(id.as_str()), task(customer.as_deref(), callback.then_some("hq"), n as i64));
                    model.insert(id, (customer, callback));
                } else {
                    let gone = b.remove(&id);
                    proptest::prop_assert_eq!(gone.is_some(), model.remove(&id).is_some());
                }
                proptest::prop_assert_eq!(b.len(), model.len());
                for id in model.keys() {
                    proptest::prop_assert!(b.contains_key(id));
                }
                proptest::prop_assert_eq!(b.keys().count(), model.len());
                for c in 1..4 {
                    let c = format!("c{c}");
                    let mut found: Vec<&str> = b.owed_to("hq", &c).map(|(id, _)| id.as_str()).collect();
                    found.sort();
                    let want: Vec<&str> = model
                        .iter()
                        .filter(|(_, (cu, cb))| *cb && cu.as_deref() == Some(c.as_str()))
                        .map(|(id, _)| id.as_str())
                        .collect();
                    proptest::prop_assert_eq!(found, want);
                    proptest::prop_assert_eq!(b.owed_to("elsewhere", &c).count(), 0);
                }
            }
            // Serialised like a map, and rebuilt with both indexes.
            let back: Backlog = postcard::from_bytes(&postcard::to_allocvec(&b).expect("encode")).expect("decode");
            proptest::prop_assert_eq!(back.len(), b.len());
            proptest::prop_assert_eq!(back.owed_entries(), b.owed_entries());
        }
    }
}
