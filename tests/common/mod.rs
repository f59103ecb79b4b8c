//! Test harness: starts the real `callwatch` binary on ephemeral ports
//! and talks to it over real sockets.
#![allow(dead_code)]

use std::collections::BTreeMap;
pub mod browser;
pub mod esl;
pub mod nats;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_callwatch");

/// A base configuration for tests: ephemeral ports, event clock, the
/// scripted day's queues and targets. `extra` is appended verbatim.
pub fn config(extra: &str) -> String {
    format!(
        r#"
[server]
http = "127.0.0.1:0"
ingest_tcp = "127.0.0.1:0"
[clock]
mode = "event"
[privacy]
per_agent_metrics = true
anonymous_role = "supervisor"
[defaults]
site = "hq"
timezone = "Europe/Berlin"
[sites.hq]
timezone = "Europe/Berlin"
[[queues]]
name = "orders"
team = "sales"
[[queues]]
name = "service"
team = "service"
[tasks.kinds.callback]
sla = "4h"
due_soon = "30m"
[tasks.kinds.offer]
sla = "24h"
due_soon = "2h"
[tasks.kinds.order_confirmation]
sla = "8h"
due_soon = "1h"
[targets.service_level]
target = 0.8
warn = 0.75
critical = 0.4
{extra}
"#
    )
}

pub struct Daemon {
    child: Child,
    pub http: SocketAddr,
    pub tcp: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
    pub log: mpsc::Receiver<String>,
    seen: std::cell::RefCell<Vec<String>>,
}

fn field(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!("{key}="))? + key.len() + 1;
    let rest = &line[start..];
    Some(
        rest.split_whitespace()
            .next()?
            .trim_matches('"')
            .to_string(),
    )
}

impl Daemon {
    /// Starts `callwatch run --config <file>` with `config` and waits for
    /// its "listening" log line (deadline 30 s).
    pub fn start(config: &str) -> Daemon {
        Self::start_args(config, &[])
    }

    pub fn start_args(config: &str, args: &[&str]) -> Daemon {
        Self::spawn("run", config, args, true)
    }

    /// `run` with these extra environment variables; returns once the
    /// listeners are bound, before recovery is done.
    pub fn start_env(config: &str, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        Self::spawn_env("run", config, args, false, env)
    }

    /// Returns as soon as the listeners are bound, before recovery is done.
    pub fn start_unready(config: &str, args: &[&str]) -> Daemon {
        Self::spawn("run", config, args, false)
    }

    /// `callwatch publish --config <file> ARGS` (the edge publisher).
    pub fn start_publisher(config: &str, args: &[&str]) -> Daemon {
        Self::spawn("publish", config, args, true)
    }

    fn spawn(cmd: &str, config: &str, args: &[&str], ready: bool) -> Daemon {
        Self::spawn_env(cmd, config, args, ready, &[])
    }

    // The child moves into `Daemon`, whose Drop kills and waits for it.
    #[allow(clippy::zombie_processes)]
    fn spawn_env(
        cmd: &str,
        config: &str,
        args: &[&str],
        ready: bool,
        env: &[(&str, &str)],
    ) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("callwatch.toml");
        std::fs::write(&path, config).expect("write config");
        let mut child = Command::new(BIN)
            .arg(cmd)
            .arg("--config")
            .arg(&path)
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start callwatch");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "callwatch did not report its listeners; it said:\n{}",
                        seen.join("\n")
                    );
                }
            };
            seen.push(line.clone());
            if line.contains("callwatch listening") {
                let http = field(&line, "http")
                    .expect("http addr")
                    .parse()
                    .expect("addr");
                let tcp = field(&line, "ingest_tcp").and_then(|a| a.parse().ok());
                let d = Daemon {
                    child,
                    http,
                    tcp,
                    dir,
                    log: rx,
                    seen: std::cell::RefCell::new(seen),
                };
                if ready {
                    d.wait_ready(deadline);
                }
                return d;
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Log lines printed so far (after the listening line).
    pub fn drain_log(&self) -> Vec<String> {
        let mut seen = self.seen.borrow_mut();
        seen.extend(self.log.try_iter());
        seen.clone()
    }

    /// Waits (up to `secs`) for a log line containing `needle`; returns
    /// the whole log so far.
    pub fn log_until(&self, needle: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let all = self.drain_log();
            if all.iter().any(|l| l.contains(needle)) {
                return all.join("\n");
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(l) => self.seen.borrow_mut().push(l),
                Err(_) if Instant::now() >= deadline => {
                    panic!(
                        "no log line containing {needle:?}; log:\n{}",
                        all.join("\n")
                    )
                }
                Err(_) => {}
            }
        }
    }

    /// Waits (up to `secs`) until `n` log lines contain `needle`.
    pub fn log_count(&self, needle: &str, n: usize, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self
            .drain_log()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
            < n
        {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(l) => self.seen.borrow_mut().push(l),
                Err(_) if Instant::now() >= deadline => {
                    panic!("fewer than {n} log lines containing {needle:?}")
                }
                Err(_) => {}
            }
        }
    }

    /// Polls `GET /readyz` until it answers 200 (recovery done).
    fn wait_ready(&self, deadline: Instant) {
        use std::io::{Read, Write};
        loop {
            let ok = std::net::TcpStream::connect(self.http)
                .ok()
                .and_then(|mut s| {
                    s.write_all(b"GET /readyz HTTP/1.0\r\n\r\n").ok()?;
                    let mut buf = String::new();
                    s.read_to_string(&mut buf).ok()?;
                    Some(buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200"))
                });
            if ok == Some(true) {
                return;
            }
            if Instant::now() > deadline {
                panic!("callwatch did not become ready");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for the exit status (deadline 30 s).
    pub fn terminate(self) -> std::process::ExitStatus {
        self.signal("TERM");
        self.wait_exit(30)
    }

    /// Sends a signal (`TERM`, `HUP`, ...) and returns at once.
    pub fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status();
    }

    /// Waits (up to `secs`) for the process to exit.
    pub fn wait_exit(mut self, secs: u64) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("callwatch did not exit in time");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// POSTs a body to /api/v1/events; returns status and JSON reply.
pub async fn post(d: &Daemon, body: String) -> (u16, serde_json::Value) {
    let r = client()
        .post(d.url("/api/v1/events"))
        .body(body)
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    (status, v)
}

pub async fn get_json(d: &Daemon, path: &str) -> serde_json::Value {
    client()
        .get(d.url(path))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .expect("json")
}

/// GET with a bearer token, as JSON.
pub async fn get_json_as(d: &Daemon, path: &str, token: &str) -> serde_json::Value {
    let text = client()
        .get(d.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// `GET /readyz` as JSON (whatever the status).
pub async fn readyz(d: &Daemon) -> serde_json::Value {
    let text = client()
        .get(d.url("/readyz"))
        .send()
        .await
        .expect("readyz")
        .text()
        .await
        .expect("body");
    serde_json::from_str(&text).expect("json")
}

pub async fn metrics_text(d: &Daemon) -> String {
    client()
        .get(d.url("/metrics"))
        .send()
        .await
        .expect("get metrics")
        .text()
        .await
        .expect("text")
}

/// Parses exposition text into `series -> value`.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let v = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().ok()?,
            };
            Some((series.to_string(), v))
        })
        .collect()
}

/// The value of one series; panics with the neighbours when absent.
pub fn metric(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    match m.get(series) {
        Some(v) => *v,
        None => {
            let name = series.split('{').next().unwrap_or(series);
            let near: Vec<_> = m.keys().filter(|k| k.starts_with(name)).collect();
            panic!("no series {series}; have {near:?}")
        }
    }
}

/// Polls `f` until it returns `Some`, or panics after `secs`.
pub async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One event line at UTC time `hms` on 2026-03-02.
pub fn ev(id: &str, hms: &str, ty: &str, fields: &str) -> String {
    let sep = if fields.is_empty() { "" } else { "," };
    format!(r#"{{"id":"{id}","ts":"2026-03-02T{hms}Z","type":"{ty}"{sep}{fields}}}"#)
}

/// The scripted day (times UTC; the site is Europe/Berlin, UTC+1).
/// Expected figures at its end (09:00:00) are asserted by `assert_day`.
pub fn scripted_day() -> Vec<String> {
    let mut n = 0;
    let mut e = |hms: &str, ty: &str, f: &str| {
        n += 1;
        ev(&format!("d{n}"), hms, ty, f)
    };
    vec![
        e(
            "03:00:00",
            "task_created",
            r#""task":"k2","kind":"callback","queue":"orders","customer":"C-2""#,
        ),
        e(
            "05:20:00",
            "task_created",
            r#""task":"k6","kind":"callback","queue":"orders","customer":"C-6""#,
        ),
        e(
            "06:00:00",
            "task_created",
            r#""task":"k3","kind":"callback","queue":"orders","customer":"C-3""#,
        ),
        e(
            "06:00:00",
            "task_attempted",
            r#""task":"k2","agent":"a2","result":"no_answer""#,
        ),
        e(
            "07:00:00",
            "agent_login",
            r#""agent":"a1","name":"Anna","team":"sales","queues":["orders"]"#,
        ),
        e(
            "07:00:00",
            "agent_login",
            r#""agent":"a2","name":"Ben","team":"sales","queues":["orders"]"#,
        ),
        e(
            "07:00:00",
            "agent_login",
            r#""agent":"a3","name":"Clara","team":"service","queues":["service"]"#,
        ),
        e(
            "07:05:00",
            "call_offered",
            r#""call":"c1","queue":"orders","customer":"C-1""#,
        ),
        e("07:05:10", "call_answered", r#""call":"c1","agent":"a1""#),
        e("07:06:00", "call_hold", r#""call":"c1""#),
        e("07:06:30", "call_resume", r#""call":"c1""#),
        e("07:09:10", "call_ended", r#""call":"c1""#),
        e(
            "07:09:30",
            "sale",
            r#""sale":"s1","agent":"a1","call":"c1","kind":"new","product":"pump","quantity":2,"unit_price":150"#,
        ),
        e("07:10:10", "wrap_ended", r#""call":"c1","outcome":"order""#),
        e(
            "07:10:10",
            "task_created",
            r#""task":"k4","kind":"offer","queue":"orders","customer":"C-1","due":"2026-03-02T08:10:00Z""#,
        ),
        e(
            "07:15:00",
            "task_attempted",
            r#""task":"k3","agent":"a1","result":"reached""#,
        ),
        e(
            "07:20:00",
            "call_offered",
            r#""call":"c2","queue":"orders""#,
        ),
        e("07:20:45", "call_answered", r#""call":"c2","agent":"a2""#),
        e("07:25:45", "call_ended", r#""call":"c2""#),
        e(
            "07:26:00",
            "sale",
            r#""sale":"s2","agent":"a2","call":"c2","kind":"upgrade","unit_price":500,"previous_value":200"#,
        ),
        e("07:26:15", "wrap_ended", r#""call":"c2""#),
        e(
            "07:27:00",
            "task_created",
            r#""task":"k5","kind":"order_confirmation","queue":"orders""#,
        ),
        e(
            "07:30:00",
            "call_offered",
            r#""call":"c3","queue":"orders""#,
        ),
        e("07:30:03", "call_abandoned", r#""call":"c3""#),
        e(
            "07:31:00",
            "call_offered",
            r#""call":"c4","queue":"orders","customer":"C-4""#,
        ),
        e("07:32:00", "call_abandoned", r#""call":"c4""#),
        e(
            "07:31:00",
            "task_created",
            r#""task":"k1","kind":"callback","queue":"orders","customer":"C-4""#,
        ),
        e(
            "07:40:00",
            "call_offered",
            r#""call":"c5","queue":"service""#,
        ),
        e("07:40:05", "call_answered", r#""call":"c5","agent":"a3""#),
        e("07:44:05", "call_ended", r#""call":"c5""#),
        e(
            "07:44:30",
            "sale",
            r#""sale":"s3","agent":"a3","call":"c5","kind":"downgrade","unit_price":100,"previous_value":250"#,
        ),
        e("07:45:05", "wrap_ended", r#""call":"c5""#),
        e(
            "07:50:00",
            "call_offered",
            r#""call":"c6","queue":"orders""#,
        ),
        e("07:50:05", "call_answered", r#""call":"c6","agent":"a1""#),
        e(
            "07:51:05",
            "call_transferred",
            r#""call":"c6","to_agent":"a2""#,
        ),
        e("07:53:05", "call_ended", r#""call":"c6""#),
        e("07:53:35", "wrap_ended", r#""call":"c6""#),
        e(
            "08:00:00",
            "sale_cancelled",
            r#""sale":"s1","reason":"customer withdrew""#,
        ),
        e("08:30:00", "task_completed", r#""task":"k2","agent":"a2""#),
        e(
            "08:55:00",
            "call_offered",
            r#""call":"c7","queue":"orders""#,
        ),
        e(
            "09:00:00",
            "agent_state",
            r#""agent":"a3","state":"paused","reason":"lunch""#,
        ),
    ]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// Asserts the scripted day's figures in a snapshot and a scrape.
pub fn assert_day(snap: &serde_json::Value, m: &BTreeMap<String, f64>) {
    let q = |name: &str| -> &serde_json::Value {
        snap["queues"]
            .as_array()
            .expect("queues")
            .iter()
            .find(|q| q["name"] == name)
            .expect("queue in snapshot")
    };
    let orders = q("orders");
    assert_eq!(snap["now"], "2026-03-02T09:00:00.000Z");
    assert_eq!(orders["waiting"], 1);
    assert_eq!(orders["oldest_wait_s"], 300.0);
    for (k, v) in [
        ("offered", 6),
        ("answered", 3),
        ("answered_in_sl", 2),
        ("abandoned", 2),
        ("abandoned_short", 1),
    ] {
        assert_eq!(orders["today"][k], v, "orders today {k}");
    }
    assert_eq!(orders["today"]["service_level"], 0.5);
    assert_eq!(orders["kpis"]["service_level"]["status"], "warn");
    let c = &orders["today_contacts"];
    assert_eq!(c["aht_s"], 280.0);
    assert_eq!(
        (
            c["talk_s"].as_f64(),
            c["hold_s"].as_f64(),
            c["wrap_s"].as_f64()
        ),
        (Some(230.0), Some(10.0), Some(40.0))
    );
    assert_eq!(
        (c["contacts"].as_u64(), c["converted"].as_u64()),
        (Some(5), Some(1))
    );
    assert_eq!(c["conversion"], 0.2);
    assert_eq!(c["revenue"], 500.0);
    let s = &orders["sales"];
    assert_eq!(
        (
            s["revenue"].as_f64(),
            s["incremental_gain"].as_f64(),
            s["incremental_loss"].as_f64()
        ),
        (Some(800.0), Some(600.0), Some(0.0))
    );
    assert_eq!(
        (s["cancelled"].as_u64(), s["cancelled_revenue"].as_f64()),
        (Some(1), Some(300.0))
    );
    let service = q("service");
    assert_eq!(service["today"]["service_level"], 1.0);
    assert_eq!(service["sales"]["incremental_loss"], 150.0);

    let agent = |id: &str| -> &serde_json::Value {
        snap["agents"]
            .as_array()
            .expect("agents")
            .iter()
            .find(|a| a["agent"] == id)
            .expect("agent")
    };
    for (id, contacts, talk, hold, wrap, conversion, state) in [
        ("a1", 2, 270.0, 30.0, 60.0, 0.0, "available"),
        ("a2", 3, 420.0, 0.0, 60.0, 1.0 / 3.0, "available"),
        ("a3", 1, 240.0, 0.0, 60.0, 1.0, "paused"),
    ] {
        let a = agent(id);
        assert_eq!(a["contacts_handled"], contacts, "{id} contacts");
        assert_eq!(
            (
                a["talk_s"].as_f64(),
                a["hold_s"].as_f64(),
                a["wrap_s"].as_f64()
            ),
            (Some(talk), Some(hold), Some(wrap)),
            "{id} handle"
        );
        assert!(
            close(
                a["today"]["conversion"].as_f64().expect("conversion"),
                conversion
            ),
            "{id} conversion"
        );
        assert_eq!(a["state"], state);
    }
    assert_eq!(agent("a3")["reason"], "lunch");

    let b = |kind: &str| -> &serde_json::Value {
        snap["backlog"]
            .as_array()
            .expect("backlog")
            .iter()
            .find(|b| b["kind"] == kind && b["queue"] == "orders")
            .expect("row")
    };
    let cb = b("callback");
    for (k, v) in [
        ("open", 2),
        ("overdue", 0),
        ("due_soon", 1),
        ("created", 4),
        ("completed_met", 1),
        ("completed_missed", 1),
        ("breaches", 1),
    ] {
        assert_eq!(cb[k], v, "callbacks {k}");
    }
    assert_eq!(cb["oldest_age_s"], 13200.0);
    assert_eq!(cb["next_due_s"], 1200.0);
    assert_eq!(cb["attempts"]["no_answer"], 1);
    let offer = b("offer");
    assert_eq!(
        (
            offer["open"].as_u64(),
            offer["overdue"].as_u64(),
            offer["breaches"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(offer["oldest_age_s"], 6590.0);
    assert_eq!(b("order_confirmation")["due_soon"], 0);

    let o = r#"{queue="orders"}"#;
    for (name, v) in [
        ("callwatch_queue_calls_waiting", 1.0),
        ("callwatch_queue_oldest_wait_seconds", 300.0),
        ("callwatch_calls_offered_total", 6.0),
        ("callwatch_calls_answered_total", 3.0),
        ("callwatch_calls_answered_in_sl_total", 2.0),
        ("callwatch_calls_abandoned_total", 2.0),
        ("callwatch_calls_abandoned_short_total", 1.0),
        ("callwatch_revenue_total", 800.0),
        ("callwatch_sales_cancelled_total", 1.0),
        ("callwatch_revenue_cancelled_total", 300.0),
        ("callwatch_call_talk_seconds_sum", 210.0 + 300.0 + 180.0),
        ("callwatch_call_hold_seconds_sum", 30.0),
        ("callwatch_call_wrap_seconds_sum", 120.0),
        ("callwatch_call_wait_seconds_count", 3.0),
    ] {
        assert_eq!(metric(m, &format!("{name}{o}")), v, "{name}");
    }
    assert_eq!(
        metric(
            m,
            r#"callwatch_queue_service_level_ratio{queue="orders",window="today"}"#
        ),
        0.5
    );
    assert_eq!(
        metric(
            m,
            r#"callwatch_call_wait_seconds_bucket{queue="orders",le="20"}"#
        ),
        2.0
    );
    assert_eq!(
        metric(
            m,
            r#"callwatch_incremental_revenue_total{queue="orders",direction="gain"}"#
        ),
        600.0
    );
    assert_eq!(
        metric(
            m,
            r#"callwatch_incremental_revenue_total{queue="service",direction="loss"}"#
        ),
        150.0
    );
    assert_eq!(
        metric(m, r#"callwatch_sales_total{kind="upgrade",queue="orders"}"#),
        1.0
    );
    let kq = r#"{kind="callback",queue="orders"}"#;
    assert_eq!(metric(m, &format!("callwatch_backlog_tasks{kq}")), 2.0);
    assert_eq!(
        metric(m, &format!("callwatch_backlog_oldest_age_seconds{kq}")),
        13200.0
    );
    assert_eq!(
        metric(m, &format!("callwatch_backlog_due_soon_tasks{kq}")),
        1.0
    );
    assert_eq!(
        metric(m, &format!("callwatch_backlog_next_due_seconds{kq}")),
        1200.0
    );
    assert_eq!(
        metric(m, &format!("callwatch_task_sla_breaches_total{kq}")),
        1.0
    );
    assert_eq!(
        metric(
            m,
            r#"callwatch_tasks_completed_total{kind="callback",queue="orders",sla="missed"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            m,
            r#"callwatch_backlog_overdue_tasks{kind="offer",queue="orders"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            m,
            r#"callwatch_agents{state="available",team="sales",site="hq"}"#
        ),
        2.0
    );
    assert_eq!(
        metric(
            m,
            r#"callwatch_agents{state="paused",team="service",site="hq"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            m,
            r#"callwatch_agent_handle_seconds_total{agent="a2",phase="talk"}"#
        ),
        420.0
    );
    assert_eq!(
        metric(m, r#"callwatch_agent_contacts_handled_total{agent="a2"}"#),
        3.0
    );
    assert!(close(
        metric(
            m,
            r#"callwatch_agent_conversion_ratio{agent="a2",window="today"}"#
        ),
        1.0 / 3.0
    ));
    assert_eq!(
        metric(m, r#"callwatch_agent_state{agent="a3",state="paused"}"#),
        1.0
    );
    assert_eq!(
        metric(
            m,
            r#"callwatch_goal_status{scope_kind="queue",scope="orders",goal="service_level",kpi="service_level",category="primary"}"#
        ),
        1.0
    );
    assert!(
        m.keys().all(|k| !k.contains("C-") && !k.contains("\"c1\"")),
        "no customer or call ids in labels"
    );
}

/// Reads lines until one satisfies `pred` (deadline `secs`); returns it.
pub async fn line_matching<R>(
    lines: &mut tokio::io::Lines<R>,
    secs: u64,
    pred: impl Fn(&str) -> bool,
) -> String
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, lines.next_line()).await {
            Ok(Ok(Some(l))) if pred(&l) => return l,
            Ok(Ok(Some(_))) => continue,
            Ok(_) => panic!("connection closed before the expected line"),
            Err(_) => panic!("timed out waiting for a line"),
        }
    }
}

/// A helper process (chromedriver, Prometheus) killed when dropped.
pub struct Reaper(pub Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free on loopback right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `callwatch replay --offline --config CFG FILE`: the snapshot it prints.
pub fn replay_offline(cfg: &std::path::Path, file: &std::path::Path) -> serde_json::Value {
    let out = Command::new(BIN)
        .args(["replay", "--offline", "--config"])
        .arg(cfg)
        .arg(file)
        .output()
        .expect("replay");
    // 1: some events were refused (the snapshot is still printed).
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// A websocket feed client.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to `/ws{query}`.
pub async fn ws_connect(d: &Daemon, query: &str) -> Ws {
    tokio_tungstenite::connect_async(format!("ws://{}/ws{query}", d.http))
        .await
        .expect("websocket connects")
        .0
}

/// Feed messages until one satisfies `pred` (15 s deadline).
pub async fn ws_until(ws: &mut Ws, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => {
                let m: serde_json::Value = serde_json::from_str(&t).expect("json");
                if pred(&m) {
                    return m;
                }
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("no matching feed message: {other:?}"),
        }
    }
}

/// Connects to `/ws{query}` and waits for the snapshot.
pub async fn ws_snapshot(d: &Daemon, query: &str) -> (Ws, serde_json::Value) {
    let mut ws = ws_connect(d, query).await;
    let m = ws_until(&mut ws, |m| m["type"] == "snapshot").await;
    (ws, m)
}

/// The shipped configuration on ephemeral ports and the event clock.
pub fn shipped_config() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/callwatch.toml"
    ))
    .expect("config")
    .replace("http = \"127.0.0.1:9464\"", "http = \"127.0.0.1:0\"")
    .replace(
        "ingest_tcp = \"127.0.0.1:9465\"",
        "ingest_tcp = \"127.0.0.1:0\"",
    )
    .replace("mode = \"system\"", "mode = \"event\"")
}

/// A small tmpfs mounted for the test, unmounted on drop.
pub struct Tmpfs(pub std::path::PathBuf);

impl Tmpfs {
    pub fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("tmp").keep();
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount (the disk-full test needs root, as CI has)");
        assert!(
            st.success(),
            "mounting a tmpfs failed; the disk-full test needs root"
        );
        Tmpfs(dir)
    }
    pub fn free(&self) -> u64 {
        let out = std::process::Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(&self.0)
            .output()
            .expect("df");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("avail")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}
