//! NATS JetStream as the shared event log, against real `nats-server`
//! processes (single nodes and a three-node R3 cluster): durable
//! consumption with ack after the journal commit, redelivery after a
//! crash, broker restarts, dead letters, HA pairs and the edge publisher.

mod common;

use std::time::Duration;

use common::nats;
use common::*;

const STREAM: &str = "CALLWATCH";
const SUBJECT: &str = "callwatch.events.hq";

/// Simulated desk events, encoded, in the order they are published.
fn events(n: usize, seed: u64) -> Vec<(String, String)> {
    let sim = callwatch::simulate::Simulator::new(
        callwatch::simulate::SimOptions {
            agents: 40,
            rate: 50.0,
            seed,
            site: None,
        },
        1_772_434_800_000,
    );
    sim.take(n)
        .map(|e| (e.id.to_string(), callwatch::event::encode(&e)))
        .collect()
}

fn source(servers: &[String], name: &str, extra: &str) -> String {
    let list: Vec<String> = servers.iter().map(|s| format!("{s:?}")).collect();
    format!(
        "[[sources]]\ntype = \"nats_jetstream\"\nname = \"{name}\"\nservers = [{}]\nstream = \"{STREAM}\"\nsubjects = [\"callwatch.events.>\"]\nbatch = 200\n{extra}\n",
        list.join(", ")
    )
}

fn durable(sources: &str) -> String {
    config(&format!(
        "[storage]\nfsync = \"always\"\nsnapshot_every = 2000\n{sources}"
    ))
}

async fn publish_all(js: &async_nats::jetstream::Context, evs: &[(String, String)]) {
    for (id, body) in evs {
        nats::publish(js, SUBJECT, id, body.clone())
            .await
            .expect("published");
    }
}

async fn state(d: &Daemon) -> serde_json::Value {
    get_json(d, "/api/v1/state").await
}

/// Waits until the daemon has applied `n` events.
async fn applied(d: &Daemon, n: u64, secs: u64) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let s = state(d).await;
        if s["events_applied"].as_u64() == Some(n) {
            return s;
        }
        if std::time::Instant::now() > deadline {
            let m = metrics_text(d).await;
            let counts: Vec<&str> = m
                .lines()
                .filter(|l| {
                    l.starts_with("callwatch_events_") || l.starts_with("callwatch_source_")
                })
                .collect();
            panic!(
                "{n} events not applied: {s}\n{}\n{}",
                counts.join("\n"),
                d.drain_log().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The digest an offline replay of `evs` (in this order) gives.
fn offline(cfg: &str, evs: &[(String, String)]) -> String {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg_path = dir.path().join("c.toml");
    // The replay reads a file, not the stream: the same config without it.
    std::fs::write(&cfg_path, cfg).expect("cfg");
    let file = dir.path().join("all.ndjson");
    let body: Vec<&str> = evs.iter().map(|(_, b)| b.as_str()).collect();
    std::fs::write(&file, body.join("\n")).expect("write");
    replay_offline(&cfg_path, &file)["digest"]
        .as_str()
        .expect("digest")
        .to_string()
}

fn start(cfg: &str, data: &std::path::Path) -> Daemon {
    Daemon::start_args(cfg, &["--data-dir", data.to_str().expect("utf-8")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_mid_stream_loses_nothing_and_applies_nothing_twice() {
    let tmp = tempfile::tempdir().expect("tmp");
    let broker = nats::single(tmp.path());
    let c = nats::client(&[broker.url()]).await;
    let js = async_nats::jetstream::new(c.clone());
    nats::stream(&js, STREAM, &["callwatch.events.>"], 1).await;
    let evs = events(6000, 3);
    publish_all(&js, &evs[..3000]).await;
    let data = tempfile::tempdir().expect("data");
    let cfg = durable(&source(&[broker.url()], "js-a", ""));
    let d = start(&cfg, data.path());
    // Kill it while it is still consuming (some, not all, applied).
    wait_for(30, "consumption under way", || async {
        let n = state(&d).await["events_applied"].as_u64().unwrap_or(0);
        (n > 0).then_some(())
    })
    .await;
    let publisher = {
        let js = js.clone();
        let rest = evs[3000..].to_vec();
        tokio::spawn(async move { publish_all(&js, &rest).await })
    };
    d.kill9();
    publisher.await.expect("publisher");
    let d = start(&cfg, data.path());
    applied(&d, evs.len() as u64, 60).await;
    // The position moves once the batch is answered, just after the
    // state shows it.
    let s = wait_for(
        20,
        "the stream position to reach the last message",
        || async {
            let s = state(&d).await;
            (s["sources"]["js-a"].as_u64() == Some(evs.len() as u64)).then_some(s)
        },
    )
    .await;
    assert_eq!(
        s["digest"].as_str(),
        Some(offline(&config(""), &evs).as_str()),
        "state after the crash equals an offline replay of the stream"
    );
    // Everything acked once durable: nothing left pending on the broker.
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = js
        .get_stream(STREAM)
        .await
        .expect("stream")
        .get_consumer("js-a")
        .await
        .expect("consumer");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let i = consumer.info().await.expect("consumer info");
        if i.num_ack_pending == 0 && i.num_pending == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "messages left unacked: {} pending, {} unacked",
            i.num_pending,
            i.num_ack_pending
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_message_is_dead_lettered_and_does_not_block_the_rest() {
    let tmp = tempfile::tempdir().expect("tmp");
    let broker = nats::single(tmp.path());
    let c = nats::client(&[broker.url()]).await;
    let js = async_nats::jetstream::new(c.clone());
    nats::stream(&js, STREAM, &["callwatch.events.>"], 1).await;
    let dl = c.subscribe("callwatch.deadletter").await.expect("sub");
    let evs = events(300, 4);
    publish_all(&js, &evs[..100]).await;
    for bad in [
        "{not json",
        r#"{"id":"x1","type":"no_such_event","ts":"2026-03-02T06:00:00Z"}"#,
    ] {
        nats::publish(&js, SUBJECT, bad, bad.to_string())
            .await
            .expect("published");
    }
    publish_all(&js, &evs[100..]).await;
    let data = tempfile::tempdir().expect("data");
    let cfg = durable(&source(
        &[broker.url()],
        "js-a",
        "deadletter_subject = \"callwatch.deadletter\"",
    ));
    let d = start(&cfg, data.path());
    applied(&d, evs.len() as u64, 30).await;
    let m = parse_metrics(&metrics_text(&d).await);
    let refused: f64 = m
        .iter()
        .filter(|(k, _)| {
            k.starts_with("callwatch_events_rejected_total{") && k.contains("nats_jetstream")
        })
        .map(|(_, v)| v)
        .sum();
    assert_eq!(refused, 2.0, "both bad messages counted as refused");
    assert_eq!(
        metric(
            &m,
            "callwatch_events_received_total{source=\"nats_jetstream\"}"
        ),
        (evs.len() + 2) as f64
    );
    // Republished with the reason, and kept as local dead letters.
    let mut dl = dl;
    let mut reasons = Vec::new();
    for _ in 0..2 {
        use futures_util::StreamExt;
        let msg = tokio::time::timeout(Duration::from_secs(10), dl.next())
            .await
            .expect("dead letter republished")
            .expect("message");
        let r = msg
            .headers
            .as_ref()
            .and_then(|h| h.get("Callwatch-Reason"))
            .map(|v| v.to_string())
            .unwrap_or_default();
        reasons.push(r);
    }
    reasons.sort();
    assert_eq!(reasons, ["malformed_json", "unknown_type"]);
    let out = std::process::Command::new(BIN)
        .args(["deadletters", "--data-dir"])
        .arg(data.path())
        .output()
        .expect("deadletters");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("nats_jetstream") && listed.contains("no_such_event"),
        "{listed}"
    );
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_resume_by_themselves_after_the_whole_broker_restarts() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut broker = nats::single(tmp.path());
    let url = broker.url();
    let evs = events(1000, 5);
    {
        let c = nats::client(std::slice::from_ref(&url)).await;
        let js = async_nats::jetstream::new(c);
        nats::stream(&js, STREAM, &["callwatch.events.>"], 1).await;
        publish_all(&js, &evs[..500]).await;
    }
    let cfg = config(&source(std::slice::from_ref(&url), "js-a", ""));
    let d = Daemon::start(&cfg);
    applied(&d, 500, 30).await;
    broker.restart();
    broker.wait_healthy(20);
    let c = nats::client(std::slice::from_ref(&url)).await;
    let js = async_nats::jetstream::new(c);
    publish_all(&js, &evs[500..]).await;
    let s = applied(&d, evs.len() as u64, 60).await;
    assert_eq!(
        s["digest"].as_str(),
        Some(offline(&config(""), &evs).as_str())
    );
    let m = parse_metrics(&metrics_text(&d).await);
    assert!(
        metric(
            &m,
            "callwatch_source_reconnects_total{source=\"nats_jetstream\"}"
        ) >= 1.0,
        "the reconnect is counted"
    );
}

/// An edge publisher whose broker is not running yet.
struct Edge {
    _tmp: tempfile::TempDir,
    broker: nats::Node,
    url: String,
    data: tempfile::TempDir,
    dir: String,
    cfg: String,
    edge: Daemon,
}

fn edge_with_the_broker_down(extra: &str) -> Edge {
    let tmp = tempfile::tempdir().expect("tmp");
    let broker = nats::stopped(tmp.path());
    let url = broker.url();
    let data = tempfile::tempdir().expect("edge data");
    let cfg = config(&format!(
        "[publish]\nservers = [{url:?}]\ncreate_stream = true\n{extra}"
    ));
    let dir = data.path().to_str().expect("utf-8").to_string();
    let edge = Daemon::start_publisher(&cfg, &["--data-dir", &dir]);
    Edge {
        _tmp: tmp,
        broker,
        url,
        data,
        dir,
        cfg,
        edge,
    }
}

/// Starts the broker, waits for the edge buffer to drain, and returns
/// every payload on the stream, in order.
async fn broker_back_and_drained(broker: &mut nats::Node, edge: &Daemon, url: &str) -> Vec<String> {
    broker.restart();
    broker.wait_healthy(20);
    wait_for(60, "the buffer to drain", || async {
        let m = parse_metrics(&metrics_text(edge).await);
        (metric(&m, "callwatch_publish_buffered_events") == 0.0).then_some(())
    })
    .await;
    let c = nats::client(&[url.to_string()]).await;
    let js = async_nats::jetstream::new(c);
    nats::read_all(&js, STREAM).await
}

/// Sends `lines` over one TCP connection and waits for their ACK.
async fn send_tcp(addr: std::net::SocketAddr, lines: &[&str]) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all((lines.join("\n") + "\n").as_bytes())
        .await
        .expect("write");
    let (r, _w) = s.into_split();
    let mut rd = BufReader::new(r).lines();
    let want = format!("ACK {}", lines.len());
    line_matching(&mut rd, 30, |l| {
        assert!(!l.starts_with("ERR"), "refused: {l}");
        l == want
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_publisher_buffers_through_a_30s_outage_and_delivers_exactly_once_in_order() {
    let Edge {
        _tmp,
        mut broker,
        url,
        data: _data,
        dir,
        cfg: edge_cfg,
        edge,
    } = edge_with_the_broker_down("");
    let evs = events(3000, 6);
    let lines: Vec<&str> = evs.iter().map(|(_, b)| b.as_str()).collect();
    let outage = std::time::Instant::now();
    // Events keep arriving while the broker is down: each part is
    // acknowledged to its sender once it is in the edge buffer.
    send_tcp(edge.tcp.expect("tcp"), &lines[..1000]).await;
    let m = parse_metrics(&metrics_text(&edge).await);
    assert_eq!(metric(&m, "callwatch_publish_buffered_events"), 1000.0);
    // A crash of the publisher while the broker is down loses nothing.
    edge.kill9();
    let edge = Daemon::start_publisher(&edge_cfg, &["--data-dir", &dir]);
    send_tcp(edge.tcp.expect("tcp"), &lines[1000..2000]).await;
    // The scenario is a 30 s outage (not a synchronisation wait).
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(outage.elapsed())).await;
    // The last part over HTTP: the publisher takes both.
    let (status, reply) = post(&edge, lines[2000..].join("\n")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["accepted"], 1000);
    let m = parse_metrics(&metrics_text(&edge).await);
    assert_eq!(metric(&m, "callwatch_publish_buffered_events"), 3000.0);
    let on_stream = broker_back_and_drained(&mut broker, &edge, &url).await;
    let ids: Vec<String> = on_stream
        .iter()
        .map(|p| {
            serde_json::from_str::<serde_json::Value>(p).expect("json")["id"]
                .as_str()
                .expect("id")
                .to_string()
        })
        .collect();
    let sent: Vec<String> = evs.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids.len(), sent.len(), "every event exactly once");
    assert_eq!(ids, sent, "in the order the source sent them");
    // And a daemon consuming the stream has the state of the events.
    let d = Daemon::start(&config(&source(std::slice::from_ref(&url), "js-a", "")));
    let s = applied(&d, evs.len() as u64, 60).await;
    assert_eq!(
        s["digest"].as_str(),
        Some(offline(&config(""), &evs).as_str())
    );
    drop(edge);
}

/// One more event after `evs`: a call waiting on its own queue.
fn waiting_call(evs: &[(String, String)], queue: &str, n: usize) -> (String, String) {
    let last: serde_json::Value = serde_json::from_str(&evs[evs.len() - 1].1).expect("json");
    let ts = chrono::DateTime::parse_from_rfc3339(last["ts"].as_str().expect("ts")).expect("ts")
        + chrono::Duration::seconds(n as i64);
    let id = format!("{queue}-{n}");
    let body = format!(
        r#"{{"id":"{id}","ts":"{}","type":"call_offered","call":"{id}","queue":"{queue}"}}"#,
        ts.to_rfc3339()
    );
    (id, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ha_pair_reaches_the_same_digest_and_the_wallboard_follows_when_one_stops() {
    use fantoccini::Locator;
    let tmp = tempfile::tempdir().expect("tmp");
    let broker = nats::single(tmp.path());
    let url = broker.url();
    let c = nats::client(std::slice::from_ref(&url)).await;
    let js = async_nats::jetstream::new(c);
    nats::stream(&js, STREAM, &["callwatch.events.>"], 1).await;
    let mut evs = events(2000, 7);
    publish_all(&js, &evs).await;
    let a = Daemon::start(&config(&source(std::slice::from_ref(&url), "js-a", "")));
    let b = Daemon::start(&config(&source(std::slice::from_ref(&url), "js-b", "")));
    let (sa, sb) = (
        applied(&a, evs.len() as u64, 60).await,
        applied(&b, evs.len() as u64, 60).await,
    );
    assert_eq!(
        sa["digest"], sb["digest"],
        "replicas at the same stream sequence agree"
    );
    for (d, name) in [(&a, "js-a"), (&b, "js-b")] {
        wait_for(20, "the position at the stream's end", || async {
            let s = state(d).await;
            (s["sources"][name].as_u64() == Some(evs.len() as u64)).then_some(())
        })
        .await;
    }
    // The wallboard served by A, told of B, scoped to one queue.
    let (_driver, browser, _profile) = common::browser::browser().await;
    browser
        .goto(&format!(
            "{}?queue=failover&peers={}",
            a.url("/wallboard"),
            b.http
        ))
        .await
        .expect("open the wallboard");
    let feed = |want: String| {
        let browser = browser.clone();
        async move {
            let f = browser
                .find(Locator::Css("html"))
                .await
                .ok()?
                .attr("data-feed")
                .await
                .ok()??;
            (f == want).then_some(())
        }
    };
    wait_for(20, "the page to follow A", || feed(a.http.to_string())).await;
    drop(a);
    wait_for(20, "the page to follow B", || feed(b.http.to_string())).await;
    let took: u64 = browser
        .find(Locator::Css("html"))
        .await
        .expect("html")
        .attr("data-failover-ms")
        .await
        .expect("attr")
        .expect("the page measured its failover")
        .parse()
        .expect("ms");
    assert!(took < 2000, "failover took {took} ms");
    // What reaches the stream now shows up on the page, through B.
    let call = waiting_call(&evs, "failover", 1);
    publish_all(&js, std::slice::from_ref(&call)).await;
    evs.push(call);
    wait_for(20, "the call waiting on the page", || {
        let browser = browser.clone();
        async move {
            let t = browser
                .find(Locator::Css("#tile-waiting .value"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            (t.trim() == "1").then_some(())
        }
    })
    .await;
    let _ = browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_r3_cluster_loses_a_node_under_load_and_nothing_acknowledged_is_lost() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut nodes = nats::cluster(tmp.path());
    let urls: Vec<String> = nodes.iter().map(|n| n.url()).collect();
    let c = nats::client(&urls).await;
    let js = async_nats::jetstream::new(c);
    nats::stream(&js, STREAM, &["callwatch.events.>"], 3).await;
    let data = tempfile::tempdir().expect("data");
    let cfg = durable(&source(&urls, "js-a", ""));
    let d = start(&cfg, data.path());
    let evs = events(4000, 8);
    // A steady publisher: each event until the cluster acknowledges it
    // (a retry after a lost ack is deduplicated by Nats-Msg-Id).
    let acked = {
        let js = js.clone();
        let evs = evs.clone();
        tokio::spawn(async move {
            let mut acked = Vec::new();
            for (id, body) in &evs {
                let deadline = std::time::Instant::now() + Duration::from_secs(30);
                loop {
                    match nats::publish(&js, SUBJECT, id, body.clone()).await {
                        Ok(_) => break,
                        Err(e) => {
                            assert!(std::time::Instant::now() < deadline, "publish {id}: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
                acked.push(id.clone());
            }
            acked
        })
    };
    // Kill a node once the load is flowing through the daemon.
    wait_for(60, "load under way", || async {
        let n = state(&d).await["events_applied"].as_u64().unwrap_or(0);
        (n >= 500).then_some(())
    })
    .await;
    let mut stream = js.get_stream(STREAM).await.expect("stream");
    let leader = stream
        .info()
        .await
        .expect("info")
        .cluster
        .clone()
        .and_then(|c| c.leader)
        .unwrap_or_default();
    // The stream leader dies: the hardest case (a new leader is elected).
    let victim = nodes
        .iter()
        .position(|n| n.store.ends_with(&leader))
        .unwrap_or(0);
    nodes[victim].kill();
    let acked = acked.await.expect("publisher");
    assert_eq!(acked.len(), evs.len());
    let s = applied(&d, evs.len() as u64, 90).await;
    assert_eq!(
        s["digest"].as_str(),
        Some(offline(&config(""), &evs).as_str()),
        "every acknowledged event applied once, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_stream_as_the_journal_a_restart_replays_the_stream_from_the_snapshot() {
    let tmp = tempfile::tempdir().expect("tmp");
    let broker = nats::single(tmp.path());
    let url = broker.url();
    let c = nats::client(std::slice::from_ref(&url)).await;
    let js = async_nats::jetstream::new(c);
    let stream = nats::stream(&js, STREAM, &["callwatch.events.>"], 1).await;
    let evs = events(4000, 9);
    publish_all(&js, &evs[..2500]).await;
    let data = tempfile::tempdir().expect("data");
    let cfg = config(&format!(
        "[storage]\njournal = \"stream\"\nsnapshot_every = 1000\n{}",
        source(std::slice::from_ref(&url), "js-a", "")
    ))
    .replace("ingest_tcp = \"127.0.0.1:0\"", "ingest_tcp = \"off\"");
    let d = start(&cfg, data.path());
    applied(&d, 2500, 30).await;
    // Events come from the stream only.
    let (status, reply) = post(&d, evs[2500].1.clone()).await;
    assert_eq!(status, 409, "{reply}");
    d.kill9();
    assert!(
        !data.path().join("journal").exists()
            || std::fs::read_dir(data.path().join("journal"))
                .expect("dir")
                .next()
                .is_none(),
        "no local journal in stream mode"
    );
    let snaps: Vec<String> = std::fs::read_dir(data.path().join("snapshots"))
        .expect("snapshots")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        snaps.iter().any(|n| n.ends_with(".positions")),
        "snapshots record the stream position: {snaps:?}"
    );
    publish_all(&js, &evs[2500..]).await;
    let d = start(&cfg, data.path());
    let s = applied(&d, evs.len() as u64, 60).await;
    assert_eq!(
        s["digest"].as_str(),
        Some(offline(&config(""), &evs).as_str()),
        "snapshot + the stream after it = the whole stream"
    );
    assert!(d.terminate().success());
    // The stream no longer holds what follows the state: the start stops
    // with the reason instead of showing a state with a hole in it.
    publish_all(&js, std::slice::from_ref(&waiting_call(&evs, "late", 1))).await;
    stream.purge().await.expect("purge");
    let cfg_path = data.path().join("restart.toml");
    std::fs::write(&cfg_path, &cfg).expect("cfg");
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(BIN)
            .args(["run", "--config"])
            .arg(&cfg_path)
            .arg("--data-dir")
            .arg(data.path())
            .output(),
    )
    .await
    .expect("the daemon stops by itself")
    .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("are gone (retention)"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemons_split_the_sites_between_them_by_subject() {
    let tmp = tempfile::tempdir().expect("tmp");
    let broker = nats::single(tmp.path());
    let url = broker.url();
    let c = nats::client(std::slice::from_ref(&url)).await;
    let js = async_nats::jetstream::new(c);
    nats::stream(&js, STREAM, &["callwatch.events.>"], 1).await;
    let hq = events(500, 10);
    let plant: Vec<(String, String)> = events(300, 11)
        .into_iter()
        .map(|(id, body)| {
            (
                format!("p{id}"),
                body.replacen("\"id\":\"", "\"id\":\"p", 1),
            )
        })
        .collect();
    for (id, body) in &hq {
        nats::publish(&js, "callwatch.events.hq", id, body.clone())
            .await
            .expect("pub");
    }
    for (id, body) in &plant {
        nats::publish(&js, "callwatch.events.plant", id, body.clone())
            .await
            .expect("pub");
    }
    let only = |site: &str| {
        config(
            &source(std::slice::from_ref(&url), &format!("js-{site}"), "")
                .replace("callwatch.events.>", &format!("callwatch.events.{site}")),
        )
    };
    let a = Daemon::start(&only("hq"));
    let b = Daemon::start(&only("plant"));
    let sa = applied(&a, hq.len() as u64, 30).await;
    let sb = applied(&b, plant.len() as u64, 30).await;
    assert_eq!(
        sa["digest"].as_str(),
        Some(offline(&config(""), &hq).as_str())
    );
    assert_eq!(
        sb["digest"].as_str(),
        Some(offline(&config(""), &plant).as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callwatch_tail_follows_the_other_daemon_of_a_pair() {
    use tokio::io::AsyncBufReadExt;
    let tmp = tempfile::tempdir().expect("tmp");
    let broker = nats::single(tmp.path());
    let url = broker.url();
    let c = nats::client(std::slice::from_ref(&url)).await;
    let js = async_nats::jetstream::new(c);
    nats::stream(&js, STREAM, &["callwatch.events.>"], 1).await;
    let evs = events(200, 12);
    publish_all(&js, &evs).await;
    let a = Daemon::start(&config(&source(std::slice::from_ref(&url), "js-a", "")));
    let b = Daemon::start(&config(&source(std::slice::from_ref(&url), "js-b", "")));
    applied(&a, evs.len() as u64, 30).await;
    applied(&b, evs.len() as u64, 30).await;
    let mut tail = tokio::process::Command::new(BIN)
        .args(["tail", "--url"])
        .arg(format!("ws://{}/ws", a.http))
        .arg("--url")
        .arg(format!("ws://{}/ws", b.http))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("tail");
    let mut out = tokio::io::BufReader::new(tail.stdout.take().expect("stdout")).lines();
    let mut err = tokio::io::BufReader::new(tail.stderr.take().expect("stderr")).lines();
    let snapshot = |l: &str| l.contains("\"type\":\"snapshot\"");
    line_matching(&mut out, 20, snapshot).await;
    drop(a);
    // The next daemon's snapshot comes on the same output.
    line_matching(&mut out, 20, snapshot).await;
    let want = format!("following ws://{}/ws", b.http);
    line_matching(&mut err, 5, |l| l == want).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_authenticates_with_user_and_password() {
    let tmp = tempfile::tempdir().expect("tmp");
    let broker = nats::single_with(tmp.path(), &["--user", "cw", "--pass", "s3cret"]);
    let url = broker.url();
    let c = async_nats::ConnectOptions::with_user_and_password("cw".into(), "s3cret".into())
        .connect(url.as_str())
        .await
        .expect("connect");
    let js = async_nats::jetstream::new(c);
    nats::stream(&js, STREAM, &["callwatch.events.>"], 1).await;
    let evs = events(100, 13);
    publish_all(&js, &evs).await;
    let good = Daemon::start(&config(&source(
        std::slice::from_ref(&url),
        "js-a",
        "user = \"cw\"\npassword = \"s3cret\"",
    )));
    applied(&good, evs.len() as u64, 30).await;
    // A wrong password gets nothing (and says why in the log).
    let bad = Daemon::start(&config(&source(
        std::slice::from_ref(&url),
        "js-b",
        "user = \"cw\"\npassword = \"wrong\"",
    )));
    bad.log_until("uthoriz", 20);
    assert_eq!(state(&bad).await["events_applied"].as_u64(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_edge_buffer_is_refused_upstream_never_dropped() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let Edge {
        _tmp,
        mut broker,
        url,
        data: _data,
        cfg: _cfg,
        dir: _dir,
        edge,
    } = edge_with_the_broker_down("buffer_max_bytes = 1048576\n");
    // About 3 MiB of events against a 1 MiB buffer, the broker down.
    let evs = events(12_000, 14);
    let mut s = tokio::net::TcpStream::connect(edge.tcp.expect("tcp"))
        .await
        .expect("connect");
    let body: Vec<&str> = evs.iter().map(|(_, b)| b.as_str()).collect();
    s.write_all((body.join("\n") + "\n").as_bytes())
        .await
        .expect("write");
    let (r, _w) = s.into_split();
    let mut rd = BufReader::new(r).lines();
    let mut acked = 0u64;
    let refusal = loop {
        let l = tokio::time::timeout(Duration::from_secs(30), rd.next_line())
            .await
            .expect("an answer")
            .expect("read")
            .expect("a line");
        if let Some(n) = l.strip_prefix("ACK ") {
            acked = n.parse().expect("number");
        } else if l.starts_with("ERR storage") {
            break l;
        }
    };
    assert!(refusal.contains("edge buffer is full"), "{refusal}");
    assert!(acked > 0 && (acked as usize) < evs.len(), "acked {acked}");
    let m = parse_metrics(&metrics_text(&edge).await);
    assert_eq!(
        metric(&m, "callwatch_publish_buffered_events"),
        acked as f64
    );
    assert!(metric(&m, "callwatch_storage_errors_total") >= 1.0);
    // The broker back: exactly the acknowledged events arrive, in order.
    let on_stream = broker_back_and_drained(&mut broker, &edge, &url).await;
    let want: Vec<&str> = body[..acked as usize].to_vec();
    assert_eq!(on_stream.len(), want.len());
    assert!(on_stream
        .iter()
        .map(String::as_str)
        .eq(want.iter().copied()));
}

/// A CA, a broker certificate for 127.0.0.1 and a client certificate,
/// written as PEM files into `dir`; returns (ca, server cert, server key,
/// client cert, client key) paths.
fn pki(dir: &std::path::Path) -> [String; 5] {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("key");
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(names)
            .expect("params")
            .signed_by(&key, &ca, &ca_key)
            .expect("leaf");
        (cert.pem(), key.serialize_pem())
    };
    let (server, server_key) = leaf(vec!["127.0.0.1".into()]);
    let (client, client_key) = leaf(vec!["callwatch.example".into()]);
    let files = [
        ("ca.pem", ca.pem()),
        ("server.pem", server),
        ("server.key", server_key),
        ("client.pem", client),
        ("client.key", client_key),
    ];
    files.map(|(name, text)| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    })
}

/// The source over TLS to a broker that verifies its clients: with the
/// client certificate (`tls_cert`, `tls_key`) and the broker's CA
/// (`tls_ca`) every event arrives; without the certificate nothing does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_connects_over_tls_with_a_client_certificate() {
    let tmp = tempfile::tempdir().expect("tmp");
    let [ca, cert, key, client, client_key] = pki(tmp.path());
    let broker = nats::single_with(
        tmp.path(),
        &[
            "--tls",
            "--tlscert",
            &cert,
            "--tlskey",
            &key,
            "--tlsverify",
            "--tlscacert",
            &ca,
        ],
    );
    let url = format!("tls://127.0.0.1:{}", broker.port);
    let c = async_nats::ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(ca.clone().into())
        .add_client_certificate(client.clone().into(), client_key.clone().into())
        .connect(url.as_str())
        .await
        .expect("connect over TLS");
    let js = async_nats::jetstream::new(c);
    nats::stream(&js, STREAM, &["callwatch.events.>"], 1).await;
    let evs = events(100, 15);
    publish_all(&js, &evs).await;
    let good = Daemon::start(&config(&source(
        std::slice::from_ref(&url),
        "js-a",
        &format!(
            "tls = true\ntls_ca = \"{ca}\"\ntls_cert = \"{client}\"\ntls_key = \"{client_key}\""
        ),
    )));
    applied(&good, evs.len() as u64, 30).await;
    // Without a client certificate the broker refuses the handshake.
    let bad = Daemon::start(&config(&source(
        std::slice::from_ref(&url),
        "js-b",
        &format!("tls = true\ntls_ca = \"{ca}\""),
    )));
    let log = bad.log_until("cannot connect to NATS", 20);
    let why = log
        .lines()
        .find(|l| l.contains("cannot connect to NATS"))
        .unwrap_or_default();
    assert!(
        why.contains("source=js-b") && why.contains("error="),
        "{why}"
    );
    assert_eq!(state(&bad).await["events_applied"].as_u64(), Some(0));
}
