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
mod digest;
pub mod histogram;
pub mod ledger;
pub mod persist;
pub mod qa;
mod queue;
mod room;
mod sale;
pub mod sample;
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

/// Retention runs once per this much event time.
const SWEEP_MS: i64 = 60_000;

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
    /// Handled contacts, QA evaluations and tags (docs/quality.md).
    pub(crate) quality: qa::Quality,
    pub(crate) counters: EngineCounters,
    /// Bumped on every applied event: readers (the feed) use it to tell
    /// whether anything changed since they last looked.
    pub(crate) version: u64,
    /// See [`Engine::clock_ms`].
    pub(crate) clock_ms: i64,
    /// When the next retention sweep is due, on the event clock.
    pub(crate) next_sweep_ms: i64,
    /// Set while an event is applied when part of it was older than the
    /// state it touched (counted once in `clamped`).
    late: bool,
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
            quality: qa::Quality::default(),
            counters: EngineCounters::default(),
            version: 0,
            clock_ms: 0,
            next_sweep_ms: 0,
            late: false,
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

    /// The engine's own clock: the latest event time applied (0 before
    /// the first). Whatever depends on time passing (retention, breaches,
    /// duplicate expiry) is a function of it, never of when the engine is
    /// read or ticked, so replicas that applied the same events agree.
    pub fn clock_ms(&self) -> i64 {
        self.clock_ms
    }

    /// Applies one event: the one function every path (writer, recovery,
    /// `replay --offline`, bench) changes the state through.
    ///
    /// `now_ms` is the daemon's clock, used only to refuse implausible
    /// event times (`limits.event_max_age` / `event_max_lead`); recovery
    /// passes `None` for events the journal holds, which were judged when
    /// they arrived.
    ///
    /// All or nothing: every handler validates the event completely
    /// against the current state, and admits what it would create (see
    /// `room.rs`), before it changes anything, so a refusal leaves no
    /// trace (docs/design.md). Its id is not remembered either, so the
    /// sender may correct and resend it.
    pub fn apply(&mut self, ev: &Event, now_ms: Option<i64>) -> Result<Applied, Rejection> {
        if self.dedup.contains(&ev.id) {
            self.counters.duplicates += 1;
            return Ok(Applied::Duplicate);
        }
        let t = ev.ts_ms();
        self.plausible(t, now_ms)?;
        self.late = false;
        self.dispatch(ev, t)?;
        if self.late {
            self.counters.clamped += 1;
        }
        self.clock_ms = self.clock_ms.max(t);
        self.dedup.insert(&ev.id, self.clock_ms);
        // Heartbeats are time, not facts: `applied` counts the facts.
        if !matches!(ev.body, Body::Heartbeat) {
            self.counters.applied += 1;
        }
        self.version += 1;
        if self.clock_ms >= self.next_sweep_ms {
            self.sweep();
        }
        Ok(Applied::New)
    }

    /// `apply` with the daemon's clock, as the live paths (the writer,
    /// `replay --offline`, the bench) do: judges the event's time against
    /// `clock`, and lets the clock see an applied event (the event clock
    /// follows it). Returns the "now" it judged by, for the journal.
    pub fn apply_at(
        &mut self,
        ev: &Event,
        clock: &dyn crate::clock::Clock,
    ) -> (i64, Result<Applied, Rejection>) {
        let now = clock.now_ms();
        let r = self.apply(ev, Some(now));
        if let Ok(Applied::New) = r {
            clock.observe(ev.ts_ms());
        }
        (now, r)
    }

    /// Refuses event times too far from the daemon's clock.
    fn plausible(&self, t: i64, now: Option<i64>) -> Result<(), Rejection> {
        if !(crate::event::MIN_TS_MS..crate::event::MAX_TS_MS).contains(&t) {
            return Err(Rejection::new(
                Reason::ImplausibleTimestamp,
                "`ts` is not between the years 2000 and 2100",
            ));
        }
        let Some(now) = now else {
            return Ok(());
        };
        let s = &self.settings;
        let fmt = |ms: i64| {
            humantime_serde::re::humantime::format_duration(std::time::Duration::from_millis(
                ms as u64,
            ))
        };
        if let Some(age) = s.event_max_age_ms {
            if t < now.saturating_sub(age) {
                return Err(Rejection::new(
                    Reason::ImplausibleTimestamp,
                    format!(
                        "`ts` is {} before the daemon's clock, more than limits.event_max_age ({})",
                        fmt(now - t),
                        fmt(age)
                    ),
                ));
            }
        }
        if let Some(lead) = s.event_max_lead_ms {
            if t > now.saturating_add(lead) {
                return Err(Rejection::new(
                    Reason::ImplausibleTimestamp,
                    format!(
                        "`ts` is {} after the daemon's clock, more than limits.event_max_lead ({})",
                        fmt(t - now),
                        fmt(lead)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn dispatch(&mut self, ev: &Event, t: i64) -> Result<(), Rejection> {
        let site = ev.site.as_ref();
        match &ev.body {
            Body::AgentLogin {
                agent,
                name,
                team,
                queues,
            } => self.agent_login(t, site, agent, name, team.as_ref(), queues),
            Body::AgentState {
                agent,
                state,
                reason,
            } => self.agent_state(t, site, agent, *state, reason.as_ref()),
            Body::AgentLogout { agent, queues } => self.agent_logout(t, site, agent, queues),
            Body::CallOffered {
                call,
                queue,
                direction,
                customer,
            } => self.call_offered(t, site, call, queue, *direction, customer),
            Body::CallAnswered {
                call,
                agent,
                wait_ms,
            } => self.call_answered(t, site, call, agent, *wait_ms),
            Body::CallHold { call } => self.call_hold(t, call, true),
            Body::CallResume { call } => self.call_hold(t, call, false),
            Body::CallAbandoned { call } => self.call_left(t, call, None),
            Body::CallExited { call, reason } => self.call_left(t, call, Some(*reason)),
            Body::CallRefused {
                queue,
                reason,
                call,
                ..
            } => self.call_refused(t, site, queue, *reason, call.as_ref()),
            Body::CallMissed { call, agent, .. } => self.call_missed(t, site, call, agent),
            Body::CallTransferred { call, to } => self.call_transferred(t, site, call, to),
            Body::CallEnded {
                call,
                talk_ms,
                hold_ms,
            } => self.call_ended(t, call, *talk_ms, *hold_ms),
            Body::WrapEnded { call, .. } => self.wrap_ended(t, call),
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
            ),
            Body::TaskAssigned { task, agent } => self.task_assigned(t, site, task, agent),
            Body::TaskAttempted {
                task,
                agent,
                result,
            } => self.task_attempted(t, site, task, agent, *result),
            Body::TaskCompleted { task, agent, .. } => {
                self.task_done(t, site, task, agent.as_ref(), CloseReason::Completed)
            }
            Body::TaskCancelled { task, .. } => {
                self.task_done(t, site, task, None, CloseReason::Cancelled)
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
                quantity.times(*unit_price),
                *previous_value,
                currency.as_ref(),
            ),
            Body::SaleCancelled { sale, .. } => self.sale_cancelled(sale),
            Body::QaScored {
                contact,
                agent,
                evaluator,
                form,
                score,
                ..
            } => self.qa_scored(t, contact, agent, evaluator, form, *score),
            Body::ContactTagged {
                contact,
                agent,
                tags,
            } => self.contact_tagged(t, contact, agent, tags),
            Body::Heartbeat => Ok(()),
        }
    }

    /// Retention, on the engine's own clock: runs inside `apply` once a
    /// minute of event time, so it forgets the same things after the same
    /// event on every replica and in every replay.
    fn sweep(&mut self) {
        let now_ms = self.clock_ms;
        self.next_sweep_ms = (now_ms.div_euclid(SWEEP_MS) + 1).saturating_mul(SWEEP_MS);
        self.dedup.expire(now_ms);
        let s = &self.settings;
        let before = self.agents.len() + self.queues.len();
        self.agents.retain(|_, a| match a.logged_out_ms {
            Some(out) => now_ms.saturating_sub(out) <= s.agent_retention_ms,
            None => true,
        });
        let idle = |q: &Queue| {
            !q.params.configured && now_ms.saturating_sub(q.last_activity_ms) > s.idle_queue_ms
        };
        if self.queues.values().any(idle) {
            // Only then is it worth finding the queues still in use.
            let mut used: std::collections::HashSet<&Text, foldhash::fast::RandomState> =
                Default::default();
            used.extend(self.calls.values().map(|c| &c.queue));
            used.extend(self.tasks.values().map(|t| &t.queue));
            let gone: Vec<Text> = self
                .queues
                .iter()
                .filter(|(name, q)| idle(q) && !used.contains(name))
                .map(|(name, _)| name.clone())
                .collect();
            for name in gone {
                self.queues.remove(&name);
            }
        }
        let cutoff = now_ms.saturating_sub(s.ledger_retention_ms);
        for q in self.queues.values_mut() {
            q.ledger.prune(cutoff);
        }
        if s.agent_ledger {
            for a in self.agents.values_mut() {
                let (today, _) = window::day_bounds(window::local_day(now_ms, a.tz), a.tz);
                a.ledger.prune(today);
            }
        }
        let keep = s.closed_retention_ms;
        self.ended_calls
            .retain(|_, c| now_ms.saturating_sub(c.closed_ms) <= keep);
        self.closed_tasks
            .retain(|_, c| now_ms.saturating_sub(c.closed_ms) <= keep);
        bound(&mut self.ended_calls, s.limits.max_ended_calls, |c| {
            c.closed_ms
        });
        bound(&mut self.closed_tasks, s.limits.max_closed_tasks, |c| {
            c.closed_ms
        });
        let keep = s.sales_retention_ms;
        self.sales
            .retain(|_, r| now_ms.saturating_sub(r.ts_ms) <= keep);
        self.sweep_quality(now_ms);
        self.draw_samples(now_ms);
        if self.agents.len() + self.queues.len() != before {
            self.version += 1;
        }
    }

    /// Housekeeping on the writer's (wall-clock) timer: gives a spike's
    /// memory back (hash maps never shrink by themselves). It changes no
    /// state (retention runs on the event clock, in `apply`), so it is not
    /// journaled and replicas need not agree on when it runs.
    pub fn tick(&mut self) {
        self.tasks.compact();
        shrink(&mut self.calls);
        shrink(&mut self.ended_calls);
        shrink(&mut self.closed_tasks);
        shrink(&mut self.sales);
        shrink(&mut self.agents);
        shrink(&mut self.quality.register);
    }

    /// `t` no earlier than `last`: an event about an entity is applied at
    /// the entity's own last time if it is older (so no duration is ever
    /// negative), and marks the event late.
    fn at_least(&mut self, t: i64, last: i64) -> i64 {
        if t < last {
            self.late = true;
            last
        } else {
            t
        }
    }

    /// Index of a known task kind.
    fn kind_of(&self, kind: &Text) -> Option<u8> {
        self.kinds.iter().position(|k| k == kind).map(|i| i as u8)
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

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_callbacks;
#[cfg(test)]
mod tests_props;

/// Keeps at most `max` closed items: beyond it the oldest go (by close
/// time, then id, so every replica and replay drops the same ones), down
/// to 90 % of `max` so that the next sweeps do not sort again at once.
fn bound<V>(m: &mut Map<Text, V>, max: usize, closed: impl Fn(&V) -> i64) {
    if m.len() <= max {
        return;
    }
    let keep = max - max / 10;
    let mut all: Vec<(i64, Text)> = m.iter().map(|(k, v)| (closed(v), k.clone())).collect();
    let gone = all.len() - keep;
    all.select_nth_unstable(gone - 1);
    for (_, k) in all.into_iter().take(gone) {
        m.remove(&k);
    }
}
