//! The source compliance test: every source (TCP, HTTP, the simulator,
//! Asterisk queue_log and AMI, FreeSWITCH ESL, Twilio TaskRouter, Amazon Connect, NATS
//! JetStream) through the same checks
//! against the real binary: what it received, applied, refused and
//! passed over is counted under the same names; bad input costs none of
//! the valid input around it; after its peer or input is interrupted it
//! carries on by itself (and counts the reconnect); SIGTERM stops it
//! cleanly while its peer is still connected.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// What one feed should show in the counters.
#[derive(Debug, Default, Clone, Copy)]
struct Expect {
    received: u64,
    applied: u64,
    refused: u64,
    malformed: u64,
}

impl std::ops::AddAssign for Expect {
    fn add_assign(&mut self, o: Expect) {
        self.received += o.received;
        self.applied += o.applied;
        self.refused += o.refused;
        self.malformed += o.malformed;
    }
}

/// One source under test: how to configure it and feed it.
trait Harness {
    /// The `source` label.
    const KIND: &'static str;
    /// Whether an interruption is the source's own reconnect (counted).
    const RECONNECTS: bool;
    fn config(&self) -> String;
    /// Feeds part `part` (0 or 1): valid input with bad input in between.
    async fn feed(&mut self, d: &Daemon, part: usize) -> Expect;
    /// Breaks the source's input (peer gone, file rotated) and restores it.
    async fn interrupt(&mut self, d: &Daemon);
}

/// Part `part` (0 or 1) of one simulated stream: the second part goes
/// on where the first ended, so both apply in full.
fn sim_part(part: usize, seed: u64) -> Vec<String> {
    let all = sim_events(400, seed);
    all[part * 200..(part + 1) * 200].to_vec()
}

fn sim_events(n: usize, seed: u64) -> Vec<String> {
    let sim = callwatch::simulate::Simulator::new(
        callwatch::simulate::SimOptions {
            agents: 10,
            rate: 20.0,
            seed,
            site: None,
        },
        1_772_434_800_000,
    );
    sim.take(n).map(|e| callwatch::event::encode(&e)).collect()
}

const BAD_JSON: &str = "{this is not json";

async fn counters(d: &Daemon, kind: &str) -> Expect {
    let m = parse_metrics(&metrics_text(d).await);
    let label = format!("source=\"{kind}\"");
    let sum = |prefix: &str, extra: &str| -> u64 {
        m.iter()
            .filter(|(k, _)| k.starts_with(prefix) && k.contains(&label) && k.contains(extra))
            .map(|(_, v)| *v as u64)
            .sum()
    };
    let s = get_json(d, "/api/v1/state").await;
    Expect {
        received: sum("callwatch_events_received_total{", ""),
        applied: s["events_applied"].as_u64().unwrap_or(0),
        refused: sum("callwatch_events_rejected_total{", ""),
        malformed: sum("callwatch_source_skipped_total{", "reason=\"malformed\""),
    }
}

async fn reconnects(d: &Daemon, kind: &str) -> f64 {
    let m = parse_metrics(&metrics_text(d).await);
    metric(
        &m,
        &format!("callwatch_source_reconnects_total{{source=\"{kind}\"}}"),
    )
}

async fn until_counted(d: &Daemon, kind: &str, want: Expect) {
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        let got = counters(d, kind).await;
        if got.received == want.received
            && got.applied == want.applied
            && got.refused == want.refused
            && got.malformed == want.malformed
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{kind}: counted {got:?}, expected {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The checks every source passes.
async fn compliance<H: Harness>(mut h: H) {
    let d = Daemon::start(&config(&h.config()));
    let mut want = h.feed(&d, 0).await;
    until_counted(&d, H::KIND, want).await;
    let before = reconnects(&d, H::KIND).await;
    h.interrupt(&d).await;
    want += h.feed(&d, 1).await;
    until_counted(&d, H::KIND, want).await;
    let m = parse_metrics(&metrics_text(&d).await);
    let lag = metric(
        &m,
        &format!("callwatch_source_lag_seconds{{source=\"{}\"}}", H::KIND),
    );
    assert!(lag >= 0.0, "{}: lag {lag}", H::KIND);
    if H::RECONNECTS {
        assert!(
            reconnects(&d, H::KIND).await > before,
            "{}: the reconnect is counted",
            H::KIND
        );
    }
    let status = d.terminate();
    assert!(status.success(), "{}: SIGTERM exit {status:?}", H::KIND);
}

// ---- TCP ----

struct Tcp;

impl Harness for Tcp {
    const KIND: &'static str = "tcp";
    const RECONNECTS: bool = false;
    fn config(&self) -> String {
        String::new()
    }
    async fn feed(&mut self, d: &Daemon, part: usize) -> Expect {
        let mut lines = sim_part(part, 10);
        lines.insert(100, BAD_JSON.into());
        let mut s = tokio::net::TcpStream::connect(d.tcp.expect("tcp"))
            .await
            .expect("connect");
        s.write_all((lines.join("\n") + "\n").as_bytes())
            .await
            .expect("write");
        let (r, _w) = s.into_split();
        let mut rd = BufReader::new(r).lines();
        line_matching(&mut rd, 30, |l| l == "ACK 201").await;
        Expect {
            received: 201,
            applied: 200,
            refused: 1,
            malformed: 0,
        }
    }
    async fn interrupt(&mut self, _d: &Daemon) {
        // The client went away after its ACK; the next feed reconnects.
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_complies() {
    compliance(Tcp).await;
}

// ---- HTTP ----

struct Http;

impl Harness for Http {
    const KIND: &'static str = "http";
    const RECONNECTS: bool = false;
    fn config(&self) -> String {
        String::new()
    }
    async fn feed(&mut self, d: &Daemon, part: usize) -> Expect {
        let mut lines = sim_part(part, 20);
        lines.insert(50, BAD_JSON.into());
        let (status, _) = post(d, lines.join("\n")).await;
        assert_eq!(status, 422, "one refused item");
        Expect {
            received: 201,
            applied: 200,
            refused: 1,
            malformed: 0,
        }
    }
    async fn interrupt(&mut self, _d: &Daemon) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_complies() {
    compliance(Http).await;
}

// ---- Simulator ----

struct Simulator;

impl Harness for Simulator {
    const KIND: &'static str = "simulator";
    const RECONNECTS: bool = false;
    fn config(&self) -> String {
        "[demo]\nenabled = true\nagents = 8\nrate = 50.0\n".into()
    }
    async fn feed(&mut self, d: &Daemon, _part: usize) -> Expect {
        // The simulator feeds itself: whatever it received is applied,
        // nothing refused. Wait for some, then expect exactly the count.
        let got = wait_for(30, "simulated events", || async {
            let c = counters(d, Self::KIND).await;
            (c.received > 10 && c.applied == c.received).then_some(c)
        })
        .await;
        Expect {
            received: got.received,
            applied: got.received,
            refused: 0,
            malformed: 0,
        }
    }
    async fn interrupt(&mut self, _d: &Daemon) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_complies() {
    // Its events carry wall-clock times: the system clock.
    let d = Daemon::start(
        &config(&Simulator.config()).replace("mode = \"event\"", "mode = \"system\""),
    );
    let mut h = Simulator;
    let first = h.feed(&d, 0).await;
    // It keeps going on its own, and every event it made is applied.
    wait_for(30, "the simulator to carry on", || async {
        let c = counters(&d, Simulator::KIND).await;
        (c.received > first.received && c.refused == 0 && c.malformed == 0).then_some(())
    })
    .await;
    let status = d.terminate();
    assert!(status.success(), "SIGTERM exit {status:?}");
}

// ---- Asterisk queue_log ----

struct QueueLog {
    dir: tempfile::TempDir,
}

impl QueueLog {
    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("queue_log")
    }
}

/// Lines of `calls` calls (offered, connected, completed: 4 events),
/// with one garbage line in the middle.
fn queue_log_lines(part: usize, calls: usize) -> Vec<String> {
    let t0 = 1_772_434_800 + part as i64 * 10_000;
    let mut v = Vec::new();
    for c in 0..calls {
        let (t, id) = (t0 + c as i64 * 30, format!("p{part}c{c}"));
        v.push(format!("{t}|{id}|orders|NONE|ENTERQUEUE||0301234{c}|1"));
        v.push(format!(
            "{}|{id}|orders|SIP/20{}|CONNECT|5|{id}|1",
            t + 5,
            c % 3
        ));
        v.push(format!(
            "{}|{id}|orders|SIP/20{}|COMPLETECALLER|5|20|1",
            t + 25,
            c % 3
        ));
        if c == calls / 2 {
            v.push("this|line".into());
        }
    }
    v
}

/// The logins of SIP/200..202, inferred from their first answers (they
/// logged in before the source started): once, in the first part.
fn members_inferred(part: usize) -> u64 {
    if part == 0 {
        3
    } else {
        0
    }
}

impl Harness for QueueLog {
    const KIND: &'static str = "asterisk_queue_log";
    const RECONNECTS: bool = true;
    fn config(&self) -> String {
        std::fs::write(self.path(), "").expect("create queue_log");
        format!(
            "[[sources]]\ntype = \"asterisk_queue_log\"\nname = \"pbx1\"\npath = \"{}\"\nfrom_start = true\npoll_interval = \"50ms\"\n",
            self.path().display()
        )
    }
    async fn feed(&mut self, _d: &Daemon, part: usize) -> Expect {
        let lines = queue_log_lines(part, 10);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.path())
            .expect("open");
        use std::io::Write as _;
        f.write_all((lines.join("\n") + "\n").as_bytes())
            .expect("append");
        Expect {
            received: lines.len() as u64,
            applied: 10 * 4 + members_inferred(part),
            refused: 0,
            malformed: 1,
        }
    }
    async fn interrupt(&mut self, d: &Daemon) {
        // Rotated: the old file moves away, a new one takes its name.
        std::fs::rename(self.path(), self.dir.path().join("queue_log.1")).expect("rotate");
        std::fs::write(self.path(), "").expect("new queue_log");
        wait_for(20, "the rotation to be noticed", || async {
            (reconnects(d, Self::KIND).await >= 1.0).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asterisk_queue_log_complies() {
    compliance(QueueLog {
        dir: tempfile::tempdir().expect("tmp"),
    })
    .await;
}

// ---- Asterisk AMI ----

/// A scripted AMI peer: greets, accepts the login, answers QueueStatus
/// with nothing, then writes what the test hands it; `drop_session`
/// closes the connection (the source logs in again).
struct Ami {
    addr: std::net::SocketAddr,
    tx: tokio::sync::mpsc::UnboundedSender<Option<String>>,
}

impl Ami {
    async fn start() -> Ami {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Option<String>>();
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = l.accept().await else { return };
                let (r, mut w) = s.into_split();
                let mut r = BufReader::new(r);
                let _ = w.write_all(b"Asterisk Call Manager/5.0.1\r\n").await;
                let mut act = String::new();
                for reply in [
                    "Response: Success\r\nActionID: callwatch-login\r\nMessage: Authentication accepted\r\n\r\n",
                    "Response: Success\r\nActionID: callwatch-resync\r\nMessage: Queue status will follow\r\n\r\nEvent: QueueStatusComplete\r\nActionID: callwatch-resync\r\nEventList: Complete\r\nListItems: 0\r\n\r\n",
                ] {
                    // Each action ends with an empty line.
                    loop {
                        act.clear();
                        if r.read_line(&mut act).await.unwrap_or(0) == 0 {
                            break;
                        }
                        if act.trim().is_empty() {
                            break;
                        }
                    }
                    let _ = w.write_all(reply.as_bytes()).await;
                }
                while let Some(m) = rx.recv().await {
                    match m {
                        Some(text) => {
                            let _ = w.write_all(text.as_bytes()).await;
                        }
                        None => break,
                    }
                }
            }
        });
        Ami { addr, tx }
    }
}

/// AMI events of `calls` calls (join, connect, complete: 4 events), one
/// malformed block in the middle.
fn ami_blocks(part: usize, calls: usize) -> (Vec<String>, u64) {
    let mut v = Vec::new();
    let t0 = 1_772_434_800 + part as i64 * 10_000;
    for c in 0..calls {
        let (t, id) = (t0 + c as i64 * 30, format!("{part}.{c}"));
        v.push(format!("Event: QueueCallerJoin\r\nTimestamp: {t}.000000\r\nQueue: orders\r\nUniqueid: {id}\r\nCallerIDNum: 0301234{c}\r\nPosition: 1\r\n\r\n"));
        v.push(format!("Event: AgentConnect\r\nTimestamp: {}.000000\r\nQueue: orders\r\nUniqueid: {id}\r\nMemberName: SIP/20{}\r\nHoldTime: 5\r\n\r\n", t + 5, c % 3));
        v.push(format!("Event: AgentComplete\r\nTimestamp: {}.000000\r\nQueue: orders\r\nUniqueid: {id}\r\nMemberName: SIP/20{}\r\nTalkTime: 20\r\nReason: caller\r\n\r\n", t + 25, c % 3));
        if c == calls / 2 {
            // A join without the call's id.
            v.push("Event: QueueCallerJoin\r\nQueue: orders\r\n\r\n".into());
        }
    }
    let n = v.len() as u64;
    (v, n)
}

impl Harness for Ami {
    const KIND: &'static str = "asterisk_ami";
    const RECONNECTS: bool = true;
    fn config(&self) -> String {
        format!(
            "[[sources]]\ntype = \"asterisk_ami\"\nname = \"pbx\"\naddress = \"{}\"\nusername = \"callwatch\"\nsecret = \"s3cret\"\n",
            self.addr
        )
    }
    async fn feed(&mut self, _d: &Daemon, part: usize) -> Expect {
        let (blocks, n) = ami_blocks(part, 10);
        for b in blocks {
            let _ = self.tx.send(Some(b));
        }
        Expect {
            // The QueueStatusComplete of each login is received too.
            received: n + 1,
            // The scripted PBX lists no members at the reconnect: the
            // resync logs the three out, their next answers log them in.
            applied: 10 * 4 + if part == 0 { 3 } else { 6 },
            refused: 0,
            malformed: 1,
        }
    }
    async fn interrupt(&mut self, _d: &Daemon) {
        let _ = self.tx.send(None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asterisk_ami_complies() {
    compliance(Ami::start().await).await;
}

// ---- FreeSWITCH mod_callcenter ----

/// The scripted mod_event_socket of tests/common/esl.rs, listing nothing
/// at each connect.
struct Esl {
    peer: common::esl::Peer,
}

/// mod_callcenter events of `calls` calls (join, bridge start and end:
/// 4 canonical events each), one without its member in the middle.
fn esl_events(part: usize, calls: usize) -> (Vec<String>, u64) {
    use common::esl::event;
    let mut v = Vec::new();
    let t0 = 1_772_434_800 + part as i64 * 10_000;
    let cc = |action: &str| ("CC-Action", action.to_string());
    let sub = || ("Event-Subclass", "callcenter::info".to_string());
    for c in 0..calls {
        let (t, id) = (t0 + c as i64 * 30, format!("m-{part}-{c}"));
        let agent = format!("10{}@default", c % 3);
        let date = |s: i64| ("Event-Date-Timestamp", (s * 1_000_000).to_string());
        v.push(event(&[
            sub(),
            cc("member-queue-start"),
            ("CC-Queue", "orders".into()),
            ("CC-Member-UUID", id.clone()),
            ("CC-Member-CID-Number", format!("0301234{c}")),
            ("CC-Member-Joined-Time", t.to_string()),
            date(t),
        ]));
        v.push(event(&[
            sub(),
            cc("bridge-agent-start"),
            ("CC-Queue", "orders".into()),
            ("CC-Agent", agent.clone()),
            ("CC-Member-UUID", id.clone()),
            ("CC-Member-Joined-Time", t.to_string()),
            ("CC-Agent-Answered-Time", (t + 5).to_string()),
            date(t + 5),
        ]));
        v.push(event(&[
            sub(),
            cc("bridge-agent-end"),
            ("CC-Queue", "orders".into()),
            ("CC-Agent", agent),
            ("CC-Member-UUID", id),
            ("CC-Agent-Answered-Time", (t + 5).to_string()),
            ("CC-Bridge-Terminated-Time", (t + 25).to_string()),
            date(t + 25),
        ]));
        if c == calls / 2 {
            v.push(event(&[
                sub(),
                cc("member-queue-start"),
                ("CC-Queue", "orders".into()),
                date(t),
            ]));
        }
    }
    let n = v.len() as u64;
    (v, n)
}

impl Harness for Esl {
    const KIND: &'static str = "freeswitch_esl";
    const RECONNECTS: bool = true;
    fn config(&self) -> String {
        format!(
            "[[sources]]\ntype = \"freeswitch_esl\"\nname = \"fs\"\naddress = \"{}\"\npassword = \"ClueCon\"\n",
            self.peer.addr
        )
    }
    async fn feed(&mut self, _d: &Daemon, part: usize) -> Expect {
        self.peer.session().await;
        let (events, n) = esl_events(part, 10);
        for e in events {
            self.peer.send(e);
        }
        Expect {
            received: n,
            // The module lists no agents at the reconnect: the resync logs
            // the three out, their next answers log them in.
            applied: 10 * 4 + if part == 0 { 3 } else { 6 },
            refused: 0,
            malformed: 1,
        }
    }
    async fn interrupt(&mut self, _d: &Daemon) {
        self.peer.disconnect();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeswitch_esl_complies() {
    let peer = common::esl::Peer::start("ClueCon", vec![common::esl::Lists::default()]).await;
    compliance(Esl { peer }).await;
}

// ---- Twilio TaskRouter (a webhook source) ----

struct Twilio;

const TW_TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// POSTs one TaskRouter callback, signed unless `forged`.
async fn taskrouter(d: &Daemon, params: &[(&str, String)], forged: bool) -> u16 {
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let sig = if forged {
        "bm90IGEgc2lnbmF0dXJl".to_string()
    } else {
        callwatch::source::twilio::signature(TW_TOKEN, "https://callwatch.example/tw", &owned)
    };
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(owned.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .finish();
    client()
        .post(d.url("/api/v1/sources/tw"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", sig)
        .body(body)
        .send()
        .await
        .expect("post")
        .status()
        .as_u16()
}

impl Harness for Twilio {
    const KIND: &'static str = "twilio_taskrouter";
    const RECONNECTS: bool = false;
    fn config(&self) -> String {
        format!("[[sources]]\ntype = \"twilio_taskrouter\"\nname = \"tw\"\nauth_token = \"{TW_TOKEN}\"\nurl = \"https://callwatch.example/tw\"\n")
    }
    async fn feed(&mut self, d: &Daemon, part: usize) -> Expect {
        let t0 = (1_772_434_800 + part as i64 * 10_000) * 1000;
        for c in 0..10i64 {
            let task = format!("WT{part}{c:031}");
            for (i, (kind, extra)) in [
                (
                    "task-queue.entered",
                    ("TaskQueueName", "orders".to_string()),
                ),
                (
                    "reservation.accepted",
                    ("WorkerName", format!("agent{}", c % 3)),
                ),
                (
                    "task.completed",
                    ("TaskChannelUniqueName", "voice".to_string()),
                ),
            ]
            .into_iter()
            .enumerate()
            {
                let ms = t0 + c * 30_000 + i as i64 * 10_000;
                let p = [
                    ("EventType", kind.to_string()),
                    ("Sid", format!("EV{part}{c}{i}")),
                    ("TimestampMs", ms.to_string()),
                    ("TaskSid", task.clone()),
                    extra,
                ];
                assert_eq!(taskrouter(d, &p, false).await, 204, "{p:?}");
            }
            if c == 5 {
                // Not an event (no Sid), and a forged one: each refused,
                // neither costs the calls around it.
                assert_eq!(
                    taskrouter(d, &[("EventType", "task.created".into())], false).await,
                    400
                );
                assert_eq!(
                    taskrouter(
                        d,
                        &[("EventType", "task.created".into()), ("Sid", "EVx".into())],
                        true
                    )
                    .await,
                    403
                );
            }
        }
        Expect {
            received: 32,
            applied: 40,
            refused: 1,
            malformed: 1,
        }
    }
    async fn interrupt(&mut self, _d: &Daemon) {
        // Each callback is its own request: nothing to interrupt.
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_taskrouter_complies() {
    compliance(Twilio).await;
}

// ---- Amazon Connect (a webhook source) ----

struct Connect;

const AC_KEY: &str = "connect-key-0123456789";

async fn connect_post(d: &Daemon, body: serde_json::Value, key: &str) -> u16 {
    client()
        .post(d.url("/api/v1/sources/ac"))
        .header("content-type", "application/json")
        .header("x-api-key", key)
        .body(body.to_string())
        .send()
        .await
        .expect("post")
        .status()
        .as_u16()
}

impl Harness for Connect {
    const KIND: &'static str = "amazon_connect";
    const RECONNECTS: bool = false;
    fn config(&self) -> String {
        format!(
            "[[sources]]\ntype = \"amazon_connect\"\nname = \"ac\"\naccess_key = \"{AC_KEY}\"\n"
        )
    }
    async fn feed(&mut self, d: &Daemon, part: usize) -> Expect {
        let t0 = 1_772_434_800 + part as i64 * 10_000;
        let time = |s: i64| {
            chrono::DateTime::from_timestamp(s, 0)
                .expect("time")
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        // Ten calls queued and abandoned, as EventBridge delivers them.
        for c in 0..10i64 {
            let contact = format!("c-{part}-{c}");
            for (i, kind) in ["QUEUED", "DISCONNECTED"].into_iter().enumerate() {
                let t = time(t0 + c * 30 + i as i64 * 20);
                let e = serde_json::json!({
                    "version": "0", "id": format!("eb-{part}-{c}-{i}"),
                    "detail-type": "Amazon Connect Contact Event", "source": "aws.connect", "time": t,
                    "detail": {"eventType": kind, "contactId": contact, "channel": "VOICE",
                               "queueInfo": {"queueArn": "arn:aws:connect:eu-central-1:1:instance/i/queue/orders"}}
                });
                assert_eq!(connect_post(d, e, AC_KEY).await, 200);
            }
            if c == 5 {
                assert_eq!(
                    connect_post(d, serde_json::json!({"no": "event"}), AC_KEY).await,
                    400
                );
                assert_eq!(
                    connect_post(d, serde_json::json!({"no": "key"}), "wrong").await,
                    403
                );
            }
        }
        Expect {
            received: 22,
            applied: 20,
            refused: 1,
            malformed: 1,
        }
    }
    async fn interrupt(&mut self, _d: &Daemon) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amazon_connect_complies() {
    compliance(Connect).await;
}

// ---- NATS JetStream ----

struct JetStream {
    _tmp: tempfile::TempDir,
    broker: common::nats::Node,
}

impl Harness for JetStream {
    const KIND: &'static str = "nats_jetstream";
    const RECONNECTS: bool = true;
    fn config(&self) -> String {
        format!(
            "[[sources]]\ntype = \"nats_jetstream\"\nname = \"js\"\nservers = [\"{}\"]\ncreate_stream = true\n",
            self.broker.url()
        )
    }
    async fn feed(&mut self, _d: &Daemon, part: usize) -> Expect {
        let c = common::nats::client(&[self.broker.url()]).await;
        let js = async_nats::jetstream::new(c);
        common::nats::stream(&js, "CALLWATCH", &["callwatch.events.>"], 1).await;
        let mut lines = sim_part(part, 30);
        lines.insert(100, BAD_JSON.into());
        for (i, l) in lines.iter().enumerate() {
            common::nats::publish(
                &js,
                "callwatch.events.hq",
                &format!("{part}-{i}"),
                l.clone(),
            )
            .await
            .expect("publish");
        }
        Expect {
            received: 201,
            applied: 200,
            refused: 1,
            malformed: 0,
        }
    }
    async fn interrupt(&mut self, d: &Daemon) {
        self.broker.restart();
        self.broker.wait_healthy(20);
        wait_for(30, "the source to reconnect", || async {
            (reconnects(d, Self::KIND).await >= 1.0).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_jetstream_complies() {
    let tmp = tempfile::tempdir().expect("tmp");
    let broker = common::nats::single(tmp.path());
    compliance(JetStream { _tmp: tmp, broker }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pbx_source_waits_out_a_full_disk_and_loses_no_line() {
    // Before the source kit, the queue_log follower exited for good on
    // the first storage error: nothing after it was ever read.
    let fs = common::Tmpfs::mount("4m");
    let h = QueueLog {
        dir: tempfile::tempdir().expect("tmp"),
    };
    let data = fs.0.join("data");
    let cfg = config(&format!("[storage]\nfsync = \"always\"\n{}", h.config()));
    let d = Daemon::start_args(&cfg, &["--data-dir", data.to_str().expect("utf-8")]);
    let mut h = h;
    let mut want = h.feed(&d, 0).await;
    until_counted(&d, QueueLog::KIND, want).await;
    // Fill the disk, then the PBX logs more calls.
    let filler = fs.0.join("filler");
    let mut f = std::fs::File::create(&filler).expect("filler");
    use std::io::Write as _;
    while f.write_all(&[0u8; 65536]).is_ok() {}
    let _ = f.sync_all();
    drop(f);
    want += h.feed(&d, 1).await;
    wait_for(20, "the refused batch to be retried", || async {
        (reconnects(&d, QueueLog::KIND).await >= 1.0).then_some(())
    })
    .await;
    assert_eq!(
        counters(&d, QueueLog::KIND).await.applied,
        40 + members_inferred(0),
        "nothing of the refused batch applied"
    );
    std::fs::remove_file(&filler).expect("free the disk");
    until_counted(&d, QueueLog::KIND, want).await;
    assert!(d.terminate().success());
}
