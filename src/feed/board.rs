//! The board: what the feed and the wallboard show, built once per
//! change and shared by every client.
//!
//! It carries instants (waiting since, in state since, created, due)
//! rather than ages, so it only changes when something happens or a
//! status flips (a task goes overdue, a wait crosses a threshold); the
//! client counts ages up itself. Role and scope filtering happen per
//! client on a clone (`scoped`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine::{CallPhase, Engine};
use crate::event::AgentStatus;
use crate::kpi::ScopeKind;
use crate::scorecard::Scorecard;
use crate::snapshot::{self, KpiView, Snapshot};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QueueTile {
    pub site: String,
    pub team: Option<String>,
    pub waiting: u64,
    /// Offer time of the longest-waiting call (ms), if any waits.
    pub oldest_since: Option<i64>,
    pub offered_today: u64,
    pub answered_today: u64,
    pub abandoned_today: u64,
    pub sl_today: Option<f64>,
    pub sl_60m: Option<f64>,
    pub aht_s: Option<f64>,
    pub talk_s: Option<f64>,
    pub hold_s: Option<f64>,
    pub wrap_s: Option<f64>,
    pub conversion: Option<f64>,
    pub revenue_today: Option<f64>,
    /// The populations of `aht_s` and `conversion`, so the page can add
    /// queues up (the default view shows the whole desk).
    pub wrapped_today: Option<u64>,
    pub contacts_today: Option<u64>,
    pub converted_today: Option<u64>,
    /// KPI targets and statuses. `oldest_wait` carries no value (it grows
    /// by the second; the client computes it from `oldest_since`).
    pub kpis: BTreeMap<String, KpiView>,
    /// Figures withheld by the privacy policy (see `QueueView`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub withheld: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TeamTile {
    pub site: String,
    pub size: u64,
    pub agents: BTreeMap<&'static str, u64>,
    pub aht_s: Option<f64>,
    pub conversion: Option<f64>,
    pub revenue_today: f64,
    pub kpis: BTreeMap<String, KpiView>,
    pub primary_score: Option<f64>,
    pub sales_score: Option<f64>,
    /// Whether today's sales are credited (docs/goals.md).
    pub guardrail: Option<crate::scorecard::GuardrailView>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AgentTile {
    /// What the viewer may see: a name, a pseudonym, or (supervisor) the
    /// name or else the id.
    pub label: String,
    /// The configured name, for the policy's labelling (never sent).
    #[serde(skip)]
    pub name: Option<String>,
    /// Queue membership, for the policy's group sizes (never sent).
    #[serde(skip)]
    pub queues: Vec<String>,
    pub team: String,
    pub site: String,
    pub state: AgentStatus,
    pub reason: Option<String>,
    pub since: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contacts_today: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversion_today: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revenue_today: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BacklogTile {
    pub kind: String,
    pub queue: String,
    pub open: u64,
    pub overdue: u64,
    pub due_soon: u64,
    pub oldest_created: Option<i64>,
    pub next_due: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OverdueItem {
    pub kind: String,
    pub queue: String,
    pub created: i64,
    pub due: i64,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
}

/// The whole board; maps keyed by what the client keys by.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Board {
    /// Engine version it was built from (not sent).
    #[serde(skip)]
    pub version: u64,
    /// False only for the placeholder before the first build.
    #[serde(skip)]
    pub built: bool,
    pub queues: BTreeMap<String, QueueTile>,
    pub teams: BTreeMap<String, TeamTile>,
    pub agents: BTreeMap<String, AgentTile>,
    /// Keyed `kind/queue`.
    pub backlog: BTreeMap<String, BacklogTile>,
    /// Overdue tasks, most overdue first (bounded), keyed by task id.
    pub overdue: BTreeMap<String, OverdueItem>,
    /// Site, team, queue and partner scorecards keyed by scope
    /// (`team:sales`); only for clients that ask (`Scope::scorecards`).
    /// Agent scorecards are never on the board (API only, docs/goals.md).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub scorecards: BTreeMap<String, Scorecard>,
    /// Quality management for QA staff (`Scope::qa`, the quality grant):
    /// `sample:TEAM` counts and the current period's integrity signals.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub qa: BTreeMap<String, QaEntry>,
}

/// One entry of the board's `qa` map.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub enum QaEntry {
    Sample(crate::quality::TeamSample),
    Signal(crate::quality::Signal),
}

impl QaEntry {
    pub fn team(&self) -> &str {
        match self {
            QaEntry::Sample(t) => &t.team,
            QaEntry::Signal(s) => &s.team,
        }
    }
}

/// The `qa` map of a board.
pub fn qa_entries(
    samples: &[crate::quality::TeamSample],
    signals: &[crate::quality::Signal],
) -> BTreeMap<String, QaEntry> {
    let mut m = BTreeMap::new();
    for t in samples {
        m.insert(format!("sample:{}", t.team), QaEntry::Sample(t.clone()));
    }
    for s in signals {
        m.insert(
            format!("signal:{}:{}:{}", s.signal, s.agent, s.items.join(",")),
            QaEntry::Signal(s.clone()),
        );
    }
    m
}

/// Builds the full board (every queue, agent and task, supervisor
/// detail) from the engine and its snapshot at `now_ms`.
pub fn build(
    engine: &Engine,
    snap: &Snapshot,
    mut overdue: Vec<snapshot::Overdue>,
    now_ms: i64,
    overdue_max: usize,
) -> Board {
    let mut oldest: BTreeMap<&str, i64> = BTreeMap::new();
    for c in engine.calls.values() {
        if matches!(c.phase, CallPhase::Waiting) {
            let e = oldest.entry(c.queue.as_str()).or_insert(c.offered_ms);
            *e = (*e).min(c.offered_ms);
        }
    }
    let queues = snap
        .queues
        .iter()
        .map(|q| {
            let mut kpis = q.kpis.clone();
            for k in kpis.values_mut().filter(|k| k.kpi == "oldest_wait") {
                k.value = None;
            }
            let t = &q.today_contacts;
            let tile = QueueTile {
                site: q.site.clone(),
                team: q.team.clone(),
                waiting: q.waiting,
                oldest_since: oldest.get(q.name.as_str()).copied(),
                offered_today: q.today.counts.offered,
                answered_today: q.today.counts.answered,
                abandoned_today: q.today.counts.abandoned,
                sl_today: q.today.service_level,
                sl_60m: q.last_60m.service_level,
                aht_s: t.aht_s,
                talk_s: t.talk_s,
                hold_s: t.hold_s,
                wrap_s: t.wrap_s,
                conversion: t.conversion,
                revenue_today: Some(t.revenue),
                wrapped_today: Some(t.wrapped),
                contacts_today: Some(t.contacts),
                converted_today: Some(t.converted),
                kpis,
                withheld: Vec::new(),
            };
            (q.name.clone(), tile)
        })
        .collect();
    let teams = snap
        .teams
        .iter()
        .map(|t| {
            let tile = TeamTile {
                site: t.site.clone(),
                size: t
                    .agents
                    .iter()
                    .filter(|(s, _)| **s != "offline")
                    .map(|(_, n)| n)
                    .sum(),
                agents: t.agents.clone(),
                aht_s: t.today.aht_s,
                conversion: t.today.conversion,
                revenue_today: t.today.revenue,
                kpis: t.kpis.clone(),
                primary_score: None,
                sales_score: None,
                guardrail: None,
            };
            (t.name.clone(), tile)
        })
        .collect();
    let agents = engine
        .agents
        .iter()
        .filter(|(_, a)| a.status != AgentStatus::Offline)
        .map(|(id, a)| {
            let day = a.today.get(now_ms).copied().unwrap_or_default();
            let tile = AgentTile {
                label: a.name.as_deref().unwrap_or(id).to_string(),
                name: a.name.as_ref().map(|n| n.to_string()),
                queues: a.queues.iter().map(|q| q.to_string()).collect(),
                team: a.team.to_string(),
                site: a.site.to_string(),
                state: a.status,
                reason: a.reason.as_ref().map(|r| r.to_string()),
                since: a.since_ms,
                contacts_today: Some(day.tally.contacts),
                conversion_today: day.tally.conversion(),
                revenue_today: Some(day.tally.revenue.units()),
            };
            (id.to_string(), tile)
        })
        .collect();
    // The backlog tiles and the overdue tasks come from the snapshot's
    // one pass over the open tasks; only the `overdue_max` most overdue
    // become items.
    let order = |a: &(i64, &str, &crate::engine::Task), b: &(i64, &str, &crate::engine::Task)| {
        a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1))
    };
    if overdue.len() > overdue_max {
        overdue.select_nth_unstable_by(overdue_max, order);
        overdue.truncate(overdue_max);
    }
    overdue.sort_unstable_by(order);
    let overdue = overdue
        .into_iter()
        .map(|(_, id, t)| {
            (
                id.to_string(),
                OverdueItem {
                    kind: engine.kind_name(t.kind).to_string(),
                    queue: t.queue.to_string(),
                    created: t.created_ms,
                    due: t.due_ms,
                    attempts: t.attempts,
                    customer: t.customer.as_ref().map(|c| c.to_string()),
                },
            )
        })
        .collect();
    let backlog = snap
        .backlog
        .iter()
        .filter(|b| b.open > 0)
        .map(|b| {
            let tile = BacklogTile {
                kind: b.kind.clone(),
                queue: b.queue.clone(),
                open: b.open,
                overdue: b.overdue,
                due_soon: b.due_soon,
                oldest_created: b.oldest_created_ms,
                next_due: b.next_due_ms,
            };
            (format!("{}/{}", b.kind, b.queue), tile)
        })
        .collect();
    Board {
        built: true,
        version: engine.version(),
        queues,
        teams,
        agents,
        backlog,
        overdue,
        scorecards: BTreeMap::new(),
        qa: BTreeMap::new(),
    }
}

/// What a client asked to see; empty lists mean "all".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scope {
    pub queues: Vec<String>,
    pub teams: Vec<String>,
    pub sites: Vec<String>,
    pub kinds: Vec<String>,
    /// Whether the client wants the scorecards of its scope too (they are
    /// larger than the tiles and change with every contact).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub scorecards: bool,
    /// Whether the client wants quality management's entries (QA staff).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub qa: bool,
}

/// Most names in each list of a scope, and the longest name: a client
/// cannot make every delta a search through thousands of names.
pub const MAX_SCOPE_NAMES: usize = 64;
pub const MAX_SCOPE_NAME_CHARS: usize = 256;

impl Scope {
    /// Whether a scope sent in a `subscribe` message is within bounds
    /// (the query form is cut to them instead).
    pub fn check(&self) -> Result<(), String> {
        for (key, list) in [
            ("queues", &self.queues),
            ("teams", &self.teams),
            ("sites", &self.sites),
            ("kinds", &self.kinds),
        ] {
            if list.len() > MAX_SCOPE_NAMES {
                return Err(format!(
                    "scope.{key} has {} names; at most {MAX_SCOPE_NAMES}",
                    list.len()
                ));
            }
            if list
                .iter()
                .any(|n| n.chars().count() > MAX_SCOPE_NAME_CHARS)
            {
                return Err(format!(
                    "a name in scope.{key} is longer than {MAX_SCOPE_NAME_CHARS} characters"
                ));
            }
        }
        Ok(())
    }

    /// Parses comma-separated query values.
    pub fn from_query(q: &std::collections::HashMap<String, String>) -> Scope {
        let list = |k: &str| -> Vec<String> {
            q.get(k)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .take(MAX_SCOPE_NAMES)
                        .map(|s| s.chars().take(MAX_SCOPE_NAME_CHARS).collect())
                        .collect()
                })
                .unwrap_or_default()
        };
        Scope {
            queues: list("queues").into_iter().chain(list("queue")).collect(),
            teams: list("teams").into_iter().chain(list("team")).collect(),
            sites: list("sites").into_iter().chain(list("site")).collect(),
            kinds: list("kinds").into_iter().chain(list("kind")).collect(),
            scorecards: q
                .get("scorecards")
                .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes")),
            qa: q
                .get("qa")
                .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes")),
        }
    }

    fn has(list: &[String], v: &str) -> bool {
        list.is_empty() || list.iter().any(|x| x == v)
    }

    pub fn queue(&self, name: &str, q: &QueueTile) -> bool {
        Scope::has(&self.queues, name)
            && (self.teams.is_empty()
                || q.team
                    .as_deref()
                    .is_some_and(|t| Scope::has(&self.teams, t)))
            && Scope::has(&self.sites, &q.site)
    }

    pub fn agent(&self, a: &AgentTile) -> bool {
        Scope::has(&self.teams, &a.team) && Scope::has(&self.sites, &a.site)
    }

    pub fn team(&self, name: &str, t: &TeamTile) -> bool {
        Scope::has(&self.teams, name) && Scope::has(&self.sites, &t.site)
    }
}

impl Board {
    /// The part of the board within `scope` (redaction for the viewer's
    /// role is `privacy::Policy::board`'s, applied after this).
    pub fn scoped(&self, scope: &Scope) -> Board {
        let queues: BTreeMap<String, QueueTile> = self
            .queues
            .iter()
            .filter(|(n, q)| scope.queue(n, q))
            .map(|(n, q)| (n.clone(), q.clone()))
            .collect();
        let queue_ok = |q: &str| {
            queues.contains_key(q)
                || (q == crate::config::NO_QUEUE
                    && scope.queues.is_empty()
                    && scope.teams.is_empty())
        };
        let teams: BTreeMap<String, TeamTile> = self
            .teams
            .iter()
            .filter(|(n, t)| scope.team(n, t))
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        let agents = self
            .agents
            .iter()
            .filter(|(_, a)| scope.agent(a))
            .map(|(id, a)| (id.clone(), a.clone()))
            .collect();
        let backlog = self
            .backlog
            .iter()
            .filter(|(_, b)| queue_ok(&b.queue) && Scope::has(&scope.kinds, &b.kind))
            .map(|(k, b)| (k.clone(), b.clone()))
            .collect();
        let overdue = self
            .overdue
            .iter()
            .filter(|(_, o)| queue_ok(&o.queue) && Scope::has(&scope.kinds, &o.kind))
            .map(|(id, o)| (id.clone(), o.clone()))
            .collect();
        let whole_sites = scope.queues.is_empty() && scope.teams.is_empty();
        let scorecards = self
            .scorecards
            .iter()
            .filter(|_| scope.scorecards)
            .filter(|(_, c)| match c.kind {
                ScopeKind::Queue => queues.contains_key(&c.name),
                ScopeKind::Team => teams.contains_key(&c.name),
                ScopeKind::Site => whole_sites && Scope::has(&scope.sites, &c.name),
                // A partner spans teams or sites: shown on whole-desk views.
                ScopeKind::Partner => whole_sites && scope.sites.is_empty(),
                ScopeKind::Agent => false,
            })
            .map(|(k, c)| (k.clone(), c.clone()))
            .collect();
        let qa = self
            .qa
            .iter()
            .filter(|_| scope.qa)
            .filter(|(_, e)| Scope::has(&scope.teams, e.team()))
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        Board {
            built: self.built,
            version: self.version,
            queues,
            teams,
            agents,
            backlog,
            overdue,
            scorecards,
            qa,
        }
    }
}

/// Entries added or changed, and keys removed, per map.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Delta {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<&'static str, serde_json::Value>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub remove: BTreeMap<&'static str, Vec<String>>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }
}

fn diff_map<T: PartialEq + Serialize>(
    name: &'static str,
    old: &BTreeMap<String, T>,
    new: &BTreeMap<String, T>,
    d: &mut Delta,
) {
    let changed: BTreeMap<&String, &T> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .collect();
    if !changed.is_empty() {
        d.set
            .insert(name, serde_json::to_value(changed).unwrap_or_default());
    }
    let removed: Vec<String> = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .cloned()
        .collect();
    if !removed.is_empty() {
        d.remove.insert(name, removed);
    }
}

/// What changed from `old` to `new`.
pub fn diff(old: &Board, new: &Board) -> Delta {
    let mut d = Delta::default();
    diff_map("queues", &old.queues, &new.queues, &mut d);
    diff_map("teams", &old.teams, &new.teams, &mut d);
    diff_map("agents", &old.agents, &new.agents, &mut d);
    diff_map("backlog", &old.backlog, &new.backlog, &mut d);
    diff_map("overdue", &old.overdue, &new.overdue, &mut d);
    diff_map("scorecards", &old.scorecards, &new.scorecards, &mut d);
    diff_map("qa", &old.qa, &new.qa, &mut d);
    d
}
