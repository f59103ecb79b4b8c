//! Prometheus rules generated from the goal matrix (`callwatch rules`).
//!
//! One alert per goal with `alert = true`, its thresholds written out per
//! scope (an override becomes its own clause, so the rule shows exactly
//! the number that pages), the operational alerts (daemon down, no
//! ingest, refusals, storage, callbacks due with too few agents), the
//! recording rules the dashboards share, and a promtool unit test with a
//! firing and a quiet case for every alert. The shipped files under
//! `config/prometheus/` are this module's output for the shipped
//! configuration; a test holds them equal.
//!
//! Every expression keeps `job` and `instance` (or aggregates them away
//! on purpose), so one Prometheus can watch many callwatch instances,
//! and selects with `[goals.alerts] selector`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::config::Config;
use crate::goal::{Goal, Matrix, Scope};
use crate::kpi::{Better, ScopeKind};

/// The generated files: (path under `config/prometheus/`, text).
pub fn files(c: &Config) -> Vec<(&'static str, String)> {
    let m = Matrix::from_config(c);
    let g = Gen::new(c, &m);
    vec![
        ("rules.yml", g.recording()),
        ("alerts.yml", g.alerts()),
        ("tests/alerts_test.yml", g.tests()),
    ]
}

struct Gen<'a> {
    c: &'a Config,
    m: &'a Matrix,
    sel: String,
    runbook: String,
}

/// A goal alert's clauses: scopes with one minimum each; `None` scopes
/// is "every other scope" (the goal's own minimum).
struct Clause {
    minimum: f64,
    scopes: Option<Vec<String>>,
}

/// `CallwatchGoalServiceLevel` for `service_level`.
pub fn alert_name(goal: &str) -> String {
    let camel: String = goal
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    format!("CallwatchGoal{camel}")
}

fn op(b: Better) -> &'static str {
    match b {
        Better::Higher => "<",
        Better::Lower => ">",
    }
}

/// A value clearly worse than `minimum` (for the firing test case),
/// exactly representable so promtool and Rust print it the same.
fn worse(minimum: f64, b: Better) -> f64 {
    let step = if minimum.abs() >= 8.0 { 1.0 } else { 0.0625 };
    match b {
        Better::Higher => minimum - step,
        Better::Lower => minimum + step,
    }
}

fn num(v: f64) -> String {
    format!("{v}")
}

impl<'a> Gen<'a> {
    fn new(c: &'a Config, m: &'a Matrix) -> Gen<'a> {
        Gen {
            c,
            m,
            sel: c.goals.alerts.selector.trim().to_string(),
            runbook: c.goals.alerts.runbook_base.clone(),
        }
    }

    /// `{a="b", <selector>}` (the braces included).
    fn s(&self, extra: &str) -> String {
        match (extra.is_empty(), self.sel.is_empty()) {
            (true, true) => String::new(),
            (true, false) => format!("{{{}}}", self.sel),
            (false, true) => format!("{{{extra}}}"),
            (false, false) => format!("{{{extra}, {}}}", self.sel),
        }
    }

    fn link(&self, anchor: &str) -> String {
        format!("{}#{anchor}", self.runbook)
    }

    /// The scopes of `kind` named in the configuration, each with its
    /// chain of parents, as the daemon resolves them.
    fn configured(&self, kind: ScopeKind) -> Vec<(String, Vec<Scope>)> {
        let c = self.c;
        let site_partner = |site: &str| c.sites.get(site).and_then(|s| s.partner.clone());
        let team_site = |team: &str| {
            c.teams
                .get(team)
                .and_then(|t| t.site.clone())
                .unwrap_or_else(|| c.defaults.site.clone())
        };
        let team_partner = |team: &str, site: &str| {
            c.teams
                .get(team)
                .and_then(|t| t.partner.clone())
                .or_else(|| site_partner(site))
        };
        match kind {
            ScopeKind::Queue => c
                .queues
                .iter()
                .map(|q| {
                    let site = q.site.clone().unwrap_or_else(|| c.defaults.site.clone());
                    let mut chain = vec![Scope::new(ScopeKind::Queue, &q.name)];
                    let partner = match &q.team {
                        Some(t) => {
                            chain.push(Scope::new(ScopeKind::Team, t));
                            team_partner(t, &site)
                        }
                        None => site_partner(&site),
                    };
                    if let Some(p) = partner {
                        chain.push(Scope::new(ScopeKind::Partner, &p));
                    }
                    chain.push(Scope::new(ScopeKind::Site, &site));
                    (q.name.clone(), chain)
                })
                .collect(),
            ScopeKind::Team => c
                .teams
                .keys()
                .map(|t| {
                    let site = team_site(t);
                    let mut chain = vec![Scope::new(ScopeKind::Team, t)];
                    if let Some(p) = team_partner(t, &site) {
                        chain.push(Scope::new(ScopeKind::Partner, &p));
                    }
                    chain.push(Scope::new(ScopeKind::Site, &site));
                    (t.clone(), chain)
                })
                .collect(),
            ScopeKind::Site => std::iter::once(c.defaults.site.clone())
                .chain(c.sites.keys().cloned())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .map(|s| {
                    let mut chain = vec![Scope::new(ScopeKind::Site, &s)];
                    if let Some(p) = site_partner(&s) {
                        chain.push(Scope::new(ScopeKind::Partner, &p));
                    }
                    (s, chain)
                })
                .collect(),
            ScopeKind::Partner => crate::config::goals::partners(c)
                .into_iter()
                .map(|p| (p.to_string(), vec![Scope::new(ScopeKind::Partner, p)]))
                .collect(),
            // No agent series, so no per-agent rules.
            ScopeKind::Agent => Vec::new(),
        }
    }

    fn clauses(&self, g: &Goal, kind: ScopeKind) -> Vec<Clause> {
        let mut by_min: BTreeMap<String, (f64, Vec<String>)> = BTreeMap::new();
        for (name, chain) in self.configured(kind) {
            let (t, _) = g.for_chain(&chain);
            if t.minimum != g.thresholds.minimum {
                by_min
                    .entry(num(t.minimum))
                    .or_insert((t.minimum, Vec::new()))
                    .1
                    .push(name);
            }
        }
        let mut out = vec![Clause {
            minimum: g.thresholds.minimum,
            scopes: None,
        }];
        out.extend(by_min.into_values().map(|(minimum, scopes)| Clause {
            minimum,
            scopes: Some(scopes),
        }));
        out
    }

    fn goal_expr(&self, g: &Goal, kind: ScopeKind) -> String {
        let clauses = self.clauses(g, kind);
        let special: Vec<String> = clauses
            .iter()
            .filter_map(|c| c.scopes.clone())
            .flatten()
            .collect();
        let base = format!(r#"goal="{}", scope_kind="{}""#, g.id, kind.as_str());
        clauses
            .iter()
            .map(|c| {
                let scope = match &c.scopes {
                    None if special.is_empty() => String::new(),
                    None => format!(r#", scope!~"{}""#, special.join("|")),
                    Some(s) => format!(r#", scope=~"{}""#, s.join("|")),
                };
                format!(
                    "callwatch_goal_value{} {} {}",
                    self.s(&format!("{base}{scope}")),
                    op(g.kpi.better),
                    num(c.minimum)
                )
            })
            .collect::<Vec<_>>()
            .join("\n          or\n          ")
    }

    fn recording(&self) -> String {
        let s = |x: &str| self.s(x);
        let by = "job, instance, queue";
        let mut o = String::from(
            "# Generated by `callwatch rules` from the goal matrix; do not edit.\n\
             # Recording rules: the queries the dashboards and alerts share.\n\
             groups:\n  - name: callwatch.rules\n    rules:\n",
        );
        let _ = write!(
            o,
            "      # Service level over the last hour, default formula (short abandons excluded,
      # callers who left by a timeout, an exit key or an empty queue counted as not in time).
      - record: callwatch:queue_service_level:ratio_rate1h
        expr: |
          sum by ({by}) (increase(callwatch_calls_answered_in_sl_total{s0}[1h]))
          /
          (
            sum by ({by}) (increase(callwatch_calls_answered_total{s0}[1h]))
            + sum by ({by}) (increase(callwatch_calls_abandoned_total{s0}[1h]))
            - sum by ({by}) (increase(callwatch_calls_abandoned_short_total{s0}[1h]))
            + sum by ({by}) (increase(callwatch_calls_exited_total{left}[1h]))
          ) > -1
      # Share of callbacks completed by their deadline, over 4 hours.
      - record: callwatch:callback_sla_attainment:ratio_rate4h
        expr: |
          sum by ({by}) (increase(callwatch_tasks_completed_total{met}[4h]))
          /
          sum by ({by}) (increase(callwatch_tasks_completed_total{cb}[4h])) > -1
      # How long the most overdue callback of a queue is past its deadline (0 when none is).
      - record: callwatch:callbacks_overdue_oldest_seconds:max
        expr: |
          clamp_min(-min by ({by}) (callwatch_backlog_next_due_seconds{cb}), 0)
      # Average handling time (talk + hold + wrap) per contact over an hour.
      - record: callwatch:aht_seconds:rate1h
        expr: |
          (
            sum by ({by}) (rate(callwatch_call_talk_seconds_sum{s0}[1h]))
            + sum by ({by}) (rate(callwatch_call_hold_seconds_sum{s0}[1h]))
            + sum by ({by}) (rate(callwatch_call_wrap_seconds_sum{s0}[1h]))
          )
          / sum by ({by}) (rate(callwatch_call_wrap_seconds_count{s0}[1h])) > -1
      - record: callwatch:agents_available:sum
        expr: sum by (job, instance, site, team) (callwatch_agents{avail})
      - record: callwatch:events_received:rate5m
        expr: sum by (job, instance) (rate(callwatch_events_received_total{s0}[5m]))
      - record: callwatch:events_rejected:rate5m
        expr: sum by (job, instance, reason) (rate(callwatch_events_rejected_total{s0}[5m]))
",
            s0 = s(""),
            left = s(r#"reason!~"full|joinempty|closed|resync""#),
            met = s(r#"kind="callback", sla="met""#),
            cb = s(r#"kind="callback""#),
            avail = s(r#"state="available""#),
        );
        o
    }

    fn alerts(&self) -> String {
        let mut o = String::from(
            "# Generated by `callwatch rules` from the goal matrix; do not edit.\n\
             # One alert per goal with `alert = true` (its per-scope minimums\n\
             # written out), then the operational alerts. Severities: critical\n\
             # (page), warning (ticket), info.\n\
             groups:\n  - name: callwatch.goals\n    rules:\n",
        );
        for g in self.m.goals.iter().filter(|g| g.alert.is_some()) {
            let Some(a) = g.alert else { continue };
            let kind = alert_scope(g);
            let _ = write!(
                o,
                "      - alert: {name}
        expr: |
          {expr}
        for: {after}
        labels:
          severity: {sev}
        annotations:
          summary: \"{title} worse than its minimum\"
          description: \"Goal {id} ({title}) is {{{{ $value }}}} in {{{{ $labels.scope_kind }}}} {{{{ $labels.scope }}}} on {{{{ $labels.instance }}}}, worse than its minimum; see the goal sheet at /goals.\"
          runbook_url: \"{link}\"
",
                name = alert_name(&g.id),
                expr = self.goal_expr(g, kind),
                after = humantime_serde::re::humantime::format_duration(a.after),
                sev = a.severity.as_str(),
                title = g.kpi.title,
                id = g.id,
                link = self.link(&format!("goal-{}", g.id.replace('_', "-"))),
            );
        }
        let al = &self.c.goals.alerts;
        let _ = write!(
            o,
            "  - name: callwatch.operations
    rules:
      - alert: CallwatchCallbacksDueSoonFewAgents
        expr: |
          (
            sum by (job, instance, queue) (callwatch_backlog_due_soon_tasks{cb}) >= {due}
          )
          * on (job, instance, queue) group_left (site, team) callwatch_queue_info{s0}
          and on (job, instance, site, team)
          (callwatch:agents_available:sum < {agents})
        for: 5m
        labels:
          severity: critical
        annotations:
          summary: \"Callbacks coming due with too few agents available\"
          description: \"{{{{ $value }}}} callbacks in {{{{ $labels.queue }}}} are due soon while fewer than {agents} agents of team {{{{ $labels.team }}}} are available.\"
          runbook_url: \"{l1}\"

      - alert: CallwatchDown
        expr: up{s0} == 0
        for: 2m
        labels:
          severity: critical
        annotations:
          summary: \"callwatch is down\"
          description: \"Prometheus cannot scrape callwatch on {{{{ $labels.instance }}}}: wallboards and alerts are blind.\"
          runbook_url: \"{l2}\"

      - alert: CallwatchNotIngesting
        expr: |
          sum by (job, instance) (increase(callwatch_events_received_total{s0}[15m])) == 0
          and on (job, instance) up{s0} == 1
        for: 5m
        labels:
          severity: warning
        annotations:
          summary: \"callwatch received no events for 15 minutes\"
          description: \"No event arrived at {{{{ $labels.instance }}}} from any source. If the desk is open, a source (PBX, integration) is broken.\"
          runbook_url: \"{l3}\"

      - alert: CallwatchIngestRejectionsRising
        expr: |
          sum by (job, instance) (rate(callwatch_events_rejected_total{s0}[10m]))
          / sum by (job, instance) (rate(callwatch_events_received_total{s0}[10m]))
          > 0.05
        for: 10m
        labels:
          severity: warning
        annotations:
          summary: \"callwatch refuses more than 5 % of incoming events\"
          description: \"{{{{ $value | humanizePercentage }}}} of the events received by {{{{ $labels.instance }}}} are refused; see callwatch_events_rejected_total by reason and the dead letters.\"
          runbook_url: \"{l4}\"

      - alert: CallwatchStorageFailing
        expr: increase(callwatch_storage_errors_total{s0}[5m]) > 0
        labels:
          severity: critical
        annotations:
          summary: \"callwatch cannot write its journal\"
          description: \"Ingest at {{{{ $labels.instance }}}} is refused (senders get 503 / ERR storage) until the journal can be written again, e.g. after freeing disk space.\"
          runbook_url: \"{l5}\"

      - alert: CallwatchRecoveryLostRecords
        expr: max by (job, instance) (callwatch_recovery_last_status{lossy}) == 1
        labels:
          severity: critical
        annotations:
          summary: \"callwatch started on a damaged data directory\"
          description: \"The last recovery of {{{{ $labels.instance }}}} read past damage, was repaired or failed: acknowledged events may be missing from its state. /readyz and the log name the records lost; copies are in the quarantine directory.\"
          runbook_url: \"{l6}\"
",
            lossy = self.s(r#"status=~"damaged|repaired|failed""#),
            l6 = self.link("recovery-lost-records"),
            cb = self.s(r#"kind="callback""#),
            s0 = self.s(""),
            due = al.due_soon_callbacks,
            agents = al.min_available_agents,
            l1 = self.link("callbacks-due-soon-few-agents"),
            l2 = self.link("callwatch-down"),
            l3 = self.link("callwatch-not-ingesting"),
            l4 = self.link("ingest-rejections-rising"),
            l5 = self.link("storage-failing"),
        );
        o
    }

    /// The series labels a test scrape carries: `job` and `instance`
    /// from the selector where it names them.
    fn test_labels(&self) -> String {
        let job = self
            .sel
            .split(',')
            .find_map(|m| m.trim().strip_prefix("job=\""))
            .map(|j| j.trim_end_matches('"').to_string())
            .unwrap_or_else(|| "callwatch".into());
        format!(r#"instance="cw",job="{job}""#)
    }

    fn tests(&self) -> String {
        let l = self.test_labels();
        let job = l
            .split("job=\"")
            .nth(1)
            .map(|j| j.trim_end_matches('"').to_string())
            .unwrap_or_default();
        let mut o = String::from(
            "# Generated by `callwatch rules` from the goal matrix; do not edit.\n\
             # promtool test rules config/prometheus/tests/alerts_test.yml\n\
             # Every alert fires on its scenario and stays quiet on the one beside it.\n\
             rule_files:\n  - ../rules.yml\n  - ../alerts.yml\n\nevaluation_interval: 1m\n\ntests:\n",
        );
        for g in self.m.goals.iter().filter(|g| g.alert.is_some()) {
            let Some(a) = g.alert else { continue };
            let kind = alert_scope(g);
            let mins = (a.after.as_secs() / 60).max(1);
            // Each clause's scope sits exactly at its minimum (equal is not
            // worse: quiet), then just beyond it (firing).
            let h = mins + 3;
            let mut series = String::new();
            let mut expected = String::new();
            for (i, c) in self.clauses(g, kind).into_iter().enumerate() {
                let scope = match &c.scopes {
                    Some(s) => s[0].clone(),
                    None => format!("t_other_{i}"),
                };
                let bad = worse(c.minimum, g.kpi.better);
                let _ = writeln!(
                    series,
                    "      - series: 'callwatch_goal_value{{{l},category=\"{cat}\",goal=\"{id}\",kpi=\"{kpi}\",scope=\"{scope}\",scope_kind=\"{k}\"}}'\n        values: '{min}x{h} {bad}x{h}'",
                    cat = g.category.as_str(),
                    id = g.id,
                    kpi = g.kpi.id,
                    k = kind.as_str(),
                    min = num(c.minimum),
                    bad = num(bad),
                );
                let _ = write!(
                    expected,
                    "          - exp_labels:
              severity: {sev}
              instance: cw
              job: {job}
              category: {cat}
              goal: {id}
              kpi: {kpi}
              scope: {scope}
              scope_kind: {k}
            exp_annotations:
              summary: \"{title} worse than its minimum\"
              description: \"Goal {id} ({title}) is {v} in {k} {scope} on cw, worse than its minimum; see the goal sheet at /goals.\"
              runbook_url: \"{link}\"
",
                    sev = a.severity.as_str(),
                    cat = g.category.as_str(),
                    id = g.id,
                    kpi = g.kpi.id,
                    k = kind.as_str(),
                    title = g.kpi.title,
                    v = num(bad),
                    link = self.link(&format!("goal-{}", g.id.replace('_', "-"))),
                );
            }
            let _ = write!(
                o,
                "  - name: goal {id} below its minimum
    interval: 1m
    input_series:
{series}    alert_rule_test:
      - eval_time: {quiet}m
        alertname: {name}
        exp_alerts: []
      - eval_time: {at}m
        alertname: {name}
        exp_alerts:
{expected}
",
                id = g.id,
                name = alert_name(&g.id),
                quiet = mins + 1,
                at = h + mins + 1,
            );
        }
        o.push_str(&self.operational_tests(&l, &job));
        o
    }

    fn operational_tests(&self, l: &str, job: &str) -> String {
        let al = &self.c.goals.alerts;
        let due = al.due_soon_callbacks + 1;
        format!(
            "  - name: callbacks due soon while few agents are available
    interval: 1m
    input_series:
      - series: 'callwatch_backlog_due_soon_tasks{{{l},kind=\"callback\",queue=\"orders\"}}'
        values: '{due}x20'
      - series: 'callwatch_backlog_due_soon_tasks{{{l},kind=\"callback\",queue=\"service\"}}'
        values: '{due}x20'
      - series: 'callwatch_queue_info{{{l},queue=\"orders\",site=\"hq\",team=\"sales\"}}'
        values: '1x20'
      - series: 'callwatch_queue_info{{{l},queue=\"service\",site=\"hq\",team=\"service\"}}'
        values: '1x20'
      - series: 'callwatch_agents{{{l},site=\"hq\",state=\"available\",team=\"sales\"}}'
        values: '{few}x20'
      - series: 'callwatch_agents{{{l},site=\"hq\",state=\"available\",team=\"service\"}}'
        values: '{many}x20'
    alert_rule_test:
      - eval_time: 2m
        alertname: CallwatchCallbacksDueSoonFewAgents
        exp_alerts: []
      - eval_time: 10m
        alertname: CallwatchCallbacksDueSoonFewAgents
        exp_alerts:
          - exp_labels:
              severity: critical
              instance: cw
              job: {job}
              queue: orders
              site: hq
              team: sales
            exp_annotations:
              summary: \"Callbacks coming due with too few agents available\"
              description: \"{due} callbacks in orders are due soon while fewer than {agents} agents of team sales are available.\"
              runbook_url: \"{l1}\"

  - name: callwatch down
    interval: 1m
    input_series:
      - series: 'up{{instance=\"cw\",job=\"{job}\"}}'
        values: '1 1 0 0 0 0'
      - series: 'up{{instance=\"cw2\",job=\"{job}\"}}'
        values: '1 1 1 1 1 1'
    alert_rule_test:
      - eval_time: 3m
        alertname: CallwatchDown
        exp_alerts: []
      - eval_time: 5m
        alertname: CallwatchDown
        exp_alerts:
          - exp_labels:
              severity: critical
              instance: cw
              job: {job}
            exp_annotations:
              summary: \"callwatch is down\"
              description: \"Prometheus cannot scrape callwatch on cw: wallboards and alerts are blind.\"
              runbook_url: \"{l2}\"

  - name: callwatch not ingesting
    interval: 1m
    input_series:
      - series: 'callwatch_events_received_total{{instance=\"cw\",job=\"{job}\",source=\"tcp\"}}'
        values: '0+10x10 100x30'
      - series: 'callwatch_events_received_total{{instance=\"cw2\",job=\"{job}\",source=\"tcp\"}}'
        values: '0+10x40'
      - series: 'up{{instance=\"cw\",job=\"{job}\"}}'
        values: '1x40'
      - series: 'up{{instance=\"cw2\",job=\"{job}\"}}'
        values: '1x40'
    alert_rule_test:
      - eval_time: 20m
        alertname: CallwatchNotIngesting
        exp_alerts: []
      - eval_time: 35m
        alertname: CallwatchNotIngesting
        exp_alerts:
          - exp_labels:
              severity: warning
              instance: cw
              job: {job}
            exp_annotations:
              summary: \"callwatch received no events for 15 minutes\"
              description: \"No event arrived at cw from any source. If the desk is open, a source (PBX, integration) is broken.\"
              runbook_url: \"{l3}\"

  - name: ingest rejections rising
    interval: 1m
    input_series:
      - series: 'callwatch_events_received_total{{instance=\"cw\",job=\"{job}\",source=\"http\"}}'
        values: '0+100x40'
      - series: 'callwatch_events_rejected_total{{instance=\"cw\",job=\"{job}\",source=\"http\",reason=\"missing_field\"}}'
        values: '0+1x10 10+20x30'
    alert_rule_test:
      - eval_time: 10m
        alertname: CallwatchIngestRejectionsRising
        exp_alerts: []
      - eval_time: 35m
        alertname: CallwatchIngestRejectionsRising
        exp_alerts:
          - exp_labels:
              severity: warning
              instance: cw
              job: {job}
            exp_annotations:
              summary: \"callwatch refuses more than 5 % of incoming events\"
              description: \"20% of the events received by cw are refused; see callwatch_events_rejected_total by reason and the dead letters.\"
              runbook_url: \"{l4}\"

  - name: storage failing
    interval: 1m
    input_series:
      - series: 'callwatch_storage_errors_total{{instance=\"cw\",job=\"{job}\"}}'
        values: '0 0 0 0 0 0 0 0 0 0 1 1 1'
    alert_rule_test:
      - eval_time: 5m
        alertname: CallwatchStorageFailing
        exp_alerts: []
      - eval_time: 11m
        alertname: CallwatchStorageFailing
        exp_alerts:
          - exp_labels:
              severity: critical
              instance: cw
              job: {job}
            exp_annotations:
              summary: \"callwatch cannot write its journal\"
              description: \"Ingest at cw is refused (senders get 503 / ERR storage) until the journal can be written again, e.g. after freeing disk space.\"
              runbook_url: \"{l5}\"

  - name: recovery lost records
    interval: 1m
    input_series:
      - series: 'callwatch_recovery_last_status{{instance=\"cw\",job=\"{job}\",status=\"clean\"}}'
        values: '1 1 1 0 0'
      - series: 'callwatch_recovery_last_status{{instance=\"cw\",job=\"{job}\",status=\"damaged\"}}'
        values: '0 0 0 1 1'
      - series: 'callwatch_recovery_last_status{{instance=\"cw\",job=\"{job}\",status=\"torn_tail\"}}'
        values: '0 0 0 0 0'
    alert_rule_test:
      - eval_time: 2m
        alertname: CallwatchRecoveryLostRecords
        exp_alerts: []
      - eval_time: 4m
        alertname: CallwatchRecoveryLostRecords
        exp_alerts:
          - exp_labels:
              severity: critical
              instance: cw
              job: {job}
            exp_annotations:
              summary: \"callwatch started on a damaged data directory\"
              description: \"The last recovery of cw read past damage, was repaired or failed: acknowledged events may be missing from its state. /readyz and the log name the records lost; copies are in the quarantine directory.\"
              runbook_url: \"{l6}\"
",
            l6 = self.link("recovery-lost-records"),
            agents = al.min_available_agents,
            few = al.min_available_agents.saturating_sub(1),
            many = al.min_available_agents + 2,
            l1 = self.link("callbacks-due-soon-few-agents"),
            l2 = self.link("callwatch-down"),
            l3 = self.link("callwatch-not-ingesting"),
            l4 = self.link("ingest-rejections-rising"),
            l5 = self.link("storage-failing"),
        )
    }
}

/// The scope kind a goal's alert watches: queues by default (where the
/// waiting callers and the callbacks are), or `alert_scope`.
fn alert_scope(g: &Goal) -> ScopeKind {
    g.alert_scope.unwrap_or(ScopeKind::Queue)
}
