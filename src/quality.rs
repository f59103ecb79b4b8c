//! QA scores as read: per agent, team, partner and site over a period,
//! each a mean with its t interval (docs/quality.md). Built by the writer
//! into a view only when a reader asks (`Wanted::qa`): one pass over the
//! evaluations. What a role sees of it is `privacy::Policy::qa_scores`'s.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Period;
use crate::engine::qa::{QaSums, SaleFlag};
use crate::engine::Engine;
use crate::kpi::ScopeKind;
use crate::snapshot::rfc3339;
use crate::stats::MeanInterval;

/// The parts of quality management's read side a reader asks the writer
/// for (`Wanted::qa_parts`): each is a pass over QA state, so a view
/// carries only the parts asked.
pub mod part {
    pub const SCORES: u8 = 1;
    pub const SIGNALS: u8 = 2;
    pub const SAMPLES: u8 = 4;
    pub const COACHING: u8 = 8;
}

/// A row of quality management's outputs, and the team it belongs to
/// (`None`: a site or partner row), for the privacy policy's `qa_teams`.
pub trait TeamRow {
    fn team(&self) -> Option<&str>;
}

impl TeamRow for QaScore {
    fn team(&self) -> Option<&str> {
        match self.kind {
            ScopeKind::Agent => self.team.as_deref(),
            ScopeKind::Team => Some(&self.name),
            _ => None,
        }
    }
}

impl TeamRow for Signal {
    fn team(&self) -> Option<&str> {
        Some(&self.team)
    }
}

impl TeamRow for AgentSample {
    fn team(&self) -> Option<&str> {
        Some(&self.team)
    }
}

impl TeamRow for CoachRow {
    fn team(&self) -> Option<&str> {
        Some(self.team.as_deref().unwrap_or(&self.name))
    }
}

/// One scope's QA score.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QaScore {
    pub scope: String,
    pub kind: ScopeKind,
    pub name: String,
    /// An agent's team (agents only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(flatten)]
    pub score: MeanInterval,
    /// "87 ± 6 (n = 9)".
    pub display: String,
    /// False when the interval is wider than `quality.max_interval_width`:
    /// "not enough evaluations" to rank on.
    pub enough: bool,
}

/// Every scope's QA score over one period.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QaScores {
    pub period: &'static str,
    pub from: String,
    pub to: String,
    pub confidence: f64,
    pub max_interval_width: f64,
    pub scores: Vec<QaScore>,
}

/// The QA scores of `engine` over `period` (local to the default site).
pub fn build(engine: &Engine, now_ms: i64, period: Period) -> QaScores {
    let s = engine.settings();
    let tz = s.site_tz(&s.default_site);
    let (from, to) = crate::scorecard::bounds(period, now_ms, tz, s.default_interval_ms());
    let mut sums: BTreeMap<(ScopeKind, String), (QaSums, Option<String>)> = BTreeMap::new();
    for e in engine
        .quality
        .evaluations
        .values()
        .filter(|e| (from..to).contains(&e.ts_ms))
    {
        let site = engine
            .teams
            .get(&e.team)
            .map(|t| t.site.to_string())
            .unwrap_or_else(|| s.default_site.clone());
        let partner = s
            .partner_of(Some(e.team.as_str()), &site)
            .map(str::to_string);
        let mut book = |k: ScopeKind, name: String, team: Option<String>| {
            sums.entry((k, name))
                .or_insert_with(|| (QaSums::default(), team))
                .0
                .add(e.score_centi, 1);
        };
        book(
            ScopeKind::Agent,
            e.agent.to_string(),
            Some(e.team.to_string()),
        );
        book(ScopeKind::Team, e.team.to_string(), None);
        book(ScopeKind::Site, site, None);
        if let Some(p) = partner {
            book(ScopeKind::Partner, p, None);
        }
    }
    let q = &s.quality;
    let scores = sums
        .into_iter()
        .filter_map(|((kind, name), (sum, team))| {
            let m = MeanInterval::from_sums(
                sum.n,
                sum.sum as f64 / 100.0,
                sum.sum_sq as f64 / 10_000.0,
                q.confidence,
                0.0,
                100.0,
            )?;
            Some(QaScore {
                scope: format!("{}:{name}", kind.as_str()),
                kind,
                name,
                team,
                display: m.display(),
                enough: m.narrow_enough(q.max_interval_width),
                score: m,
            })
        })
        .collect();
    QaScores {
        period: period.as_str(),
        from: rfc3339(from),
        to: rfc3339(to),
        confidence: q.confidence,
        max_interval_width: q.max_interval_width,
        scores,
    }
}

/// One integrity signal: what it is about, the numbers behind it and the
/// test used, so a person can judge it (docs/quality.md).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Signal {
    /// `cancellations`, `conversion`, `downgrades`, `short_contact`,
    /// `no_own_contact`, `outside_login`, `repeat_customer`.
    pub signal: &'static str,
    pub agent: String,
    pub team: String,
    /// The numbers: counts, rates, reference, bounds, p-value.
    pub numbers: BTreeMap<&'static str, f64>,
    /// The test, in words.
    pub test: String,
    /// The sales or contacts it points at.
    pub items: Vec<String>,
}

/// Every signal over one period.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Signals {
    pub period: &'static str,
    pub from: String,
    pub to: String,
    pub significance: f64,
    pub signals: Vec<Signal>,
}

/// P(X ≥ k) for X ~ Binomial(n, p): the one-sided exact test.
pub fn binomial_upper(k: u64, n: u64, p: f64) -> f64 {
    use statrs::distribution::{Binomial, DiscreteCDF};
    if k == 0 {
        return 1.0;
    }
    Binomial::new(p.clamp(0.0, 1.0), n).map_or(1.0, |b| b.sf(k - 1))
}

/// The two-sided normal quantile of `alpha`.
fn z(alpha: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    Normal::new(0.0, 1.0).map_or(2.576, |d| d.inverse_cdf(1.0 - alpha / 2.0))
}

#[derive(Default)]
struct Counts {
    team: String,
    sales: u64,
    cancelled: u64,
    downgrades: u64,
    contacts: u64,
    converted: u64,
}

fn round(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// The integrity signals of `engine` over `period`.
pub fn signals(engine: &Engine, now_ms: i64, period: Period) -> Signals {
    let s = engine.settings();
    let q = &s.quality;
    let tz = s.site_tz(&s.default_site);
    let (from, to) = crate::scorecard::bounds(period, now_ms, tz, s.default_interval_ms());
    let within = |t: i64| (from..to).contains(&t);
    let reg = &engine.quality.register;
    let mut by: BTreeMap<String, Counts> = BTreeMap::new();
    let mut out = Vec::new();
    let mut sales: Vec<(&str, &crate::engine::qa::QaSale)> = engine
        .quality
        .sales
        .iter()
        .filter(|(_, x)| within(x.ts_ms))
        .map(|(id, x)| (id.as_str(), x))
        .collect();
    sales.sort_by(|a, b| (a.1.ts_ms, a.0).cmp(&(b.1.ts_ms, b.0)));
    let mut per_sale = |signal: &'static str,
                        id: &str,
                        x: &crate::engine::qa::QaSale,
                        test: String,
                        numbers: BTreeMap<&'static str, f64>| {
        out.push(Signal {
            signal,
            agent: x.agent.to_string(),
            team: x.team.to_string(),
            numbers,
            test,
            items: vec![id.to_string()],
        });
    };
    for (id, x) in &sales {
        let c = by.entry(x.agent.to_string()).or_default();
        c.team = x.team.to_string();
        c.sales += 1;
        c.cancelled += x.cancelled as u64;
        c.downgrades += (x.kind == crate::event::SaleKind::Downgrade) as u64;
        for f in engine.sale_flags(x) {
            let (test, numbers) = match &f {
                SaleFlag::Foreign(Some(h)) => (
                    format!("the sale's contact was handled by {h}"),
                    BTreeMap::new(),
                ),
                SaleFlag::Foreign(None) => (
                    "no handled contact of the agent is linked to the sale".into(),
                    BTreeMap::new(),
                ),
                SaleFlag::Short(talk) => (
                    format!(
                        "talk time below quality.short_contact ({} s)",
                        q.short_contact_ms / 1000
                    ),
                    BTreeMap::from([("talk_s", *talk as f64 / 1000.0)]),
                ),
                SaleFlag::OutsideLogin => (
                    "the agent was not logged in when the sale was booked".into(),
                    BTreeMap::new(),
                ),
            };
            per_sale(f.signal(), id, x, test, numbers);
        }
    }
    // Repeated sales to one customer within the window (the customer is
    // never named in the signal: only the sales are).
    for (a, b) in engine.repeat_pairs(&sales) {
        let (xa, xb) = (&engine.quality.sales[a], &engine.quality.sales[b]);
        out.push(Signal {
            signal: "repeat_customer",
            agent: xb.agent.to_string(),
            team: xb.team.to_string(),
            numbers: BTreeMap::from([(
                "days_apart",
                round((xb.ts_ms - xa.ts_ms) as f64 / 86_400_000.0),
            )]),
            test: format!(
                "two sales to one customer within quality.repeat_window ({} days)",
                q.repeat_window_ms / 86_400_000
            ),
            items: vec![a.to_string(), b.to_string()],
        });
    }
    for h in reg.values().filter(|h| within(h.handled_ms)) {
        let c = by.entry(h.agent.to_string()).or_default();
        if c.team.is_empty() {
            c.team = engine
                .agents
                .get(&h.agent)
                .map(|a| a.team.to_string())
                .unwrap_or_else(|| crate::engine::NO_TEAM.into());
        }
        c.contacts += 1;
        c.converted += (h.live_sales > 0) as u64;
    }
    let mut teams: BTreeMap<&str, Counts> = BTreeMap::new();
    for c in by.values() {
        let t = teams.entry(c.team.as_str()).or_default();
        t.sales += c.sales;
        t.cancelled += c.cancelled;
        t.downgrades += c.downgrades;
        t.contacts += c.contacts;
        t.converted += c.converted;
    }
    // Many agents are tested at once: at 0.01 one in a hundred would be
    // flagged by chance, so each test runs at significance / m
    // (Bonferroni), m the agents tested in the period.
    let m_sales = by.values().filter(|c| c.sales > 0).count().max(1) as f64;
    let m_contacts = by.values().filter(|c| c.contacts > 0).count().max(1) as f64;
    let alpha_sales = q.significance / m_sales;
    for (agent, c) in &by {
        let Some(t) = teams.get(c.team.as_str()) else {
            continue;
        };
        // Cancellations: the agent against the team's other agents.
        let (rn, rk) = (t.sales - c.sales, t.cancelled - c.cancelled);
        let p0 = (rk as f64 + 0.5) / (rn as f64 + 1.0);
        let pv = binomial_upper(c.cancelled, c.sales, p0);
        if c.cancelled > 0 && pv < alpha_sales {
            out.push(Signal {
                signal: "cancellations",
                agent: agent.clone(),
                team: c.team.clone(),
                numbers: BTreeMap::from([
                    ("sales", c.sales as f64),
                    ("cancelled", c.cancelled as f64),
                    ("rate", round(c.cancelled as f64 / c.sales as f64)),
                    ("team_sales", rn as f64),
                    ("team_cancelled", rk as f64),
                    ("reference_rate", round(p0)),
                    ("p_value", pv),
                    ("agents_tested", m_sales),
                    ("threshold", alpha_sales),
                ]),
                test: format!(
                    "one-sided exact binomial test, P(X >= {}) for X ~ Bin({}, {:.4}), the reference rate (cancelled + 0.5) / (sales + 1) of the team's other agents; flagged below {} / {} agents tested (Bonferroni)",
                    c.cancelled, c.sales, p0, q.significance, m_sales
                ),
                items: Vec::new(),
            });
        }
        // Funnel plots: a share far from the team's, with limits that
        // widen as the agent's volume shrinks.
        for (signal, x, n, tx, tn, m) in [
            (
                "conversion",
                c.converted,
                c.contacts,
                t.converted,
                t.contacts,
                m_contacts,
            ),
            (
                "downgrades",
                c.downgrades,
                c.sales,
                t.downgrades,
                t.sales,
                m_sales,
            ),
        ] {
            let zq = z(q.significance / m);
            if n == 0 || tn == 0 {
                continue;
            }
            let p = tx as f64 / tn as f64;
            let sd = (p * (1.0 - p) / n as f64).sqrt();
            let (lo, hi) = ((p - zq * sd).max(0.0), (p + zq * sd).min(1.0));
            let r = x as f64 / n as f64;
            if sd > 0.0 && (r < lo || r > hi) {
                out.push(Signal {
                    signal,
                    agent: agent.clone(),
                    team: c.team.clone(),
                    numbers: BTreeMap::from([
                        ("count", x as f64),
                        ("of", n as f64),
                        ("rate", round(r)),
                        ("team_rate", round(p)),
                        ("lower", round(lo)),
                        ("upper", round(hi)),
                    ]),
                    test: format!(
                        "funnel plot: team rate ± {zq:.2} · sqrt(p(1 − p)/n), two-sided at {} / {m} agents tested (Bonferroni)",
                        q.significance
                    ),
                    items: Vec::new(),
                });
            }
        }
    }
    out.sort_by(|a, b| {
        (a.signal, &a.team, &a.agent, &a.items).cmp(&(b.signal, &b.team, &b.agent, &b.items))
    });
    Signals {
        period: period.as_str(),
        from: rfc3339(from),
        to: rfc3339(to),
        significance: q.significance,
        signals: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exact_binomial_tail() {
        // P(X >= 1), X ~ Bin(2, 0.05) = 1 - 0.95^2.
        assert!((binomial_upper(1, 2, 0.05) - (1.0 - 0.95f64.powi(2))).abs() < 1e-12);
        // P(X >= 12), X ~ Bin(20, 0.05): tiny.
        assert!(binomial_upper(12, 20, 0.05) < 1e-9);
        assert_eq!(binomial_upper(0, 20, 0.05), 1.0);
    }
}

/// One drawn contact of the QA sample.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SampledContact {
    /// `call:ID` or `task:ID`.
    pub contact: String,
    pub stratum: String,
    pub handled: String,
    pub drawn: String,
    /// `random`, or the integrity signal that put it in the sample.
    pub reason: String,
    /// `open`, `evaluated` or `overdue` (`quality.sample.evaluate_within`).
    pub status: &'static str,
}

/// A stratum of an agent's sample.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stratum {
    pub stratum: String,
    /// Eligible contacts (at least `min_duration`) in the period.
    pub population: u64,
    /// Drawn at random.
    pub drawn: u64,
}

/// One agent's sample of the period.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AgentSample {
    pub agent: String,
    pub team: String,
    pub population: u64,
    /// The period's sample size for this population (docs/quality.md).
    pub size: u64,
    pub strata: Vec<Stratum>,
    pub contacts: Vec<SampledContact>,
}

/// Sample counts of a team, for `/metrics`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TeamSample {
    pub team: String,
    pub sampled: u64,
    pub evaluated: u64,
    pub open: u64,
    pub overdue: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Samples {
    pub period: &'static str,
    pub from: String,
    pub to: String,
    /// Drawing needs `quality.sample.secret`.
    pub drawing: bool,
    pub agents: Vec<AgentSample>,
}

fn status(d: &crate::engine::qa::Drawn, now_ms: i64, within_ms: i64) -> &'static str {
    match d.evaluated_ms {
        Some(_) => "evaluated",
        None if now_ms.saturating_sub(d.drawn_ms) > within_ms => "overdue",
        None => "open",
    }
}

/// Sample counts per team of the current sample period (every view).
pub fn team_samples(engine: &Engine, now_ms: i64) -> Vec<TeamSample> {
    let s = engine.settings();
    let within = s.quality.sample.evaluate_within.as_millis() as i64;
    let mut by: BTreeMap<&str, TeamSample> = BTreeMap::new();
    for d in engine.quality.drawn.values() {
        let t = by.entry(d.team.as_str()).or_insert_with(|| TeamSample {
            team: d.team.to_string(),
            ..TeamSample::default()
        });
        t.sampled += 1;
        match status(d, now_ms, within) {
            "evaluated" => t.evaluated += 1,
            "overdue" => t.overdue += 1,
            _ => t.open += 1,
        }
    }
    by.into_values().collect()
}

/// The QA sample of the current period (or the one before), per agent.
pub fn samples(engine: &Engine, now_ms: i64, previous: bool) -> Samples {
    use crate::engine::sample::{size, stratum};
    let s = engine.settings();
    let q = &s.quality;
    let sm = &q.sample;
    let tz = s.site_tz(&s.default_site);
    let iv = s.default_interval_ms();
    let (mut from, mut to) = crate::scorecard::bounds(sm.period, now_ms, tz, iv);
    if previous {
        (from, to) = crate::scorecard::bounds(sm.period, from - 1, tz, iv);
    }
    let min_ms = sm.min_duration.as_millis() as i64;
    let within = sm.evaluate_within.as_millis() as i64;
    let mut agents: BTreeMap<&str, AgentSample> = BTreeMap::new();
    let mut pops: BTreeMap<(&str, String), (u64, u64)> = BTreeMap::new();
    for (c, h) in &engine.quality.register {
        if !(from..to).contains(&h.handled_ms) || h.talk_ms.is_some_and(|t| t < min_ms) {
            continue;
        }
        let st = stratum(&h.kind, h.live_sales > 0);
        let random = engine
            .quality
            .drawn
            .get(c)
            .is_some_and(|d| d.reason == "random" && d.period_ms == from);
        let e = pops.entry((h.agent.as_str(), st)).or_default();
        e.0 += 1;
        e.1 += random as u64;
        agents
            .entry(h.agent.as_str())
            .or_insert_with(|| AgentSample {
                agent: h.agent.to_string(),
                team: engine.team_of(&h.agent).to_string(),
                population: 0,
                size: 0,
                strata: Vec::new(),
                contacts: Vec::new(),
            });
    }
    for ((agent, st), (population, drawn)) in pops {
        if let Some(a) = agents.get_mut(agent) {
            a.population += population;
            a.strata.push(Stratum {
                stratum: st,
                population,
                drawn,
            });
        }
    }
    let mut drawn: Vec<(&crate::event::ContactRef, &crate::engine::qa::Drawn)> = engine
        .quality
        .drawn
        .iter()
        .filter(|(_, d)| d.period_ms == from)
        .collect();
    drawn.sort_by(|a, b| (a.1.drawn_ms, a.0).cmp(&(b.1.drawn_ms, b.0)));
    for (c, d) in drawn {
        let a = agents
            .entry(d.agent.as_str())
            .or_insert_with(|| AgentSample {
                agent: d.agent.to_string(),
                team: d.team.to_string(),
                population: 0,
                size: 0,
                strata: Vec::new(),
                contacts: Vec::new(),
            });
        let handled = engine.quality.register.get(c).map_or(0, |h| h.handled_ms);
        a.contacts.push(SampledContact {
            contact: format!("{}:{}", c.kind(), c.id()),
            stratum: d.stratum.to_string(),
            handled: rfc3339(handled),
            drawn: rfc3339(d.drawn_ms),
            reason: d.reason.to_string(),
            status: status(d, now_ms, within),
        });
    }
    let mut out: Vec<AgentSample> = agents.into_values().collect();
    for a in &mut out {
        a.size = size(
            a.population,
            sm.min_per_agent,
            sm.margin,
            sm.assumed_sd,
            q.confidence,
        );
    }
    Samples {
        period: sm.period.as_str(),
        from: rfc3339(from),
        to: rfc3339(to),
        drawing: sm.secret.is_some() && q.enabled,
        agents: out,
    }
}

/// Coaching figures of one agent or team (docs/quality.md).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CoachRow {
    pub scope: String,
    pub kind: ScopeKind,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    pub tagged_contacts: u64,
    pub buying_signals: u64,
    pub buying_signals_converted: u64,
    pub buying_signal_conversion: Option<f64>,
    pub missed_opportunities: u64,
    pub offers_made: u64,
    pub offers_sold: u64,
    pub offer_conversion: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Coaching {
    pub period: &'static str,
    pub from: String,
    pub to: String,
    pub rows: Vec<CoachRow>,
}

/// Coaching figures per agent and team over `period` (contacts by when
/// they were handled).
pub fn coaching(engine: &Engine, now_ms: i64, period: Period) -> Coaching {
    use crate::engine::qa::CoachSums;
    let s = engine.settings();
    let tz = s.site_tz(&s.default_site);
    let (from, to) = crate::scorecard::bounds(period, now_ms, tz, s.default_interval_ms());
    let mut sums: BTreeMap<(ScopeKind, String), (CoachSums, u64, Option<String>)> = BTreeMap::new();
    for (c, t) in &engine.quality.tags {
        let Some(h) = engine.quality.register.get(c) else {
            continue;
        };
        if !(from..to).contains(&h.handled_ms) {
            continue;
        }
        let x = CoachSums::of(t.tags, h.live_sales > 0);
        for (k, name, team) in [
            (
                ScopeKind::Agent,
                t.agent.to_string(),
                Some(t.team.to_string()),
            ),
            (ScopeKind::Team, t.team.to_string(), None),
        ] {
            let e = sums
                .entry((k, name))
                .or_insert((CoachSums::default(), 0, team));
            e.0.add(&x, 1);
            e.1 += 1;
        }
    }
    let share = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
    let rows = sums
        .into_iter()
        .map(|((kind, name), (x, n, team))| CoachRow {
            scope: format!("{}:{name}", kind.as_str()),
            kind,
            name,
            team,
            tagged_contacts: n,
            buying_signals: x.signals,
            buying_signals_converted: x.signals_sold,
            buying_signal_conversion: share(x.signals_sold, x.signals),
            missed_opportunities: x.missed,
            offers_made: x.offers,
            offers_sold: x.offers_sold,
            offer_conversion: share(x.offers_sold, x.offers),
        })
        .collect();
    Coaching {
        period: period.as_str(),
        from: rfc3339(from),
        to: rfc3339(to),
        rows,
    }
}
