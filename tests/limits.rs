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

#[tokio::test]
async fn the_accept_loop_backs_off_at_the_file_descriptor_limit() {
    let d = Daemon::start(&limited("tcp_first_line_timeout = \"1s\""));
    let pid = d.pid();
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fds")
        .count();
    // Room for a few more descriptors only.
    let limit = open + 4;
    let st = std::process::Command::new("prlimit")
        .args([
            &format!("--pid={pid}"),
            &format!("--nofile={limit}:{limit}"),
        ])
        .status()
        .expect("prlimit");
    assert!(st.success());
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
