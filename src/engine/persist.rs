//! Saving and loading the whole engine state (for snapshots).
//!
//! The state is written with postcard (compact, serde-based, positional:
//! no schema evolution of its own). So the layout carries a format
//! number, and each change of layout comes with a migration step from
//! the format before: a build reads every format from `OLDEST` (what the
//! first release, 0.1.0, wrote) by running the steps in order, and
//! writes only `FORMAT`. Snapshots must stay readable because the journal
//! before the oldest kept one is deleted. A newer format is refused,
//! naming the build that wrote it: from format 8 on, every layout opens
//! with (format, written by), whatever follows. What comes from the configuration
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

/// The layout `save` writes. Bumped whenever the layout below changes,
/// with a step in `STEPS` from the format before.
pub const FORMAT: u32 = 8;

/// The oldest format this build reads: what 0.1.0 wrote.
pub const OLDEST: u32 = 7;

/// Who writes the state: named by an older build that refuses it.
pub const WRITTEN_BY: &str = concat!("callwatch ", env!("CARGO_PKG_VERSION"));

/// A migration: the bytes of format `n` to those of `n + 1`.
pub type Step = fn(&[u8]) -> Result<Vec<u8>, LoadError>;

/// `STEPS[i]` turns format `OLDEST + i` into `OLDEST + i + 1`.
pub const STEPS: &[Step] = &[v7_to_v8];
// One step per format from OLDEST up to FORMAT: a build that bumps FORMAT
// without its step does not compile.
const _: () = assert!(STEPS.len() == (FORMAT - OLDEST) as usize);

/// 8 inserts who wrote the state after the format number; the fields
/// after it are those of 7. Only 0.1.0 was released with format 7.
fn v7_to_v8(bytes: &[u8]) -> Result<Vec<u8>, LoadError> {
    let (_, rest) = postcard::take_from_bytes::<u32>(bytes)?;
    let mut out = postcard::to_stdvec(&(8u32, "callwatch 0.1.0"))?;
    out.extend_from_slice(rest);
    Ok(out)
}

/// What every format from 8 on begins with.
#[derive(Deserialize)]
struct Head {
    format: u32,
    written_by: Text,
}

#[derive(Serialize)]
struct Out<'a> {
    format: u32,
    written_by: &'a str,
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
    #[allow(dead_code)]
    written_by: Text,
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
    #[error(
        "state format {format} was written by {written_by}; this build ({WRITTEN_BY}) reads \
         formats {OLDEST}..={reads}"
    )]
    Newer {
        format: u32,
        written_by: String,
        reads: u32,
    },
    #[error(
        "state format {0} is older than any release wrote (this build reads {OLDEST}..={FORMAT})"
    )]
    Older(u32),
    /// A build defect: `STEPS` lacks the step out of this format.
    #[error("this build has no migration step from state format {0}")]
    NoStep(u32),
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
    pub fn save_into(&self, buf: Vec<u8>) -> Result<Vec<u8>, postcard::Error> {
        self.save_as(buf, FORMAT, WRITTEN_BY)
    }

    /// `save_into` claiming another format (tests: what a newer build
    /// would write).
    pub(crate) fn save_as(
        &self,
        mut buf: Vec<u8>,
        format: u32,
        written_by: &str,
    ) -> Result<Vec<u8>, postcard::Error> {
        buf.clear();
        postcard::to_extend(
            &Out {
                format,
                written_by,
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

    /// Rebuilds an engine from `save` output of this or an earlier
    /// release under (possibly new) settings.
    pub fn load(settings: Settings, bytes: &[u8]) -> Result<Engine, LoadError> {
        Engine::load_with(settings, bytes, FORMAT, STEPS)
    }

    /// `load` by a build that reads up to `reads` with `steps` (tests:
    /// a build with a later format).
    pub(crate) fn load_with(
        settings: Settings,
        bytes: &[u8],
        reads: u32,
        steps: &[Step],
    ) -> Result<Engine, LoadError> {
        let bytes = migrate(bytes, reads, steps)?;
        let s: In = postcard::from_bytes(&bytes)?;
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

/// The format of saved state, and who wrote it (from format 8 on).
pub fn format_of(bytes: &[u8]) -> Result<(u32, Option<String>), LoadError> {
    let format: u32 = postcard::from_bytes(bytes)?;
    Ok(match postcard::from_bytes::<Head>(bytes) {
        Ok(h) if format >= 8 => (h.format, Some(h.written_by.to_string())),
        _ => (format, None),
    })
}

/// `bytes` brought to format `reads` by the steps from its own.
fn migrate<'a>(
    bytes: &'a [u8],
    reads: u32,
    steps: &[Step],
) -> Result<std::borrow::Cow<'a, [u8]>, LoadError> {
    let (format, by) = format_of(bytes)?;
    if format > reads {
        return Err(LoadError::Newer {
            format,
            written_by: by.unwrap_or_else(|| "a newer callwatch".into()),
            reads,
        });
    }
    if format < OLDEST {
        return Err(LoadError::Older(format));
    }
    let mut cur = std::borrow::Cow::Borrowed(bytes);
    for f in format..reads {
        let step = steps
            .get((f - OLDEST) as usize)
            .ok_or(LoadError::NoStep(f))?;
        cur = std::borrow::Cow::Owned(step(&cur)?);
        debug_assert_eq!(format_of(&cur).map(|x| x.0).ok(), Some(f + 1));
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn engine() -> Engine {
        let cfg = Config::embedded().expect("config");
        let mut e = Engine::new(Settings::from_config(&cfg));
        for ev in crate::simulate::Simulator::new(
            crate::simulate::SimOptions {
                agents: 20,
                rate: 50.0,
                seed: 7,
                site: None,
            },
            1_772_434_800_000,
        )
        .take(3000)
        {
            let _ = e.apply(&ev, None);
        }
        e
    }

    fn settings() -> Settings {
        Settings::from_config(&Config::embedded().expect("config"))
    }

    /// The step of a build whose format is one later (same fields: the
    /// chain, the refusal and the head are what is tested here; 7 → 8 is
    /// a real change of layout).
    fn bump(bytes: &[u8]) -> Result<Vec<u8>, LoadError> {
        let head: Head = postcard::from_bytes(bytes)?;
        let (_, rest) = postcard::take_from_bytes::<(u32, Text)>(bytes)?;
        let mut out = postcard::to_stdvec(&(head.format + 1, "callwatch test-bump"))?;
        out.extend_from_slice(rest);
        Ok(out)
    }

    #[test]
    fn a_build_with_a_later_format_reads_ours_through_its_step() {
        let e = engine();
        let bytes = e.save().expect("save");
        let mut steps = STEPS.to_vec();
        steps.push(bump);
        let later = Engine::load_with(settings(), &bytes, FORMAT + 1, &steps).expect("migrated");
        assert_eq!(later.digest(), e.digest());
        assert!(e.version > 0);
    }

    #[test]
    fn a_format_of_a_newer_build_is_refused_naming_both_builds() {
        let bytes = engine()
            .save_as(Vec::new(), FORMAT + 1, "callwatch 9.9.9")
            .expect("save");
        let Err(err) = Engine::load(settings(), &bytes) else {
            panic!("a newer format was read");
        };
        let msg = err.to_string();
        assert!(matches!(err, LoadError::Newer { .. }), "{msg}");
        assert!(msg.contains("written by callwatch 9.9.9"), "{msg}");
        assert!(msg.contains(WRITTEN_BY), "{msg}");
    }

    #[test]
    fn format_7_of_0_1_0_reads_back_through_its_step() {
        let e = engine();
        let v8 = e.save().expect("save");
        // What 0.1.0 wrote: the same fields without `written_by`.
        let (_, rest) = postcard::take_from_bytes::<(u32, Text)>(&v8).expect("head");
        let mut v7 = postcard::to_stdvec(&7u32).expect("format");
        v7.extend_from_slice(rest);
        let back = Engine::load(settings(), &v7).expect("migrated");
        assert_eq!(format_of(&v7).expect("format"), (7, None));
        assert_eq!(back.digest(), e.digest());
        assert!(Engine::load(settings(), &postcard::to_stdvec(&6u32).expect("6")).is_err());
    }
}
