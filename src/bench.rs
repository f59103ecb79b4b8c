//! `callwatch bench`: how fast callwatch is, measured against this
//! machine's own ceiling in the same run.
//!
//! The reference is serde_json decoding of the simulator's event lines on
//! one core; every other figure is reported next to it as a ratio, so the
//! numbers mean something on any machine. End-to-end figures start the
//! real binary (this executable) as a separate process and talk to it
//! over loopback, like a sender would.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Config;
use crate::engine::settings::Settings;
use crate::engine::Engine;
use crate::event;
use crate::simulate::{SimOptions, Simulator};

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub quick: bool,
    /// Only this measurement (`scrape-stall`).
    pub only: Option<String>,
}

/// Every figure of one run (all numbers).
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub events: u64,
    pub decode_events_per_s: f64,
    pub apply_events_per_s: f64,
    pub apply_vs_decode: f64,
    pub tcp_durable_events_per_s: f64,
    pub tcp_vs_decode: f64,
    pub tcp_interval_events_per_s: f64,
    pub tcp_never_events_per_s: f64,
    pub tcp_memory_events_per_s: f64,
    pub recovery_events: u64,
    pub recovery_events_per_s: f64,
    pub recovery_vs_decode: f64,
    pub feed_clients: f64,
    pub feed_p50_ms: f64,
    pub feed_p99_ms: f64,
    pub feed_messages_per_s: f64,
    pub feed_default_p50_ms: f64,
    pub feed_default_p99_ms: f64,
    pub feed_default_messages_per_s: f64,
    pub http_durable_events_per_s: f64,
    pub http_vs_decode: f64,
    /// Single-event webhook callbacks (signed TaskRouter events) from 64
    /// concurrent clients, durable (fsync always): how such platforms
    /// deliver.
    pub webhook_events_per_s: f64,
    pub webhook_vs_http: f64,
    pub scrape_ms_500_agents: f64,
    pub scrape_ms_5000_agents: f64,
    pub scrape_series_5000_agents: f64,
    /// Longest wait of one ingest request while `/metrics` is scraped in
    /// a loop: the worse of the two states below.
    pub scrape_ingest_stall_ms: f64,
    pub scrape_ingest_stall_ms_5000_agents: f64,
    pub scrape_ingest_stall_ms_1m_tasks: f64,
    /// The same, without scrapes (the baseline it compares to).
    pub ingest_stall_ms_without_scrapes: f64,
    /// Longest wait of one ingest request at 1 M open tasks while a
    /// snapshot is taken every second by a forked child (the default)...
    pub snapshot_ingest_stall_ms: f64,
    /// ...and serialised on the writer (`snapshot_mode = "thread"`),
    pub snapshot_ingest_stall_thread_ms: f64,
    /// and the first over the second, in the same run.
    pub snapshot_stall_fork_vs_thread: f64,
    pub bytes_per_open_task: f64,
    pub bytes_per_agent: f64,
    /// Building the snapshot part of a view after the simulated events.
    pub snapshot_build_ms: f64,
    /// Building every scope's scorecard (the goal matrix) on that state.
    pub scorecards_build_ms: f64,
    pub scorecards_vs_snapshot: f64,
    /// Integrity signals over the QA register (docs/quality.md).
    pub qa_signals_ms: f64,
    pub qa_register_contacts: f64,
    pub qa_signals_vs_snapshot: f64,
    /// Durable ingest from a JetStream stream (journal fsync=always),
    /// events applied per second, and its ratio to TCP in the same run.
    pub jetstream_events_per_s: f64,
    pub jetstream_vs_tcp: f64,
    /// Publish to the broker → delta on a feed client, through a
    /// JetStream source.
    pub jetstream_feed_p50_ms: f64,
    pub jetstream_feed_p99_ms: f64,
}

fn lines(n: usize) -> Vec<String> {
    let opts = SimOptions {
        agents: 400,
        rate: 400.0,
        seed: 42,
        site: None,
    };
    Simulator::new(opts, 1_772_434_800_000)
        .take(n)
        .map(|e| event::encode(&e))
        .collect()
}

fn per_s(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// Best of three: the machine is shared and noisy, the best run is the
/// one least disturbed.
fn best(mut f: impl FnMut() -> f64) -> f64 {
    (0..3).map(|_| f()).fold(0.0, f64::max)
}

fn decode_rate(lines: &[String]) -> f64 {
    best(|| {
        let t = Instant::now();
        let mut ok = 0usize;
        for l in lines {
            ok += event::decode(l.as_bytes()).is_ok() as usize;
        }
        assert_eq!(ok, lines.len());
        per_s(lines.len(), t.elapsed())
    })
}

/// Decode and apply on the event clock, through the live apply path.
fn apply_rate(lines: &[String], cfg: &Config) -> f64 {
    let mut cfg = cfg.clone();
    cfg.clock.mode = crate::config::ClockMode::Event;
    best(|| {
        let mut engine = Engine::new(Settings::from_config(&cfg));
        let clock = crate::clock::EventClock::default();
        let t = Instant::now();
        for l in lines {
            if let Ok(ev) = event::decode(l.as_bytes()) {
                let _ = engine.apply_at(&ev, &clock);
            }
        }
        per_s(lines.len(), t.elapsed())
    })
}

/// The snapshot and the scorecards of the state `lines` leave (best of
/// five builds each, in milliseconds).
fn view_costs(lines: &[String], cfg: &Config) -> (f64, f64, f64, usize) {
    let mut cfg = cfg.clone();
    cfg.clock.mode = crate::config::ClockMode::Event;
    let mut engine = Engine::new(Settings::from_config(&cfg));
    let clock = crate::clock::EventClock::default();
    for l in lines {
        if let Ok(ev) = event::decode(l.as_bytes()) {
            let _ = engine.apply_at(&ev, &clock);
        }
    }
    let now = engine.clock_ms();
    let time = |f: &mut dyn FnMut()| {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1000.0
            })
            .fold(f64::INFINITY, f64::min)
    };
    let snap = crate::snapshot::build_parts(&engine, now).0;
    let s = time(&mut || {
        std::hint::black_box(crate::snapshot::build_parts(&engine, now));
    });
    let c = time(&mut || {
        std::hint::black_box(crate::scorecard::build(&engine, &snap, now, None));
    });
    // Quality management's read side: one pass over the QA register.
    let q = time(&mut || {
        std::hint::black_box(crate::quality::signals(
            &engine,
            now,
            crate::config::Period::Month,
        ));
    });
    (s, c, q, engine.quality.register.len())
}

fn scorecard_costs(events: &[String], cfg: &Config, r: &mut Report) {
    let (s, c, q, n) = view_costs(events, cfg);
    r.snapshot_build_ms = s;
    r.scorecards_build_ms = c;
    r.scorecards_vs_snapshot = c / s.max(1e-9);
    r.qa_signals_ms = q;
    r.qa_register_contacts = n as f64;
    r.qa_signals_vs_snapshot = q / s.max(1e-9);
    eprintln!("view: snapshot {s:.2} ms, scorecards {c:.2} ms, QA signals {q:.2} ms over {n} handled contacts");
}

/// A daemon child process on ephemeral ports.
struct Daemon {
    child: Child,
    http: SocketAddr,
    tcp: SocketAddr,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `fsync` is a policy, or `feed` (coalescing at its minimum: no build
/// interval, at most 1 ms between a client's deltas) or `feed-default`
/// (the shipped coalescing), both on the system clock.
fn config_text(fsync: &str) -> String {
    let feed = fsync.starts_with("feed");
    let clock = if feed { "system" } else { "event" };
    let coalescing = if fsync == "feed" {
        "build_interval = \"0s\"\nmax_rate = 1000\n"
    } else {
        ""
    };
    let fsync = if feed { "never" } else { fsync };
    format!(
        "[server]\nhttp = \"127.0.0.1:0\"\ningest_tcp = \"127.0.0.1:0\"\ntcp_batch = 4096\n\
         [clock]\nmode = \"{clock}\"\n[log]\nlevel = \"warn,callwatch=info\"\n\
         [privacy]\nanonymous_role = \"supervisor\"\nper_agent_metrics = true\n[feed]\nmax_clients = 5000\n{coalescing}\
         [limits]\nmax_queues = 1000\nmax_agents = 20000\n\
         [storage]\nfsync = \"{fsync}\"\nsnapshot_every = 1000000000\nsnapshot_interval = \"1000days\"\n"
    )
}

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS"))?;
    Ok(kb * 1024.0)
}

fn line(id: &str, ts: &str, ty: &str, fields: &str) -> String {
    format!(r#"{{"id":"{id}","ts":"{ts}","type":"{ty}",{fields}}}"#)
}

/// A desk of `agents` agents over 50 queues, some calls waiting and
/// talking, for the scrape benchmark.
fn desk(agents: usize) -> Vec<String> {
    let ts = "2026-03-02T08:00:00Z";
    let mut v = Vec::new();
    for a in 0..agents {
        v.push(line(
            &format!("l{a}"),
            ts,
            "agent_login",
            &format!(
                r#""agent":"agent-{a:05}","name":"Agent {a}","team":"team-{}","queues":["q{:02}"]"#,
                a % 40,
                a % 50
            ),
        ));
    }
    for c in 0..agents {
        v.push(line(
            &format!("o{c}"),
            ts,
            "call_offered",
            &format!(r#""call":"c{c}","queue":"q{:02}""#, c % 50),
        ));
        if c % 2 == 0 {
            v.push(line(
                &format!("a{c}"),
                ts,
                "call_answered",
                &format!(r#""call":"c{c}","agent":"agent-{c:05}""#),
            ));
        }
    }
    v
}

/// Time of `GET /metrics` (best of five) and the number of series.
fn scrape(http: SocketAddr) -> anyhow::Result<(f64, f64)> {
    use std::io::Read;
    let mut best = f64::MAX;
    let mut series = 0.0;
    for _ in 0..5 {
        let t = Instant::now();
        let mut s = TcpStream::connect(http)?;
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")?;
        let mut body = String::new();
        s.read_to_string(&mut body)?;
        best = best.min(t.elapsed().as_secs_f64() * 1000.0);
        series = body
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(' '))
            .count() as f64
            - 1.0;
    }
    Ok((best, series))
}

/// POSTs the lines in batches of 1,000, one request after another.
fn http_send(http: SocketAddr, lines: &[String]) -> anyhow::Result<f64> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let c = reqwest::Client::new();
        let url = format!("http://{http}/api/v1/events");
        let t = Instant::now();
        for chunk in lines.chunks(1000) {
            let r = c.post(&url).body(chunk.join("\n")).send().await?;
            if !r.status().is_success() {
                anyhow::bail!("POST answered {}", r.status());
            }
        }
        Ok(per_s(lines.len(), t.elapsed()))
    })
}

const BENCH_TOKEN: &str = "bench-token-0123456789abcdef0123";
const BENCH_HOOK_URL: &str = "https://bench.invalid/api/v1/sources/tw";

/// `n` worker activity changes, one signed TaskRouter callback each, sent
/// by 64 clients at once; events per second once every one is answered
/// (answered means durable).
fn webhook_send(http: SocketAddr, n: usize) -> anyhow::Result<f64> {
    let bodies: Vec<(String, String)> = (0..n)
        .map(|i| {
            let activity = if (i / 1000) % 2 == 0 {
                "Break"
            } else {
                "Available"
            };
            let params: Vec<(String, String)> = [
                ("EventType", "worker.activity.update".to_string()),
                ("Sid", format!("EV{i:032}")),
                ("TimestampMs", (1_772_434_800_000i64 + i as i64).to_string()),
                ("WorkerName", format!("w{}", i % 1000)),
                ("WorkerActivityName", activity.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let sig = crate::source::twilio::signature(BENCH_TOKEN, BENCH_HOOK_URL, &params);
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .finish();
            (body, sig)
        })
        .collect();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let c = reqwest::Client::new();
        let url = format!("http://{http}/api/v1/sources/tw");
        let bodies = std::sync::Arc::new(bodies);
        let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let t = Instant::now();
        let mut clients = tokio::task::JoinSet::new();
        for _ in 0..64 {
            let (c, url, bodies, next) = (c.clone(), url.clone(), bodies.clone(), next.clone());
            clients.spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((body, sig)) = bodies.get(i) else {
                        return Ok::<(), anyhow::Error>(());
                    };
                    let r = c
                        .post(&url)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .header("x-twilio-signature", sig)
                        .body(body.clone())
                        .send()
                        .await?;
                    if r.status().as_u16() != 204 {
                        anyhow::bail!("a callback answered {}", r.status());
                    }
                }
            });
        }
        while let Some(done) = clients.join_next().await {
            done??;
        }
        Ok(per_s(n, t.elapsed()))
    })
}

/// Webhooks: single-event callbacks from 64 clients, fsync always,
/// against the HTTP batch figure already in `r`.
fn webhooks(opts: &BenchOptions, dir: &Path, r: &mut Report) -> anyhow::Result<()> {
    let data = dir.join("data-webhook");
    let text = config_text("always")
        + &format!(
            "[[sources]]\ntype = \"twilio_taskrouter\"\nname = \"tw\"\nauth_token = \"{BENCH_TOKEN}\"\nurl = \"{BENCH_HOOK_URL}\"\nrate_per_second = 1000000\n"
        );
    let d = start_with(dir, "webhook", &text, Some(&data))?;
    let n = if opts.quick { 5_000 } else { 50_000 };
    r.webhook_events_per_s = webhook_send(d.http, n)?;
    r.webhook_vs_http = r.webhook_events_per_s / r.http_durable_events_per_s;
    eprintln!(
        "webhooks, 64 clients, one event each, fsync=always: {:.0} events/s ({:.3} of HTTP batches)",
        r.webhook_events_per_s, r.webhook_vs_http
    );
    drop(d);
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}

fn start(dir: &Path, fsync: &str, data: Option<&Path>) -> anyhow::Result<Daemon> {
    start_with(dir, fsync, &config_text(fsync), data)
}

fn start_with(dir: &Path, name: &str, text: &str, data: Option<&Path>) -> anyhow::Result<Daemon> {
    let cfg = dir.join(format!("bench-{}.toml", name.replace(':', "-")));
    std::fs::write(&cfg, text)?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("run").arg("--config").arg(&cfg);
    if let Some(d) = data {
        cmd.arg("--data-dir").arg(d);
    }
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stderr"))?;
    let mut reader = BufReader::new(stderr);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            anyhow::bail!("daemon exited before listening");
        }
        if line.contains("callwatch listening") {
            break;
        }
    }
    let field = |k: &str| -> anyhow::Result<SocketAddr> {
        let at = line
            .find(&format!("{k}="))
            .ok_or_else(|| anyhow::anyhow!("no {k}"))?;
        let v = line[at + k.len() + 1..]
            .split_whitespace()
            .next()
            .unwrap_or("");
        Ok(v.parse()?)
    };
    let d = Daemon {
        http: field("http")?,
        tcp: field("ingest_tcp")?,
        child,
    };
    // Drain the log so the daemon never blocks on a full pipe.
    std::thread::spawn(move || for _ in reader.lines() {});
    wait_ready(d.http)?;
    Ok(d)
}

fn wait_ready(http: SocketAddr) -> anyhow::Result<Duration> {
    use std::io::Read;
    let t = Instant::now();
    loop {
        let ok = TcpStream::connect(http).ok().and_then(|mut s| {
            s.write_all(b"GET /readyz HTTP/1.0\r\n\r\n").ok()?;
            let mut buf = String::new();
            s.read_to_string(&mut buf).ok()?;
            Some(buf.contains(" 200 "))
        });
        if ok == Some(true) {
            return Ok(t.elapsed());
        }
        if t.elapsed() > Duration::from_secs(3600) {
            anyhow::bail!("daemon not ready after an hour");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends all lines over TCP in batches of 1,000, each awaited by its ACK;
/// returns acknowledged events per second.
/// Streams `lines` over one connection the way a sender should (docs/api.md):
/// a writer thread sends chunks of 1,000 lines without waiting, this
/// thread reads the ACKs; done when the last line is acknowledged.
fn tcp_send(addr: SocketAddr, lines: &[String]) -> anyhow::Result<f64> {
    let s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    let want = format!("ACK {}", lines.len());
    let t = Instant::now();
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> std::io::Result<()> {
            let mut buf = String::new();
            for chunk in lines.chunks(1000) {
                buf.clear();
                for l in chunk {
                    buf.push_str(l);
                    buf.push('\n');
                }
                w.write_all(buf.as_bytes())?;
            }
            Ok(())
        });
        let mut reply = String::new();
        loop {
            reply.clear();
            if r.read_line(&mut reply)? == 0 {
                anyhow::bail!("connection closed");
            }
            if reply.trim_end() == want {
                break;
            }
            if reply.starts_with("ERR storage") {
                anyhow::bail!("{reply}");
            }
        }
        writer
            .join()
            .map_err(|_| anyhow::anyhow!("the sending thread panicked"))??;
        Ok(per_s(lines.len(), t.elapsed()))
    })
}

/// `n` open callbacks over 50 queues, sent in chunks of 200,000.
fn open_tasks(tcp: SocketAddr, n: usize) -> anyhow::Result<()> {
    let ts = "2026-03-02T08:00:00Z";
    for start_at in (0..n).step_by(200_000) {
        let chunk: Vec<String> = (start_at..(start_at + 200_000).min(n))
            .map(|i| line(&format!("t{i}"), ts, "task_created", &format!(r#""task":"task-{i:07}","kind":"callback","queue":"q{:02}","customer":"cust-{i}""#, i % 50)))
            .collect();
        tcp_send(tcp, &chunk)?;
    }
    Ok(())
}

/// The longest time one single-event POST waited, over `secs` seconds of
/// back-to-back POSTs, with or without another client scraping
/// `/metrics` in a loop meanwhile. What a scrape costs the writer shows
/// as the difference.
fn ingest_stall(http: SocketAddr, secs: u64, scraping: bool) -> anyhow::Result<f64> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let c = reqwest::Client::new();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let scraper = scraping.then(|| {
            let (c, stop) = (c.clone(), stop.clone());
            let url = format!("http://{http}/metrics");
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(r) = c.get(&url).send().await {
                        let _ = r.bytes().await;
                        n += 1;
                    }
                }
                n
            })
        });
        let url = format!("http://{http}/api/v1/events");
        let t = Instant::now();
        let mut worst = 0.0f64;
        let mut i = 0u64;
        while t.elapsed() < Duration::from_secs(secs) {
            i += 1;
            // One agent toggles between paused and available, a second
            // of event time apart (the bench runs on the event clock).
            let ts = chrono::DateTime::from_timestamp(1_772_442_000 + (i as i64), 0)
                .unwrap_or_default()
                .to_rfc3339();
            let state = if i % 2 == 0 {
                "available"
            } else {
                r#"paused","reason":"break"#
            };
            let body = line(
                &format!("stall-{scraping}-{i}"),
                &ts,
                "agent_state",
                &format!(r#""agent":"agent-00000","state":"{state}""#),
            );
            let sent = Instant::now();
            let r = c.post(&url).body(body).send().await?;
            if !r.status().is_success() {
                anyhow::bail!("POST answered {}", r.status());
            }
            worst = worst.max(sent.elapsed().as_secs_f64() * 1000.0);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(s) = scraper {
            let scrapes = s.await.unwrap_or(0);
            eprintln!("  {scrapes} scrapes during {i} posts");
        }
        Ok(worst)
    })
}

/// Ingest stalls caused by scrapes at 5,000 agents and at 1 M open tasks.
fn scrape_stalls(opts: &BenchOptions, r: &mut Report) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let secs = if opts.quick { 3 } else { 10 };
    let d = start(dir.path(), "never", None)?;
    tcp_send(d.tcp, &desk(5000))?;
    r.ingest_stall_ms_without_scrapes = ingest_stall(d.http, secs, false)?;
    r.scrape_ingest_stall_ms_5000_agents = ingest_stall(d.http, secs, true)?;
    drop(d);
    let d = start(dir.path(), "never", None)?;
    tcp_send(d.tcp, &desk(50))?;
    open_tasks(d.tcp, 1_000_000)?;
    r.scrape_ingest_stall_ms_1m_tasks = ingest_stall(d.http, secs, true)?;
    drop(d);
    r.scrape_ingest_stall_ms = r
        .scrape_ingest_stall_ms_5000_agents
        .max(r.scrape_ingest_stall_ms_1m_tasks);
    eprintln!(
        "ingest stall: {:.1} ms without scrapes, with scrapes {:.1} ms at 5,000 agents, {:.1} ms at 1 M open tasks",
        r.ingest_stall_ms_without_scrapes,
        r.scrape_ingest_stall_ms_5000_agents,
        r.scrape_ingest_stall_ms_1m_tasks
    );
    Ok(())
}

/// The ingest stall snapshots cause at 1 M open tasks: back-to-back
/// POSTs while the daemon snapshots every second.
fn snapshot_stall(opts: &BenchOptions, r: &mut Report) -> anyhow::Result<()> {
    let secs = if opts.quick { 4 } else { 10 };
    // Both ways of taking a snapshot in one run (the machine's noise is
    // the same for both): forked (the default) and on the writer.
    for mode in ["fork", "thread"] {
        let dir = tempfile::tempdir()?;
        let text = config_text("never").replace(
            "snapshot_interval = \"1000days\"",
            &format!("snapshot_interval = \"1s\"\nsnapshot_mode = \"{mode}\""),
        );
        let data = dir.path().join("data-snapshots");
        let d = start_with(dir.path(), "snapshots", &text, Some(&data))?;
        tcp_send(d.tcp, &desk(50))?;
        open_tasks(d.tcp, 1_000_000)?;
        let resident = rss(d.child.id())?;
        let stall = ingest_stall(d.http, secs, false)?;
        drop(d);
        let snaps = std::fs::read_dir(data.join("snapshots"))
            .map(|rd| rd.count())
            .unwrap_or(0);
        match mode {
            "fork" => r.snapshot_ingest_stall_ms = stall,
            _ => r.snapshot_ingest_stall_thread_ms = stall,
        }
        eprintln!(
            "ingest stall with a snapshot every second at 1 M open tasks, snapshot_mode={mode}: {stall:.1} ms ({snaps} snapshot files kept, {:.0} MB resident)",
            resident / 1e6
        );
    }
    r.snapshot_stall_fork_vs_thread =
        r.snapshot_ingest_stall_ms / r.snapshot_ingest_stall_thread_ms.max(1e-9);
    Ok(())
}

/// Runs every measurement; prints progress to stderr.
pub fn run(opts: BenchOptions) -> anyhow::Result<Report> {
    if opts.only.as_deref() == Some("scrape-stall") {
        let mut r = Report::default();
        scrape_stalls(&opts, &mut r)?;
        return Ok(r);
    }
    if opts.only.as_deref() == Some("snapshot-stall") {
        let mut r = Report::default();
        snapshot_stall(&opts, &mut r)?;
        return Ok(r);
    }
    if opts.only.as_deref() == Some("scorecards") {
        let mut r = Report::default();
        let n = if opts.quick { 200_000 } else { 1_000_000 };
        scorecard_costs(&lines(n), &Config::embedded()?, &mut r);
        return Ok(r);
    }
    if opts.only.as_deref() == Some("jetstream") {
        // JetStream against TCP in the same run, nothing else.
        let n = if opts.quick { 100_000 } else { 1_000_000 };
        let events = lines(n);
        let mut r = Report::default();
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data-tcp");
        let d = start(dir.path(), "always", Some(&data))?;
        r.tcp_durable_events_per_s = tcp_send(d.tcp, &events)?;
        drop(d);
        eprintln!(
            "tcp, journal fsync=always: {:.0} events/s",
            r.tcp_durable_events_per_s
        );
        let rt = tokio::runtime::Runtime::new()?;
        jetstream(&opts, dir.path(), &events, &rt, &mut r)?;
        return Ok(r);
    }
    if opts.only.as_deref() == Some("webhook") {
        // Webhook callbacks against HTTP batches in the same run.
        let n = if opts.quick { 200_000 } else { 1_000_000 };
        let mut r = Report::default();
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data-http");
        let d = start(dir.path(), "always", Some(&data))?;
        r.http_durable_events_per_s = http_send(d.http, &lines(n))?;
        drop(d);
        webhooks(&opts, dir.path(), &mut r)?;
        return Ok(r);
    }
    if let Some(other) = &opts.only {
        anyhow::bail!(
            "unknown measurement {other:?} (known: scrape-stall, snapshot-stall, scorecards, jetstream, webhook)"
        );
    }
    let n = if opts.quick { 200_000 } else { 1_000_000 };
    let recovery_n = if opts.quick { 1_000_000 } else { 10_000_000 };
    let cfg = Config::embedded()?;
    eprintln!("generating {n} simulator events");
    let events = lines(n);
    let mut r = Report {
        events: n as u64,
        ..Report::default()
    };
    r.decode_events_per_s = decode_rate(&events);
    eprintln!("decode: {:.0} events/s", r.decode_events_per_s);
    r.apply_events_per_s = apply_rate(&events, &cfg);
    r.apply_vs_decode = r.apply_events_per_s / r.decode_events_per_s;
    eprintln!("decode + apply: {:.0} events/s", r.apply_events_per_s);
    scorecard_costs(&events, &cfg, &mut r);

    let dir = tempfile::tempdir()?;
    for (fsync, slot) in [
        ("always", &mut r.tcp_durable_events_per_s),
        ("interval:100", &mut r.tcp_interval_events_per_s),
        ("never", &mut r.tcp_never_events_per_s),
    ] {
        let data = dir.path().join(format!("data-{}", fsync.replace(':', "-")));
        let d = start(dir.path(), fsync, Some(&data))?;
        *slot = tcp_send(d.tcp, &events)?;
        eprintln!("tcp, journal fsync={fsync}: {:.0} events/s", *slot);
        drop(d);
        std::fs::remove_dir_all(&data)?;
    }
    let d = start(dir.path(), "always", None)?;
    r.tcp_memory_events_per_s = tcp_send(d.tcp, &events)?;
    eprintln!("tcp, in memory: {:.0} events/s", r.tcp_memory_events_per_s);
    drop(d);
    r.tcp_vs_decode = r.tcp_durable_events_per_s / r.decode_events_per_s;

    // Recovery: journal `recovery_n` events (fsync never: only the replay
    // is measured), kill the daemon, time the restart until ready.
    eprintln!("journaling {recovery_n} events for the recovery benchmark");
    let data = dir.path().join("data-recovery");
    let d = start(dir.path(), "never", Some(&data))?;
    let mut sim = Simulator::new(
        SimOptions {
            agents: 400,
            rate: 400.0,
            seed: 43,
            site: None,
        },
        1_772_434_800_000,
    );
    let mut left = recovery_n;
    while left > 0 {
        let chunk: Vec<String> = sim
            .by_ref()
            .take(left.min(200_000))
            .map(|e| event::encode(&e))
            .collect();
        left -= chunk.len();
        tcp_send(d.tcp, &chunk)?;
    }
    drop(d);
    let t = Instant::now();
    let d = start(dir.path(), "never", Some(&data))?;
    let took = t.elapsed();
    drop(d);
    r.recovery_events = recovery_n as u64;
    r.recovery_events_per_s = per_s(recovery_n, took);
    r.recovery_vs_decode = r.recovery_events_per_s / r.decode_events_per_s;
    eprintln!(
        "recovery of {recovery_n} events: {:.1} s",
        took.as_secs_f64()
    );

    // HTTP: batches of 1,000, journal with fsync always.
    let data = dir.path().join("data-http");
    let d = start(dir.path(), "always", Some(&data))?;
    r.http_durable_events_per_s = http_send(d.http, &events)?;
    r.http_vs_decode = r.http_durable_events_per_s / r.decode_events_per_s;
    eprintln!(
        "http, journal fsync=always: {:.0} events/s",
        r.http_durable_events_per_s
    );
    drop(d);
    let _ = std::fs::remove_dir_all(&data);

    webhooks(&opts, dir.path(), &mut r)?;

    // Scrape: 50 queues, per-agent series on.
    for (agents, slot) in [(500, 0usize), (5000, 1)] {
        let d = start(dir.path(), "never", None)?;
        tcp_send(d.tcp, &desk(agents))?;
        let (ms, series) = scrape(d.http)?;
        if slot == 0 {
            r.scrape_ms_500_agents = ms;
        } else {
            r.scrape_ms_5000_agents = ms;
            r.scrape_series_5000_agents = series;
        }
        eprintln!("scrape with {agents} agents: {ms:.1} ms, {series} series");
    }

    scrape_stalls(&opts, &mut r)?;
    snapshot_stall(&opts, &mut r)?;

    // Memory: resident growth per open task (1 M) and per agent (10,000).
    let d = start(dir.path(), "never", None)?;
    let before = rss(d.child.id())?;
    let n_tasks = 1_000_000;
    open_tasks(d.tcp, n_tasks)?;
    r.bytes_per_open_task = (rss(d.child.id())? - before) / n_tasks as f64;
    drop(d);
    let d = start(dir.path(), "never", None)?;
    let before = rss(d.child.id())?;
    tcp_send(d.tcp, &desk(10_000)[..10_000])?;
    r.bytes_per_agent = (rss(d.child.id())? - before) / 10_000.0;
    drop(d);
    eprintln!(
        "memory: {:.0} bytes per open task, {:.0} bytes per agent",
        r.bytes_per_open_task, r.bytes_per_agent
    );

    // Feed: first with coalescing at its minimum (what remains is the
    // work: apply, board build, scope, diff and encode per client,
    // loopback), then with the shipped coalescing for comparison.
    let clients = feed_clients(1000);
    let secs = if opts.quick { 8 } else { 20 };
    let rt = tokio::runtime::Runtime::new()?;
    for variant in ["feed", "feed-default"] {
        let d = start(dir.path(), variant, None)?;
        let f = rt.block_on(fanout(d.http, clients, Duration::from_secs(secs), None))?;
        drop(d);
        if variant == "feed" {
            (r.feed_p50_ms, r.feed_p99_ms, r.feed_messages_per_s) = f;
        } else {
            (r.feed_default_p50_ms, r.feed_default_p99_ms) = (f.0, f.1);
            r.feed_default_messages_per_s = f.2;
        }
        eprintln!(
            "{variant}, {clients} clients: p50 {:.1} ms, p99 {:.1} ms, {:.0} messages/s delivered",
            f.0, f.1, f.2
        );
    }
    r.feed_clients = clients as f64;
    jetstream(&opts, dir.path(), &events, &rt, &mut r)?;
    Ok(r)
}

/// A `nats-server` child with JetStream, on free loopback ports.
struct Broker {
    child: Child,
    url: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn broker(dir: &Path) -> anyhow::Result<Broker> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.join("nats"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("nats-server (Debian package nats-server): {e}"))?;
    Ok(Broker {
        child,
        url: format!("nats://127.0.0.1:{port}"),
    })
}

/// JetStream: durable ingest from a stream holding the simulated events,
/// and publish → feed latency through the broker.
fn jetstream(
    opts: &BenchOptions,
    dir: &Path,
    events: &[String],
    rt: &tokio::runtime::Runtime,
    r: &mut Report,
) -> anyhow::Result<()> {
    let b = broker(dir)?;
    let js = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            match async_nats::connect(b.url.as_str()).await {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => anyhow::bail!("nats-server: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        let js = async_nats::jetstream::new(client);
        js.get_or_create_stream(async_nats::jetstream::stream::Config {
            name: "CALLWATCH".into(),
            subjects: vec!["callwatch.events.>".into()],
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("creating the stream: {e}"))?;
        anyhow::Ok(js)
    })?;
    let n = if opts.quick {
        events.len().min(100_000)
    } else {
        events.len()
    };
    eprintln!("publishing {n} events to JetStream");
    rt.block_on(async {
        let mut acks = std::collections::VecDeque::new();
        for (i, e) in events[..n].iter().enumerate() {
            let mut h = async_nats::HeaderMap::new();
            h.insert("Nats-Msg-Id", format!("e{i}").as_str());
            acks.push_back(
                js.publish_with_headers("callwatch.events.hq", h, e.clone().into())
                    .await?,
            );
            if acks.len() >= 1000 {
                if let Some(a) = acks.pop_front() {
                    a.await?;
                }
            }
        }
        for a in acks {
            a.await?;
        }
        anyhow::Ok(())
    })?;
    let source = format!(
        "[[sources]]\ntype = \"nats_jetstream\"\nname = \"js\"\nservers = [\"{}\"]\nbatch = 4096\nmax_ack_pending = 100000\n",
        b.url
    );
    let data = dir.join("data-jetstream");
    let t = Instant::now();
    let d = start_with(
        dir,
        "jetstream",
        &(config_text("always") + &source),
        Some(&data),
    )?;
    loop {
        let (applied, _) = state_counts(d.http)?;
        if applied >= n as u64 {
            break;
        }
        if t.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("the stream was not consumed in 10 minutes ({applied} of {n})");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    r.jetstream_events_per_s = per_s(n, t.elapsed());
    r.jetstream_vs_tcp = r.jetstream_events_per_s / r.tcp_durable_events_per_s.max(1e-9);
    eprintln!(
        "jetstream, journal fsync=always: {:.0} events/s ({:.2} of TCP)",
        r.jetstream_events_per_s, r.jetstream_vs_tcp
    );
    drop(d);
    let _ = std::fs::remove_dir_all(&data);
    // Latency: a fresh stream position (only new messages), 10 clients.
    rt.block_on(async {
        js.delete_stream("CALLWATCH").await.ok();
        js.get_or_create_stream(async_nats::jetstream::stream::Config {
            name: "CALLWATCH".into(),
            subjects: vec!["callwatch.events.>".into()],
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("creating the stream: {e}"))
    })?;
    let d = start_with(
        dir,
        "jetstream-feed",
        &(config_text("feed") + &source),
        None,
    )?;
    let secs = if opts.quick { 5 } else { 15 };
    let f = rt.block_on(fanout(d.http, 10, Duration::from_secs(secs), Some(&js)))?;
    (r.jetstream_feed_p50_ms, r.jetstream_feed_p99_ms) = (f.0, f.1);
    eprintln!(
        "jetstream publish → feed, 10 clients: p50 {:.1} ms, p99 {:.1} ms",
        f.0, f.1
    );
    Ok(())
}

/// `events_applied` and `journal_seq` of `GET /api/v1/state`.
fn state_counts(http: SocketAddr) -> anyhow::Result<(u64, u64)> {
    use std::io::Read;
    let mut s = TcpStream::connect(http)?;
    s.write_all(b"GET /api/v1/state HTTP/1.0\r\n\r\n")?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let body = buf.split("\r\n\r\n").nth(1).unwrap_or("{}");
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    Ok((
        v["events_applied"].as_u64().unwrap_or(0),
        v["journal_seq"].as_u64().unwrap_or(0),
    ))
}

/// `clients` websocket clients; a probe event every 50 ms (plus filler
/// traffic, about 200 events/s) changes one agent's pause reason; each
/// client records, per probe it sees in a delta, the time from sending
/// that probe's POST to the delta's arrival. Returns p50, p99 (ms) and
/// messages delivered per second to all clients together.
async fn fanout(
    http: SocketAddr,
    clients: usize,
    run: Duration,
    via: Option<&async_nats::jetstream::Context>,
) -> anyhow::Result<(f64, f64, f64)> {
    use futures_util::StreamExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use tokio_tungstenite::tungstenite::Message;
    let origin = tokio::time::Instant::now();
    let probes = 10_000usize;
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..probes).map(|_| AtomicU64::new(0)).collect());
    let url = format!("ws://{http}/ws?kinds=none");
    let mut tasks = Vec::with_capacity(clients);
    let stop = tokio_util::sync::CancellationToken::new();
    for _ in 0..clients {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await?;
        let (sent, stop) = (sent.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut msgs = 0u64;
            loop {
                let m = tokio::select! {
                    _ = stop.cancelled() => break,
                    m = ws.next() => m,
                };
                let t = match m {
                    None | Some(Err(_)) => break,
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(_)) => continue,
                };
                msgs += 1;
                let at = origin.elapsed().as_micros() as u64;
                // The clients share the machine with the daemon: find the
                // probe without parsing the whole message.
                let probe = probe_number(t.as_str());
                if let Some(k) = probe {
                    let t0 = sent.get(k).map(|s| s.load(Ordering::Acquire)).unwrap_or(0);
                    if t0 > 0 && at > t0 {
                        lat.push((at - t0) as f64 / 1000.0);
                    }
                }
            }
            (lat, msgs)
        }));
    }
    let c = reqwest::Client::new();
    let post = format!("http://{http}/api/v1/events");
    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut k = 1usize;
    while started.elapsed() < run && k < probes {
        tick.tick().await;
        let ts = chrono::Utc::now().to_rfc3339();
        let mut body = format!(
            r#"{{"id":"probe-{k}","ts":"{ts}","type":"agent_state","agent":"probe","state":"paused","reason":"p{k}"}}"#
        );
        for j in 0..9 {
            body.push_str(&format!(
                "\n{{\"id\":\"fill-{k}-{j}\",\"ts\":\"{ts}\",\"type\":\"call_offered\",\"call\":\"f{k}-{j}\",\"queue\":\"q{}\"}}",
                j % 3
            ));
        }
        sent[k].store(origin.elapsed().as_micros() as u64, Ordering::Release);
        match via {
            None => {
                c.post(&post).body(body).send().await?;
            }
            // One message per event, as an edge publisher sends them;
            // the broker's acks are not awaited (they are not the path).
            Some(js) => {
                for (j, line) in body.lines().enumerate() {
                    let mut h = async_nats::HeaderMap::new();
                    h.insert("Nats-Msg-Id", format!("m-{k}-{j}").as_str());
                    let _ack = js
                        .publish_with_headers("callwatch.events.hq", h, line.to_string().into())
                        .await?;
                }
            }
        }
        k += 1;
    }
    // Let the last deltas arrive, then stop.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let elapsed = started.elapsed();
    stop.cancel();
    let (mut all, mut msgs) = (Vec::new(), 0);
    for t in tasks {
        let (l, m) = t.await?;
        all.extend(l);
        msgs += m;
    }
    if all.is_empty() {
        anyhow::bail!("no probe reached any client");
    }
    all.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| all[((all.len() - 1) as f64 * p) as usize];
    Ok((q(0.5), q(0.99), msgs as f64 / elapsed.as_secs_f64()))
}

/// How many feed clients fit: each takes a descriptor here and one in
/// the daemon, and both processes run under the same open-file limit
/// (raised to the hard limit at start). Fewer than wanted is reported.
fn feed_clients(wanted: usize) -> usize {
    let limit = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    let fit = usize::try_from(limit.saturating_sub(256)).unwrap_or(wanted);
    if fit < wanted {
        eprintln!(
            "open-file limit {limit}: measuring the feed with {fit} clients instead of {wanted}"
        );
    }
    wanted.min(fit).max(10)
}

/// The probe number in a feed message that sets the probe agent's pause
/// reason (`"probe":{..."reason":"p<k>"...}`), if any.
fn probe_number(msg: &str) -> Option<usize> {
    let at = memchr::memmem::find(msg.as_bytes(), br#""probe":{"#)?;
    let rest = &msg[at..];
    let end = rest.find('}')?;
    let r = rest[..end].find(r#""reason":"p"#)? + r#""reason":"p"#.len();
    let digits = rest[r..end].split('"').next()?;
    digits.parse().ok()
}

/// The report as a table.
pub fn table(r: &Report) -> String {
    let rows = [
        (
            "decode_events_per_s",
            r.decode_events_per_s,
            "serde_json decode, one core (reference)",
        ),
        (
            "apply_events_per_s",
            r.apply_events_per_s,
            "decode + engine apply, one core",
        ),
        ("apply_vs_decode", r.apply_vs_decode, ""),
        (
            "snapshot_build_ms",
            r.snapshot_build_ms,
            "the snapshot of a view, after the simulated events",
        ),
        (
            "scorecards_build_ms",
            r.scorecards_build_ms,
            "every scope's scorecard on that state",
        ),
        ("scorecards_vs_snapshot", r.scorecards_vs_snapshot, ""),
        (
            "qa_signals_ms",
            r.qa_signals_ms,
            "integrity signals of the month over the QA register",
        ),
        (
            "qa_register_contacts",
            r.qa_register_contacts,
            "handled contacts in it",
        ),
        ("qa_signals_vs_snapshot", r.qa_signals_vs_snapshot, ""),
        (
            "jetstream_events_per_s",
            r.jetstream_events_per_s,
            "from a JetStream stream, journal fsync=always, counted at apply",
        ),
        (
            "jetstream_vs_tcp",
            r.jetstream_vs_tcp,
            "against TCP in the same run",
        ),
        (
            "jetstream_feed_p50_ms",
            r.jetstream_feed_p50_ms,
            "publish to the broker → delta on a feed client",
        ),
        ("jetstream_feed_p99_ms", r.jetstream_feed_p99_ms, ""),
        (
            "tcp_durable_events_per_s",
            r.tcp_durable_events_per_s,
            "TCP, journal, fsync=always, counted at ACK",
        ),
        ("tcp_vs_decode", r.tcp_vs_decode, ""),
        (
            "tcp_interval_events_per_s",
            r.tcp_interval_events_per_s,
            "TCP, journal, fsync=interval:100",
        ),
        (
            "tcp_never_events_per_s",
            r.tcp_never_events_per_s,
            "TCP, journal, fsync=never",
        ),
        (
            "tcp_memory_events_per_s",
            r.tcp_memory_events_per_s,
            "TCP, no data directory",
        ),
        (
            "webhook_events_per_s",
            r.webhook_events_per_s,
            "signed TaskRouter callbacks, one event each, 64 clients, fsync=always",
        ),
        (
            "webhook_vs_http",
            r.webhook_vs_http,
            "over HTTP batches of 1,000, same run",
        ),
        (
            "recovery_events_per_s",
            r.recovery_events_per_s,
            "start-up replay of the journal",
        ),
        ("recovery_vs_decode", r.recovery_vs_decode, ""),
        (
            "feed_clients",
            r.feed_clients,
            "websocket clients connected",
        ),
        (
            "feed_p50_ms",
            r.feed_p50_ms,
            "POST sent to delta received, median, coalescing at its minimum",
        ),
        ("feed_p99_ms", r.feed_p99_ms, "same, 99th percentile"),
        (
            "feed_messages_per_s",
            r.feed_messages_per_s,
            "messages delivered to all clients",
        ),
        (
            "feed_default_p50_ms",
            r.feed_default_p50_ms,
            "same, shipped coalescing (100 ms builds, 4 deltas/s), median",
        ),
        (
            "feed_default_p99_ms",
            r.feed_default_p99_ms,
            "same, 99th percentile",
        ),
        (
            "feed_default_messages_per_s",
            r.feed_default_messages_per_s,
            "messages delivered to all clients",
        ),
        (
            "scrape_ingest_stall_ms",
            r.scrape_ingest_stall_ms,
            "longest single-event POST while /metrics is scraped in a loop",
        ),
        (
            "scrape_ingest_stall_ms_5000_agents",
            r.scrape_ingest_stall_ms_5000_agents,
            "the same at 5,000 agents",
        ),
        (
            "scrape_ingest_stall_ms_1m_tasks",
            r.scrape_ingest_stall_ms_1m_tasks,
            "the same at 1 M open tasks",
        ),
        (
            "ingest_stall_ms_without_scrapes",
            r.ingest_stall_ms_without_scrapes,
            "longest single-event POST, nobody scraping (5,000 agents)",
        ),
        (
            "snapshot_ingest_stall_ms",
            r.snapshot_ingest_stall_ms,
            "longest single-event POST at 1 M open tasks, a snapshot every second (forked)",
        ),
        (
            "snapshot_ingest_stall_thread_ms",
            r.snapshot_ingest_stall_thread_ms,
            "the same, serialised on the writer (snapshot_mode = thread)",
        ),
        (
            "snapshot_stall_fork_vs_thread",
            r.snapshot_stall_fork_vs_thread,
            "the first over the second, same run",
        ),
    ];
    let mut s = format!("{:<36} {:>14}  {}\n", "figure", "value", "what");
    for (k, v, what) in rows {
        let v = if v < 10.0 {
            format!("{v:.2}")
        } else {
            format!("{v:.0}")
        };
        s.push_str(&format!("{k:<36} {v:>14}  {what}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_probe_in_a_delta() {
        let m = r#"{"type":"delta","seq":3,"set":{"agents":{"probe":{"state":"paused","reason":"p17","since":1}}}}"#;
        assert_eq!(super::probe_number(m), Some(17));
        assert_eq!(
            super::probe_number(r#"{"set":{"agents":{"probe":{"state":"available"}}}}"#),
            None
        );
        assert_eq!(super::probe_number(r#"{"set":{"queues":{}}}"#), None);
    }
}
