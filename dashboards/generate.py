#!/usr/bin/env python3
"""Generates the Grafana dashboards in this folder from one description.

Run `python3 dashboards/generate.py` after editing; `--check` exits 1 if
the committed JSON differs from what this script writes (CI runs it).
Thresholds come from config/callwatch.toml's [targets], so the panels
colour at the same values as the wallboard and the alert rules.
"""
import json
import pathlib
import sys
import tomllib

HERE = pathlib.Path(__file__).resolve().parent
CONFIG = tomllib.loads((HERE.parent / "config" / "callwatch.toml").read_text())
TARGETS = CONFIG["targets"]
DS = {"type": "prometheus", "uid": "${datasource}"}
# Joins queue-level series with their site and team.
INFO = 'on(queue) group_left(site, team) callwatch_queue_info{site=~"$site", team=~"$team", queue=~"$queue"}'


def thresholds(kpi, unit_scale=1.0):
    """Grafana threshold steps for a KPI of the config's [targets]."""
    t = TARGETS[kpi]
    higher = kpi in ("service_level", "conversion", "revenue_today")
    crit, warn = t["critical"] * unit_scale, t["warn"] * unit_scale
    if higher:
        steps = [{"color": "red", "value": None}, {"color": "orange", "value": crit}, {"color": "green", "value": warn}]
    else:
        steps = [{"color": "green", "value": None}, {"color": "orange", "value": warn}, {"color": "red", "value": crit}]
        if warn == crit:
            steps = [{"color": "green", "value": None}, {"color": "red", "value": crit}]
    return {"mode": "absolute", "steps": steps}


class Board:
    def __init__(self, uid, title, vars):
        self.uid, self.title, self.vars = uid, title, vars
        self.panels, self.x, self.y, self.row_h = [], 0, 0, 0

    def panel(self, kind, title, exprs, w=6, h=6, unit=None, kpi=None, legend=None, desc=None, extra=None):
        if self.x + w > 24:
            self.x, self.y = 0, self.y + self.row_h
            self.row_h = 0
        targets = []
        for i, e in enumerate(exprs if isinstance(exprs, list) else [exprs]):
            expr, leg = e if isinstance(e, tuple) else (e, legend)
            t = {"refId": chr(65 + i), "expr": expr, "datasource": DS}
            if leg:
                t["legendFormat"] = leg
            if kind in ("stat", "bargauge", "table"):
                t["instant"] = True
            targets.append(t)
        defaults = {}
        if unit:
            defaults["unit"] = unit
        if kpi:
            scale = 1.0
            defaults["thresholds"] = thresholds(kpi, scale)
            defaults["color"] = {"mode": "thresholds"}
        p = {
            "id": len(self.panels) + 1,
            "type": kind,
            "title": title,
            "datasource": DS,
            "gridPos": {"x": self.x, "y": self.y, "w": w, "h": h},
            "targets": targets,
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {},
        }
        if desc or kpi:
            p["description"] = (desc or "") + (f" (kpi:{kpi})" if kpi else "")
        if kind == "stat":
            p["options"] = {"colorMode": "background", "graphMode": "none", "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
        if extra:
            p.update(extra)
        self.panels.append(p)
        self.x += w
        self.row_h = max(self.row_h, h)

    def json(self):
        var = lambda name, query, label: {
            "name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": query, "refId": "v"}, "definition": query,
            "includeAll": True, "multi": True, "allValue": ".*",
            "current": {"text": "All", "value": "$__all"}, "refresh": 2, "sort": 1,
        }
        tmpl = [{"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
                 "current": {}, "hide": 0}]
        for v in self.vars:
            tmpl.append({
                "site": var("site", "label_values(callwatch_queue_info, site)", "Site"),
                "team": var("team", 'label_values(callwatch_queue_info{site=~"$site"}, team)', "Team"),
                "queue": var("queue", 'label_values(callwatch_queue_info{site=~"$site", team=~"$team"}, queue)', "Queue"),
                "kind": var("kind", "label_values(callwatch_backlog_tasks, kind)", "Task kind"),
                "agent": var("agent", "label_values(callwatch_agent_state, agent)", "Agent"),
            }[v])
        return {
            "uid": self.uid, "title": self.title, "tags": ["callwatch"], "timezone": "browser",
            "schemaVersion": 39, "version": 1, "editable": True, "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"},
            "templating": {"list": tmpl}, "panels": self.panels, "annotations": {"list": []},
        }


def overview():
    b = Board("callwatch-overview", "callwatch · Overview", ["site", "team", "queue"])
    b.panel("stat", "Calls waiting", f"sum(callwatch_queue_calls_waiting * {INFO})", w=4)
    b.panel("stat", "Oldest wait", f"max(callwatch_queue_oldest_wait_seconds * {INFO})", w=4, unit="s", kpi="oldest_wait")
    b.panel("stat", "Service level today", f'min(callwatch_queue_service_level_ratio{{window="today"}} * {INFO})', w=4, unit="percentunit", kpi="service_level")
    b.panel("stat", "Callbacks open", f'sum(callwatch_backlog_tasks{{kind="callback"}} * {INFO})', w=4, kpi="callbacks_open")
    b.panel("stat", "Callbacks overdue", f'sum(callwatch_backlog_overdue_tasks{{kind="callback"}} * {INFO})', w=4, kpi="callbacks_overdue")
    b.panel("stat", "Agents available", 'sum(callwatch_agents{state="available", site=~"$site", team=~"$team"})', w=4)
    b.panel("timeseries", "Service level (1 h) by queue", f"callwatch:queue_service_level:ratio_rate1h * {INFO}", w=12, h=8, unit="percentunit", legend="{{queue}}", kpi="service_level")
    b.panel("timeseries", "Calls waiting by queue", f"callwatch_queue_calls_waiting * {INFO}", w=12, h=8, legend="{{queue}}")
    b.panel("timeseries", "Offered, answered, abandoned (per minute)", [
        (f"sum(rate(callwatch_calls_offered_total[$__rate_interval]) * {INFO}) * 60", "offered"),
        (f"sum(rate(callwatch_calls_answered_total[$__rate_interval]) * {INFO}) * 60", "answered"),
        (f"sum(rate(callwatch_calls_abandoned_total[$__rate_interval]) * {INFO}) * 60", "abandoned"),
    ], w=12, h=8)
    b.panel("bargauge", "Backlog by kind", f"sum by (kind) (callwatch_backlog_tasks * {INFO})", w=12, h=8, legend="{{kind}}")
    b.panel("table", "KPI status by queue", 'callwatch_kpi_status{scope="queue", name=~"$queue"}', w=24, h=8, legend="{{name}} {{kpi}}",
            desc="0 ok, 1 warn, 2 critical, from the config's [targets].")
    return b


def backlog():
    b = Board("callwatch-backlog", "callwatch · Backlog and SLA", ["site", "team", "queue", "kind"])
    k = 'kind=~"$kind"'
    b.panel("stat", "Open", f"sum(callwatch_backlog_tasks{{{k}}} * {INFO})", w=4)
    b.panel("stat", "Overdue", f"sum(callwatch_backlog_overdue_tasks{{{k}}} * {INFO})", w=4, kpi="callbacks_overdue")
    b.panel("stat", "Due soon", f"sum(callwatch_backlog_due_soon_tasks{{{k}}} * {INFO})", w=4)
    b.panel("stat", "Oldest open", f"max(callwatch_backlog_oldest_age_seconds{{{k}}} * {INFO})", w=4, unit="s")
    b.panel("stat", "SLA breaches (24 h)", f"sum(increase(callwatch_task_sla_breaches_total{{{k}}}[24h]) * {INFO})", w=4)
    b.panel("stat", "Callback SLA attainment (4 h)", f"min(callwatch:callback_sla_attainment:ratio_rate4h * {INFO})", w=4, unit="percentunit")
    b.panel("timeseries", "Open and overdue by kind", [
        (f"sum by (kind) (callwatch_backlog_tasks{{{k}}} * {INFO})", "{{kind}} open"),
        (f"sum by (kind) (callwatch_backlog_overdue_tasks{{{k}}} * {INFO})", "{{kind}} overdue"),
    ], w=12, h=8)
    b.panel("timeseries", "Time to next deadline", f"min by (kind, queue) (callwatch_backlog_next_due_seconds{{{k}}} * {INFO})", w=12, h=8, unit="s", legend="{{kind}} {{queue}}")
    b.panel("timeseries", "Completion time p50 / p90", [
        (f"histogram_quantile(0.5, sum by (le, kind) (rate(callwatch_task_completion_seconds_bucket{{{k}}}[$__rate_interval]) * {INFO}))", "{{kind}} p50"),
        (f"histogram_quantile(0.9, sum by (le, kind) (rate(callwatch_task_completion_seconds_bucket{{{k}}}[$__rate_interval]) * {INFO}))", "{{kind}} p90"),
    ], w=12, h=8, unit="s")
    b.panel("timeseries", "SLA attainment (completed met / completed)",
            f'sum by (kind) (rate(callwatch_tasks_completed_total{{{k}, sla="met"}}[1h]) * {INFO}) / sum by (kind) (rate(callwatch_tasks_completed_total{{{k}}}[1h]) * {INFO})',
            w=12, h=8, unit="percentunit", legend="{{kind}}")
    b.panel("bargauge", "Age structure of open tasks", f"sum by (age_band) (callwatch_backlog_tasks_by_age_band{{{k}}} * {INFO})", w=12, h=8, legend="{{age_band}}",
            desc="Open tasks per age band; each task is in one band.")
    b.panel("timeseries", "Callbacks owed and closed (per hour)", [
        (f"sum by (source) (rate(callwatch_callbacks_owed_created_total[1h]) * {INFO}) * 3600", "created: {{source}}"),
        (f"sum by (reason) (rate(callwatch_callbacks_closed_total[1h]) * {INFO}) * 3600", "closed: {{reason}}"),
    ], w=12, h=8)
    return b


def agents():
    b = Board("callwatch-agents", "callwatch · Agents", ["site", "team", "queue"])
    b.panel("bargauge", "Agents by state", 'sum by (state) (callwatch_agents{site=~"$site", team=~"$team"})', w=8, h=8, legend="{{state}}")
    b.panel("timeseries", "Agents by state over time", 'sum by (state) (callwatch_agents{site=~"$site", team=~"$team"})', w=16, h=8, legend="{{state}}")
    b.panel("stat", "AHT (1 h)", f"max(callwatch:aht_seconds:rate1h * {INFO})", w=6, unit="s", kpi="aht")
    for phase in ("talk", "hold", "wrap"):
        b.panel("stat", f"Average {phase} (1 h)",
                f"sum(rate(callwatch_call_{phase}_seconds_sum[1h]) * {INFO}) / sum(rate(callwatch_call_{phase}_seconds_count[1h]) * {INFO})", w=6, unit="s")
    b.panel("timeseries", "Handling time by phase (per contact)", [
        (f"sum(rate(callwatch_call_{p}_seconds_sum[$__rate_interval]) * {INFO}) / sum(rate(callwatch_call_{p}_seconds_count[$__rate_interval]) * {INFO})", p)
        for p in ("talk", "hold", "wrap")
    ], w=12, h=8, unit="s", extra={"options": {"legend": {"displayMode": "table"}}})
    b.panel("timeseries", "Contacts handled per hour (per agent, where enabled)", 'sum by (agent) (rate(callwatch_agent_contacts_handled_total{agent=~".*"}[1h])) * 3600', w=12, h=8, legend="{{agent}}",
            desc="Needs privacy.per_agent_metrics = true.")
    b.panel("timeseries", "Paused agents", 'sum(callwatch_agents{state="paused", site=~"$site", team=~"$team"})', w=12, h=8)
    b.panel("timeseries", "Wait p90 by queue", f"histogram_quantile(0.9, sum by (le, queue) (rate(callwatch_call_wait_seconds_bucket[$__rate_interval]) * {INFO}))", w=12, h=8, unit="s", legend="{{queue}}")
    return b


def sales():
    b = Board("callwatch-sales", "callwatch · Sales", ["site", "team", "queue"])
    b.panel("stat", "Net revenue (24 h)", f"sum(increase(callwatch_revenue_total[24h]) * {INFO}) - sum(increase(callwatch_revenue_cancelled_total[24h]) * {INFO})", w=6, unit="currencyEUR")
    b.panel("stat", "Conversion today (worst queue)", 'min(callwatch_kpi_value{scope="queue", kpi="conversion", name=~"$queue"})', w=6, unit="percentunit", kpi="conversion")
    b.panel("stat", "Revenue today (sum of queues)", 'sum(callwatch_kpi_value{scope="queue", kpi="revenue_today", name=~"$queue"})', w=6, unit="currencyEUR", kpi="revenue_today")
    b.panel("stat", "Cancellations (24 h)", f"sum(increase(callwatch_sales_cancelled_total[24h]) * {INFO})", w=6)
    b.panel("timeseries", "Revenue per hour by queue", f"sum by (queue) (rate(callwatch_revenue_total[1h]) * {INFO}) * 3600", w=12, h=8, unit="currencyEUR", legend="{{queue}}")
    b.panel("timeseries", "Incremental revenue gained and lost (per hour)",
            f"sum by (direction) (rate(callwatch_incremental_revenue_total[1h]) * {INFO}) * 3600", w=12, h=8, unit="currencyEUR", legend="{{direction}}")
    b.panel("bargauge", "Sales by kind (24 h)", f"sum by (kind) (increase(callwatch_sales_total[24h]) * {INFO})", w=8, h=8, legend="{{kind}}")
    b.panel("table", "Per team today", [
        ('callwatch_kpi_value{scope="team", kpi="conversion", name=~"$team"}', "{{name}} conversion"),
        ('callwatch_kpi_value{scope="team", kpi="revenue_today", name=~"$team"}', "{{name}} revenue"),
    ], w=8, h=8)
    b.panel("timeseries", "Team revenue per hour", 'sum by (team) (rate(callwatch_team_revenue_total{team=~"$team"}[1h])) * 3600', w=8, h=8, unit="currencyEUR", legend="{{team}}")
    b.panel("timeseries", "Revenue per agent (where enabled)", "sum by (agent) (increase(callwatch_agent_revenue_total[1h]))", w=24, h=8, unit="currencyEUR", legend="{{agent}}",
            desc="Needs privacy.per_agent_metrics = true.")
    return b


def main():
    out = {f"{b.uid}.json": json.dumps(b.json(), indent=2, ensure_ascii=False) + "\n" for b in (overview(), backlog(), agents(), sales())}
    check = "--check" in sys.argv
    stale = [name for name, text in out.items() if not (HERE / name).exists() or (HERE / name).read_text() != text]
    if check:
        if stale:
            print("stale dashboards (run python3 dashboards/generate.py):", ", ".join(stale))
            sys.exit(1)
        return
    for name, text in out.items():
        (HERE / name).write_text(text)


if __name__ == "__main__":
    main()
