//! The call tracker every PBX source shares, and its small helpers.
//!
//! PBXs (Asterisk app_queue, FreeSWITCH mod_callcenter, ...) report a
//! call's end the same way whether the caller gave up or talked to an
//! agent; the engine needs to know which. `Mapper` keeps a little
//! per-call state (waiting or connected) to tell, and builds the
//! canonical events with stable ids, so that input resent after a
//! reconnect is recognised as a duplicate.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};

use crate::event::{AgentStatus, Body, Direction, Event, ExitReason, Text};
use crate::source::Context;

/// Calls tracked at most (oldest forgotten first): bounds memory when a
/// PBX never logs a call's end.
const MAX_CALLS: usize = 100_000;

/// Why an input line or AMI event produced no canonical event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Understood, but not a call-center fact callwatch tracks
    /// (QUEUESTART, DID, RINGCANCELED, Newexten...).
    Passed,
    /// An event name this mapping does not know.
    Unknown,
    /// Not parseable (too few fields, bad time...).
    Malformed,
    /// The end of a call that already ended (Asterisk logs COMPLETEAGENT
    /// once more per queue position it passed, the same call each time).
    Repeated,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Passed => "passed",
            Skip::Unknown => "unknown",
            Skip::Malformed => "malformed",
            Skip::Repeated => "repeated",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Phase {
    Waiting,
    Connected,
}

/// Turns app_queue facts into canonical events.
#[derive(Debug, Default)]
pub struct Mapper {
    site: Option<Text>,
    calls: HashMap<String, Phase>,
    order: VecDeque<String>,
    /// Calls that ended lately (bounded), so that a repeated end is
    /// passed over instead of refused by the engine.
    ended: std::collections::HashSet<String>,
    ended_order: VecDeque<String>,
    /// Rebuild calls the source never saw offered from the PBX's figures
    /// (only where the tracker survives a restart in the checkpoint).
    reconstruct: bool,
    /// Calls reconstructed since the last `take_reconstructed`.
    reconstructed: u64,
    /// Members that logged off from every queue: a later UNPAUSE of
    /// theirs says nothing (Asterisk logs it), it must not make them
    /// available again.
    logged_off: std::collections::HashSet<String>,
    /// The source's agent table: PBX member or interface → agent.
    agents: std::sync::Arc<AgentTable>,
    /// Events naming a member the table does not have (with a table).
    unmapped: std::cell::Cell<u64>,
    /// PBX call ids queued again after they left or ended (Asterisk keeps
    /// the uniqueid when a caller goes on to a failover queue): the visit
    /// number, so that each visit is a call of its own (`<id>#<n>`).
    visits: HashMap<String, u32>,
    /// Member → the queues it is logged in to (from the member lines),
    /// so that a resync can remove memberships the PBX no longer lists.
    members: HashMap<String, std::collections::BTreeSet<String>>,
    /// Members paused now (PBX names).
    paused: std::collections::HashSet<String>,
    /// Members inferred from an answer since the last `take_inferred`.
    inferred: u64,
}

/// One row of a source's `agents` table (docs/sources/asterisk.md).
#[derive(Debug, Clone, Default, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentEntry {
    /// The callwatch agent id (default: the PBX's name, unchanged).
    pub agent: Option<String>,
    pub name: Option<String>,
    pub team: Option<String>,
}

/// PBX member names / interfaces (`SIP/201`, `PJSIP/anna`, `Agent/402`,
/// a queue_log agent column) to agents.
pub type AgentTable = HashMap<String, AgentEntry>;

/// The table's mistakes, by key (`agents."SIP/201".agent`).
pub fn agent_table_problems(t: &AgentTable) -> Vec<(String, String)> {
    let mut p = Vec::new();
    for (member, e) in t {
        for (key, v) in [("agent", &e.agent), ("name", &e.name), ("team", &e.team)] {
            if let Some(v) = v {
                if v.is_empty()
                    || v.len() > crate::event::MAX_TEXT
                    || v.chars().any(char::is_control)
                {
                    p.push((
                        format!("agents.{member:?}.{key}"),
                        format!("{v:?} is empty, too long or has control characters"),
                    ));
                }
            }
        }
    }
    p
}

/// What the PBX says about a call it connects or ends: enough to rebuild
/// a call whose start the source never saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct Figures<'a> {
    pub queue: &'a str,
    pub agent: &'a str,
    /// The caller's wait in the queue (queue_log "holdtime", AMI
    /// `HoldTime`), seconds: the answer states it (the PBX's figure wins).
    pub wait_s: Option<f64>,
}

/// The tracker's open calls, for a checkpoint (in the order seen).
pub type OpenCalls = Vec<(String, Phase)>;

/// What a mapper believes about the PBX (calls, memberships, pauses), so
/// that a restarted source's first resync can close what ended meanwhile.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Belief {
    #[serde(default)]
    pub calls: OpenCalls,
    #[serde(default)]
    pub visits: Vec<(String, u32)>,
    #[serde(default)]
    pub members: Vec<(String, String)>,
    #[serde(default)]
    pub paused: Vec<String>,
}

/// What a platform's agent status means here (Twilio activities, Amazon
/// Connect agent statuses), by a configurable table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Available,
    Paused,
    Offline,
}

impl Presence {
    /// `name` by `table`; without an entry `Available` is available,
    /// `Offline` offline, anything else paused.
    pub fn of(table: &HashMap<String, Presence>, name: &str) -> Presence {
        match table.get(name) {
            Some(p) => *p,
            None if name == "Available" => Presence::Available,
            None if name == "Offline" => Presence::Offline,
            None => Presence::Paused,
        }
    }
}

/// The corrections every PBX source counts (from zero, so that the series
/// exist before the first).
pub const CORRECTIONS: [&str; 6] = [
    "call_started_before_source",
    "call_exited",
    "call_ended",
    "member_removed",
    "pause_cleared",
    "member_inferred",
];

/// The tracker a PBX source starts with: its site and agent table,
/// rebuilding calls it never saw start, and what it believed when it
/// stopped, so that the first resync closes what ended while it was
/// down. An unreadable checkpoint stops the source rather than forget
/// silently. Its counters start at zero, `more` corrections with them.
pub fn start(
    cx: &Context,
    site: Option<String>,
    agents: AgentTable,
    more: &[&'static str],
) -> Result<Mapper, crate::source::SourceError> {
    let mut mapper = Mapper::new(site).with_agents(agents).reconstructing();
    let belief: Option<Belief> =
        cx.checkpoint
            .load()
            .map_err(|e| crate::source::SourceError::Failed {
                source_name: cx.name().to_string(),
                message: e.to_string(),
            })?;
    if let Some(b) = belief {
        mapper.restore_belief(b);
    }
    let kind = cx.kind();
    cx.telemetry().unmapped_agents(kind, 0);
    cx.telemetry().receipt_timed(kind, 0);
    for c in CORRECTIONS.iter().chain(more) {
        cx.telemetry().corrected(kind, c, 0);
    }
    Ok(mapper)
}

/// A PBX string as an event field, cut to the canonical limit.
pub fn clip(s: &str) -> Text {
    let mut end = s.len().min(crate::event::MAX_TEXT);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Text::from(&s[..end])
}

/// A caller id usable as a customer reference (never a metric label).
pub fn customer(raw: &str) -> Option<Text> {
    let v = raw.trim();
    let unknown = v.is_empty()
        || ["unknown", "anonymous", "<unknown>", "restricted"]
            .iter()
            .any(|u| v.eq_ignore_ascii_case(u));
    (!unknown).then(|| clip(v))
}

/// A stable event id from the input that produced it: the same input
/// line (or AMI block) resent is recognised as a duplicate.
pub fn stable_id(prefix: &str, parts: &[&str]) -> Text {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    Text::from(format!(
        "{prefix}:{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
    ))
}

/// A duration in seconds a PBX states, in milliseconds; `None` when it is
/// not a plausible one (negative, not a number, over 7 days), so the
/// engine derives it from event times instead of trusting it.
pub fn pbx_ms(secs: f64) -> Option<i64> {
    let max_s = (crate::event::MAX_DURATION_MS / 1000) as f64;
    (secs.is_finite() && (0.0..=max_s).contains(&secs)).then(|| (secs * 1000.0).round() as i64)
}

/// A PBX time in seconds (fractional), in milliseconds; `None` outside
/// the plausible years.
pub fn pbx_time_ms(secs: f64) -> Option<i64> {
    let ms = secs * 1000.0;
    let range = crate::event::MIN_TS_MS as f64..crate::event::MAX_TS_MS as f64;
    (ms.is_finite() && range.contains(&ms)).then_some(ms as i64)
}

pub fn ts_of(ms: i64) -> DateTime<FixedOffset> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
        .fixed_offset()
}

impl Mapper {
    pub fn new(site: Option<String>) -> Mapper {
        Mapper {
            site: site.map(Text::from),
            ..Mapper::default()
        }
    }

    /// Maps members to agents through `table` (empty: names unchanged).
    pub fn with_agents(mut self, table: AgentTable) -> Mapper {
        self.agents = std::sync::Arc::new(table);
        self
    }

    /// Events that named a member missing from the agent table, since
    /// last asked.
    pub fn take_unmapped(&mut self) -> u64 {
        self.unmapped.take()
    }

    /// The agent a PBX member is, and its table row.
    fn agent_of(&self, member: &Text) -> (Text, Option<&AgentEntry>) {
        if self.agents.is_empty() {
            return (member.clone(), None);
        }
        match self.agents.get(member.as_str()) {
            Some(e) => (
                e.agent
                    .as_deref()
                    .map(Text::from)
                    .unwrap_or_else(|| member.clone()),
                Some(e),
            ),
            None => {
                self.unmapped.set(self.unmapped.get() + 1);
                (member.clone(), None)
            }
        }
    }

    /// Every event leaves through here: members become agents, and a
    /// call queued again becomes its visit.
    fn event(&self, id: Text, ms: i64, mut body: Body) -> Event {
        if !self.visits.is_empty() {
            match &mut body {
                Body::CallOffered { call, .. }
                | Body::CallAnswered { call, .. }
                | Body::CallHold { call }
                | Body::CallResume { call }
                | Body::CallAbandoned { call }
                | Body::CallExited { call, .. }
                | Body::CallMissed { call, .. }
                | Body::CallEnded { call, .. }
                | Body::WrapEnded { call, .. }
                | Body::CallTransferred { call, .. } => {
                    if let Some(n) = self.visits.get(call.as_str()) {
                        *call = clip(&format!("{call}#{n}"));
                    }
                }
                _ => {}
            }
        }
        match &mut body {
            Body::CallAnswered { agent, .. }
            | Body::CallMissed { agent, .. }
            | Body::AgentState { agent, .. }
            | Body::AgentLogout { agent, .. } => *agent = self.agent_of(agent).0,
            Body::AgentLogin {
                agent, name, team, ..
            } => {
                let (id, row) = self.agent_of(agent);
                *agent = id;
                if let Some(row) = row {
                    if name.is_none() {
                        *name = row.name.as_deref().map(Text::from);
                    }
                    if team.is_none() {
                        *team = row.team.as_deref().map(Text::from);
                    }
                }
            }
            _ => {}
        }
        Event {
            id,
            ts: ts_of(ms),
            site: self.site.clone(),
            body,
        }
    }

    fn track(&mut self, call: &str, phase: Phase) {
        if self.calls.insert(call.to_string(), phase).is_none() {
            self.order.push_back(call.to_string());
            while self.order.len() > MAX_CALLS {
                if let Some(old) = self.order.pop_front() {
                    if self.calls.remove(&old).is_some() && !self.ended.contains(&old) {
                        self.visits.remove(&old);
                    }
                }
            }
        }
    }

    /// The call is over (ended or left): a later end of it is repeated.
    fn finish(&mut self, call: &str) {
        self.calls.remove(call);
        if self.ended.insert(call.to_string()) {
            self.ended_order.push_back(call.to_string());
            while self.ended_order.len() > MAX_CALLS {
                if let Some(old) = self.ended_order.pop_front() {
                    self.ended.remove(&old);
                    if !self.calls.contains_key(&old) {
                        self.visits.remove(&old);
                    }
                }
            }
        }
    }

    pub fn offered(
        &mut self,
        id: Text,
        ms: i64,
        call: &str,
        queue: &str,
        customer: Option<Text>,
    ) -> Vec<Event> {
        if !self.calls.contains_key(call) && self.ended.remove(call) {
            *self.visits.entry(call.to_string()).or_insert(1) += 1;
        }
        self.track(call, Phase::Waiting);
        vec![self.event(
            id,
            ms,
            Body::CallOffered {
                call: clip(call),
                queue: clip(queue),
                direction: Direction::Inbound,
                customer,
            },
        )]
    }

    /// Rebuild calls that started before the source (see `Figures`).
    pub fn reconstructing(mut self) -> Mapper {
        self.reconstruct = true;
        self
    }

    /// Members inferred from an answer since last asked.
    pub fn take_inferred(&mut self) -> u64 {
        std::mem::take(&mut self.inferred)
    }

    /// Calls reconstructed since last asked.
    pub fn take_reconstructed(&mut self) -> u64 {
        std::mem::take(&mut self.reconstructed)
    }

    /// The open calls, to keep with the source's position.
    pub fn open_calls(&self) -> OpenCalls {
        self.order
            .iter()
            .filter_map(|c| self.calls.get(c).map(|p| (c.clone(), *p)))
            .collect()
    }

    /// Takes back the open calls of a checkpoint.
    pub fn restore(&mut self, calls: OpenCalls) {
        for (c, p) in calls {
            self.track(&c, p);
        }
    }

    /// The offer of a call the source never saw, `wait` before `ms`.
    fn offer_before(&mut self, id: &Text, ms: i64, call: &str, f: &Figures, out: &mut Vec<Event>) {
        if !self.reconstruct || f.queue.is_empty() || f.queue == "NONE" {
            return;
        }
        let wait = f.wait_s.and_then(pbx_ms).unwrap_or(0);
        out.push(self.event(
            Text::from(format!("{id}:offered")),
            ms.saturating_sub(wait),
            Body::CallOffered {
                call: clip(call),
                queue: clip(f.queue),
                direction: Direction::Inbound,
                customer: None,
            },
        ));
        self.reconstructed += 1;
    }

    pub fn connected(
        &mut self,
        id: Text,
        ms: i64,
        call: &str,
        agent: &str,
        f: Figures,
    ) -> Vec<Event> {
        let mut out = Vec::new();
        if !self.calls.contains_key(call) {
            self.offer_before(&id, ms, call, &f, &mut out);
        }
        // A member answering a queue's call is a member of it: one that
        // logged in before the source (or before the read position) gets
        // its login, with the agent table's name and team.
        if !self.members.contains_key(agent) && !f.queue.is_empty() && f.queue != "NONE" {
            out.extend(self.login(Text::from(format!("{id}:member")), ms, agent, Some(f.queue)));
            self.inferred += 1;
        }
        self.track(call, Phase::Connected);
        out.push(self.event(
            id,
            ms,
            Body::CallAnswered {
                call: clip(call),
                agent: clip(agent),
                wait_ms: f.wait_s.and_then(pbx_ms),
            },
        ));
        out
    }

    /// The conversation ended (complete, transfer away, agent dump after
    /// connect). The log says nothing about after-call work, so it ends at
    /// once: the agent is available again.
    /// The end of a call that already ended is `Skip::Repeated`.
    ///
    /// With reconstruction on, a call never seen is rebuilt from `f`:
    /// offered `wait + talk` before, answered by `f.agent` `talk` before.
    pub fn ended(
        &mut self,
        id: &Text,
        ms: i64,
        call: &str,
        talk_s: Option<f64>,
        f: Figures,
    ) -> Result<Vec<Event>, Skip> {
        if !self.calls.contains_key(call) && self.ended.contains(call) {
            return Err(Skip::Repeated);
        }
        let talk_ms = talk_s.and_then(pbx_ms);
        let mut out = Vec::new();
        let unseen = !self.calls.contains_key(call);
        if unseen && self.reconstruct && !f.agent.is_empty() && f.agent != "NONE" {
            let answered_at = ms.saturating_sub(talk_ms.unwrap_or(0));
            let before = out.len();
            self.offer_before(id, answered_at, call, &f, &mut out);
            if out.len() > before {
                out.push(self.event(
                    Text::from(format!("{id}:answered")),
                    answered_at,
                    Body::CallAnswered {
                        call: clip(call),
                        agent: clip(f.agent),
                        wait_ms: f.wait_s.and_then(pbx_ms),
                    },
                ));
            }
        }
        self.finish(call);
        out.extend([
            self.event(
                Text::from(format!("{id}:end")),
                ms,
                Body::CallEnded {
                    call: clip(call),
                    talk_ms,
                    hold_ms: None,
                },
            ),
            self.event(
                Text::from(format!("{id}:wrap")),
                ms,
                Body::WrapEnded {
                    call: clip(call),
                    outcome: None,
                },
            ),
        ]);
        Ok(out)
    }

    /// A ring at `agent` not taken, while the call waits; `Passed` for a
    /// call not waiting here (started before the source, or already
    /// connected): a missed ring of it says nothing the engine could use.
    pub fn missed(
        &mut self,
        id: Text,
        ms: i64,
        call: &str,
        agent: &str,
        ring_ms: Option<i64>,
    ) -> Result<Vec<Event>, Skip> {
        if self.calls.get(call) != Some(&Phase::Waiting) {
            return Err(Skip::Passed);
        }
        Ok(vec![self.event(
            id,
            ms,
            Body::CallMissed {
                call: clip(call),
                agent: clip(agent),
                ring_ms: ring_ms.filter(|r| (0..=crate::event::MAX_DURATION_MS).contains(r)),
            },
        )])
    }

    /// The caller hung up without being connected.
    /// The waiting caller left without an agent: hung up (`exit` `None`)
    /// or for `exit`'s reason. A call that already left or ended is
    /// `Skip::Repeated`; with reconstruction on, a call never seen is
    /// offered `f.wait_s` before (the PBX's own figure).
    pub fn left(
        &mut self,
        id: Text,
        ms: i64,
        call: &str,
        f: Figures,
        exit: Option<ExitReason>,
    ) -> Result<Vec<Event>, Skip> {
        let unseen = !self.calls.contains_key(call);
        if unseen && self.ended.contains(call) {
            return Err(Skip::Repeated);
        }
        let mut out = Vec::new();
        if unseen {
            self.offer_before(&id, ms, call, &f, &mut out);
        }
        // A leaveempty line names a call that is not waiting here: what
        // it says, the engine could not use.
        if unseen && out.is_empty() && exit == Some(ExitReason::Leaveempty) {
            return Err(Skip::Passed);
        }
        self.finish(call);
        let call = clip(call);
        let body = match exit {
            None => Body::CallAbandoned { call },
            Some(reason) => Body::CallExited { call, reason },
        };
        out.push(self.event(id, ms, body));
        Ok(out)
    }

    /// A caller turned away before `queue` (full, joinempty, closed).
    pub fn refused(
        &mut self,
        id: Text,
        ms: i64,
        call: Option<&str>,
        queue: &str,
        reason: ExitReason,
    ) -> Vec<Event> {
        vec![self.event(
            id,
            ms,
            Body::CallRefused {
                queue: clip(queue),
                reason,
                call: call.map(clip),
                customer: None,
            },
        )]
    }

    /// Where a call is, if this mapper has it open.
    pub fn phase(&self, call: &str) -> Option<Phase> {
        self.calls.get(call).copied()
    }

    /// The open calls and their phases (a resync's "before").
    pub fn open_phases(&self) -> HashMap<String, Phase> {
        self.calls.clone()
    }

    /// Every (member, queue) logged in (a resync's "before").
    pub fn memberships(&self) -> Vec<(String, String)> {
        self.members
            .iter()
            .flat_map(|(m, qs)| qs.iter().map(move |q| (m.clone(), q.clone())))
            .collect()
    }

    pub fn is_member(&self, member: &str, queue: &str) -> bool {
        self.members
            .get(member)
            .is_some_and(|qs| qs.contains(queue))
    }

    pub fn is_paused(&self, member: &str) -> bool {
        self.paused.contains(member)
    }

    /// Closes an open call the PBX no longer lists (a resync): a waiting
    /// call exits with reason `resync`, a connected one ends (talk from
    /// the times, as the PBX's figure is gone with the call).
    pub fn close_unlisted(&mut self, id: Text, ms: i64, call: &str) -> Vec<Event> {
        match self.calls.get(call) {
            Some(Phase::Waiting) => self
                .left(id, ms, call, Figures::default(), Some(ExitReason::Resync))
                .unwrap_or_default(),
            Some(Phase::Connected) => self
                .ended(&id, ms, call, None, Figures::default())
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// Everything this mapper believes, for a checkpoint.
    pub fn belief(&self) -> Belief {
        let mut members = self.memberships();
        members.sort();
        let mut paused: Vec<String> = self.paused.iter().cloned().collect();
        paused.sort();
        Belief {
            calls: self.open_calls(),
            visits: self.open_visits(),
            members,
            paused,
        }
    }

    /// Takes back a checkpoint's belief.
    pub fn restore_belief(&mut self, b: Belief) {
        self.restore(b.calls);
        self.restore_visits(b.visits);
        for (m, q) in b.members {
            self.members.entry(m).or_default().insert(q);
        }
        self.paused.extend(b.paused);
    }

    /// Queued-again calls open now, for the checkpoint.
    pub fn open_visits(&self) -> Vec<(String, u32)> {
        self.order
            .iter()
            .filter(|c| self.calls.contains_key(*c))
            .filter_map(|c| self.visits.get(c).map(|n| (c.clone(), *n)))
            .collect()
    }

    /// Takes back a checkpoint's visits (after `restore`).
    pub fn restore_visits(&mut self, visits: Vec<(String, u32)>) {
        self.visits.extend(visits);
    }

    /// The call left the agent: ended if connected, abandoned if waiting.
    pub fn gone(
        &mut self,
        id: Text,
        ms: i64,
        call: &str,
        talk_s: Option<f64>,
    ) -> Result<Vec<Event>, Skip> {
        match self.calls.get(call) {
            Some(Phase::Waiting) => self.left(id, ms, call, Figures::default(), None),
            _ => self.ended(&id, ms, call, talk_s, Figures::default()),
        }
    }

    pub fn hold(&mut self, id: Text, ms: i64, call: &str, on: bool) -> Vec<Event> {
        if self.calls.get(call) != Some(&Phase::Connected) {
            return Vec::new();
        }
        let call = clip(call);
        let body = if on {
            Body::CallHold { call }
        } else {
            Body::CallResume { call }
        };
        vec![self.event(id, ms, body)]
    }

    pub fn login(&mut self, id: Text, ms: i64, agent: &str, queue: Option<&str>) -> Vec<Event> {
        self.logged_off.remove(agent);
        if let Some(q) = queue {
            if self.members.len() < MAX_CALLS || self.members.contains_key(agent) {
                self.members
                    .entry(agent.to_string())
                    .or_default()
                    .insert(q.to_string());
            }
        }
        vec![self.event(
            id,
            ms,
            Body::AgentLogin {
                agent: clip(agent),
                name: None,
                team: None,
                queues: queue.into_iter().map(Text::from).collect(),
            },
        )]
    }

    /// The member leaves `queue` (or every queue, without one).
    pub fn logout(&mut self, id: Text, ms: i64, agent: &str, queue: Option<&str>) -> Vec<Event> {
        if queue.is_none() && self.logged_off.len() < MAX_CALLS {
            self.logged_off.insert(agent.to_string());
        }
        match queue {
            Some(q) => {
                if let Some(qs) = self.members.get_mut(agent) {
                    qs.remove(q);
                    if qs.is_empty() {
                        self.members.remove(agent);
                        self.paused.remove(agent);
                    }
                }
            }
            None => {
                self.members.remove(agent);
                self.paused.remove(agent);
            }
        }
        vec![self.event(
            id,
            ms,
            Body::AgentLogout {
                agent: clip(agent),
                queues: queue.into_iter().map(Text::from).collect(),
            },
        )]
    }

    pub fn pause(
        &mut self,
        id: Text,
        ms: i64,
        agent: &str,
        paused: bool,
        reason: Option<&str>,
    ) -> Vec<Event> {
        if self.logged_off.contains(agent) {
            return Vec::new();
        }
        if !paused {
            self.paused.remove(agent);
        } else if self.paused.len() < MAX_CALLS {
            self.paused.insert(agent.to_string());
        }
        let (state, reason) = if paused {
            (
                AgentStatus::Paused,
                reason
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(Text::from),
            )
        } else {
            (AgentStatus::Available, None)
        };
        vec![self.event(
            id,
            ms,
            Body::AgentState {
                agent: clip(agent),
                state,
                reason,
            },
        )]
    }
}

/// Counts skipped input and logs it at most every ten seconds.
#[derive(Default)]
pub struct Throttle {
    last: Option<std::time::Instant>,
    since: u64,
}

impl Throttle {
    pub fn skip(&mut self, cx: &Context, why: Skip, input: &str) {
        cx.skipped(why.as_str());
        if !matches!(why, Skip::Passed | Skip::Repeated) {
            self.since += 1;
            self.warn(
                cx.name(),
                &format!(
                    "{} input: {}",
                    why.as_str(),
                    input.chars().take(200).collect::<String>()
                ),
            );
        }
    }

    pub fn warn(&mut self, source: &str, msg: &str) {
        if self
            .last
            .is_none_or(|t| t.elapsed() > Duration::from_secs(10))
        {
            tracing::warn!(source, skipped = self.since, "{msg}");
            self.last = Some(std::time::Instant::now());
            self.since = 0;
        }
    }
}
