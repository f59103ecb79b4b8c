//! Saving and loading the whole engine state (for snapshots).
//!
//! The state is written with postcard (compact, serde-based, no schema
//! evolution beyond serde's): a snapshot is a cache of the journal, so a
//! snapshot an older or newer build cannot read is simply not used and
//! the journal is replayed instead. What comes from the configuration
//! (queue parameters, histogram bounds, limits) is not stored but resolved
//! again on load, so a changed configuration applies after a restart.

use serde::{Deserialize, Serialize};

use super::settings::Settings;
use super::{backlog::Backlog, call::Call, dedup::Dedup};
use super::{
    Agent, ClosedTask, EndedCall, Engine, EngineCounters, Map, Queue, SaleRecord, Site, TaskStats,
    Team,
};
use crate::buckets;
use crate::event::Text;

/// Bumped whenever the layout below changes.
pub const FORMAT: u32 = 7;

#[derive(Serialize)]
struct Out<'a> {
    format: u32,
    dedup: &'a Dedup,
    sites: &'a Map<Text, Site>,
    queues: &'a Map<Text, Queue>,
    teams: &'a Map<Text, Team>,
    agents: &'a Map<Text, Agent>,
    calls: &'a Map<Text, Call>,
    ended_calls: &'a Map<Text, EndedCall>,
    tasks: &'a Backlog,
    closed_tasks: &'a Map<Text, ClosedTask>,
    kinds: &'a Vec<Text>,
    task_stats: &'a Map<(u8, Text), TaskStats>,
    /// Always empty: the backlog rebuilds its customer index on load.
    /// Kept so that snapshots of format 1 stay readable.
    owed: &'a Map<(Text, Text), Vec<Text>>,
    sales: &'a Map<Text, SaleRecord>,
    quality: &'a super::qa::Quality,
    counters: &'a EngineCounters,
    version: u64,
    clock_ms: i64,
    next_sweep_ms: i64,
}

#[derive(Deserialize)]
struct In {
    #[allow(dead_code)]
    format: u32,
    dedup: Dedup,
    sites: Map<Text, Site>,
    queues: Map<Text, Queue>,
    teams: Map<Text, Team>,
    agents: Map<Text, Agent>,
    calls: Map<Text, Call>,
    ended_calls: Map<Text, EndedCall>,
    tasks: Backlog,
    closed_tasks: Map<Text, ClosedTask>,
    kinds: Vec<Text>,
    task_stats: Map<(u8, Text), TaskStats>,
    #[allow(dead_code)]
    owed: Map<(Text, Text), Vec<Text>>,
    sales: Map<Text, SaleRecord>,
    quality: super::qa::Quality,
    counters: EngineCounters,
    version: u64,
    clock_ms: i64,
    next_sweep_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("state format {0} is not the {FORMAT} this build reads")]
    Format(u32),
    #[error("state does not decode: {0}")]
    Decode(#[from] postcard::Error),
}

impl Engine {
    /// The whole state as bytes.
    pub fn save(&self) -> Result<Vec<u8>, postcard::Error> {
        self.save_into(Vec::new())
    }

    /// `save` into `buf` (cleared first): a buffer with the last
    /// snapshot's capacity saves the doublings of a growing one.
    pub fn save_into(&self, mut buf: Vec<u8>) -> Result<Vec<u8>, postcard::Error> {
        buf.clear();
        postcard::to_extend(
            &Out {
                format: FORMAT,
                dedup: &self.dedup,
                sites: &self.sites,
                queues: &self.queues,
                teams: &self.teams,
                agents: &self.agents,
                calls: &self.calls,
                ended_calls: &self.ended_calls,
                tasks: &self.tasks,
                closed_tasks: &self.closed_tasks,
                kinds: &self.kinds,
                task_stats: &self.task_stats,
                owed: &Map::default(),
                sales: &self.sales,
                quality: &self.quality,
                counters: &self.counters,
                version: self.version,
                clock_ms: self.clock_ms,
                next_sweep_ms: self.next_sweep_ms,
            },
            buf,
        )
    }

    /// Rebuilds an engine from `save` output under (possibly new) settings.
    pub fn load(settings: Settings, bytes: &[u8]) -> Result<Engine, LoadError> {
        let format: u32 = postcard::from_bytes(bytes).map_err(LoadError::Decode)?;
        if format != FORMAT {
            return Err(LoadError::Format(format));
        }
        let s: In = postcard::from_bytes(bytes)?;
        let mut queues = s.queues;
        for (name, q) in queues.iter_mut() {
            let mut p = settings.queue(name);
            if !p.configured {
                p.site = q.site.to_string();
                p.calendar = settings.site_calendar(&q.site);
                p.tz = s.sites.get(&q.site).map(|x| x.tz).unwrap_or(p.tz);
            }
            q.params = p;
            q.wait.set_bounds(&buckets::WAIT);
            q.talk.set_bounds(&buckets::TALK);
            q.hold.set_bounds(&buckets::HOLD);
            q.wrap.set_bounds(&buckets::WRAP);
        }
        // Queues added to the configuration since the snapshot.
        for name in settings.configured_queues() {
            if !queues.contains_key(name) {
                queues.insert(Text::from(name), Queue::new(settings.queue(name)));
            }
        }
        let mut task_stats = s.task_stats;
        for st in task_stats.values_mut() {
            st.completion.set_bounds(&buckets::COMPLETION);
        }
        Ok(Engine {
            dedup: s
                .dedup
                .restore(settings.limits.dedup_capacity, settings.dedup_horizon_ms),
            sites: s.sites,
            queues,
            teams: s.teams,
            agents: s.agents,
            calls: s.calls,
            ended_calls: s.ended_calls,
            tasks: s.tasks,
            closed_tasks: s.closed_tasks,
            kinds: s.kinds,
            task_stats,
            sales: s.sales,
            quality: s.quality,
            counters: s.counters,
            version: s.version,
            clock_ms: s.clock_ms,
            next_sweep_ms: s.next_sweep_ms,
            late: false,
            settings,
        })
    }
}
