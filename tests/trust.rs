//! End-to-end tests of the engine's promise (issue 12): a refused event
//! leaves no trace, input cannot panic the daemon, late events never
//! regress newer state, attribution follows the config, and two daemons
//! that applied the same events report the same state digest.

mod common;

use common::*;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The one refusal in a reply (panics if there is not exactly one).
fn refusal(reply: &Value) -> &str {
    let r = reply["rejected"].as_array().expect("rejected list");
    assert_eq!(r.len(), 1, "{reply}");
    r[0]["reason"].as_str().expect("reason")
}

fn agent<'a>(snap: &'a Value, id: &str) -> Option<&'a Value> {
    snap["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["agent"] == id)
}

#[tokio::test]
async fn a_sale_refused_at_a_limit_books_nothing_however_often_it_is_retried() {
    // Two configured queues fill `max_queues`: a sale with no link would
    // need the "none" queue, so it is refused.
    let d = Daemon::start(&config("[limits]\nmax_queues = 2\n"));
    let (_, r) = post(
        &d,
        ev(
            "l1",
            "08:00:00",
            "agent_login",
            r#""agent":"a1","team":"sales""#,
        ),
    )
    .await;
    assert_eq!(r["accepted"], 1, "{r}");
    let before = get_json(&d, "/api/v1/state").await;
    for i in 0..3 {
        let sale = ev(
            &format!("s{i}"),
            "08:01:00",
            "sale",
            r#""sale":"S1","agent":"a1","kind":"new","unit_price":100"#,
        );
        let (status, r) = post(&d, sale).await;
        assert_eq!((status, refusal(&r)), (422, "limit_exceeded"), "{r}");
    }
    let snap = get_json(&d, "/api/v1/snapshot").await;
    let a = agent(&snap, "a1").expect("a1");
    assert_eq!(a["sales"]["count"], 0, "{a}");
    assert_eq!(a["sales"]["revenue"], 0.0, "{a}");
    let after = get_json(&d, "/api/v1/state").await;
    assert_eq!(
        after["digest"], before["digest"],
        "refusals changed the state"
    );
    assert_eq!(after["events_applied"], 1);
}

#[tokio::test]
async fn an_absurd_talk_time_is_refused_and_the_daemon_keeps_ingesting() {
    let d = Daemon::start(&config(""));
    let day = [
        ev(
            "o",
            "08:00:00",
            "call_offered",
            r#""call":"c1","queue":"orders""#,
        ),
        ev(
            "a",
            "08:00:05",
            "call_answered",
            r#""call":"c1","agent":"a1""#,
        ),
    ];
    let (_, r) = post(&d, day.join("\n")).await;
    assert_eq!(r["accepted"], 2, "{r}");
    for id in ["e1", "e2"] {
        let (_, r) = post(
            &d,
            ev(
                id,
                "08:02:00",
                "call_ended",
                r#""call":"c1","talk_s":1e300"#,
            ),
        )
        .await;
        assert_eq!(refusal(&r), "invalid_value", "{r}");
        assert!(
            r["rejected"][0]["error"]
                .as_str()
                .is_some_and(|e| e.contains("talk_s")),
            "{r}"
        );
    }
    let (_, r) = post(
        &d,
        ev(
            "e3",
            "08:02:00",
            "call_ended",
            r#""call":"c1","talk_s":115"#,
        ),
    )
    .await;
    assert_eq!(r["accepted"], 1, "the daemon still ingests: {r}");
    let snap = get_json(&d, "/api/v1/snapshot").await;
    assert_eq!(agent(&snap, "a1").expect("a1")["talk_s"], 115.0);
    let ready = client().get(d.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status().as_u16(), 200);
}

#[tokio::test]
async fn implausible_times_and_amounts_are_refused_with_their_reason() {
    let d = Daemon::start(&config(""));
    let (_, r) = post(&d, ev("now", "08:00:00", "agent_login", r#""agent":"a1""#)).await;
    assert_eq!(r["accepted"], 1);
    for (ts, why) in [
        ("1970-01-01T00:00:00Z", "implausible_timestamp"),
        ("9999-12-31T00:00:00Z", "implausible_timestamp"),
        // More than limits.event_max_age (7 days) before the event clock.
        ("2026-02-20T08:00:00Z", "implausible_timestamp"),
    ] {
        let line = format!(
            r#"{{"id":"t-{ts}","ts":"{ts}","type":"call_offered","call":"x","queue":"orders"}}"#
        );
        let (_, r) = post(&d, line).await;
        assert_eq!(refusal(&r), why, "{ts}: {r}");
    }
    let (_, r) = post(
        &d,
        ev(
            "big",
            "08:01:00",
            "sale",
            r#""sale":"S9","agent":"a1","kind":"new","quantity":1e20,"unit_price":1e20"#,
        ),
    )
    .await;
    assert_eq!(refusal(&r), "invalid_value", "{r}");
    let m = parse_metrics(&metrics_text(&d).await);
    assert_eq!(
        metric(
            &m,
            r#"callwatch_events_rejected_total{source="http",reason="implausible_timestamp"}"#
        ),
        3.0
    );
    let revenue: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("callwatch_revenue_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(revenue, 0.0, "the refused sale booked revenue");
}

#[tokio::test]
async fn cancelled_sales_leave_exactly_zero() {
    let d = Daemon::start(&config(""));
    let mut day = vec![ev(
        "l",
        "08:00:00",
        "agent_login",
        r#""agent":"a1","team":"sales""#,
    )];
    for i in 0..3 {
        day.push(ev(
            &format!("s{i}"),
            "08:01:00",
            "sale",
            &format!(r#""sale":"S{i}","agent":"a1","kind":"new","quantity":3,"unit_price":0.1"#),
        ));
    }
    for i in 0..3 {
        day.push(ev(
            &format!("c{i}"),
            "08:02:00",
            "sale_cancelled",
            &format!(r#""sale":"S{i}""#),
        ));
    }
    let (_, r) = post(&d, day.join("\n")).await;
    assert_eq!(r["accepted"], 7, "{r}");
    let snap = get_json(&d, "/api/v1/snapshot").await;
    let a = agent(&snap, "a1").expect("a1");
    assert_eq!(a["sales"]["revenue"], 0.9, "{a}");
    assert_eq!(a["sales"]["cancelled_revenue"], 0.9, "{a}");
    assert_eq!(a["today"]["revenue"], 0.0, "no residue: {a}");
}

#[tokio::test]
async fn a_late_call_end_leaves_a_newer_pause_in_place() {
    let d = Daemon::start(&config(""));
    let day = [
        ev(
            "l",
            "10:00:00",
            "agent_login",
            r#""agent":"a1","team":"sales""#,
        ),
        ev(
            "o",
            "10:00:00",
            "call_offered",
            r#""call":"c1","queue":"orders""#,
        ),
        ev(
            "a",
            "10:01:00",
            "call_answered",
            r#""call":"c1","agent":"a1""#,
        ),
        ev(
            "p",
            "12:30:00",
            "agent_state",
            r#""agent":"a1","state":"paused","reason":"lunch""#,
        ),
    ];
    let (_, r) = post(&d, day.join("\n")).await;
    assert_eq!(r["accepted"], 4, "{r}");
    let clamped = get_json(&d, "/api/v1/snapshot").await["events"]["clamped"]
        .as_u64()
        .expect("clamped");
    let (_, r) = post(&d, ev("e", "10:06:00", "call_ended", r#""call":"c1""#)).await;
    assert_eq!(r["accepted"], 1, "{r}");
    let snap = get_json(&d, "/api/v1/snapshot").await;
    let a = agent(&snap, "a1").expect("a1");
    assert_eq!(a["state"], "paused", "{a}");
    assert_eq!(a["since"], "2026-03-02T12:30:00.000Z", "{a}");
    // The talk is still booked to the agent: 10:01 to 10:06.
    assert_eq!(a["talk_s"], 300.0, "{a}");
    assert_eq!(
        snap["events"]["clamped"].as_u64(),
        Some(clamped + 1),
        "the late event is counted"
    );
}

#[tokio::test]
async fn a_restart_keeps_the_breach_count() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8");
    let cfg = config("");
    let d = Daemon::start_args(&cfg, &["--data-dir", data]);
    let day = [
        ev(
            "k",
            "08:00:00",
            "task_created",
            r#""task":"k1","kind":"callback","queue":"orders""#,
        ),
        // The desk's clock passes the 4 h deadline (12:00)...
        ev("l", "12:30:00", "agent_login", r#""agent":"a2""#),
    ];
    let (_, r) = post(&d, day.join("\n")).await;
    assert_eq!(r["accepted"], 2, "{r}");
    let breaches = |s: &Value| {
        s["backlog"]
            .as_array()
            .expect("backlog")
            .iter()
            .find(|b| b["kind"] == "callback" && b["queue"] == "orders")
            .map(|b| b["breaches"].as_u64().expect("breaches"))
    };
    assert_eq!(breaches(&get_json(&d, "/api/v1/snapshot").await), Some(1));
    // ...and then a completion stamped before the deadline arrives.
    let (_, r) = post(
        &d,
        ev(
            "c",
            "11:00:00",
            "task_completed",
            r#""task":"k1","agent":"a1""#,
        ),
    )
    .await;
    assert_eq!(r["accepted"], 1, "{r}");
    assert_eq!(breaches(&get_json(&d, "/api/v1/snapshot").await), Some(1));
    let digest = get_json(&d, "/api/v1/state").await["digest"].clone();
    d.kill9();
    let d = Daemon::start_args(&cfg, &["--data-dir", data]);
    let snap = get_json(&d, "/api/v1/snapshot").await;
    assert_eq!(breaches(&snap), Some(1), "the breach count went down");
    assert_eq!(get_json(&d, "/api/v1/state").await["digest"], digest);
}

#[tokio::test]
async fn attribution_follows_the_config_and_membership_is_a_set() {
    let extra = "[sites.out]\ntimezone = \"Europe/Lisbon\"\n[teams.partner]\nsite = \"out\"\n";
    let d = Daemon::start(&config(extra));
    let day = [
        // A login without `team` keeps the team known.
        ev(
            "l1",
            "08:00:00",
            "agent_login",
            r#""agent":"a1","team":"sales""#,
        ),
        ev("x1", "08:10:00", "agent_logout", r#""agent":"a1""#),
        ev("l2", "08:20:00", "agent_login", r#""agent":"a1""#),
        // An outsourcer's agent belongs to the team's configured site.
        ev(
            "p1",
            "08:00:00",
            "agent_login",
            r#""agent":"p1","team":"partner""#,
        ),
        ev(
            "p2",
            "08:05:00",
            "agent_state",
            r#""agent":"p1","state":"paused""#,
        ),
        // Membership: join q1 and q2, leave q2: still in q1, available.
        ev(
            "m1",
            "08:00:00",
            "agent_login",
            r#""agent":"m1","queues":["q1"]"#,
        ),
        ev(
            "m2",
            "08:01:00",
            "agent_login",
            r#""agent":"m1","queues":["q2"]"#,
        ),
        ev(
            "m3",
            "08:02:00",
            "agent_logout",
            r#""agent":"m1","queues":["q2"]"#,
        ),
    ];
    let (_, r) = post(&d, day.join("\n")).await;
    assert_eq!(r["accepted"], day.len(), "{r}");
    let snap = get_json(&d, "/api/v1/snapshot").await;
    assert_eq!(agent(&snap, "a1").expect("a1")["team"], "sales");
    let p = agent(&snap, "p1").expect("p1");
    assert_eq!(
        (&p["site"], &p["team"]),
        (&Value::from("out"), &Value::from("partner"))
    );
    let m = agent(&snap, "m1").expect("m1");
    assert_eq!(m["state"], "available", "{m}");
    assert_eq!(m["queues"], serde_json::json!(["q1"]), "{m}");
    let (_, r) = post(
        &d,
        ev(
            "m4",
            "08:03:00",
            "agent_logout",
            r#""agent":"m1","queues":["q1"]"#,
        ),
    )
    .await;
    assert_eq!(r["accepted"], 1);
    let snap = get_json(&d, "/api/v1/snapshot").await;
    assert_eq!(agent(&snap, "m1").expect("m1")["state"], "offline");
}

/// Streams `lines` over the TCP ingest in batches of `batch`, each
/// waited for by its ACK.
async fn send_tcp(addr: std::net::SocketAddr, lines: &[String], batch: usize) {
    let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (r, mut w) = s.into_split();
    let mut replies = BufReader::new(r).lines();
    let mut sent = 0;
    for chunk in lines.chunks(batch) {
        w.write_all((chunk.join("\n") + "\n").as_bytes())
            .await
            .expect("write");
        sent += chunk.len();
        let want = format!("ACK {sent}");
        loop {
            let l = replies.next_line().await.expect("read").expect("a reply");
            if l == want {
                break;
            }
        }
    }
}

#[tokio::test]
async fn two_daemons_fed_the_same_events_report_the_same_state() {
    let mut day = scripted_day();
    // Mixed in: duplicates, out-of-order and refused events.
    day.push(day[3].clone());
    day.push(ev(
        "late",
        "07:59:00",
        "agent_state",
        r#""agent":"a1","state":"paused""#,
    ));
    day.push(ev("bad", "08:30:00", "call_ended", r#""call":"nope""#));
    let cfg = config("");
    let (a, b) = (Daemon::start(&cfg), Daemon::start(&cfg));
    for chunk in day.chunks(7) {
        post(&a, chunk.join("\n")).await;
    }
    send_tcp(b.tcp.expect("tcp"), &day, 3).await;
    let (sa, sb) = (
        get_json(&a, "/api/v1/state").await,
        get_json(&b, "/api/v1/state").await,
    );
    assert_eq!(sa["digest"], sb["digest"], "{sa} vs {sb}");
    assert_eq!(sa["events_applied"], sb["events_applied"]);
    assert_eq!(sa["last_event_time"], sb["last_event_time"]);
    // And so does an offline replay of the same file.
    let dir = tempfile::tempdir().expect("tmp");
    let (cfg_path, file) = (dir.path().join("c.toml"), dir.path().join("day.ndjson"));
    std::fs::write(&cfg_path, &cfg).expect("config");
    std::fs::write(&file, day.join("\n")).expect("events");
    assert_eq!(replay_offline(&cfg_path, &file)["digest"], sa["digest"]);
    // The digest does not depend on when it is read.
    assert_eq!(get_json(&a, "/api/v1/state").await["digest"], sa["digest"]);
}
