//! Scorecards: every goal of the matrix measured for a scope (site, team,
//! queue, partner) over its period, judged, and turned into attainment
//! points; a weighted primary score and sales score; and the guardrail,
//! which credits sales only for the intervals in which the scope's
//! primary goals held.
//!
//! Built by the writer as part of the view, from the engine's ledger
//! (sums per interval per queue) and the snapshot (values "now"). A
//! scope's sums are its queues' sums: a team's are the queues assigned
//! to it, a site's the queues at it, a partner's the queues of its teams
//! and sites. Arithmetic (docs/goals.md): a goal's points are
//! `weight × attainment`, attainment 0 at the minimum, 1 at the target,
//! linear between and capped; a score is points / weights over the goals
//! of its category that have a value.

use std::collections::BTreeMap;

use chrono::TimeZone;
use chrono_tz::Tz;
use serde::Serialize;

use crate::config::goals::GuardrailMode;
use crate::config::{Category, Period};
use crate::engine::ledger::{self, Durations, Slot};
use crate::engine::tally::DayTally;

use crate::engine::{Engine, Queue};
use crate::goal::{Goal, Matrix, Scope, Status, Thresholds};
use crate::kpi::{Inputs, Measured, Now, Params, ScopeKind, Unit};
use crate::snapshot::{rfc3339, Snapshot};

/// The partner scope of the queues no partner runs (present whenever a
/// partner is configured, so in-house and partners compare).
pub const IN_HOUSE: &str = "in_house";

/// One goal on a scorecard.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GoalCard {
    pub goal: String,
    /// The KPI's title, with the goal's task kind (for people).
    pub title: String,
    pub kpi: &'static str,
    pub objective: String,
    pub category: Category,
    pub unit: Unit,
    /// Which way is better (`higher` or `lower`).
    pub direction: crate::kpi::Better,
    pub period: &'static str,
    pub from: String,
    pub to: String,
    pub value: Option<f64>,
    pub numerator: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denominator: Option<f64>,
    pub target: f64,
    pub warn: f64,
    pub minimum: f64,
    pub weight: f64,
    pub status: Status,
    /// `weight × attainment`; `None` without a value.
    pub points: Option<f64>,
    /// Sales goals: the value the guardrail credits (what the points
    /// are computed from); equal to `value` when nothing was withheld.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credited: Option<f64>,
    /// A mean's confidence interval (the QA score, docs/quality.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<crate::stats::MeanInterval>,
}

/// Whether sales were credited, and what was withheld and why.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct GuardrailView {
    pub met: bool,
    pub period: &'static str,
    pub intervals: u64,
    pub intervals_failed: u64,
    pub credited_revenue: f64,
    pub withheld_revenue: f64,
    pub withheld_incremental: f64,
    pub withheld_sales: u64,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Scorecard {
    pub scope: String,
    pub kind: ScopeKind,
    pub name: String,
    /// Logged-in agents serving the scope (the privacy policy's group size).
    pub agents: u64,
    pub primary_score: Option<f64>,
    pub sales_score: Option<f64>,
    pub goals: Vec<GoalCard>,
    pub guardrail: GuardrailView,
    /// Goals the privacy policy withholds from this viewer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub withheld: Vec<String>,
}

/// Every scope's scorecard, each goal over its own period (or `period`).
pub fn build(
    engine: &Engine,
    snap: &Snapshot,
    now_ms: i64,
    period: Option<Period>,
) -> Vec<Scorecard> {
    let s = engine.settings();
    let m: &Matrix = &s.matrix;
    let mut cards: Vec<Scorecard> = scopes(engine)
        .into_iter()
        .map(|sc| card(engine, snap, m, &sc, now_ms, period))
        .collect();
    cards.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    cards
}

/// A scope, its chain of parents (nearest first), its queues and the
/// time zone its periods are local to.
struct ScopeDef {
    scope: Scope,
    chain: Vec<Scope>,
    /// The queues whose sums are the scope's; for an agent, the queues
    /// of the agent's team (or site), whose primary goals the agent's
    /// guardrail judges.
    queues: Vec<String>,
    tz: Tz,
    team: Option<String>,
    /// An agent scope: its figures are the agent's own ledger.
    agent: Option<String>,
}

fn scopes(engine: &Engine) -> Vec<ScopeDef> {
    let s = engine.settings();
    let mut out = Vec::new();
    let mut teams: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    let mut sites: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut partners: BTreeMap<String, Vec<String>> = BTreeMap::new();
    sites.insert(s.default_site.clone(), Vec::new());
    for name in engine.teams.keys() {
        if name.as_str() == crate::engine::NO_TEAM {
            continue;
        }
        let site = s.team_site(name).unwrap_or(&s.default_site).to_string();
        teams.insert(name.to_string(), (site, Vec::new()));
    }
    for p in s.partners() {
        partners.insert(p.to_string(), Vec::new());
    }
    let mut names: Vec<&str> = engine.queues.keys().map(|k| k.as_str()).collect();
    names.sort_unstable();
    for name in names {
        let Some(q) = engine.queues.get(name) else {
            continue;
        };
        let p = &q.params;
        let team = p.team.clone();
        let partner = s.partner_of(team.as_deref(), &p.site);
        let mut chain = vec![Scope::new(ScopeKind::Queue, name)];
        if let Some(t) = &team {
            chain.push(Scope::new(ScopeKind::Team, t));
            teams
                .entry(t.clone())
                .or_insert_with(|| (p.site.clone(), Vec::new()))
                .1
                .push(name.to_string());
        }
        if let Some(pn) = partner {
            chain.push(Scope::new(ScopeKind::Partner, pn));
            partners
                .entry(pn.to_string())
                .or_default()
                .push(name.to_string());
        }
        chain.push(Scope::new(ScopeKind::Site, &p.site));
        sites
            .entry(p.site.clone())
            .or_default()
            .push(name.to_string());
        out.push(ScopeDef {
            scope: chain[0].clone(),
            chain,
            queues: vec![name.to_string()],
            tz: p.tz,
            team,
            agent: None,
        });
    }
    for (t, (site, queues)) in teams {
        let mut chain = vec![Scope::new(ScopeKind::Team, &t)];
        if let Some(pn) = s.partner_of(Some(&t), &site) {
            chain.push(Scope::new(ScopeKind::Partner, pn));
        }
        chain.push(Scope::new(ScopeKind::Site, &site));
        out.push(ScopeDef {
            scope: chain[0].clone(),
            chain,
            queues,
            tz: s.site_tz(&site),
            team: Some(t),
            agent: None,
        });
    }
    for (site, queues) in sites {
        let mut chain = vec![Scope::new(ScopeKind::Site, &site)];
        if let Some(pn) = s.partner_of(None, &site) {
            chain.push(Scope::new(ScopeKind::Partner, pn));
        }
        out.push(ScopeDef {
            scope: chain[0].clone(),
            chain,
            queues,
            tz: s.site_tz(&site),
            team: None,
            agent: None,
        });
    }
    // The desk's own queues, side by side with the partners'.
    if !partners.is_empty() {
        let own: Vec<String> = out
            .iter()
            .filter(|d| d.scope.kind == ScopeKind::Queue)
            .filter(|d| !d.chain.iter().any(|c| c.kind == ScopeKind::Partner))
            .flat_map(|d| d.queues.clone())
            .collect();
        partners.insert(IN_HOUSE.to_string(), own);
    }
    for (p, queues) in partners {
        out.push(ScopeDef {
            scope: Scope::new(ScopeKind::Partner, &p),
            chain: vec![Scope::new(ScopeKind::Partner, &p)],
            queues,
            tz: s.site_tz(&s.default_site),
            team: None,
            agent: None,
        });
    }
    if s.agent_ledger {
        agent_scopes(engine, &mut out);
    }
    out
}

/// One scope per known agent, below its team (or, without a team, its
/// site): its guardrail judges that scope's queues.
fn agent_scopes(engine: &Engine, out: &mut Vec<ScopeDef>) {
    let mut ids: Vec<&str> = engine.agents.keys().map(|k| k.as_str()).collect();
    ids.sort_unstable();
    let index: std::collections::HashMap<&Scope, &ScopeDef> =
        out.iter().map(|d| (&d.scope, d)).collect();
    let mut agents = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(a) = engine.agents.get(id) else {
            continue;
        };
        let parent = if a.team.as_str() == crate::engine::NO_TEAM {
            Scope::new(ScopeKind::Site, &a.site)
        } else {
            Scope::new(ScopeKind::Team, &a.team)
        };
        let Some(p) = index.get(&parent) else {
            continue;
        };
        let mut chain = vec![Scope::new(ScopeKind::Agent, id)];
        chain.extend(p.chain.iter().cloned());
        agents.push(ScopeDef {
            scope: chain[0].clone(),
            chain,
            queues: p.queues.clone(),
            tz: a.tz,
            team: p.team.clone(),
            agent: Some(id.to_string()),
        });
    }
    out.extend(agents);
}

pub use crate::engine::window::period_bounds as bounds;

/// The contact and sales sums of a tally.
fn tally_inputs(t: &DayTally) -> Inputs {
    Inputs {
        contacts: t.contacts,
        converted: t.converted,
        wrapped: t.wrapped,
        talk_ms: t.talk_ms,
        hold_ms: t.hold_ms,
        wrap_ms: t.wrap_ms,
        sales: t.sales,
        revenue: t.revenue.units(),
        incremental: t.incremental.units(),
        cancelled: t.cancelled,
        ..Inputs::default()
    }
}

/// The sums of one slot into `i` (task figures only for `kind`).
fn add(i: &mut Inputs, d: &mut Durations, slot: &Slot, kind: Option<u8>) {
    let c = &slot.counts;
    let mut x = Inputs {
        offered: c.offered,
        answered: c.answered,
        answered_in_sl: c.answered_in_sl,
        abandoned: c.abandoned,
        abandoned_short: c.abandoned_short,
        exited: c.exited,
        refused: c.refused,
        wait_ms: slot.wait_ms,
        max_wait_ms: slot.max_wait_ms,
        qa: slot.qa,
        coach: slot.coach,
        ..tally_inputs(&slot.tally)
    };
    if let Some(k) = kind {
        for ts in slot.tasks.iter().filter(|ts| ts.kind == k) {
            x.task.met += ts.met;
            x.task.missed += ts.missed;
            for (a, b) in d.iter_mut().zip(ts.durations.iter()) {
                *a += b;
            }
        }
    }
    *i += &x;
}

fn finish(i: &mut Inputs, d: &Durations) {
    i.task.p50_s = ledger::quantile(d, 0.5);
    i.task.p90_s = ledger::quantile(d, 0.9);
}

fn kind_index(engine: &Engine, kind: Option<&str>) -> Option<u8> {
    let k = kind?;
    engine
        .kinds
        .iter()
        .position(|n| n.as_str() == k)
        .map(|p| p as u8)
}

fn queues<'a>(engine: &'a Engine, names: &'a [String]) -> impl Iterator<Item = &'a Queue> + 'a {
    names.iter().filter_map(|n| engine.queues.get(n.as_str()))
}

/// Values "now" for the scope: from the snapshot, for the goal's kind.
fn now_of(snap: &Snapshot, names: &[String], kind: Option<&str>) -> Now {
    let mut n = Now::default();
    for q in snap.queues.iter().filter(|q| names.contains(&q.name)) {
        n.waiting += q.waiting;
        n.oldest_wait_s = n.oldest_wait_s.max(q.oldest_wait_s);
    }
    if let Some(k) = kind {
        for b in snap
            .backlog
            .iter()
            .filter(|b| b.kind == k && names.contains(&b.queue))
        {
            n.open += b.open;
            n.overdue += b.overdue;
        }
    }
    n
}

/// Per interval of `[from, to)`: its start and the scope's sums.
fn intervals(
    engine: &Engine,
    names: &[String],
    from: i64,
    to: i64,
    kind: Option<u8>,
) -> BTreeMap<i64, (Inputs, Durations)> {
    let mut out: BTreeMap<i64, (Inputs, Durations)> = BTreeMap::new();
    for q in queues(engine, names) {
        for (start, slot) in q.ledger.range(from, to) {
            let e = out.entry(start).or_default();
            add(&mut e.0, &mut e.1, slot, kind);
        }
    }
    out
}

/// Per interval of `[from, to)`: the scope's own sums (an agent's from
/// its own ledger, where only contacts and sales are kept).
fn own_intervals(
    engine: &Engine,
    def: &ScopeDef,
    from: i64,
    to: i64,
    kind: Option<u8>,
) -> BTreeMap<i64, (Inputs, Durations)> {
    match def.agent.as_deref().map(|id| engine.agents.get(id)) {
        None => intervals(engine, &def.queues, from, to, kind),
        Some(None) => BTreeMap::new(),
        Some(Some(a)) => a
            .ledger
            .range(from, to)
            .map(|(start, t)| (start, (tally_inputs(t), [0; 13])))
            .collect(),
    }
}

/// The guardrail's verdict on one interval: `None` when it holds, else
/// the failing goals with their values.
fn interval_fails(
    primary: &[(&Goal, Thresholds, f64, Option<u8>)],
    per_kind: &BTreeMap<Option<u8>, BTreeMap<i64, (Inputs, Durations)>>,
    start: i64,
    mode: GuardrailMode,
    min_score: f64,
) -> Option<Vec<(usize, f64)>> {
    let mut failing = Vec::new();
    let (mut pts, mut wsum) = (0.0, 0.0);
    for (idx, (g, th, w, kind)) in primary.iter().enumerate() {
        let Some((mut i, d)) = per_kind.get(kind).and_then(|m| m.get(&start)).copied() else {
            continue;
        };
        finish(&mut i, &d);
        let v = (g.kpi.compute)(&i, params(g)).value;
        let Some(v) = v else { continue };
        pts += w * th.attainment(v, g.kpi.better);
        wsum += w;
        if th.judge(Some(v), g.kpi.better) == Status::Critical {
            failing.push((idx, v));
        }
    }
    let fails = match mode {
        GuardrailMode::EveryPrimary => !failing.is_empty(),
        GuardrailMode::PrimaryScore => wsum > 0.0 && pts / wsum < min_score,
    };
    fails.then_some(failing)
}

fn params(g: &Goal) -> Params {
    Params {
        abandons: g.abandons,
        exits: g.exits,
    }
}

fn local_hm(ms: i64, tz: Tz) -> String {
    tz.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%H:%M").to_string())
        .unwrap_or_default()
}

/// The guardrail over `[from, to)`: which intervals fail, and the sales
/// sums of the intervals that earn credit.
struct Verdict {
    view: GuardrailView,
    /// Sales sums of the credited intervals.
    credited: Inputs,
}

#[allow(clippy::too_many_arguments)]
fn guardrail(
    engine: &Engine,
    def: &ScopeDef,
    m: &Matrix,
    primary: &[(&Goal, Thresholds, f64, Option<u8>)],
    from: i64,
    to: i64,
    period: Period,
) -> Verdict {
    let iv = engine.settings().default_interval_ms();
    let mut per_kind: BTreeMap<Option<u8>, BTreeMap<i64, (Inputs, Durations)>> = BTreeMap::new();
    for (_, _, _, kind) in primary {
        per_kind
            .entry(*kind)
            .or_insert_with(|| intervals(engine, &def.queues, from, to, *kind));
    }
    let all = own_intervals(engine, def, from, to, None);
    let mut view = GuardrailView {
        met: true,
        period: period.as_str(),
        ..GuardrailView::default()
    };
    let mut credited = Inputs::default();
    // Runs of consecutive failing intervals per goal, for the reasons.
    let mut runs: BTreeMap<usize, Vec<(i64, i64)>> = BTreeMap::new();
    let mut score_runs: Vec<(i64, i64)> = Vec::new();
    for (start, (i, _)) in &all {
        view.intervals += 1;
        match interval_fails(
            primary,
            &per_kind,
            *start,
            m.guardrail.mode,
            m.guardrail.min_score,
        ) {
            None => {
                credited.sales += i.sales;
                credited.revenue += i.revenue;
                credited.incremental += i.incremental;
                credited.converted += i.converted;
            }
            Some(failing) => {
                view.intervals_failed += 1;
                view.withheld_revenue += i.revenue;
                view.withheld_incremental += i.incremental;
                view.withheld_sales += i.sales;
                let end = start + iv;
                let extend = |r: &mut Vec<(i64, i64)>| match r.last_mut() {
                    Some(last) if last.1 == *start => last.1 = end,
                    _ => r.push((*start, end)),
                };
                if failing.is_empty() {
                    extend(&mut score_runs);
                }
                for (idx, _) in failing {
                    extend(runs.entry(idx).or_default());
                }
            }
        }
    }
    view.credited_revenue =
        all.values().map(|(i, _)| i.revenue).sum::<f64>() - view.withheld_revenue;
    for (idx, rs) in runs {
        let (g, th, _, kind) = &primary[idx];
        for (a, b) in rs {
            // The value over the whole run, not one interval's.
            let mut i = Inputs::default();
            let mut d: Durations = [0; 13];
            if let Some(map) = per_kind.get(kind) {
                for (_, (x, xd)) in map.range(a..b) {
                    i += x;
                    for (p, q) in d.iter_mut().zip(xd.iter()) {
                        *p += q;
                    }
                }
            }
            finish(&mut i, &d);
            let v = (g.kpi.compute)(&i, params(g)).value.unwrap_or(0.0);
            let word = match g.kpi.better {
                crate::kpi::Better::Higher => "below minimum",
                crate::kpi::Better::Lower => "worse than minimum",
            };
            view.reasons.push(format!(
                "{} {} {word} {} ({}–{})",
                g.id,
                round(v),
                th.minimum,
                local_hm(a, def.tz),
                local_hm(b, def.tz)
            ));
        }
    }
    for (a, b) in score_runs {
        view.reasons.push(format!(
            "primary score below {} ({}–{})",
            m.guardrail.min_score,
            local_hm(a, def.tz),
            local_hm(b, def.tz)
        ));
    }
    view.met = view.intervals_failed == 0;
    view.withheld_revenue = round_money(view.withheld_revenue);
    view.withheld_incremental = round_money(view.withheld_incremental);
    view.credited_revenue = round_money(view.credited_revenue);
    Verdict { view, credited }
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn round_money(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn card(
    engine: &Engine,
    snap: &Snapshot,
    m: &Matrix,
    def: &ScopeDef,
    now_ms: i64,
    period: Option<Period>,
) -> Scorecard {
    let iv = engine.settings().default_interval_ms();
    let resolve = |chain: &[Scope]| -> Vec<(&Goal, Thresholds, f64, Option<u8>)> {
        m.goals
            .iter()
            .filter(|g| g.kpi.scopes.contains(&chain[0].kind))
            .map(|g| {
                let (th, w) = g.for_chain(chain);
                (g, th, w, kind_index(engine, g.task_kind()))
            })
            .collect()
    };
    let resolved = resolve(&def.chain);
    // An agent's sales are credited when the primary goals of the team
    // (or site) it works in held: an agent has no service level.
    let guard_goals = match def.agent {
        Some(_) => resolve(&def.chain[1..]),
        None => resolved.clone(),
    };
    let primary: Vec<_> = guard_goals
        .iter()
        .filter(|r| r.0.category == Category::Primary)
        .copied()
        .collect();
    // Agents are kept for today only (docs/goals.md).
    let period = match def.agent {
        Some(_) => Some(Period::Today),
        None => period,
    };
    // The guardrail covers the sales goals' period (or the one asked for).
    let gperiod = period
        .or_else(|| {
            m.goals
                .iter()
                .find(|g| g.category == Category::Sales)
                .map(|g| g.period)
        })
        .unwrap_or(Period::Today);
    let mut verdicts: BTreeMap<&'static str, Verdict> = BTreeMap::new();
    let mut verdict_for = |p: Period| -> Inputs {
        let v = verdicts.entry(p.as_str()).or_insert_with(|| {
            let (from, to) = bounds(p, now_ms, def.tz, iv);
            guardrail(engine, def, m, &primary, from, to, p)
        });
        v.credited
    };
    let mut goals = Vec::new();
    let mut agent_day: Option<Inputs> = None;
    let (mut p_pts, mut p_w, mut s_pts, mut s_w) = (0.0, 0.0, 0.0, 0.0);
    for (g, th, w, kind) in &resolved {
        let p = period.unwrap_or(g.period);
        let (from, to) = bounds(p, now_ms, def.tz, iv);
        let mut i = Inputs::default();
        let mut d: Durations = [0; 13];
        match def.agent {
            None => {
                for q in queues(engine, &def.queues) {
                    for (_, slot) in q.ledger.range(from, to) {
                        add(&mut i, &mut d, slot, *kind);
                    }
                }
                i.now = Some(now_of(snap, &def.queues, g.task_kind()));
            }
            Some(_) => {
                // Every goal of an agent covers today: one sum serves all.
                let day = agent_day.get_or_insert_with(|| {
                    let mut t = Inputs::default();
                    for (x, _) in own_intervals(engine, def, from, to, None).values() {
                        t += x;
                    }
                    t
                });
                i += day;
                // Quality sums are not in the agent's day ledger.
                i.qa = Default::default();
                i.coach = Default::default();
                if let Some(a) = &def.agent {
                    if g.kpi.id == "qa_score" {
                        engine.qa_sums_of(a, from, to, &mut i.qa);
                    } else if g.kpi.events == ["contact_tagged"] {
                        engine.coach_sums_of(a, from, to, &mut i.coach);
                    }
                }
            }
        }
        finish(&mut i, &d);
        let measured: Measured = (g.kpi.compute)(&i, params(g));
        let mut scored = measured.value;
        let mut credited = None;
        if g.category == Category::Sales {
            let c = verdict_for(p);
            let mut ci = i;
            ci.sales = c.sales;
            ci.revenue = c.revenue;
            ci.incremental = c.incremental;
            ci.converted = c.converted;
            let cv = (g.kpi.compute)(&ci, params(g)).value;
            credited = cv.map(round_money_or_ratio(g));
            scored = cv;
        }
        let mut status = th.judge(measured.value, g.kpi.better);
        let mut points = scored.map(|v| w * th.attainment(v, g.kpi.better));
        let mut interval = None;
        if g.kpi.id == "qa_score" {
            let q = &engine.settings().quality;
            interval = crate::stats::MeanInterval::from_sums(
                i.qa.n,
                i.qa.sum as f64 / 100.0,
                i.qa.sum_sq as f64 / 10_000.0,
                q.confidence,
                0.0,
                100.0,
            );
            if interval.is_some_and(|m| !m.narrow_enough(q.max_interval_width)) {
                // Too uncertain to rank anyone on: shown, not scored.
                status = crate::goal::Status::NotEnoughData;
                points = None;
            }
        }
        if let Some(pt) = points {
            match g.category {
                Category::Primary => {
                    p_pts += pt;
                    p_w += w;
                }
                Category::Sales => {
                    s_pts += pt;
                    s_w += w;
                }
            }
        }
        goals.push(GoalCard {
            goal: g.id.clone(),
            title: match &g.kind {
                Some(k) => format!("{} ({})", g.kpi.title, k.replace('_', " ")),
                None => g.kpi.title.to_string(),
            },
            kpi: g.kpi.id,
            objective: g.objective.clone(),
            category: g.category,
            unit: g.kpi.unit,
            direction: g.kpi.better,
            period: p.as_str(),
            from: rfc3339(from),
            to: rfc3339(to),
            value: measured.value,
            numerator: measured.numerator,
            denominator: measured.denominator,
            target: th.target,
            warn: th.warn,
            minimum: th.minimum,
            weight: *w,
            status,
            points: points.map(|p| (p * 10_000.0).round() / 10_000.0),
            credited,
            interval,
        });
    }
    let guard = verdicts
        .remove(gperiod.as_str())
        .map(|v| v.view)
        .unwrap_or_else(|| {
            let (from, to) = bounds(gperiod, now_ms, def.tz, iv);
            guardrail(engine, def, m, &primary, from, to, gperiod).view
        });
    Scorecard {
        scope: def.scope.to_string(),
        kind: def.scope.kind,
        name: def.scope.name.clone(),
        agents: agents_of(snap, def),
        primary_score: (p_w > 0.0).then(|| round(p_pts / p_w)),
        sales_score: (s_w > 0.0).then(|| round(s_pts / s_w)),
        goals,
        guardrail: guard,
        withheld: Vec::new(),
    }
}

fn round_money_or_ratio(g: &Goal) -> impl Fn(f64) -> f64 {
    let money = g.kpi.unit == Unit::Money;
    move |v| if money { round_money(v) } else { v }
}

fn agents_of(snap: &Snapshot, def: &ScopeDef) -> u64 {
    use crate::event::AgentStatus;
    if def.agent.is_some() {
        return 1;
    }
    snap.agents
        .iter()
        .filter(|a| a.state != AgentStatus::Offline)
        .filter(|a| match (def.scope.kind, &def.team) {
            (ScopeKind::Team, Some(t)) => &a.team == t,
            _ => a.queues.iter().any(|q| def.queues.contains(q)),
        })
        .count() as u64
}

/// One goal across the scopes of one kind (`/api/v1/scorecards/compare`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Comparison {
    pub goal: String,
    pub kpi: &'static str,
    pub category: Category,
    pub unit: Unit,
    pub scopes: BTreeMap<String, Compared>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Compared {
    pub value: Option<f64>,
    pub target: f64,
    pub minimum: f64,
    pub status: Status,
    pub points: Option<f64>,
}

/// Every goal, side by side for the scorecards of `kind`.
pub fn compare(cards: &[Scorecard], kind: ScopeKind) -> Vec<Comparison> {
    let mut out: Vec<Comparison> = Vec::new();
    for c in cards.iter().filter(|c| c.kind == kind) {
        for g in &c.goals {
            let i = match out.iter().position(|x| x.goal == g.goal) {
                Some(i) => i,
                None => {
                    out.push(Comparison {
                        goal: g.goal.clone(),
                        kpi: g.kpi,
                        category: g.category,
                        unit: g.unit,
                        scopes: BTreeMap::new(),
                    });
                    out.len() - 1
                }
            };
            out[i].scopes.insert(
                c.name.clone(),
                Compared {
                    value: g.value,
                    target: g.target,
                    minimum: g.minimum,
                    status: g.status,
                    points: g.points,
                },
            );
        }
    }
    out
}
