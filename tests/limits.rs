//! What a TCP ingest client can hold, and for how long (issue 18 point
//! 1): silent and trickling connections lose their slot after the first-
//! line timeout, a client that never reads is cut off by the write
//! timeout, the accept loop backs off at the file-descriptor limit — and
//! a legitimate sender is served meanwhile in every case.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The test config with `server` lines added to `[server]`.
fn limited(server: &str) -> String {
    config("").replace(
        "ingest_tcp = \"127.0.0.1:0\"",
        &format!("ingest_tcp = \"127.0.0.1:0\"\n{server}"),
    )
}

/// Sends one event as a fresh client, again and again while the daemon
/// turns it away, until it is acknowledged (deadline `secs`).
async fn served(d: &Daemon, id: &str, secs: u64) {
    let line = ev(
        id,
        "08:00:00",
        "call_offered",
        &format!(r#""call":"{id}","queue":"orders""#),
    );
    wait_for(secs, "a legitimate sender to be served", || async {
        let mut s = TcpStream::connect(d.tcp.expect("tcp")).await.ok()?;
        s.write_all(format!("{line}\n").as_bytes()).await.ok()?;
        let mut rd = BufReader::new(s).lines();
        let first = tokio::time::timeout(Duration::from_secs(5), rd.next_line())
            .await
            .ok()?
            .ok()??;
        (first == "ACK 1").then_some(())
    })
    .await;
}

async fn disconnects(d: &Daemon, reason: &str) -> f64 {
    // A reason's series appears with its first disconnect.
    let m = parse_metrics(&metrics_text(d).await);
    let series = format!(r#"callwatch_tcp_disconnects_total{{reason="{reason}"}}"#);
    m.get(&series).copied().unwrap_or(0.0)
}

/// Everything the daemon says to `s` until it closes the connection.
async fn until_closed(mut s: TcpStream, secs: u64) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(secs), s.read_to_end(&mut out))
        .await
        .expect("the daemon closes the connection in time")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn silent_and_trickling_clients_lose_their_slot() {
    let d = Daemon::start(&limited(
        "max_tcp_clients = 4\ntcp_first_line_timeout = \"500ms\"",
    ));
    let addr = d.tcp.expect("tcp");
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(TcpStream::connect(addr).await.expect("connect"));
    }
    // Slowloris: a byte of a line every 100 ms, never a newline.
    let mut trickling = Vec::new();
    for _ in 0..2 {
        let s = TcpStream::connect(addr).await.expect("connect");
        let (r, mut w) = s.into_split();
        tokio::spawn(async move {
            while w.write_all(b"{").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        trickling.push(r);
    }
    // All four slots taken; the sender gets in once they are freed.
    served(&d, "legit-1", 30).await;
    for s in silent {
        let said = until_closed(s, 10).await;
        assert!(said.contains("no first line in time"), "{said:?}");
    }
    for mut r in trickling {
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), r.read_to_end(&mut out))
            .await
            .expect("closed in time");
        assert!(
            String::from_utf8_lossy(&out).contains("no first line in time"),
            "a trickle does not extend the deadline"
        );
    }
    assert_eq!(disconnects(&d, "first_line_timeout").await, 4.0);
}

#[tokio::test]
async fn a_thousand_idle_connections_do_not_lock_senders_out() {
    // The test process holds the thousand sockets.
    let _ = rlimit::increase_nofile_limit(4096);
    let d = Daemon::start(&limited("tcp_first_line_timeout = \"1s\""));
    let addr = d.tcp.expect("tcp");
    let mut idle = Vec::new();
    for _ in 0..1000 {
        idle.push(TcpStream::connect(addr).await.expect("connect"));
    }
    served(&d, "legit-2", 30).await;
    // Every idle connection was closed: turned away at the cap (256
    // clients) or timed out without a first line.
    for s in idle {
        until_closed(s, 20).await;
    }
    let turned_away = disconnects(&d, "too_many_clients").await;
    let timed_out = disconnects(&d, "first_line_timeout").await;
    assert!(timed_out >= 256.0, "{timed_out}");
    assert!(
        turned_away + timed_out >= 1000.0,
        "{turned_away} + {timed_out}"
    );
    let clients = wait_for(20, "no client left", || async {
        let m = parse_metrics(&metrics_text(&d).await);
        let n = metric(&m, "callwatch_tcp_clients");
        (n == 0.0).then_some(n)
    })
    .await;
    assert_eq!(clients, 0.0);
}

#[tokio::test]
async fn a_client_that_never_reads_is_cut_off_by_the_write_timeout() {
    let d = Daemon::start(&limited(
        "tcp_write_timeout = \"500ms\"\nmax_bad_lines = 4000000000",
    ));
    let s = TcpStream::connect(d.tcp.expect("tcp"))
        .await
        .expect("connect");
    let (_r, mut w) = s.into_split();
    // Each bad line is answered with an ERR line the client never reads:
    // the socket buffers fill and the daemon's writes stall.
    let writer = tokio::spawn(async move {
        let chunk = "not json\n".repeat(10_000);
        for _ in 0..200 {
            if w.write_all(chunk.as_bytes()).await.is_err() {
                return;
            }
        }
    });
    served(&d, "legit-3", 30).await;
    wait_for(60, "the write timeout", || async {
        (disconnects(&d, "write_timeout").await == 1.0).then_some(())
    })
    .await;
    writer.abort();
    served(&d, "legit-4", 30).await;
}

/// Leaves the daemon room for a few more file descriptors only; returns
/// its pid.
fn squeeze_fds(d: &Daemon) -> u32 {
    let pid = d.pid();
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fds")
        .count();
    let limit = open + 4;
    let st = std::process::Command::new("prlimit")
        .args([
            &format!("--pid={pid}"),
            &format!("--nofile={limit}:{limit}"),
        ])
        .status()
        .expect("prlimit");
    assert!(st.success());
    pid
}

#[tokio::test]
async fn the_accept_loop_backs_off_at_the_file_descriptor_limit() {
    let d = Daemon::start(&limited("tcp_first_line_timeout = \"1s\""));
    squeeze_fds(&d);
    let mut held = Vec::new();
    for _ in 0..32 {
        held.push(
            TcpStream::connect(d.tcp.expect("tcp"))
                .await
                .expect("connect"),
        );
    }
    // Two warnings, which the backoff spaces at least a second apart.
    let log = d.log_until("accept failed", 30);
    let first = log.matches("accept failed").count();
    assert!(first >= 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while d
        .drain_log()
        .iter()
        .filter(|l| l.contains("accept failed"))
        .count()
        < 2
    {
        assert!(std::time::Instant::now() < deadline, "a second warning");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(held);
    served(&d, "legit-5", 30).await;
    let failed = disconnects(&d, "accept_failed").await;
    // At least one failure was counted, and the loop did not spin (a
    // spinning loop fails millions of times a second).
    assert!((1.0..1000.0).contains(&failed), "{failed}");
}

/// The test config with `server` lines for the HTTP listener.
fn http_limited(server: &str) -> String {
    limited(server)
}

async fn http_disconnects(d: &Daemon, reason: &str) -> f64 {
    let text = wait_for(20, "a metrics scrape", || async {
        // A fresh client each time: no pooled connection holds a slot.
        let r = reqwest::Client::new()
            .get(d.url("/metrics"))
            .send()
            .await
            .ok()?;
        (r.status().as_u16() == 200).then_some(r.text().await.ok()?)
    })
    .await;
    let m = parse_metrics(&text);
    metric(
        &m,
        &format!(r#"callwatch_http_disconnects_total{{reason="{reason}"}}"#),
    )
}

/// A reader is served (on a fresh connection) before the deadline.
async fn http_served(d: &Daemon, secs: u64) {
    wait_for(secs, "a reader to be served", || async {
        let r = reqwest::Client::new()
            .get(d.url("/api/v1/snapshot"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        (r.status().as_u16() == 200).then_some(())
    })
    .await;
}

#[tokio::test]
async fn http_slowloris_idle_and_surplus_connections_do_not_lock_readers_out() {
    let d = Daemon::start(&http_limited(
        "max_http_connections = 8\nhttp_header_timeout = \"500ms\"",
    ));
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(d.http).await.expect("connect"));
    }
    // Slowloris: a request line, then a header byte every 100 ms.
    let mut trickling = Vec::new();
    for _ in 0..4 {
        let s = TcpStream::connect(d.http).await.expect("connect");
        let (r, mut w) = s.into_split();
        tokio::spawn(async move {
            if w.write_all(b"GET /api/v1/snapshot HTTP/1.1\r\nHost: x\r\n")
                .await
                .is_err()
            {
                return;
            }
            while w.write_all(b"X").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        trickling.push(r);
    }
    // Every slot is held: one more connection is told so at once.
    let surplus = wait_for(10, "a surplus connection turned away", || async {
        let s = TcpStream::connect(d.http).await.ok()?;
        let said = until_closed(s, 10).await;
        said.starts_with("HTTP/1.1 503").then_some(said)
    })
    .await;
    assert!(surplus.contains("Retry-After: 1"), "{surplus}");
    assert!(surplus.contains("too many connections"), "{surplus}");
    // The held slots are freed by the header timeout; a reader gets in.
    http_served(&d, 30).await;
    for s in silent {
        until_closed(s, 10).await;
    }
    for mut r in trickling {
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), r.read_to_end(&mut out))
            .await
            .expect("a trickle does not extend the deadline")
            .ok();
    }
    assert!(http_disconnects(&d, "too_many_connections").await >= 1.0);
    assert!(http_disconnects(&d, "header_timeout").await >= 4.0);
    // An idle keep-alive connection is closed too.
    let mut s = TcpStream::connect(d.http).await.expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let said = until_closed(s, 10).await;
    assert!(said.starts_with("HTTP/1.1 200"), "{said}");
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_408_and_changes_nothing() {
    let d = Daemon::start(&http_limited("http_body_timeout = \"500ms\""));
    let before = get_json(&d, "/api/v1/snapshot").await;
    let mut s = TcpStream::connect(d.http).await.expect("connect");
    let line = ev("late", "08:00:00", "agent_login", r#""agent":"a1""#);
    s.write_all(
        format!(
            "POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{}",
            line.len() + 100,
            line
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("answered in time")
        .expect("read");
    let said = String::from_utf8_lossy(&buf[..n]);
    assert!(said.starts_with("HTTP/1.1 408"), "{said}");
    assert!(said.contains("server.http_body_timeout"), "{said}");
    assert_eq!(http_disconnects(&d, "body_timeout").await, 1.0);
    let after = get_json(&d, "/api/v1/snapshot").await;
    assert_eq!(after["digest"], before["digest"], "nothing of it applied");
}

#[tokio::test]
async fn the_http_accept_loop_backs_off_at_the_file_descriptor_limit() {
    let d = Daemon::start(&http_limited("http_header_timeout = \"1s\""));
    let pid = squeeze_fds(&d);
    let mut held = Vec::new();
    for _ in 0..32 {
        held.push(TcpStream::connect(d.http).await.expect("connect"));
    }
    d.log_until("accept failed", 30);
    drop(held);
    // Descriptors come back as the held connections time out.
    let _ = std::process::Command::new("prlimit")
        .args([&format!("--pid={pid}"), "--nofile=4096:4096"])
        .status();
    http_served(&d, 30).await;
    let failed = http_disconnects(&d, "accept_failed").await;
    assert!((1.0..1000.0).contains(&failed), "{failed}");
}
