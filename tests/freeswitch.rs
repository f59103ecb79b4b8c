//! The FreeSWITCH mod_callcenter source against a scripted Event Socket
//! peer that speaks the real protocol (auth, `api callcenter_config`
//! lists, `event plain`, URL-encoded event headers), fed with the
//! vendor's documented example events (tests/fixtures/SOURCES.md): one
//! full call, a cancelled one, agent states; a peer that disconnects and
//! changes state meanwhile, which the resync takes over; malformed input
//! and a refused password.

mod common;

use std::collections::HashMap;

use common::esl::{self, urlencode, Lists, Peer};
use common::*;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/freeswitch/mod_callcenter.events.txt"
);

/// The vendor's example events by `CC-Action` (the two member-queue-end
/// examples as `member-queue-end` and `member-queue-end/Cancel`).
fn samples() -> HashMap<String, Vec<(String, String)>> {
    let text = std::fs::read_to_string(FIXTURE).expect("fixture");
    let mut out = HashMap::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let headers: Vec<(String, String)> = block
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let mut key = get("CC-Action");
        if get("CC-Cause") == "Cancel" {
            key.push_str("/Cancel");
        }
        out.insert(key, headers);
    }
    assert_eq!(out.len(), 10, "the ten documented examples");
    out
}

/// The documented times are seconds after 1970 (9000..10500); moved so
/// that 9000 is 2026-03-02 08:00 Berlin (the tests' day).
const SHIFT: i64 = 1_772_434_800 - 9000;

/// An event as FreeSWITCH writes it in `plain` format: every value
/// URL-encoded, the CC times moved by `SHIFT`, an `Event-Date-Timestamp`
/// (microseconds) as every event carries, and `edits` applied.
fn plain(headers: &[(String, String)], at_s: i64, edits: &[(&str, &str)]) -> String {
    let mut body = String::new();
    let mut seen = Vec::new();
    for (k, v) in headers {
        let mut v = v.clone();
        if k.starts_with("CC-") && k.ends_with("-Time") {
            v = (v.parse::<i64>().expect("a time") + SHIFT).to_string();
        }
        if let Some((_, e)) = edits.iter().find(|(n, _)| n == k) {
            v = e.to_string();
        }
        seen.push(k.as_str());
        body.push_str(&format!("{k}: {}\n", urlencode(&v)));
    }
    for (k, v) in edits {
        if !seen.contains(k) {
            body.push_str(&format!("{k}: {}\n", urlencode(v)));
        }
    }
    body.push_str(&format!(
        "Event-Date-Timestamp: {}\n\n",
        (at_s + SHIFT) * 1_000_000
    ));
    esl::frame(&body)
}

fn source(addr: std::net::SocketAddr, password: &str) -> String {
    config(&format!(
        "[[sources]]\ntype = \"freeswitch_esl\"\nname = \"fs\"\naddress = \"{addr}\"\npassword = \"{password}\"\n\
         [sources.agents.\"AgentNameHere\"]\nagent = \"a-2001\"\nname = \"Agent Name Here\"\nteam = \"service\"\n"
    ))
}

async fn snapshot(d: &Daemon) -> serde_json::Value {
    get_json(d, "/api/v1/snapshot").await
}

fn queue<'a>(snap: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    snap["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["name"] == name)
        .unwrap_or(&serde_json::Value::Null)
}

fn agent<'a>(snap: &'a serde_json::Value, id: &str) -> Option<&'a serde_json::Value> {
    snap["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["agent"] == id)
}

#[tokio::test]
async fn the_vendors_sample_events_make_a_call_a_cancel_and_agent_states() {
    let lists = Lists {
        agents: vec![("1000@default", "Logged Out")],
        tiers: vec![("support@default", "1000@default")],
        members: vec![],
    };
    let mut peer = Peer::start("ClueCon", vec![lists]).await;
    let d = Daemon::start(&source(peer.addr, "ClueCon"));
    assert_eq!(peer.session().await, 0);
    let s = samples();
    let ev = |action: &str, at: i64, edits: &[(&str, &str)]| plain(&s[action], at, edits);
    // One call in the order the module sends them: it joins, a ring at
    // AgentNameHere fails, the next ring is answered after 1009 s in the
    // queue, the bridge ends after 491 s of talk, the member leaves.
    peer.send(ev("agent-status-change", 8990, &[]));
    peer.send(ev("member-queue-start", 9000, &[]));
    peer.send(ev("members-count", 9000, &[]));
    peer.send(ev("agent-state-change", 9990, &[]));
    peer.send(ev("agent-offering", 9990, &[]));
    peer.send(ev("bridge-agent-fail", 9995, &[]));
    peer.send(ev("bridge-agent-start", 10009, &[]));
    peer.send(ev("bridge-agent-end", 10500, &[]));
    peer.send(ev("member-queue-end", 10500, &[]));
    // The cancelled example: the vendor copied the first one's member
    // UUID into it; a member of its own here, as FreeSWITCH gives every
    // caller. It left after the queue's timeout, 1050 s in.
    peer.send(ev(
        "member-queue-end/Cancel",
        10050,
        &[("CC-Member-UUID", "e260ffd0-member")],
    ));
    let snap = wait_for(30, "both calls", || async {
        let snap = snapshot(&d).await;
        let t = &queue(&snap, "support@default")["totals"];
        (t["offered"] == 2 && t["exited"] == 1 && t["answered"] == 1).then_some(snap)
    })
    .await;
    let m = parse_metrics(&metrics_text(&d).await);
    let q = r#"{queue="support@default"}"#;
    // The module's own times: the wait of the answered call (1009 s) and
    // its talk (491 s), not receipt times.
    assert_eq!(
        metric(&m, &format!("callwatch_call_wait_seconds_sum{q}")),
        1009.0
    );
    assert_eq!(
        metric(&m, &format!("callwatch_call_talk_seconds_sum{q}")),
        491.0
    );
    // AgentNameHere is a-2001 by the agent table, with its name and team;
    // it missed the ring before it answered.
    let a = agent(&snap, "a-2001").expect("the agent of the call");
    assert_eq!(a["name"], "Agent Name Here");
    assert_eq!(a["team"], "service");
    assert_eq!(a["missed_calls"], 1);
    // 1000@default became Available: logged in to its tier's queue.
    let b = agent(&snap, "1000@default").expect("1000@default");
    assert_eq!(b["state"], "available");
    assert_eq!(b["queues"], serde_json::json!(["support@default"]));
    // The caller number is a customer reference, never a label.
    assert!(!metrics_text(&d).await.contains("4385551212"));
    // Each repeated end was passed over, not refused.
    let refused: f64 = m
        .iter()
        .filter(|(k, _)| {
            k.starts_with("callwatch_events_rejected_total{") && k.contains("freeswitch_esl")
        })
        .map(|(_, v)| v)
        .sum();
    assert_eq!(refused, 0.0);

    // Malformed input: a start without its member, an unknown status.
    peer.send(ev("member-queue-start", 10600, &[("CC-Member-UUID", "")]));
    peer.send(ev(
        "agent-status-change",
        10600,
        &[("CC-Agent-Status", "Dancing")],
    ));
    let malformed = r#"callwatch_source_skipped_total{source="freeswitch_esl",reason="malformed"}"#;
    wait_for(30, "the malformed events to be counted", || async {
        let m = parse_metrics(&metrics_text(&d).await);
        (m.get(malformed) == Some(&2.0)).then_some(())
    })
    .await;
}

/// Disconnected while a call waits and another is answered; meanwhile
/// both end, one agent goes on break and another logs out. The resync
/// after the reconnect takes all of it from the lists.
#[tokio::test]
async fn a_resync_after_a_reconnect_takes_what_changed_meanwhile() {
    // Live times: the daemon runs on the system clock here.
    let now = chrono::Utc::now().timestamp();
    let before = Lists {
        agents: vec![("1000@default", "Available"), ("1001@default", "Available")],
        tiers: vec![
            ("support@default", "1000@default"),
            ("support@default", "1001@default"),
        ],
        members: vec![
            ("w1", "support@default", "Waiting", now - 60, ""),
            (
                "a1",
                "support@default",
                "Answered",
                now - 120,
                "1001@default",
            ),
        ],
    };
    let after = Lists {
        agents: vec![("1000@default", "On Break"), ("1001@default", "Logged Out")],
        members: vec![],
        ..before.clone()
    };
    let mut peer = Peer::start("ClueCon", vec![before, after]).await;
    let d = Daemon::start(
        &source(peer.addr, "ClueCon").replace("mode = \"event\"", "mode = \"system\""),
    );
    assert_eq!(peer.session().await, 0);
    let snap = wait_for(30, "the first resync", || async {
        let snap = snapshot(&d).await;
        (queue(&snap, "support@default")["waiting"] == 1).then_some(snap)
    })
    .await;
    assert_eq!(queue(&snap, "support@default")["totals"]["answered"], 1);
    assert_eq!(
        agent(&snap, "1000@default").expect("1000")["state"],
        "available"
    );
    peer.disconnect();
    assert_eq!(peer.session().await, 1);
    let snap = wait_for(30, "the second resync", || async {
        let snap = snapshot(&d).await;
        let q = queue(&snap, "support@default");
        let on_break = agent(&snap, "1000@default").is_some_and(|a| a["state"] == "paused");
        (q["waiting"] == 0 && on_break).then_some(snap)
    })
    .await;
    let q = queue(&snap, "support@default");
    // The waiting call left without a known reason (resync); the answered
    // one ended; neither counts against the service level as abandoned.
    assert_eq!(q["exits"]["resync"], 1, "{q}");
    assert_eq!(q["totals"]["abandoned"], 0, "{q}");
    assert_eq!(q["today_contacts"]["contacts"], 1, "{q}");
    assert_eq!(
        agent(&snap, "1000@default").expect("1000")["reason"],
        "On Break"
    );
    let gone = agent(&snap, "1001@default").expect("1001@default");
    assert_eq!(gone["state"], "offline", "{gone}");
    assert_eq!(gone["queues"], serde_json::json!([]), "{gone}");
    let m = parse_metrics(&metrics_text(&d).await);
    let corrected = |kind: &str| {
        metric(
            &m,
            &format!(
                r#"callwatch_source_resync_corrections_total{{source="freeswitch_esl",kind="{kind}"}}"#
            ),
        )
    };
    assert_eq!(corrected("call_exited"), 1.0);
    assert_eq!(corrected("call_ended"), 1.0);
    // At the first resync 1001 is a member as the agent of the answered
    // call, 1000 from its tier; 1001's membership is removed at the
    // second, 1000's break set.
    assert_eq!(corrected("member_inferred"), 1.0);
    assert_eq!(corrected("member_added"), 1.0);
    assert_eq!(corrected("member_removed"), 1.0);
    assert_eq!(corrected("pause_set"), 1.0);
    assert_eq!(
        metric(
            &m,
            r#"callwatch_source_reconnects_total{source="freeswitch_esl"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn a_refused_password_is_logged_and_retried() {
    let mut peer = Peer::start("ClueCon", vec![Lists::default()]).await;
    let d = Daemon::start(&source(peer.addr, "wrong"));
    assert_eq!(peer.session().await, 0);
    let log = d.log_until("authentication refused", 20);
    assert!(log.contains("-ERR invalid"), "{log}");
    // The backoff retries.
    assert_eq!(peer.session().await, 1);
}
