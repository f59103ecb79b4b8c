//! Durability end to end: the real binary with a data directory, killed,
//! torn, and out of disk space.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The test config plus storage settings that exercise rotation and
/// snapshots often.
fn durable_config(extra: &str) -> String {
    config(&format!(
        "[storage]\nfsync = \"always\"\nsegment_bytes = 65536\nsnapshot_every = 700\nkeep_snapshots = 2\n{extra}"
    ))
}

fn start(cfg: &str, dir: &std::path::Path) -> Daemon {
    let dir = dir.to_str().expect("utf-8 path").to_string();
    Daemon::start_args(cfg, &["--data-dir", &dir])
}

/// A client's deterministic stream: its own agents, queue and tasks, whole
/// seconds and whole amounts, so its effect on the state does not depend
/// on how it interleaves with another client's.
fn client_events(p: &str, calls: usize) -> Vec<String> {
    let base = chrono::DateTime::parse_from_rfc3339("2026-03-02T06:00:00Z").expect("time");
    let at = |s: i64| (base + chrono::Duration::seconds(s)).to_rfc3339();
    let mut v = Vec::new();
    let mut n = 0;
    let mut e = |t: i64, ty: &str, f: String| {
        n += 1;
        v.push(format!(
            r#"{{"id":"{p}-{n}","ts":"{}","type":"{ty}",{f}}}"#,
            at(t)
        ));
    };
    for a in 0..5 {
        e(
            0,
            "agent_login",
            format!(r#""agent":"{p}-a{a}","team":"team-{p}""#),
        );
    }
    for i in 0..calls as i64 {
        let t = 10 + i * 7;
        let (call, agent, q) = (
            format!("{p}-c{i}"),
            format!("{p}-a{}", i % 5),
            format!("q-{p}"),
        );
        e(
            t,
            "call_offered",
            format!(
                r#""call":"{call}","queue":"{q}","customer":"{p}-k{}""#,
                i % 40
            ),
        );
        if i % 5 == 0 {
            // No customer: explicit completion, never closed automatically.
            e(
                t + 1,
                "task_created",
                format!(r#""task":"{p}-t{i}","kind":"callback","queue":"{q}""#),
            );
        }
        if i % 9 == 4 {
            e(t + 40, "call_abandoned", format!(r#""call":"{call}""#));
            continue;
        }
        e(
            t + 3,
            "call_answered",
            format!(r#""call":"{call}","agent":"{agent}""#),
        );
        e(t + 30, "call_ended", format!(r#""call":"{call}""#));
        if i % 3 == 0 {
            e(
                t + 31,
                "sale",
                format!(
                    r#""sale":"{p}-s{i}","agent":"{agent}","call":"{call}","kind":"new","quantity":{},"unit_price":{}"#,
                    1 + i % 4,
                    10 + i % 90
                ),
            );
        }
        e(t + 35, "wrap_ended", format!(r#""call":"{call}""#));
        if i % 10 == 5 {
            e(
                t + 50,
                "task_completed",
                format!(r#""task":"{p}-t{}","agent":"{agent}""#, i - 5),
            );
        }
    }
    v
}

/// Posts `events[from..]` in batches until done or the daemon goes away;
/// returns how many are acknowledged in total.
async fn http_client(
    url: String,
    events: Arc<Vec<String>>,
    from: usize,
    acked: Arc<AtomicUsize>,
) -> usize {
    let c = client();
    let mut at = from;
    while at < events.len() {
        let end = (at + 25).min(events.len());
        let body = events[at..end].join("\n");
        match c.post(&url).body(body).send().await {
            Ok(r) if r.status().as_u16() == 200 => {
                at = end;
                acked.store(at, Ordering::Release);
            }
            Ok(r) => panic!("unexpected status {}", r.status()),
            Err(_) => break,
        }
    }
    at
}

/// Streams `events[from..]` over TCP, 25 lines at a time, each batch
/// waited for by its ACK; returns the acknowledged total.
async fn tcp_client(
    addr: std::net::SocketAddr,
    events: Arc<Vec<String>>,
    from: usize,
    acked: Arc<AtomicUsize>,
) -> usize {
    let Ok(s) = TcpStream::connect(addr).await else {
        return from;
    };
    let (r, mut w) = s.into_split();
    let mut lines = BufReader::new(r).lines();
    let (mut at, mut sent_on_conn) = (from, 0usize);
    while at < events.len() {
        let end = (at + 25).min(events.len());
        let chunk = events[at..end].join("\n") + "\n";
        if w.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
        sent_on_conn += end - at;
        let want = format!("ACK {sent_on_conn}");
        let mut ok = false;
        while let Ok(Some(l)) = lines.next_line().await {
            assert!(!l.starts_with("ERR"), "unexpected {l}");
            if l == want {
                ok = true;
                break;
            }
        }
        if !ok {
            break;
        }
        at = end;
        acked.store(at, Ordering::Release);
    }
    at
}

/// Every acknowledged event must be in the state: resent, each is a duplicate.
async fn assert_all_duplicates(d: &Daemon, events: &[String]) {
    for chunk in events.chunks(2000) {
        let (status, reply) = post(d, chunk.join("\n")).await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(
            (reply["accepted"].as_u64(), reply["duplicates"].as_u64()),
            (Some(0), Some(chunk.len() as u64)),
            "an acknowledged event was lost (applied anew after restart)"
        );
    }
}

fn offline_digest(
    cfg_path: &std::path::Path,
    dir: &std::path::Path,
    events: &[&[String]],
) -> String {
    let file = dir.join("all.ndjson");
    let all: Vec<String> = events.iter().flat_map(|e| e.iter().cloned()).collect();
    std::fs::write(&file, all.join("\n")).expect("write");
    let v = replay_offline(cfg_path, &file);
    v["digest"].as_str().expect("digest").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_nothing_acknowledged() {
    let data = tempfile::tempdir().expect("tmp");
    let cfg = durable_config("");
    let http_events = Arc::new(client_events("h", 2500));
    let tcp_events = Arc::new(client_events("t", 2500));
    let total = http_events.len() + tcp_events.len();
    let (mut h_at, mut t_at) = (0usize, 0usize);
    // Kill points spread over the run, at pseudo-random progress.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(7);
    println!("kill seed {seed}");
    let mut x = seed | 1;
    let rounds = 5;
    for round in 0..rounds {
        let d = start(&cfg, data.path());
        if round > 0 {
            d.log_until("recovered state", 30);
            assert_all_duplicates(&d, &http_events[..h_at]).await;
            assert_all_duplicates(&d, &tcp_events[..t_at]).await;
        }
        let (ha, ta) = (
            Arc::new(AtomicUsize::new(h_at)),
            Arc::new(AtomicUsize::new(t_at)),
        );
        let h = tokio::spawn(http_client(
            d.url("/api/v1/events"),
            http_events.clone(),
            h_at,
            ha.clone(),
        ));
        let t = tokio::spawn(tcp_client(
            d.tcp.expect("tcp"),
            tcp_events.clone(),
            t_at,
            ta.clone(),
        ));
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Kill after a pseudo-random share of what is left, while both
        // clients are busy.
        let left = total - h_at - t_at;
        let target = h_at
            + t_at
            + left / (rounds + 2 - round) / 2
            + x as usize % (left / (rounds + 2)).max(1);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while ha.load(Ordering::Acquire) + ta.load(Ordering::Acquire) < target {
            assert!(
                std::time::Instant::now() < deadline,
                "load made no progress"
            );
            tokio::task::yield_now().await;
        }
        d.kill9();
        h_at = h.await.expect("http client");
        t_at = t.await.expect("tcp client");
        println!("round {round}: killed at {h_at} + {t_at} acknowledged");
    }
    // Last run: everything acknowledged survived; finish sending and compare.
    let d = start(&cfg, data.path());
    assert_all_duplicates(&d, &http_events[..h_at]).await;
    assert_all_duplicates(&d, &tcp_events[..t_at]).await;
    let (ha, ta) = (
        Arc::new(AtomicUsize::new(h_at)),
        Arc::new(AtomicUsize::new(t_at)),
    );
    let h = http_client(d.url("/api/v1/events"), http_events.clone(), h_at, ha);
    let t = tcp_client(d.tcp.expect("tcp"), tcp_events.clone(), t_at, ta);
    let (h_end, t_end) = tokio::join!(h, t);
    assert_eq!((h_end, t_end), (http_events.len(), tcp_events.len()));
    let live = get_json(&d, "/api/v1/snapshot").await;
    let cfg_path = d.dir.path().join("callwatch.toml");
    // The two clients interleave in an order no file can repeat, and the
    // state digest covers arrival order (the duplicate detector's ids):
    // compare what the state shows instead, which does not depend on it.
    let file = data.path().join("all.ndjson");
    let all: Vec<String> = [&http_events, &tcp_events]
        .iter()
        .flat_map(|e| e.iter().cloned())
        .collect();
    std::fs::write(&file, all.join("\n")).expect("write");
    // Breaches too depend on the interleaving: a task closes breached when
    // the desk's clock (the latest event of either client) had passed its
    // deadline (docs/design.md), and the file's order is not the live one.
    let view = |mut v: serde_json::Value| {
        v["digest"] = serde_json::Value::Null;
        v["events"]["duplicates"] = serde_json::Value::Null;
        if let Some(rows) = v["backlog"].as_array_mut() {
            for r in rows {
                r["breaches"] = serde_json::Value::Null;
            }
        }
        v
    };
    let (a, b) = (view(live.clone()), view(replay_offline(&cfg_path, &file)));
    assert!(
        a == b,
        "state differs from a replay of exactly the events sent"
    );
    assert_eq!(
        live["events"]["applied"].as_u64(),
        Some(total as u64),
        "none applied twice"
    );
    // Deadlines and ages came back right: an open callback's deadline is
    // its creation plus the 4 h SLA.
    let b = get_json(&d, "/api/v1/backlog?kind=callback&limit=1").await;
    let t0 = &b["tasks"][0];
    let created = chrono::DateTime::parse_from_rfc3339(t0["created"].as_str().expect("created"))
        .expect("time");
    let due = chrono::DateTime::parse_from_rfc3339(t0["due"].as_str().expect("due")).expect("time");
    assert_eq!((due - created).num_seconds(), 4 * 3600);
    assert!(
        std::fs::read_dir(data.path().join("snapshots"))
            .expect("snapshots")
            .count()
            >= 1
    );
    // Segments older than the oldest kept snapshot were removed.
    let segs = callwatch::store::journal_files(data.path()).expect("ls");
    let first = segs
        .first()
        .and_then(|p| p.file_stem())
        .and_then(|s| s.to_str())
        .expect("a segment");
    assert_ne!(
        first.trim_start_matches('0'),
        "",
        "the first segment (record 0) is gone"
    );
}

#[tokio::test]
async fn torn_and_flipped_journal_and_snapshot_recover_and_say_so() {
    let data = tempfile::tempdir().expect("tmp");
    // No snapshots in this first part: the journal alone carries the day.
    let cfg = durable_config("").replace("snapshot_every = 700", "snapshot_every = 1000000");
    let day = scripted_day();
    let d = start(&cfg, data.path());
    assert_eq!(post(&d, day.join("\n")).await.0, 200);
    let full = get_json(&d, "/api/v1/snapshot").await;
    assert!(d.terminate().success());

    // 1. A torn tail: half of a record after the last whole one.
    let seg = callwatch::store::journal_files(data.path())
        .expect("ls")
        .pop()
        .expect("segment");
    let whole = std::fs::metadata(&seg).expect("meta").len();
    // The beginning of a record header: a write a crash cut short.
    callwatch::journal::append_raw(&seg, &[0xff, b'C', b'W', b'R', 1, 9, 9, 9, 9, 0, 0])
        .expect("tear");
    let d = start(&cfg, data.path());
    let again = get_json(&d, "/api/v1/snapshot").await;
    assert_eq!(
        again["digest"], full["digest"],
        "a torn tail costs nothing that was whole"
    );
    d.log_until(
        &format!("cut 11 byte(s) of a torn tail at offset {whole}"),
        10,
    );
    assert!(d.terminate().success());
    let bytes = std::fs::read(&seg).expect("read");
    let items = callwatch::journal::parse(&bytes, 0);
    assert!(
        items
            .iter()
            .all(|i| matches!(i, callwatch::journal::Item::Record { .. })),
        "the torn bytes are gone"
    );
    assert!(items.len() >= day.len());

    // 2. Flipped bytes in the last record: damage, not a torn tail (the
    // record was whole, so it was acknowledged); it is named and lost.
    let mut bytes = std::fs::read(&seg).expect("read");
    let n = bytes.len();
    bytes[n - 5] ^= 0x20;
    std::fs::write(&seg, &bytes).expect("write");
    let d = start(&cfg, data.path());
    let snap = get_json(&d, "/api/v1/snapshot").await;
    assert_eq!(
        snap["events"]["applied"], 40,
        "only the damaged last record is gone"
    );
    d.log_until("damaged byte(s) at offset", 10);
    assert!(d.terminate().success());

    // 3. Flipped bytes in a record in the middle: skipped, the rest kept.
    let mut bytes = std::fs::read(&seg).expect("read");
    // A byte inside the payload of the middle record (a flipped length
    // field could not be told from a torn tail).
    let mid = {
        let records: Vec<_> = callwatch::journal::parse(&bytes, 0)
            .into_iter()
            .filter_map(|i| match i {
                callwatch::journal::Item::Record { frame, .. } => Some(frame),
                _ => None,
            })
            .collect();
        let payload = records[records.len() / 2].payload;
        payload.as_ptr() as usize - bytes.as_ptr() as usize + payload.len() / 2
    };
    bytes[mid] ^= 0x01;
    std::fs::write(&seg, &bytes).expect("write");
    let d = start(&cfg, data.path());
    d.log_until("damaged byte(s) at offset", 10);
    let snap = get_json(&d, "/api/v1/snapshot").await;
    let applied = snap["events"]["applied"].as_u64().expect("applied");
    assert!(
        (30..40).contains(&applied),
        "one record lost, later ones replayed: {applied}"
    );
    assert!(d.terminate().success());
}

#[tokio::test]
async fn a_corrupt_snapshot_falls_back_to_the_one_before() {
    let data = tempfile::tempdir().expect("tmp");
    let cfg = durable_config("").replace("snapshot_every = 700", "snapshot_every = 10");
    let day = scripted_day();
    let d = start(&cfg, data.path());
    // Two snapshots for certain, however busy the machine: a snapshot is
    // not started while the one before is written.
    let (first, second) = day.split_at(day.len() / 2);
    for (half, snapshots) in [(first, 1), (second, 2)] {
        for chunk in half.chunks(12) {
            assert_eq!(post(&d, chunk.join("\n")).await.0, 200);
        }
        d.log_count("snapshot written", snapshots, 20);
    }
    let full = get_json(&d, "/api/v1/snapshot").await;
    assert!(d.terminate().success());
    let snaps = callwatch::store::snapshot_files(data.path()).expect("ls");
    assert_eq!(snaps.len(), 2, "keep_snapshots = 2");
    let newest = snaps.last().expect("snapshot");
    let mut bytes = std::fs::read(newest).expect("read");
    let n = bytes.len();
    bytes[n - 3] ^= 0xff;
    std::fs::write(newest, &bytes).expect("write");
    let d = start(&cfg, data.path());
    d.log_until("is unusable (checksum mismatch)", 10);
    let again = get_json(&d, "/api/v1/snapshot").await;
    assert_eq!(
        again["digest"], full["digest"],
        "older snapshot + journal give the same state"
    );
    // Dead letters: a refused event is kept with its reason.
    let bad = ev(
        "dl1",
        "09:00:01",
        "call_answered",
        r#""call":"nope","agent":"a1""#,
    );
    assert_eq!(post(&d, bad).await.0, 422);
    let dir = data.path().to_str().expect("utf-8").to_string();
    let listed = wait_for(20, "the dead letter to be written", || {
        let dir = dir.clone();
        async move {
            let out = std::process::Command::new(BIN)
                .args(["deadletters", "--data-dir", &dir])
                .output()
                .ok()?;
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            text.contains("dl1").then_some(text)
        }
    })
    .await;
    assert!(listed.contains(r#""reason":"unknown_call""#), "{listed}");
    assert!(listed.contains(r#""source":"http""#), "{listed}");
}

#[tokio::test]
async fn disk_full_refuses_ingest_keeps_reads_and_recovers_by_itself() {
    let fs = Tmpfs::mount("3m");
    let data = fs.0.join("data");
    // Snapshots often: some are attempted while the disk is full.
    let cfg = durable_config("").replace("snapshot_every = 700", "snapshot_every = 300");
    let d = start(&cfg, &data);
    // Leave about 200 KB free.
    let filler = fs.0.join("filler");
    let free = fs.free();
    std::fs::write(&filler, vec![0u8; (free.saturating_sub(200_000)) as usize]).expect("fill");
    let events = client_events("f", 3000);
    let mut acked = 0;
    let mut refusal = None;
    for chunk in events.chunks(200) {
        let (status, reply) = post(&d, chunk.join("\n")).await;
        match status {
            200 => acked += chunk.len(),
            503 => {
                refusal = Some(reply);
                break;
            }
            s => panic!("unexpected {s}: {reply}"),
        }
    }
    let refusal = refusal.expect("the disk filled up before all events were sent");
    assert_eq!(refusal["reason"], "storage", "{refusal}");
    assert!(
        refusal["error"]
            .as_str()
            .unwrap_or("")
            .contains("No space left on device"),
        "{refusal}"
    );
    assert!(acked > 0, "some events were stored before the disk filled");
    // Still full: refused again, and reads keep working.
    let (status, _) = post(&d, events[acked..acked + 10].join("\n")).await;
    assert_eq!(status, 503);
    let (r, mut w) = TcpStream::connect(d.tcp.expect("tcp"))
        .await
        .expect("connect")
        .into_split();
    let mut lines = BufReader::new(r).lines();
    w.write_all((events[acked..acked + 5].join("\n") + "\n").as_bytes())
        .await
        .expect("write");
    let reply = lines.next_line().await.expect("read").expect("a line");
    assert!(
        reply.starts_with("ERR storage "),
        "TCP gets ERR and no ACK: {reply}"
    );
    assert_eq!(
        lines.next_line().await.ok().flatten(),
        None,
        "connection closed"
    );
    let snap = get_json(&d, "/api/v1/snapshot").await;
    assert_eq!(
        snap["events"]["applied"].as_u64(),
        Some(acked as u64),
        "exactly the acknowledged events are in the state"
    );
    let m = parse_metrics(&metrics_text(&d).await);
    assert!(metric(&m, "callwatch_storage_errors_total") >= 1.0);
    let leftovers = |dir: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(dir.join("snapshots"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".tmp"))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        leftovers(&data),
        Vec::<String>::new(),
        "failed snapshots leave nothing"
    );
    // A little space comes back: enough for a few bytes, not for a batch.
    // The probe must not declare ingest resumed on that (it did, every
    // second, each time followed by a failed batch and a full rebuild).
    let len = std::fs::metadata(&filler).expect("filler").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .expect("filler")
        .set_len(len - 8192)
        .expect("shrink");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(4);
    let mut refused = 0;
    while std::time::Instant::now() < until {
        let (status, _) = post(&d, events[acked..acked + 200].join("\n")).await;
        assert_eq!(status, 503, "a batch does not fit yet");
        refused += 1;
    }
    assert!(refused > 0);
    let log = d.drain_log().join("\n");
    assert_eq!(log.matches("ingest resumed").count(), 0, "{log}");
    assert_eq!(
        log.matches("rebuilding state from the data directory")
            .count(),
        1,
        "one failed group, one rebuild: {log}"
    );
    // Free the space: ingest resumes by itself.
    std::fs::remove_file(&filler).expect("free space");
    wait_for(30, "ingest to resume", || async {
        let (status, _) = post(&d, events[acked..acked + 1].join("\n")).await;
        (status == 200).then_some(())
    })
    .await;
    for chunk in events[acked..].chunks(500) {
        assert_eq!(post(&d, chunk.join("\n")).await.0, 200);
    }
    let log = d.log_until("ingest resumed", 10);
    assert_eq!(log.matches("ingest resumed").count(), 1, "{log}");
    // Nothing acknowledged was lost, across a restart too.
    assert!(d.terminate().success());
    let d = start(&cfg, &data);
    let live = get_json(&d, "/api/v1/snapshot").await;
    let cfg_path = d.dir.path().join("callwatch.toml");
    let expected = offline_digest(&cfg_path, d.dir.path(), &[&events]);
    assert_eq!(live["digest"].as_str(), Some(expected.as_str()));
    drop(d);
}

#[tokio::test]
async fn reads_wait_for_recovery_and_ingest_queues_behind_it() {
    let data = tempfile::tempdir().expect("tmp");
    // A journal long enough that replaying it takes a while.
    let n = 300_000;
    {
        let mut j = callwatch::journal::Journal::open(
            &data.path().join("journal"),
            0,
            callwatch::journal::Fsync::Never,
            64 << 20,
        )
        .expect("journal");
        let sim = callwatch::simulate::Simulator::new(
            callwatch::simulate::SimOptions {
                agents: 200,
                rate: 200.0,
                seed: 9,
                site: None,
            },
            1_772_434_800_000,
        );
        for ev in sim.take(n) {
            j.append_event(ev.ts_ms(), &ev);
        }
        j.commit().expect("commit");
    }
    let dir = data.path().to_str().expect("utf-8").to_string();
    let d = Daemon::start_unready(&durable_config(""), &["--data-dir", &dir]);
    let c = client();
    let status = |path: &'static str| {
        let c = c.clone();
        let url = d.url(path);
        async move { c.get(url).send().await.expect("get").status().as_u16() }
    };
    assert_eq!(
        status("/readyz").await,
        503,
        "ready before the journal was replayed"
    );
    assert_eq!(
        status("/metrics").await,
        503,
        "a scrape must not see the empty state"
    );
    assert_eq!(status("/api/v1/snapshot").await, 503);
    // An event sent now waits for recovery, then is applied after it.
    let late = ev(
        "after",
        "23:00:00",
        "call_offered",
        r#""call":"late","queue":"orders""#,
    );
    let (code, reply) = post(&d, late).await;
    assert_eq!(
        (code, reply["accepted"].as_u64()),
        (200, Some(1)),
        "{reply}"
    );
    assert_eq!(status("/readyz").await, 200);
    let snap = get_json(&d, "/api/v1/snapshot").await;
    assert_eq!(snap["events"]["applied"].as_u64(), Some(n as u64 + 1));
    d.log_until(&format!("replayed={n}"), 10);
}

/// Disk use stays bounded under a steady stream: snapshots cover the
/// journal, covered segments go, and at most `keep_snapshots` snapshots
/// stay (docs/config.md, `[storage]`).
#[tokio::test]
async fn a_long_stream_keeps_the_data_directory_bounded() {
    let data = tempfile::tempdir().expect("tmp");
    let (segment, every) = (32_768u64, 2_000u64);
    let cfg = config(&format!(
        "[storage]\nfsync = \"never\"\nsegment_bytes = {segment}\nsnapshot_every = {every}\nkeep_snapshots = 2\n"
    ));
    let d = start(&cfg, data.path());
    let base = chrono::DateTime::parse_from_rfc3339("2026-03-02T06:00:00Z").expect("time");
    let mut longest = 0usize;
    for b in 0..40 {
        let lines: Vec<String> = (0..1000)
            .map(|i| {
                let n = b * 1000 + i;
                let ts = (base + chrono::Duration::milliseconds(n as i64 * 100)).to_rfc3339();
                let l = format!(
                    r#"{{"id":"b{n}","ts":"{ts}","type":"call_offered","call":"c{n}","queue":"orders"}}"#
                );
                longest = longest.max(l.len());
                let end = format!(r#"{{"id":"e{n}","ts":"{ts}","type":"call_abandoned","call":"c{n}"}}"#);
                format!("{l}\n{end}")
            })
            .collect();
        assert_eq!(post(&d, lines.join("\n")).await.0, 200);
    }
    // Snapshots catch up once the stream stops (on a loaded machine the
    // child writing one may lag behind a fast stream meanwhile).
    let kept = || -> Vec<u64> {
        std::fs::read_dir(data.path().join("snapshots"))
            .map(|dir| {
                dir.flatten()
                    .filter_map(|e| e.file_name().to_str()?.strip_suffix(".snap")?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_for(60, "a snapshot near the end of the stream", || async {
        kept().into_iter().max().filter(|n| *n >= 76_000)
    })
    .await;
    assert!(d.terminate().success());
    let size = |sub: &str| -> (u64, usize) {
        let files: Vec<_> = std::fs::read_dir(data.path().join(sub))
            .expect("ls")
            .flatten()
            .collect();
        (
            files
                .iter()
                .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                .sum(),
            files.len(),
        )
    };
    let (journal, segments) = size("journal");
    let (snapshots, snaps) = size("snapshots");
    // 80,000 records were written (about 9 MB of journal); what stays is
    // what the oldest kept snapshot does not cover, plus one segment.
    // A snapshot is not started while the one before is still being
    // written, so under a fast stream they are further apart than
    // `snapshot_every`: the bound is what the oldest kept one leaves.
    let kept = kept();
    let oldest = kept.iter().copied().min().expect("a snapshot kept");
    let uncovered = 80_000 - oldest;
    assert!(uncovered <= 40_000, "snapshots fell behind: kept {kept:?}");
    let record = (longest + 24 + 9) as u64;
    let bound = uncovered * record + 2 * segment;
    assert!(
        journal <= bound,
        "journal {journal} B in {segments} segments > {bound}"
    );
    assert!(snaps <= 2, "{snaps} snapshots");
    assert!(snapshots > 0);
    assert!(
        std::fs::metadata(data.path().join("deadletters.ndjson"))
            .map(|m| m.len())
            .unwrap_or(0)
            == 0
    );
}

/// A snapshot written by the forked child (the default) and one
/// serialised on the writer (`snapshot_mode = "thread"`) both bring back
/// exactly the state of the events sent; the restart starts from the
/// snapshot, not from the journal's beginning.
#[tokio::test]
async fn forked_and_threaded_snapshots_restore_the_same_state() {
    let events = client_events("s", 400);
    let mut digests = Vec::new();
    for mode in ["fork", "thread"] {
        let data = tempfile::tempdir().expect("tmp");
        let cfg = durable_config(&format!("snapshot_mode = \"{mode}\"\n"));
        let d = start(&cfg, data.path());
        for chunk in events.chunks(250) {
            assert_eq!(post(&d, chunk.join("\n")).await.0, 200);
        }
        d.log_until("snapshot written", 30);
        d.kill9();
        let d = start(&cfg, data.path());
        let log = d.log_until("recovered state", 30);
        let from: u64 = log
            .split("snapshot=")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|s| s.parse().ok())
            .expect("snapshot position in the log");
        assert!(from > 0, "{mode}: recovered from no snapshot: {log}");
        let live = get_json(&d, "/api/v1/snapshot").await;
        let cfg_path = d.dir.path().join("callwatch.toml");
        let expected = offline_digest(&cfg_path, d.dir.path(), &[&events]);
        assert_eq!(live["digest"].as_str(), Some(expected.as_str()), "{mode}");
        digests.push(expected);
        drop(d);
    }
    assert_eq!(digests[0], digests[1]);
}
