//! `[goals]`: the goal matrix as written in the configuration, and its
//! validation.
//!
//! Plain data: objectives (what the company wants, in a tree), goals
//! (one KPI each, with category, weight, thresholds, period, alerting and
//! per-scope overrides) and the guardrail that keeps sales from being
//! credited while the primary goals fail. `goal.rs` resolves it; the old
//! `[targets]` tables are mapped onto it there (docs/goals.md).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Config, HumanDuration};
use crate::kpi::{self, Abandons, Better, Exits, ScopeKind, Unit};

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct GoalsConfig {
    pub guardrail: GuardrailConfig,
    pub alerts: AlertsConfig,
    /// What the goals serve; `parent` makes a tree.
    pub objectives: BTreeMap<String, ObjectiveConfig>,
    /// The goals, by id.
    pub matrix: BTreeMap<String, GoalConfig>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GuardrailMode {
    /// Every primary goal at or above its minimum in the interval.
    #[default]
    EveryPrimary,
    /// The weighted primary score of the interval at least `min_score`.
    PrimaryScore,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardrailConfig {
    pub mode: GuardrailMode,
    /// For `primary_score`: the least primary score (0..=1) that earns credit.
    pub min_score: f64,
    /// The guardrail judges the period interval by interval.
    pub interval: HumanDuration,
}

impl Default for GuardrailConfig {
    fn default() -> Self {
        GuardrailConfig {
            mode: GuardrailMode::EveryPrimary,
            min_score: 0.8,
            interval: HumanDuration(Duration::from_secs(15 * 60)),
        }
    }
}

/// How generated alert rules link and select (`callwatch rules`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// PromQL label matchers selecting callwatch's series, e.g.
    /// `job="callwatch"`; empty selects every instance.
    pub selector: String,
    /// Absolute base of the runbook links.
    pub runbook_base: String,
    /// CallwatchCallbacksDueSoonFewAgents: this many callbacks due soon
    /// in a queue ...
    pub due_soon_callbacks: u64,
    /// ... while fewer agents of its team are available.
    pub min_available_agents: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            selector: r#"job="callwatch""#.into(),
            runbook_base: "https://github.com/callwatch/callwatch/blob/main/docs/runbook.md".into(),
            due_soon_callbacks: 5,
            min_available_agents: 2,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveConfig {
    pub title: Option<String>,
    pub parent: Option<String>,
    /// The company goal this objective serves, in plain words.
    pub serves: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// The service the desk owes; comes first.
    Primary,
    /// Credited only while the primary goals hold (the guardrail).
    Sales,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Primary => "primary",
            Category::Sales => "sales",
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    #[default]
    Today,
    Week,
    Month,
    #[serde(rename = "60m")]
    Rolling60m,
}

impl Period {
    pub const ALL: [Period; 4] = [
        Period::Today,
        Period::Week,
        Period::Month,
        Period::Rolling60m,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Today => "today",
            Period::Week => "week",
            Period::Month => "month",
            Period::Rolling60m => "60m",
        }
    }
    pub fn parse(s: &str) -> Option<Period> {
        Period::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    #[default]
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GoalConfig {
    pub objective: String,
    pub kpi: String,
    /// Task kind, for the per-kind KPIs.
    pub kind: Option<String>,
    pub category: Category,
    #[serde(default = "one")]
    pub weight: f64,
    pub target: f64,
    pub warn: f64,
    /// The critical threshold: 0 attainment points here and beyond.
    pub minimum: f64,
    #[serde(default)]
    pub period: Period,
    /// Why it matters, for the goal sheet.
    pub why: Option<String>,
    /// Service level only: which abandons count.
    pub abandons: Option<Abandons>,
    /// Service level only: whether callers who left without an agent
    /// (timeouts, exit keys; refusals with `all`) count against it.
    pub exits: Option<Exits>,
    /// Generate an alert rule for this goal.
    #[serde(default)]
    pub alert: bool,
    #[serde(default = "alert_for", rename = "for")]
    pub alert_for: HumanDuration,
    #[serde(default)]
    pub severity: Severity,
    /// Which scopes the alert watches (default: queues).
    pub alert_scope: Option<ScopeKind>,
    /// Per-scope overrides: keys `site:NAME`, `team:NAME`, `queue:NAME`,
    /// `partner:NAME`.
    #[serde(default)]
    pub overrides: BTreeMap<String, GoalOverride>,
}

fn one() -> f64 {
    1.0
}

fn alert_for() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GoalOverride {
    pub target: Option<f64>,
    pub warn: Option<f64>,
    pub minimum: Option<f64>,
    pub weight: Option<f64>,
}

/// Every goal problem with its key path.
pub(super) fn validate(c: &Config, push: &mut impl FnMut(String, String)) {
    let g = &c.goals;
    if !g.matrix.is_empty() && legacy_targets_set(c) {
        push(
            "goals.matrix".into(),
            "both [goals.matrix] and the deprecated [targets] tables are set; \
             move the targets into the matrix (docs/goals.md)"
                .into(),
        );
    }
    let gr = &g.guardrail;
    if !(gr.min_score > 0.0 && gr.min_score <= 1.0) {
        push(
            "goals.guardrail.min_score".into(),
            "must be in (0, 1]".into(),
        );
    }
    let iv = gr.interval.0.as_secs();
    if iv < 60 || 86_400 % iv != 0 || gr.interval.0.subsec_nanos() != 0 {
        push(
            "goals.guardrail.interval".into(),
            "must be whole minutes that divide a day (e.g. 15m, 30m, 1h)".into(),
        );
    }
    if g.alerts.runbook_base.is_empty() || !g.alerts.runbook_base.contains("://") {
        push(
            "goals.alerts.runbook_base".into(),
            "must be an absolute URL".into(),
        );
    }
    for (name, o) in &g.objectives {
        if let Some(p) = &o.parent {
            if !g.objectives.contains_key(p) {
                push(
                    format!("goals.objectives.{name}.parent"),
                    format!("objective {p:?} is not defined"),
                );
                continue;
            }
        }
        // Walk up: a cycle comes back to `name`.
        let mut seen = BTreeSet::new();
        let mut at = name.as_str();
        while let Some(p) = g.objectives.get(at).and_then(|o| o.parent.as_deref()) {
            if p == name {
                push(
                    format!("goals.objectives.{name}.parent"),
                    format!("objectives form a cycle through {name:?}"),
                );
                break;
            }
            if !seen.insert(p) {
                break;
            }
            at = p;
        }
    }
    for (id, goal) in &g.matrix {
        let at = format!("goals.matrix.{id}");
        if !super::valid_id(id) {
            push(at.clone(), "a goal id must match [a-z0-9_]{1,64}".into());
        }
        if !g.objectives.contains_key(&goal.objective) {
            push(
                format!("{at}.objective"),
                format!(
                    "objective {:?} is not defined under [goals.objectives]",
                    goal.objective
                ),
            );
        }
        let Some(def) = kpi::get(&goal.kpi) else {
            push(
                format!("{at}.kpi"),
                format!(
                    "unknown KPI {:?}; known: {}",
                    goal.kpi,
                    kpi::ids().join(", ")
                ),
            );
            continue;
        };
        match (&goal.kind, def.needs_kind) {
            (None, true) => push(
                format!("{at}.kind"),
                format!("KPI {:?} needs the task kind it measures", def.id),
            ),
            (Some(_), false) if !def.callback_kind => push(
                format!("{at}.kind"),
                format!("KPI {:?} is not measured per task kind", def.id),
            ),
            (Some(k), _) if !c.tasks.kinds.contains_key(k) && k != "callback" => push(
                format!("{at}.kind"),
                format!("task kind {k:?} is not defined under [tasks.kinds]"),
            ),
            _ => {}
        }
        if goal.abandons.is_some() && def.id != "service_level" {
            push(
                format!("{at}.abandons"),
                "only a service_level goal chooses which abandons count".into(),
            );
        }
        if goal.exits.is_some() && def.id != "service_level" {
            push(
                format!("{at}.exits"),
                "only a service_level goal chooses whether exits count".into(),
            );
        }
        check_weight(push, &format!("{at}.weight"), goal.weight);
        check_thresholds(
            push,
            &at,
            def,
            Some(goal.target),
            Some(goal.warn),
            Some(goal.minimum),
        );
        for (scope, o) in &goal.overrides {
            let oat = format!("{at}.overrides.\"{scope}\"");
            if let Err(e) = scope_exists(c, scope) {
                push(oat.clone(), e);
            }
            if let Some(w) = o.weight {
                check_weight(push, &format!("{oat}.weight"), w);
            }
            check_thresholds(
                push,
                &oat,
                def,
                Some(o.target.unwrap_or(goal.target)),
                Some(o.warn.unwrap_or(goal.warn)),
                Some(o.minimum.unwrap_or(goal.minimum)),
            );
        }
    }
    let need = g
        .matrix
        .values()
        .map(|goal| match goal.period {
            Period::Month => 31,
            Period::Week => 7,
            _ => 1,
        })
        .max()
        .unwrap_or(1);
    if c.retention.goal_intervals < Duration::from_secs(need * 86_400) {
        push(
            "retention.goal_intervals".into(),
            format!("must be at least {need} day(s) to cover the longest goal period"),
        );
    }
    let partner_ok = |push: &mut dyn FnMut(String, String), at: String, p: &str| {
        if !super::valid_id(p) || p == "in_house" {
            push(
                at,
                format!("partner {p:?} must match [a-z0-9_]{{1,64}} and not be \"in_house\" (the desk's own queues)"),
            );
        }
    };
    for (name, s) in &c.sites {
        if let Some(p) = &s.partner {
            partner_ok(push, format!("sites.{name}.partner"), p);
        }
    }
    for (name, t) in &c.teams {
        if let Some(p) = &t.partner {
            partner_ok(push, format!("teams.{name}.partner"), p);
        }
    }
}

fn check_weight(push: &mut impl FnMut(String, String), at: &str, w: f64) {
    if !(w.is_finite() && w > 0.0) {
        push(at.into(), format!("weight {w} must be a positive number"));
    }
}

/// Thresholds must run target, warn, minimum from better to worse.
pub(super) fn check_thresholds(
    push: &mut impl FnMut(String, String),
    at: &str,
    def: &kpi::Def,
    target: Option<f64>,
    warn: Option<f64>,
    minimum: Option<f64>,
) {
    let (Some(t), Some(w), Some(m)) = (target, warn, minimum) else {
        return;
    };
    if [t, w, m].iter().any(|v| !v.is_finite()) {
        push(at.into(), "target, warn and minimum must be numbers".into());
        return;
    }
    if def.unit == Unit::Ratio && [t, w, m].iter().any(|v| !(0.0..=1.0).contains(v)) {
        push(
            at.into(),
            "a ratio's target, warn and minimum lie in 0..=1".into(),
        );
    }
    let ordered = match def.better {
        Better::Higher => t >= w && w >= m,
        Better::Lower => t <= w && w <= m,
    };
    if !ordered {
        let way = match def.better {
            Better::Higher => "higher is better: target ≥ warn ≥ minimum",
            Better::Lower => "lower is better: target ≤ warn ≤ minimum",
        };
        push(
            at.into(),
            format!("thresholds in the wrong order for {} ({way}); got target {t}, warn {w}, minimum {m}", def.id),
        );
    }
}

/// Whether `scope` (`kind:name`) names a configured site, team, queue
/// or partner.
pub fn scope_exists(c: &Config, scope: &str) -> Result<(), String> {
    let Some((kind, name)) = scope.split_once(':') else {
        return Err(format!(
            "scope {scope:?} must be site:NAME, team:NAME, queue:NAME or partner:NAME"
        ));
    };
    let found = match kind {
        "site" => name == c.defaults.site || c.sites.contains_key(name),
        "team" => c.teams.contains_key(name),
        "queue" => c.queues.iter().any(|q| q.name == name),
        "partner" => partners(c).contains(name) || (name == "in_house" && !partners(c).is_empty()),
        _ => {
            return Err(format!(
                "scope kind {kind:?} is not site, team, queue or partner"
            ))
        }
    };
    if found {
        Ok(())
    } else {
        Err(format!("{kind} {name:?} is not configured"))
    }
}

/// Every partner named on a site or team.
pub fn partners(c: &Config) -> BTreeSet<&str> {
    c.sites
        .values()
        .filter_map(|s| s.partner.as_deref())
        .chain(c.teams.values().filter_map(|t| t.partner.as_deref()))
        .collect()
}

/// Whether any deprecated `[targets]` table is set.
pub fn legacy_targets_set(c: &Config) -> bool {
    !c.targets.is_empty()
        || c.sites.values().any(|s| !s.targets.is_empty())
        || c.teams.values().any(|t| !t.targets.is_empty())
        || c.queues.iter().any(|q| !q.targets.is_empty())
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    fn problems(extra: &str) -> Vec<(String, String)> {
        let text = format!(
            r#"
[defaults]
site = "hq"
[teams.sales]
[goals.objectives.service]
parent = "loop_a"
[goals.objectives.loop_a]
parent = "loop_b"
[goals.objectives.loop_b]
parent = "loop_a"
{extra}
"#
        );
        let cfg = Config::parse(&text, "t").expect("parses");
        match cfg.validate() {
            Err(ConfigError::Invalid(p)) => p.into_iter().map(|p| (p.path, p.message)).collect(),
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn every_goal_problem_names_its_key_path() {
        let p = problems(
            r#"
[goals.matrix.a]
objective = "service"
kpi = "speed_of_light"
category = "primary"
target = 1
warn = 1
minimum = 1
[goals.matrix.b]
objective = "service"
kpi = "service_level"
category = "primary"
weight = 0
target = 0.5
warn = 0.7
minimum = 0.9
[goals.matrix.b.overrides."team:nobody"]
target = 0.9
[goals.matrix.c]
objective = "nowhere"
kpi = "task_sla"
category = "sales"
target = 0.9
warn = 0.8
minimum = 0.7
"#,
        );
        let has =
            |path: &str, needle: &str| p.iter().any(|(at, msg)| at == path && msg.contains(needle));
        assert!(has("goals.objectives.loop_a.parent", "cycle"), "{p:?}");
        assert!(
            has("goals.matrix.a.kpi", "unknown KPI \"speed_of_light\""),
            "{p:?}"
        );
        assert!(has("goals.matrix.b.weight", "positive"), "{p:?}");
        assert!(has("goals.matrix.b", "wrong order"), "{p:?}");
        assert!(
            has("goals.matrix.b.overrides.\"team:nobody\"", "not configured"),
            "{p:?}"
        );
        assert!(has("goals.matrix.c.objective", "not defined"), "{p:?}");
        assert!(has("goals.matrix.c.kind", "needs the task kind"), "{p:?}");
    }

    #[test]
    fn targets_and_a_matrix_together_are_refused_and_targets_alone_map() {
        let p = problems(
            r#"
[goals.matrix.sl]
objective = "service"
kpi = "service_level"
category = "primary"
target = 0.8
warn = 0.7
minimum = 0.6
[targets.service_level]
target = 0.8
warn = 0.75
critical = 0.6
"#,
        );
        assert!(p.iter().any(|(at, _)| at == "goals.matrix"), "{p:?}");
        let cfg = Config::parse(
            "[targets.revenue_today]\ntarget = 100\nwarn = 50\ncritical = 10\n[teams.a.targets.revenue_today]\ntarget = 200\nwarn = 100\ncritical = 20\n",
            "t",
        )
        .expect("parses");
        cfg.validate().expect("valid");
        let m = crate::goal::Matrix::from_config(&cfg);
        let g = m.goal("revenue_today").expect("mapped goal");
        assert!(m.from_targets);
        assert_eq!((g.kpi.id, g.category), ("revenue", super::Category::Sales));
        let team = crate::goal::Scope::new(crate::kpi::ScopeKind::Team, "a");
        assert_eq!(g.for_chain(&[team]).0.minimum, 20.0);
    }
}
