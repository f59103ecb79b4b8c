//! The client examples in `examples/clients/` (curl, Python standard
//! library, Node without dependencies) run against the real daemon: what
//! they send is applied, a refused event makes them exit 1 naming it,
//! and a daemon that is not up yet is retried until it is.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

const TOKEN: &str = "example-ingest-token-0123";
const CLIENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/clients");

/// (program, script, protocol)
const SENDERS: [(&str, &str, &str); 5] = [
    ("python3", "send_tcp.py", "tcp"),
    ("python3", "send_http.py", "http"),
    ("node", "send_tcp.mjs", "tcp"),
    ("node", "send_http.mjs", "http"),
    ("sh", "send_http.sh", "http"),
];

fn events(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            ev(
                &format!("{prefix}-{i}"),
                "09:00:00",
                "task_created",
                &format!(r#""task":"{prefix}-t{i}","kind":"callback","queue":"orders""#),
            )
        })
        .collect()
}

fn command(program: &str, script: &str, target: &str, file: &Path) -> Command {
    let mut c = Command::new(program);
    c.arg(Path::new(CLIENTS).join(script))
        .arg(target)
        .arg(file)
        .env("CALLWATCH_TOKEN", TOKEN)
        .env("CALLWATCH_RETRY_FOR", "30")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn target(proto: &str, http: std::net::SocketAddr, tcp: std::net::SocketAddr) -> String {
    match proto {
        "tcp" => tcp.to_string(),
        _ => format!("http://{http}"),
    }
}

/// Events applied, or `None` while the writer is too busy to publish a
/// view (503, docs/api.md).
async fn applied(d: &Daemon) -> Option<u64> {
    let r = client().get(d.url("/api/v1/snapshot")).send().await.ok()?;
    let v: serde_json::Value = serde_json::from_str(&r.text().await.ok()?).ok()?;
    v["events"]["applied"].as_u64()
}

/// `cfg` listening on these ports instead of ephemeral ones.
fn on_ports(cfg: String, http: u16, tcp: u16) -> String {
    cfg.replace(
        "http = \"127.0.0.1:0\"",
        &format!("http = \"127.0.0.1:{http}\""),
    )
    .replace(
        "ingest_tcp = \"127.0.0.1:0\"",
        &format!("ingest_tcp = \"127.0.0.1:{tcp}\""),
    )
}

fn auth() -> String {
    format!("[auth]\ningest_token = \"{TOKEN}\"\n")
}

#[tokio::test]
async fn every_sender_delivers_and_names_what_was_refused() {
    let d = Daemon::start(&config(&auth()));
    let mut expected = 0u64;
    for (n, (program, script, proto)) in SENDERS.iter().enumerate() {
        let mut lines = events(&format!("ok{n}"), 2500);
        let file = d.dir.path().join(format!("ok{n}.ndjson"));
        std::fs::write(&file, lines.join("\n")).expect("write");
        let to = target(proto, d.http, d.tcp.expect("tcp"));
        let out = command(program, script, &to, &file).output().expect("run");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        expected += 2500;
        // A bad event among good ones: the others applied, exit 1, the
        // reason printed.
        lines = events(&format!("bad{n}"), 10);
        lines[4] = ev(
            &format!("bad{n}-x"),
            "09:00:00",
            "call_answered",
            r#""call":"c1""#,
        );
        let file = d.dir.path().join(format!("bad{n}.ndjson"));
        std::fs::write(&file, lines.join("\n")).expect("write");
        let out = command(program, script, &to, &file).output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{script}: {err}");
        assert!(err.contains("missing_field"), "{script}: {err}");
        expected += 9;
        let snap = get_json(&d, "/api/v1/snapshot").await;
        assert_eq!(
            snap["events"]["applied"].as_u64(),
            Some(expected),
            "{script}"
        );
    }
}

#[tokio::test]
async fn every_sender_waits_for_a_daemon_that_is_not_up_yet() {
    for (n, (program, script, proto)) in SENDERS.iter().enumerate() {
        let (http, tcp) = (free_port(), free_port());
        let addr = |p: u16| std::net::SocketAddr::from(([127, 0, 0, 1], p));
        let work = tempfile::tempdir().expect("tmp");
        let file = work.path().join("events.ndjson");
        std::fs::write(&file, events(&format!("late{n}"), 300).join("\n")).expect("write");
        // Started first: nothing listens yet, so it has to retry.
        let sender = command(
            program,
            script,
            &target(proto, addr(http), addr(tcp)),
            &file,
        )
        .spawn()
        .expect("spawn");
        let cfg = on_ports(config(&auth()), http, tcp);
        let d = Daemon::start(&cfg);
        let out = sender.wait_with_output().expect("wait");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let snap = get_json(&d, "/api/v1/snapshot").await;
        assert_eq!(snap["events"]["applied"].as_u64(), Some(300), "{script}");
    }
}

/// A TCP sender whose connection ends mid-stream (the daemon restarts)
/// resends everything after the last `ACK`: every event arrives, none
/// twice.
#[tokio::test]
async fn tcp_senders_resend_what_was_not_acknowledged() {
    for (n, (program, script, _)) in SENDERS.iter().filter(|s| s.2 == "tcp").enumerate() {
        let (http, tcp) = (free_port(), free_port());
        let data = tempfile::tempdir().expect("tmp");
        let file = data.path().join("events.ndjson");
        let total = 200_000u64;
        std::fs::write(&file, events(&format!("cut{n}"), total as usize).join("\n"))
            .expect("write");
        let cfg = on_ports(
            config(&format!("{}[storage]\nfsync = \"never\"\n", auth())),
            http,
            tcp,
        );
        let dir = data.path().join("data");
        let dir = dir.to_str().expect("utf-8");
        let d = Daemon::start_args(&cfg, &["--data-dir", dir]);
        let to = format!("127.0.0.1:{tcp}");
        let sender = command(program, script, &to, &file).spawn().expect("spawn");
        // Cut while the stream is under way.
        wait_for(30, "the stream to start", || async {
            applied(&d).await.filter(|n| *n >= 1000)
        })
        .await;
        assert!(d.terminate().success());
        let d = Daemon::start_args(&cfg, &["--data-dir", dir]);
        let out = sender.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{script}: {err}");
        let snap = get_json(&d, "/api/v1/snapshot").await;
        assert_eq!(
            snap["events"]["applied"].as_u64(),
            Some(total),
            "{script}: {err}"
        );
        assert!(
            err.contains("retrying"),
            "{script} never had to resend: {err}"
        );
    }
}
