//! Engine tests of callbacks as obligations (issue: business-hours SLA
//! clocks, abandoned calls become callbacks owed, closing when reached).

use super::tests::Feed;
use super::*;
use crate::reject::Reason;
use crate::snapshot::{self, BacklogQuery, Snapshot};

const CONFIG: &str = r#"
[defaults]
site = "hq"
timezone = "Europe/Berlin"
[sites.hq]
timezone = "Europe/Berlin"
[sites.hq.hours]
mon = ["08:00-18:00"]
tue = ["08:00-18:00"]
wed = ["08:00-18:00"]
thu = ["08:00-18:00"]
fri = ["08:00-18:00"]
holidays = ["2026-03-04"]
[sites.branch]
timezone = "Europe/Berlin"
[[queues]]
name = "orders"
abandon_creates_callback = true
abandon_min_wait = "30s"
callback_max_attempts = 3
callback_min_gap = "10m"
[[queues]]
name = "service"
[[queues]]
name = "far"
site = "branch"
abandon_creates_callback = true
[tasks.kinds.callback]
sla = "2h"
due_soon = "30m"
clock = "business"
"#;

const S: i64 = 1000;
const M: i64 = 60 * S;

fn ms(local: &str) -> i64 {
    let l = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S").expect("time");
    use chrono::TimeZone;
    chrono_tz::Europe::Berlin
        .from_local_datetime(&l)
        .earliest()
        .expect("exists")
        .timestamp_millis()
}

/// A feed with this file's configuration (business hours, callbacks).
fn feed() -> Feed {
    Feed::with_config(CONFIG)
}

impl Feed {
    fn list(&self, now: i64) -> Vec<snapshot::TaskView> {
        crate::view::View::build(&self.e, now, None, 0, true, None, None)
            .backlog_list(&BacklogQuery::default())
            .tasks
    }

    /// An inbound call that waits `wait` seconds and is abandoned.
    fn abandon(&mut self, call: &str, queue: &str, customer: &str, t: i64, wait: i64) {
        self.at(
            t,
            "call_offered",
            &format!(r#""call":"{call}","queue":"{queue}","customer":"{customer}""#),
        );
        self.at(
            t + wait * S,
            "call_abandoned",
            &format!(r#""call":"{call}""#),
        );
    }
}

fn callbacks(s: &Snapshot, queue: &str) -> (u64, u64, u64, u64) {
    let q = s.queues.iter().find(|q| q.name == queue).expect("queue");
    let b = s
        .backlog
        .iter()
        .find(|b| b.kind == "callback" && b.queue == queue);
    (
        b.map_or(0, |b| b.open),
        q.callbacks.created["abandoned"],
        q.callbacks.created["requested"],
        b.map_or(0, |b| b.breaches),
    )
}

#[test]
fn requested_at_1755_is_due_0955_next_open_day() {
    let mut f = feed();
    // Tuesday 17:55; Wednesday 4 March is a holiday: due Thursday 09:55.
    f.at(
        ms("2026-03-03 17:55:00"),
        "task_created",
        r#""task":"k1","kind":"callback","queue":"orders","customer":"C1""#,
    );
    let l = f.list(ms("2026-03-03 18:30:00"));
    assert_eq!(l[0].due, "2026-03-05T08:55:00.000Z");
    assert_eq!(l[0].source, Some("requested"));
    // 35 wall minutes old, 5 business minutes.
    assert_eq!((l[0].age_s, l[0].business_age_s), (35.0 * 60.0, 5.0 * 60.0));
    // Due soon 30 business minutes before: Thursday 09:25, not Wednesday night.
    let b = |now| f.list(ms(now))[0].due_soon;
    assert!(!b("2026-03-05 09:24:00"));
    assert!(b("2026-03-05 09:25:00"));
    assert!(!f.list(ms("2026-03-05 09:55:00"))[0].overdue);
    assert!(f.list(ms("2026-03-05 09:55:01"))[0].overdue);
}

#[test]
fn explicit_due_wins_over_the_business_sla() {
    let mut f = feed();
    f.at(
        ms("2026-03-03 17:55:00"),
        "task_created",
        r#""task":"k1","kind":"callback","queue":"orders","due":"2026-03-03T18:30:00+01:00""#,
    );
    assert_eq!(
        f.list(ms("2026-03-03 18:00:00"))[0].due,
        "2026-03-03T17:30:00.000Z"
    );
}

#[test]
fn an_abandoned_customer_is_owed_one_callback() {
    let mut f = feed();
    let t0 = ms("2026-03-02 09:00:00");
    // Too short a wait, and no customer: nothing owed.
    f.abandon("c0", "orders", "C1", t0, 10);
    f.at(t0, "call_offered", r#""call":"nocust","queue":"orders""#);
    f.at(t0 + 60 * S, "call_abandoned", r#""call":"nocust""#);
    // A queue without the switch owes nothing.
    f.abandon("s1", "service", "C1", t0, 60);
    assert_eq!(callbacks(&f.snap(t0 + 2 * M), "orders"), (0, 0, 0, 0));
    // Three abandons by the same customer: one callback, three requests,
    // the earliest deadline (from the first abandon) kept.
    f.abandon("c1", "orders", "C1", t0 + 5 * M, 40);
    f.abandon("c2", "orders", "C1", t0 + 20 * M, 90);
    f.abandon("c3", "orders", "C1", t0 + 40 * M, 31);
    assert_eq!(callbacks(&f.snap(t0 + 50 * M), "orders"), (1, 1, 0, 0));
    let l = f.list(t0 + 50 * M);
    assert_eq!(l.len(), 1);
    assert_eq!(
        (l[0].task.as_str(), l[0].call.as_deref()),
        ("cb-c1", Some("c1"))
    );
    assert_eq!((l[0].requests, l[0].source), (Some(3), Some("abandoned")));
    assert_eq!(l[0].due, "2026-03-02T10:05:40.000Z", "09:05:40 local + 2 h");
    assert_eq!(l[0].customer.as_deref(), Some("C1"));
    // Another customer is owed their own.
    f.abandon("c4", "orders", "C2", t0 + 41 * M, 45);
    assert_eq!(callbacks(&f.snap(t0 + 50 * M), "orders").0, 2);
}

#[test]
fn callbacks_close_when_the_customer_is_answered_or_reached() {
    let mut f = feed();
    let t0 = ms("2026-03-02 09:00:00");
    f.abandon("c1", "orders", "C1", t0, 60);
    f.at(
        t0,
        "task_created",
        r#""task":"req","kind":"callback","queue":"service","customer":"C1""#,
    );
    f.abandon("c2", "orders", "C2", t0, 60);
    f.abandon("c3", "far", "C3", t0, 60);
    // C1 calls again into another queue of the same site and gets through:
    // both their callbacks are settled.
    f.at(
        t0 + 10 * M,
        "call_offered",
        r#""call":"c9","queue":"service","customer":"C1""#,
    );
    f.at(
        t0 + 10 * M + 5 * S,
        "call_answered",
        r#""call":"c9","agent":"a1""#,
    );
    let s = f.snap(t0 + 11 * M);
    let orders = s
        .queues
        .iter()
        .find(|q| q.name == "orders")
        .expect("orders");
    assert_eq!(orders.callbacks.closed["customer_called_back"], 1);
    assert_eq!(
        f.list(t0 + 11 * M)
            .iter()
            .map(|t| t.task.as_str())
            .collect::<Vec<_>>(),
        ["cb-c2", "cb-c3"]
    );
    // C3 belongs to another site: a call there by C3 into "orders" (site
    // hq) does not settle the callback at "branch".
    f.at(
        t0 + 12 * M,
        "call_offered",
        r#""call":"c10","queue":"orders","customer":"C3""#,
    );
    f.at(
        t0 + 12 * M + S,
        "call_answered",
        r#""call":"c10","agent":"a1""#,
    );
    assert_eq!(f.list(t0 + 13 * M).len(), 2);
    // An outbound call that reaches C2 settles theirs.
    f.at(
        t0 + 20 * M,
        "call_offered",
        r#""call":"o1","queue":"orders","direction":"outbound","customer":"C2""#,
    );
    f.at(
        t0 + 20 * M + 8 * S,
        "call_answered",
        r#""call":"o1","agent":"a2""#,
    );
    let s = f.snap(t0 + 21 * M);
    let orders = s
        .queues
        .iter()
        .find(|q| q.name == "orders")
        .expect("orders");
    assert_eq!(orders.callbacks.closed["reached_outbound"], 1);
    let cb = s
        .backlog
        .iter()
        .find(|b| b.kind == "callback" && b.queue == "orders")
        .expect("row");
    assert_eq!((cb.open, cb.completed_met), (0, 2));
}

#[test]
fn unreachable_after_the_maximum_of_spaced_attempts() {
    let mut f = feed();
    let t0 = ms("2026-03-02 09:00:00");
    f.abandon("c1", "orders", "C1", t0, 60);
    let attempt = |f: &mut Feed, t: i64| {
        f.at(
            t,
            "task_attempted",
            r#""task":"cb-c1","agent":"a1","result":"no_answer""#,
        );
    };
    attempt(&mut f, t0 + 5 * M);
    attempt(&mut f, t0 + 8 * M); // within the 10 min gap: counts once
    attempt(&mut f, t0 + 20 * M);
    assert_eq!(f.list(t0 + 21 * M).len(), 1, "two spaced attempts so far");
    attempt(&mut f, t0 + 31 * M);
    let s = f.snap(t0 + 32 * M);
    assert!(
        f.list(t0 + 32 * M).is_empty(),
        "third spaced attempt: unreachable"
    );
    let cb = s
        .backlog
        .iter()
        .find(|b| b.kind == "callback" && b.queue == "orders")
        .expect("row");
    assert_eq!(
        (cb.unreachable, cb.completed_met, cb.completed_missed),
        (1, 0, 0)
    );
    assert_eq!(cb.attempts["no_answer"], 4);
    let orders = s
        .queues
        .iter()
        .find(|q| q.name == "orders")
        .expect("orders");
    assert_eq!(orders.callbacks.closed["unreachable"], 1);
    let r = f.try_at(
        t0 + 40 * M,
        "task_attempted",
        r#""task":"cb-c1","agent":"a1","result":"reached""#,
    );
    assert_eq!(r.map_err(|r| r.reason), Err(Reason::InvalidTransition));
}

#[test]
fn a_callback_overdue_between_reads_is_one_breach() {
    let mut f = feed();
    let t0 = ms("2026-03-02 16:30:00");
    f.abandon("c1", "orders", "C1", t0, 60);
    // Abandoned 16:31; 2 business hours: 1 h 29 min on Monday (to 18:00),
    // 31 min on Tuesday from 08:00.
    let due = ms("2026-03-03 08:31:00");
    assert_eq!(callbacks(&f.snap(due), "orders").3, 0);
    f.pass(due + S);
    assert_eq!(callbacks(&f.snap(due + S), "orders").3, 1);
    assert_eq!(callbacks(&f.snap(due + 60 * M), "orders").3, 1);
    f.at(
        due + 61 * M,
        "task_completed",
        r#""task":"cb-c1","agent":"a1""#,
    );
    let s = f.snap(due + 62 * M);
    assert_eq!(callbacks(&s, "orders").3, 1);
    let cb = s
        .backlog
        .iter()
        .find(|b| b.kind == "callback" && b.queue == "orders")
        .expect("row");
    assert_eq!(cb.completed_missed, 1);
}

#[test]
fn age_buckets_describe_the_backlog() {
    let mut f = feed();
    let t0 = ms("2026-03-02 09:00:00");
    for (i, age_min) in [5, 50, 300, 3000].iter().enumerate() {
        f.at(
            t0 - age_min * M,
            "task_created",
            &format!(r#""task":"k{i}","kind":"offer","queue":"orders""#),
        );
    }
    let s = f.snap(t0);
    let b = s.backlog.iter().find(|b| b.kind == "offer").expect("row");
    let counts: Vec<u64> = b.by_age.iter().map(|x| x.tasks).collect();
    // le 15m, 1h, 4h, 8h, 1d, 2d, 4d, 7d, +Inf (3000 min is 2 d 2 h)
    assert_eq!(counts, [1, 2, 2, 3, 3, 3, 4, 4, 4]);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Offer(u8, u8, u8),
        Answer(u8),
        Abandon(u8),
        End(u8),
        Create(u8, u8),
        Attempt(u8, bool),
        Complete(u8),
        Cancel(u8),
        Read,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..6u8, 0..3u8, 0..4u8).prop_map(|(c, q, k)| Op::Offer(c, q, k)),
            (0..6u8).prop_map(Op::Answer),
            (0..6u8).prop_map(Op::Abandon),
            (0..6u8).prop_map(Op::End),
            (0..6u8, 0..4u8).prop_map(|(t, k)| Op::Create(t, k)),
            (0..8u8, any::<bool>()).prop_map(|(t, r)| Op::Attempt(t, r)),
            (0..8u8).prop_map(Op::Complete),
            (0..8u8).prop_map(Op::Cancel),
            Just(Op::Read),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn invariants_hold_for_any_sequence(ops in proptest::collection::vec((op(), 1..900i64), 1..120)) {
            let mut f = feed();
            let queues = ["orders", "service", "far"];
            let mut t = ms("2026-03-02 07:00:00");
            // Each call slot gets a new generation on every offer, so
            // later events refer to the latest call in that slot.
            let mut gen = [0u32; 6];
            let mut abandoned: Vec<String> = Vec::new();
            for (op, step) in ops {
                t += step * S;
                let call = |c: u8, gen: &[u32; 6]| format!("c{c}-{}", gen[c as usize]);
                let _ = match op {
                    Op::Offer(c, q, k) => {
                        gen[c as usize] += 1;
                        f.try_at(t, "call_offered", &format!(r#""call":"{}","queue":"{}","customer":"K{k}""#, call(c, &gen), queues[q as usize]))
                    }
                    Op::Answer(c) => f.try_at(t, "call_answered", &format!(r#""call":"{}","agent":"a1""#, call(c, &gen))),
                    Op::Abandon(c) => {
                        abandoned.push(format!("cb-{}", call(c, &gen)));
                        f.try_at(t, "call_abandoned", &format!(r#""call":"{}""#, call(c, &gen)))
                    }
                    Op::End(c) => f.try_at(t, "call_ended", &format!(r#""call":"{}""#, call(c, &gen))),
                    Op::Create(k, c) => f.try_at(t, "task_created", &format!(r#""task":"k{k}","kind":"callback","queue":"orders","customer":"K{c}""#)),
                    Op::Attempt(k, reached) => {
                        let result = if reached { "reached" } else { "no_answer" };
                        let id = match abandoned.get(k as usize) {
                            Some(id) if k >= 4 => id.clone(),
                            _ => format!("k{k}"),
                        };
                        f.try_at(t, "task_attempted", &format!(r#""task":"{id}","agent":"a1","result":"{result}""#))
                    }
                    Op::Complete(k) => f.try_at(t, "task_completed", &format!(r#""task":"k{k}""#)),
                    Op::Cancel(k) => f.try_at(t, "task_cancelled", &format!(r#""task":"k{k}""#)),
                    Op::Read => { f.snap(t); Ok(Applied::New) }
                };
                let e = &f.e;
                // No task is both open and closed.
                for id in e.tasks.keys() {
                    prop_assert!(!e.closed_tasks.contains_key(id), "{id} open and closed");
                }
                // Every open callback with a customer is indexed exactly once,
                // and every index entry is an open callback.
                let mut indexed = 0;
                for (id, k) in e.tasks.iter() {
                    if let (Some(cb), Some(cust)) = (&k.callback, &k.customer) {
                        prop_assert!(e.owed_to(&cb.site, cust).contains(id), "{id} not found under its own customer");
                        indexed += 1;
                    }
                }
                prop_assert_eq!(e.tasks.owed_entries(), indexed, "stale or missing index entries");
                let open_cb = e.tasks.values().filter(|k| k.callback.is_some() && k.customer.is_some()).count();
                prop_assert_eq!(indexed, open_cb);
                // Each open callback has exactly one deadline, and it is not
                // before creation; breaches never exceed created tasks.
                for k in e.tasks.values() {
                    prop_assert!(k.due_ms >= k.created_ms && k.soon_ms <= k.due_ms);
                }
                let s = f.snap(t);
                for b in &s.backlog {
                    prop_assert!(b.breaches <= b.created, "{} {}: {} breaches > {} created", b.kind, b.queue, b.breaches, b.created);
                    prop_assert_eq!(b.created, b.open + b.completed_met + b.completed_missed + b.cancelled + b.unreachable);
                }
            }
        }
    }
}
