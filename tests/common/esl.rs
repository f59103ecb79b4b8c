//! A scripted FreeSWITCH mod_event_socket for the `freeswitch_esl`
//! tests: the real inbound protocol (auth, `api callcenter_config`
//! lists, `event plain`, URL-encoded event headers), answered from what
//! the test gives it.
#![allow(dead_code)]

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// An event body (its `Name: value` lines and the empty line) as a
/// `text/event-plain` frame.
pub fn frame(body: &str) -> String {
    format!(
        "Content-Length: {}\nContent-Type: text/event-plain\n\n{body}",
        body.len()
    )
}

/// An event from `(name, value)` pairs, values URL-encoded as FreeSWITCH
/// writes them.
pub fn event(headers: &[(&str, String)]) -> String {
    let mut body = String::new();
    for (k, v) in headers {
        body.push_str(&format!("{k}: {}\n", urlencode(v)));
    }
    body.push('\n');
    frame(&body)
}

pub fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The three `callcenter_config` lists one session answers.
#[derive(Clone, Default)]
pub struct Lists {
    pub agents: Vec<(&'static str, &'static str)>,
    pub tiers: Vec<(&'static str, &'static str)>,
    /// (member uuid, queue, state, joined epoch (seconds), serving agent)
    pub members: Vec<(&'static str, &'static str, &'static str, i64, &'static str)>,
}

impl Lists {
    pub fn answer(&self, what: &str) -> String {
        let body = match what {
            "agent list" => {
                let mut t = "name|instance_id|uuid|type|contact|status|state|max_no_answer|wrap_up_time|reject_delay_time|busy_delay_time|no_answer_delay_time|last_bridge_start|last_bridge_end|last_offered_call|last_status_change|no_answer_count|calls_answered|talk_time|ready_time|external_calls_count\n".to_string();
                for (name, status) in &self.agents {
                    t.push_str(&format!("{name}|single_box||callback|[call_timeout=60]user/1001|{status}|Waiting|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"));
                }
                t
            }
            "tier list" => {
                let mut t = "queue|agent|state|level|position\n".to_string();
                for (q, a) in &self.tiers {
                    t.push_str(&format!("{q}|{a}|Ready|1|1\n"));
                }
                t
            }
            "member list" => {
                let mut t = "queue|instance_id|uuid|session_uuid|cid_number|cid_name|system_epoch|joined_epoch|rejoined_epoch|bridge_epoch|abandoned_epoch|base_score|skill_score|serving_agent|serving_system|state|score\n".to_string();
                for (uuid, q, state, joined, agent) in &self.members {
                    let j = *joined;
                    let bridge = if agent.is_empty() { 0 } else { j + 5 };
                    t.push_str(&format!("{q}|single_box|{uuid}|s-{uuid}|030123|Caller|{j}|{j}|0|{bridge}|0|0|0|{agent}|single_box|{state}|0\n"));
                }
                t
            }
            other => panic!("unexpected api command {other:?}"),
        };
        let body = body + "+OK\n";
        format!(
            "Content-Type: api/response\nContent-Length: {}\n\n{body}",
            body.len()
        )
    }
}

/// A scripted mod_event_socket: for connection `n` it answers with
/// `lists[n]` (the last one for later connections), then writes what the
/// test hands it; `None` closes the connection.
pub struct Peer {
    pub addr: std::net::SocketAddr,
    tx: tokio::sync::mpsc::UnboundedSender<Option<String>>,
    sessions: tokio::sync::mpsc::UnboundedReceiver<usize>,
}

pub async fn read_command<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> String {
    let mut out = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
            return out;
        }
        if line.trim().is_empty() {
            if !out.is_empty() {
                return out;
            }
            continue;
        }
        out.push_str(line.trim_end());
    }
}

impl Peer {
    pub async fn start(password: &'static str, lists: Vec<Lists>) -> Peer {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Option<String>>();
        let (done, sessions) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            for n in 0usize.. {
                let Ok((s, _)) = l.accept().await else { return };
                let (r, mut w) = s.into_split();
                let mut r = BufReader::new(r);
                let _ = w.write_all(b"Content-Type: auth/request\n\n").await;
                let auth = read_command(&mut r).await;
                if auth != format!("auth {password}") {
                    let _ = w
                        .write_all(b"Content-Type: command/reply\nReply-Text: -ERR invalid\n\n")
                        .await;
                    let _ = done.send(n);
                    continue;
                }
                let _ = w
                    .write_all(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
                    .await;
                let lists = &lists[n.min(lists.len() - 1)];
                loop {
                    let cmd = read_command(&mut r).await;
                    if let Some(what) = cmd.strip_prefix("api callcenter_config ") {
                        let _ = w.write_all(lists.answer(what).as_bytes()).await;
                    } else {
                        assert_eq!(cmd, "event plain CUSTOM callcenter::info");
                        let _ = w
                            .write_all(b"Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n")
                            .await;
                        break;
                    }
                }
                let _ = done.send(n);
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
        Peer { addr, tx, sessions }
    }

    pub fn send(&self, frame: String) {
        let _ = self.tx.send(Some(frame));
    }

    pub fn disconnect(&self) {
        let _ = self.tx.send(None);
    }

    pub async fn session(&mut self) -> usize {
        tokio::time::timeout(std::time::Duration::from_secs(30), self.sessions.recv())
            .await
            .expect("a session within 30 s")
            .expect("the peer runs")
    }
}
