//! Source `twilio_taskrouter`: TaskRouter event callbacks, delivered to
//! `POST /api/v1/sources/<name>` (docs/sources/twilio.md).
//!
//! Each callback is a form-encoded event signed with the account's auth
//! token (`X-Twilio-Signature`: HMAC-SHA1 over the callback URL and the
//! sorted parameters, base64); an unsigned or wrongly signed one is
//! refused with 403 and counted. A task of a configured channel is a
//! call: it is offered when it enters a TaskQueue, answered when a
//! reservation is accepted, ends at wrap-up and its after-call work at
//! completion. Worker activities map to agent states through a table.
//! Event ids are the events' own `Sid`s, so a callback Twilio retries is
//! a duplicate.

use std::collections::{HashMap, HashSet};

use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::event::{AgentStatus, Body, Direction, Event, ExitReason, Text};
use crate::reject::{Reason, Rejection};
use crate::source::hook::{Limits, Recent, Reply, Request};
use crate::source::pbx::{clip, customer, pbx_time_ms, ts_of, Presence};
use crate::source::{self, Built, Context, Kind, Problems, Setup, Source, SourceError};

pub const NAME: &str = "twilio_taskrouter";

pub const KIND: Kind = Kind { name: NAME, build };

fn voice() -> Vec<String> {
    vec!["voice".into()]
}

fn from() -> String {
    "from".into()
}

fn max_body() -> usize {
    64 * 1024
}

fn per_second() -> u32 {
    200
}

/// `[[sources]]` with `type = "twilio_taskrouter"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    pub name: Option<String>,
    /// The account's auth token, which signs every callback.
    pub auth_token: String,
    /// The full URL TaskRouter posts to (the Workspace's
    /// `EventCallbackUrl`), exactly as Twilio has it: it is signed.
    pub url: String,
    pub site: Option<String>,
    /// Task channels whose tasks are calls (`TaskChannelUniqueName`).
    #[serde(default = "voice")]
    pub channels: Vec<String>,
    /// Activity name → `available`, `paused` or `offline`. Without an
    /// entry: `Available` is available, `Offline` offline, anything else
    /// paused with the activity's name as the reason.
    #[serde(default)]
    pub activities: HashMap<String, Presence>,
    /// The task attribute with the customer reference.
    #[serde(default = "from")]
    pub customer_attribute: String,
    /// A task attribute naming the queue (the TaskQueue's name without).
    pub queue_attribute: Option<String>,
    /// Tasks that are customer callbacks, not calls: those whose task
    /// attribute `attribute` is `value`; they become callwatch tasks of
    /// kind `kind` (a `[tasks.kinds]` entry).
    pub callbacks: Option<CallbackRule>,
    #[serde(default = "max_body")]
    pub max_body_bytes: usize,
    /// Requests per second, sustained (a burst of twice as many).
    #[serde(default = "per_second")]
    pub rate_per_second: u32,
}

/// `[sources.callbacks]`: which tasks are callbacks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackRule {
    pub attribute: String,
    #[serde(default = "callback")]
    pub value: String,
    #[serde(default = "callback")]
    pub kind: String,
}

fn callback() -> String {
    "callback".into()
}

fn build(table: &toml::Table, setup: &Setup) -> Result<Built, Problems> {
    let c: TwilioConfig = source::parse(table)?;
    let mut p = Vec::new();
    if c.auth_token.len() < 16 {
        p.push(("auth_token".into(), "an auth token is 32 characters".into()));
    }
    if !(c.url.starts_with("https://") || c.url.starts_with("http://")) {
        p.push((
            "url".into(),
            format!("{:?} is not the full callback URL", c.url),
        ));
    }
    p.extend(Limits::problems(c.max_body_bytes, 16, c.rate_per_second));
    if !p.is_empty() {
        return Err(p);
    }
    let name = source::default_name(c.name.clone(), NAME, setup.index);
    Ok(Built {
        kind: NAME,
        checkpoint_file: String::new(),
        name,
        source: Box::new(TwilioSource { opts: c }),
    })
}

pub struct TwilioSource {
    opts: TwilioConfig,
}

/// Twilio's request signature: HMAC-SHA1 keyed with the auth token over
/// the URL followed by each parameter's name and value, in name order
/// (values of a repeated name in order too), base64.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    use base64::Engine as _;
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()) else {
        return String::new();
    };
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Calls this source follows, bounded (oldest forgotten first).
const MAX_TASKS: usize = 100_000;

/// What the source tracks of tasks between callbacks: which are talking
/// (a reservation accepted, no wrap-up yet), so that a task completed
/// without a wrap-up still ends before its after-call work does.
struct Tasks {
    talking: Recent,
    /// Tasks taken as callbacks (`callbacks`), for the events that do not
    /// repeat the task's attributes.
    callbacks: Recent,
    /// Workers this source saw logged in (not offline).
    online: HashSet<String>,
}

impl Default for Tasks {
    fn default() -> Tasks {
        Tasks {
            talking: Recent::new(MAX_TASKS),
            callbacks: Recent::new(MAX_TASKS),
            online: HashSet::new(),
        }
    }
}

/// Why a callback made no event.
#[derive(Debug, PartialEq)]
enum Skip {
    /// Understood, not tracked (a workflow event, another channel).
    Passed,
    /// A required parameter is missing.
    Malformed(&'static str),
}

fn activity(c: &TwilioConfig, name: &str) -> Presence {
    Presence::of(&c.activities, name)
}

/// The events of one callback; `now_ms` stands in for a missing time.
fn map(
    c: &TwilioConfig,
    tasks: &mut Tasks,
    p: &HashMap<String, String>,
    now_ms: i64,
) -> Result<(Vec<Event>, bool), Skip> {
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let sid = get("Sid");
    let kind = get("EventType");
    if sid.is_empty() || kind.is_empty() {
        return Err(Skip::Malformed("Sid and EventType"));
    }
    let pbx = get("TimestampMs")
        .parse::<f64>()
        .ok()
        .and_then(|ms| pbx_time_ms(ms / 1000.0))
        .or_else(|| get("Timestamp").parse::<f64>().ok().and_then(pbx_time_ms));
    let ms = pbx.unwrap_or(now_ms);
    let site = c.site.as_deref().map(Text::from);
    let ev = |suffix: &str, body: Body| Event {
        id: clip(&format!("tw:{sid}{suffix}")),
        ts: ts_of(ms),
        site: site.clone(),
        body,
    };
    let task = get("TaskSid");
    let worker = get("WorkerName");
    let channel = get("TaskChannelUniqueName");
    let a_call = |ok: bool| -> Result<(), Skip> {
        if task.is_empty() {
            return Err(Skip::Malformed("TaskSid"));
        }
        if !channel.is_empty() && !c.channels.iter().any(|ch| ch == channel) {
            return Err(Skip::Passed);
        }
        if ok {
            Ok(())
        } else {
            Err(Skip::Malformed("WorkerName"))
        }
    };
    let call = clip(task);
    // A callback task: a callwatch task, not a call.
    if let Some(rule) = &c.callbacks {
        let attrs: serde_json::Value =
            serde_json::from_str(get("TaskAttributes")).unwrap_or_default();
        let marked = attrs[rule.attribute.as_str()].as_str() == Some(rule.value.as_str());
        if !task.is_empty() && (marked || tasks.callbacks.contains(task)) {
            if marked {
                tasks.callbacks.insert(task);
            }
            let body = match kind {
                "task-queue.entered" => {
                    let queue = c
                        .queue_attribute
                        .as_deref()
                        .and_then(|k| attrs[k].as_str())
                        .unwrap_or(get("TaskQueueName"));
                    Body::TaskCreated {
                        task: call,
                        kind: clip(&rule.kind),
                        queue: (!queue.is_empty()).then(|| clip(queue)),
                        customer: attrs[c.customer_attribute.as_str()]
                            .as_str()
                            .and_then(customer),
                        due: None,
                        priority: None,
                    }
                }
                "reservation.accepted" if !worker.is_empty() => Body::TaskAssigned {
                    task: call,
                    agent: clip(worker),
                },
                "task.completed" => Body::TaskCompleted {
                    task: call,
                    agent: (!worker.is_empty()).then(|| clip(worker)),
                    outcome: None,
                },
                "task.canceled" => Body::TaskCancelled {
                    task: call,
                    reason: Some(clip(get("TaskCanceledReason"))).filter(|r| !r.is_empty()),
                },
                _ => return Err(Skip::Passed),
            };
            return Ok((vec![ev("", body)], pbx.is_none()));
        }
    }
    let events = match kind {
        "task-queue.entered" => {
            a_call(true)?;
            let attrs: serde_json::Value =
                serde_json::from_str(get("TaskAttributes")).unwrap_or_default();
            let queue = c
                .queue_attribute
                .as_deref()
                .and_then(|k| attrs[k].as_str())
                .unwrap_or(get("TaskQueueName"));
            if queue.is_empty() {
                return Err(Skip::Malformed("TaskQueueName"));
            }
            let cust = attrs[c.customer_attribute.as_str()]
                .as_str()
                .and_then(customer);
            vec![ev(
                "",
                Body::CallOffered {
                    call,
                    queue: clip(queue),
                    direction: Direction::Inbound,
                    customer: cust,
                },
            )]
        }
        "reservation.accepted" => {
            a_call(!worker.is_empty())?;
            tasks.talking.insert(task);
            vec![ev(
                "",
                Body::CallAnswered {
                    call,
                    agent: clip(worker),
                    wait_ms: None,
                },
            )]
        }
        "reservation.rejected" | "reservation.timeout" => {
            a_call(!worker.is_empty())?;
            vec![ev(
                "",
                Body::CallMissed {
                    call,
                    agent: clip(worker),
                    ring_ms: None,
                },
            )]
        }
        "task.wrapup" => {
            a_call(true)?;
            if !tasks.talking.remove(task) {
                return Err(Skip::Passed);
            }
            vec![ev(
                "",
                Body::CallEnded {
                    call,
                    talk_ms: None,
                    hold_ms: None,
                },
            )]
        }
        "task.completed" => {
            a_call(true)?;
            let mut out = Vec::new();
            if tasks.talking.remove(task) {
                out.push(ev(
                    ":end",
                    Body::CallEnded {
                        call: call.clone(),
                        talk_ms: None,
                        hold_ms: None,
                    },
                ));
            }
            out.push(ev(
                "",
                Body::WrapEnded {
                    call,
                    outcome: None,
                },
            ));
            out
        }
        "task.canceled" => {
            a_call(true)?;
            if tasks.talking.contains(task) {
                return Err(Skip::Passed);
            }
            let reason = get("TaskCanceledReason");
            let body = if reason.contains("TTL") || reason.contains("imeout") {
                Body::CallExited {
                    call,
                    reason: ExitReason::Timeout,
                }
            } else {
                Body::CallAbandoned { call }
            };
            vec![ev("", body)]
        }
        "worker.activity.update" => {
            if worker.is_empty() {
                return Err(Skip::Malformed("WorkerName"));
            }
            let name = get("WorkerActivityName");
            let agent = clip(worker);
            let mut out = Vec::new();
            match activity(c, name) {
                Presence::Offline => {
                    tasks.online.remove(worker);
                    out.push(ev(
                        "",
                        Body::AgentLogout {
                            agent,
                            queues: Vec::new(),
                        },
                    ));
                }
                a => {
                    if tasks.online.len() < MAX_TASKS && tasks.online.insert(worker.to_string())
                        || activity(c, get("WorkerPreviousActivityName")) == Presence::Offline
                    {
                        out.push(ev(
                            ":login",
                            Body::AgentLogin {
                                agent: agent.clone(),
                                name: None,
                                team: None,
                                queues: Vec::new(),
                            },
                        ));
                    }
                    let (state, reason) = match a {
                        Presence::Available => (AgentStatus::Available, None),
                        _ => (AgentStatus::Paused, Some(clip(name))),
                    };
                    out.push(ev(
                        "",
                        Body::AgentState {
                            agent,
                            state,
                            reason,
                        },
                    ));
                }
            }
            out
        }
        _ => return Err(Skip::Passed),
    };
    Ok((events, pbx.is_none()))
}

/// Most callbacks taken into one batch (one journal commit).
const BATCH: usize = 64;

impl TwilioSource {
    /// Checks one request; its parameters if it is signed.
    fn verify(&self, cx: &Context, r: &Request) -> Result<Vec<(String, String)>, Reply> {
        let params: Vec<(String, String)> = form_urlencoded::parse(&r.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let given = r
            .headers
            .get("x-twilio-signature")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        let want = signature(&self.opts.auth_token, &self.opts.url, &params);
        if given.is_empty() || !bool::from(given.ct_eq(want.as_bytes())) {
            let why = if given.is_empty() {
                "no X-Twilio-Signature header"
            } else {
                "X-Twilio-Signature does not match (auth_token and url must be the account's and the callback's)"
            };
            cx.rejected(&Rejection::new(Reason::BadSignature, why), b"");
            return Err(Reply::error(403, Reason::BadSignature.as_str(), why));
        }
        Ok(params)
    }
}

impl Source for TwilioSource {
    fn run(self: Box<Self>, mut cx: Context) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move {
            let limits = Limits::of(self.opts.max_body_bytes, self.opts.rate_per_second);
            let hooks = cx.ingest.hooks().clone();
            let mut reg = hooks.register(cx.name(), NAME, limits);
            cx.telemetry().receipt_timed(NAME, 0);
            let mut tasks = Tasks::default();
            loop {
                let first = tokio::select! {
                    _ = cx.shutdown.cancelled() => return Ok(()),
                    r = reg.requests.recv() => match r { Some(r) => r, None => return Ok(()) },
                };
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match reg.requests.try_recv() {
                        Ok(r) => batch.push(r),
                        Err(_) => break,
                    }
                }
                let now = chrono::Utc::now().timestamp_millis();
                let mut events = Vec::new();
                let mut waiting = Vec::new();
                for r in batch {
                    cx.received(1);
                    let params = match self.verify(&cx, &r) {
                        Ok(p) => p,
                        Err(reply) => {
                            let _ = r.reply.send(reply);
                            continue;
                        }
                    };
                    let p: HashMap<String, String> = params.into_iter().collect();
                    match map(&self.opts, &mut tasks, &p, now) {
                        Ok((evs, receipt_timed)) => {
                            if receipt_timed && !evs.is_empty() {
                                cx.telemetry().receipt_timed(NAME, evs.len() as u64);
                            }
                            events.extend(evs);
                            waiting.push(r.reply);
                        }
                        Err(Skip::Passed) => {
                            cx.skipped("passed");
                            let _ = r.reply.send(Reply::new(204, "application/json", ""));
                        }
                        Err(Skip::Malformed(what)) => {
                            cx.skipped("malformed");
                            let msg = format!("a TaskRouter event needs {what}");
                            let _ = r.reply.send(Reply::error(400, "malformed", &msg));
                        }
                    }
                }
                // Answered once durable: a callback answered 204 is in the
                // journal; one that times out is retried by Twilio and is
                // then a duplicate.
                let reply = if events.is_empty() || cx.submit(events, None).await.is_ok() {
                    Reply::new(204, "application/json", "")
                } else {
                    Reply::error(503, "shutting_down", "shutting down; retry")
                };
                for w in waiting {
                    let _ = w.send(reply.clone());
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of Twilio's webhook security documentation:
    /// auth token 12345, this URL and these parameters sign as
    /// `GvWf1cFY/Q7PnoempGyD5oXAezc=`.
    #[test]
    fn the_documented_signature_example() {
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675310"),
            ("Digits", "1234"),
            ("From", "+14158675310"),
            ("To", "+18005551212"),
        ]
        .iter()
        .rev()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            signature("12345", url, &params),
            "GvWf1cFY/Q7PnoempGyD5oXAezc="
        );
        assert_ne!(
            signature("12346", url, &params),
            "GvWf1cFY/Q7PnoempGyD5oXAezc="
        );
    }

    fn config() -> TwilioConfig {
        TwilioConfig {
            name: None,
            auth_token: "0123456789abcdef0123456789abcdef".into(),
            url: "https://example.invalid/api/v1/sources/tw".into(),
            site: None,
            channels: voice(),
            activities: HashMap::new(),
            customer_attribute: from(),
            queue_attribute: None,
            callbacks: None,
            max_body_bytes: max_body(),
            rate_per_second: per_second(),
        }
    }

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_task_becomes_a_call_and_activities_agent_states() {
        let c = config();
        let mut t = Tasks::default();
        let base = [
            ("TaskSid", "WT1"),
            ("TaskChannelUniqueName", "voice"),
            ("TimestampMs", "1772434800000"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut v: Vec<(&str, &str)> = base.to_vec();
            v.extend_from_slice(extra);
            params(&v)
        };
        let (ev, receipt) = map(
            &c,
            &mut t,
            &with(&[
                ("Sid", "EV1"),
                ("EventType", "task-queue.entered"),
                ("TaskQueueName", "orders"),
                ("TaskAttributes", r#"{"from":"+4930123"}"#),
            ]),
            0,
        )
        .expect("entered");
        assert!(!receipt);
        assert!(
            matches!(&ev[0].body, Body::CallOffered { queue, customer: Some(cu), .. } if queue == "orders" && cu == "+4930123")
        );
        assert_eq!(ev[0].id, "tw:EV1");
        map(
            &c,
            &mut t,
            &with(&[
                ("Sid", "EV2"),
                ("EventType", "reservation.accepted"),
                ("WorkerName", "alice"),
            ]),
            0,
        )
        .expect("accepted");
        // Completed without a wrap-up: the end comes first.
        let (ev, _) = map(
            &c,
            &mut t,
            &with(&[("Sid", "EV3"), ("EventType", "task.completed")]),
            0,
        )
        .expect("completed");
        assert!(matches!(ev[0].body, Body::CallEnded { .. }));
        assert!(matches!(ev[1].body, Body::WrapEnded { .. }));
        // Another channel is not a call.
        let chat = params(&[
            ("Sid", "EV4"),
            ("EventType", "task-queue.entered"),
            ("TaskSid", "WT2"),
            ("TaskChannelUniqueName", "chat"),
            ("TaskQueueName", "orders"),
        ]);
        assert_eq!(map(&c, &mut t, &chat, 0).err(), Some(Skip::Passed));
        let on_break = params(&[
            ("Sid", "EV5"),
            ("EventType", "worker.activity.update"),
            ("WorkerName", "alice"),
            ("WorkerActivityName", "Break"),
            ("WorkerPreviousActivityName", "Offline"),
        ]);
        let (ev, receipt) = map(&c, &mut t, &on_break, 7).expect("break");
        assert!(receipt, "no TaskRouter time: receipt time");
        assert!(matches!(ev[0].body, Body::AgentLogin { .. }));
        assert!(
            matches!(&ev[1].body, Body::AgentState { state: AgentStatus::Paused, reason: Some(r), .. } if r == "Break")
        );
        let missing = params(&[("EventType", "task.completed")]);
        assert_eq!(
            map(&c, &mut t, &missing, 0).err(),
            Some(Skip::Malformed("Sid and EventType"))
        );
    }
}
