//! Engine unit tests: one per definition in docs/metrics.md, plus
//! duplicates and out-of-order events.

use super::*;
use crate::config::Config;
use crate::event::{decode, AgentStatus};
use crate::reject::Reason;
use crate::snapshot::{self, Snapshot, Status};

const CONFIG: &str = r#"
[defaults]
site = "hq"
timezone = "Europe/Berlin"
[limits]
max_task_kinds = 6
[retention]
agent_after_logout = "1h"
[[queues]]
name = "orders"
team = "sales"
[tasks.kinds.callback]
sla = "4h"
due_soon = "30m"
[targets.service_level]
target = 0.8
warn = 0.75
critical = 0.5
[targets.revenue_today]
target = 1000
warn = 500
critical = 100
"#;

/// 2026-03-02 08:00:00 Berlin (07:00 UTC), a Monday.
const T0: i64 = 1_772_434_800_000;
const S: i64 = 1000;

fn engine() -> Engine {
    engine_with(CONFIG)
}

fn engine_with(config: &str) -> Engine {
    let cfg = Config::parse(config, "test").expect("parses");
    cfg.validate().expect("valid");
    Engine::new(settings::Settings::from_config(&cfg))
}

fn ts(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("in range")
        .to_rfc3339()
}

/// An engine fed events with generated ids (shared with the callback
/// tests, which add their own helpers to it).
pub(super) struct Feed {
    pub(super) e: Engine,
    n: u64,
}

impl Feed {
    fn new() -> Feed {
        Feed { e: engine(), n: 0 }
    }

    pub(super) fn with_config(config: &str) -> Feed {
        Feed {
            e: engine_with(config),
            n: 0,
        }
    }

    /// Applies `{"type":…, fields}` at `t`; returns the outcome.
    pub(super) fn try_at(
        &mut self,
        t: i64,
        ty: &str,
        fields: &str,
    ) -> Result<Applied, crate::reject::Rejection> {
        self.n += 1;
        let sep = if fields.is_empty() { "" } else { "," };
        let line = format!(
            r#"{{"id":"e{}","ts":"{}","type":"{ty}"{sep}{fields}}}"#,
            self.n,
            ts(t)
        );
        let ev = decode(line.as_bytes()).expect("test event decodes");
        self.e.apply(&ev, None)
    }

    pub(super) fn at(&mut self, t: i64, ty: &str, fields: &str) {
        if let Err(r) = self.try_at(t, ty, fields) {
            panic!("{ty} {fields} rejected: {r}");
        }
    }

    /// Lets event time pass to `t` (a heartbeat): retention and breaches
    /// follow the engine's clock.
    pub(super) fn pass(&mut self, t: i64) {
        self.at(t, "heartbeat", "");
    }

    pub(super) fn snap(&self, now: i64) -> Snapshot {
        snapshot::build(&self.e, now)
    }
}

fn queue<'a>(s: &'a Snapshot, name: &str) -> &'a snapshot::QueueView {
    s.queues
        .iter()
        .find(|q| q.name == name)
        .expect("queue exists")
}

fn agent<'a>(s: &'a Snapshot, id: &str) -> &'a snapshot::AgentView {
    s.agents
        .iter()
        .find(|a| a.agent == id)
        .expect("agent exists")
}

fn backlog<'a>(s: &'a Snapshot, kind: &str, q: &str) -> &'a snapshot::BacklogView {
    s.backlog
        .iter()
        .find(|b| b.kind == kind && b.queue == q)
        .expect("backlog row exists")
}

#[test]
fn service_level_counts_and_waiting() {
    let mut f = Feed::new();
    for c in ["c1", "c2", "c3", "c4", "c5"] {
        f.at(
            T0,
            "call_offered",
            &format!(r#""call":"{c}","queue":"orders""#),
        );
    }
    f.at(T0 + 10 * S, "call_answered", r#""call":"c1","agent":"a1""#);
    f.at(T0 + 20 * S, "call_answered", r#""call":"c2","agent":"a2""#); // exactly at threshold: in SL
    f.at(T0 + 30 * S, "call_answered", r#""call":"c3","agent":"a3""#);
    f.at(T0 + 3 * S, "call_abandoned", r#""call":"c4""#); // short abandon
    let s = f.snap(T0 + 95 * S);
    let q = queue(&s, "orders");
    assert_eq!(q.waiting, 1);
    assert_eq!(q.oldest_wait_s, 95.0, "c5 waits since T0");
    let c = &q.totals.counts;
    assert_eq!(
        (
            c.offered,
            c.answered,
            c.answered_in_sl,
            c.abandoned,
            c.abandoned_short
        ),
        (5, 3, 2, 1, 1)
    );
    // 2 / (3 + 1 - 1)
    assert_eq!(q.today.service_level, Some(2.0 / 3.0));
    assert_eq!(q.last_60m.service_level, Some(2.0 / 3.0));
    let kpi = &q.kpis["service_level"];
    assert_eq!(
        kpi.status,
        Status::Warn,
        "0.667 is below warn 0.75, above critical 0.5"
    );
}

/// Issue 17: callers who left without an agent other than by hanging
/// up count against the service level, not as abandons; callers turned
/// away are counted by reason and never offered.
#[test]
fn exits_and_refusals_are_counted_apart_from_abandons() {
    let mut f = Feed::new();
    for c in ["c1", "c2", "c3"] {
        f.at(
            T0,
            "call_offered",
            &format!(r#""call":"{c}","queue":"orders""#),
        );
    }
    f.at(T0 + 10 * S, "call_answered", r#""call":"c1","agent":"a1""#);
    f.at(
        T0 + 300 * S,
        "call_exited",
        r#""call":"c2","reason":"timeout""#,
    );
    f.at(T0 + 40 * S, "call_exited", r#""call":"c3","reason":"key""#);
    f.at(
        T0 + 50 * S,
        "call_refused",
        r#""queue":"orders","reason":"full""#,
    );
    let before = f.e.digest();
    // A refusal of a call that is waiting, and an exit of an answered
    // call, are refused and change nothing.
    f.at(
        T0 + 60 * S,
        "call_offered",
        r#""call":"c4","queue":"orders""#,
    );
    let before_c4 = f.e.digest();
    assert_ne!(before, before_c4);
    let r = f
        .try_at(
            T0 + 61 * S,
            "call_refused",
            r#""queue":"orders","reason":"full","call":"c4""#,
        )
        .expect_err("c4 is waiting");
    assert!(r.to_string().contains("send call_exited"), "{r}");
    let r = f
        .try_at(
            T0 + 62 * S,
            "call_exited",
            r#""call":"c1","reason":"timeout""#,
        )
        .expect_err("c1 is connected");
    assert!(r.to_string().contains("is connected"), "{r}");
    assert_eq!(f.e.digest(), before_c4);
    let s = f.snap(T0 + 62 * S);
    let q = queue(&s, "orders");
    let c = &q.totals.counts;
    assert_eq!(
        (c.offered, c.answered, c.abandoned, c.exited, c.refused),
        (4, 1, 0, 2, 1)
    );
    assert_eq!(
        (q.exits["timeout"], q.exits["key"], q.exits["full"]),
        (1, 1, 1)
    );
    // 1 / (1 + 0 + 2): the exits were not answered in time.
    assert_eq!(q.totals.service_level, Some(1.0 / 3.0));
    // The oldest wait: c4 waits; the timeout's 300 s wait is in the minute.
    assert_eq!(q.waiting, 1);
}

#[test]
fn exit_and_refusal_reasons_are_checked_when_decoding() {
    for (line, want) in [
        (r#""type":"call_exited","call":"c1""#, "reason"),
        (
            r#""type":"call_exited","call":"c1","reason":"bored""#,
            "is not one of",
        ),
        (
            r#""type":"call_exited","call":"c1","reason":"full""#,
            "send call_refused",
        ),
        (
            r#""type":"call_refused","queue":"q","reason":"timeout""#,
            "send call_exited",
        ),
        (r#""type":"call_refused","reason":"full""#, "queue"),
    ] {
        let line = format!(r#"{{"id":"x","ts":"2026-03-02T08:00:00+01:00",{line}}}"#);
        let err = decode(line.as_bytes()).expect_err(&line);
        assert!(err.to_string().contains(want), "{line}: {err}");
    }
}

#[test]
fn handling_time_parts_and_agent_states() {
    let mut f = Feed::new();
    f.at(
        T0,
        "agent_login",
        r#""agent":"a1","name":"Anna","team":"sales""#,
    );
    f.at(T0, "call_offered", r#""call":"c1","queue":"orders""#);
    f.at(T0 + 5 * S, "call_answered", r#""call":"c1","agent":"a1""#);
    assert_eq!(agent(&f.snap(T0 + 6 * S), "a1").state, AgentStatus::OnCall);
    f.at(T0 + 35 * S, "call_hold", r#""call":"c1""#);
    assert_eq!(agent(&f.snap(T0 + 36 * S), "a1").state, AgentStatus::OnHold);
    f.at(T0 + 55 * S, "call_resume", r#""call":"c1""#);
    f.at(T0 + 125 * S, "call_ended", r#""call":"c1""#);
    let s = f.snap(T0 + 130 * S);
    let a = agent(&s, "a1");
    assert_eq!(a.state, AgentStatus::WrapUp);
    assert_eq!(a.in_state_s, 5.0);
    assert_eq!((a.talk_s, a.hold_s), (Some(100.0), Some(20.0)));
    f.at(T0 + 155 * S, "wrap_ended", r#""call":"c1""#);
    let s = f.snap(T0 + 160 * S);
    let a = agent(&s, "a1");
    assert_eq!(a.state, AgentStatus::Available);
    assert_eq!((a.wrap_s, a.contacts_handled), (Some(30.0), Some(1)));
    // Available from login (T0) to answer (T0+5 s), and again for 5 s.
    assert_eq!(a.idle_s_today, Some(10.0));
    let q = queue(&s, "orders");
    assert_eq!(q.today_contacts.aht_s, Some(150.0));
    assert_eq!(
        (
            q.today_contacts.talk_s,
            q.today_contacts.hold_s,
            q.today_contacts.wrap_s
        ),
        (Some(100.0), Some(20.0), Some(30.0))
    );
    let eq = &f.e.queues["orders"];
    assert_eq!((eq.wait.count(), eq.wait.sum()), (1, 5.0));
    assert_eq!(
        (eq.talk.sum(), eq.hold.sum(), eq.wrap.sum()),
        (100.0, 20.0, 30.0)
    );
}

#[test]
fn stated_talk_and_hold_win() {
    let mut f = Feed::new();
    f.at(T0, "call_offered", r#""call":"c1","queue":"orders""#);
    f.at(T0 + S, "call_answered", r#""call":"c1","agent":"a1""#);
    f.at(
        T0 + 100 * S,
        "call_ended",
        r#""call":"c1","talk_s":80.5,"hold_s":12"#,
    );
    let a = agent(&f.snap(T0 + 100 * S), "a1").clone();
    assert_eq!((a.talk_s, a.hold_s), (Some(80.5), Some(12.0)));
}

#[test]
fn pause_reason_and_time_in_state() {
    let mut f = Feed::new();
    f.at(T0, "agent_login", r#""agent":"a1","team":"sales""#);
    f.at(
        T0 + 60 * S,
        "agent_state",
        r#""agent":"a1","state":"paused","reason":"lunch""#,
    );
    let s = f.snap(T0 + 660 * S);
    let a = agent(&s, "a1");
    assert_eq!(
        (a.state, a.reason.as_deref()),
        (AgentStatus::Paused, Some("lunch"))
    );
    assert_eq!(
        (a.in_state_s, a.paused_s_today, a.idle_s_today),
        (600.0, Some(600.0), Some(60.0))
    );
}

#[test]
fn transfers_move_calls_between_queues_and_agents() {
    let mut f = Feed::new();
    f.at(T0, "call_offered", r#""call":"c1","queue":"orders""#);
    f.at(
        T0 + 10 * S,
        "call_transferred",
        r#""call":"c1","to_queue":"service""#,
    );
    f.at(T0 + 15 * S, "call_answered", r#""call":"c1","agent":"a1""#);
    f.at(
        T0 + 45 * S,
        "call_transferred",
        r#""call":"c1","to_agent":"a2""#,
    );
    let s = f.snap(T0 + 50 * S);
    assert_eq!(agent(&s, "a1").state, AgentStatus::Available);
    assert_eq!(agent(&s, "a1").talk_s, Some(30.0));
    assert_eq!(agent(&s, "a2").state, AgentStatus::OnCall);
    let orders = queue(&s, "orders");
    assert_eq!(
        (
            orders.totals.counts.offered,
            orders.totals.counts.transferred_out
        ),
        (1, 1)
    );
    assert_eq!(
        orders.today.service_level, None,
        "transfers are not in the SL denominator"
    );
    let service = queue(&s, "service");
    assert_eq!(
        (
            service.totals.counts.offered,
            service.totals.counts.answered_in_sl
        ),
        (1, 1)
    );
    f.at(T0 + 65 * S, "call_ended", r#""call":"c1""#);
    f.at(T0 + 70 * S, "wrap_ended", r#""call":"c1""#);
    let s = f.snap(T0 + 70 * S);
    assert_eq!(agent(&s, "a2").talk_s, Some(20.0));
    assert_eq!(agent(&s, "a2").contacts_handled, Some(1));
    assert_eq!(agent(&s, "a1").contacts_handled, Some(0));
    assert_eq!(queue(&s, "service").today_contacts.talk_s, Some(50.0));
}

#[test]
fn backlog_deadlines_overdue_and_breaches() {
    let mut f = Feed::new();
    f.at(
        T0,
        "task_created",
        r#""task":"k1","kind":"callback","queue":"orders","customer":"C-1""#,
    );
    f.at(
        T0,
        "task_created",
        r#""task":"k2","kind":"callback","queue":"orders""#,
    );
    let due = ts(T0 + 3600 * S);
    f.at(
        T0,
        "task_created",
        &format!(r#""task":"k3","kind":"offer","queue":"orders","due":"{due}""#),
    );
    // Callback SLA 4 h, due soon from 3 h 30 m.
    let s = f.snap(T0 + 3 * 3600 * S);
    let b = backlog(&s, "callback", "orders");
    assert_eq!((b.open, b.overdue, b.due_soon, b.breaches), (2, 0, 0, 0));
    assert_eq!(b.oldest_age_s, 10800.0);
    assert_eq!(b.next_due_s, Some(3600.0));
    let s = f.snap(T0 + (3 * 3600 + 1800) * S);
    assert_eq!(
        backlog(&s, "callback", "orders").due_soon,
        2,
        "due soon is inclusive of the lead"
    );
    // The explicit due of the offer wins over any SLA. A breach is judged
    // on the engine's clock: a read alone sees it overdue, not breached.
    let o = backlog(&f.snap(T0 + 3600 * S + 1), "offer", "orders").clone();
    assert_eq!((o.overdue, o.breaches), (1, 0));
    f.pass(T0 + 3600 * S + 1);
    let o = backlog(&f.snap(T0 + 3600 * S + 1), "offer", "orders").clone();
    assert_eq!((o.overdue, o.breaches), (1, 1));
    // Exactly at the deadline: not yet overdue; one ms later: overdue.
    let at_due = T0 + 4 * 3600 * S;
    assert_eq!(backlog(&f.snap(at_due), "callback", "orders").overdue, 0);
    f.pass(at_due + S);
    let s = f.snap(at_due + S);
    let b = backlog(&s, "callback", "orders");
    assert_eq!((b.overdue, b.breaches), (2, 2));
    assert_eq!(b.next_due_s, Some(-1.0));
    // Completing late keeps the breach counted once.
    f.at(
        at_due + 60 * S,
        "task_completed",
        r#""task":"k1","agent":"a1""#,
    );
    let b = backlog(&f.snap(at_due + 61 * S), "callback", "orders").clone();
    assert_eq!(
        (
            b.open,
            b.overdue,
            b.breaches,
            b.completed_missed,
            b.completed_met
        ),
        (1, 1, 2, 1, 0)
    );
    f.at(at_due + 70 * S, "task_cancelled", r#""task":"k2""#);
    let b = backlog(&f.snap(at_due + 71 * S), "callback", "orders").clone();
    assert_eq!((b.open, b.breaches, b.cancelled), (0, 2, 1));
    let st = &f.e.task_stats[&(0u8, Text::from("orders"))];
    assert_eq!(st.completion.sum(), (4 * 3600 + 60) as f64);
}

#[test]
fn a_breach_on_the_engine_clock_is_not_undone_by_an_earlier_completion() {
    let mut f = Feed::new();
    f.at(
        T0,
        "task_created",
        r#""task":"k1","kind":"callback","queue":"orders""#,
    );
    let late_read = T0 + 5 * 3600 * S;
    let before = f.e.save().expect("saves");
    let b = backlog(&f.snap(late_read), "callback", "orders").clone();
    assert_eq!((b.overdue, b.breaches), (1, 0), "a read decides nothing");
    assert_eq!(
        f.e.save().expect("saves"),
        before,
        "reads never change state"
    );
    f.pass(late_read);
    assert_eq!(
        backlog(&f.snap(late_read), "callback", "orders").breaches,
        1
    );
    // The completion, stamped before the deadline, arrives afterwards.
    f.at(
        T0 + 3600 * S,
        "task_completed",
        r#""task":"k1","agent":"a1""#,
    );
    let b = backlog(&f.snap(late_read), "callback", "orders").clone();
    assert_eq!(
        (b.completed_met, b.breaches),
        (1, 1),
        "the counter never goes down"
    );
}

#[test]
fn completed_in_time_is_met_and_attempts_are_counted() {
    let mut f = Feed::new();
    f.at(
        T0,
        "task_created",
        r#""task":"k1","kind":"offer","queue":"orders""#,
    );
    f.at(
        T0 + 60 * S,
        "task_attempted",
        r#""task":"k1","agent":"a1","result":"no_answer""#,
    );
    f.at(T0 + 130 * S, "task_completed", r#""task":"k1""#);
    let s = f.snap(T0 + 200 * S);
    let b = backlog(&s, "offer", "orders");
    assert_eq!(
        (b.completed_met, b.breaches, b.attempts["no_answer"]),
        (1, 0, 1)
    );
    assert_eq!(
        agent(&s, "a1").contacts_handled,
        Some(1),
        "the attempting agent handled it"
    );
    // A callback is settled by reaching the customer: no completion needed.
    f.at(
        T0,
        "task_created",
        r#""task":"k2","kind":"callback","queue":"orders""#,
    );
    f.at(
        T0 + 120 * S,
        "task_attempted",
        r#""task":"k2","agent":"a1","result":"reached""#,
    );
    let r = f.try_at(T0 + 130 * S, "task_completed", r#""task":"k2""#);
    assert_eq!(r.map_err(|r| r.reason), Err(Reason::InvalidTransition));
    let s = f.snap(T0 + 200 * S);
    let b = backlog(&s, "callback", "orders");
    assert_eq!((b.open, b.completed_met, b.attempts["reached"]), (0, 1, 1));
    assert_eq!(queue(&s, "orders").callbacks.closed["reached_outbound"], 1);
    assert_eq!(agent(&s, "a1").contacts_handled, Some(2));
}

#[test]
fn sales_revenue_incremental_and_conversion() {
    let mut f = Feed::new();
    f.at(T0, "agent_login", r#""agent":"a1","team":"sales""#);
    for (c, t) in [("c1", 0), ("c2", 100), ("c3", 200), ("c4", 300)] {
        f.at(
            T0 + t * S,
            "call_offered",
            &format!(r#""call":"{c}","queue":"orders""#),
        );
        f.at(
            T0 + (t + 1) * S,
            "call_answered",
            &format!(r#""call":"{c}","agent":"a1""#),
        );
        f.at(T0 + (t + 50) * S, "call_ended", &format!(r#""call":"{c}""#));
        f.at(T0 + (t + 60) * S, "wrap_ended", &format!(r#""call":"{c}""#));
    }
    // c1: new 2 × 100; c2: upgrade 300 replacing 120; c3: downgrade 50 replacing 80.
    f.at(
        T0 + 30 * S,
        "sale",
        r#""sale":"s1","agent":"a1","call":"c1","kind":"new","quantity":2,"unit_price":100"#,
    );
    f.at(T0 + 155 * S, "sale", r#""sale":"s2","agent":"a1","call":"c2","kind":"upgrade","unit_price":300,"previous_value":120"#);
    f.at(T0 + 255 * S, "sale", r#""sale":"s3","agent":"a1","call":"c3","kind":"downgrade","unit_price":50,"previous_value":80"#);
    let s = f.snap(T0 + 400 * S);
    let q = queue(&s, "orders");
    assert_eq!(q.sales.revenue, 550.0);
    assert_eq!(
        (q.sales.incremental_gain, q.sales.incremental_loss),
        (380.0, 30.0)
    );
    assert_eq!(
        (
            q.sales.by_kind["new"],
            q.sales.by_kind["upgrade"],
            q.sales.by_kind["downgrade"]
        ),
        (1, 1, 1)
    );
    assert_eq!(q.today_contacts.conversion, Some(0.75));
    assert_eq!(
        agent(&s, "a1").today.as_ref().and_then(|t| t.conversion),
        Some(0.75)
    );
    let team = s.teams.iter().find(|t| t.name == "sales").expect("team");
    assert_eq!(
        (team.today.conversion, team.today.revenue),
        (Some(0.75), 550.0)
    );
    f.at(
        T0 + 500 * S,
        "sale_cancelled",
        r#""sale":"s2","reason":"withdrawn""#,
    );
    let s = f.snap(T0 + 500 * S);
    let q = queue(&s, "orders");
    assert_eq!(
        (
            q.sales.revenue,
            q.sales.cancelled,
            q.sales.cancelled_revenue
        ),
        (550.0, 1, 300.0)
    );
    assert_eq!(
        (q.today_contacts.revenue, q.today_contacts.conversion),
        (250.0, Some(0.5))
    );
    let revenue = &q.kpis["revenue_today"];
    assert_eq!((revenue.value, revenue.status), (Some(250.0), Status::Warn));
    assert_eq!(
        f.try_at(T0 + 501 * S, "sale_cancelled", r#""sale":"s2""#)
            .map_err(|r| r.reason),
        Err(Reason::InvalidTransition)
    );
}

#[test]
fn duplicates_are_not_applied_twice() {
    let mut e = engine();
    let line = format!(
        r#"{{"id":"x","ts":"{}","type":"call_offered","call":"c1","queue":"orders"}}"#,
        ts(T0)
    );
    let ev = decode(line.as_bytes()).expect("decodes");
    assert_eq!(e.apply(&ev, Some(T0)), Ok(Applied::New));
    assert_eq!(e.apply(&ev, Some(T0)), Ok(Applied::Duplicate));
    let s = snapshot::build(&e, T0);
    assert_eq!(queue(&s, "orders").totals.counts.offered, 1);
    assert_eq!((s.events.applied, s.events.duplicates), (1, 1));
}

#[test]
fn out_of_order_events_do_not_corrupt_state() {
    let mut f = Feed::new();
    // Answered before offered: refused, and not remembered as seen.
    let r = f.try_at(T0 + 5 * S, "call_answered", r#""call":"c1","agent":"a1""#);
    assert_eq!(r.map_err(|r| r.reason), Err(Reason::UnknownCall));
    f.at(T0, "call_offered", r#""call":"c1","queue":"orders""#);
    f.at(T0 + 5 * S, "call_answered", r#""call":"c1","agent":"a1""#);
    // An event stamped before the call's last event is applied at that time.
    f.at(T0 + 2 * S, "call_ended", r#""call":"c1""#);
    assert_eq!(f.e.counters().clamped, 1);
    assert_eq!(
        agent(&f.snap(T0 + 10 * S), "a1").talk_s,
        Some(0.0),
        "never negative"
    );
    let r = f.try_at(T0 + 20 * S, "call_ended", r#""call":"c1""#);
    assert_eq!(
        r.map_err(|r| r.reason),
        Err(Reason::InvalidTransition),
        "ended twice"
    );
    f.at(T0 + 30 * S, "wrap_ended", r#""call":"c1""#);
    let r = f.try_at(T0 + 40 * S, "call_hold", r#""call":"c1""#);
    assert_eq!(r.map_err(|r| r.reason), Err(Reason::InvalidTransition));
    let r = f.try_at(T0, "task_completed", r#""task":"nope""#);
    assert_eq!(r.map_err(|r| r.reason), Err(Reason::UnknownTask));
    // An event hours late still counts in the totals.
    f.at(
        T0 - 5 * 3600 * S,
        "call_offered",
        r#""call":"old","queue":"orders""#,
    );
    f.at(
        T0 - 5 * 3600 * S + 3 * S,
        "call_abandoned",
        r#""call":"old""#,
    );
    let s = f.snap(T0 + 60 * S);
    let q = queue(&s, "orders");
    assert_eq!((q.totals.counts.abandoned, q.waiting), (1, 0));
    assert_eq!(q.today.counts.abandoned, 1, "03:00 Berlin is still today");
}

#[test]
fn today_resets_at_local_midnight() {
    let mut f = Feed::new();
    // 23:59:30 Berlin on 2 March = 22:59:30 UTC.
    let late = T0 + (15 * 3600 + 59 * 60 + 30) * S;
    f.at(late, "call_offered", r#""call":"c1","queue":"orders""#);
    f.at(
        late + 10 * S,
        "call_answered",
        r#""call":"c1","agent":"a1""#,
    ); // 23:59:40
    f.at(
        late + 40 * S,
        "call_offered",
        r#""call":"c2","queue":"orders""#,
    ); // 00:00:10
    let q = queue(&f.snap(late + 41 * S), "orders").clone();
    assert_eq!((q.today.counts.offered, q.today.counts.answered), (1, 0));
    assert_eq!((q.totals.counts.offered, q.totals.counts.answered), (2, 1));
    // A late event from yesterday counts in totals only.
    f.at(
        late + 20 * S,
        "call_offered",
        r#""call":"c3","queue":"orders""#,
    );
    let q = queue(&f.snap(late + 42 * S), "orders").clone();
    assert_eq!((q.today.counts.offered, q.totals.counts.offered), (1, 3));
}

#[test]
fn rolling_hour_forgets_old_minutes() {
    let mut f = Feed::new();
    f.at(T0, "call_offered", r#""call":"c1","queue":"orders""#);
    f.at(T0 + 60 * S, "call_answered", r#""call":"c1","agent":"a1""#); // out of SL
    f.at(
        T0 + 1800 * S,
        "call_offered",
        r#""call":"c2","queue":"orders""#,
    );
    f.at(
        T0 + 1805 * S,
        "call_answered",
        r#""call":"c2","agent":"a2""#,
    );
    assert_eq!(
        queue(&f.snap(T0 + 1900 * S), "orders")
            .last_60m
            .service_level,
        Some(0.5)
    );
    let q = queue(&f.snap(T0 + 3700 * S), "orders").clone();
    assert_eq!(q.last_60m.service_level, Some(1.0));
    assert_eq!(q.today.service_level, Some(0.5));
}

#[test]
fn unknown_entities_are_created_and_counted_and_bounded() {
    let mut f = Feed::new();
    f.at(T0, "call_offered", r#""call":"c1","queue":"newq""#);
    f.at(T0 + S, "call_answered", r#""call":"c1","agent":"stranger""#);
    let c = *f.e.counters();
    assert_eq!((c.created_queues, c.created_agents), (1, 1));
    let s = f.snap(T0 + 2 * S);
    assert_eq!(queue(&s, "newq").sl_threshold_s, 20.0, "defaults apply");
    assert_eq!(agent(&s, "stranger").team, NO_TEAM);
    // max_task_kinds = 6: the five built-in kinds are not configured here,
    // so six distinct kinds fit and the seventh is refused.
    f.at(T0, "task_created", r#""task":"t0","kind":"callback""#);
    for i in 1..6 {
        f.at(
            T0,
            "task_created",
            &format!(r#""task":"t{i}","kind":"kind_{i}""#),
        );
    }
    let r = f.try_at(T0, "task_created", r#""task":"t9","kind":"one_too_many""#);
    assert_eq!(r.map_err(|r| r.reason), Err(Reason::LimitExceeded));
}

#[test]
fn logged_out_agents_are_forgotten_after_retention() {
    let mut f = Feed::new();
    f.at(T0, "agent_login", r#""agent":"a1","team":"sales""#);
    f.at(T0 + 60 * S, "agent_logout", r#""agent":"a1""#);
    f.pass(T0 + 1800 * S);
    assert_eq!(
        agent(&f.snap(T0 + 1800 * S), "a1").state,
        AgentStatus::Offline
    );
    f.pass(T0 + 60 * S + 3601 * S);
    assert!(f.snap(T0 + 3700 * S).agents.is_empty());
}

#[test]
fn snapshot_is_deterministic_json() {
    let build = || {
        let mut f = Feed::new();
        f.at(T0, "agent_login", r#""agent":"b","team":"sales""#);
        f.at(T0, "agent_login", r#""agent":"a","team":"service""#);
        f.at(
            T0,
            "task_created",
            r#""task":"k","kind":"offer","queue":"z""#,
        );
        serde_json::to_string(&f.snap(T0 + S)).expect("serialises")
    };
    assert_eq!(build(), build());
}

#[test]
fn unconfigured_idle_queues_are_forgotten() {
    let mut f = Feed::new();
    f.at(T0, "call_offered", r#""call":"c1","queue":"popup""#);
    f.pass(T0 + 48 * 3600 * S);
    assert!(
        f.snap(T0 + 48 * 3600 * S)
            .queues
            .iter()
            .any(|q| q.name == "popup"),
        "a live call keeps its queue"
    );
    let t1 = T0 + 48 * 3600 * S + S;
    f.at(t1, "call_abandoned", r#""call":"c1""#);
    f.pass(t1 + 23 * 3600 * S);
    assert!(f.snap(t1).queues.iter().any(|q| q.name == "popup"));
    f.pass(t1 + 25 * 3600 * S);
    let s = f.snap(t1 + 25 * 3600 * S);
    assert!(
        !s.queues.iter().any(|q| q.name == "popup"),
        "idle for longer than retention.idle_queue"
    );
    assert!(
        s.queues.iter().any(|q| q.name == "orders"),
        "configured queues stay"
    );
}

#[test]
fn saved_state_loads_to_the_same_view() {
    let mut f = Feed::new();
    f.at(T0, "agent_login", r#""agent":"a1","team":"sales""#);
    f.at(
        T0,
        "call_offered",
        r#""call":"c1","queue":"orders","customer":"K""#,
    );
    f.at(T0 + 5 * S, "call_answered", r#""call":"c1","agent":"a1""#);
    f.at(T0 + 50 * S, "call_ended", r#""call":"c1""#);
    f.at(
        T0 + 55 * S,
        "sale",
        r#""sale":"s1","agent":"a1","call":"c1","kind":"new","unit_price":10"#,
    );
    f.at(
        T0 + 60 * S,
        "task_created",
        r#""task":"k1","kind":"callback","queue":"orders","customer":"K2""#,
    );
    f.at(
        T0 + 61 * S,
        "call_offered",
        r#""call":"c2","queue":"popup""#,
    );
    let bytes = f.e.save().expect("saves");
    let loaded = Engine::load(f.e.settings().clone(), &bytes).expect("loads");
    let now = T0 + 5 * 3600 * S;
    let a = serde_json::to_string(&snapshot::build(&f.e, now)).expect("json");
    let b = serde_json::to_string(&snapshot::build(&loaded, now)).expect("json");
    assert_eq!(a, b);
    // The duplicate detector survives too.
    let mut loaded = loaded;
    let line = format!(
        r#"{{"id":"e1","ts":"{}","type":"agent_login","agent":"a1"}}"#,
        ts(T0)
    );
    assert_eq!(
        loaded.apply(&decode(line.as_bytes()).expect("ok"), Some(now)),
        Ok(Applied::Duplicate)
    );
    assert!(Engine::load(f.e.settings().clone(), &bytes[..bytes.len() / 2]).is_err());
}

/// After a spike the retention tick hands memory back: the maps of ended
/// calls and open tasks shrink once most of what they held is gone.
#[test]
fn retention_gives_a_spikes_memory_back() {
    let mut f = Feed::new();
    for i in 0..6000 {
        f.at(
            T0,
            "call_offered",
            &format!(r#""call":"c{i}","queue":"orders""#),
        );
        f.at(T0 + S, "call_abandoned", &format!(r#""call":"c{i}""#));
        f.at(
            T0,
            "task_created",
            &format!(r#""task":"k{i}","kind":"callback""#),
        );
    }
    for i in 0..6000 {
        f.at(T0 + 2 * S, "task_cancelled", &format!(r#""task":"k{i}""#));
    }
    let (calls_before, tasks_before) = (f.e.ended_calls.capacity(), f.e.tasks.capacity());
    assert!(calls_before >= 6000 && tasks_before >= 6000);
    // Past `retention.closed_items` (36 h by default): all forgotten.
    f.pass(T0 + 40 * 3600 * S);
    f.e.tick();
    assert_eq!(f.e.ended_calls.len(), 0);
    assert!(
        f.e.ended_calls.capacity() < calls_before / 4,
        "ended calls kept their room"
    );
    assert!(
        f.e.tasks.capacity() < tasks_before / 4,
        "the backlog kept its room"
    );
}

#[test]
fn ended_calls_and_closed_tasks_are_bounded_by_count_oldest_first() {
    let mut f = Feed::with_config("[limits]\nmax_ended_calls = 100\nmax_closed_tasks = 50\n");
    for i in 0..300 {
        let t = T0 + i * S;
        f.at(
            t,
            "call_offered",
            &format!(r#""call":"c{i}","queue":"orders""#),
        );
        f.at(t, "call_abandoned", &format!(r#""call":"c{i}""#));
        f.at(
            t,
            "task_created",
            &format!(r#""task":"k{i}","kind":"callback""#),
        );
        f.at(t, "task_cancelled", &format!(r#""task":"k{i}""#));
    }
    // The next sweep (on the event clock) bounds them.
    f.pass(T0 + 300 * S + 120 * S);
    assert!(f.e.ended_calls.len() <= 100, "{}", f.e.ended_calls.len());
    assert!(f.e.closed_tasks.len() <= 50, "{}", f.e.closed_tasks.len());
    assert!(f.e.ended_calls.len() >= 90, "down to 90 %, not further");
    // The newest are the ones kept.
    assert!(f.e.ended_calls.contains_key("c299"));
    assert!(!f.e.ended_calls.contains_key("c0"));
    assert!(f.e.closed_tasks.contains_key("k299"));
}

#[test]
fn quality_records_expire_with_quality_retention_and_leave_the_snapshot() {
    let mut f = Feed::with_config("[quality]\nretention = \"2d\"\n");
    let t0 = 1_772_434_800_000;
    f.at(t0, "agent_login", r#""agent":"a1","team":"sales""#);
    f.at(
        t0,
        "call_offered",
        r#""call":"c1","queue":"orders","customer":"K-9""#,
    );
    f.at(t0, "call_answered", r#""call":"c1","agent":"a1""#);
    f.at(t0 + 60_000, "call_ended", r#""call":"c1""#);
    f.at(
        t0 + 70_000,
        "sale",
        r#""sale":"s1","agent":"a1","call":"c1","kind":"new","unit_price":10"#,
    );
    f.at(
        t0 + 80_000,
        "contact_tagged",
        r#""call":"c1","agent":"a1","tags":["buying_signal"]"#,
    );
    f.at(
        t0 + 90_000,
        "qa_scored",
        r#""call":"c1","agent":"a1","evaluator":"e","form":"f","score":80"#,
    );
    let q = &f.e.quality;
    assert_eq!(
        (
            q.register.len(),
            q.evaluations.len(),
            q.tags.len(),
            q.sales.len()
        ),
        (1, 1, 1, 1)
    );
    // A day later everything is still there, also after a snapshot.
    f.pass(t0 + 86_400_000);
    let bytes = f.e.save().expect("saves");
    let back = Engine::load(f.e.settings().clone(), &bytes).expect("loads");
    assert_eq!(back.digest(), f.e.digest());
    assert_eq!(back.quality.evaluations.len(), 1);
    // Past the retention: gone from the state and the next snapshot, and
    // an evaluation of the contact is refused.
    f.pass(t0 + 3 * 86_400_000);
    let q = &f.e.quality;
    assert!(q.is_empty(), "{q:?}");
    let bytes = f.e.save().expect("saves");
    assert!(Engine::load(f.e.settings().clone(), &bytes)
        .expect("loads")
        .quality
        .is_empty());
    let late = f.try_at(
        t0 + 3 * 86_400_000,
        "qa_scored",
        r#""call":"c1","agent":"a1","evaluator":"e","form":"f","score":80"#,
    );
    assert_eq!(late.map_err(|r| r.reason), Err(Reason::UnknownCall));
}
