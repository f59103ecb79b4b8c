//! mod_callcenter's facts as canonical events, and the resync from its
//! `callcenter_config` lists.
//!
//! A call is a *member* (`CC-Member-UUID`): one caller in one queue, so a
//! caller moved to another queue is a new call there. Times come from the
//! event's `CC-*-Time` fields (epoch seconds) where it has them, else
//! `Event-Date-Timestamp` (microseconds), else receipt time (counted).
//! mod_callcenter's "callback" agent type is how the agent is reached
//! (the module calls the agent's phone), not a customer callback: it
//! makes no task.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::event::{Event, ExitReason, Text};
use crate::source::pbx::{customer, pbx_time_ms, stable_id, Figures, Mapper, Phase, Skip};

use super::frame::Headers;

/// Where an event's time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timed {
    /// A `CC-*-Time` field or `Event-Date-Timestamp`.
    Pbx,
    /// This daemon's receipt time.
    Receipt,
}

fn epoch_s(h: &Headers, name: &str) -> Option<i64> {
    h.get(name).trim().parse::<f64>().ok().and_then(pbx_time_ms)
}

/// The event's own time: `field` (epoch seconds), else the event date.
fn time_of(h: &Headers, field: Option<&str>, now_ms: i64) -> (i64, Timed) {
    if let Some(ms) = field.and_then(|f| epoch_s(h, f)) {
        return (ms, Timed::Pbx);
    }
    let micros = h
        .get("Event-Date-Timestamp")
        .trim()
        .parse::<f64>()
        .ok()
        .and_then(|us| pbx_time_ms(us / 1_000_000.0));
    match micros {
        Some(ms) => (ms, Timed::Pbx),
        None => (now_ms, Timed::Receipt),
    }
}

/// Seconds between two epoch fields, when both are there and in order.
fn span_s(h: &Headers, from: &str, to: &str) -> Option<f64> {
    let (a, b) = (epoch_s(h, from)?, epoch_s(h, to)?);
    (b >= a).then(|| (b - a) as f64 / 1000.0)
}

/// What the mapping keeps besides the shared tracker: the queues each
/// agent has a tier in (from the resync), so that an agent who becomes
/// available is logged in to them.
#[derive(Debug, Default)]
pub struct Tiers {
    pub queues: HashMap<String, BTreeSet<String>>,
}

/// Maps one `callcenter::info` event.
pub fn map_event(
    m: &mut Mapper,
    tiers: &Tiers,
    h: &Headers,
    now_ms: i64,
) -> Result<(Vec<Event>, Timed), Skip> {
    if h.get("Event-Subclass") != "callcenter::info" {
        return Err(Skip::Unknown);
    }
    let action = h.get("CC-Action");
    let call = h.get("CC-Member-UUID").trim();
    let queue = h.get("CC-Queue").trim();
    let agent = h.get("CC-Agent").trim();
    // The platform's own id where it has one; else the facts that make
    // the event, so that the same event resent after a reconnect is a
    // duplicate.
    let id = |what: &str| -> Text {
        match h.get("Event-UUID").trim() {
            "" => stable_id(
                "fs",
                &[
                    action,
                    what,
                    call,
                    agent,
                    h.get("Event-Date-Timestamp"),
                    h.get("CC-Member-Joined-Time"),
                    h.get("CC-Agent-Answered-Time"),
                    h.get("CC-Bridge-Terminated-Time"),
                    h.get("CC-Member-Leaving-Time"),
                    h.get("CC-Agent-Status"),
                ],
            ),
            uuid => crate::source::pbx::clip(&format!("fs:{uuid}{what}")),
        }
    };
    let need = |ok: bool| if ok { Ok(()) } else { Err(Skip::Malformed) };
    let figures = |wait_s| Figures {
        queue,
        agent,
        wait_s,
    };
    let (events, timed) = match action {
        "member-queue-start" => {
            need(!call.is_empty() && !queue.is_empty())?;
            if m.phase(call).is_some() {
                return Err(Skip::Passed);
            }
            let (ms, t) = time_of(h, Some("CC-Member-Joined-Time"), now_ms);
            let cid = customer(h.get("CC-Member-CID-Number"));
            (m.offered(id(""), ms, call, queue, cid), t)
        }
        "bridge-agent-start" => {
            need(!call.is_empty() && !agent.is_empty())?;
            let (ms, t) = time_of(h, Some("CC-Agent-Answered-Time"), now_ms);
            let wait = span_s(h, "CC-Member-Joined-Time", "CC-Agent-Answered-Time");
            (m.connected(id(""), ms, call, agent, figures(wait)), t)
        }
        "bridge-agent-end" => {
            need(!call.is_empty())?;
            let (ms, t) = time_of(h, Some("CC-Bridge-Terminated-Time"), now_ms);
            let talk = span_s(h, "CC-Agent-Answered-Time", "CC-Bridge-Terminated-Time");
            let wait = span_s(h, "CC-Member-Joined-Time", "CC-Agent-Answered-Time");
            (m.ended(&id(""), ms, call, talk, figures(wait))?, t)
        }
        "bridge-agent-fail" => {
            need(!call.is_empty() && !agent.is_empty())?;
            let (ms, t) = time_of(h, None, now_ms);
            let ring = epoch_s(h, "CC-Agent-Called-Time").map(|c| ms - c);
            (m.missed(id(""), ms, call, agent, ring)?, t)
        }
        "member-queue-end" => {
            need(!call.is_empty())?;
            let (ms, t) = time_of(h, Some("CC-Member-Leaving-Time"), now_ms);
            let wait = span_s(h, "CC-Member-Joined-Time", "CC-Member-Leaving-Time");
            match h.get("CC-Cause") {
                // Talked to an agent: bridge-agent-end ended it; this
                // is the same end once more, or the end of a call this
                // source joined late.
                "Terminated" => {
                    if m.phase(call).is_none() {
                        return Err(Skip::Repeated);
                    }
                    let talk = span_s(h, "CC-Agent-Answered-Time", "CC-Member-Leaving-Time");
                    let answered = span_s(h, "CC-Member-Joined-Time", "CC-Agent-Answered-Time");
                    (m.ended(&id(""), ms, call, talk, figures(answered))?, t)
                }
                "Cancel" => {
                    let exit = match h.get("CC-Cancel-Reason") {
                        "TIMEOUT" => Some(ExitReason::Timeout),
                        "NO_AGENT_TIMEOUT" => Some(ExitReason::Leaveempty),
                        "EXIT_WITH_KEY" => Some(ExitReason::Key),
                        // NONE, BREAK_OUT: the caller hung up.
                        _ => None,
                    };
                    if m.phase(call) == Some(Phase::Connected) {
                        return Err(Skip::Passed);
                    }
                    (m.left(id(""), ms, call, figures(wait), exit)?, t)
                }
                _ => return Err(Skip::Malformed),
            }
        }
        "agent-status-change" => {
            need(!agent.is_empty())?;
            let (ms, t) = time_of(h, None, now_ms);
            (
                status_change(m, tiers, &id, ms, agent, h.get("CC-Agent-Status"))?,
                t,
            )
        }
        // Ringing, the agent's dialog state and queue counts: the engine
        // derives them from the calls.
        "agent-offering" | "agent-state-change" | "members-count" => return Err(Skip::Passed),
        _ => return Err(Skip::Unknown),
    };
    Ok((events, timed))
}

/// The queues `agent` serves: its tiers, or none known.
fn queues_of<'a>(tiers: &'a Tiers, agent: &str) -> Vec<Option<&'a str>> {
    match tiers.queues.get(agent) {
        Some(qs) if !qs.is_empty() => qs.iter().map(|q| Some(q.as_str())).collect(),
        _ => vec![None],
    }
}

fn status_change(
    m: &mut Mapper,
    tiers: &Tiers,
    id: &dyn Fn(&str) -> Text,
    ms: i64,
    agent: &str,
    status: &str,
) -> Result<Vec<Event>, Skip> {
    let member = |m: &Mapper| !m.memberships().iter().all(|(a, _)| a != agent);
    let mut out = Vec::new();
    match status {
        "Logged Out" => out.extend(m.logout(id(""), ms, agent, None)),
        "Available" | "Available (On Demand)" | "On Break" => {
            if !member(m) {
                for (i, q) in queues_of(tiers, agent).into_iter().enumerate() {
                    out.extend(m.login(id(&format!(":login{i}")), ms, agent, q));
                }
            }
            let on_break = status == "On Break";
            if on_break != m.is_paused(agent) {
                out.extend(m.pause(
                    id(":state"),
                    ms,
                    agent,
                    on_break,
                    on_break.then_some(status),
                ));
            }
        }
        _ => return Err(Skip::Malformed),
    }
    Ok(out)
}

/// One `callcenter_config ... list` answer: rows by column name.
pub fn table(text: &str) -> Result<Vec<HashMap<String, String>>, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(head) = lines.next() else {
        return Err("an empty answer".into());
    };
    if head.starts_with("-ERR") {
        return Err(head.trim().to_string());
    }
    let names: Vec<&str> = head.split('|').map(str::trim).collect();
    let mut rows = Vec::new();
    for l in lines {
        if l.starts_with("+OK") {
            break;
        }
        let cells: Vec<&str> = l.split('|').collect();
        if cells.len() != names.len() {
            return Err(format!(
                "a row of {} cells under {} columns",
                cells.len(),
                names.len()
            ));
        }
        rows.push(
            names
                .iter()
                .zip(cells)
                .map(|(n, c)| (n.to_string(), c.trim().to_string()))
                .collect(),
        );
    }
    Ok(rows)
}

/// What the three lists said: agents (`agent list`), tiers (`tier list`)
/// and members, the callers (`member list`).
#[derive(Debug, Default)]
pub struct Listing {
    pub agents: Vec<HashMap<String, String>>,
    pub tiers: Vec<HashMap<String, String>>,
    pub members: Vec<HashMap<String, String>>,
}

/// What a resync changed, for the counters and the log.
#[derive(Debug, Default)]
pub struct Corrections {
    pub events: Vec<Event>,
    pub calls_exited: u64,
    pub calls_ended: u64,
    pub calls_found: u64,
    pub members_removed: u64,
    pub members_added: u64,
    pub pauses_set: u64,
    pub pauses_cleared: u64,
}

fn cell<'a>(row: &'a HashMap<String, String>, name: &str) -> &'a str {
    row.get(name).map(String::as_str).unwrap_or("")
}

/// Makes the tracker agree with the lists, as of `ms` (receipt time: the
/// lists have no time of their own). What the module no longer lists is
/// closed; what it lists and the tracker lacks is opened. Replaces the
/// tiers.
pub fn resync(m: &mut Mapper, tiers: &mut Tiers, l: &Listing, ms: i64) -> Corrections {
    let mut c = Corrections::default();
    let stamp = ms.to_string();
    let id = |what: &str, who: &str| stable_id("fs-resync", &[what, who, &stamp]);
    // Callers.
    let mut listed = HashSet::new();
    for row in &l.members {
        let state = cell(row, "state");
        if !matches!(state, "Waiting" | "Trying" | "Answered") {
            continue;
        }
        let call = cell(row, "uuid");
        let queue = cell(row, "queue");
        if call.is_empty() || queue.is_empty() {
            continue;
        }
        listed.insert(call.to_string());
        let joined = cell(row, "joined_epoch")
            .parse::<f64>()
            .ok()
            .and_then(pbx_time_ms)
            .unwrap_or(ms);
        if m.phase(call).is_none() {
            let cid = customer(cell(row, "cid_number"));
            c.events
                .extend(m.offered(id("offered", call), joined, call, queue, cid));
            c.calls_found += 1;
        }
        let agent = cell(row, "serving_agent");
        if state == "Answered" && !agent.is_empty() && m.phase(call) == Some(Phase::Waiting) {
            let at = cell(row, "bridge_epoch")
                .parse::<f64>()
                .ok()
                .and_then(pbx_time_ms)
                .unwrap_or(ms);
            let wait = Some(((at - joined).max(0)) as f64 / 1000.0);
            let f = Figures {
                queue,
                agent,
                wait_s: wait,
            };
            c.events
                .extend(m.connected(id("answered", call), at, call, agent, f));
        }
    }
    for (call, phase) in m.open_phases() {
        if listed.contains(&call) {
            continue;
        }
        let closed = m.close_unlisted(id("closed", &call), ms, &call);
        if !closed.is_empty() {
            match phase {
                Phase::Waiting => c.calls_exited += 1,
                Phase::Connected => c.calls_ended += 1,
            }
        }
        c.events.extend(closed);
    }
    // Agents: logged in unless "Logged Out"; members of their tiers'
    // queues; paused while "On Break".
    let mut status: HashMap<&str, &str> = HashMap::new();
    for row in &l.agents {
        status.insert(cell(row, "name"), cell(row, "status"));
    }
    let mut new_tiers = Tiers::default();
    for row in &l.tiers {
        let (q, a) = (cell(row, "queue"), cell(row, "agent"));
        if !q.is_empty() && !a.is_empty() {
            new_tiers
                .queues
                .entry(a.to_string())
                .or_default()
                .insert(q.to_string());
        }
    }
    let logged_in = |a: &str| status.get(a).is_some_and(|s| *s != "Logged Out");
    let mut want: BTreeSet<(String, String)> = BTreeSet::new();
    for (a, qs) in &new_tiers.queues {
        if logged_in(a) {
            for q in qs {
                want.insert((a.clone(), q.clone()));
            }
        }
    }
    for (a, q) in m.memberships() {
        if !want.contains(&(a.clone(), q.clone())) {
            c.events
                .extend(m.logout(id("logout", &format!("{a}\0{q}")), ms, &a, Some(&q)));
            c.members_removed += 1;
        }
    }
    for (a, q) in &want {
        if !m.is_member(a, q) {
            c.events
                .extend(m.login(id("login", &format!("{a}\0{q}")), ms, a, Some(q)));
            c.members_added += 1;
        }
    }
    for (a, s) in &status {
        if !logged_in(a) || !new_tiers.queues.contains_key(*a) {
            continue;
        }
        let on_break = *s == "On Break";
        if on_break != m.is_paused(a) {
            let reason = on_break.then_some(*s);
            c.events
                .extend(m.pause(id("pause", a), ms, a, on_break, reason));
            if on_break {
                c.pauses_set += 1;
            } else {
                c.pauses_cleared += 1;
            }
        }
    }
    *tiers = new_tiers;
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Body;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        let mut h = Headers::default();
        h.insert("Event-Subclass", "callcenter::info".into());
        for (k, v) in pairs {
            h.insert(k, v.to_string());
        }
        h
    }

    #[test]
    fn a_call_is_offered_answered_and_ended_on_the_module_s_times() {
        let mut m = Mapper::new(None);
        let t = Tiers::default();
        let base = 1_772_434_800i64;
        let s = |d: i64| (base + d).to_string();
        let start = headers(&[
            ("CC-Action", "member-queue-start"),
            ("CC-Queue", "support@default"),
            ("CC-Member-UUID", "m1"),
            ("CC-Member-CID-Number", "4385551212"),
            ("CC-Member-Joined-Time", &s(0)),
        ]);
        let (ev, timed) = map_event(&mut m, &t, &start, 0).expect("start");
        assert_eq!(timed, Timed::Pbx);
        assert_eq!(ev[0].ts.timestamp(), base);
        let bridge = headers(&[
            ("CC-Action", "bridge-agent-start"),
            ("CC-Queue", "support@default"),
            ("CC-Agent", "1000@default"),
            ("CC-Member-UUID", "m1"),
            ("CC-Member-Joined-Time", &s(0)),
            ("CC-Agent-Answered-Time", &s(9)),
        ]);
        let (ev, _) = map_event(&mut m, &t, &bridge, 0).expect("bridge");
        let answered = ev
            .iter()
            .find_map(|e| match &e.body {
                Body::CallAnswered { wait_ms, .. } => Some(*wait_ms),
                _ => None,
            })
            .expect("answered");
        assert_eq!(answered, Some(9000));
        let end = headers(&[
            ("CC-Action", "bridge-agent-end"),
            ("CC-Member-UUID", "m1"),
            ("CC-Agent", "1000@default"),
            ("CC-Agent-Answered-Time", &s(9)),
            ("CC-Bridge-Terminated-Time", &s(100)),
        ]);
        let (ev, _) = map_event(&mut m, &t, &end, 0).expect("end");
        assert!(ev.iter().any(|e| matches!(
            e.body,
            Body::CallEnded {
                talk_ms: Some(91_000),
                ..
            }
        )));
        // The member-queue-end that follows says it once more.
        let queue_end = headers(&[
            ("CC-Action", "member-queue-end"),
            ("CC-Cause", "Terminated"),
            ("CC-Member-UUID", "m1"),
            ("CC-Member-Leaving-Time", &s(100)),
        ]);
        assert_eq!(
            map_event(&mut m, &t, &queue_end, 0).err(),
            Some(Skip::Repeated)
        );
    }

    #[test]
    fn cancel_reasons_and_status_changes() {
        let mut m = Mapper::new(None);
        let mut t = Tiers::default();
        t.queues
            .entry("1000@default".into())
            .or_default()
            .insert("support@default".into());
        let start = headers(&[
            ("CC-Action", "member-queue-start"),
            ("CC-Queue", "support@default"),
            ("CC-Member-UUID", "m2"),
            ("Event-Date-Timestamp", "1772434800000000"),
        ]);
        map_event(&mut m, &t, &start, 0).expect("start");
        let cancel = headers(&[
            ("CC-Action", "member-queue-end"),
            ("CC-Cause", "Cancel"),
            ("CC-Cancel-Reason", "TIMEOUT"),
            ("CC-Member-UUID", "m2"),
            ("CC-Member-Leaving-Time", "1772434860"),
        ]);
        let (ev, _) = map_event(&mut m, &t, &cancel, 0).expect("cancel");
        assert!(matches!(
            ev[0].body,
            Body::CallExited {
                reason: ExitReason::Timeout,
                ..
            }
        ));
        let on_break = headers(&[
            ("CC-Action", "agent-status-change"),
            ("CC-Agent", "1000@default"),
            ("CC-Agent-Status", "On Break"),
        ]);
        let (ev, timed) = map_event(&mut m, &t, &on_break, 5).expect("break");
        assert_eq!(timed, Timed::Receipt);
        assert!(matches!(&ev[0].body, Body::AgentLogin { queues, .. } if queues.len() == 1));
        assert!(m.is_paused("1000@default"));
        let out = headers(&[
            ("CC-Action", "agent-status-change"),
            ("CC-Agent", "1000@default"),
            ("CC-Agent-Status", "Logged Out"),
        ]);
        let (ev, _) = map_event(&mut m, &t, &out, 6).expect("out");
        assert!(matches!(ev[0].body, Body::AgentLogout { .. }));
        let bogus = headers(&[
            ("CC-Action", "agent-status-change"),
            ("CC-Agent", "x"),
            ("CC-Agent-Status", "Dancing"),
        ]);
        assert_eq!(
            map_event(&mut m, &t, &bogus, 0).err(),
            Some(Skip::Malformed)
        );
    }

    #[test]
    fn lists_parse_and_refuse_ragged_rows() {
        let ok = table(
            "queue|agent|state|level|position\nsupport@default|1000@default|Ready|1|1\n+OK\n",
        )
        .expect("table");
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0]["agent"], "1000@default");
        assert!(table("a|b\n1|2|3\n").is_err());
        assert!(table("-ERR no reply\n").is_err());
    }
}
