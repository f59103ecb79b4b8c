//! The goal matrix, resolved: every goal with its KPI, and its thresholds
//! and weight for any scope.
//!
//! Built once from the configuration (`[goals]`, or the deprecated
//! `[targets]` tables mapped onto it) and shared by everything that
//! judges a number against a goal: the snapshot's statuses, the
//! scorecards and the guardrail, the feed's tiles, the generated rules
//! and dashboards and the goal sheet. Judging and attainment points are
//! defined here and nowhere else.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::config::goals::{GuardrailConfig, GuardrailMode};
use crate::config::{Category, Config, GoalConfig, Period, Severity, Target};
use crate::kpi::{self, Abandons, Better, Exits, ScopeKind};

/// A scope a goal can be overridden for and a scorecard drawn up for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Scope {
    pub kind: ScopeKind,
    pub name: String,
}

impl Scope {
    pub fn new(kind: ScopeKind, name: &str) -> Scope {
        Scope {
            kind,
            name: name.to_string(),
        }
    }

    /// `kind:name`, e.g. `team:sales`.
    pub fn parse(s: &str) -> Option<Scope> {
        let (k, n) = s.split_once(':')?;
        Some(Scope::new(ScopeKind::parse(k)?, n))
    }

    /// `kind:name` of a scorecard: an override scope or `agent:ID`.
    pub fn parse_card(s: &str) -> Option<Scope> {
        let (k, n) = s.split_once(':')?;
        Some(Scope::new(ScopeKind::parse_card(k)?, n))
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    pub target: f64,
    pub warn: f64,
    pub minimum: f64,
}

#[derive(Debug, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Warn,
    Critical,
    /// No value yet (nothing happened to measure).
    NoData,
    /// A value too uncertain to judge: a QA score whose interval is wider
    /// than `quality.max_interval_width` (docs/quality.md).
    NotEnoughData,
}

impl Status {
    pub fn level(self) -> Option<u8> {
        match self {
            Status::Ok => Some(0),
            Status::Warn => Some(1),
            Status::Critical => Some(2),
            Status::NoData | Status::NotEnoughData => None,
        }
    }
}

impl Thresholds {
    /// Warn when worse than `warn`, critical when worse than `minimum`;
    /// equal is not worse.
    pub fn judge(&self, value: Option<f64>, better: Better) -> Status {
        let worse = |v: f64, t: f64| match better {
            Better::Higher => v < t,
            Better::Lower => v > t,
        };
        match value {
            None => Status::NoData,
            Some(v) if worse(v, self.minimum) => Status::Critical,
            Some(v) if worse(v, self.warn) => Status::Warn,
            Some(_) => Status::Ok,
        }
    }

    /// Attainment as a share of the goal's weight: 0 at (or beyond) the
    /// minimum, 1 at (or beyond) the target, linear in between.
    /// With target = minimum it is all or nothing.
    pub fn attainment(&self, value: f64, better: Better) -> f64 {
        let span = self.target - self.minimum;
        if span == 0.0 {
            let ok = match better {
                Better::Higher => value >= self.target,
                Better::Lower => value <= self.target,
            };
            return if ok { 1.0 } else { 0.0 };
        }
        ((value - self.minimum) / span).clamp(0.0, 1.0)
    }
}

/// One goal of the matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    pub id: String,
    pub objective: String,
    #[serde(serialize_with = "kpi_id")]
    pub kpi: &'static kpi::Def,
    pub kind: Option<String>,
    pub category: Category,
    pub weight: f64,
    #[serde(flatten)]
    pub thresholds: Thresholds,
    pub period: Period,
    pub why: Option<String>,
    pub abandons: Abandons,
    pub exits: Exits,
    pub alert: Option<Alerting>,
    pub alert_scope: Option<ScopeKind>,
    #[serde(serialize_with = "scope_keys")]
    pub overrides: BTreeMap<Scope, Override>,
}

fn scope_keys<S: serde::Serializer>(
    m: &BTreeMap<Scope, Override>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(m.len()))?;
    for (k, v) in m {
        map.serialize_entry(&k.to_string(), v)?;
    }
    map.end()
}

fn kpi_id<S: serde::Serializer>(d: &&'static kpi::Def, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(d.id)
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Alerting {
    #[serde(with = "humantime_serde")]
    pub after: Duration,
    pub severity: Severity,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Override {
    pub target: Option<f64>,
    pub warn: Option<f64>,
    pub minimum: Option<f64>,
    pub weight: Option<f64>,
}

impl Goal {
    /// The task kind the KPI is measured on (callbacks by default for
    /// callback KPIs).
    pub fn task_kind(&self) -> Option<&str> {
        self.kind
            .as_deref()
            .or(self.kpi.callback_kind.then_some("callback"))
    }

    /// Thresholds and weight for a scope, given its chain of parents
    /// (nearest first): each value from the nearest scope overriding it.
    pub fn for_chain(&self, chain: &[Scope]) -> (Thresholds, f64) {
        let mut t = self.thresholds;
        let mut w = self.weight;
        let pick = |f: fn(&Override) -> Option<f64>| {
            chain.iter().find_map(|s| self.overrides.get(s).and_then(f))
        };
        if let Some(v) = pick(|o| o.target) {
            t.target = v;
        }
        if let Some(v) = pick(|o| o.warn) {
            t.warn = v;
        }
        if let Some(v) = pick(|o| o.minimum) {
            t.minimum = v;
        }
        if let Some(v) = pick(|o| o.weight) {
            w = v;
        }
        (t, w)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Objective {
    pub id: String,
    pub title: String,
    pub parent: Option<String>,
    pub serves: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Guardrail {
    pub mode: GuardrailMode,
    pub min_score: f64,
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

/// The resolved matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    pub objectives: Vec<Objective>,
    pub goals: Vec<Goal>,
    pub guardrail: Guardrail,
    /// Built from the deprecated `[targets]` tables.
    pub from_targets: bool,
}

impl Default for Matrix {
    fn default() -> Self {
        Matrix::from_config(&Config::default())
    }
}

impl Matrix {
    /// Resolves a validated configuration.
    pub fn from_config(c: &Config) -> Matrix {
        let gr: &GuardrailConfig = &c.goals.guardrail;
        let guardrail = Guardrail {
            mode: gr.mode,
            min_score: gr.min_score,
            interval: gr.interval.0,
        };
        if c.goals.matrix.is_empty() && crate::config::goals::legacy_targets_set(c) {
            return Matrix {
                guardrail,
                ..legacy(c)
            };
        }
        let objectives = c
            .goals
            .objectives
            .iter()
            .map(|(id, o)| Objective {
                id: id.clone(),
                title: o.title.clone().unwrap_or_else(|| id.replace('_', " ")),
                parent: o.parent.clone(),
                serves: o.serves.clone(),
            })
            .collect();
        // In registry order (service before sales), then by id.
        let mut goals: Vec<Goal> = c
            .goals
            .matrix
            .iter()
            .filter_map(|(id, g)| goal(id, g))
            .collect();
        goals.sort_by_key(|g| {
            (
                kpi::REGISTRY.iter().position(|d| d.id == g.kpi.id),
                g.id.clone(),
            )
        });
        Matrix {
            objectives,
            goals,
            guardrail,
            from_targets: false,
        }
    }

    pub fn goal(&self, id: &str) -> Option<&Goal> {
        self.goals.iter().find(|g| g.id == id)
    }
}

fn goal(id: &str, g: &GoalConfig) -> Option<Goal> {
    let def = kpi::get(&g.kpi)?;
    Some(Goal {
        id: id.to_string(),
        objective: g.objective.clone(),
        kpi: def,
        kind: g.kind.clone(),
        category: g.category,
        weight: g.weight,
        thresholds: Thresholds {
            target: g.target,
            warn: g.warn,
            minimum: g.minimum,
        },
        period: g.period,
        why: g.why.clone(),
        abandons: g.abandons.unwrap_or_default(),
        exits: g.exits.unwrap_or_default(),
        alert: g.alert.then_some(Alerting {
            after: g.alert_for.0,
            severity: g.severity,
        }),
        alert_scope: g.alert_scope,
        overrides: g
            .overrides
            .iter()
            .filter_map(|(s, o)| {
                Some((
                    Scope::parse(s)?,
                    Override {
                        target: o.target,
                        warn: o.warn,
                        minimum: o.minimum,
                        weight: o.weight,
                    },
                ))
            })
            .collect(),
    })
}

/// The `[targets]` tables as a matrix: one goal per KPI set, named as
/// the old KPI was; service KPIs are primary, conversion and revenue
/// sales; every weight 1; the old `critical` is the minimum; the one
/// alert `[targets]` had (oldest wait) stays on.
fn legacy(c: &Config) -> Matrix {
    let mut goals: BTreeMap<&'static str, Goal> = BTreeMap::new();
    let mut add = |scope: Option<Scope>, targets: &crate::config::Targets| {
        for (name, id, t) in targets.entries() {
            let Some(def) = kpi::get(id) else { continue };
            let th = thresholds(t);
            let g = goals.entry(name).or_insert_with(|| {
                let sales = matches!(id, "conversion" | "revenue");
                Goal {
                    id: name.to_string(),
                    objective: if sales { "revenue" } else { "customer_service" }.into(),
                    kpi: def,
                    kind: None,
                    category: if sales {
                        Category::Sales
                    } else {
                        Category::Primary
                    },
                    weight: 1.0,
                    thresholds: th,
                    period: Period::Today,
                    why: None,
                    abandons: Abandons::Long,
                    exits: Exits::Waiting,
                    alert: (id == "oldest_wait").then_some(Alerting {
                        after: Duration::from_secs(60),
                        severity: Severity::Critical,
                    }),
                    alert_scope: None,
                    overrides: BTreeMap::new(),
                }
            });
            if let Some(s) = &scope {
                g.overrides.insert(
                    s.clone(),
                    Override {
                        target: Some(th.target),
                        warn: Some(th.warn),
                        minimum: Some(th.minimum),
                        weight: None,
                    },
                );
            } else {
                g.thresholds = th;
            }
        }
    };
    add(None, &c.targets);
    for (n, s) in &c.sites {
        add(Some(Scope::new(ScopeKind::Site, n)), &s.targets);
    }
    for (n, t) in &c.teams {
        add(Some(Scope::new(ScopeKind::Team, n)), &t.targets);
    }
    for q in &c.queues {
        add(Some(Scope::new(ScopeKind::Queue, &q.name)), &q.targets);
    }
    let order = |g: &Goal| kpi::REGISTRY.iter().position(|d| d.id == g.kpi.id);
    let mut goals: Vec<Goal> = goals.into_values().collect();
    goals.sort_by_key(order);
    Matrix {
        objectives: vec![
            Objective {
                id: "customer_service".into(),
                title: "Customer service".into(),
                parent: None,
                serves: None,
            },
            Objective {
                id: "revenue".into(),
                title: "Revenue".into(),
                parent: None,
                serves: None,
            },
        ],
        goals,
        guardrail: Guardrail {
            mode: GuardrailMode::EveryPrimary,
            min_score: 0.8,
            interval: Duration::from_secs(900),
        },
        from_targets: true,
    }
}

fn thresholds(t: &Target) -> Thresholds {
    Thresholds {
        target: t.target,
        warn: t.warn,
        minimum: t.critical,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attainment_is_linear_between_minimum_and_target_and_capped() {
        let higher = Thresholds {
            target: 0.8,
            warn: 0.75,
            minimum: 0.6,
        };
        let h = Better::Higher;
        assert_eq!(higher.attainment(0.8, h), 1.0);
        assert_eq!(higher.attainment(0.95, h), 1.0);
        assert!((higher.attainment(0.7, h) - 0.5).abs() < 1e-12);
        assert_eq!(higher.attainment(0.5, h), 0.0);
        let lower = Thresholds {
            target: 20.0,
            warn: 60.0,
            minimum: 180.0,
        };
        let l = Better::Lower;
        assert_eq!(lower.attainment(10.0, l), 1.0);
        assert!((lower.attainment(100.0, l) - 0.5).abs() < 1e-12);
        assert_eq!(lower.attainment(500.0, l), 0.0);
        let none_overdue = Thresholds {
            target: 0.0,
            warn: 0.0,
            minimum: 0.0,
        };
        assert_eq!(none_overdue.attainment(0.0, l), 1.0);
        assert_eq!(none_overdue.attainment(1.0, l), 0.0);
        assert_eq!(none_overdue.judge(Some(1.0), l), Status::Critical);
    }

    #[test]
    fn judging_treats_equal_as_not_worse() {
        let t = Thresholds {
            target: 0.8,
            warn: 0.75,
            minimum: 0.5,
        };
        assert_eq!(t.judge(Some(0.75), Better::Higher), Status::Ok);
        assert_eq!(t.judge(Some(0.7), Better::Higher), Status::Warn);
        assert_eq!(t.judge(Some(0.49), Better::Higher), Status::Critical);
        assert_eq!(t.judge(None, Better::Higher), Status::NoData);
    }

    #[test]
    fn the_nearest_override_wins() {
        let cfg = Config::parse(
            r#"
[defaults]
site = "hq"
[goals.objectives.service]
[goals.matrix.sl]
objective = "service"
kpi = "service_level"
category = "primary"
target = 0.8
warn = 0.75
minimum = 0.6
[goals.matrix.sl.overrides."site:hq"]
target = 0.9
minimum = 0.7
[goals.matrix.sl.overrides."team:sales"]
minimum = 0.65
weight = 2
[teams.sales]
"#,
            "t",
        )
        .expect("parses");
        cfg.validate().expect("valid");
        let m = Matrix::from_config(&cfg);
        let g = m.goal("sl").expect("goal");
        let chain = [
            Scope::new(ScopeKind::Queue, "orders"),
            Scope::new(ScopeKind::Team, "sales"),
            Scope::new(ScopeKind::Site, "hq"),
        ];
        let (t, w) = g.for_chain(&chain);
        assert_eq!((t.target, t.warn, t.minimum, w), (0.9, 0.75, 0.65, 2.0));
        let (t, w) = g.for_chain(&chain[2..]);
        assert_eq!((t.target, t.minimum, w), (0.9, 0.7, 1.0));
    }
}
