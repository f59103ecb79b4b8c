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

/// A scripted ingest peer speaking the TCP protocol of docs/api.md: on
/// its k-th connection it answers `AUTH` with `OK`, reads `script[k].0`
/// lines, writes `script[k].1` and closes. Returns its address and the
/// lines each connection carried. This is where the real daemon cannot
/// be made to cut at an exact line.
fn scripted_peer(
    script: Vec<(usize, &'static str)>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Vec<String>>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for (lines, reply) in script {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(30)));
            let mut w = stream.try_clone().expect("clone");
            let mut r = BufReader::new(stream);
            let mut line = String::new();
            if r.read_line(&mut line).is_err() || !line.starts_with("AUTH ") {
                return;
            }
            let _ = w.write_all(b"OK\n");
            let mut got = Vec::new();
            while got.len() < lines {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(n) if n > 0 => got.push(line.trim_end().to_string()),
                    _ => break,
                }
            }
            log.lock().expect("lock").push(got);
            let _ = w.write_all(reply.as_bytes());
        }
    });
    (addr, seen)
}

/// A refusal the connection was cut before acknowledging is resent and
/// refused again: the senders report it once, and an `ERR storage …`
/// without a line number is a reason to resend, not a refusal.
#[tokio::test]
async fn tcp_senders_report_a_refusal_once_and_resend_after_a_storage_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("five.ndjson");
    std::fs::write(&file, events("p", 5).join("\n")).expect("write");
    for (program, script, _) in SENDERS.iter().filter(|s| s.2 == "tcp") {
        // Line 1 acknowledged, line 2 refused, then the cut before its ACK; the
        // resend (lines 2..5) refuses its first line again.
        let (addr, seen) = scripted_peer(vec![
            (5, "ACK 1\nERR 2 invalid_value bad\n"),
            (4, "ERR 1 invalid_value bad\nACK 4\n"),
        ]);
        let out = command(program, script, &addr, &file)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{script}: {err}");
        assert_eq!(err.matches("invalid_value").count(), 1, "{script}: {err}");
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(seen.len(), 2, "{script}: {err}");
        assert_eq!(seen[1], seen[0][1..], "{script} resent the wrong lines");

        let (addr, seen) = scripted_peer(vec![(5, "ERR storage disk full\n"), (5, "ACK 5\n")]);
        let out = command(program, script, &addr, &file)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{script}: {err}");
        assert!(err.contains("disk full"), "{script}: {err}");
        assert_eq!(seen.lock().expect("lock").len(), 2, "{script}: {err}");
    }
}
