//! The snapshot: the whole live state as of one instant, unredacted.
//!
//! Built by the writer from the engine and "now" as part of the
//! published view (`view.rs`). Every figure that depends on now (waits,
//! ages, time in state, overdue, due-soon, "today" after midnight) is
//! computed here, at the view's instant. The same snapshot feeds
//! `GET /api/v1/snapshot` and `/metrics`, so the two never disagree;
//! what a role may see of it is decided by `privacy::Policy`.
//! Everything is sorted, so equal states serialise to equal bytes.

use std::collections::BTreeMap;

use chrono::{SecondsFormat, TimeZone, Utc};
use serde::Serialize;

use crate::buckets;
use crate::engine::tally::{DayTally, SalesTotals};
use crate::engine::{CallPhase, CallbackSource, CloseReason, Engine, QueueCounts};
use crate::event::{AgentStatus, AttemptResult, SaleKind};
use crate::kpi::Better;

pub const VERSION: u32 = 1;

pub fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

pub use crate::goal::Status;

/// A goal's status for a queue or team: the KPI's value over the goal's
/// period, judged against the scope's thresholds (from its scorecard).
#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct KpiView {
    pub kpi: &'static str,
    pub value: Option<f64>,
    pub target: f64,
    pub warn: f64,
    /// The goal's minimum.
    pub critical: f64,
    pub direction: Better,
    pub status: Status,
}

impl KpiView {
    pub fn of(g: &crate::scorecard::GoalCard) -> KpiView {
        KpiView {
            kpi: g.kpi,
            value: g.value,
            target: g.target,
            warn: g.warn,
            critical: g.minimum,
            direction: crate::kpi::get(g.kpi).map_or(Better::Higher, |d| d.better),
            status: g.status,
        }
    }
}

/// Fills the queues' and teams' `kpis` from their scorecards.
pub fn set_kpis(snap: &mut Snapshot, cards: &[crate::scorecard::Scorecard]) {
    use crate::kpi::ScopeKind;
    let of = |kind: ScopeKind, name: &str| -> BTreeMap<String, KpiView> {
        cards
            .iter()
            .find(|c| c.kind == kind && c.name == name)
            .map(|c| {
                c.goals
                    .iter()
                    .map(|g| (g.goal.clone(), KpiView::of(g)))
                    .collect()
            })
            .unwrap_or_default()
    };
    for q in &mut snap.queues {
        q.kpis = of(ScopeKind::Queue, &q.name);
    }
    for t in &mut snap.teams {
        t.kpis = of(ScopeKind::Team, &t.name);
    }
}

#[derive(Debug, Serialize, Clone, Default)]
pub struct SalesView {
    pub count: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    pub revenue: f64,
    pub incremental_gain: f64,
    pub incremental_loss: f64,
    pub cancelled: u64,
    pub cancelled_revenue: f64,
}

impl From<&SalesTotals> for SalesView {
    fn from(s: &SalesTotals) -> Self {
        SalesView {
            count: s.count(),
            by_kind: SaleKind::ALL
                .iter()
                .map(|k| (k.as_str(), s.by_kind[k.index()]))
                .collect(),
            revenue: s.revenue.units(),
            incremental_gain: s.gain.units(),
            incremental_loss: s.loss.units(),
            cancelled: s.cancelled,
            cancelled_revenue: s.cancelled_revenue.units(),
        }
    }
}

/// Today's contact and sales figures of a queue, team or agent.
#[derive(Debug, Serialize, Clone, Default)]
pub struct TallyView {
    pub contacts: u64,
    pub converted: u64,
    pub conversion: Option<f64>,
    pub wrapped: u64,
    pub aht_s: Option<f64>,
    pub talk_s: Option<f64>,
    pub hold_s: Option<f64>,
    pub wrap_s: Option<f64>,
    pub sales: u64,
    pub revenue: f64,
    pub incremental: f64,
    pub sales_cancelled: u64,
}

impl From<&DayTally> for TallyView {
    fn from(d: &DayTally) -> Self {
        TallyView {
            contacts: d.contacts,
            converted: d.converted,
            conversion: d.conversion(),
            wrapped: d.wrapped,
            aht_s: d.aht_s(),
            talk_s: d.avg_s(d.talk_ms),
            hold_s: d.avg_s(d.hold_ms),
            wrap_s: d.avg_s(d.wrap_ms),
            sales: d.sales,
            revenue: d.revenue.units(),
            incremental: d.incremental.units(),
            sales_cancelled: d.cancelled,
        }
    }
}

#[derive(Debug, Serialize, Clone)]
pub struct CountsView {
    #[serde(flatten)]
    pub counts: QueueCountsView,
    pub service_level: Option<f64>,
}

#[derive(Debug, Serialize, Clone, Copy, Default)]
pub struct QueueCountsView {
    pub offered: u64,
    pub answered: u64,
    pub answered_in_sl: u64,
    pub abandoned: u64,
    pub abandoned_short: u64,
    pub transferred_out: u64,
    pub outbound: u64,
    pub missed: u64,
    pub exited: u64,
    pub refused: u64,
}

impl From<&QueueCounts> for CountsView {
    fn from(c: &QueueCounts) -> Self {
        CountsView {
            counts: QueueCountsView {
                offered: c.offered,
                answered: c.answered,
                answered_in_sl: c.answered_in_sl,
                abandoned: c.abandoned,
                abandoned_short: c.abandoned_short,
                transferred_out: c.transferred_out,
                outbound: c.outbound,
                missed: c.missed,
                exited: c.exited,
                refused: c.refused,
            },
            service_level: c.service_level(),
        }
    }
}

#[derive(Debug, Serialize, Clone)]
pub struct QueueView {
    pub name: String,
    pub site: String,
    pub team: Option<String>,
    pub timezone: String,
    pub sl_threshold_s: f64,
    pub waiting: u64,
    pub oldest_wait_s: f64,
    pub totals: CountsView,
    /// Exits and refusals since the start, by reason (every reason, so
    /// that sums over them in PromQL never lack a series).
    pub exits: BTreeMap<&'static str, u64>,
    pub today: CountsView,
    pub today_contacts: TallyView,
    pub last_60m: CountsView,
    pub sales: SalesView,
    pub callbacks: CallbacksView,
    pub kpis: BTreeMap<String, KpiView>,
    /// Figures the privacy policy withholds from this viewer (a queue
    /// with fewer agents than `min_group_size`); empty for supervisors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub withheld: Vec<&'static str>,
}

#[derive(Debug, Serialize, Clone)]
pub struct AgentView {
    pub agent: String,
    pub name: Option<String>,
    pub team: String,
    pub site: String,
    pub state: AgentStatus,
    pub reason: Option<String>,
    pub since: String,
    pub in_state_s: f64,
    pub queues: Vec<String>,
    // Per-person figures: absent where the privacy policy withholds them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contacts_handled: Option<u64>,
    /// Calls that rang at the agent and were not taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missed_calls: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub talk_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wrap_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_s_today: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_s_today: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub today: Option<TallyView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sales: Option<SalesView>,
}

#[derive(Debug, Serialize, Clone)]
pub struct TeamView {
    pub name: String,
    pub site: String,
    pub agents: BTreeMap<&'static str, u64>,
    pub today: TallyView,
    pub sales: SalesView,
    pub kpis: BTreeMap<String, KpiView>,
}

#[derive(Debug, Serialize, Clone, Default)]
pub struct BacklogView {
    pub kind: String,
    pub queue: String,
    pub open: u64,
    pub oldest_age_s: f64,
    pub overdue: u64,
    pub due_soon: u64,
    /// Seconds until the next deadline; negative when one has passed.
    pub next_due_s: Option<f64>,
    pub created: u64,
    pub completed_met: u64,
    pub completed_missed: u64,
    pub cancelled: u64,
    pub breaches: u64,
    /// Callbacks given up after the maximum of unsuccessful attempts.
    pub unreachable: u64,
    pub attempts: BTreeMap<&'static str, u64>,
    /// Open tasks by age: how many are at most `le_s` old (cumulative).
    pub by_age: Vec<AgeBucket>,
    /// Instants behind `oldest_age_s` and `next_due_s`, for the board.
    #[serde(skip)]
    pub oldest_created_ms: Option<i64>,
    #[serde(skip)]
    pub next_due_ms: Option<i64>,
}

#[derive(Debug, Serialize, Clone, Default)]
pub struct AgeBucket {
    /// Upper bound in seconds; `None` is +Inf.
    pub le_s: Option<f64>,
    pub tasks: u64,
}

/// Callback obligations of a queue.
#[derive(Debug, Serialize, Clone, Default)]
pub struct CallbacksView {
    pub created: BTreeMap<&'static str, u64>,
    pub closed: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Serialize, Clone, Default)]
pub struct EventsView {
    pub applied: u64,
    pub duplicates: u64,
    pub clamped: u64,
}

#[derive(Debug, Serialize, Clone, Default)]
pub struct Snapshot {
    /// The state digest (`Engine::digest`, docs/api.md); set by
    /// the API and `replay --offline`, not by scrapes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    pub version: u32,
    pub now: String,
    pub currency: String,
    pub events: EventsView,
    pub queues: Vec<QueueView>,
    pub teams: Vec<TeamView>,
    pub agents: Vec<AgentView>,
    pub backlog: Vec<BacklogView>,
}

const ATTEMPTS: [AttemptResult; 5] = [
    AttemptResult::Reached,
    AttemptResult::NoAnswer,
    AttemptResult::Busy,
    AttemptResult::Voicemail,
    AttemptResult::InvalidNumber,
];

/// Builds the view of `engine` at `now_ms`, with each queue's and team's goal statuses from its scorecard.
pub fn build(engine: &Engine, now_ms: i64) -> Snapshot {
    let mut snap = build_parts(engine, now_ms).0;
    let cards = crate::scorecard::build(engine, &snap, now_ms, None);
    set_kpis(&mut snap, &cards);
    snap
}

/// An overdue open task, for the board: (due, id, task).
pub type Overdue<'a> = (i64, &'a str, &'a crate::engine::Task);

/// The snapshot and the overdue open tasks, from one pass over the open
/// tasks (at a million open tasks that pass is most of a view's build).
pub fn build_parts(engine: &Engine, now_ms: i64) -> (Snapshot, Vec<Overdue<'_>>) {
    let s = engine.settings();
    // One pass over live calls: waiting count and oldest wait per queue.
    let mut waits: BTreeMap<&str, (u64, i64)> = BTreeMap::new();
    for c in engine.calls.values() {
        if matches!(c.phase, CallPhase::Waiting) {
            let w = waits.entry(c.queue.as_str()).or_insert((0, 0));
            w.0 += 1;
            w.1 = w.1.max(now_ms - c.offered_ms);
        }
    }
    let (backlog, overdue) = backlog(engine, now_ms);
    let mut queues: Vec<QueueView> = engine
        .queues
        .iter()
        .map(|(name, q)| {
            let (waiting, oldest) = waits.get(name.as_str()).copied().unwrap_or((0, 0));
            let today_counts = q.today.get(now_ms).map(|d| d.counts).unwrap_or_default();
            let tally = q.today.get(now_ms).map(|d| d.tally).unwrap_or_default();
            let hour = q.hour.fold(now_ms, QueueCounts::default(), |mut a, m| {
                a += *m;
                a
            });
            let p = &q.params;
            let oldest_s = secs(oldest.max(0));
            QueueView {
                name: name.to_string(),
                site: p.site.clone(),
                team: p.team.clone(),
                timezone: p.tz.name().to_string(),
                sl_threshold_s: secs(p.sl_threshold_ms),
                waiting,
                oldest_wait_s: oldest_s,
                totals: (&q.totals).into(),
                exits: crate::event::ExitReason::ALL
                    .iter()
                    .map(|r| (r.as_str(), q.exits[r.index()]))
                    .collect(),
                today: (&today_counts).into(),
                today_contacts: (&tally).into(),
                last_60m: (&hour).into(),
                sales: (&q.sales).into(),
                callbacks: CallbacksView {
                    created: CallbackSource::ALL
                        .iter()
                        .map(|s| (s.as_str(), q.callbacks_created[*s as usize]))
                        .collect(),
                    closed: CloseReason::ALL
                        .iter()
                        .map(|r| (r.as_str(), q.callbacks_closed[*r as usize]))
                        .collect(),
                },
                kpis: BTreeMap::new(),
                withheld: Vec::new(),
            }
        })
        .collect();
    queues.sort_by(|a, b| a.name.cmp(&b.name));

    let mut agents: Vec<AgentView> = engine
        .agents
        .iter()
        .map(|(id, a)| {
            let day = a.today.get(now_ms).copied().unwrap_or_default();
            let in_state = (now_ms - a.since_ms).max(0);
            let live = |st: AgentStatus| {
                if a.status == st && a.today.holds(now_ms) {
                    (now_ms - a.since_ms.max(a_day_start(a, now_ms))).max(0)
                } else {
                    0
                }
            };
            AgentView {
                agent: id.to_string(),
                name: a.name.as_ref().map(|n| n.to_string()),
                team: a.team.to_string(),
                site: a.site.to_string(),
                state: a.status,
                reason: a.reason.as_ref().map(|r| r.to_string()),
                since: rfc3339(a.since_ms),
                in_state_s: secs(in_state),
                queues: a.queues.iter().map(|q| q.to_string()).collect(),
                contacts_handled: Some(a.contacts),
                missed_calls: Some(a.missed),
                talk_s: Some(secs(a.talk_ms)),
                hold_s: Some(secs(a.hold_ms)),
                wrap_s: Some(secs(a.wrap_ms)),
                idle_s_today: Some(secs(day.idle_ms + live(AgentStatus::Available))),
                paused_s_today: Some(secs(day.paused_ms + live(AgentStatus::Paused))),
                today: Some((&day.tally).into()),
                sales: Some((&a.sales).into()),
            }
        })
        .collect();
    agents.sort_by(|a, b| a.agent.cmp(&b.agent));

    let mut teams: Vec<TeamView> = engine
        .teams
        .iter()
        .map(|(name, t)| {
            let tally = t.today.get(now_ms).copied().unwrap_or_default();
            let mut states: BTreeMap<&'static str, u64> =
                AgentStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect();
            for a in agents.iter().filter(|a| a.team == name.as_str()) {
                *states.entry(a.state.as_str()).or_default() += 1;
            }
            TeamView {
                name: name.to_string(),
                site: t.site.to_string(),
                agents: states,
                today: (&tally).into(),
                sales: (&t.sales).into(),
                kpis: BTreeMap::new(),
            }
        })
        .collect();
    teams.sort_by(|a, b| a.name.cmp(&b.name));

    let c = engine.counters();
    let snap = Snapshot {
        digest: None,
        version: VERSION,
        now: rfc3339(now_ms),
        currency: s.currency.clone(),
        events: EventsView {
            applied: c.applied,
            duplicates: c.duplicates,
            clamped: c.clamped,
        },
        queues,
        teams,
        agents,
        backlog,
    };
    (snap, overdue)
}

/// Start of the agent's current day (for time-in-state booked today).
fn a_day_start(a: &crate::engine::Agent, now_ms: i64) -> i64 {
    let (start, _) =
        crate::engine::window::day_bounds(crate::engine::window::local_day(now_ms, a.tz), a.tz);
    start
}

fn backlog(engine: &Engine, now_ms: i64) -> (Vec<BacklogView>, Vec<Overdue<'_>>) {
    let mut overdue = Vec::new();
    let clock_ms = engine.clock_ms();
    // Keyed by (kind, queue) as the engine has them: no allocation per
    // task, which at a million open tasks was most of a build.
    let mut by: BTreeMap<(&str, &str), BacklogView> = BTreeMap::new();
    let fresh = || BacklogView {
        by_age: buckets::AGE
            .iter()
            .map(|b| Some(*b))
            .chain([None])
            .map(|le_s| AgeBucket { le_s, tasks: 0 })
            .collect(),
        ..BacklogView::default()
    };
    // Every configured kind in every configured queue has its row from
    // the start, so its series exist (at 0) before the first task.
    let s = engine.settings();
    let kinds = s.configured_kinds().chain(["callback"]);
    for kind in kinds {
        for queue in s.configured_queues() {
            by.entry((kind, queue)).or_insert_with(fresh);
        }
    }
    for ((kind, queue), st) in &engine.task_stats {
        let v = by
            .entry((engine.kind_name(*kind), queue.as_str()))
            .or_insert_with(fresh);
        v.created = st.created;
        v.completed_met = st.completed_met;
        v.completed_missed = st.completed_missed;
        v.cancelled = st.cancelled;
        v.unreachable = st.unreachable;
        v.breaches = st.breaches;
        v.attempts = ATTEMPTS
            .iter()
            .map(|r| (r.as_str(), st.attempts[*r as usize]))
            .collect();
    }
    for (id, t) in &engine.tasks {
        let v = by
            .entry((engine.kind_name(t.kind), t.queue.as_str()))
            .or_insert_with(fresh);
        v.open += 1;
        let age = secs(now_ms - t.created_ms);
        v.oldest_age_s = v.oldest_age_s.max(age);
        for b in v
            .by_age
            .iter_mut()
            .filter(|b| b.le_s.is_none_or(|le| age <= le))
        {
            b.tasks += 1;
        }
        let left = secs(t.due_ms - now_ms);
        v.next_due_s = Some(v.next_due_s.map_or(left, |n: f64| n.min(left)));
        v.oldest_created_ms = Some(
            v.oldest_created_ms
                .map_or(t.created_ms, |o| o.min(t.created_ms)),
        );
        v.next_due_ms = Some(v.next_due_ms.map_or(t.due_ms, |n| n.min(t.due_ms)));
        if t.overdue(now_ms) {
            v.overdue += 1;
            overdue.push((t.due_ms, id.as_str(), t));
        } else if t.due_soon(now_ms) {
            v.due_soon += 1;
        }
        // A breach is state: judged on the engine's clock, not on `now`.
        if t.overdue(clock_ms) {
            v.breaches += 1;
        }
    }
    let views = by
        .into_iter()
        .map(|((kind, queue), mut v)| {
            v.kind = kind.to_string();
            v.queue = queue.to_string();
            v
        })
        .collect();
    (views, overdue)
}

/// Filter for the open-task list.
#[derive(Debug, Default, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BacklogQuery {
    pub kind: Option<String>,
    pub queue: Option<String>,
    pub site: Option<String>,
    pub overdue: Option<bool>,
    pub due_soon: Option<bool>,
    pub limit: Option<usize>,
}

/// Most tasks one backlog request returns.
pub const BACKLOG_MAX: usize = 10_000;

#[derive(Debug, Serialize, Clone, schemars::JsonSchema)]
pub struct TaskView {
    pub task: String,
    pub kind: String,
    pub queue: String,
    pub site: String,
    pub customer: Option<String>,
    pub created: String,
    pub due: String,
    /// Wall-clock age.
    pub age_s: f64,
    /// Age in the queue's open time (what a business-hours SLA counts).
    pub business_age_s: f64,
    pub time_left_s: f64,
    pub overdue: bool,
    pub due_soon: bool,
    pub priority: i32,
    pub attempts: u32,
    pub last_result: Option<AttemptResult>,
    pub last_attempt: Option<String>,
    pub agent: Option<String>,
    /// Callbacks: `requested` or `abandoned`.
    pub source: Option<&'static str>,
    /// Callbacks generated from an abandoned call: that call.
    pub call: Option<String>,
    /// Callbacks: how often the customer asked (merged abandons).
    pub requests: Option<u32>,
}

#[derive(Debug, Serialize, Clone, schemars::JsonSchema)]
pub struct BacklogList {
    pub now: String,
    /// Open tasks matching the filter, before `limit` was applied.
    pub total: usize,
    pub tasks: Vec<TaskView>,
}

/// One open task as the backlog list shows it, at `now_ms`.
pub fn task_view(engine: &Engine, id: &str, t: &crate::engine::Task, now_ms: i64) -> TaskView {
    let q = engine.queues.get(&t.queue);
    let cb = t.callback.as_deref();
    let overdue = t.overdue(now_ms);
    TaskView {
        task: id.to_string(),
        kind: engine.kind_name(t.kind).to_string(),
        queue: t.queue.to_string(),
        site: q.map(|q| q.params.site.clone()).unwrap_or_default(),
        business_age_s: secs(
            q.map(|q| q.params.calendar.between(t.created_ms, now_ms))
                .unwrap_or(now_ms - t.created_ms),
        ),
        customer: t.customer.as_ref().map(|c| c.to_string()),
        created: rfc3339(t.created_ms),
        due: rfc3339(t.due_ms),
        age_s: secs(now_ms - t.created_ms),
        time_left_s: secs(t.due_ms - now_ms),
        overdue,
        due_soon: !overdue && t.due_soon(now_ms),
        priority: t.priority,
        attempts: t.attempts,
        last_result: t.last_result,
        last_attempt: cb.and_then(|c| c.last_attempt_ms).map(rfc3339),
        agent: t.contact.agent.as_ref().map(|a| a.to_string()),
        source: cb.map(|c| c.source.as_str()),
        call: cb.and_then(|c| c.call.as_ref()).map(|c| c.to_string()),
        requests: cb.map(|c| c.requests),
    }
}
