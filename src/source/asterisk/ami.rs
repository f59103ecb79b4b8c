//! Source `asterisk_ami`: a client of the Asterisk Manager Interface.
//!
//! Connects over TCP (or TLS, Asterisk's `tlsenable`), logs in, asks for `QueueStatus` after every
//! (re)connect so the live queue state is taken from Asterisk rather than
//! guessed (members become logins and pauses, waiting entries become
//! offered calls), then maps queue events as they come. Reconnects with
//! the sources' shared backoff (docs/sources/asterisk.md) after a dropped
//! connection or a failed login. Header names are matched without regard to case and
//! both the 12+ names (QueueCallerJoin, QueueMemberPause...) and the older
//! ones (Join, Leave, QueueMemberPaused...) are understood.

use std::collections::HashMap;

use futures_util::future::BoxFuture;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::event::Event;
use crate::source::pbx::{
    agent_table_problems, customer, stable_id, AgentTable, Belief, Figures, Mapper, Skip, Throttle,
};
use crate::source::{self, Built, Context, Kind, Problems, Setup, Source, SourceError};

pub const NAME: &str = "asterisk_ami";

/// The registry entry.
pub const KIND: Kind = Kind { name: NAME, build };

/// `[[sources]]` with `type = "asterisk_ami"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmiConfig {
    pub name: Option<String>,
    /// host:port, usually port 5038.
    pub address: String,
    pub username: String,
    pub secret: String,
    pub site: Option<String>,
    /// Member name / interface → agent id, name and team.
    #[serde(default)]
    pub agents: AgentTable,
    /// Connect with TLS (manager.conf `tlsenable`, usually port 5039).
    #[serde(default)]
    pub tls: bool,
    /// A CA bundle to verify the PBX with, besides the system's roots.
    pub tls_ca: Option<std::path::PathBuf>,
    /// The name the PBX's certificate must carry (the host of `address`
    /// without it).
    pub tls_server_name: Option<String>,
}

/// How long the TLS handshake with the PBX may take.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The TLS client of a source with `tls = true`: checked when the
/// configuration is, so that a bad CA file or name stops the start.
fn tls_of(c: &AmiConfig) -> Result<Option<Tls>, Problems> {
    if !c.tls {
        if c.tls_ca.is_some() || c.tls_server_name.is_some() {
            return Err(vec![(
                "tls".into(),
                "tls_ca and tls_server_name need tls = true".into(),
            )]);
        }
        return Ok(None);
    }
    let connector = crate::tls::connector(c.tls_ca.as_deref())
        .map_err(|e| vec![("tls_ca".to_string(), e.to_string())])?;
    let name = crate::tls::server_name(&c.address, c.tls_server_name.as_deref())
        .map_err(|e| vec![("tls_server_name".to_string(), e)])?;
    Ok(Some(Tls { connector, name }))
}

struct Tls {
    connector: tokio_rustls::TlsConnector,
    name: rustls_pki_types::ServerName<'static>,
}

/// A connection to the PBX, plain or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

async fn connect(o: &AmiConfig, tls: Option<&Tls>) -> Result<Box<dyn Io>, std::io::Error> {
    let tcp = TcpStream::connect(&o.address).await?;
    let Some(t) = tls else {
        return Ok(Box::new(tcp));
    };
    let handshake = t.connector.connect(t.name.clone(), tcp);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(s)) => Ok(Box::new(s)),
        Ok(Err(e)) => Err(std::io::Error::new(e.kind(), format!("TLS handshake: {e}"))),
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "TLS handshake timed out",
        )),
    }
}

fn build(table: &toml::Table, setup: &Setup) -> Result<Built, Problems> {
    let c: AmiConfig = source::parse(table)?;
    if !c.address.contains(':') {
        return Err(vec![(
            "address".into(),
            format!("{:?} is not host:port", c.address),
        )]);
    }
    let p = agent_table_problems(&c.agents);
    if !p.is_empty() {
        return Err(p);
    }
    let tls = tls_of(&c)?;
    let name = source::default_name(c.name.clone(), NAME, setup.index);
    Ok(Built {
        kind: NAME,
        checkpoint_file: format!("{name}.ami"),
        name,
        source: Box::new(AmiSource { opts: c, tls }),
    })
}
/// Longest AMI message accepted (bytes); longer ones are skipped.
const MAX_BLOCK: usize = 64 * 1024;

/// One AMI message: its headers, names lower-cased.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Block {
    pub fields: HashMap<String, String>,
    pub raw: String,
}

impl Block {
    pub fn get(&self, k: &str) -> &str {
        self.fields.get(k).map(String::as_str).unwrap_or("")
    }
}

/// Parses a message's lines (`Key: Value`, value may be empty).
pub fn parse_block(lines: &[String]) -> Block {
    let mut b = Block::default();
    for l in lines {
        // Capture corruption like "[218 bytes missing]Event: X": keep the
        // part from the last key we can read.
        let l = match l.find("]Event:") {
            Some(i) => &l[i + 1..],
            None => l.as_str(),
        };
        if let Some((k, v)) = l.split_once(':') {
            b.fields
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
        b.raw.push_str(l);
        b.raw.push('\n');
    }
    b
}

/// The member an event names: 12+ MemberName; older Member / Location /
/// Name / Interface.
fn member_of(b: &Block) -> &str {
    [
        b.get("membername"),
        b.get("member"),
        b.get("name"),
        b.get("location"),
        b.get("interface"),
    ]
    .into_iter()
    .find(|s| !s.is_empty())
    .unwrap_or("")
}

/// The event's time: its `Timestamp`, else `now_ms` (receipt).
fn time_of(b: &Block, now_ms: i64) -> i64 {
    b.get("timestamp")
        .parse::<f64>()
        .ok()
        .and_then(crate::source::pbx::pbx_time_ms)
        .unwrap_or(now_ms)
}

/// Maps one AMI event; `now_ms` stands in for a missing `Timestamp`.
pub fn map_event(m: &mut Mapper, b: &Block, now_ms: i64) -> Result<Vec<Event>, Skip> {
    let ms = time_of(b, now_ms);
    let id = stable_id("ami", &[&b.raw]);
    let call = b.get("uniqueid");
    let queue = b.get("queue");
    let member = member_of(b);
    let need = |ok: bool| if ok { Ok(()) } else { Err(Skip::Malformed) };
    let ev = b.get("event");
    Ok(match ev.to_ascii_lowercase().as_str() {
        "queuecallerjoin" | "join" | "queueentry" => {
            need(!call.is_empty() && !queue.is_empty())?;
            // A resync lists calls this source already follows.
            if m.phase(call).is_some() {
                return Err(Skip::Passed);
            }
            // QueueEntry (a QueueStatus answer) tells how long it waits.
            // Bounded: a wait of more than the longest duration is noise.
            let wait = b
                .get("wait")
                .parse::<f64>()
                .ok()
                .and_then(crate::source::pbx::pbx_ms)
                .unwrap_or(0);
            let cid = [b.get("calleridnum"), b.get("callerid")]
                .into_iter()
                .find(|s| !s.is_empty())
                .unwrap_or("");
            m.offered(id, ms.saturating_sub(wait), call, queue, customer(cid))
        }
        "queuecallerabandon" => {
            need(!call.is_empty())?;
            // A caller who already left or ended is a repeat (counted),
            // not silence.
            m.left(id, ms, call, Figures::default(), None)?
        }
        "agentconnect" => {
            need(!call.is_empty() && !member.is_empty())?;
            let f = Figures {
                queue,
                agent: member,
                wait_s: b.get("holdtime").parse().ok(),
            };
            m.connected(id, ms, call, member, f)
        }
        "agentcomplete" => {
            need(!call.is_empty())?;
            // The PBX's figures rebuild a call connected before the
            // source was (not in QueueStatus, which lists waiting calls).
            let f = Figures {
                queue,
                agent: member,
                wait_s: b.get("holdtime").parse().ok(),
            };
            m.ended(&id, ms, call, b.get("talktime").parse().ok(), f)?
        }
        "agentdump" => {
            need(!call.is_empty())?;
            m.gone(id, ms, call, None)?
        }
        "hold" | "unhold" | "musiconholdstart" | "musiconholdstop" => {
            need(!call.is_empty())?;
            let on = matches!(
                ev.to_ascii_lowercase().as_str(),
                "hold" | "musiconholdstart"
            );
            let on = on && b.get("status") != "Off";
            m.hold(id, ms, call, on)
        }
        "queuememberpause" | "queuememberpaused" => {
            need(!member.is_empty())?;
            let paused = b.get("paused") == "1";
            let reason = [b.get("pausedreason"), b.get("reason")]
                .into_iter()
                .find(|s| !s.is_empty());
            m.pause(id, ms, member, paused, reason)
        }
        "queuememberadded" | "queuemember" => {
            need(!member.is_empty())?;
            let mut out = m.login(id.clone(), ms, member, (!queue.is_empty()).then_some(queue));
            let paused = b.get("paused") == "1";
            // A member line states the pause either way: an unpause
            // while disconnected is taken from it.
            if paused || m.is_paused(member) {
                out.extend(m.pause(
                    format!("{id}:paused").into(),
                    ms,
                    member,
                    paused,
                    Some(b.get("pausedreason")),
                ));
            }
            out
        }
        "agentringnoanswer" => {
            need(!call.is_empty() && !member.is_empty())?;
            // RingTime is in seconds.
            let ring = b
                .get("ringtime")
                .parse::<f64>()
                .ok()
                .and_then(crate::source::pbx::pbx_ms);
            m.missed(id, ms, call, member, ring)?
        }
        "queuememberremoved" => {
            need(!member.is_empty())?;
            m.logout(id, ms, member, (!queue.is_empty()).then_some(queue))
        }
        "queuecallerleave"
        | "leave"
        | "agentcalled"
        | "queuememberstatus"
        | "queueparams"
        | "queuestatuscomplete"
        | "coreshowchannel"
        | "coreshowchannelscomplete"
        | "fullybooted"
        | "successfulauth"
        | "newchannel"
        | "newexten"
        | "newstate"
        | "varset"
        | "agiexec"
        | "cel"
        | "hangup"
        | "hanguprequest"
        | "softhanguprequest"
        | "extensionstatus"
        | "peerstatus"
        | "userevent"
        | "rtcpreceived"
        | "rtcpsent"
        | "channelupdate"
        | "newcallerid"
        | "dialbegin"
        | "dialend"
        | "bridgecreate"
        | "bridgeenter"
        | "bridgeleave"
        | "bridgedestroy"
        | "newconnectedline"
        | "devicestatechange"
        | "agentlogin"
        | "agentlogoff"
        | "start"
        | "end"
        | "dial"
        | "link"
        | "unlink"
        | "bridge"
        | "rename"
        | "masquerade"
        | "registry"
        | "reload" => return Err(Skip::Passed),
        "" => return Err(Skip::Malformed),
        _ => return Err(Skip::Unknown),
    })
}

pub struct AmiSource {
    opts: AmiConfig,
    tls: Option<Tls>,
}

/// A resync after (re)connect: what this source believed when it asked
/// (`QueueStatus`, `CoreShowChannels`), and what the PBX listed. At each
/// list's end, whatever was believed before and is neither listed nor
/// changed since is closed by synthetic events (journaled like any
/// other, so replay is exact): a waiting call exits with reason
/// `resync`, a connected call whose channel is gone ends, a membership
/// is logged out of its queue. Calls and members first seen during the
/// resync are never closed: the list may predate them.
#[derive(Debug, Default)]
pub struct Resync {
    calls: HashMap<String, crate::source::pbx::Phase>,
    members: Vec<(String, String)>,
    listed_calls: std::collections::HashSet<String>,
    listed_members: std::collections::HashSet<(String, String)>,
    listed_channels: std::collections::HashSet<String>,
}

/// Corrections of one resync step, by `callwatch_source_resync_corrections_total` kind.
#[derive(Debug, Default)]
pub struct Corrections {
    pub events: Vec<Event>,
    pub calls_exited: u64,
    pub calls_ended: u64,
    pub members_removed: u64,
}

impl Resync {
    pub fn begin(m: &Mapper) -> Resync {
        Resync {
            calls: m.open_phases(),
            members: m.memberships(),
            ..Resync::default()
        }
    }

    /// Notes what a list entry says; true when `b` ends a list.
    pub fn observe(&mut self, b: &Block) -> bool {
        match b.get("event").to_ascii_lowercase().as_str() {
            "queueentry" => {
                self.listed_calls.insert(b.get("uniqueid").to_string());
            }
            "queuemember" => {
                self.listed_members
                    .insert((member_of(b).to_string(), b.get("queue").to_string()));
            }
            "coreshowchannel" => {
                self.listed_channels.insert(b.get("uniqueid").to_string());
            }
            "queuestatuscomplete" | "coreshowchannelscomplete" => return true,
            _ => {}
        }
        false
    }

    /// The corrections due when the list `b` ends (`ms`: its time).
    pub fn close(&mut self, m: &mut Mapper, b: &Block, ms: i64) -> Corrections {
        use crate::source::pbx::Phase;
        let mut out = Corrections::default();
        let channels = b
            .get("event")
            .eq_ignore_ascii_case("coreshowchannelscomplete");
        let stamp = ms.to_string();
        let mut calls: Vec<(&String, &Phase)> = self.calls.iter().collect();
        calls.sort_by(|a, b| a.0.cmp(b.0));
        for (call, phase) in calls {
            let listed = match phase {
                Phase::Waiting if !channels => self.listed_calls.contains(call),
                Phase::Connected if channels => self.listed_channels.contains(call),
                _ => continue,
            };
            if listed || m.phase(call) != Some(*phase) {
                continue;
            }
            let id = stable_id("ami-resync", &[call, &stamp]);
            let evs = m.close_unlisted(id, ms, call);
            if !evs.is_empty() {
                match phase {
                    Phase::Waiting => out.calls_exited += 1,
                    Phase::Connected => out.calls_ended += 1,
                }
            }
            out.events.extend(evs);
        }
        if !channels {
            self.members.sort();
            for (member, queue) in &self.members {
                let key = (member.clone(), queue.clone());
                if self.listed_members.contains(&key) || !m.is_member(member, queue) {
                    continue;
                }
                let id = stable_id("ami-resync", &[member, queue, &stamp]);
                out.events.extend(m.logout(id, ms, member, Some(queue)));
                out.members_removed += 1;
            }
        }
        out
    }
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("login refused: {0}")]
    Login(String),
    #[error("connection closed")]
    Closed,
    #[error("shutting down")]
    Stop,
}

/// Reads one message (lines up to an empty line).
async fn read_block<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
    line: &mut String,
) -> Result<Vec<String>, SessionError> {
    let mut lines = Vec::new();
    let mut size = 0;
    loop {
        line.clear();
        let n = r.read_line(line).await?;
        if n == 0 {
            return Err(SessionError::Closed);
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            if lines.is_empty() {
                continue;
            }
            return Ok(lines);
        }
        size += l.len();
        if size <= MAX_BLOCK {
            lines.push(l.to_string());
        }
    }
}

/// Applies `events` durably, then stores `belief`, what the mapper
/// believes after them (taken before: the mapper is not shared across
/// the await); a failed store is logged and retried with the next batch.
async fn submit(
    cx: &mut Context,
    belief: Option<Belief>,
    events: Vec<Event>,
) -> Result<(), SessionError> {
    let Some(belief) = belief else {
        return Ok(());
    };
    if cx.submit(events, None).await.is_err() {
        return Err(SessionError::Stop);
    }
    if let Err(e) = cx.checkpoint.save(&belief) {
        tracing::warn!(source = %cx.name(), error = %e, "cannot store what the AMI source knows");
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn session(
    o: &AmiConfig,
    tls: Option<&Tls>,
    cx: &mut Context,
    mapper: &mut Mapper,
    throttle: &mut Throttle,
    logged_in: &mut bool,
    sessions: &mut u64,
    last_ts: &mut Option<i64>,
) -> Result<(), SessionError> {
    let stream = connect(o, tls).await?;
    let (r, mut w) = tokio::io::split(stream);
    let mut r = BufReader::new(r);
    let mut line = String::new();
    // Greeting: "Asterisk Call Manager/x.y".
    r.read_line(&mut line).await?;
    w.write_all(
        format!(
            "Action: Login\r\nUsername: {}\r\nSecret: {}\r\nEvents: on\r\nActionID: callwatch-login\r\n\r\n",
            o.username, o.secret
        )
        .as_bytes(),
    )
    .await?;
    loop {
        let b = parse_block(&read_block(&mut r, &mut line).await?);
        if b.get("actionid") == "callwatch-login" || b.fields.contains_key("response") {
            if b.get("response").eq_ignore_ascii_case("success") {
                break;
            }
            return Err(SessionError::Login(b.get("message").to_string()));
        }
    }
    *logged_in = true;
    *sessions += 1;
    if *sessions > 1 {
        cx.reconnected();
    }
    tracing::info!(source = %cx.name(), address = %o.address, "AMI logged in; resynchronising with QueueStatus");
    // Connected calls are not in QueueStatus: their channels tell
    // whether they still exist.
    let mut resync = Resync::begin(mapper);
    w.write_all(b"Action: QueueStatus\r\nActionID: callwatch-resync\r\n\r\nAction: CoreShowChannels\r\nActionID: callwatch-channels\r\n\r\n")
        .await?;
    loop {
        let lines = tokio::select! {
            _ = cx.shutdown.cancelled() => return Err(SessionError::Stop),
            l = read_block(&mut r, &mut line) => l?,
        };
        let b = parse_block(&lines);
        if b.fields.contains_key("response") {
            continue;
        }
        cx.received(1);
        let now = chrono::Utc::now().timestamp_millis();
        if !b.get("timestamp").is_empty() {
            *last_ts = Some(time_of(&b, now));
        }
        if resync.observe(&b) {
            // A list's end without a Timestamp, from a PBX that stamps
            // its events, is as old as the PBX's last stamp: receipt time
            // would put the corrections after every later event.
            let c = resync.close(mapper, &b, time_of(&b, last_ts.unwrap_or(now)));
            cx.corrected("call_exited", c.calls_exited);
            cx.corrected("call_ended", c.calls_ended);
            cx.corrected("member_removed", c.members_removed);
            if !c.events.is_empty() {
                if b.get("timestamp").is_empty() {
                    cx.telemetry().receipt_timed(NAME, c.events.len() as u64);
                }
                tracing::info!(source = %cx.name(), calls_exited = c.calls_exited, calls_ended = c.calls_ended, members_removed = c.members_removed, "AMI resync closed what the PBX no longer lists");
                let belief = Some(mapper.belief());
                submit(cx, belief, c.events).await?;
            }
        }
        // A member line with no pause for a member paused here: the
        // unpause happened while disconnected.
        let unpaused = b.get("event").eq_ignore_ascii_case("queuemember")
            && b.get("paused") != "1"
            && mapper.is_paused(member_of(&b));
        let mapped = map_event(mapper, &b, now);
        if unpaused && mapped.is_ok() {
            cx.corrected("pause_cleared", 1);
        }
        cx.telemetry().unmapped_agents(NAME, mapper.take_unmapped());
        cx.corrected("call_started_before_source", mapper.take_reconstructed());
        cx.corrected("member_inferred", mapper.take_inferred());
        match mapped {
            Ok(events) => {
                // Without `Timestamp` (timestampevents = no in
                // manager.conf) the time is this daemon's receipt time:
                // counted, since waits and talk then rest on it.
                if !events.is_empty() && b.get("timestamp").is_empty() {
                    cx.telemetry().receipt_timed(NAME, events.len() as u64);
                }
                let belief = (!events.is_empty()).then(|| mapper.belief());
                submit(cx, belief, events).await?;
            }
            Err(why) => throttle.skip(cx, why, &b.raw),
        }
    }
}

impl Source for AmiSource {
    fn run(self: Box<Self>, mut cx: Context) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move {
            let o = self.opts;
            let tls = self.tls;
            let mut mapper = crate::source::pbx::start(&cx, o.site.clone(), o.agents.clone(), &[])?;
            let mut throttle = Throttle::default();
            let mut sessions = 0u64;
            let mut last_ts = None;
            loop {
                let mut logged_in = false;
                let result = session(
                    &o,
                    tls.as_ref(),
                    &mut cx,
                    &mut mapper,
                    &mut throttle,
                    &mut logged_in,
                    &mut sessions,
                    &mut last_ts,
                )
                .await;
                if logged_in {
                    // A session that got going resets the backoff.
                    cx.backoff.reset();
                }
                match result {
                    Err(SessionError::Stop) => return Ok(()),
                    Err(e) => {
                        cx.skipped("disconnected");
                        tracing::warn!(source = %cx.name(), address = %o.address, error = %e, "AMI session ended; reconnecting");
                    }
                    Ok(()) => {}
                }
                let shutdown = cx.shutdown.clone();
                if !cx.backoff.wait(&shutdown).await {
                    return Ok(());
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Body, ExitReason};

    fn block(text: &str) -> Block {
        parse_block(&text.lines().map(str::to_string).collect::<Vec<_>>())
    }

    /// What joins or is answered while the lists are being sent may be
    /// missing from them: only what was believed before, and is
    /// unchanged, is closed.
    #[test]
    fn a_resync_closes_only_what_it_knew_before_and_nothing_changed() {
        let mut m = Mapper::new(None);
        for c in ["c1", "c3"] {
            map_event(
                &mut m,
                &block(&format!("Event: QueueCallerJoin\nQueue: q\nUniqueid: {c}")),
                1000,
            )
            .expect("join");
        }
        let mut r = Resync::begin(&m);
        let during = [
            "Event: QueueCallerJoin\nQueue: q\nUniqueid: c2",
            "Event: AgentConnect\nQueue: q\nUniqueid: c3\nMemberName: SIP/1\nHoldTime: 4",
            "Event: QueueEntry\nQueue: q\nUniqueid: c9\nWait: 3",
        ];
        for text in during {
            let b = block(text);
            assert!(!r.observe(&b));
            map_event(&mut m, &b, 2000).expect("mapped");
        }
        let end = block("Event: QueueStatusComplete");
        assert!(r.observe(&end));
        let c = r.close(&mut m, &end, 3000);
        assert_eq!(c.calls_exited, 1, "{:?}", c.events);
        assert!(
            matches!(&c.events[0].body, Body::CallExited { call, reason: ExitReason::Resync } if call == "c1")
        );
        assert_eq!(m.phase("c2"), Some(crate::source::pbx::Phase::Waiting));
        assert_eq!(m.phase("c9"), Some(crate::source::pbx::Phase::Waiting));
        assert_eq!(m.phase("c3"), Some(crate::source::pbx::Phase::Connected));
        // A second listing of a call already followed offers nothing.
        assert_eq!(
            map_event(
                &mut m,
                &block("Event: QueueEntry\nQueue: q\nUniqueid: c9\nWait: 5"),
                4000
            ),
            Err(Skip::Passed)
        );
    }

    /// Issue 17: a call connected before the source started is not in
    /// QueueStatus; its AgentComplete rebuilds it from HoldTime and
    /// TalkTime instead of being refused as an unknown call.
    #[test]
    fn a_call_connected_before_the_source_is_rebuilt_from_the_pbx_figures() {
        let mut m = Mapper::new(None).reconstructing();
        let evs = map_event(
            &mut m,
            &block("Event: AgentComplete\nQueue: q\nUniqueid: c7\nMemberName: SIP/1\nHoldTime: 9\nTalkTime: 95\nTimestamp: 1700000200.0"),
            0,
        )
        .expect("complete");
        let kinds: Vec<&str> = evs.iter().map(|e| e.body.type_name()).collect();
        assert_eq!(
            kinds,
            ["call_offered", "call_answered", "call_ended", "wrap_ended"]
        );
        assert_eq!(evs[0].ts_ms(), 1_700_000_200_000 - 95_000 - 9_000);
        assert_eq!(evs[1].ts_ms(), 1_700_000_200_000 - 95_000);
        assert_eq!(m.take_reconstructed(), 1);
    }

    #[test]
    fn an_abandon_repeated_after_the_end_is_counted_as_repeated() {
        let mut m = Mapper::new(None);
        map_event(
            &mut m,
            &block("Event: QueueCallerJoin\nQueue: q\nUniqueid: c9"),
            1000,
        )
        .expect("join");
        let first = map_event(
            &mut m,
            &block("Event: QueueCallerAbandon\nQueue: q\nUniqueid: c9"),
            2000,
        )
        .expect("abandon");
        assert_eq!(first[0].body.type_name(), "call_abandoned");
        // Was an empty, uncounted nothing.
        let again = map_event(
            &mut m,
            &block("Event: QueueCallerAbandon\nQueue: q\nUniqueid: c9"),
            3000,
        );
        assert!(matches!(again, Err(Skip::Repeated)), "{again:?}");
    }

    #[test]
    fn old_and_new_names_map_alike() {
        let mut m = Mapper::new(None);
        let join = map_event(&mut m, &block("Event: Join\nChannel: SIP/x\nCallerID: 0301234\nQueue: q\nPosition: 1\nUniqueid: 1.1"), 1000).expect("join");
        assert!(
            matches!(&join[0].body, Body::CallOffered { customer: Some(c), .. } if c == "0301234")
        );
        let paused = map_event(&mut m, &block("Event: QueueMemberPaused\nQueue: q\nLocation: Local/1@x\nMemberName: Agent/9\nPaused: 1\nReason: lunch"), 1000).expect("paused");
        assert!(
            matches!(&paused[0].body, Body::AgentState { agent, reason: Some(r), .. } if agent == "Agent/9" && r == "lunch")
        );
        let pause12 = map_event(&mut m, &block("Event: QueueMemberPause\nQueue: q\nMemberName: Agent/9\nInterface: SIP/9\nPaused: 0\nPausedReason:"), 1000).expect("unpause");
        assert!(matches!(
            &pause12[0].body,
            Body::AgentState {
                state: crate::event::AgentStatus::Available,
                ..
            }
        ));
    }

    #[test]
    fn hold_counts_only_for_connected_calls_and_corruption_is_survived() {
        let mut m = Mapper::new(None);
        assert!(
            map_event(&mut m, &block("Event: Hold\nUniqueid: 2.2"), 1000)
                .expect("hold")
                .is_empty(),
            "not connected"
        );
        map_event(
            &mut m,
            &block("Event: QueueCallerJoin\nUniqueid: 2.2\nQueue: q\nCallerIDNum: unknown"),
            1000,
        )
        .expect("join");
        map_event(
            &mut m,
            &block("Event: AgentConnect\nUniqueid: 2.2\nQueue: q\nMemberName: A"),
            2000,
        )
        .expect("connect");
        let h = map_event(&mut m, &block("Event: Hold\nUniqueid: 2.2"), 3000).expect("hold");
        assert!(matches!(h[0].body, Body::CallHold { .. }));
        let u = map_event(&mut m, &block("Event: Unhold\nUniqueid: 2.2"), 4000).expect("unhold");
        assert!(matches!(u[0].body, Body::CallResume { .. }));
        let corrupt = block("[218 bytes missing in capture file]Event: Newexten\nChannel: x");
        assert_eq!(map_event(&mut m, &corrupt, 1), Err(Skip::Passed));
        assert_eq!(
            map_event(&mut m, &block("Event: Frobnicate"), 1),
            Err(Skip::Unknown)
        );
        assert_eq!(
            map_event(&mut m, &block("Event: AgentConnect\nQueue: q"), 1),
            Err(Skip::Malformed)
        );
        assert_eq!(
            map_event(
                &mut m,
                &block(
                    "Timestamp: 1700000000.250\nEvent: QueueCallerAbandon\nUniqueid: 9.9\nQueue: q"
                ),
                1
            )
            .map(|e| e[0].ts_ms()),
            Ok(1_700_000_000_250)
        );
    }
}
