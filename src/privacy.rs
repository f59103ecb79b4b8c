//! Who sees what: the one policy every output goes through.
//!
//! German works councils co-determine technical monitoring of employees
//! (BetrVG §87(1)6), so the lawful setup must be the easy one, and the
//! rules must sit in one place a works council can read. This module
//! alone decides, per role, what the snapshot, the backlog list, the
//! feed (board and alerts), the wallboard and `/metrics` may contain:
//! how people appear (ids, names, pseudonyms or not at all), whether
//! customer references appear, which per-person figures are shown, which
//! group figures are withheld for groups smaller than `min_group_size`,
//! and which endpoints a role may call. No other module compares roles:
//! they ask `Policy` for the redacted form of what they serve. Adding a
//! role is a variant of `Role` (config.rs) and its `Grants` here.
//! docs/privacy.md's table is generated from `doc_table` (a test holds
//! the two together).

use std::borrow::Cow;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub use crate::config::Role;
use crate::config::{AgentDisplay, AuthConfig, PrivacyConfig};
use crate::event::AgentStatus;
use crate::feed::alert::Alert;
use crate::feed::board::Board;
use crate::kpi::ScopeKind;
use crate::scorecard::Scorecard;
use crate::snapshot::{BacklogList, SalesView, Snapshot};

/// A token that matches no configured role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unauthorized;

fn matches(given: &[u8], configured: &Option<String>) -> bool {
    configured
        .as_deref()
        .is_some_and(|t| bool::from(given.ct_eq(t.as_bytes())))
}

/// The role of a read request. A given token must match a configured
/// one; without a token the request gets `privacy.anonymous_role`, unless
/// a read token is configured (then it must authenticate).
pub fn resolve(
    token: Option<&[u8]>,
    auth: &AuthConfig,
    p: &PrivacyConfig,
) -> Result<Role, Unauthorized> {
    match token {
        Some(t) if matches(t, &auth.supervisor_token) || matches(t, &auth.read_token) => {
            Ok(Role::Supervisor)
        }
        Some(t) if matches(t, &auth.wallboard_token) => Ok(Role::Wallboard),
        Some(t) if matches(t, &auth.qa_token) => Ok(Role::Qa),
        Some(_) => Err(Unauthorized),
        None if auth.read_token.is_some() => Err(Unauthorized),
        None => Ok(p.anonymous_role),
    }
}

/// Whether any read role has a token (else every reader is anonymous).
pub fn any_read_token(auth: &AuthConfig) -> bool {
    [
        &auth.read_token,
        &auth.wallboard_token,
        &auth.supervisor_token,
        &auth.qa_token,
    ]
    .iter()
    .any(|t| t.is_some())
}

/// How a role sees people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum People {
    /// Agent ids and names.
    Ids,
    /// Names where configured, else pseudonyms; never ids.
    Names,
    /// Pseudonyms, stable for `pseudonym_period_days`.
    Pseudonyms,
    /// Not at all: no per-agent rows or labels.
    Hidden,
}

/// The outputs a role may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Snapshot,
    Backlog,
    State,
    Metrics,
    Feed,
    Scorecards,
    Goals,
    Quality,
    /// Operating the daemon (configuration reload).
    Admin,
}

/// What the wallboard role may read: everything but quality management.
const WALLBOARD_ENDPOINTS: [Endpoint; 7] = [
    Endpoint::Snapshot,
    Endpoint::Backlog,
    Endpoint::State,
    Endpoint::Metrics,
    Endpoint::Feed,
    Endpoint::Scorecards,
    Endpoint::Goals,
];

/// What the qa role may read.
const QA_ENDPOINTS: [Endpoint; 4] = [
    Endpoint::Feed,
    Endpoint::Scorecards,
    Endpoint::Goals,
    Endpoint::Quality,
];

impl Endpoint {
    pub const ALL: [Endpoint; 9] = [
        Endpoint::Snapshot,
        Endpoint::Backlog,
        Endpoint::State,
        Endpoint::Metrics,
        Endpoint::Feed,
        Endpoint::Scorecards,
        Endpoint::Goals,
        Endpoint::Quality,
        Endpoint::Admin,
    ];
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Snapshot => "GET /api/v1/snapshot",
            Endpoint::Backlog => "GET /api/v1/backlog",
            Endpoint::State => "GET /api/v1/state",
            Endpoint::Metrics => "GET /metrics",
            Endpoint::Feed => "GET /ws (feed, wallboard)",
            Endpoint::Scorecards => "GET /api/v1/scorecards, /api/v1/scorecards/compare",
            Endpoint::Goals => "GET /goals, /api/v1/goals (the goal sheet)",
            Endpoint::Quality => {
                "GET /api/v1/qa/scores, /api/v1/qa/signals, /api/v1/qa/samples, /api/v1/coaching (quality management)"
            }
            Endpoint::Admin => "POST /api/v1/admin/reload (configuration reload)",
        }
    }
}

/// What one role may see.
#[derive(Debug, Clone, Copy)]
pub struct Grants {
    pub people: People,
    /// Customer references (backlog list, overdue tasks, alerts).
    pub customers: bool,
    /// Per-agent sales, revenue and conversion.
    pub agent_sales: bool,
    /// Per-agent handling figures: contacts, AHT, talk, hold and wrap
    /// time, idle and paused time. A pseudonym stable for a day does not
    /// make these anonymous.
    pub agent_performance: bool,
    /// Teams and queues with fewer logged-in agents are shown without
    /// the figures one person's work can be read from (0: no limit).
    pub min_group_size: u64,
    /// `callwatch_agent_*` series on `/metrics`.
    pub agent_metrics: bool,
    /// Scorecards per agent (`scope=agent:ID`).
    pub agent_scorecards: bool,
    /// QA scores (quality management), and of which teams (empty: all).
    pub quality: bool,
    pub endpoints: &'static [Endpoint],
}

/// Whether a KPI (registry id) is one one person's work can be read
/// from: the registry's per-person KPIs (those that exist per agent).
/// They are withheld from a group smaller than `min_group_size`.
fn personal(kpi: &str) -> bool {
    crate::kpi::get(kpi).is_some_and(|d| d.scopes.contains(&ScopeKind::Agent))
}

/// Whether a KPI (registry id) is quality management's (fed only by QA
/// events): shown only to roles with the `quality` grant.
fn quality_kpi(kpi: &str) -> bool {
    crate::kpi::get(kpi).is_some_and(|d| {
        !d.events.is_empty()
            && d.events
                .iter()
                .all(|e| crate::kpi::QUALITY_EVENTS.contains(e))
    })
}

fn personal_kpis() -> Vec<&'static str> {
    crate::kpi::REGISTRY
        .iter()
        .filter(|d| personal(d.id))
        .map(|d| d.id)
        .collect()
}

/// Figures withheld from a group smaller than `min_group_size`.
pub const GROUP_WITHHELD: [&str; 5] = ["aht", "talk_hold_wrap", "conversion", "sales", "revenue"];

/// The privacy policy, resolved from the configuration.
#[derive(Clone)]
pub struct Policy {
    wallboard: Grants,
    supervisor: Grants,
    qa: Grants,
    qa_teams: Vec<String>,
    key: Vec<u8>,
    period_days: i64,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("wallboard", &self.wallboard)
            .field("supervisor", &self.supervisor)
            .finish()
    }
}

impl Policy {
    pub fn new(p: &PrivacyConfig) -> Policy {
        let key = match &p.pseudonym_key {
            Some(k) => k.as_bytes().to_vec(),
            None => {
                // A key per process start: pseudonyms stay stable until a
                // restart. Configure one to keep them stable across restarts.
                let mut k = [0u8; 32];
                rand::fill(&mut k);
                k.to_vec()
            }
        };
        Policy {
            wallboard: Grants {
                people: match p.wallboard_agents {
                    AgentDisplay::Names => People::Names,
                    AgentDisplay::Pseudonyms => People::Pseudonyms,
                    AgentDisplay::Hidden => People::Hidden,
                },
                customers: false,
                agent_sales: p.wallboard_agent_sales,
                agent_performance: false,
                min_group_size: p.min_group_size,
                agent_metrics: false,
                agent_scorecards: false,
                quality: false,
                endpoints: &WALLBOARD_ENDPOINTS,
            },
            qa: Grants {
                // QA staff evaluate people's contacts: they know whose.
                people: People::Ids,
                customers: false,
                agent_sales: false,
                agent_performance: false,
                min_group_size: p.min_group_size,
                agent_metrics: false,
                agent_scorecards: false,
                quality: true,
                endpoints: &QA_ENDPOINTS,
            },
            qa_teams: p.qa_teams.clone(),
            supervisor: Grants {
                people: People::Ids,
                customers: true,
                agent_sales: true,
                agent_performance: true,
                min_group_size: 0,
                agent_metrics: p.per_agent_metrics,
                agent_scorecards: p.agent_scorecards,
                quality: true,
                endpoints: &Endpoint::ALL,
            },
            key,
            period_days: p.pseudonym_period_days.max(1) as i64,
        }
    }

    pub fn grants(&self, role: Role) -> &Grants {
        match role {
            Role::Wallboard => &self.wallboard,
            Role::Supervisor => &self.supervisor,
            Role::Qa => &self.qa,
        }
    }

    pub fn allows(&self, role: Role, e: Endpoint) -> bool {
        self.grants(role).endpoints.contains(&e)
    }

    /// How `role` sees agent `id` (with its configured `name`), or
    /// `None` where it must not see the person at all.
    pub fn label(&self, role: Role, id: &str, name: Option<&str>, now_ms: i64) -> Option<String> {
        match self.grants(role).people {
            People::Ids => Some(id.to_string()),
            People::Names => Some(match name {
                Some(n) => n.to_string(),
                None => self.pseudonym(id, now_ms),
            }),
            People::Pseudonyms => Some(self.pseudonym(id, now_ms)),
            People::Hidden => None,
        }
    }

    /// The snapshot as `role` may see it (borrowed when nothing is
    /// withheld).
    pub fn snapshot<'a>(&self, s: &'a Snapshot, role: Role, now_ms: i64) -> Cow<'a, Snapshot> {
        let g = self.grants(role);
        if g.people == People::Ids
            && g.agent_performance
            && g.agent_sales
            && g.min_group_size == 0
            && g.quality
        {
            return Cow::Borrowed(s);
        }
        let mut s = s.clone();
        s.digest = None;
        if !g.quality {
            for q in &mut s.queues {
                q.kpis.retain(|_, k| !quality_kpi(k.kpi));
            }
            for t in &mut s.teams {
                t.kpis.retain(|_, k| !quality_kpi(k.kpi));
            }
        }
        let min = g.min_group_size;
        s.teams.retain(|t| {
            let size: u64 = t
                .agents
                .iter()
                .filter(|(k, _)| **k != AgentStatus::Offline.as_str())
                .map(|(_, n)| n)
                .sum();
            size >= min
        });
        for q in &mut s.queues {
            let members = s
                .agents
                .iter()
                .filter(|a| a.state != AgentStatus::Offline && a.queues.contains(&q.name))
                .count() as u64;
            if members < min {
                q.today_contacts = Default::default();
                q.sales = SalesView::default();
                q.kpis.retain(|_, k| !personal(k.kpi));
                q.withheld = GROUP_WITHHELD.to_vec();
            }
        }
        let mut agents = std::mem::take(&mut s.agents);
        agents.retain_mut(|a| {
            let Some(label) = self.label(role, &a.agent, a.name.as_deref(), now_ms) else {
                return false;
            };
            if g.people != People::Ids {
                a.agent = label;
                a.name = None;
            }
            if !g.agent_performance {
                a.contacts_handled = None;
                a.missed_calls = None;
                a.talk_s = None;
                a.hold_s = None;
                a.wrap_s = None;
                a.idle_s_today = None;
                a.paused_s_today = None;
                a.today = None;
            }
            if !g.agent_sales {
                a.sales = None;
                if let Some(t) = a.today.as_mut() {
                    t.sales = 0;
                    t.revenue = 0.0;
                    t.incremental = 0.0;
                    t.sales_cancelled = 0;
                    t.converted = 0;
                    t.conversion = None;
                }
            }
            true
        });
        agents.sort_by(|a, b| a.agent.cmp(&b.agent));
        s.agents = agents;
        Cow::Owned(s)
    }

    /// Scorecards as `role` may see them: a scope with fewer logged-in
    /// agents than `min_group_size` loses its personal goals, its sales
    /// score and the guardrail's money figures.
    /// Agent scorecards only with the role's `agent_scorecards` grant.
    pub fn scorecards(&self, cards: &mut Vec<Scorecard>, role: Role) {
        let g = self.grants(role);
        if !g.agent_scorecards {
            cards.retain(|c| c.kind != ScopeKind::Agent);
        }
        if !g.quality {
            for c in cards.iter_mut() {
                c.goals.retain(|g| !quality_kpi(g.kpi));
            }
        }
        let min = g.min_group_size;
        for c in cards.iter_mut().filter(|c| c.agents < min) {
            let (keep, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut c.goals)
                .into_iter()
                .partition(|g| !personal(g.kpi));
            c.goals = keep;
            c.withheld = gone.into_iter().map(|g| g.goal).collect();
            c.sales_score = None;
            c.guardrail.credited_revenue = 0.0;
            c.guardrail.withheld_revenue = 0.0;
            c.guardrail.withheld_incremental = 0.0;
            c.guardrail.withheld_sales = 0;
            c.withheld.push("guardrail_amounts".into());
        }
    }

    /// Scorecards for `/metrics`: as `scorecards`, and agent scorecards
    /// only where per-agent series are allowed too (an agent id becomes
    /// a label there).
    pub fn metric_scorecards(&self, cards: &mut Vec<Scorecard>, role: Role) {
        self.scorecards(cards, role);
        if !self.grants(role).agent_metrics {
            cards.retain(|c| c.kind != ScopeKind::Agent);
        }
    }

    /// Quality management's rows (QA scores, signals, samples, coaching)
    /// as `role` may see them: none without the grant; the qa role only
    /// its teams' (and no site or partner rows when limited to some
    /// teams).
    pub fn quality_rows<T: crate::quality::TeamRow>(&self, rows: &mut Vec<T>, role: Role) {
        if !self.grants(role).quality {
            rows.clear();
        } else if role == Role::Qa && !self.qa_teams.is_empty() {
            rows.retain(|r| {
                r.team()
                    .is_some_and(|t| self.qa_teams.iter().any(|x| x == t))
            });
        }
    }

    /// Whether `role` sees quality management's data at all (so whether
    /// it is worth computing for it).
    pub fn sees_quality(&self, role: Role) -> bool {
        self.grants(role).quality
    }

    /// Quality management's figures for `/metrics` (sample counts,
    /// signal counts per team): none without the grant.
    pub fn quality_only<'a, T>(&self, t: &'a [T], role: Role) -> &'a [T] {
        if self.grants(role).quality {
            t
        } else {
            &[]
        }
    }

    /// The open-task list as `role` may see it.
    pub fn backlog(&self, list: &mut BacklogList, role: Role, now_ms: i64) {
        let g = self.grants(role);
        for t in &mut list.tasks {
            if !g.customers {
                t.customer = None;
            }
            if g.people != People::Ids {
                // Task assignees have no configured name here.
                t.agent = t
                    .agent
                    .take()
                    .and_then(|a| self.label(role, &a, None, now_ms));
            }
        }
    }

    /// A (scoped) board as `role` may see it. Agents are re-keyed by
    /// their label, so the key never carries an id the role may not see.
    pub fn board(&self, b: &mut Board, role: Role, now_ms: i64) {
        let g = self.grants(role);
        if !g.quality {
            b.qa.clear();
        }
        if role == Role::Qa {
            // QA staff get quality management's entries only, of their
            // teams: no live floor (queues, agents, tasks).
            let qa = std::mem::take(&mut b.qa);
            *b = Board {
                built: b.built,
                version: b.version,
                ..Board::default()
            };
            b.qa = qa;
            if !self.qa_teams.is_empty() {
                b.qa.retain(|_, e| self.qa_teams.iter().any(|t| t == e.team()));
            }
            return;
        }
        if !g.quality {
            for q in b.queues.values_mut() {
                q.kpis.retain(|_, k| !quality_kpi(k.kpi));
            }
            for t in b.teams.values_mut() {
                t.kpis.retain(|_, k| !quality_kpi(k.kpi));
            }
        }
        let min = g.min_group_size;
        b.teams.retain(|_, t| t.size >= min);
        let members = |queue: &str| {
            b.agents
                .values()
                .filter(|a| a.queues.iter().any(|q| q == queue))
                .count() as u64
        };
        let small: Vec<String> = b
            .queues
            .keys()
            .filter(|q| members(q) < min)
            .cloned()
            .collect();
        for name in small {
            if let Some(q) = b.queues.get_mut(&name) {
                q.aht_s = None;
                q.talk_s = None;
                q.hold_s = None;
                q.wrap_s = None;
                q.conversion = None;
                q.revenue_today = None;
                q.wrapped_today = None;
                q.contacts_today = None;
                q.converted_today = None;
                q.kpis.retain(|_, k| !personal(k.kpi));
                q.withheld = GROUP_WITHHELD.to_vec();
            }
        }
        if !g.customers {
            for o in b.overdue.values_mut() {
                o.customer = None;
            }
        }
        if !b.scorecards.is_empty() {
            let mut cards: Vec<Scorecard> =
                std::mem::take(&mut b.scorecards).into_values().collect();
            // The board never carries agent cards; the filter is the
            // policy's all the same.
            cards.retain(|c| c.kind != ScopeKind::Agent);
            self.scorecards(&mut cards, role);
            b.scorecards = cards.into_iter().map(|c| (c.scope.clone(), c)).collect();
        }
        if g.people == People::Ids && g.agent_performance && g.agent_sales {
            return;
        }
        let agents = std::mem::take(&mut b.agents);
        for (id, mut a) in agents {
            let Some(label) = self.label(role, &id, a.name.as_deref(), now_ms) else {
                continue;
            };
            a.name = None;
            a.label = label.clone();
            if !g.agent_performance {
                a.contacts_today = None;
            }
            if !g.agent_sales {
                a.conversion_today = None;
                a.revenue_today = None;
            }
            b.agents
                .insert(if g.people == People::Ids { id } else { label }, a);
        }
    }

    /// An alert as `role` may see it, or `None`.
    pub fn alert(&self, a: &Alert, role: Role, name: Option<&str>, now_ms: i64) -> Option<Alert> {
        let g = self.grants(role);
        if role == Role::Qa {
            return None;
        }
        let mut a = a.clone();
        match &mut a {
            Alert::TaskOverdue { customer, .. } if !g.customers => *customer = None,
            Alert::PauseTooLong { agent, .. } => *agent = self.label(role, agent, name, now_ms)?,
            _ => {}
        }
        Some(a)
    }

    /// A stable, non-reversible pseudonym of an agent for the period that
    /// contains `now_ms` (HMAC-SHA-256 of the period and the agent id).
    pub fn pseudonym(&self, agent: &str, now_ms: i64) -> String {
        let period = now_ms.div_euclid(self.period_days * 86_400_000);
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return "Agent".into();
        };
        mac.update(&period.to_le_bytes());
        mac.update(agent.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("Agent {:02X}{:02X}{:02X}", tag[0], tag[1], tag[2])
    }
}

/// What an operator should know about a configuration that is valid
/// but exposes more than the defaults (logged at start-up).
pub fn warnings(auth: &AuthConfig, p: &PrivacyConfig) -> Vec<String> {
    let mut w = Vec::new();
    if p.anonymous_role == Role::Supervisor && auth.read_token.is_none() {
        w.push(
            "privacy.anonymous_role = \"supervisor\" without auth.read_token: every request \
             without a token sees agent ids, names, per-agent figures and customer references \
             (docs/privacy.md)"
                .to_string(),
        );
    }
    if p.pseudonym_key.is_none() && p.wallboard_agents == AgentDisplay::Pseudonyms {
        w.push("privacy.pseudonym_key is not set: pseudonyms change at every restart".into());
    }
    w
}

/// docs/privacy.md's "what each role sees" table, generated from the
/// policy as the default configuration resolves it (the settings that
/// change a cell are named in it). A test holds the document to it.
pub fn doc_table() -> String {
    let p = Policy::new(&PrivacyConfig::default());
    let roles = [Role::Wallboard, Role::Supervisor, Role::Qa];
    type Cell = fn(&Grants) -> String;
    let rows: [(&str, Cell); 10] = [
        ("endpoints", |g| {
            g.endpoints
                .iter()
                .map(|e| format!("`{}`", e.path()))
                .collect::<Vec<_>>()
                .join(", ")
        }),
        ("agents appear as", |g| {
            match g.people {
                People::Ids => "agent ids and names",
                People::Names => "names (pseudonyms where none is configured), never ids",
                People::Pseudonyms => {
                    "pseudonyms, never ids or names (`privacy.wallboard_agents`: `names`, `pseudonyms`, `hidden`)"
                }
                People::Hidden => "not at all",
            }
            .to_string()
        }),
        (
            "customer references (backlog list, overdue tasks, alerts)",
            |g| if g.customers { "yes" } else { "no" }.into(),
        ),
        ("per-agent sales, revenue, conversion", |g| {
            if g.agent_sales {
                "yes".into()
            } else {
                "no (`privacy.wallboard_agent_sales`)".into()
            }
        }),
        (
            "per-agent handling: contacts, AHT, talk, hold, wrap, idle and paused time",
            |g| if g.agent_performance { "yes" } else { "no" }.into(),
        ),
        (
            "agent state, pause reason, time in state, team, queues",
            |g| {
                if g.people == People::Hidden {
                    "no".into()
                } else {
                    "yes".into()
                }
            },
        ),
        (
            "teams and queues with fewer logged-in agents than `privacy.min_group_size`",
            |g| {
                if g.min_group_size == 0 {
                    "all figures".into()
                } else {
                    format!(
                    "small teams left out of the snapshot; small queues without {} (listed in `withheld`); \
                     small scopes' scorecards without the goals on {}, the sales score and the guardrail's amounts; default size {}",
                    GROUP_WITHHELD.join(", "),
                    personal_kpis().join(", "),
                    g.min_group_size
                )
                }
            },
        ),
        ("scorecards per agent (`scope=agent:ID`)", |g| {
            if g.agent_scorecards {
                "yes".into()
            } else if g.people == People::Ids {
                "with `privacy.agent_scorecards = true`".into()
            } else {
                "never".into()
            }
        }),
        (
            "QA scores per agent, team, site, partner (quality management)",
            |g| {
                if g.quality {
                    "yes".into()
                } else {
                    "never".into()
                }
            },
        ),
        ("`callwatch_agent_*` series on `/metrics`", |g| {
            if g.agent_metrics {
                "yes".into()
            } else if g.people == People::Ids {
                "with `privacy.per_agent_metrics = true`".into()
            } else {
                "never".into()
            }
        }),
    ];
    let mut out = String::from("| what |");
    for r in roles {
        out.push_str(&format!(
            " `{}` |",
            serde_json::to_value(r)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        ));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(roles.len()));
    out.push('\n');
    for (what, cell) in rows {
        out.push_str(&format!("| {what} |"));
        for r in roles {
            out.push_str(&format!(" {} |", cell(p.grants(r))));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn privacy(key: &str, days: u32) -> Policy {
        Policy::new(&PrivacyConfig {
            pseudonym_key: Some(key.into()),
            pseudonym_period_days: days,
            ..PrivacyConfig::default()
        })
    }

    #[test]
    fn pseudonyms_are_stable_within_a_period_and_keyed() {
        let day = 86_400_000;
        let p = privacy("0123456789abcdef-key", 1);
        let t = 20_000 * day + 1000;
        let a = p.pseudonym("agent-7", t);
        assert!(a.starts_with("Agent ") && a.len() == 12, "{a}");
        assert_eq!(
            a,
            p.pseudonym("agent-7", t + day / 2),
            "same day, same pseudonym"
        );
        assert_ne!(a, p.pseudonym("agent-7", t + day), "next day, another");
        assert_ne!(a, p.pseudonym("agent-8", t), "another agent, another");
        assert_ne!(
            a,
            privacy("another-key-0123456", 1).pseudonym("agent-7", t),
            "not reproducible without the key"
        );
        let week = privacy("0123456789abcdef-key", 7);
        let start = 20_000 / 7 * 7 * day;
        assert_eq!(
            week.pseudonym("agent-7", start),
            week.pseudonym("agent-7", start + 6 * day)
        );
    }

    #[test]
    fn roles_follow_tokens() {
        let auth = AuthConfig {
            wallboard_token: Some("wallboard-token-123".into()),
            supervisor_token: Some("supervisor-token-12".into()),
            ..AuthConfig::default()
        };
        let p = PrivacyConfig::default();
        assert_eq!(
            resolve(Some(b"wallboard-token-123"), &auth, &p),
            Ok(Role::Wallboard)
        );
        assert_eq!(
            resolve(Some(b"supervisor-token-12"), &auth, &p),
            Ok(Role::Supervisor)
        );
        assert_eq!(resolve(Some(b"guess"), &auth, &p), Err(Unauthorized));
        assert_eq!(
            resolve(None, &auth, &p),
            Ok(Role::Wallboard),
            "anonymous_role"
        );
        let locked = AuthConfig {
            read_token: Some("read-token-1234567".into()),
            ..auth
        };
        assert_eq!(resolve(None, &locked, &p), Err(Unauthorized));
    }

    #[test]
    fn an_open_supervisor_role_is_warned_about() {
        let open = PrivacyConfig {
            anonymous_role: Role::Supervisor,
            pseudonym_key: Some("0123456789abcdef-key".into()),
            ..PrivacyConfig::default()
        };
        let w = warnings(&AuthConfig::default(), &open);
        assert!(w.len() == 1 && w[0].contains("anonymous_role"), "{w:?}");
        let locked = AuthConfig {
            read_token: Some("read-token-1234567".into()),
            ..AuthConfig::default()
        };
        assert!(warnings(&locked, &open).is_empty());
    }
}
