//! The websocket feed against the real binary, with a real websocket
//! client (tokio-tungstenite).

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(d: &Daemon, query: &str) -> Ws {
    let url = format!("ws://{}/ws{query}", d.http);
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connects")
        .0
}

/// The next JSON message (pings are answered by the library), with a deadline.
async fn next(ws: &mut Ws, secs: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).expect("json"),
            Ok(Some(Ok(Message::Close(f)))) => panic!("closed: {f:?}"),
            Ok(Some(Ok(_))) => continue,
            Ok(other) => panic!("stream ended: {other:?}"),
            Err(_) => panic!("no message within {secs} s"),
        }
    }
}

/// Messages until one satisfies `pred`.
async fn until(ws: &mut Ws, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .as_secs()
            .max(1);
        let m = next(ws, left).await;
        if pred(&m) {
            return m;
        }
    }
}

fn logins() -> String {
    [
        ev(
            "l1",
            "08:00:00",
            "agent_login",
            r#""agent":"s1","name":"Sara Sales","team":"sales""#,
        ),
        ev(
            "l2",
            "08:00:00",
            "agent_login",
            r#""agent":"v1","name":"Vic Service","team":"service""#,
        ),
    ]
    .join("\n")
}

#[tokio::test]
async fn snapshot_then_deltas_in_sequence_and_resync() {
    let d = Daemon::start(&config(""));
    let mut ws = connect(&d, "").await;
    let snap = next(&mut ws, 10).await;
    assert_eq!(
        (
            snap["type"].as_str(),
            snap["protocol"].as_u64(),
            snap["seq"].as_u64()
        ),
        (Some("snapshot"), Some(1), Some(1))
    );
    assert_eq!(snap["board"]["queues"]["orders"]["waiting"], 0);
    post(
        &d,
        ev(
            "c1",
            "08:00:00",
            "call_offered",
            r#""call":"c1","queue":"orders""#,
        ),
    )
    .await;
    let delta = until(&mut ws, 10, |m| m["type"] == "delta").await;
    assert_eq!(delta["seq"], 2, "numbered without gaps");
    assert_eq!(delta["set"]["queues"]["orders"]["waiting"], 1);
    assert!(delta["set"]["queues"]["orders"]["oldest_since"].is_i64());
    assert!(delta["set"].get("agents").is_none(), "only what changed");
    // A client that sees a gap asks for a fresh snapshot.
    ws.send(Message::Text(r#"{"type":"resync"}"#.into()))
        .await
        .expect("send");
    let again = until(&mut ws, 10, |m| m["type"] == "snapshot").await;
    assert_eq!(again["seq"], 3);
    assert_eq!(again["board"]["queues"]["orders"]["waiting"], 1);
    // A bad message gets an error, not a disconnect.
    ws.send(Message::Text(r#"{"type":"dance"}"#.into()))
        .await
        .expect("send");
    let err = until(&mut ws, 10, |m| m["type"] == "error").await;
    assert!(err["error"].as_str().unwrap_or("").contains("bad message"));
}

#[tokio::test]
async fn scope_keeps_other_teams_out() {
    let d = Daemon::start(&config(""));
    post(&d, logins()).await;
    let mut sales = connect(&d, "?team=sales").await;
    let mut service = connect(&d, "?teams=service").await;
    let s = next(&mut sales, 10).await;
    let v = next(&mut service, 10).await;
    let names = |m: &Value| {
        m["board"]["agents"]
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert_eq!(names(&s), ["s1"]);
    assert_eq!(names(&v), ["v1"]);
    assert!(
        s["board"]["queues"].get("service").is_none()
            && s["board"]["queues"].get("orders").is_some()
    );
    // A change of a service agent reaches the service board only.
    post(
        &d,
        ev(
            "p1",
            "08:01:00",
            "agent_state",
            r#""agent":"v1","state":"paused","reason":"break""#,
        ),
    )
    .await;
    let dv = until(&mut service, 10, |m| m["type"] == "delta").await;
    assert_eq!(dv["set"]["agents"]["v1"]["state"], "paused");
    post(
        &d,
        ev(
            "p2",
            "08:02:00",
            "agent_state",
            r#""agent":"s1","state":"paused","reason":"break""#,
        ),
    )
    .await;
    let ds = until(&mut sales, 10, |m| m["type"] == "delta").await;
    assert!(
        ds["set"]["agents"].get("v1").is_none(),
        "nothing of team service: {ds}"
    );
    assert_eq!(ds["set"]["agents"]["s1"]["state"], "paused");
    // Re-scoping with a subscribe message, longer than the server's
    // 4 KiB websocket read buffer (padded with teams that do not exist).
    let padding: Vec<String> = (0..63)
        .map(|i| format!("\"none-{i:02}-{}\"", "x".repeat(200)))
        .collect();
    let subscribe = format!(
        r#"{{"type":"subscribe","scope":{{"teams":["service",{}]}}}}"#,
        padding.join(",")
    );
    assert!(subscribe.len() > 12 * 1024);
    sales
        .send(Message::Text(subscribe.into()))
        .await
        .expect("send");
    let re = until(&mut sales, 10, |m| m["type"] == "snapshot").await;
    assert_eq!(names(&re), ["v1"]);
}

#[tokio::test]
async fn an_overdue_task_alerts_without_any_other_event() {
    let d = Daemon::start(&config("").replace("mode = \"event\"", "mode = \"system\""));
    let mut ws = connect(&d, "?kinds=callback").await;
    next(&mut ws, 10).await;
    let now = chrono::Utc::now();
    let due = (now + chrono::Duration::seconds(2)).to_rfc3339();
    let created = format!(
        r#"{{"id":"t1","ts":"{}","type":"task_created","task":"k1","kind":"callback","queue":"orders","customer":"C-9","due":"{due}"}}"#,
        now.to_rfc3339()
    );
    assert_eq!(post(&d, created).await.0, 200);
    // The alert and the overdue list's delta, in whichever order.
    let (mut alert, mut listed) = (None, false);
    while alert.is_none() || !listed {
        let m = until(&mut ws, 20, |m| {
            m["type"] == "alert" || m["set"].get("overdue").is_some()
        })
        .await;
        if m["type"] == "alert" {
            alert = Some(m);
        } else {
            listed = m["set"]["overdue"].get("k1").is_some();
        }
    }
    let alert = alert.expect("alert");
    assert_eq!(alert["alert"]["kind"], "task_overdue");
    assert_eq!(alert["alert"]["task"], "k1");
    let seen = chrono::DateTime::parse_from_rfc3339(&due)
        .expect("due")
        .timestamp_millis();
    assert!(
        alert["now"].as_i64().expect("now") >= seen,
        "sent once the deadline passed"
    );
}

#[tokio::test]
async fn roles_see_what_they_may() {
    let d = Daemon::start(&config(
        "[auth]\nwallboard_token = \"wallboard-0123456789\"\nsupervisor_token = \"supervisor-0123456789\"\n",
    ).replace("anonymous_role = \"supervisor\"", "anonymous_role = \"wallboard\"\nmin_group_size = 2\npseudonym_key = \"0123456789abcdef0123\""));
    post(&d, logins()).await;
    post(
        &d,
        ev(
            "x1",
            "08:00:00",
            "agent_login",
            r#""agent":"s2","name":"Sam Sales","team":"sales""#,
        ),
    )
    .await;
    post(&d, ev("t1", "07:00:00", "task_created", r#""task":"k1","kind":"callback","queue":"orders","customer":"C-42","due":"2026-03-02T07:30:00Z""#)).await;
    let mut wall = connect(&d, "?token=wallboard-0123456789").await;
    let w = next(&mut wall, 10).await;
    assert_eq!(w["role"], "wallboard");
    let text = w.to_string();
    for secret in ["Sara", "Sam Sales", "Vic", "C-42", "\"s1\"", "\"s2\""] {
        assert!(!text.contains(secret), "wallboard sees {secret}: {text}");
    }
    let labels: Vec<String> = w["board"]["agents"]
        .as_object()
        .expect("agents")
        .values()
        .map(|a| a["label"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(labels.len(), 3);
    assert!(
        labels
            .iter()
            .all(|l| l.starts_with("Agent ") && l.len() == 12),
        "{labels:?}"
    );
    assert!(
        w["board"]["teams"].get("sales").is_some(),
        "2 agents >= min_group_size"
    );
    assert!(
        w["board"]["teams"].get("service").is_none(),
        "a team of one is not shown"
    );
    assert!(w["board"]["overdue"]["k1"].get("customer").is_none());
    let mut sup = connect(&d, "?token=supervisor-0123456789").await;
    let s = next(&mut sup, 10).await;
    assert_eq!(s["role"], "supervisor");
    assert_eq!(s["board"]["agents"]["s1"]["label"], "Sara Sales");
    assert_eq!(s["board"]["overdue"]["k1"]["customer"], "C-42");
    // The same rules on the API.
    let c = client();
    let snap: Value = get_json_as(&d, "/api/v1/snapshot", "wallboard-0123456789").await;
    let text = snap.to_string();
    assert!(!text.contains("Sara") && !text.contains("\"s1\""), "{text}");
    let backlog: Value = get_json_as(&d, "/api/v1/backlog", "wallboard-0123456789").await;
    assert!(!backlog.to_string().contains("C-42"));
    let backlog: Value = get_json_as(&d, "/api/v1/backlog", "supervisor-0123456789").await;
    assert!(backlog.to_string().contains("C-42"));
    let r = c
        .get(d.url("/api/v1/snapshot"))
        .bearer_auth("nope-nope-nope-nope")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 401);
    let r = tokio_tungstenite::connect_async(format!("ws://{}/ws?token=wrong", d.http)).await;
    assert!(r.is_err(), "a wrong token gets no feed");
    // Without a token: the configured anonymous role (wallboard).
    let mut anon = connect(&d, "").await;
    assert_eq!(next(&mut anon, 10).await["role"], "wallboard");
}

#[tokio::test]
async fn clients_past_the_limit_are_refused_with_a_reason() {
    let d = Daemon::start(&config("[feed]\nmax_clients = 2\n"));
    let mut a = connect(&d, "").await;
    let mut b = connect(&d, "").await;
    next(&mut a, 10).await;
    next(&mut b, 10).await;
    let mut c = connect(&d, "").await;
    let frame = loop {
        match tokio::time::timeout(Duration::from_secs(10), c.next())
            .await
            .expect("answer")
        {
            Some(Ok(Message::Close(f))) => break f.expect("close frame"),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(
        (u16::from(frame.code), frame.reason.as_str()),
        (1013, "too many clients")
    );
    drop(a);
    // A freed slot is usable again.
    let mut e = wait_for(10, "a free slot", || async {
        let mut w = connect(&d, "").await;
        match tokio::time::timeout(Duration::from_secs(5), w.next()).await {
            Ok(Some(Ok(Message::Text(_)))) => Some(w),
            _ => None,
        }
    })
    .await;
    let _ = e.close(None).await;
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .expect("VmRSS")
}

#[tokio::test]
async fn a_client_that_never_reads_delays_nobody_and_is_cut_off() {
    let d = Daemon::start(&config("[feed]\nsend_timeout = \"2s\"\nmax_rate = 10\n"));
    // The slow client connects and then never reads a byte.
    let (_slow, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", d.http))
        .await
        .expect("connect");
    let mut fast = connect(&d, "").await;
    next(&mut fast, 10).await;
    let before = rss_kb(d.pid());
    // Many agents and calls: every delta is large, so the slow client's
    // socket buffers fill quickly.
    let mut id = 0;
    let long = "x".repeat(180);
    // Rounds until the slow client is cut off: how many it takes depends
    // on the kernel's socket buffers (several MB on loopback), not on
    // callwatch, so the test goes on until it happens (with a deadline).
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    let mut round = 0;
    let m = loop {
        let mut lines = Vec::new();
        for a in 0..500 {
            id += 1;
            let state = if round % 2 == 0 {
                "paused"
            } else {
                "available"
            };
            lines.push(ev(&format!("f{id}"), &format!("08:{:02}:{:02}", (round / 60) % 60, round % 60), "agent_state", &format!(r#""agent":"agent-{a:04}-with-a-long-name","state":"{state}","reason":"r{round}{long}""#)));
        }
        assert_eq!(post(&d, lines.join("\n")).await.0, 200);
        // The fast client keeps up: it sees this round's change.
        let want = if round % 2 == 0 {
            "paused"
        } else {
            "available"
        };
        until(&mut fast, 20, |m| {
            m["type"] == "delta"
                && m["set"]["agents"]["agent-0499-with-a-long-name"]["state"] == want
        })
        .await;
        round += 1;
        let m = parse_metrics(&metrics_text(&d).await);
        if m.get(r#"callwatch_feed_disconnects_total{reason="too_slow"}"#) == Some(&1.0) {
            break m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slow client was never cut off"
        );
    };
    assert_eq!(
        metric(&m, "callwatch_feed_clients"),
        1.0,
        "the fast client stays"
    );
    let after = rss_kb(d.pid());
    assert!(
        after < before + 64 * 1024,
        "memory stayed bounded: {before} kB -> {after} kB"
    );
}

#[tokio::test]
async fn tail_prints_the_feed() {
    let d = Daemon::start(&config(""));
    post(&d, logins()).await;
    let mut child = tokio::process::Command::new(BIN)
        .args([
            "tail",
            "--url",
            &format!("ws://{}/ws", d.http),
            "--scope",
            "team=sales",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("tail");
    let out = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(out));
    let first = line_matching(&mut lines, 20, |l| l.contains("\"snapshot\"")).await;
    let v: Value = serde_json::from_str(&first).expect("one JSON message per line");
    assert!(v["board"]["agents"].get("s1").is_some() && v["board"]["agents"].get("v1").is_none());
    let _ = child.kill().await;
}

#[tokio::test]
async fn a_silent_client_is_closed_for_idleness() {
    let d = Daemon::start(&config(
        "[feed]\nping_interval = \"200ms\"\nidle_timeout = \"1s\"\n",
    ));
    // Connects and then never reads, so it never answers a ping.
    let (_silent, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", d.http))
        .await
        .expect("connect");
    // A live client keeps reading (the library answers pings as it reads).
    let mut live = connect(&d, "").await;
    let reader = tokio::spawn(async move {
        let mut n = 0u32;
        while let Some(Ok(m)) = live.next().await {
            if matches!(m, Message::Text(_)) {
                n += 1;
            }
        }
        n
    });
    let m = wait_for(20, "the silent client to be closed", || async {
        let m = parse_metrics(&metrics_text(&d).await);
        (m.get(r#"callwatch_feed_disconnects_total{reason="idle"}"#) == Some(&1.0)).then_some(m)
    })
    .await;
    assert_eq!(
        metric(&m, "callwatch_feed_clients"),
        1.0,
        "the reading client stays"
    );
    assert!(!reader.is_finished());
    reader.abort();
}

/// Issue 18: a message over the feed's 64 KiB limit gets the documented
/// 1009 close (before, one over tungstenite's limit got a TCP reset),
/// and a subscribe scope is bounded like the query form: one naming
/// 5,000 queues is refused whole and the old scope stays.
#[tokio::test]
async fn oversized_messages_are_closed_with_1009_and_scopes_are_bounded() {
    let d = Daemon::start(&config(""));
    let mut ws = connect(&d, "?queues=orders").await;
    next(&mut ws, 10).await;
    let queues: Vec<String> = (0..5000).map(|i| format!("\"q{i}\"")).collect();
    let huge = format!(
        r#"{{"type":"subscribe","scope":{{"queues":[{}]}}}}"#,
        queues.join(",")
    );
    assert!(huge.len() < 64 * 1024);
    ws.send(Message::Text(huge.into())).await.expect("send");
    let err = until(&mut ws, 10, |m| m["type"] == "error").await;
    assert!(
        err["error"]
            .as_str()
            .is_some_and(|e| e.contains("at most 64")),
        "{err}"
    );
    // Still subscribed, to the old scope.
    ws.send(Message::Text(r#"{"type":"resync"}"#.into()))
        .await
        .expect("send");
    let snap = until(&mut ws, 10, |m| m["type"] == "snapshot").await;
    assert_eq!(snap["scope"]["queues"], serde_json::json!(["orders"]));
    for size in [100 * 1024, 2 << 20] {
        let mut ws = connect(&d, "").await;
        next(&mut ws, 10).await;
        let _ = ws.send(Message::Text("x".repeat(size).into())).await;
        let code = loop {
            match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                Ok(Some(Ok(Message::Close(Some(f))))) => break u16::from(f.code),
                Ok(Some(Ok(_))) => continue,
                other => panic!("{size} bytes: no close frame but {other:?}"),
            }
        };
        assert_eq!(code, 1009, "{size} bytes");
    }
}
