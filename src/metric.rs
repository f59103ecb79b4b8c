//! Every metric callwatch exports: names, help texts, buckets, rendering.
//!
//! Two producers share one `/metrics` response:
//! - the state families are rendered from the read view (`snapshot.rs`)
//!   at scrape time. They are derived from the live state, so ages and
//!   overdue counts are right at the instant of the scrape, amounts are
//!   floats (revenue), and the series of a forgotten agent or queue simply
//!   stop being written. Rendering them directly is also what keeps a
//!   scrape of thousands of agents within tens of milliseconds;
//! - the daemon's own counters (what arrived, what was refused) go through
//!   the `metrics` facade into a `metrics-exporter-prometheus` recorder
//!   owned by this daemon instance (not a process-global one).
//!
//! No label ever carries a call, task, sale or customer id.

use std::fmt::Write as _;
use std::sync::Arc;

use dashmap::DashMap;
use metrics::{Counter, Gauge, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::engine::histogram::Histogram;
use crate::reject::Reason;
use crate::scorecard::Scorecard;
use crate::snapshot::Snapshot;
use crate::view::View;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Counter,
    Gauge,
    Histogram,
}

/// A metric family: its name, type and help text.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    pub name: &'static str,
    pub ty: Type,
    pub help: &'static str,
}

macro_rules! families {
    ($($id:ident = $name:literal, $ty:ident, $help:literal;)*) => {
        $(pub const $id: Family = Family { name: $name, ty: Type::$ty, help: $help };)*
        /// Every family, in exposition order (docs/metrics.md lists them).
        pub const ALL: &[Family] = &[$($id),*];
    };
}

families! {
    QUEUE_WAITING = "callwatch_queue_calls_waiting", Gauge, "Calls waiting in the queue now.";
    QUEUE_OLDEST_WAIT = "callwatch_queue_oldest_wait_seconds", Gauge, "Wait of the longest-waiting call now (0 when none waits).";
    QUEUE_SL_THRESHOLD = "callwatch_queue_sl_threshold_seconds", Gauge, "Service-level threshold configured for the queue.";
    QUEUE_INFO = "callwatch_queue_info", Gauge, "Always 1; the site and team a queue belongs to (join on queue).";
    CALLS_OFFERED = "callwatch_calls_offered_total", Counter, "Inbound calls offered to the queue (transfers into it included).";
    CALLS_ANSWERED = "callwatch_calls_answered_total", Counter, "Inbound calls answered by an agent.";
    CALLS_ANSWERED_IN_SL = "callwatch_calls_answered_in_sl_total", Counter, "Inbound calls answered within the queue's service-level threshold.";
    CALLS_ABANDONED = "callwatch_calls_abandoned_total", Counter, "Inbound calls the caller gave up while waiting.";
    CALLS_EXITED = "callwatch_calls_exited_total", Counter, "Callers who left the queue without an agent other than by hanging up (timeout, key, empty, leaveempty), were turned away before it (full, joinempty, closed), or were closed by a source's resync (resync).";
    CALLS_MISSED = "callwatch_calls_missed_total", Counter, "Rings at an agent that were not taken while the caller waited (Asterisk RINGNOANSWER).";
    CALLS_ABANDONED_SHORT = "callwatch_calls_abandoned_short_total", Counter, "Abandoned calls that waited less than the short-abandon threshold.";
    CALLS_TRANSFERRED_OUT = "callwatch_calls_transferred_out_total", Counter, "Waiting calls transferred to another queue before an answer.";
    CALLS_OUTBOUND = "callwatch_calls_outbound_total", Counter, "Outbound calls placed from the queue.";
    QUEUE_SL = "callwatch_queue_service_level_ratio", Gauge, "Answered within threshold / (answered + abandoned - short abandons + exited by timeout, key, empty or leaveempty); absent while undefined.";
    CALL_WAIT = "callwatch_call_wait_seconds", Histogram, "Wait of answered inbound calls, from offer (or transfer in) to answer.";
    CALL_TALK = "callwatch_call_talk_seconds", Histogram, "Talk time per call, hold excluded.";
    CALL_HOLD = "callwatch_call_hold_seconds", Histogram, "Hold time per call.";
    CALL_WRAP = "callwatch_call_wrap_seconds", Histogram, "After-call work per call.";
    AGENTS = "callwatch_agents", Gauge, "Agents known, by state, team and site.";
    BACKLOG_TASKS = "callwatch_backlog_tasks", Gauge, "Open tasks.";
    BACKLOG_OLDEST = "callwatch_backlog_oldest_age_seconds", Gauge, "Age of the oldest open task (0 when none is open).";
    BACKLOG_OVERDUE = "callwatch_backlog_overdue_tasks", Gauge, "Open tasks past their deadline.";
    BACKLOG_DUE_SOON = "callwatch_backlog_due_soon_tasks", Gauge, "Open tasks not overdue but within the warning lead of their deadline.";
    BACKLOG_NEXT_DUE = "callwatch_backlog_next_due_seconds", Gauge, "Seconds until the earliest open deadline; negative when it has passed.";
    BACKLOG_BY_AGE = "callwatch_backlog_tasks_by_age_band", Gauge, "Open tasks by age band (age_band: 0-15m, 15m-1h, ..., 7d+; each task in one band).";
    TASKS_CREATED = "callwatch_tasks_created_total", Counter, "Tasks created.";
    TASKS_COMPLETED = "callwatch_tasks_completed_total", Counter, "Tasks completed, by whether the deadline was met.";
    TASKS_CANCELLED = "callwatch_tasks_cancelled_total", Counter, "Tasks cancelled.";
    TASK_BREACHES = "callwatch_task_sla_breaches_total", Counter, "Tasks that went past their deadline, counted once at the moment they did.";
    TASK_ATTEMPTS = "callwatch_task_attempts_total", Counter, "Contact attempts on tasks, by result.";
    TASK_COMPLETION = "callwatch_task_completion_seconds", Histogram, "Time from creation to completion of completed tasks.";
    CALLBACKS_CREATED = "callwatch_callbacks_owed_created_total", Counter, "Callbacks owed, by source (requested by event, or abandoned calls).";
    CALLBACKS_CLOSED = "callwatch_callbacks_closed_total", Counter, "Callbacks closed, by reason.";
    SALES = "callwatch_sales_total", Counter, "Sales recorded (cancelled ones included), by kind.";
    REVENUE = "callwatch_revenue_total", Counter, "Revenue (quantity x unit price) of sales recorded, in the configured currency.";
    INCREMENTAL = "callwatch_incremental_revenue_total", Counter, "Incremental revenue (revenue - previous value), gained or lost, as positive amounts.";
    SALES_CANCELLED = "callwatch_sales_cancelled_total", Counter, "Sales cancelled.";
    REVENUE_CANCELLED = "callwatch_revenue_cancelled_total", Counter, "Revenue of cancelled sales.";
    TEAM_SALES = "callwatch_team_sales_total", Counter, "Sales recorded by agents of the team, by kind.";
    TEAM_REVENUE = "callwatch_team_revenue_total", Counter, "Revenue of sales by agents of the team.";
    TEAM_INCREMENTAL = "callwatch_team_incremental_revenue_total", Counter, "Incremental revenue by agents of the team, gained or lost.";
    TEAM_REVENUE_CANCELLED = "callwatch_team_revenue_cancelled_total", Counter, "Revenue of cancelled sales by agents of the team.";
    GOAL_VALUE = "callwatch_goal_value", Gauge, "A goal's KPI over the goal's period, per scope (docs/goals.md); absent without data.";
    GOAL_STATUS = "callwatch_goal_status", Gauge, "A goal's status for the scope: 0 ok, 1 warn, 2 critical (worse than the minimum); absent without data.";
    GOAL_THRESHOLD = "callwatch_goal_threshold", Gauge, "The scope's target, warn and minimum of a goal (after overrides).";
    GOAL_POINTS = "callwatch_goal_points", Gauge, "Attainment points of a goal for the scope: weight x attainment (sales goals: of the credited value).";
    GOAL_WEIGHT = "callwatch_goal_weight", Gauge, "The scope's weight of a goal.";
    SCORE = "callwatch_score", Gauge, "Weighted score of the scope's goals of a category (primary, sales), 0 to 1.";
    GUARDRAIL_MET = "callwatch_guardrail_met", Gauge, "1 when every interval of the period met the guardrail, so all sales were credited.";
    GUARDRAIL_WITHHELD = "callwatch_guardrail_withheld_revenue", Gauge, "Revenue of the period not credited to the sales goals because the primary goals failed.";
    GUARDRAIL_CREDITED = "callwatch_guardrail_credited_revenue", Gauge, "Revenue of the period credited to the sales goals.";
    QA_SAMPLED = "callwatch_qa_sampled_contacts", Gauge, "Contacts in the QA sample of the current period (drawn at random or by a signal; supervisor and qa roles only).";
    QA_EVALUATED = "callwatch_qa_evaluated_contacts", Gauge, "Sampled contacts evaluated.";
    QA_SIGNALS = "callwatch_qa_signals", Gauge, "Integrity signals of the current QA sample period, by team and signal (docs/quality.md; supervisor and qa roles only).";
    QA_OPEN = "callwatch_qa_evaluation_backlog_contacts", Gauge, "Sampled contacts not evaluated yet, by whether they are overdue (quality.sample.evaluate_within).";
    AGENT_STATE = "callwatch_agent_state", Gauge, "1 for the agent's current state (per-agent series; privacy.per_agent_metrics).";
    AGENT_STATE_SECONDS = "callwatch_agent_state_seconds", Gauge, "Time the agent has been in the current state.";
    AGENT_CONTACTS = "callwatch_agent_contacts_handled_total", Counter, "Contacts the agent handled (conversations ended, tasks completed).";
    AGENT_MISSED = "callwatch_agent_missed_calls_total", Counter, "Calls that rang at the agent and were not taken (per-agent series; privacy.per_agent_metrics).";
    AGENT_HANDLE = "callwatch_agent_handle_seconds_total", Counter, "Handling time of the agent by phase (talk, hold, wrap).";
    AGENT_SALES = "callwatch_agent_sales_total", Counter, "Sales the agent recorded.";
    AGENT_REVENUE = "callwatch_agent_revenue_total", Counter, "Revenue of the agent's sales.";
    AGENT_CONVERSION = "callwatch_agent_conversion_ratio", Gauge, "Share of the agent's contacts handled today carrying a sale not cancelled.";
    EVENTS_APPLIED = "callwatch_events_applied_total", Counter, "Events applied to the state.";
    EVENTS_CLAMPED = "callwatch_events_clamped_total", Counter, "Events applied at a later time than their own because they arrived out of order.";
    ENTITIES_CREATED = "callwatch_entities_created_total", Counter, "Queues, agents, teams and sites created on first sight (not in the config).";
    EVENTS_RECEIVED = "callwatch_events_received_total", Counter, "Events received, valid or not, by source.";
    EVENTS_REJECTED = "callwatch_events_rejected_total", Counter, "Events refused, by source and reason.";
    EVENTS_DUPLICATE = "callwatch_events_duplicate_total", Counter, "Events whose id was seen before; acknowledged, not applied again.";
    BUILD_INFO = "callwatch_build_info", Gauge, "Always 1; the version label names the running build.";
    TCP_CLIENTS = "callwatch_tcp_clients", Gauge, "TCP ingest clients connected now.";
    SOURCE_SKIPPED = "callwatch_source_skipped_total", Counter, "Input lines or PBX events that produced no event, by source and reason (passed, unknown, malformed).";
    FEED_CLIENTS = "callwatch_feed_clients", Gauge, "Websocket feed clients connected now.";
    FEED_MESSAGES = "callwatch_feed_messages_total", Counter, "Feed messages sent, by type.";
    FEED_DISCONNECTS = "callwatch_feed_disconnects_total", Counter, "Feed clients gone, by reason (client_closed, too_slow, idle, too_many_clients, ...).";
    STORAGE_ERRORS = "callwatch_storage_errors_total", Counter, "Journal writes or syncs that failed (ingest is refused until a probe write succeeds).";
    CONFIG_RELOADS = "callwatch_config_reload_total", Counter, "Configuration reloads (SIGHUP, POST /api/v1/admin/reload), by result (success, failure: the running configuration stayed).";
    CONFIG_LAST_RELOAD = "callwatch_config_last_reload_success_timestamp_seconds", Gauge, "When the configuration last loaded or reloaded successfully (Unix time).";
    DEADLETTERS_DROPPED = "callwatch_deadletters_dropped_total", Counter, "Dead letters lost, by reason (rotated: overwritten when deadletters.ndjson rotated onto deadletters.1.ndjson at storage.deadletter_max_bytes; queue_full: refusals faster than the file takes them).";
    RECOVERY_SKIPPED = "callwatch_recovery_records_skipped_total", Counter, "Journal records the recoveries of this process could not replay, by reason (torn_tail: an unacknowledged write a crash cut short; damaged, undecodable, missing: docs/design.md#recovery).";
    RECOVERY_STATUS = "callwatch_recovery_last_status", Gauge, "1 for what the last recovery concluded (status: clean, torn_tail, damaged, repaired, failed), 0 for the others; only with a data directory.";
    TCP_DISCONNECTS = "callwatch_tcp_disconnects_total", Counter, "TCP ingest clients the daemon disconnected, by reason.";
    HTTP_CONNECTIONS = "callwatch_http_connections", Gauge, "HTTP connections open now (websockets stop counting once upgraded).";
    HTTP_DISCONNECTS = "callwatch_http_disconnects_total", Counter, "HTTP connections or requests the daemon refused or cut, by reason (too_many_connections, header_timeout, body_timeout, accept_failed, tls_handshake).";
    SOURCE_RECONNECTS = "callwatch_source_reconnects_total", Counter, "Times a source lost its peer (PBX, broker) and connected again, or retried a batch the storage refused, by source.";
    SOURCE_LAG = "callwatch_source_lag_seconds", Gauge, "Receipt time minus the event time of the newest event a source handed in (how far behind its input it is), by source.";
    SOURCE_CORRECTIONS = "callwatch_source_resync_corrections_total", Counter, "State a source set right from what its PBX says, by source and kind (call_started_before_source: a call whose start the source never saw, rebuilt from the PBX's wait and talk figures; member_inferred: a login inferred from a member answering a queue's call; call_exited, call_ended, member_removed, pause_cleared: closed by a resync, docs/sources/asterisk.md; member_added, pause_set: opened by a FreeSWITCH resync from mod_callcenter's lists, docs/sources/freeswitch.md).";
    SOURCE_RECEIPT_TIMED = "callwatch_source_receipt_timed_events_total", Counter, "Events a source had to time by their receipt because the PBX gave no time of its own (AMI without Timestamp: set timestampevents = yes in manager.conf), by source.";
    SOURCE_UNMAPPED = "callwatch_source_unmapped_agents_total", Counter, "Events naming a PBX member that the source's agents table does not list (kept under the PBX's name), by source.";
    SOURCE_PENDING = "callwatch_source_pending_messages", Gauge, "Messages on the stream not yet delivered to this daemon's consumer (JetStream), by source.";
    PUBLISH_BUFFERED = "callwatch_publish_buffered_events", Gauge, "Events the edge publisher holds in its local buffer, not yet acknowledged by the broker.";
    PUBLISH_SENT = "callwatch_publish_sent_total", Counter, "Events the edge publisher had acknowledged by the broker (duplicates included).";
}

/// Writes Prometheus text exposition.
struct Out<'a> {
    buf: &'a mut String,
}

fn escape(v: &str, buf: &mut String) {
    for ch in v.chars() {
        match ch {
            '\\' => buf.push_str("\\\\"),
            '"' => buf.push_str("\\\""),
            '\n' => buf.push_str("\\n"),
            c => buf.push(c),
        }
    }
}

impl Out<'_> {
    fn head(&mut self, f: &Family) {
        let ty = match f.ty {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
            Type::Histogram => "histogram",
        };
        let _ = writeln!(
            self.buf,
            "# HELP {} {}\n# TYPE {} {}",
            f.name, f.help, f.name, ty
        );
    }

    fn labels(&mut self, labels: &[(&str, &str)], extra: Option<(&str, &str)>) {
        let mut first = true;
        for (k, v) in labels.iter().copied().chain(extra) {
            self.buf.push(if first { '{' } else { ',' });
            first = false;
            self.buf.push_str(k);
            self.buf.push_str("=\"");
            escape(v, self.buf);
            self.buf.push('"');
        }
        if !first {
            self.buf.push('}');
        }
    }

    fn sample(&mut self, name: &str, suffix: &str, labels: &[(&str, &str)], value: f64) {
        self.buf.push_str(name);
        self.buf.push_str(suffix);
        self.labels(labels, None);
        let _ = writeln!(self.buf, " {}", Num(value));
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let mut le = String::with_capacity(16);
        for (bound, count) in h.cumulative() {
            le.clear();
            let _ = write!(le, "{}", Num(bound));
            self.buf.push_str(name);
            self.buf.push_str("_bucket");
            self.labels(labels, Some(("le", &le)));
            let _ = writeln!(self.buf, " {count}");
        }
        self.buf.push_str(name);
        self.buf.push_str("_bucket");
        self.labels(labels, Some(("le", "+Inf")));
        let _ = writeln!(self.buf, " {}", h.count());
        self.sample(name, "_sum", labels, h.sum());
        self.sample(name, "_count", labels, h.count() as f64);
    }
}

/// A float in exposition syntax.
struct Num(f64);

impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.0;
        if v.is_nan() {
            f.write_str("NaN")
        } else if v.is_infinite() {
            f.write_str(if v > 0.0 { "+Inf" } else { "-Inf" })
        } else if v == v.trunc() && v.abs() < 1e15 {
            write!(f, "{}", v as i64)
        } else {
            write!(f, "{v}")
        }
    }
}

/// Renders the state families: `snap` is the published snapshot as the
/// reader's role may see it (`privacy::Policy::snapshot`), the rest of
/// `view` supplies histograms and counters. Every family is written with
/// its header even when it has no series yet, and every configured
/// queue, task kind and state has its series from the start.
pub fn render_state(
    view: &View,
    snap: &Snapshot,
    cards: &[Scorecard],
    samples: &[crate::quality::TeamSample],
    signals: &[(String, &'static str, u64)],
    per_agent: bool,
    buf: &mut String,
) {
    let mut o = Out { buf };
    macro_rules! each {
        ($fam:expr, $iter:expr, |$x:ident| $labels:expr, $value:expr) => {{
            o.head(&$fam);
            for $x in $iter {
                o.sample($fam.name, "", &$labels, $value);
            }
        }};
    }
    let qs = &snap.queues;
    each!(
        QUEUE_WAITING,
        qs,
        |q| [("queue", q.name.as_str())],
        q.waiting as f64
    );
    each!(
        QUEUE_OLDEST_WAIT,
        qs,
        |q| [("queue", q.name.as_str())],
        q.oldest_wait_s
    );
    each!(
        QUEUE_SL_THRESHOLD,
        qs,
        |q| [("queue", q.name.as_str())],
        q.sl_threshold_s
    );
    o.head(&QUEUE_INFO);
    for q in qs {
        let team = q.team.as_deref().unwrap_or(crate::engine::NO_TEAM);
        o.sample(
            QUEUE_INFO.name,
            "",
            &[("queue", &q.name), ("site", &q.site), ("team", team)],
            1.0,
        );
    }
    each!(
        CALLS_OFFERED,
        qs,
        |q| [("queue", q.name.as_str())],
        q.totals.counts.offered as f64
    );
    each!(
        CALLS_ANSWERED,
        qs,
        |q| [("queue", q.name.as_str())],
        q.totals.counts.answered as f64
    );
    each!(
        CALLS_ANSWERED_IN_SL,
        qs,
        |q| [("queue", q.name.as_str())],
        q.totals.counts.answered_in_sl as f64
    );
    each!(
        CALLS_ABANDONED,
        qs,
        |q| [("queue", q.name.as_str())],
        q.totals.counts.abandoned as f64
    );
    o.head(&CALLS_EXITED);
    for q in qs {
        for (reason, n) in &q.exits {
            o.sample(
                CALLS_EXITED.name,
                "",
                &[("queue", q.name.as_str()), ("reason", reason)],
                *n as f64,
            );
        }
    }
    each!(
        CALLS_MISSED,
        qs,
        |q| [("queue", q.name.as_str())],
        q.totals.counts.missed as f64
    );
    each!(
        CALLS_ABANDONED_SHORT,
        qs,
        |q| [("queue", q.name.as_str())],
        q.totals.counts.abandoned_short as f64
    );
    each!(
        CALLS_TRANSFERRED_OUT,
        qs,
        |q| [("queue", q.name.as_str())],
        q.totals.counts.transferred_out as f64
    );
    each!(
        CALLS_OUTBOUND,
        qs,
        |q| [("queue", q.name.as_str())],
        q.totals.counts.outbound as f64
    );
    o.head(&QUEUE_SL);
    for q in qs {
        for (window, sl) in [
            ("today", q.today.service_level),
            ("60m", q.last_60m.service_level),
        ] {
            if let Some(v) = sl {
                o.sample(
                    QUEUE_SL.name,
                    "",
                    &[("queue", &q.name), ("window", window)],
                    v,
                );
            }
        }
    }
    for (fam, pick) in [
        (
            CALL_WAIT,
            (|q| &q.wait) as fn(&crate::view::QueueHistograms) -> &Histogram,
        ),
        (CALL_TALK, |q| &q.talk),
        (CALL_HOLD, |q| &q.hold),
        (CALL_WRAP, |q| &q.wrap),
    ] {
        o.head(&fam);
        for q in qs {
            // Handling times of a small group are one person's.
            if fam.name != CALL_WAIT.name && !q.withheld.is_empty() {
                continue;
            }
            if let Ok(i) = view
                .histograms
                .binary_search_by(|h| h.queue.as_str().cmp(&q.name))
            {
                o.histogram(fam.name, &[("queue", &q.name)], pick(&view.histograms[i]));
            }
        }
    }

    o.head(&AGENTS);
    let mut groups: std::collections::BTreeMap<(&str, &str, &str), u64> = Default::default();
    for a in &snap.agents {
        *groups
            .entry((a.state.as_str(), &a.team, &a.site))
            .or_default() += 1;
    }
    for ((state, team, site), n) in groups {
        o.sample(
            AGENTS.name,
            "",
            &[("state", state), ("team", team), ("site", site)],
            n as f64,
        );
    }

    let bl = &snap.backlog;
    let kq =
        |b: &crate::snapshot::BacklogView| [("kind", b.kind.clone()), ("queue", b.queue.clone())];
    macro_rules! backlog {
        ($fam:expr, |$b:ident| $value:expr) => {{
            o.head(&$fam);
            for $b in bl {
                let l = kq($b);
                o.sample(
                    $fam.name,
                    "",
                    &[(l[0].0, &l[0].1), (l[1].0, &l[1].1)],
                    $value,
                );
            }
        }};
    }
    backlog!(BACKLOG_TASKS, |b| b.open as f64);
    backlog!(BACKLOG_OLDEST, |b| b.oldest_age_s);
    backlog!(BACKLOG_OVERDUE, |b| b.overdue as f64);
    backlog!(BACKLOG_DUE_SOON, |b| b.due_soon as f64);
    o.head(&BACKLOG_NEXT_DUE);
    for b in bl {
        if let Some(v) = b.next_due_s {
            o.sample(
                BACKLOG_NEXT_DUE.name,
                "",
                &[("kind", &b.kind), ("queue", &b.queue)],
                v,
            );
        }
    }
    o.head(&BACKLOG_BY_AGE);
    for b in bl {
        // The view's buckets are cumulative ("at most le old"); a gauge
        // must not carry `le`, so each band is the difference.
        let mut below = 0;
        for (i, bucket) in b.by_age.iter().enumerate() {
            o.sample(
                BACKLOG_BY_AGE.name,
                "",
                &[
                    ("kind", &b.kind),
                    ("queue", &b.queue),
                    ("age_band", crate::buckets::AGE_BANDS[i]),
                ],
                bucket.tasks.saturating_sub(below) as f64,
            );
            below = bucket.tasks;
        }
    }
    backlog!(TASKS_CREATED, |b| b.created as f64);
    o.head(&TASKS_COMPLETED);
    for b in bl {
        for (sla, v) in [("met", b.completed_met), ("missed", b.completed_missed)] {
            o.sample(
                TASKS_COMPLETED.name,
                "",
                &[("kind", &b.kind), ("queue", &b.queue), ("sla", sla)],
                v as f64,
            );
        }
    }
    backlog!(TASKS_CANCELLED, |b| b.cancelled as f64);
    backlog!(TASK_BREACHES, |b| b.breaches as f64);
    o.head(&TASK_ATTEMPTS);
    for b in bl {
        for (result, v) in &b.attempts {
            o.sample(
                TASK_ATTEMPTS.name,
                "",
                &[("kind", &b.kind), ("queue", &b.queue), ("result", result)],
                *v as f64,
            );
        }
    }
    o.head(&TASK_COMPLETION);
    for c in &view.completion {
        o.histogram(
            TASK_COMPLETION.name,
            &[("kind", &c.kind), ("queue", &c.queue)],
            &c.histogram,
        );
    }

    o.head(&CALLBACKS_CREATED);
    for q in qs {
        for (source, v) in &q.callbacks.created {
            o.sample(
                CALLBACKS_CREATED.name,
                "",
                &[("queue", &q.name), ("source", source)],
                *v as f64,
            );
        }
    }
    o.head(&CALLBACKS_CLOSED);
    for q in qs {
        for (reason, v) in &q.callbacks.closed {
            o.sample(
                CALLBACKS_CLOSED.name,
                "",
                &[("queue", &q.name), ("reason", reason)],
                *v as f64,
            );
        }
    }

    // Sales of a queue too small to hide a person are left out for
    // roles that may not see one person's figures.
    let sales_qs: Vec<&crate::snapshot::QueueView> =
        qs.iter().filter(|q| q.withheld.is_empty()).collect();
    o.head(&SALES);
    for q in sales_qs.iter() {
        for (kind, v) in &q.sales.by_kind {
            o.sample(
                SALES.name,
                "",
                &[("kind", kind), ("queue", &q.name)],
                *v as f64,
            );
        }
    }
    each!(
        REVENUE,
        sales_qs.iter(),
        |q| [("queue", q.name.as_str())],
        q.sales.revenue
    );
    o.head(&INCREMENTAL);
    for q in sales_qs.iter() {
        o.sample(
            INCREMENTAL.name,
            "",
            &[("queue", &q.name), ("direction", "gain")],
            q.sales.incremental_gain,
        );
        o.sample(
            INCREMENTAL.name,
            "",
            &[("queue", &q.name), ("direction", "loss")],
            q.sales.incremental_loss,
        );
    }
    each!(
        SALES_CANCELLED,
        sales_qs.iter(),
        |q| [("queue", q.name.as_str())],
        q.sales.cancelled as f64
    );
    each!(
        REVENUE_CANCELLED,
        sales_qs.iter(),
        |q| [("queue", q.name.as_str())],
        q.sales.cancelled_revenue
    );

    let ts = &snap.teams;
    o.head(&TEAM_SALES);
    for t in ts {
        for (kind, v) in &t.sales.by_kind {
            o.sample(
                TEAM_SALES.name,
                "",
                &[("team", &t.name), ("kind", kind)],
                *v as f64,
            );
        }
    }
    each!(
        TEAM_REVENUE,
        ts,
        |t| [("team", t.name.as_str())],
        t.sales.revenue
    );
    o.head(&TEAM_INCREMENTAL);
    for t in ts {
        o.sample(
            TEAM_INCREMENTAL.name,
            "",
            &[("team", &t.name), ("direction", "gain")],
            t.sales.incremental_gain,
        );
        o.sample(
            TEAM_INCREMENTAL.name,
            "",
            &[("team", &t.name), ("direction", "loss")],
            t.sales.incremental_loss,
        );
    }
    each!(
        TEAM_REVENUE_CANCELLED,
        ts,
        |t| [("team", t.name.as_str())],
        t.sales.cancelled_revenue
    );

    render_goals(&mut o, cards);
    each!(
        QA_SAMPLED,
        samples,
        |t| [("team", t.team.as_str())],
        t.sampled as f64
    );
    each!(
        QA_EVALUATED,
        samples,
        |t| [("team", t.team.as_str())],
        t.evaluated as f64
    );
    o.head(&QA_SIGNALS);
    for (team, signal, n) in signals {
        o.sample(
            QA_SIGNALS.name,
            "",
            &[("team", team.as_str()), ("signal", signal)],
            *n as f64,
        );
    }
    o.head(&QA_OPEN);
    for t in samples {
        for (overdue, n) in [("false", t.open), ("true", t.overdue)] {
            o.sample(
                QA_OPEN.name,
                "",
                &[("team", t.team.as_str()), ("overdue", overdue)],
                n as f64,
            );
        }
    }

    if per_agent {
        let ags = &snap.agents;
        each!(
            AGENT_STATE,
            ags,
            |a| [("agent", a.agent.as_str()), ("state", a.state.as_str())],
            1.0
        );
        each!(
            AGENT_STATE_SECONDS,
            ags,
            |a| [("agent", a.agent.as_str())],
            a.in_state_s
        );
        each!(
            AGENT_CONTACTS,
            ags,
            |a| [("agent", a.agent.as_str())],
            a.contacts_handled.unwrap_or(0) as f64
        );
        each!(
            AGENT_MISSED,
            ags,
            |a| [("agent", a.agent.as_str())],
            a.missed_calls.unwrap_or(0) as f64
        );
        o.head(&AGENT_HANDLE);
        for a in ags {
            for (phase, v) in [("talk", a.talk_s), ("hold", a.hold_s), ("wrap", a.wrap_s)] {
                o.sample(
                    AGENT_HANDLE.name,
                    "",
                    &[("agent", &a.agent), ("phase", phase)],
                    v.unwrap_or(0.0),
                );
            }
        }
        each!(
            AGENT_SALES,
            ags,
            |a| [("agent", a.agent.as_str())],
            a.sales.as_ref().map_or(0, |s| s.count) as f64
        );
        each!(
            AGENT_REVENUE,
            ags,
            |a| [("agent", a.agent.as_str())],
            a.sales.as_ref().map_or(0.0, |s| s.revenue)
        );
        o.head(&AGENT_CONVERSION);
        for a in ags {
            if let Some(v) = a.today.as_ref().and_then(|t| t.conversion) {
                o.sample(
                    AGENT_CONVERSION.name,
                    "",
                    &[("agent", &a.agent), ("window", "today")],
                    v,
                );
            }
        }
    }

    let c = &view.counters;
    o.head(&EVENTS_APPLIED);
    o.sample(EVENTS_APPLIED.name, "", &[], c.applied as f64);
    o.head(&EVENTS_CLAMPED);
    o.sample(EVENTS_CLAMPED.name, "", &[], c.clamped as f64);
    o.head(&ENTITIES_CREATED);
    for (kind, v) in [
        ("queue", c.created_queues),
        ("agent", c.created_agents),
        ("team", c.created_teams),
        ("site", c.created_sites),
    ] {
        o.sample(ENTITIES_CREATED.name, "", &[("kind", kind)], v as f64);
    }
}

static META: Metadata<'static> =
    Metadata::new("callwatch", metrics::Level::INFO, Some("callwatch::metric"));

/// The daemon's own counters, in a recorder owned by this instance.
/// Feed message types and disconnect reasons, exported at 0 from the start.
const FEED_MESSAGE_TYPES: [&str; 5] = ["snapshot", "delta", "alert", "error", "alert_built"];
const FEED_DISCONNECT_REASONS: [&str; 8] = [
    "client_closed",
    "too_slow",
    "idle",
    "too_many_clients",
    "bad_message",
    "gone",
    "shutdown",
    "encode",
];
const HTTP_DISCONNECT_REASONS: [&str; 5] = [
    "too_many_connections",
    "header_timeout",
    "body_timeout",
    "accept_failed",
    "tls_handshake",
];

pub struct Telemetry {
    process: metrics_process::Collector,
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    received: DashMap<&'static str, Counter>,
    rejected: DashMap<(&'static str, Reason), Counter>,
    disconnects: DashMap<&'static str, Counter>,
    duplicate: Counter,
    tcp_clients: Gauge,
    storage_errors: Counter,
    feed_clients: Gauge,
    skipped: DashMap<(&'static str, &'static str), Counter>,
    /// `SOURCE_CORRECTIONS` by (source, kind).
    corrections: DashMap<(&'static str, &'static str), Counter>,
    /// Gauges with one label, keyed by (family, value).
    gauges: DashMap<(&'static str, &'static str), metrics::Gauge>,
    /// Counters with one label, keyed by (family, value).
    labelled: DashMap<(&'static str, &'static str), Counter>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Telemetry")
    }
}

impl Telemetry {
    pub fn new() -> Arc<Telemetry> {
        let recorder = PrometheusBuilder::new().build_recorder();
        for fam in [
            EVENTS_RECEIVED,
            EVENTS_REJECTED,
            EVENTS_DUPLICATE,
            TCP_DISCONNECTS,
            STORAGE_ERRORS,
            FEED_MESSAGES,
            FEED_DISCONNECTS,
            SOURCE_SKIPPED,
            SOURCE_RECONNECTS,
            SOURCE_CORRECTIONS,
            SOURCE_RECEIPT_TIMED,
            SOURCE_UNMAPPED,
            PUBLISH_SENT,
            RECOVERY_SKIPPED,
            HTTP_DISCONNECTS,
            CONFIG_RELOADS,
            DEADLETTERS_DROPPED,
        ] {
            recorder.describe_counter(fam.name.into(), None, fam.help.into());
        }
        for fam in [
            BUILD_INFO,
            TCP_CLIENTS,
            FEED_CLIENTS,
            SOURCE_LAG,
            SOURCE_PENDING,
            PUBLISH_BUFFERED,
            RECOVERY_STATUS,
            HTTP_CONNECTIONS,
            CONFIG_LAST_RELOAD,
        ] {
            recorder.describe_gauge(fam.name.into(), None, fam.help.into());
        }
        let build = recorder.register_gauge(
            &Key::from_parts(
                BUILD_INFO.name,
                vec![Label::new("version", env!("CARGO_PKG_VERSION"))],
            ),
            &META,
        );
        build.set(1.0);
        let duplicate = recorder.register_counter(&Key::from_name(EVENTS_DUPLICATE.name), &META);
        duplicate.increment(0);
        let tcp_clients = recorder.register_gauge(&Key::from_name(TCP_CLIENTS.name), &META);
        tcp_clients.set(0.0);
        let feed_clients = recorder.register_gauge(&Key::from_name(FEED_CLIENTS.name), &META);
        feed_clients.set(0.0);
        let storage_errors = recorder.register_counter(&Key::from_name(STORAGE_ERRORS.name), &META);
        storage_errors.increment(0);
        let handle = recorder.handle();
        let process = metrics_process::Collector::default();
        metrics::with_local_recorder(&recorder, || process.describe());
        let t = Telemetry {
            process,
            recorder,
            handle,
            received: DashMap::new(),
            rejected: DashMap::new(),
            disconnects: DashMap::new(),
            duplicate,
            tcp_clients,
            storage_errors,
            feed_clients,
            labelled: DashMap::new(),
            skipped: DashMap::new(),
            gauges: DashMap::new(),
            corrections: DashMap::new(),
        };
        // Counters exist at 0 from the start, so rates and alerts over
        // them have data before the first event or refusal.
        for source in ["http", "tcp"] {
            t.source_started(source);
            for reason in Reason::ALL {
                t.rejected_n(source, reason, 0);
            }
        }
        for kind in FEED_MESSAGE_TYPES {
            t.one_label_n(&FEED_MESSAGES, "type", kind, 0);
        }
        for reason in FEED_DISCONNECT_REASONS {
            t.one_label_n(&FEED_DISCONNECTS, "reason", reason, 0);
        }
        for reason in HTTP_DISCONNECT_REASONS {
            t.one_label_n(&HTTP_DISCONNECTS, "reason", reason, 0);
        }
        t.http_connections(0.0);
        Arc::new(t)
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &META)
    }

    pub fn received(&self, source: &'static str, n: u64) {
        self.received
            .entry(source)
            .or_insert_with(|| {
                self.counter(EVENTS_RECEIVED.name, vec![Label::new("source", source)])
            })
            .increment(n);
    }

    pub fn rejected(&self, source: &'static str, reason: Reason) {
        self.rejected_n(source, reason, 1);
    }

    fn rejected_n(&self, source: &'static str, reason: Reason, n: u64) {
        self.rejected
            .entry((source, reason))
            .or_insert_with(|| {
                self.counter(
                    EVENTS_REJECTED.name,
                    vec![
                        Label::new("source", source),
                        Label::new("reason", reason.as_str()),
                    ],
                )
            })
            .increment(n);
    }

    pub fn duplicates(&self, n: u64) {
        self.duplicate.increment(n);
    }

    fn one_label(&self, fam: &Family, label: &'static str, value: &'static str) {
        self.one_label_n(fam, label, value, 1);
    }

    fn one_label_n(&self, fam: &Family, label: &'static str, value: &'static str, n: u64) {
        self.labelled
            .entry((fam.name, value))
            .or_insert_with(|| self.counter(fam.name, vec![Label::new(label, value)]))
            .increment(n);
    }

    pub fn skipped(&self, source: &'static str, reason: &'static str) {
        self.skipped
            .entry((source, reason))
            .or_insert_with(|| {
                self.counter(
                    SOURCE_SKIPPED.name,
                    vec![Label::new("source", source), Label::new("reason", reason)],
                )
            })
            .increment(1);
    }

    pub fn feed_clients(&self, delta: f64) {
        self.feed_clients.increment(delta);
    }

    pub fn feed_message(&self, kind: &'static str) {
        self.one_label(&FEED_MESSAGES, "type", kind);
    }

    pub fn feed_disconnect(&self, reason: &'static str) {
        self.one_label(&FEED_DISCONNECTS, "reason", reason);
    }

    pub fn storage_error(&self) {
        self.storage_errors.increment(1);
    }

    /// What a recovery found: records skipped by reason, and its status.
    pub fn recovered(&self, report: &crate::store::Report) {
        for (reason, n) in &report.skipped {
            self.one_label_n(&RECOVERY_SKIPPED, "reason", reason, *n);
        }
        for s in crate::store::Status::ALL {
            let v = if s == report.status { 1.0 } else { 0.0 };
            self.gauge(&RECOVERY_STATUS, "status", s.as_str(), v);
        }
    }

    /// Dead letters lost, by reason.
    pub fn deadletters_dropped(&self, reason: &'static str, n: u64) {
        self.one_label_n(&DEADLETTERS_DROPPED, "reason", reason, n);
    }

    /// A configuration reload's result (and, on success, its time).
    pub fn config_reloaded(&self, ok: bool, now_ms: i64) {
        self.one_label(
            &CONFIG_RELOADS,
            "result",
            if ok { "success" } else { "failure" },
        );
        if ok {
            self.config_loaded(now_ms);
        }
    }

    /// The configuration loaded at start: the reload counters exist at 0.
    pub fn config_loaded(&self, now_ms: i64) {
        for r in ["success", "failure"] {
            self.one_label_n(&CONFIG_RELOADS, "result", r, 0);
        }
        self.recorder
            .register_gauge(&Key::from_name(CONFIG_LAST_RELOAD.name), &META)
            .set(now_ms as f64 / 1000.0);
    }

    /// An HTTP connection or request refused or cut, by reason.
    pub fn http_disconnected(&self, reason: &'static str) {
        self.one_label(&HTTP_DISCONNECTS, "reason", reason);
    }

    pub fn http_connections(&self, delta: f64) {
        self.recorder
            .register_gauge(&Key::from_name(HTTP_CONNECTIONS.name), &META)
            .increment(delta);
    }

    pub fn tcp_clients(&self, delta: f64) {
        self.tcp_clients.increment(delta);
    }

    /// A source's peer came back (or a refused batch is retried).
    pub fn reconnected(&self, source: &'static str) {
        self.one_label(&SOURCE_RECONNECTS, "source", source);
    }

    /// State a source corrected from its PBX's view, by kind.
    pub fn corrected(&self, source: &'static str, kind: &'static str, n: u64) {
        self.corrections
            .entry((source, kind))
            .or_insert_with(|| {
                self.counter(
                    SOURCE_CORRECTIONS.name,
                    vec![Label::new("source", source), Label::new("kind", kind)],
                )
            })
            .increment(n);
    }

    /// Events naming a member missing from the source's agent table.
    pub fn unmapped_agents(&self, source: &'static str, n: u64) {
        self.one_label_n(&SOURCE_UNMAPPED, "source", source, n);
    }

    /// Events timed by their receipt (the PBX gave no time).
    pub fn receipt_timed(&self, source: &'static str, n: u64) {
        self.one_label_n(&SOURCE_RECEIPT_TIMED, "source", source, n);
    }

    /// Registers a source's counters at 0, so rates have data at once.
    pub fn source_started(&self, source: &'static str) {
        self.received(source, 0);
        self.one_label_n(&SOURCE_RECONNECTS, "source", source, 0);
    }

    fn gauge(&self, fam: &Family, label: &'static str, value: &'static str, v: f64) {
        self.gauges
            .entry((fam.name, value))
            .or_insert_with(|| {
                self.recorder.register_gauge(
                    &Key::from_parts(fam.name, vec![Label::new(label, value)]),
                    &META,
                )
            })
            .set(v);
    }

    pub fn source_lag(&self, source: &'static str, seconds: f64) {
        self.gauge(&SOURCE_LAG, "source", source, seconds);
    }

    pub fn source_pending(&self, source: &'static str, messages: u64) {
        self.gauge(&SOURCE_PENDING, "source", source, messages as f64);
    }

    /// Events in the edge publisher's buffer, unsent.
    pub fn publish_buffered(&self, buffered: u64) {
        self.recorder
            .register_gauge(&Key::from_name(PUBLISH_BUFFERED.name), &META)
            .set(buffered as f64);
    }

    /// Events the broker acknowledged to the edge publisher.
    pub fn publish_sent(&self, sent: u64) {
        self.recorder
            .register_counter(&Key::from_name(PUBLISH_SENT.name), &META)
            .increment(sent);
    }

    pub fn disconnected(&self, reason: &'static str) {
        self.disconnects
            .entry(reason)
            .or_insert_with(|| {
                self.counter(TCP_DISCONNECTS.name, vec![Label::new("reason", reason)])
            })
            .increment(1);
    }

    /// Appends the daemon's own families and the `process_*` ones
    /// (CPU, memory, open files, threads; read from /proc at each scrape).
    pub fn render(&self, buf: &mut String) {
        metrics::with_local_recorder(&self.recorder, || self.process.collect());
        buf.push_str(&self.handle.render());
    }
}

/// The labels of each family, for the documentation table.
pub fn labels_of(f: &Family) -> &'static str {
    match f.name {
        "callwatch_queue_service_level_ratio" => "queue, window (today, 60m)",
        "callwatch_queue_info" => "queue, site, team",
        "callwatch_calls_exited_total" => {
            "queue, reason (timeout, key, empty, leaveempty, full, joinempty, closed, resync)"
        }
        n if n.starts_with("callwatch_queue_") || n.starts_with("callwatch_calls_") => "queue",
        n if n.starts_with("callwatch_call_") => "queue, le",
        "callwatch_agents" => "state, team, site",
        "callwatch_tasks_completed_total" => "kind, queue, sla (met, missed)",
        "callwatch_task_attempts_total" => "kind, queue, result",
        "callwatch_task_completion_seconds" => "kind, queue, le",
        "callwatch_backlog_tasks_by_age_band" => "kind, queue, age_band (0-15m, 15m-1h, 1h-4h, 4h-8h, 8h-1d, 1d-2d, 2d-4d, 4d-7d, 7d+)",
        "callwatch_callbacks_owed_created_total" => "queue, source (requested, abandoned)",
        "callwatch_callbacks_closed_total" => "queue, reason (customer_called_back, reached_outbound, completed, unreachable, cancelled)",
        n if n.starts_with("callwatch_backlog_") || n.starts_with("callwatch_task") => {
            "kind, queue"
        }
        "callwatch_sales_total" => "kind, queue",
        "callwatch_incremental_revenue_total" => "queue, direction (gain, loss)",
        "callwatch_revenue_total"
        | "callwatch_sales_cancelled_total"
        | "callwatch_revenue_cancelled_total" => "queue",
        "callwatch_team_sales_total" => "team, kind",
        "callwatch_team_incremental_revenue_total" => "team, direction",
        n if n.starts_with("callwatch_team_") => "team",
        "callwatch_goal_threshold" => {
            "scope_kind (site, team, queue, partner), scope, goal, kpi, category, level (target, warn, minimum)"
        }
        n if n.starts_with("callwatch_goal_") => {
            "scope_kind (site, team, queue, partner), scope, goal, kpi, category (primary, sales)"
        }
        "callwatch_score" => "scope_kind, scope, category (primary, sales)",
        "callwatch_qa_evaluation_backlog_contacts" => "team, overdue (true, false)",
        "callwatch_qa_signals" => "team, signal (cancellations, conversion, downgrades, short_contact, no_own_contact, outside_login, repeat_customer)",
        n if n.starts_with("callwatch_qa_") => "team",
        n if n.starts_with("callwatch_guardrail_") => "scope_kind, scope",
        "callwatch_agent_state" => "agent, state",
        "callwatch_agent_handle_seconds_total" => "agent, phase (talk, hold, wrap)",
        "callwatch_agent_conversion_ratio" => "agent, window (today)",
        n if n.starts_with("callwatch_agent_") => "agent",
        "callwatch_entities_created_total" => "kind (queue, agent, team, site)",
        "callwatch_events_received_total"
        | "callwatch_source_reconnects_total"
        | "callwatch_source_lag_seconds"
        | "callwatch_source_pending_messages"
        | "callwatch_source_receipt_timed_events_total"
        | "callwatch_source_unmapped_agents_total" => "source",
        "callwatch_events_rejected_total" | "callwatch_source_skipped_total" => "source, reason",
        "callwatch_source_resync_corrections_total" => "source, kind",
        "callwatch_build_info" => "version",
        "callwatch_tcp_disconnects_total"
        | "callwatch_feed_disconnects_total"
        | "callwatch_http_disconnects_total" => "reason",
        "callwatch_feed_messages_total" => "type",
        "callwatch_config_reload_total" => "result (success, failure)",
        "callwatch_deadletters_dropped_total" => "reason (rotated, queue_full)",
        "callwatch_recovery_records_skipped_total" => {
            "reason (torn_tail, damaged, undecodable, missing)"
        }
        "callwatch_recovery_last_status" => "status (clean, torn_tail, damaged, repaired, failed)",
        _ => "",
    }
}

/// The family table of docs/metrics.md (a test keeps the doc in sync).
pub fn doc_table() -> String {
    let mut s = String::new();
    for f in ALL {
        let ty = match f.ty {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
            Type::Histogram => "histogram",
        };
        let _ = writeln!(s, "| `{}` | {ty} | {} | {} |", f.name, labels_of(f), f.help);
    }
    s
}

/// The scorecards: one series per scope and goal (labels `scope_kind`,
/// `scope`, `goal`, `kpi`, `category`), the scores and the guardrail.
fn render_goals(o: &mut Out, cards: &[Scorecard]) {
    fn labels<'a>(
        c: &'a Scorecard,
        g: &'a crate::scorecard::GoalCard,
    ) -> [(&'static str, &'a str); 5] {
        [
            ("scope_kind", c.kind.as_str()),
            ("scope", c.name.as_str()),
            ("goal", g.goal.as_str()),
            ("kpi", g.kpi),
            ("category", g.category.as_str()),
        ]
    }
    o.head(&GOAL_VALUE);
    for c in cards {
        for g in &c.goals {
            if let Some(v) = g.value {
                o.sample(GOAL_VALUE.name, "", &labels(c, g), v);
            }
        }
    }
    o.head(&GOAL_STATUS);
    for c in cards {
        for g in &c.goals {
            if let Some(l) = g.status.level() {
                o.sample(GOAL_STATUS.name, "", &labels(c, g), l as f64);
            }
        }
    }
    o.head(&GOAL_THRESHOLD);
    for c in cards {
        for g in &c.goals {
            for (level, v) in [
                ("target", g.target),
                ("warn", g.warn),
                ("minimum", g.minimum),
            ] {
                let l = labels(c, g);
                o.sample(
                    GOAL_THRESHOLD.name,
                    "",
                    &[l[0], l[1], l[2], l[3], l[4], ("level", level)],
                    v,
                );
            }
        }
    }
    o.head(&GOAL_POINTS);
    for c in cards {
        for g in &c.goals {
            if let Some(p) = g.points {
                o.sample(GOAL_POINTS.name, "", &labels(c, g), p);
            }
        }
    }
    o.head(&GOAL_WEIGHT);
    for c in cards {
        for g in &c.goals {
            o.sample(GOAL_WEIGHT.name, "", &labels(c, g), g.weight);
        }
    }
    o.head(&SCORE);
    for c in cards {
        for (cat, v) in [("primary", c.primary_score), ("sales", c.sales_score)] {
            if let Some(v) = v {
                o.sample(
                    SCORE.name,
                    "",
                    &[
                        ("scope_kind", c.kind.as_str()),
                        ("scope", &c.name),
                        ("category", cat),
                    ],
                    v,
                );
            }
        }
    }
    fn scope(c: &Scorecard) -> [(&'static str, &str); 2] {
        [("scope_kind", c.kind.as_str()), ("scope", c.name.as_str())]
    }
    o.head(&GUARDRAIL_MET);
    for c in cards {
        o.sample(
            GUARDRAIL_MET.name,
            "",
            &scope(c),
            if c.guardrail.met { 1.0 } else { 0.0 },
        );
    }
    o.head(&GUARDRAIL_WITHHELD);
    for c in cards {
        o.sample(
            GUARDRAIL_WITHHELD.name,
            "",
            &scope(c),
            c.guardrail.withheld_revenue,
        );
    }
    o.head(&GUARDRAIL_CREDITED);
    for c in cards {
        o.sample(
            GUARDRAIL_CREDITED.name,
            "",
            &scope(c),
            c.guardrail.credited_revenue,
        );
    }
}
