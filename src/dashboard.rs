//! Grafana dashboards generated from the goal matrix (`callwatch
//! dashboards`).
//!
//! Five boards: overview, backlog and SLA, agents, sales, and goals
//! (scorecards, the guardrail and the partner comparison). Panels that
//! show a goal's KPI take their colour thresholds from the goal, so they
//! turn at the same values as the wallboard, the alerts and the
//! scorecards. Every query selects `job=~"$job", instance=~"$instance"`
//! and joins on `job, instance`, so a Grafana over many callwatch
//! instances shows each one or all of them. The shipped `dashboards/*.json`
//! are this module's output for the shipped configuration (a test holds
//! them equal).

use serde_json::{json, Value};

use crate::config::Config;
use crate::goal::{Goal, Matrix};
use crate::kpi::{Better, Unit};

const SEL: &str = r#"job=~"$job", instance=~"$instance""#;

/// `metric{extra, job=~"$job", instance=~"$instance"}`.
fn m(metric: &str, extra: &str) -> String {
    if extra.is_empty() {
        format!("{metric}{{{SEL}}}")
    } else {
        format!("{metric}{{{extra}, {SEL}}}")
    }
}

/// Joins queue-level series with their site and team (and filters by them).
fn info() -> String {
    format!(
        r#"on (job, instance, queue) group_left (site, team) callwatch_queue_info{{site=~"$site", team=~"$team", queue=~"$queue", {SEL}}}"#
    )
}

/// Grafana threshold steps for a goal: red worse than the minimum,
/// orange worse than warn, green otherwise. "Worse than" is strict, as
/// on the wallboard, so a count at its target of 0 is green.
pub fn thresholds(g: &Goal) -> Value {
    let t = g.thresholds;
    let above = |v: f64| {
        if g.kpi.unit == Unit::Count {
            v + 1.0
        } else {
            v + (v.abs() * 1e-9).max(1e-9)
        }
    };
    let steps = match g.kpi.better {
        Better::Higher if t.warn == t.minimum => vec![
            json!({"color": "red", "value": null}),
            json!({"color": "green", "value": t.minimum}),
        ],
        Better::Higher => vec![
            json!({"color": "red", "value": null}),
            json!({"color": "orange", "value": t.minimum}),
            json!({"color": "green", "value": t.warn}),
        ],
        Better::Lower if t.warn == t.minimum => vec![
            json!({"color": "green", "value": null}),
            json!({"color": "red", "value": above(t.minimum)}),
        ],
        Better::Lower => vec![
            json!({"color": "green", "value": null}),
            json!({"color": "orange", "value": above(t.warn)}),
            json!({"color": "red", "value": above(t.minimum)}),
        ],
    };
    json!({"mode": "absolute", "steps": steps})
}

struct Board {
    uid: &'static str,
    title: &'static str,
    vars: &'static [&'static str],
    panels: Vec<Value>,
    x: u64,
    y: u64,
    row_h: u64,
    currency: String,
}

/// One panel's description.
struct P<'a> {
    kind: &'a str,
    title: String,
    exprs: Vec<(String, Option<&'a str>)>,
    w: u64,
    h: u64,
    unit: Option<String>,
    goal: Option<&'a Goal>,
    desc: &'a str,
}

impl<'a> P<'a> {
    fn new(kind: &'a str, title: impl Into<String>, expr: String, desc: &'a str) -> P<'a> {
        P {
            kind,
            title: title.into(),
            exprs: vec![(expr, None)],
            w: 6,
            h: 6,
            unit: None,
            goal: None,
            desc,
        }
    }
    fn size(mut self, w: u64, h: u64) -> Self {
        self.w = w;
        self.h = h;
        self
    }
    fn unit(mut self, u: &str) -> Self {
        self.unit = Some(u.to_string());
        self
    }
    fn legend(mut self, l: &'a str) -> Self {
        for e in &mut self.exprs {
            e.1 = Some(l);
        }
        self
    }
    fn goal(mut self, g: Option<&'a Goal>) -> Self {
        self.goal = g;
        self
    }
    fn many(mut self, exprs: Vec<(String, &'a str)>) -> Self {
        self.exprs = exprs.into_iter().map(|(e, l)| (e, Some(l))).collect();
        self
    }
}

impl Board {
    fn new(
        uid: &'static str,
        title: &'static str,
        vars: &'static [&'static str],
        currency: &str,
    ) -> Board {
        Board {
            uid,
            title,
            vars,
            panels: Vec::new(),
            x: 0,
            y: 0,
            row_h: 0,
            currency: currency.to_string(),
        }
    }

    fn add(&mut self, p: P) {
        if self.x + p.w > 24 {
            self.x = 0;
            self.y += self.row_h;
            self.row_h = 0;
        }
        let ds = json!({"type": "prometheus", "uid": "${datasource}"});
        let targets: Vec<Value> = p
            .exprs
            .iter()
            .enumerate()
            .map(|(i, (e, l))| {
                let mut t = json!({"refId": ((b'A' + i as u8) as char).to_string(), "expr": e, "datasource": ds});
                if let Some(l) = l {
                    t["legendFormat"] = json!(l);
                }
                if matches!(p.kind, "stat" | "bargauge" | "table") {
                    t["instant"] = json!(true);
                }
                t
            })
            .collect();
        let mut defaults = json!({});
        let unit = p.unit.clone().map(|u| {
            if u == "currency" {
                format!("currency{}", self.currency)
            } else {
                u
            }
        });
        if let Some(u) = unit {
            defaults["unit"] = json!(u);
        }
        let mut desc = p.desc.to_string();
        if let Some(g) = p.goal {
            defaults["thresholds"] = thresholds(g);
            defaults["color"] = json!({"mode": "thresholds"});
            if !desc.is_empty() {
                desc.push(' ');
            }
            desc.push_str(&format!(
                "Goal {} ({}): target {}, warn {}, minimum {} (goal:{}).",
                g.id,
                g.kpi.title,
                g.thresholds.target,
                g.thresholds.warn,
                g.thresholds.minimum,
                g.id
            ));
        }
        let mut panel = json!({
            "id": self.panels.len() + 1,
            "type": p.kind,
            "title": p.title,
            "description": desc,
            "datasource": ds,
            "gridPos": {"x": self.x, "y": self.y, "w": p.w, "h": p.h},
            "targets": targets,
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {},
        });
        if p.kind == "stat" {
            panel["options"] = json!({"colorMode": "background", "graphMode": "none",
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false}});
        }
        self.panels.push(panel);
        self.x += p.w;
        self.row_h = self.row_h.max(p.h);
    }

    fn json(self) -> Value {
        let ds = json!({"type": "prometheus", "uid": "${datasource}"});
        let var = |name: &str, query: String, label: &str| {
            json!({
                "name": name, "label": label, "type": "query", "datasource": ds,
                "query": {"query": query, "refId": "v"}, "definition": query,
                "includeAll": true, "multi": true, "allValue": ".*",
                "current": {"text": "All", "value": "$__all"}, "refresh": 2, "sort": 1,
            })
        };
        let mut list = vec![
            json!({"name": "datasource", "label": "Data source", "type": "datasource",
                   "query": "prometheus", "current": {}, "hide": 0}),
            var(
                "job",
                "label_values(callwatch_queue_info, job)".into(),
                "Job",
            ),
            var(
                "instance",
                r#"label_values(callwatch_queue_info{job=~"$job"}, instance)"#.into(),
                "Instance",
            ),
        ];
        for v in self.vars {
            list.push(match *v {
                "site" => var("site", format!("label_values(callwatch_queue_info{{{SEL}}}, site)"), "Site"),
                "team" => var("team", format!(r#"label_values(callwatch_queue_info{{site=~"$site", {SEL}}}, team)"#), "Team"),
                "queue" => var("queue", format!(r#"label_values(callwatch_queue_info{{site=~"$site", team=~"$team", {SEL}}}, queue)"#), "Queue"),
                "kind" => var("kind", format!("label_values(callwatch_backlog_tasks{{{SEL}}}, kind)"), "Task kind"),
                "scope_kind" => var("scope_kind", format!("label_values(callwatch_score{{{SEL}}}, scope_kind)"), "Scope kind"),
                "scope" => var("scope", format!(r#"label_values(callwatch_score{{scope_kind=~"$scope_kind", {SEL}}}, scope)"#), "Scope"),
                _ => json!({}),
            });
        }
        json!({
            "uid": self.uid, "title": self.title, "tags": ["callwatch"], "timezone": "browser",
            "schemaVersion": 39, "version": 1, "editable": true, "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"},
            "templating": {"list": list}, "panels": self.panels, "annotations": {"list": []},
        })
    }
}

/// The goal on the KPI `kpi` (first in the matrix), for colouring.
fn goal_of<'a>(mx: &'a Matrix, kpi: &str) -> Option<&'a Goal> {
    mx.goals
        .iter()
        .find(|g| g.kpi.id == kpi && g.kind.is_none())
}

fn goal_value(g: &Goal, scope_kind: &str, scope: &str) -> String {
    m(
        "callwatch_goal_value",
        &format!(
            r#"goal="{}", scope_kind="{scope_kind}", scope=~"{scope}""#,
            g.id
        ),
    )
}

fn overview(mx: &Matrix, cur: &str) -> Board {
    let i = info();
    let mut b = Board::new(
        "callwatch-overview",
        "callwatch · Overview",
        &["site", "team", "queue"],
        cur,
    );
    b.add(
        P::new(
            "stat",
            "Calls waiting",
            format!("sum({} * {i})", m("callwatch_queue_calls_waiting", "")),
            "Callers waiting now, all selected queues.",
        )
        .size(4, 6),
    );
    b.add(
        P::new(
            "stat",
            "Oldest wait",
            format!(
                "max({} * {i})",
                m("callwatch_queue_oldest_wait_seconds", "")
            ),
            "Longest current wait.",
        )
        .size(4, 6)
        .unit("s")
        .goal(goal_of(mx, "oldest_wait")),
    );
    b.add(
        P::new(
            "stat",
            "Service level today (lowest queue)",
            format!(
                "min({} * {i})",
                m("callwatch_queue_service_level_ratio", r#"window="today""#)
            ),
            "Default formula.",
        )
        .size(4, 6)
        .unit("percentunit")
        .goal(goal_of(mx, "service_level")),
    );
    b.add(
        P::new(
            "stat",
            "Callbacks open",
            format!(
                "sum({} * {i})",
                m("callwatch_backlog_tasks", r#"kind="callback""#)
            ),
            "Callbacks owed now.",
        )
        .size(4, 6)
        .goal(goal_of(mx, "callbacks_open")),
    );
    b.add(
        P::new(
            "stat",
            "Callbacks overdue",
            format!(
                "sum({} * {i})",
                m("callwatch_backlog_overdue_tasks", r#"kind="callback""#)
            ),
            "Open callbacks past their deadline.",
        )
        .size(4, 6)
        .goal(goal_of(mx, "callbacks_overdue")),
    );
    b.add(
        P::new(
            "stat",
            "Agents available",
            format!(
                "sum({})",
                m(
                    "callwatch_agents",
                    r#"state="available", site=~"$site", team=~"$team""#
                )
            ),
            "Agents ready for a call now.",
        )
        .size(4, 6),
    );
    b.add(
        P::new(
            "timeseries",
            "Service level (1 h) by queue",
            format!("callwatch:queue_service_level:ratio_rate1h{{{SEL}}} * {i}"),
            "Recording rule over the last hour.",
        )
        .size(12, 8)
        .unit("percentunit")
        .legend("{{instance}} {{queue}}")
        .goal(goal_of(mx, "service_level")),
    );
    b.add(
        P::new(
            "timeseries",
            "Calls waiting by queue",
            format!("{} * {i}", m("callwatch_queue_calls_waiting", "")),
            "Callers waiting per queue.",
        )
        .size(12, 8)
        .legend("{{instance}} {{queue}}"),
    );
    b.add(
        P::new(
            "timeseries",
            "Offered, answered, abandoned (per minute)",
            String::new(),
            "Calls per minute.",
        )
        .size(12, 8)
        .many(vec![
            (
                format!(
                    "sum(rate({}[$__rate_interval]) * {i}) * 60",
                    m("callwatch_calls_offered_total", "")
                ),
                "offered",
            ),
            (
                format!(
                    "sum(rate({}[$__rate_interval]) * {i}) * 60",
                    m("callwatch_calls_answered_total", "")
                ),
                "answered",
            ),
            (
                format!(
                    "sum(rate({}[$__rate_interval]) * {i}) * 60",
                    m("callwatch_calls_abandoned_total", "")
                ),
                "abandoned",
            ),
        ]),
    );
    b.add(
        P::new(
            "bargauge",
            "Backlog by kind",
            format!("sum by (kind) ({} * {i})", m("callwatch_backlog_tasks", "")),
            "Open tasks per kind.",
        )
        .size(12, 8)
        .legend("{{kind}}"),
    );
    b.add(
        P::new(
            "table",
            "Goal status by queue",
            m(
                "callwatch_goal_status",
                r#"scope_kind="queue", scope=~"$queue""#,
            ),
            "0 ok, 1 warn, 2 critical, from the goal matrix.",
        )
        .size(24, 8)
        .legend("{{scope}} {{goal}}"),
    );
    b
}

fn backlog(mx: &Matrix, cur: &str) -> Board {
    let i = info();
    let k = r#"kind=~"$kind""#;
    let mut b = Board::new(
        "callwatch-backlog",
        "callwatch · Backlog and SLA",
        &["site", "team", "queue", "kind"],
        cur,
    );
    b.add(
        P::new(
            "stat",
            "Open",
            format!("sum({} * {i})", m("callwatch_backlog_tasks", k)),
            "Open tasks.",
        )
        .size(4, 6),
    );
    b.add(
        P::new(
            "stat",
            "Overdue",
            format!("sum({} * {i})", m("callwatch_backlog_overdue_tasks", k)),
            "Open tasks past their deadline.",
        )
        .size(4, 6)
        .goal(goal_of(mx, "callbacks_overdue")),
    );
    b.add(
        P::new(
            "stat",
            "Due soon",
            format!("sum({} * {i})", m("callwatch_backlog_due_soon_tasks", k)),
            "Open tasks coming due.",
        )
        .size(4, 6),
    );
    b.add(
        P::new(
            "stat",
            "Oldest open",
            format!(
                "max({} * {i})",
                m("callwatch_backlog_oldest_age_seconds", k)
            ),
            "Age of the oldest open task.",
        )
        .size(4, 6)
        .unit("s"),
    );
    b.add(
        P::new(
            "stat",
            "SLA breaches (24 h)",
            format!(
                "sum(increase({}[24h]) * {i})",
                m("callwatch_task_sla_breaches_total", k)
            ),
            "Tasks that went past their deadline.",
        )
        .size(4, 6),
    );
    b.add(
        P::new(
            "stat",
            "Callback SLA attainment (4 h, lowest queue)",
            format!("min(callwatch:callback_sla_attainment:ratio_rate4h{{{SEL}}} * {i})",),
            "Completed by the deadline / completed.",
        )
        .size(4, 6)
        .unit("percentunit")
        .goal(goal_of(mx, "callback_sla")),
    );
    b.add(
        P::new(
            "timeseries",
            "Open and overdue by kind",
            String::new(),
            "Open tasks and the overdue among them.",
        )
        .size(12, 8)
        .many(vec![
            (
                format!("sum by (kind) ({} * {i})", m("callwatch_backlog_tasks", k)),
                "{{kind}} open",
            ),
            (
                format!(
                    "sum by (kind) ({} * {i})",
                    m("callwatch_backlog_overdue_tasks", k)
                ),
                "{{kind}} overdue",
            ),
        ]),
    );
    b.add(
        P::new(
            "timeseries",
            "Time to next deadline",
            format!(
                "min by (job, instance, kind, queue) ({} * {i})",
                m("callwatch_backlog_next_due_seconds", k)
            ),
            "Negative: a deadline has passed.",
        )
        .size(12, 8)
        .unit("s")
        .legend("{{instance}} {{kind}} {{queue}}"),
    );
    b.add(
        P::new(
            "timeseries",
            "Completion time p50 / p90",
            String::new(),
            "From created to completed.",
        )
        .size(12, 8)
        .unit("s")
        .many(vec![
            (
                format!(
                    "histogram_quantile(0.5, sum by (le, kind) (rate({}[$__rate_interval]) * {i}))",
                    m("callwatch_task_completion_seconds_bucket", k)
                ),
                "{{kind}} p50",
            ),
            (
                format!(
                    "histogram_quantile(0.9, sum by (le, kind) (rate({}[$__rate_interval]) * {i}))",
                    m("callwatch_task_completion_seconds_bucket", k)
                ),
                "{{kind}} p90",
            ),
        ]),
    );
    b.add(
        P::new(
            "timeseries",
            "SLA attainment (completed met / completed, 1 h)",
            format!(
                "sum by (kind) (increase({}[1h]) * {i}) / sum by (kind) (increase({}[1h]) * {i})",
                m(
                    "callwatch_tasks_completed_total",
                    &format!(r#"{k}, sla="met""#)
                ),
                m("callwatch_tasks_completed_total", k)
            ),
            "Share completed by the deadline over the last hour.",
        )
        .size(12, 8)
        .unit("percentunit")
        .legend("{{kind}}"),
    );
    b.add(
        P::new(
            "bargauge",
            "Age structure of open tasks",
            format!(
                "sum by (age_band) ({} * {i})",
                m("callwatch_backlog_tasks_by_age_band", k)
            ),
            "Open tasks per age band; each task is in one band.",
        )
        .size(12, 8)
        .legend("{{age_band}}"),
    );
    b.add(
        P::new(
            "timeseries",
            "Callbacks owed and closed (per hour)",
            String::new(),
            "Callbacks created by source and closed by reason.",
        )
        .size(12, 8)
        .many(vec![
            (
                format!(
                    "sum by (source) (increase({}[1h]) * {i})",
                    m("callwatch_callbacks_owed_created_total", "")
                ),
                "created: {{source}}",
            ),
            (
                format!(
                    "sum by (reason) (increase({}[1h]) * {i})",
                    m("callwatch_callbacks_closed_total", "")
                ),
                "closed: {{reason}}",
            ),
        ]),
    );
    b
}

fn agents(mx: &Matrix, cur: &str) -> Board {
    let i = info();
    let st = r#"site=~"$site", team=~"$team""#;
    let mut b = Board::new(
        "callwatch-agents",
        "callwatch · Agents",
        &["site", "team", "queue"],
        cur,
    );
    b.add(
        P::new(
            "bargauge",
            "Agents by state",
            format!("sum by (state) ({})", m("callwatch_agents", st)),
            "Agents now.",
        )
        .size(8, 8)
        .legend("{{state}}"),
    );
    b.add(
        P::new(
            "timeseries",
            "Agents by state over time",
            format!("sum by (state) ({})", m("callwatch_agents", st)),
            "Agents per state.",
        )
        .size(16, 8)
        .legend("{{state}}"),
    );
    b.add(
        P::new(
            "stat",
            "AHT (1 h, longest queue)",
            format!("max(callwatch:aht_seconds:rate1h{{{SEL}}} * {i})"),
            "Talk + hold + wrap per contact.",
        )
        .size(6, 6)
        .unit("s")
        .goal(goal_of(mx, "aht")),
    );
    for phase in ["talk", "hold", "wrap"] {
        let title = format!("Average {phase} (1 h)");
        b.add(
            P::new(
                "stat",
                title,
                format!(
                    "sum(rate({}[1h]) * {i}) / sum(rate({}[1h]) * {i})",
                    m(&format!("callwatch_call_{phase}_seconds_sum"), ""),
                    m(&format!("callwatch_call_{phase}_seconds_count"), "")
                ),
                "Per contact.",
            )
            .size(6, 6)
            .unit("s"),
        );
    }
    b.add(
        P::new(
            "timeseries",
            "Handling time by phase (per contact)",
            String::new(),
            "Per contact, by phase.",
        )
        .size(12, 8)
        .unit("s")
        .many(
            ["talk", "hold", "wrap"]
                .iter()
                .map(|p| {
                    (
                        format!(
            "sum(rate({}[$__rate_interval]) * {i}) / sum(rate({}[$__rate_interval]) * {i})",
            m(&format!("callwatch_call_{p}_seconds_sum"), ""),
            m(&format!("callwatch_call_{p}_seconds_count"), "")
        ),
                        *p,
                    )
                })
                .collect(),
        ),
    );
    b.add(
        P::new(
            "timeseries",
            "Contacts handled per hour (per agent, where enabled)",
            format!(
                "sum by (agent) (increase({}[1h]))",
                m("callwatch_agent_contacts_handled_total", "")
            ),
            "Needs privacy.per_agent_metrics = true and the read token.",
        )
        .size(12, 8)
        .legend("{{agent}}"),
    );
    b.add(
        P::new(
            "timeseries",
            "Paused agents",
            format!(
                "sum({})",
                m("callwatch_agents", &format!(r#"state="paused", {st}"#))
            ),
            "Agents paused now.",
        )
        .size(12, 8),
    );
    b.add(P::new("timeseries", "Wait p90 by queue", format!("histogram_quantile(0.9, sum by (le, job, instance, queue) (rate({}[$__rate_interval]) * {i}))", m("callwatch_call_wait_seconds_bucket", "")), "Of answered calls.").size(12, 8).unit("s").legend("{{instance}} {{queue}}"));
    b
}

fn sales(mx: &Matrix, cur: &str) -> Board {
    let i = info();
    let mut b = Board::new(
        "callwatch-sales",
        "callwatch · Sales",
        &["site", "team", "queue"],
        cur,
    );
    b.add(
        P::new(
            "stat",
            "Net revenue (24 h)",
            format!(
                "sum(increase({}[24h]) * {i}) - sum(increase({}[24h]) * {i})",
                m("callwatch_revenue_total", ""),
                m("callwatch_revenue_cancelled_total", "")
            ),
            "Revenue minus cancelled revenue.",
        )
        .size(6, 6)
        .unit("currency"),
    );
    if let Some(g) = goal_of(mx, "conversion") {
        b.add(
            P::new(
                "stat",
                "Conversion today (lowest queue)",
                format!("min({})", goal_value(g, "queue", "$queue")),
                "Goal value per queue.",
            )
            .size(6, 6)
            .unit("percentunit")
            .goal(Some(g)),
        );
    }
    if let Some(g) = goal_of(mx, "revenue") {
        b.add(
            P::new(
                "stat",
                "Revenue (sum of queues)",
                format!("sum({})", goal_value(g, "queue", "$queue")),
                "Over the goal's period.",
            )
            .size(6, 6)
            .unit("currency")
            .goal(Some(g)),
        );
    }
    b.add(
        P::new(
            "stat",
            "Cancellations (24 h)",
            format!(
                "sum(increase({}[24h]) * {i})",
                m("callwatch_sales_cancelled_total", "")
            ),
            "Sales cancelled.",
        )
        .size(6, 6),
    );
    b.add(
        P::new(
            "timeseries",
            "Revenue per hour by queue",
            format!(
                "sum by (queue) (increase({}[1h]) * {i})",
                m("callwatch_revenue_total", "")
            ),
            "Revenue booked in the last hour.",
        )
        .size(12, 8)
        .unit("currency")
        .legend("{{queue}}"),
    );
    b.add(
        P::new(
            "timeseries",
            "Incremental revenue gained and lost (per hour)",
            format!(
                "sum by (direction) (increase({}[1h]) * {i})",
                m("callwatch_incremental_revenue_total", "")
            ),
            "Upgrades gain, downgrades lose.",
        )
        .size(12, 8)
        .unit("currency")
        .legend("{{direction}}"),
    );
    b.add(
        P::new(
            "bargauge",
            "Sales by kind (24 h)",
            format!(
                "sum by (kind) (increase({}[24h]) * {i})",
                m("callwatch_sales_total", "")
            ),
            "Sales per kind.",
        )
        .size(8, 8)
        .legend("{{kind}}"),
    );
    b.add(
        P::new(
            "timeseries",
            "Team revenue per hour",
            format!(
                "sum by (team) (increase({}[1h]))",
                m("callwatch_team_revenue_total", r#"team=~"$team""#)
            ),
            "By the agents' team.",
        )
        .size(16, 8)
        .unit("currency")
        .legend("{{team}}"),
    );
    b.add(
        P::new(
            "timeseries",
            "Revenue per agent (where enabled)",
            format!(
                "sum by (agent) (increase({}[1h]))",
                m("callwatch_agent_revenue_total", "")
            ),
            "Needs privacy.per_agent_metrics = true and the read token.",
        )
        .size(24, 8)
        .unit("currency")
        .legend("{{agent}}"),
    );
    b
}

fn goals(mx: &Matrix, cur: &str) -> Board {
    let sc = r#"scope_kind=~"$scope_kind", scope=~"$scope""#;
    let mut b = Board::new(
        "callwatch-goals",
        "callwatch · Goals and scorecards",
        &["scope_kind", "scope"],
        cur,
    );
    b.add(
        P::new(
            "stat",
            "Primary score",
            format!(
                "min({})",
                m("callwatch_score", &format!(r#"category="primary", {sc}"#))
            ),
            "Weighted attainment of the primary goals (lowest selected scope).",
        )
        .size(6, 6)
        .unit("percentunit"),
    );
    b.add(
        P::new(
            "stat",
            "Sales score",
            format!(
                "min({})",
                m("callwatch_score", &format!(r#"category="sales", {sc}"#))
            ),
            "Weighted attainment of the sales goals, on credited sales only.",
        )
        .size(6, 6)
        .unit("percentunit"),
    );
    b.add(
        P::new(
            "stat",
            "Sales credit withheld",
            format!("sum({})", m("callwatch_guardrail_withheld_revenue", sc)),
            "Revenue not credited because primary goals failed in its interval (the guardrail).",
        )
        .size(6, 6)
        .unit("currency"),
    );
    b.add(
        P::new(
            "stat",
            "Scopes failing the guardrail",
            format!(
                "count({} == 0) or vector(0)",
                m("callwatch_guardrail_met", sc)
            ),
            "Scopes with at least one interval below a primary minimum.",
        )
        .size(6, 6),
    );
    for g in &mx.goals {
        let unit = g.kpi.unit.grafana();
        let title = format!("{} ({})", g.kpi.title, g.id);
        b.add(
            P::new(
                "bargauge",
                title,
                m("callwatch_goal_value", &format!(r#"goal="{}", {sc}"#, g.id)),
                g.why.as_deref().unwrap_or(""),
            )
            .size(8, 6)
            .unit(unit)
            .legend("{{instance}} {{scope_kind}}:{{scope}}")
            .goal(Some(g)),
        );
    }
    b.add(
        P::new(
            "table",
            "In-house and partners, goal by goal",
            m("callwatch_goal_points", r#"scope_kind="partner""#),
            "Attainment points per goal for each partner and the desk's own queues (in_house).",
        )
        .size(24, 10)
        .legend("{{scope}} {{goal}}"),
    );
    b.add(
        P::new(
            "timeseries",
            "Primary and sales score by scope",
            m("callwatch_score", sc),
            "Scores over time.",
        )
        .size(24, 8)
        .unit("percentunit")
        .legend("{{scope_kind}}:{{scope}} {{category}}"),
    );
    b
}

/// The generated files: (path under `dashboards/`, text).
pub fn files(c: &Config) -> Vec<(String, String)> {
    let mx = Matrix::from_config(c);
    let cur = c.sales.currency.as_str();
    [
        overview(&mx, cur),
        backlog(&mx, cur),
        agents(&mx, cur),
        sales(&mx, cur),
        goals(&mx, cur),
    ]
    .into_iter()
    .map(|b| {
        let name = format!("{}.json", b.uid);
        let text = serde_json::to_string_pretty(&b.json()).unwrap_or_default() + "\n";
        (name, text)
    })
    .collect()
}
