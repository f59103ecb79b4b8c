//! The state digest: one hash that means "same state".
//!
//! SHA-256 over a canonical encoding of everything that decides what the
//! engine shows and how it answers the next event: every entity map in
//! key order (hash maps iterate in a random order per process), the
//! duplicate detector's ids, the engine's clock and counters. It leaves
//! out what is not state: read-time ages (views, computed per read), the
//! count of duplicates received (the senders' retries), the change
//! counter readers poll, and configuration (not stored). So two daemons
//! that applied the same events in the same order report the same digest
//! at any moment, whenever each is read.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Engine, EngineCounters, Map};

/// Feeds postcard bytes straight into the hash (no buffer of the state).
struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn put<T: Serialize + ?Sized>(h: &mut Sha256, v: &T) {
    // Serialising plain data into a hash cannot fail.
    let _ = postcard::to_io(v, HashWriter(h));
}

/// A map's entries in key order.
fn sorted<K: Ord + Serialize, V: Serialize>(h: &mut Sha256, m: &Map<K, V>) {
    let mut v: Vec<(&K, &V)> = m.iter().collect();
    v.sort_unstable_by(|a, b| a.0.cmp(b.0));
    put(h, &v);
}

impl Engine {
    /// See the module doc; hex SHA-256.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        put(&mut h, "callwatch-state-v1");
        put(&mut h, &self.clock_ms);
        put(&mut h, &self.next_sweep_ms);
        let counters = EngineCounters {
            duplicates: 0,
            ..self.counters
        };
        put(&mut h, &counters);
        put(&mut h, &self.dedup);
        sorted(&mut h, &self.sites);
        sorted(&mut h, &self.queues);
        sorted(&mut h, &self.teams);
        sorted(&mut h, &self.agents);
        sorted(&mut h, &self.calls);
        sorted(&mut h, &self.ended_calls);
        let mut tasks: Vec<_> = self.tasks.iter().collect();
        tasks.sort_unstable_by(|a, b| a.0.cmp(b.0));
        put(&mut h, &tasks);
        sorted(&mut h, &self.closed_tasks);
        put(&mut h, &self.kinds);
        sorted(&mut h, &self.task_stats);
        sorted(&mut h, &self.sales);
        sorted(&mut h, &self.quality.register);
        sorted(&mut h, &self.quality.evaluations);
        sorted(&mut h, &self.quality.tags);
        sorted(&mut h, &self.quality.sales);
        sorted(&mut h, &self.quality.drawn);
        put(&mut h, &self.quality.next_draw_ms);
        put(&mut h, &self.quality.next_prune_ms);
        format!("{:x}", h.finalize())
    }
}
