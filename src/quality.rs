//! QA scores as read: per agent, team, partner and site over a period,
//! each a mean with its t interval (docs/quality.md). Built by the writer
//! into a view only when a reader asks (`Wanted::qa`): one pass over the
//! evaluations. What a role sees of it is `privacy::Policy::qa_scores`'s.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Period;
use crate::engine::qa::QaSums;
use crate::engine::Engine;
use crate::kpi::ScopeKind;
use crate::snapshot::rfc3339;
use crate::stats::MeanInterval;

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
    let mut by_customer: BTreeMap<&str, Vec<(&str, &crate::engine::qa::QaSale)>> = BTreeMap::new();
    for (id, x) in &sales {
        let c = by.entry(x.agent.to_string()).or_default();
        c.team = x.team.to_string();
        c.sales += 1;
        c.cancelled += x.cancelled as u64;
        c.downgrades += (x.kind == crate::event::SaleKind::Downgrade) as u64;
        let contact = x.contact.as_ref().and_then(|k| reg.get(k));
        match contact {
            Some(h) if h.agent != x.agent => per_sale(
                "no_own_contact",
                id,
                x,
                format!("the sale's contact was handled by {}", h.agent),
                BTreeMap::new(),
            ),
            None => per_sale(
                "no_own_contact",
                id,
                x,
                "no handled contact of the agent is linked to the sale".into(),
                BTreeMap::new(),
            ),
            Some(_) => {}
        }
        if let Some(talk) = contact.and_then(|h| h.talk_ms) {
            if talk < q.short_contact_ms {
                per_sale(
                    "short_contact",
                    id,
                    x,
                    format!(
                        "talk time below quality.short_contact ({} s)",
                        q.short_contact_ms / 1000
                    ),
                    BTreeMap::from([("talk_s", talk as f64 / 1000.0)]),
                );
            }
        }
        if x.outside_login {
            per_sale(
                "outside_login",
                id,
                x,
                "the agent was not logged in when the sale was booked".into(),
                BTreeMap::new(),
            );
        }
        if !x.cancelled {
            if let Some(cust) = contact.and_then(|h| h.customer.as_deref()) {
                by_customer.entry(cust).or_default().push((id, x));
            }
        }
    }
    // Repeated sales to one customer within the window (the customer is
    // never named in the signal: only the sales are).
    for list in by_customer.values() {
        for w in list.windows(2) {
            let (a, b) = (w[0], w[1]);
            if b.1.ts_ms - a.1.ts_ms <= q.repeat_window_ms {
                out.push(Signal {
                    signal: "repeat_customer",
                    agent: b.1.agent.to_string(),
                    team: b.1.team.to_string(),
                    numbers: BTreeMap::from([(
                        "days_apart",
                        round((b.1.ts_ms - a.1.ts_ms) as f64 / 86_400_000.0),
                    )]),
                    test: format!(
                        "two sales to one customer within quality.repeat_window ({} days)",
                        q.repeat_window_ms / 86_400_000
                    ),
                    items: vec![a.0.to_string(), b.0.to_string()],
                });
            }
        }
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
    let zq = z(q.significance);
    for (agent, c) in &by {
        let Some(t) = teams.get(c.team.as_str()) else {
            continue;
        };
        // Cancellations: the agent against the team's other agents.
        let (rn, rk) = (t.sales - c.sales, t.cancelled - c.cancelled);
        let p0 = (rk as f64 + 0.5) / (rn as f64 + 1.0);
        let pv = binomial_upper(c.cancelled, c.sales, p0);
        if c.cancelled > 0 && pv < q.significance {
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
                ]),
                test: format!(
                    "one-sided exact binomial test, P(X >= {}) for X ~ Bin({}, {:.4}), the reference rate (cancelled + 0.5) / (sales + 1) of the team's other agents; flagged below {}",
                    c.cancelled, c.sales, p0, q.significance
                ),
                items: Vec::new(),
            });
        }
        // Funnel plots: a share far from the team's, with limits that
        // widen as the agent's volume shrinks.
        for (signal, x, n, tx, tn) in [
            (
                "conversion",
                c.converted,
                c.contacts,
                t.converted,
                t.contacts,
            ),
            ("downgrades", c.downgrades, c.sales, t.downgrades, t.sales),
        ] {
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
                        "funnel plot: team rate ± {zq:.2} · sqrt(p(1 − p)/n), two-sided at {}",
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
