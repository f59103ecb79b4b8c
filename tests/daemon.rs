//! End-to-end tests of the daemon: the real binary, real sockets.

mod common;

use common::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[tokio::test]
async fn scripted_day_over_http() {
    let d = Daemon::start(&config(""));
    // Half as a JSON array, half as NDJSON: both formats are ingest.
    let day = scripted_day();
    let (first, second) = day.split_at(20);
    let (status, reply) = post(&d, format!("[{}]", first.join(","))).await;
    assert_eq!(
        (status, reply["accepted"].as_u64()),
        (200, Some(20)),
        "{reply}"
    );
    let (status, reply) = post(&d, second.join("\n")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["accepted"].as_u64(), Some(second.len() as u64));
    let snap = get_json(&d, "/api/v1/snapshot").await;
    let m = parse_metrics(&metrics_text(&d).await);
    assert_day(&snap, &m);
    assert_eq!(
        metric(&m, r#"callwatch_events_received_total{source="http"}"#),
        day.len() as f64
    );

    // Resending the whole day changes nothing: every id is a duplicate.
    let (status, reply) = post(&d, day.join("\n")).await;
    assert_eq!(
        (status, reply["duplicates"].as_u64()),
        (200, Some(day.len() as u64))
    );
    let mut again = get_json(&d, "/api/v1/snapshot").await;
    assert_eq!(
        again["events"]["duplicates"].as_u64(),
        Some(day.len() as u64)
    );
    again["events"] = snap["events"].clone();
    assert!(again == snap, "resent duplicates changed the state");
    let m = parse_metrics(&metrics_text(&d).await);
    assert_eq!(
        metric(&m, "callwatch_events_duplicate_total"),
        day.len() as f64
    );

    // The backlog list: most urgent first, filters, customer refs.
    let b = get_json(&d, "/api/v1/backlog?queue=orders").await;
    let ids: Vec<&str> = b["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["task"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ids, ["k4", "k6", "k1", "k5"]);
    assert_eq!(b["tasks"][0]["overdue"], true);
    assert_eq!(b["tasks"][0]["time_left_s"], -3000.0);
    assert_eq!(b["tasks"][1]["customer"], "C-6");
    let b = get_json(&d, "/api/v1/backlog?kind=callback&due_soon=true").await;
    assert_eq!(b["total"], 1);
    let b = get_json(&d, "/api/v1/backlog?overdue=true").await;
    assert_eq!(b["tasks"][0]["task"], "k4");
    assert_eq!(get_json(&d, "/api/v1/backlog?site=hq").await["total"], 4);
    assert_eq!(
        get_json(&d, "/api/v1/backlog?site=elsewhere").await["total"],
        0
    );
    let b = get_json(&d, "/api/v1/backlog?kind=callback").await;
    assert_eq!(
        (
            b["tasks"][0]["source"].as_str(),
            b["tasks"][0]["requests"].as_u64()
        ),
        (Some("requested"), Some(1))
    );
    let r = client()
        .get(d.url("/api/v1/backlog?bogus=1"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 400);
}

#[tokio::test]
async fn scripted_day_over_tcp() {
    let d = Daemon::start(&config(""));
    let tcp = d.tcp.expect("tcp listener");
    let mut s = TcpStream::connect(tcp).await.expect("connect");
    let day = scripted_day();
    // Written in uneven chunks, so lines straddle reads.
    let all = day.join("\n") + "\n";
    for chunk in all.as_bytes().chunks(777) {
        s.write_all(chunk).await.expect("write");
    }
    let (r, _w) = s.into_split();
    let mut lines = BufReader::new(r).lines();
    let want = format!("ACK {}", day.len());
    line_matching(&mut lines, 30, |l| {
        assert!(!l.starts_with("ERR"), "unexpected {l}");
        l == want
    })
    .await;
    let snap = get_json(&d, "/api/v1/snapshot").await;
    let m = parse_metrics(&metrics_text(&d).await);
    assert_day(&snap, &m);
    assert_eq!(
        metric(&m, r#"callwatch_events_received_total{source="tcp"}"#),
        day.len() as f64
    );
}

/// With small batches several are in flight at once over one connection;
/// ACKs must still come in line order, each after the ERR lines of the
/// lines it covers (decode errors found by the connection and engine
/// rejections found by the writer alike).
#[tokio::test]
async fn tcp_acks_stay_in_order_across_pipelined_batches() {
    let d = Daemon::start(&config("").replacen("[server]\n", "[server]\ntcp_batch = 3\n", 1));
    let tcp = d.tcp.expect("tcp listener");
    let s = TcpStream::connect(tcp).await.expect("connect");
    let (r, mut w) = s.into_split();
    let n = 20;
    let mut all = String::new();
    for i in 1..=n {
        let line = match i % 7 {
            2 => "{not json".to_string(),
            5 => ev(
                &format!("e{i}"),
                "08:00:00",
                "call_hold",
                r#""call":"nope""#,
            ),
            _ => ev(
                &format!("e{i}"),
                "08:00:00",
                "agent_state",
                r#""agent":"a1","state":"available""#,
            ),
        };
        all.push_str(&line);
        all.push('\n');
    }
    w.write_all(all.as_bytes()).await.expect("write");
    let mut lines = BufReader::new(r).lines();
    let (mut last_ack, mut errs) = (0u64, Vec::new());
    let want = format!("ACK {n}");
    loop {
        let l = line_matching(&mut lines, 30, |_| true).await;
        if let Some(a) = l.strip_prefix("ACK ") {
            let a: u64 = a.parse().expect("ACK number");
            assert!(a > last_ack, "ACK {a} after ACK {last_ack}");
            last_ack = a;
        } else {
            let no: u64 = l
                .split(' ')
                .nth(1)
                .and_then(|x| x.parse().ok())
                .unwrap_or_else(|| panic!("unexpected line {l}"));
            assert!(no > last_ack, "ERR for line {no} after ACK {last_ack}: {l}");
            errs.push(no);
        }
        if l == want {
            break;
        }
    }
    assert_eq!(errs, [2, 5, 9, 12, 16, 19]);
}

#[tokio::test]
async fn offline_replay_equals_the_daemon() {
    let d = Daemon::start(&config(""));
    let day = scripted_day();
    post(&d, day.join("\n")).await;
    let live = get_json(&d, "/api/v1/snapshot").await;
    let cfg = d.dir.path().join("callwatch.toml");
    let file = d.dir.path().join("day.ndjson");
    std::fs::write(&file, day.join("\n")).expect("write");
    assert_eq!(replay_offline(&cfg, &file), live);
}

#[tokio::test]
async fn replay_offline_of_a_fixed_seed_is_deterministic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("sim.ndjson");
    let sim = std::process::Command::new(BIN)
        .args([
            "simulate", "--stdout", "--seed", "42", "--agents", "40", "--rate", "3", "--events",
            "30000",
        ])
        .output()
        .expect("simulate");
    assert!(sim.status.success());
    std::fs::write(&file, &sim.stdout).expect("write");
    let run = || {
        let out = std::process::Command::new(BIN)
            .arg("replay")
            .arg(&file)
            .arg("--offline")
            .output()
            .expect("replay");
        assert!(out.status.success());
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            err.contains("30000 lines: 30000 applied, 0 duplicates, 0 rejected"),
            "{err}"
        );
        out.stdout
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b);
    let snap: serde_json::Value = serde_json::from_slice(&a).expect("json");
    let offered: u64 = snap["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .map(|q| q["totals"]["offered"].as_u64().unwrap_or(0))
        .sum();
    assert!(offered > 1000, "the simulator produced calls: {offered}");
}

#[tokio::test]
async fn bad_input_is_refused_precisely_and_costs_nothing_else() {
    let d = Daemon::start(&config("").replace(
        "[server]\n",
        "[server]\nmax_body_bytes = 65536\nmax_line_bytes = 65536\nmax_events_per_request = 50\n",
    ));
    let lines = [
        ev(
            "ok1",
            "08:00:00",
            "call_offered",
            r#""call":"c1","queue":"orders""#,
        ),
        "{\"id\":\"bad1\",\"ts\":".to_string(),
        ev("bad2", "08:00:01", "fax_received", r#""call":"c1""#),
        ev("bad3", "08:00:02", "call_answered", r#""call":"c1""#),
        ev("bad4", "08:00:03", "call_hold", r#""call":17"#),
        r#"{"id":"bad5","ts":"02.03.2026 08:00","type":"call_hold","call":"c1"}"#.to_string(),
        ev(
            "bad6",
            "08:00:05",
            "sale",
            r#""sale":"s1","agent":"a1","kind":"new","quantity":-2,"unit_price":5"#,
        ),
        ev("bad7", "08:00:06", "call_ended", r#""call":"ghost""#),
        ev("bad8", "08:00:07", "task_completed", r#""task":"ghost""#),
        ev(
            "ok2",
            "08:00:10",
            "call_answered",
            r#""call":"c1","agent":"a1""#,
        ),
    ];
    let (status, reply) = post(&d, lines.join("\n")).await;
    assert_eq!(status, 422);
    assert_eq!(reply["accepted"], 2);
    let rej = reply["rejected"].as_array().expect("rejected");
    let got: Vec<(u64, &str)> = rej
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap_or(99),
                r["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, "malformed_json"),
            (2, "unknown_type"),
            (3, "missing_field"),
            (4, "invalid_field"),
            (5, "bad_timestamp"),
            (6, "invalid_value"),
            (7, "unknown_call"),
            (8, "unknown_task"),
        ]
    );
    assert_eq!(rej[1]["error"], "unknown event type \"fax_received\"");
    assert_eq!(
        rej[2]["error"],
        "missing field `agent` (required for call_answered)"
    );
    assert_eq!(rej[2]["id"], "bad3");
    assert!(rej[3]["error"]
        .as_str()
        .unwrap_or("")
        .contains("invalid type: integer `17`"));
    assert_eq!(
        rej[5]["error"],
        "`quantity` must be a finite number >= 0, got -2"
    );
    assert_eq!(
        rej[6]["error"],
        "call \"ghost\" is not live (no call_offered seen)"
    );
    let snap = get_json(&d, "/api/v1/snapshot").await;
    let orders = snap["queues"]
        .as_array()
        .expect("q")
        .iter()
        .find(|q| q["name"] == "orders")
        .expect("orders")
        .clone();
    assert_eq!(
        (
            orders["totals"]["offered"].as_u64(),
            orders["totals"]["answered"].as_u64()
        ),
        (Some(1), Some(1))
    );

    // A body that is not an array of objects at all.
    let (status, reply) = post(&d, "[{\"id\":1},".into()).await;
    assert_eq!(
        (status, reply["reason"].as_str()),
        (400, Some("malformed_json"))
    );
    // A JSON array with one bad element: the others still count.
    let arr = format!(
        "[{},{{\"id\":\"x\"}}]",
        ev(
            "ok3",
            "08:01:00",
            "call_offered",
            r#""call":"c2","queue":"orders""#
        )
    );
    let (status, reply) = post(&d, arr).await;
    assert_eq!((status, reply["accepted"].as_u64()), (422, Some(1)));
    assert_eq!(reply["rejected"][0]["reason"], "missing_field");
    // Over the body limit (64 KiB in this config).
    let big = format!(
        "{}\n",
        ev(
            "big",
            "08:00:00",
            "call_hold",
            &format!(r#""call":"{}""#, "x".repeat(70_000))
        )
    );
    let (status, reply) = post(&d, big).await;
    assert_eq!((status, reply["reason"].as_str()), (413, Some("too_large")));
    // Over the per-request event limit (50 in this config).
    let many: Vec<String> = (0..51)
        .map(|i| ev(&format!("m{i}"), "08:02:00", "call_hold", r#""call":"c1""#))
        .collect();
    let (status, _) = post(&d, many.join("\n")).await;
    assert_eq!(status, 413);

    let m = parse_metrics(&metrics_text(&d).await);
    for reason in [
        "malformed_json",
        "unknown_type",
        "missing_field",
        "invalid_field",
        "bad_timestamp",
        "invalid_value",
        "unknown_call",
        "unknown_task",
    ] {
        let want = match reason {
            "malformed_json" | "missing_field" => 2.0,
            _ => 1.0,
        };
        assert_eq!(
            metric(
                &m,
                &format!(r#"callwatch_events_rejected_total{{source="http",reason="{reason}"}}"#)
            ),
            want,
            "{reason}"
        );
    }
    assert_eq!(
        metric(
            &m,
            r#"callwatch_events_rejected_total{source="http",reason="too_large"}"#
        ),
        52.0
    );
}

#[tokio::test]
async fn tcp_garbage_client_is_cut_off_and_others_carry_on() {
    let d = Daemon::start(&config("").replace("[server]\n", "[server]\nmax_bad_lines = 5\n"));
    let tcp = d.tcp.expect("tcp");
    let good = TcpStream::connect(tcp).await.expect("connect good");
    let (gr, mut gw) = good.into_split();
    let mut good_lines = BufReader::new(gr).lines();
    let bad = TcpStream::connect(tcp).await.expect("connect bad");
    let (br, mut bw) = bad.into_split();
    let mut bad_lines = BufReader::new(br).lines();

    // An overlong line is refused without killing the connection.
    let long = format!("{}\n", "y".repeat(70_000));
    bw.write_all(long.as_bytes()).await.expect("write");
    let l = bad_lines.next_line().await.expect("read").expect("line");
    assert_eq!(l, "ERR 1 too_large line longer than 65536 bytes");
    assert_eq!(
        bad_lines.next_line().await.expect("read").as_deref(),
        Some("ACK 1")
    );
    gw.write_all(
        format!(
            "{}\n",
            ev(
                "g1",
                "08:00:00",
                "call_offered",
                r#""call":"c1","queue":"orders""#
            )
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    assert_eq!(
        good_lines.next_line().await.expect("read").as_deref(),
        Some("ACK 1")
    );
    // Garbage until the limit (5 bad lines in this config).
    for _ in 0..4 {
        bw.write_all(b"this is not json\n").await.expect("write");
    }
    let closing = line_matching(&mut bad_lines, 30, |l| l.starts_with("ERR closing")).await;
    assert_eq!(closing, "ERR closing: 5 bad lines (server.max_bad_lines)");
    assert_eq!(
        bad_lines.next_line().await.ok().flatten(),
        None,
        "connection closed"
    );
    // The good client is unaffected.
    gw.write_all(
        format!(
            "{}\n",
            ev(
                "g2",
                "08:00:05",
                "call_answered",
                r#""call":"c1","agent":"a1""#
            )
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    assert_eq!(
        good_lines.next_line().await.expect("read").as_deref(),
        Some("ACK 2")
    );
    let m = parse_metrics(&metrics_text(&d).await);
    assert_eq!(
        metric(&m, r#"callwatch_tcp_disconnects_total{reason="bad_lines"}"#),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            r#"callwatch_events_rejected_total{source="tcp",reason="malformed_json"}"#
        ),
        4.0
    );
    assert_eq!(
        metric(&m, r#"callwatch_calls_answered_total{queue="orders"}"#),
        1.0
    );
}

#[tokio::test]
async fn tokens_guard_ingest_and_reads() {
    let d = Daemon::start(&config(
        "[auth]\ningest_token = \"ingest-secret-0123456789\"\nread_token = \"read-secret-0123456789\"\n",
    ));
    let c = client();
    let line = ev(
        "t1",
        "08:00:00",
        "call_offered",
        r#""call":"c1","queue":"orders""#,
    );
    let r = c
        .post(d.url("/api/v1/events"))
        .body(line.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 401);
    let r = c
        .post(d.url("/api/v1/events"))
        .bearer_auth("ingest-secret-0123456789")
        .body(line)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 200);
    for path in ["/metrics", "/api/v1/snapshot", "/api/v1/backlog"] {
        assert_eq!(
            c.get(d.url(path))
                .send()
                .await
                .expect("get")
                .status()
                .as_u16(),
            401,
            "{path}"
        );
        let r = c
            .get(d.url(path))
            .bearer_auth("ingest-secret-0123456789")
            .send()
            .await
            .expect("get");
        assert_eq!(
            r.status().as_u16(),
            401,
            "the ingest token does not read {path}"
        );
        let r = c
            .get(d.url(path))
            .bearer_auth("read-secret-0123456789")
            .send()
            .await
            .expect("get");
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    assert_eq!(
        c.get(d.url("/healthz"))
            .send()
            .await
            .expect("get")
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        c.get(d.url("/readyz"))
            .send()
            .await
            .expect("get")
            .status()
            .as_u16(),
        200
    );

    let tcp = d.tcp.expect("tcp");
    let (r, mut w) = TcpStream::connect(tcp).await.expect("connect").into_split();
    let mut lines = BufReader::new(r).lines();
    w.write_all(b"{\"id\":\"x\"}\n").await.expect("write");
    assert_eq!(
        lines.next_line().await.expect("read").as_deref(),
        Some("ERR auth required: send AUTH <token> first")
    );
    assert_eq!(lines.next_line().await.ok().flatten(), None);
    let (r, mut w) = TcpStream::connect(tcp).await.expect("connect").into_split();
    let mut lines = BufReader::new(r).lines();
    w.write_all(b"AUTH ingest-secret-0123456789\n")
        .await
        .expect("write");
    assert_eq!(
        lines.next_line().await.expect("read").as_deref(),
        Some("OK")
    );
    w.write_all(
        format!(
            "{}\n",
            ev("t2", "08:00:01", "call_abandoned", r#""call":"c1""#)
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    assert_eq!(
        lines.next_line().await.expect("read").as_deref(),
        Some("ACK 1")
    );
}

/// Runs `promtool check metrics` on an exposition; panics with its
/// findings.
fn promtool_check(text: &str, when: &str) {
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed (apt-get install prometheus)");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed {when}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn promtool_accepts_every_scrape_open_tasks_in_every_band_restart_and_retention() {
    let cfg = config("[limits]\nevent_max_age = \"30d\"\n");
    let data = tempfile::tempdir().expect("data");
    let dir = data.path().to_str().expect("path").to_string();
    let d = Daemon::start_args(&cfg, &["--data-dir", &dir]);
    // Before any event: every family is there, the configured queues and
    // task kinds at 0.
    let fresh = metrics_text(&d).await;
    promtool_check(&fresh, "before any event");
    let m = parse_metrics(&fresh);
    for kind in ["callback", "offer", "order_confirmation"] {
        for queue in ["orders", "service"] {
            let s = format!(r#"callwatch_backlog_tasks{{kind="{kind}",queue="{queue}"}}"#);
            assert_eq!(metric(&m, &s), 0.0, "{s}");
        }
    }
    assert!(fresh.contains("# TYPE callwatch_task_completion_seconds histogram"));
    assert!(
        m.keys().any(|k| k.starts_with("process_")),
        "process metrics"
    );
    // Gzip when asked, the same exposition inside.
    let r = reqwest::Client::new()
        .get(d.url("/metrics"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("get");
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let zipped = r.bytes().await.expect("body");
    let mut text = String::new();
    use std::io::Read as _;
    flate2::read::GzDecoder::new(&zipped[..])
        .read_to_string(&mut text)
        .expect("gzip");
    assert!(text.contains("callwatch_backlog_tasks{kind=\"offer\",queue=\"orders\"} 0"));
    assert!(zipped.len() * 3 < text.len(), "compressed");
    // Open tasks of every kind in every age band (the last event, at
    // 2026-03-10T12:00Z, is "now" on the event clock).
    let now = chrono::DateTime::parse_from_rfc3339("2026-03-10T12:00:00Z").expect("ts");
    let ages_min: [i64; 9] = [5, 30, 120, 360, 720, 1800, 4000, 8000, 11_000];
    let mut lines = Vec::new();
    for (k, kind) in ["callback", "offer", "order_confirmation"]
        .iter()
        .enumerate()
    {
        for (i, age) in ages_min.iter().enumerate() {
            let ts = (now - chrono::Duration::minutes(*age)).to_rfc3339();
            lines.push(format!(
                r#"{{"id":"t{k}-{i}","ts":"{ts}","type":"task_created","task":"task-{k}-{i}","kind":"{kind}","queue":"orders","customer":"C-{k}{i}"}}"#
            ));
        }
    }
    lines.sort_by_key(|l| l[l.find("\"ts\"").unwrap_or(0)..].to_string());
    lines.push(format!(
        r#"{{"id":"a1","ts":"{}","type":"agent_login","agent":"agent-7","team":"sales","queues":["orders"]}}"#,
        now.to_rfc3339()
    ));
    let (status, reply) = post(&d, lines.join("\n")).await;
    assert_eq!(status, 200, "{reply}");
    let text = metrics_text(&d).await;
    promtool_check(&text, "with open tasks in every band");
    let m = parse_metrics(&text);
    for kind in ["callback", "offer", "order_confirmation"] {
        for band in [
            "0-15m", "15m-1h", "1h-4h", "4h-8h", "8h-1d", "1d-2d", "2d-4d", "4d-7d", "7d+",
        ] {
            let s = format!(
                r#"callwatch_backlog_tasks_by_age_band{{kind="{kind}",queue="orders",age_band="{band}"}}"#
            );
            assert_eq!(metric(&m, &s), 1.0, "{s}");
        }
    }
    assert!(m.contains_key(r#"callwatch_agent_state{agent="agent-7",state="available"}"#));
    // A minute of event time later the retention sweep has run.
    let hb = (now + chrono::Duration::seconds(61)).to_rfc3339();
    let (status, _) = post(
        &d,
        format!(r#"{{"id":"hb","ts":"{hb}","type":"heartbeat"}}"#),
    )
    .await;
    assert_eq!(status, 200);
    promtool_check(&metrics_text(&d).await, "after a retention sweep");
    // After a restart on the same data.
    let before = parse_metrics(&metrics_text(&d).await);
    d.terminate();
    let d = Daemon::start_args(&cfg, &["--data-dir", &dir]);
    let text = metrics_text(&d).await;
    promtool_check(&text, "after a restart");
    let after = parse_metrics(&text);
    let band = r#"callwatch_backlog_tasks_by_age_band{kind="offer",queue="orders",age_band="7d+"}"#;
    assert_eq!(metric(&after, band), metric(&before, band));
}

#[tokio::test]
async fn promtool_accepts_a_scrape_under_simulated_load() {
    let d = Daemon::start_args(
        &config("").replace("mode = \"event\"", "mode = \"system\""),
        &["--demo"],
    );
    // Wait until the simulator has produced calls and sales.
    let text = wait_for(120, "simulated traffic in the scrape", || async {
        let t = metrics_text(&d).await;
        let m = parse_metrics(&t);
        let answered: f64 = m
            .iter()
            .filter(|(k, _)| k.starts_with("callwatch_calls_answered_total"))
            .map(|(_, v)| v)
            .sum();
        (answered >= 3.0).then_some(t)
    })
    .await;
    promtool_check(&text, "under simulated load");
    let m = parse_metrics(&text);
    assert!(metric(&m, r#"callwatch_events_received_total{source="simulator"}"#) > 0.0);
    assert_eq!(metric(&m, r#"callwatch_build_info{version="0.1.0"}"#), 1.0);
}

#[test]
fn check_config_reports_each_problem_with_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[sales]\ncurrency = \"euro\"\n[[queues]]\nname = \"\"\n[limits]\nmax_queues = 0\n",
    )
    .expect("write");
    let out = std::process::Command::new(BIN)
        .arg("check-config")
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for path in ["limits.max_queues", "sales.currency", "queues[0].name"] {
        assert!(
            err.contains(&format!("bad.toml: {path}: ")),
            "{path} missing in {err}"
        );
    }
    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "[server]\nhtp = \"127.0.0.1:1\"\n").expect("write");
    let out = std::process::Command::new(BIN)
        .arg("check-config")
        .arg(&typo)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `htp`"));
    let good = concat!(env!("CARGO_MANIFEST_DIR"), "/config/callwatch.toml");
    let out = std::process::Command::new(BIN)
        .args(["check-config", good])
        .output()
        .expect("run");
    assert!(out.status.success());
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let d = Daemon::start(&config(""));
    let st = d.terminate();
    assert!(st.success(), "exit status {st:?}");
}

#[tokio::test]
async fn sighup_does_not_kill_the_daemon() {
    // systemd's usual `ExecReload=kill -HUP $MAINPID` took the service
    // down: SIGHUP had no handler.
    let d = Daemon::start(&config(""));
    let st = std::process::Command::new("kill")
        .args(["-HUP", &d.pid().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    d.log_until("SIGHUP", 10);
    let (status, _) = post(
        &d,
        ev("hup-1", "08:00:00", "agent_login", r#""agent":"a1""#),
    )
    .await;
    assert_eq!(status, 200, "still serving after SIGHUP");
    let st = d.terminate();
    assert!(st.success(), "exit status {st:?}");
}

#[tokio::test]
async fn replay_to_a_daemon_and_simulate_live() {
    let d = Daemon::start(&config(""));
    let file = d.dir.path().join("day.ndjson");
    std::fs::write(&file, scripted_day().join("\n")).expect("write");
    let out = tokio::process::Command::new(BIN)
        .arg("replay")
        .arg(&file)
        .args(["--to", &d.url("")])
        .output()
        .await
        .expect("replay");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("sent 41: 41 accepted, 0 duplicates, 0 rejected"),
        "{err}"
    );
    let snap = get_json(&d, "/api/v1/snapshot").await;
    let m = parse_metrics(&metrics_text(&d).await);
    assert_day(&snap, &m);

    // The live simulator posts real-time events to a daemon on the wall clock.
    let live = Daemon::start(&config("").replace("mode = \"event\"", "mode = \"system\""));
    let out = tokio::process::Command::new(BIN)
        .args([
            "simulate",
            "--rate",
            "200",
            "--agents",
            "20",
            "--events",
            "300",
            "--to",
            &live.url(""),
        ])
        .output()
        .await
        .expect("simulate");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("sent 300: 300 accepted, 0 duplicates, 0 rejected"),
        "{err}"
    );
    let snap = get_json(&live, "/api/v1/snapshot").await;
    assert_eq!(snap["events"]["applied"], 300);
}

#[tokio::test]
async fn per_agent_series_are_off_unless_allowed() {
    let d =
        Daemon::start(&config("").replace("per_agent_metrics = true", "per_agent_metrics = false"));
    post(&d, scripted_day().join("\n")).await;
    let text = metrics_text(&d).await;
    assert!(
        !text.contains("callwatch_agent_"),
        "per-agent series exported although disabled"
    );
    assert!(!text.contains("agent=\""), "an agent label leaked");
    assert!(text.contains("callwatch_agents{state=\"available\",team=\"sales\",site=\"hq\"} 2"));
}

#[tokio::test]
async fn a_callback_goes_overdue_between_two_scrapes_without_events() {
    // Real clock; an abandoned caller is owed a callback with a 4 s SLA.
    let cfg = config("")
        .replace("mode = \"event\"", "mode = \"system\"")
        .replace(
            "[[queues]]\nname = \"orders\"\n",
            "[[queues]]\nname = \"orders\"\nabandon_creates_callback = true\nabandon_min_wait = \"0s\"\n",
        )
        .replace("sla = \"4h\"\ndue_soon = \"30m\"", "sla = \"4s\"\ndue_soon = \"2s\"");
    let d = Daemon::start(&cfg);
    let now = chrono::Utc::now();
    let ts = |offset_ms: i64| (now + chrono::Duration::milliseconds(offset_ms)).to_rfc3339();
    let body = [
        format!(
            r#"{{"id":"o1","ts":"{}","type":"call_offered","call":"c1","queue":"orders","customer":"C-77"}}"#,
            ts(-1000)
        ),
        format!(
            r#"{{"id":"o2","ts":"{}","type":"call_abandoned","call":"c1"}}"#,
            ts(0)
        ),
    ];
    let (status, reply) = post(&d, body.join("\n")).await;
    assert_eq!(status, 200, "{reply}");
    let kq = r#"{kind="callback",queue="orders"}"#;
    let first = parse_metrics(&metrics_text(&d).await);
    assert_eq!(metric(&first, &format!("callwatch_backlog_tasks{kq}")), 1.0);
    assert_eq!(
        metric(&first, &format!("callwatch_backlog_overdue_tasks{kq}")),
        0.0
    );
    assert_eq!(
        metric(&first, &format!("callwatch_task_sla_breaches_total{kq}")),
        0.0
    );
    assert_eq!(
        metric(
            &first,
            r#"callwatch_callbacks_owed_created_total{queue="orders",source="abandoned"}"#
        ),
        1.0
    );
    // No event from here on: the deadline passes, the next scrapes see it
    // overdue (a view of the wall clock), and within a second the daemon's
    // own heartbeat moves the engine's clock past it: a breach (state).
    wait_for(30, "the callback to go overdue", || async {
        let m = parse_metrics(&metrics_text(&d).await);
        (metric(&m, &format!("callwatch_backlog_overdue_tasks{kq}")) == 1.0).then_some(m)
    })
    .await;
    let later = wait_for(30, "the breach to be counted", || async {
        let m = parse_metrics(&metrics_text(&d).await);
        (metric(&m, &format!("callwatch_task_sla_breaches_total{kq}")) >= 1.0).then_some(m)
    })
    .await;
    assert_eq!(
        metric(&later, &format!("callwatch_task_sla_breaches_total{kq}")),
        1.0
    );
    assert!(metric(&later, &format!("callwatch_backlog_next_due_seconds{kq}")) < 0.0);
    let again = parse_metrics(&metrics_text(&d).await);
    assert_eq!(
        metric(&again, &format!("callwatch_task_sla_breaches_total{kq}")),
        1.0,
        "counted once"
    );
    let list = get_json(&d, "/api/v1/backlog?overdue=true").await;
    assert_eq!(list["tasks"][0]["task"], "cb-c1");
    assert_eq!(list["tasks"][0]["call"], "c1");
    assert_eq!(list["tasks"][0]["source"], "abandoned");
    // Completing it late keeps the single breach.
    let done = format!(
        r#"{{"id":"o3","ts":"{}","type":"task_completed","task":"cb-c1","agent":"a1"}}"#,
        chrono::Utc::now().to_rfc3339()
    );
    assert_eq!(post(&d, done).await.0, 200);
    let m = parse_metrics(&metrics_text(&d).await);
    assert_eq!(
        metric(&m, &format!("callwatch_task_sla_breaches_total{kq}")),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            r#"callwatch_tasks_completed_total{kind="callback",queue="orders",sla="missed"}"#
        ),
        1.0
    );
}

/// `--version` names the release and the git revision the binary was
/// built from, so a bug report says exactly which code ran.
#[test]
fn version_names_the_release_and_the_git_revision() {
    let out = std::process::Command::new(BIN)
        .arg("--version")
        .output()
        .expect("run");
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let rev = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(
        said,
        format!("callwatch {} ({rev})", env!("CARGO_PKG_VERSION"))
    );
}

/// The licence Cargo.toml declares is the one shipped, and the changelog
/// has an entry for the version being built.
#[test]
fn licence_and_changelog_match_the_package() {
    let root = env!("CARGO_MANIFEST_DIR");
    let licence = std::fs::read_to_string(format!("{root}/LICENSE")).expect("LICENSE");
    assert!(licence.contains("Apache License") && licence.contains("Version 2.0"));
    let manifest = std::fs::read_to_string(format!("{root}/Cargo.toml")).expect("Cargo.toml");
    assert!(manifest.contains("license = \"Apache-2.0\""));
    let changelog = std::fs::read_to_string(format!("{root}/CHANGELOG.md")).expect("CHANGELOG");
    assert!(changelog.contains("## [Unreleased]"));
    assert!(
        changelog.contains(&format!("## [{}] - ", env!("CARGO_PKG_VERSION"))),
        "no entry for {}",
        env!("CARGO_PKG_VERSION")
    );
}
