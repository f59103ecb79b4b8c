//! Source `amazon_connect`: Amazon Connect's agent event stream and
//! contact events, delivered to `POST /api/v1/sources/<name>` by the
//! usual AWS forwarders (docs/sources/amazon-connect.md).
//!
//! Three bodies are taken: a Kinesis Data Firehose HTTP endpoint delivery
//! (`{"requestId", "timestamp", "records": [{"data": base64}]}`, each
//! record one event, answered with the `requestId` as Firehose requires),
//! an EventBridge event (an API destination posting the event JSON), and
//! a bare agent event. Every request carries the configured key, in
//! Firehose's `X-Amz-Firehose-Access-Key` or the API destination's header.
//!
//! Contact events give the queue side of a call (queued, answered, or
//! abandoned); agent events give the agent side (statuses, hold, the end
//! of the conversation when a contact goes from connected to ended, and
//! the end of after-call work when the ended contact leaves the agent's
//! snapshot). AWS delivers contact events best-effort and unordered:
//! each carries its own time, and what arrives in an order the engine
//! cannot take is refused and counted.

use std::collections::{HashMap, HashSet};

use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::event::{AgentStatus, Body, Direction, Event, Text};
use crate::reject::{Reason, Rejection};
use crate::source::hook::{Limits, Recent, Reply, Request};
use crate::source::pbx::{clip, customer, ts_of, Presence};
use crate::source::{self, Built, Context, Kind, Problems, Setup, Source, SourceError};

pub const NAME: &str = "amazon_connect";

pub const KIND: Kind = Kind { name: NAME, build };

fn voice() -> Vec<String> {
    vec!["VOICE".into()]
}

fn key_header() -> String {
    "x-api-key".into()
}

fn max_body() -> usize {
    4 << 20
}

fn per_second() -> u32 {
    100
}

/// `[[sources]]` with `type = "amazon_connect"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectConfig {
    pub name: Option<String>,
    /// The shared key: Firehose's access key, or the API key of an
    /// EventBridge connection.
    pub access_key: String,
    /// The header an EventBridge connection sends the key in.
    #[serde(default = "key_header")]
    pub api_key_header: String,
    pub site: Option<String>,
    /// Queue ARN → queue name (the ARN's last part without an entry).
    #[serde(default)]
    pub queues: HashMap<String, String>,
    /// Agent ARN or Connect username → agent id (the username without).
    #[serde(default)]
    pub agents: HashMap<String, String>,
    /// Agent status name → `available`, `paused` or `offline`.
    #[serde(default)]
    pub statuses: HashMap<String, Presence>,
    /// Channels whose contacts are calls (case does not matter).
    #[serde(default = "voice")]
    pub channels: Vec<String>,
    #[serde(default = "max_body")]
    pub max_body_bytes: usize,
    #[serde(default = "per_second")]
    pub rate_per_second: u32,
}

fn build(table: &toml::Table, setup: &Setup) -> Result<Built, Problems> {
    let c: ConnectConfig = source::parse(table)?;
    let mut p = Vec::new();
    if c.access_key.len() < 16 {
        p.push(("access_key".into(), "at least 16 characters".into()));
    }
    if axum::http::HeaderName::try_from(c.api_key_header.as_str()).is_err() {
        p.push(("api_key_header".into(), "not a header name".into()));
    }
    p.extend(Limits::problems(c.max_body_bytes, 64, c.rate_per_second));
    if !p.is_empty() {
        return Err(p);
    }
    let name = source::default_name(c.name.clone(), NAME, setup.index);
    Ok(Built {
        kind: NAME,
        checkpoint_file: String::new(),
        name,
        source: Box::new(ConnectSource { opts: c }),
    })
}

pub struct ConnectSource {
    opts: ConnectConfig,
}

/// A member of a JSON object whatever the case of its name (AWS's own
/// samples write `AgentInfo` and `agentInfo`).
fn field<'a>(v: &'a Value, name: &str) -> &'a Value {
    match v {
        Value::Object(o) => o
            .get(name)
            .or_else(|| {
                o.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            })
            .unwrap_or(&Value::Null),
        _ => &Value::Null,
    }
}

fn text<'a>(v: &'a Value, name: &str) -> &'a str {
    field(v, name).as_str().unwrap_or("")
}

fn time_ms(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The last part of an ARN (`.../queue/<id>`).
fn tail(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Calls followed at most (oldest forgotten first).
const MAX_CALLS: usize = 100_000;

/// What the source keeps between requests: contacts answered (so that a
/// disconnect of one never answered is an abandon) and agents seen
/// logged in.
struct Seen {
    answered: Recent,
    online: HashSet<String>,
}

impl Default for Seen {
    fn default() -> Seen {
        Seen {
            answered: Recent::new(MAX_CALLS),
            online: HashSet::new(),
        }
    }
}

#[derive(Debug, PartialEq)]
enum Skip {
    Passed,
    Malformed(&'static str),
}

impl ConnectSource {
    fn site(&self) -> Option<Text> {
        self.opts.site.as_deref().map(Text::from)
    }

    fn is_call(&self, channel: &str) -> bool {
        channel.is_empty()
            || self
                .opts
                .channels
                .iter()
                .any(|c| c.eq_ignore_ascii_case(channel))
    }

    fn queue(&self, arn: &str) -> Text {
        clip(self.opts.queues.get(arn).map_or(tail(arn), String::as_str))
    }

    fn agent(&self, arn: &str, username: &str) -> Text {
        let by = |k: &str| self.opts.agents.get(k).map(String::as_str);
        clip(
            by(arn)
                .or_else(|| by(username))
                .unwrap_or(if username.is_empty() {
                    tail(arn)
                } else {
                    username
                }),
        )
    }

    /// One event of any of the shapes, by what it carries.
    fn map(&self, seen: &mut Seen, v: &Value) -> Result<Vec<Event>, Skip> {
        if text(v, "detail-type") == "Amazon Connect Contact Event" {
            self.contact(seen, v)
        } else if !text(v, "Version").is_empty() && !text(v, "EventType").is_empty() {
            self.agent_event(seen, v)
        } else if !text(v, "detail-type").is_empty() {
            Err(Skip::Passed)
        } else {
            Err(Skip::Malformed(
                "an agent event (Version, EventType) or an EventBridge event",
            ))
        }
    }

    fn contact(&self, seen: &mut Seen, v: &Value) -> Result<Vec<Event>, Skip> {
        let d = field(v, "detail");
        let id = text(v, "id");
        let call = text(d, "contactId");
        if id.is_empty() || call.is_empty() {
            return Err(Skip::Malformed("id and detail.contactId"));
        }
        if !self.is_call(text(d, "channel")) {
            return Err(Skip::Passed);
        }
        let queue_info = field(d, "queueInfo");
        let agent_info = field(d, "agentInfo");
        let at = |name: &str, within: &Value| {
            time_ms(text(within, name))
                .or_else(|| time_ms(text(v, "time")))
                .ok_or(Skip::Malformed("time"))
        };
        let ev = |ms: i64, body: Body| Event {
            id: clip(&format!("ac:{id}")),
            ts: ts_of(ms),
            site: self.site(),
            body,
        };
        let call_t = clip(call);
        Ok(match text(d, "eventType") {
            "QUEUED" => {
                let arn = text(queue_info, "queueArn");
                if arn.is_empty() {
                    return Err(Skip::Malformed("detail.queueInfo.queueArn"));
                }
                let cust = customer(text(field(d, "customerEndpoint"), "address"));
                vec![ev(
                    at("enqueueTimestamp", queue_info)?,
                    Body::CallOffered {
                        call: call_t,
                        queue: self.queue(arn),
                        direction: Direction::Inbound,
                        customer: cust,
                    },
                )]
            }
            "CONNECTED_TO_AGENT" => {
                let arn = text(agent_info, "agentArn");
                if arn.is_empty() {
                    return Err(Skip::Malformed("detail.agentInfo.agentArn"));
                }
                seen.answered.insert(call);
                vec![ev(
                    at("connectedToAgentTimestamp", agent_info)?,
                    Body::CallAnswered {
                        call: call_t,
                        agent: self.agent(arn, ""),
                        wait_ms: None,
                    },
                )]
            }
            // Answered calls end by the agent's events (ended, then after
            // the after-call work); one never answered was abandoned.
            "DISCONNECTED" if !seen.answered.contains(call) && !queue_info.is_null() => {
                vec![ev(
                    at("disconnectTimestamp", d)?,
                    Body::CallAbandoned { call: call_t },
                )]
            }
            _ => return Err(Skip::Passed),
        })
    }

    fn agent_event(&self, seen: &mut Seen, v: &Value) -> Result<Vec<Event>, Skip> {
        let id = text(v, "EventId");
        let ms = time_ms(text(v, "EventTimestamp")).ok_or(Skip::Malformed("EventTimestamp"))?;
        if id.is_empty() {
            return Err(Skip::Malformed("EventId"));
        }
        let cur = field(v, "CurrentAgentSnapshot");
        let prev = field(v, "PreviousAgentSnapshot");
        let username = text(field(cur, "Configuration"), "Username");
        let arn = text(v, "AgentARN");
        if arn.is_empty() && username.is_empty() {
            return Err(Skip::Malformed("AgentARN"));
        }
        let agent = self.agent(arn, username);
        let ev = |suffix: &str, body: Body| Event {
            id: clip(&format!("ac:{id}{suffix}")),
            ts: ts_of(ms),
            site: self.site(),
            body,
        };
        let queues = || -> Vec<Text> {
            field(
                field(field(cur, "Configuration"), "RoutingProfile"),
                "InboundQueues",
            )
            .as_array()
            .map(|qs| {
                qs.iter()
                    .filter(|q| field(q, "Name").is_string())
                    .map(|q| match self.opts.queues.get(text(q, "ARN")) {
                        Some(n) => clip(n),
                        None => clip(text(q, "Name")),
                    })
                    .collect()
            })
            .unwrap_or_default()
        };
        let status = |snap: &Value| text(field(snap, "AgentStatus"), "Name").to_string();
        let mut out = Vec::new();
        match text(v, "EventType") {
            "LOGIN" => {
                seen.online.insert(agent.to_string());
                out.push(ev(
                    "",
                    Body::AgentLogin {
                        agent,
                        name: None,
                        team: None,
                        queues: queues(),
                    },
                ));
            }
            "LOGOUT" => {
                seen.online.remove(agent.as_str());
                out.push(ev(
                    "",
                    Body::AgentLogout {
                        agent,
                        queues: Vec::new(),
                    },
                ));
            }
            "STATE_CHANGE" => {
                let (now, before) = (status(cur), status(prev));
                if now != before && !now.is_empty() {
                    match Presence::of(&self.opts.statuses, &now) {
                        Presence::Offline => {
                            seen.online.remove(agent.as_str());
                            out.push(ev(
                                ":status",
                                Body::AgentLogout {
                                    agent: agent.clone(),
                                    queues: Vec::new(),
                                },
                            ));
                        }
                        p => {
                            if seen.online.insert(agent.to_string())
                                || Presence::of(&self.opts.statuses, &before) == Presence::Offline
                            {
                                out.push(ev(
                                    ":login",
                                    Body::AgentLogin {
                                        agent: agent.clone(),
                                        name: None,
                                        team: None,
                                        queues: queues(),
                                    },
                                ));
                            }
                            let (state, reason) = match p {
                                Presence::Available => (AgentStatus::Available, None),
                                _ => (AgentStatus::Paused, Some(clip(&now))),
                            };
                            out.push(ev(
                                ":status",
                                Body::AgentState {
                                    agent: agent.clone(),
                                    state,
                                    reason,
                                },
                            ));
                        }
                    }
                }
                out.extend(self.contacts(&ev, prev, cur));
            }
            // The same state again, every two minutes.
            "HEART_BEAT" => return Err(Skip::Passed),
            _ => return Err(Skip::Passed),
        }
        if out.is_empty() {
            return Err(Skip::Passed);
        }
        Ok(out)
    }

    /// What the agent's contacts did between two snapshots.
    fn contacts(&self, ev: &dyn Fn(&str, Body) -> Event, prev: &Value, cur: &Value) -> Vec<Event> {
        let list = |snap: &Value| -> HashMap<String, String> {
            field(snap, "Contacts")
                .as_array()
                .map(|cs| {
                    cs.iter()
                        .filter(|c| self.is_call(text(c, "Channel")))
                        .map(|c| {
                            (
                                text(c, "ContactId").to_string(),
                                text(c, "State").to_string(),
                            )
                        })
                        .filter(|(id, _)| !id.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let (before, now) = (list(prev), list(cur));
        let mut ids: Vec<&String> = before.keys().chain(now.keys()).collect();
        ids.sort();
        ids.dedup();
        let mut out = Vec::new();
        for id in ids {
            let call = clip(id);
            let (b, n) = (
                before.get(id).map(String::as_str),
                now.get(id).map(String::as_str),
            );
            let suffix = |what: &str| format!(":{what}:{id}");
            match (b, n) {
                (Some("CONNECTED"), Some("CONNECTED_ONHOLD")) => {
                    out.push(ev(&suffix("hold"), Body::CallHold { call }))
                }
                (Some("CONNECTED_ONHOLD"), Some("CONNECTED")) => {
                    out.push(ev(&suffix("resume"), Body::CallResume { call }))
                }
                (Some("CONNECTED" | "CONNECTED_ONHOLD"), Some("ENDED")) => out.push(ev(
                    &suffix("end"),
                    Body::CallEnded {
                        call,
                        talk_ms: None,
                        hold_ms: None,
                    },
                )),
                (Some("ENDED"), None) => out.push(ev(
                    &suffix("wrap"),
                    Body::WrapEnded {
                        call,
                        outcome: None,
                    },
                )),
                _ => {}
            }
        }
        out
    }

    /// The key, in Firehose's header or the API destination's.
    fn authorized(&self, r: &Request) -> bool {
        [
            "x-amz-firehose-access-key",
            self.opts.api_key_header.as_str(),
        ]
        .iter()
        .filter_map(|h| r.headers.get(*h))
        .any(|v| bool::from(v.as_bytes().ct_eq(self.opts.access_key.as_bytes())))
    }
}

/// The events of one body, each decoded (a Firehose delivery holds many).
fn bodies(v: &Value) -> Result<Vec<Value>, &'static str> {
    let Some(records) = v.get("records").and_then(Value::as_array) else {
        return Ok(vec![v.clone()]);
    };
    use base64::Engine as _;
    records
        .iter()
        .map(|r| {
            let data = r["data"].as_str().ok_or("a record without data")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|_| "a record whose data is not base64")?;
            serde_json::from_slice(&bytes).map_err(|_| "a record that is not JSON")
        })
        .collect()
}

/// Firehose wants its `requestId` back, with a time, as the answer (and
/// an `errorMessage` on failure).
fn reply(request_id: Option<&str>, status: u16, error: Option<(&str, &str)>) -> Reply {
    let now = chrono::Utc::now().timestamp_millis();
    match (request_id, error) {
        (Some(rid), None) => Reply::new(
            status,
            "application/json",
            serde_json::json!({"requestId": rid, "timestamp": now}).to_string(),
        ),
        (Some(rid), Some((reason, msg))) => Reply::new(
            status,
            "application/json",
            serde_json::json!({"requestId": rid, "timestamp": now, "errorMessage": msg, "reason": reason})
                .to_string(),
        ),
        (None, None) => Reply::new(status, "application/json", "{}"),
        (None, Some((reason, msg))) => Reply::error(status, reason, msg),
    }
}

impl Source for ConnectSource {
    fn run(self: Box<Self>, mut cx: Context) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move {
            let limits = Limits::of(self.opts.max_body_bytes, self.opts.rate_per_second);
            let hooks = cx.ingest.hooks().clone();
            let mut reg = hooks.register(cx.name(), NAME, limits);
            let mut seen = Seen::default();
            loop {
                let r = tokio::select! {
                    _ = cx.shutdown.cancelled() => return Ok(()),
                    r = reg.requests.recv() => match r { Some(r) => r, None => return Ok(()) },
                };
                let parsed: Result<Value, _> = serde_json::from_slice(&r.body);
                let rid = parsed
                    .as_ref()
                    .ok()
                    .and_then(|v| v.get("requestId"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let rid = rid.as_deref();
                if !self.authorized(&r) {
                    cx.received(1);
                    let why =
                        "no valid access key (X-Amz-Firehose-Access-Key, or the api_key_header)";
                    cx.rejected(&Rejection::new(Reason::BadSignature, why), b"");
                    let _ =
                        r.reply
                            .send(reply(rid, 403, Some((Reason::BadSignature.as_str(), why))));
                    continue;
                }
                let events = match parsed.as_ref().map_err(|_| "not JSON").and_then(bodies) {
                    Ok(vs) => vs,
                    Err(why) => {
                        cx.received(1);
                        cx.skipped("malformed");
                        let _ = r.reply.send(reply(rid, 400, Some(("malformed", why))));
                        continue;
                    }
                };
                cx.received(events.len());
                let mut out = Vec::new();
                let mut malformed = None;
                for v in &events {
                    match self.map(&mut seen, v) {
                        Ok(evs) => out.extend(evs),
                        Err(Skip::Passed) => cx.skipped("passed"),
                        Err(Skip::Malformed(what)) => {
                            cx.skipped("malformed");
                            malformed = Some(what);
                        }
                    }
                }
                // A single event that is not one is refused; in a Firehose
                // delivery it is counted and the rest taken (a retry
                // would not make it valid).
                if let (None, Some(what)) = (rid, malformed) {
                    if events.len() == 1 {
                        let msg = format!("not an Amazon Connect event: needs {what}");
                        let _ = r.reply.send(reply(None, 400, Some(("malformed", &msg))));
                        continue;
                    }
                }
                let answer = if out.is_empty() || cx.submit(out, None).await.is_ok() {
                    reply(rid, 200, None)
                } else {
                    reply(rid, 503, Some(("shutting_down", "shutting down; retry")))
                };
                let _ = r.reply.send(answer);
            }
        })
    }
}
