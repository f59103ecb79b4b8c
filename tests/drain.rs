//! Graceful drain (issue 18 point 4): on SIGTERM a TCP client streaming
//! lines gets an ACK for everything the daemon read before `ERR shutting
//! down`, feed clients get a close frame with a reason, a snapshot is
//! written, the process exits 0, and after a restart exactly the
//! acknowledged lines are in the state.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn events(n: usize) -> Vec<String> {
    let base = chrono::DateTime::parse_from_rfc3339("2026-03-02T06:00:00Z").expect("time");
    (0..n)
        .map(|i| {
            let ts = (base + chrono::Duration::milliseconds(i as i64 * 10)).to_rfc3339();
            format!(
                r#"{{"id":"d{i}","ts":"{ts}","type":"task_created","task":"t{i}","kind":"callback","queue":"orders"}}"#
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_acknowledges_what_was_read_and_loses_nothing() {
    let data = tempfile::tempdir().expect("tmp");
    let dir = data.path().to_str().expect("utf-8").to_string();
    let cfg = config(
        "[storage]\nfsync = \"always\"\nsnapshot_every = 1000000\nsnapshot_on_shutdown = true\n",
    );
    let all = events(200_000);
    let d = Daemon::start_args(&cfg, &["--data-dir", &dir]);
    let (mut ws, _) = ws_snapshot(&d, "").await;
    let s = TcpStream::connect(d.tcp.expect("tcp"))
        .await
        .expect("connect");
    let (r, mut w) = s.into_split();
    // The sender streams without waiting for ACKs, as fast as the daemon
    // reads; it stops when the daemon stops reading.
    let lines = all.clone();
    let sender = tokio::spawn(async move {
        for chunk in lines.chunks(100) {
            if w.write_all((chunk.join("\n") + "\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let mut rd = BufReader::new(r).lines();
    let mut acked = 0u64;
    // SIGTERM once the stream is well under way.
    while acked < 5_000 {
        let l = rd.next_line().await.expect("read").expect("a line");
        acked = l
            .strip_prefix("ACK ")
            .expect("only ACKs")
            .parse()
            .expect("n");
    }
    d.signal("TERM");
    let mut said = Vec::new();
    while let Ok(Some(l)) = rd.next_line().await {
        said.push(l);
    }
    // ACKs, then one ERR shutting down, then the close.
    let (last, acks) = said.split_last().expect("the daemon said goodbye");
    assert_eq!(last, "ERR shutting down", "{said:?}");
    for l in acks {
        acked = l
            .strip_prefix("ACK ")
            .unwrap_or_else(|| panic!("only ACKs before the goodbye: {l}"))
            .parse()
            .expect("n");
    }
    assert!(
        (acked as usize) < all.len(),
        "the stream was cut by the shutdown"
    );
    // The wallboard is told why, so it can go to a replica at once.
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(m) = ws.next().await {
            if let Ok(tokio_tungstenite::tungstenite::Message::Close(f)) = m {
                return f;
            }
        }
        None
    })
    .await
    .expect("a close frame in time")
    .expect("with a reason");
    assert_eq!(u16::from(close.code), 1001);
    assert_eq!(close.reason.as_str(), "shutting down");
    sender.abort();
    let log = d.drain_log().join("\n");
    let status = d.wait_exit(30);
    assert!(status.success(), "exit 0 after a drain: {status:?}\n{log}");

    // Exactly the acknowledged lines are in the state, from the snapshot
    // written on the way out.
    let d = Daemon::start_args(&cfg, &["--data-dir", &dir]);
    let ready = readyz(&d).await;
    assert_eq!(ready["recovery"]["snapshot"], acked, "{ready}");
    assert_eq!(ready["recovery"]["replayed"], 0, "{ready}");
    let acked = acked as usize;
    for chunk in all[..acked].chunks(5000) {
        let (_, r) = post(&d, chunk.join("\n")).await;
        assert_eq!(r["duplicates"].as_u64(), Some(chunk.len() as u64), "{r}");
    }
    let next = &all[acked..(acked + 1000).min(all.len())];
    let (_, r) = post(&d, next.join("\n")).await;
    assert_eq!(
        r["accepted"].as_u64(),
        Some(next.len() as u64),
        "nothing unacknowledged was applied: {r}"
    );
}

/// A request whose body never finishes holds the drain.
async fn hold_a_request(d: &Daemon) -> TcpStream {
    let mut s = TcpStream::connect(d.http).await.expect("connect");
    s.write_all(b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        .await
        .expect("write");
    // The daemon has the request once it counts the connection.
    wait_for(10, "the held request to be open", || async {
        let r = reqwest::Client::new()
            .get(d.url("/metrics"))
            .send()
            .await
            .ok()?;
        let m = parse_metrics(&r.text().await.ok()?);
        (metric(&m, "callwatch_http_connections") >= 2.0).then_some(())
    })
    .await;
    s
}

#[tokio::test]
async fn shutdown_timeout_forces_the_exit() {
    let d = Daemon::start(&config("").replace(
        "ingest_tcp = \"127.0.0.1:0\"",
        "ingest_tcp = \"127.0.0.1:0\"\nshutdown_timeout = \"300ms\"",
    ));
    let _held = hold_a_request(&d).await;
    d.signal("TERM");
    let rx = d.log_until("shutdown did not finish within server.shutdown_timeout", 20);
    assert!(rx.contains("shutting down"));
    let status = d.wait_exit(20);
    assert!(!status.success(), "a forced exit is not a clean one");
}

#[tokio::test]
async fn a_second_signal_forces_the_exit() {
    let d = Daemon::start(&config(""));
    let _held = hold_a_request(&d).await;
    d.signal("TERM");
    d.log_until("shutting down: draining", 20);
    d.signal("TERM");
    let status = d.wait_exit(20);
    assert!(!status.success());
}
