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
