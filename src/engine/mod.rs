//! The engine: all live state, and the rules that change it.
//!
//! The engine is a plain struct with no I/O, no clock of its own and no
//! async: the writer task owns it and hands it each event together with
//! "now". Every rule that turns events into numbers lives here and in the
//! submodules (one per noun); every number that depends on "now" (ages,
//! overdue, due-soon) is computed when it is read, in `snapshot.rs`, so it
//! is never stale by a timer tick.
//!
//! Out-of-order rule, in one place: an event about a call or task that is
//! not live is refused (`unknown_call` / `unknown_task`), or
//! `invalid_transition` when the item existed and is closed; an event whose
//! time is earlier than the last event applied to the same call, task or
//! agent is applied at that last time instead (so no duration is ever
//! negative) and counted in `callwatch_events_clamped_total`.

mod agent;
pub mod backlog;
mod call;
pub mod dedup;
pub mod histogram;
pub mod persist;
mod queue;
mod sale;
pub mod settings;
pub mod tally;
mod task;
mod team;
pub mod window;

pub use agent::Agent;
pub use call::{Call, CallPhase, Contact, EndedCall};
pub use queue::{Queue, QueueCounts, QueueDay, QueueMinute};
pub use sale::SaleRecord;
pub use task::{Callback, CallbackSource, CloseReason, ClosedTask, Task, TaskStats};
pub use team::Team;

use chrono_tz::Tz;

use crate::event::{Body, Event, Text};
use crate::reject::{Reason, Rejection};
use dedup::Dedup;
use settings::Settings;

pub type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// The team label of agents that belong to none.
pub const NO_TEAM: &str = "none";

/// What became of an event the engine accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    New,
    Duplicate,
}

/// Counters about the engine's own decisions.
#[derive(Debug, Default, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct EngineCounters {
    pub applied: u64,
    pub duplicates: u64,
    /// Events applied at a later time than their own (see module doc).
    pub clamped: u64,
    pub created_queues: u64,
    pub created_agents: u64,
    pub created_teams: u64,
    pub created_sites: u64,
}

/// A site and its time zone.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Site {
    pub tz: Tz,
}

/// The whole live state.
#[derive(Debug)]
pub struct Engine {
    pub(crate) settings: Settings,
    pub(crate) dedup: Dedup,
    pub(crate) sites: Map<Text, Site>,
    pub(crate) queues: Map<Text, Queue>,
    pub(crate) teams: Map<Text, Team>,
    pub(crate) agents: Map<Text, Agent>,
    pub(crate) calls: Map<Text, Call>,
    /// Ended and abandoned calls, kept for precise errors and sale links.
    pub(crate) ended_calls: Map<Text, EndedCall>,
    /// Open tasks, with the index of open callbacks by customer.
    pub(crate) tasks: backlog::Backlog,
    pub(crate) closed_tasks: Map<Text, ClosedTask>,
    /// Task kinds seen; a task stores the index (the set is bounded).
    pub(crate) kinds: Vec<Text>,
    pub(crate) task_stats: Map<(u8, Text), TaskStats>,
    pub(crate) sales: Map<Text, SaleRecord>,
    pub(crate) counters: EngineCounters,
    /// Bumped on every applied event: readers (the feed) use it to tell
    /// whether anything changed since they last looked.
    pub(crate) version: u64,
}

impl Engine {
    pub fn new(settings: Settings) -> Engine {
        let mut e = Engine {
            dedup: Dedup::new(settings.limits.dedup_capacity, settings.dedup_horizon_ms),
            sites: Map::default(),
            queues: Map::default(),
            teams: Map::default(),
            agents: Map::default(),
            calls: Map::default(),
            ended_calls: Map::default(),
            tasks: backlog::Backlog::default(),
            closed_tasks: Map::default(),
            kinds: Vec::new(),
            task_stats: Map::default(),
            sales: Map::default(),
            counters: EngineCounters::default(),
            version: 0,
            settings,
        };
        // Configured entities exist from the start, so dashboards show
        // them at zero instead of "no data".
        let s = e.settings.clone();
        let site = Text::from(s.default_site.as_str());
        e.sites.insert(
            site.clone(),
            Site {
                tz: s.site_tz(&site),
            },
        );
        for q in s.configured_queues() {
            let p = s.queue(q);
            e.sites.entry(Text::from(p.site.as_str())).or_insert(Site {
                tz: s.site_tz(&p.site),
            });
            if let Some(team) = &p.team {
                e.teams
                    .entry(Text::from(team.as_str()))
                    .or_insert_with(|| Team::new(Text::from(p.site.as_str())));
            }
            e.queues.insert(Text::from(q), Queue::new(p));
        }
        for k in s.configured_kinds() {
            e.kinds.push(Text::from(k));
        }
        e
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn counters(&self) -> &EngineCounters {
        &self.counters
    }

    /// Changes on every applied event.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Applies one event. A rejected event changes nothing, and its id is
    /// not remembered, so the sender may correct and resend it.
    pub fn apply(&mut self, ev: &Event, now_ms: i64) -> Result<Applied, Rejection> {
        if self.dedup.contains(&ev.id) {
            self.counters.duplicates += 1;
            return Ok(Applied::Duplicate);
        }
        let t = ev.ts_ms();
        let site = ev.site.as_ref();
        match &ev.body {
            Body::AgentLogin {
                agent,
                name,
                team,
                queues,
            } => self.agent_login(t, site, agent, name, team, queues)?,
            Body::AgentState {
                agent,
                state,
                reason,
            } => self.agent_state(t, site, agent, *state, reason.as_ref())?,
            Body::AgentLogout { agent } => self.agent_logout(t, agent)?,
            Body::CallOffered {
                call,
                queue,
                direction,
                customer,
            } => self.call_offered(t, site, call, queue, *direction, customer)?,
            Body::CallAnswered { call, agent } => self.call_answered(t, site, call, agent)?,
            Body::CallHold { call } => self.call_hold(t, call, true)?,
            Body::CallResume { call } => self.call_hold(t, call, false)?,
            Body::CallAbandoned { call } => self.call_abandoned(t, call)?,
            Body::CallTransferred { call, to } => self.call_transferred(t, site, call, to)?,
            Body::CallEnded {
                call,
                talk_s,
                hold_s,
            } => self.call_ended(t, call, *talk_s, *hold_s)?,
            Body::WrapEnded { call, .. } => self.wrap_ended(t, call)?,
            Body::TaskCreated {
                task,
                kind,
                queue,
                customer,
                due,
                priority,
            } => self.task_created(
                t,
                site,
                task,
                kind,
                queue.as_ref(),
                customer,
                due.map(|d| d.timestamp_millis()),
                *priority,
            )?,
            Body::TaskAssigned { task, agent } => self.task_assigned(t, site, task, agent)?,
            Body::TaskAttempted {
                task,
                agent,
                result,
            } => self.task_attempted(t, site, task, agent, *result)?,
            Body::TaskCompleted { task, agent, .. } => {
                self.task_done(t, site, task, agent.as_ref(), CloseReason::Completed)?
            }
            Body::TaskCancelled { task, .. } => {
                self.task_done(t, site, task, None, CloseReason::Cancelled)?
            }
            Body::Sale {
                sale,
                agent,
                link,
                kind,
                quantity,
                unit_price,
                previous_value,
                currency,
                ..
            } => self.sale(
                t,
                site,
                sale,
                agent,
                link.as_ref(),
                *kind,
                *quantity * *unit_price,
                *previous_value,
                currency.as_ref(),
            )?,
            Body::SaleCancelled { sale, .. } => self.sale_cancelled(t, sale)?,
        }
        self.dedup.insert(&ev.id, now_ms);
        self.counters.applied += 1;
        self.version += 1;
        Ok(Applied::New)
    }

    /// Housekeeping driven by the writer's timer: forgets what retention
    /// says to forget. Nothing a reader sees depends on when this runs,
    /// except that forgotten series disappear.
    /// Returns whether anything was forgotten (the writer journals the
    /// tick only then).
    pub fn tick(&mut self, now_ms: i64) -> bool {
        let expired = self.dedup.expire(now_ms);
        let s = &self.settings;
        let sizes = |e: &Engine| {
            e.agents.len()
                + e.queues.len()
                + e.ended_calls.len()
                + e.closed_tasks.len()
                + e.sales.len()
        };
        let before_all = sizes(self);
        let before = self.agents.len() + self.queues.len();
        self.agents.retain(|_, a| match a.logged_out_ms {
            Some(out) => now_ms - out <= s.agent_retention_ms,
            None => true,
        });
        let (calls, tasks) = (&self.calls, &self.tasks);
        self.queues.retain(|name, q| {
            q.params.configured
                || now_ms - q.last_activity_ms <= s.idle_queue_ms
                || calls.values().any(|c| c.queue == *name)
                || tasks.values().any(|t| t.queue == *name)
        });
        let keep = s.closed_retention_ms;
        self.ended_calls.retain(|_, c| now_ms - c.closed_ms <= keep);
        self.closed_tasks
            .retain(|_, c| now_ms - c.closed_ms <= keep);
        let keep = s.sales_retention_ms;
        self.sales.retain(|_, r| now_ms - r.ts_ms <= keep);
        // Give a spike's memory back (hash maps never shrink by
        // themselves). Not a change of state, so not journaled.
        self.tasks.compact();
        shrink(&mut self.calls);
        shrink(&mut self.ended_calls);
        shrink(&mut self.closed_tasks);
        shrink(&mut self.sales);
        shrink(&mut self.agents);
        if self.agents.len() + self.queues.len() != before {
            self.version += 1;
        }
        expired > 0 || sizes(self) != before_all
    }

    /// Applies `t` no earlier than `last`, counting when it had to move it.
    fn clamp(&mut self, t: i64, last: &mut i64) -> i64 {
        if t < *last {
            self.counters.clamped += 1;
            *last
        } else {
            *last = t;
            t
        }
    }

    fn site_entry(&mut self, site: &str) -> Result<Tz, Rejection> {
        if let Some(s) = self.sites.get(site) {
            return Ok(s.tz);
        }
        if self.sites.len() >= self.settings.limits.max_sites {
            return Err(limit("sites", self.settings.limits.max_sites));
        }
        let tz = self.settings.site_tz(site);
        self.sites.insert(Text::from(site), Site { tz });
        self.counters.created_sites += 1;
        Ok(tz)
    }

    /// The queue, created with the defaults on first sight.
    fn queue_entry(&mut self, name: &Text, site: Option<&Text>) -> Result<&mut Queue, Rejection> {
        if !self.queues.contains_key(name) {
            if self.queues.len() >= self.settings.limits.max_queues {
                return Err(limit("queues", self.settings.limits.max_queues));
            }
            let mut p = self.settings.queue(name);
            if let Some(site) = site {
                p.site = site.to_string();
                p.calendar = self.settings.site_calendar(site);
            }
            p.tz = self.site_entry(&p.site)?;
            self.queues.insert(name.clone(), Queue::new(p));
            self.counters.created_queues += 1;
        }
        self.queues
            .get_mut(name)
            .ok_or_else(|| Rejection::new(Reason::LimitExceeded, "queue vanished"))
    }

    fn team_entry(&mut self, name: &Text, site: &Text) -> Result<(), Rejection> {
        if self.teams.contains_key(name) {
            return Ok(());
        }
        if self.teams.len() >= self.settings.limits.max_teams {
            return Err(limit("teams", self.settings.limits.max_teams));
        }
        let site = self
            .settings
            .team_site(name)
            .map(Text::from)
            .unwrap_or_else(|| site.clone());
        self.site_entry(&site)?;
        self.teams.insert(name.clone(), Team::new(site));
        self.counters.created_teams += 1;
        Ok(())
    }

    /// The agent, created on first sight (not logged in; in `team`, or
    /// in no team).
    fn agent_entry(
        &mut self,
        id: &Text,
        site: Option<&Text>,
        t: i64,
    ) -> Result<&mut Agent, Rejection> {
        self.agent_entry_in(id, site, None, t)
    }

    fn agent_entry_in(
        &mut self,
        id: &Text,
        site: Option<&Text>,
        team: Option<&Text>,
        t: i64,
    ) -> Result<&mut Agent, Rejection> {
        if !self.agents.contains_key(id) {
            if self.agents.len() >= self.settings.limits.max_agents {
                return Err(limit("agents", self.settings.limits.max_agents));
            }
            let site = site
                .cloned()
                .unwrap_or_else(|| Text::from(self.settings.default_site.as_str()));
            let tz = self.site_entry(&site)?;
            let team = team.cloned().unwrap_or_else(|| Text::from(NO_TEAM));
            self.team_entry(&team, &site)?;
            self.agents
                .insert(id.clone(), Agent::new(site, tz, team, t));
            self.counters.created_agents += 1;
        }
        self.agents
            .get_mut(id)
            .ok_or_else(|| Rejection::new(Reason::LimitExceeded, "agent vanished"))
    }

    /// Index of a task kind, admitting a new kind while under the bound.
    fn kind_index(&mut self, kind: &Text) -> Result<u8, Rejection> {
        if let Some(i) = self.kinds.iter().position(|k| k == kind) {
            return Ok(i as u8);
        }
        let max = self.settings.limits.max_task_kinds.min(255);
        if self.kinds.len() >= max {
            return Err(Rejection::new(
                Reason::LimitExceeded,
                format!("task kind {kind:?} would exceed limits.max_task_kinds ({max})"),
            ));
        }
        self.kinds.push(kind.clone());
        Ok((self.kinds.len() - 1) as u8)
    }

    pub fn kind_name(&self, i: u8) -> &str {
        self.kinds
            .get(i as usize)
            .map(Text::as_str)
            .unwrap_or("unknown")
    }
}

/// Shrinks a map that uses at most a quarter of its room (and is big
/// enough for that to matter) to what it holds now.
fn shrink<K: Eq + std::hash::Hash, V>(m: &mut Map<K, V>) {
    if m.capacity() > 4096 && m.len() * 4 < m.capacity() {
        m.shrink_to_fit();
    }
}

fn limit(what: &str, max: usize) -> Rejection {
    Rejection::new(
        Reason::LimitExceeded,
        format!("too many {what}: the configured limit is {max}"),
    )
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_callbacks;
