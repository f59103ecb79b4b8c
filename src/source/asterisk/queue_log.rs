//! Source `asterisk_queue_log`: follows app_queue's `queue_log` file.
//!
//! Lines are `epoch|callid|queue|agent|EVENT|data...`. The follower polls
//! the file, reads what was appended, survives rotation (the path now
//! names another file: the old one is read to its end first) and
//! truncation (the file shrank: start over at 0), and with a data
//! directory remembers how far it got (`sources/<name>.pos`, written after
//! each acknowledged batch) so a restart neither loses nor repeats lines;
//! a line read twice anyway is recognised by its stable id. Note that
//! queue_log's "holdtime" is the caller's wait in the queue, not hold.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Deserialize;

use crate::event::{Event, ExitReason};
use crate::source::pbx::{
    agent_table_problems, customer, stable_id, AgentTable, Belief, Figures, Mapper, Skip, Throttle,
};
use crate::source::{self, Built, Context, Kind, Problems, Setup, Source, SourceError};

pub const NAME: &str = "asterisk_queue_log";

/// The registry entry.
pub const KIND: Kind = Kind { name: NAME, build };

fn default_poll() -> Duration {
    Duration::from_millis(250)
}

/// `[[sources]]` with `type = "asterisk_queue_log"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueLogConfig {
    /// Names the checkpoint; defaults to `asterisk_queue_log-<n>`.
    pub name: Option<String>,
    pub path: PathBuf,
    /// Without a stored position, read the whole file (backfill).
    #[serde(default)]
    pub from_start: bool,
    #[serde(default = "default_poll", with = "humantime_serde")]
    pub poll_interval: Duration,
    pub site: Option<String>,
    /// Agent column → agent id, name and team (docs/sources/asterisk.md).
    #[serde(default)]
    pub agents: AgentTable,
}

fn build(table: &toml::Table, setup: &Setup) -> Result<Built, Problems> {
    let c: QueueLogConfig = source::parse(table)?;
    if c.poll_interval.is_zero() {
        return Err(vec![("poll_interval".into(), "must be > 0".into())]);
    }
    let p = agent_table_problems(&c.agents);
    if !p.is_empty() {
        return Err(p);
    }
    let name = source::default_name(c.name.clone(), NAME, setup.index);
    Ok(Built {
        kind: NAME,
        checkpoint_file: format!("{name}.pos"),
        name,
        source: Box::new(QueueLogSource { opts: c }),
    })
}

fn non_empty(events: Vec<Event>) -> Result<Vec<Event>, Skip> {
    if events.is_empty() {
        Err(Skip::Passed)
    } else {
        Ok(events)
    }
}

/// Parses one line into canonical events, or says why there are none.
pub fn map_line(m: &mut Mapper, line: &str) -> Result<Vec<Event>, Skip> {
    let f: Vec<&str> = line.trim_end_matches(['\r', '\n']).split('|').collect();
    if f.len() < 5 {
        return Err(Skip::Malformed);
    }
    let secs: i64 = f[0].trim().parse().map_err(|_| Skip::Malformed)?;
    let ms = secs.checked_mul(1000).ok_or(Skip::Malformed)?;
    let (call, queue, agent, ev) = (f[1], f[2], f[3], f[4]);
    let data = |i: usize| f.get(5 + i).copied().unwrap_or("");
    let num = |i: usize| data(i).trim().parse::<f64>().ok();
    let id = stable_id("ql", &[line.trim_end()]);
    let has = |s: &str| !s.is_empty() && s != "NONE";
    Ok(match ev {
        "ENTERQUEUE" if has(call) && has(queue) => {
            m.offered(id, ms, call, queue, customer(data(1)))
        }
        // data: holdtime (the wait), bridged channel, ringtime.
        "CONNECT" if has(call) && has(agent) => {
            let f = Figures {
                queue,
                agent,
                wait_s: num(0),
            };
            m.connected(id, ms, call, agent, f)
        }
        // data: holdtime (the wait), calltime, origposition.
        "COMPLETECALLER" | "COMPLETEAGENT" if has(call) => {
            let f = Figures {
                queue,
                agent,
                wait_s: num(0),
            };
            m.ended(&id, ms, call, num(1), f)?
        }
        // data: extension, context, holdtime, calltime, origposition.
        "TRANSFER" | "BLINDTRANSFER" if has(call) => {
            let f = Figures {
                queue,
                agent,
                wait_s: num(2),
            };
            m.ended(&id, ms, call, num(3), f)?
        }
        // The method part varies in length; calltime is the second last.
        "ATTENDEDTRANSFER" if has(call) => {
            let talk = f
                .len()
                .checked_sub(2)
                .and_then(|i| f[i].trim().parse().ok());
            m.ended(&id, ms, call, talk, Figures::default())?
        }
        // data: position, origposition, waittime (EXITWITHKEY: the key
        // first). Only ABANDON is a caller who hung up.
        "ABANDON" | "EXITWITHTIMEOUT" | "EXITWITHKEY" | "EXITEMPTY" | "LEAVEEMPTY"
        | "LEAVEUNAVAIL"
            if has(call) =>
        {
            let (exit, wait_at) = match ev {
                "ABANDON" => (None, 2),
                "EXITWITHTIMEOUT" => (Some(ExitReason::Timeout), 2),
                "EXITWITHKEY" => (Some(ExitReason::Key), 3),
                "EXITEMPTY" => (Some(ExitReason::Empty), 2),
                _ => (Some(ExitReason::Leaveempty), 2),
            };
            let f = Figures {
                queue,
                agent: "",
                wait_s: num(wait_at),
            };
            m.left(id, ms, call, f, exit)?
        }
        // Turned away before the queue (the call id, when logged, is the
        // channel's; it is not a call in the queue).
        "FULL" | "JOINEMPTY" | "JOINUNAVAIL" | "CLOSED" if has(queue) => {
            let reason = match ev {
                "FULL" => ExitReason::Full,
                "CLOSED" => ExitReason::Closed,
                _ => ExitReason::Joinempty,
            };
            m.refused(id, ms, has(call).then_some(call), queue, reason)
        }
        // data: ring time in milliseconds.
        "RINGNOANSWER" if has(call) && has(agent) => {
            let ring = data(0).trim().parse::<i64>().ok();
            m.missed(id, ms, call, agent, ring)?
        }
        "AGENTDUMP" if has(call) => m.gone(id, ms, call, None)?,
        // A logged-off member's pause lines say nothing: passed over.
        "PAUSE" | "PAUSEALL" if has(agent) => {
            non_empty(m.pause(id, ms, agent, true, Some(data(0))))?
        }
        "UNPAUSE" | "UNPAUSEALL" if has(agent) => non_empty(m.pause(id, ms, agent, false, None))?,
        "ADDMEMBER" if has(agent) => m.login(id, ms, agent, has(queue).then_some(queue)),
        "AGENTLOGIN" | "AGENTCALLBACKLOGIN" if has(agent) => m.login(id, ms, agent, None),
        "REMOVEMEMBER" if has(agent) => m.logout(id, ms, agent, has(queue).then_some(queue)),
        "AGENTLOGOFF" | "AGENTCALLBACKLOGOFF" if has(agent) => m.logout(id, ms, agent, None),
        "ENTERQUEUE"
        | "CONNECT"
        | "COMPLETECALLER"
        | "COMPLETEAGENT"
        | "TRANSFER"
        | "BLINDTRANSFER"
        | "ATTENDEDTRANSFER"
        | "ABANDON"
        | "EXITWITHTIMEOUT"
        | "EXITWITHKEY"
        | "EXITEMPTY"
        | "LEAVEEMPTY"
        | "LEAVEUNAVAIL"
        | "FULL"
        | "JOINEMPTY"
        | "JOINUNAVAIL"
        | "CLOSED"
        | "AGENTDUMP"
        | "PAUSE"
        | "PAUSEALL"
        | "UNPAUSE"
        | "UNPAUSEALL"
        | "ADDMEMBER"
        | "AGENTLOGIN"
        | "AGENTCALLBACKLOGIN"
        | "REMOVEMEMBER"
        | "AGENTLOGOFF"
        | "AGENTCALLBACKLOGOFF" => return Err(Skip::Malformed),
        "RINGCANCELED" | "CONFIGRELOAD" | "QUEUESTART" | "SYSCOMPAT" | "DID" | "INFO"
        | "EXITCODE" | "EXITHANGUP" | "PAUSEREASON" | "CALLOUTBOUND" | "AGENTCALLED" => {
            return Err(Skip::Passed)
        }
        _ => return Err(Skip::Unknown),
    })
}

/// The checkpoint: where in which file, and the calls open there (so a
/// restart knows them, and a call the source never saw can be told from
/// one it did).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Position {
    inode: u64,
    offset: u64,
    /// Open calls, visits, memberships and pauses (older files: calls).
    #[serde(flatten)]
    belief: Belief,
}

pub struct QueueLogSource {
    opts: QueueLogConfig,
}

/// Stores the position; a failure is logged and retried with the next
/// batch (the stable ids make a line read twice a duplicate).
fn save_pos(cx: &Context, p: &Position) {
    if let Err(e) = cx.checkpoint.save(p) {
        tracing::warn!(source = %cx.name(), error = %e, "cannot store the queue_log position");
    }
}

/// The open file being followed.
struct Follow {
    file: std::fs::File,
    inode: u64,
    offset: u64,
    partial: Vec<u8>,
}

impl Follow {
    fn open(path: &Path, offset: u64) -> std::io::Result<Follow> {
        let mut file = std::fs::File::open(path)?;
        let inode = file.metadata()?.ino();
        file.seek(SeekFrom::Start(offset))?;
        Ok(Follow {
            file,
            inode,
            offset,
            partial: Vec::new(),
        })
    }

    /// Complete lines appended since the last read (at most 4 MiB).
    fn read_lines(&mut self) -> std::io::Result<Vec<String>> {
        let mut buf = Vec::new();
        (&mut self.file).take(4 << 20).read_to_end(&mut buf)?;
        self.partial.extend_from_slice(&buf);
        let mut lines = Vec::new();
        let mut start = 0;
        while let Some(i) = memchr::memchr(b'\n', &self.partial[start..]) {
            let line = &self.partial[start..start + i];
            self.offset += (i + 1) as u64;
            lines.push(String::from_utf8_lossy(line).into_owned());
            start += i + 1;
        }
        self.partial.drain(..start);
        // An endless line is not buffered forever.
        if self.partial.len() > 64 * 1024 {
            self.offset += self.partial.len() as u64;
            self.partial.clear();
            lines.push(String::new());
        }
        Ok(lines)
    }
}

impl Source for QueueLogSource {
    fn run(self: Box<Self>, mut cx: Context) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move {
            let o = self.opts;
            let mut mapper = Mapper::new(o.site.clone())
                .with_agents(o.agents.clone())
                .reconstructing();
            cx.telemetry().unmapped_agents(NAME, 0);
            cx.telemetry()
                .corrected(NAME, "call_started_before_source", 0);
            cx.telemetry().corrected(NAME, "member_inferred", 0);
            let mut skipped = Throttle::default();
            let mut follow: Option<Follow> = None;
            let mut tick = tokio::time::interval(o.poll_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // An unreadable checkpoint stops the source: reading from
            // the start or the end instead would double or lose lines.
            let mut stored: Option<Position> =
                cx.checkpoint.load().map_err(|e| SourceError::Failed {
                    source_name: cx.name().to_string(),
                    message: e.to_string(),
                })?;
            if let Some(p) = &stored {
                mapper.restore_belief(p.belief.clone());
            }
            loop {
                tokio::select! {
                    _ = cx.shutdown.cancelled() => return Ok(()),
                    _ = tick.tick() => {}
                }
                let meta = std::fs::metadata(&o.path).ok();
                if follow.is_none() {
                    let Some(meta) = &meta else { continue };
                    let start = match &stored {
                        Some(p) if p.inode == meta.ino() && p.offset <= meta.len() => p.offset,
                        Some(_) => 0,
                        None if o.from_start => 0,
                        None => meta.len(),
                    };
                    match Follow::open(&o.path, start) {
                        Ok(f) => follow = Some(f),
                        Err(e) => {
                            skipped
                                .warn(cx.name(), &format!("cannot open {}: {e}", o.path.display()));
                            continue;
                        }
                    }
                }
                let Some(f) = follow.as_mut() else { continue };
                // Truncated in place: start over.
                if meta
                    .as_ref()
                    .is_some_and(|m| m.ino() == f.inode && m.len() < f.offset)
                {
                    tracing::info!(source = %cx.name(), "queue_log truncated; reading from the start");
                    cx.reconnected();
                    follow = Follow::open(&o.path, 0).ok();
                    continue;
                }
                let lines = match f.read_lines() {
                    Ok(l) => l,
                    Err(e) => {
                        skipped.warn(cx.name(), &format!("read error: {e}"));
                        follow = None;
                        continue;
                    }
                };
                let rotated = meta.as_ref().is_some_and(|m| m.ino() != f.inode);
                let (inode, offset) = (f.inode, f.offset);
                if !lines.is_empty() {
                    cx.received(lines.len());
                    let mut events = Vec::new();
                    for line in &lines {
                        if line.trim().is_empty() {
                            continue;
                        }
                        match map_line(&mut mapper, line) {
                            Ok(mut evs) => events.append(&mut evs),
                            Err(why) => skipped.skip(&cx, why, line),
                        }
                        cx.corrected("call_started_before_source", mapper.take_reconstructed());
                        cx.corrected("member_inferred", mapper.take_inferred());
                        cx.telemetry().unmapped_agents(NAME, mapper.take_unmapped());
                    }
                    if cx.submit(events, None).await.is_err() {
                        return Ok(());
                    }
                    let p = Position {
                        inode,
                        offset,
                        belief: mapper.belief(),
                    };
                    save_pos(&cx, &p);
                    stored = Some(p);
                }
                // Rotated: the old file was read to its end above; follow
                // the new one from its start.
                if rotated && lines.is_empty() {
                    tracing::info!(source = %cx.name(), "queue_log rotated; following the new file");
                    cx.reconnected();
                    follow = Follow::open(&o.path, 0).ok();
                    if let Some(f) = &follow {
                        let p = Position {
                            inode: f.inode,
                            offset: 0,
                            belief: mapper.belief(),
                        };
                        save_pos(&cx, &p);
                        stored = Some(p);
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Body;

    fn one(line: &str) -> Result<Vec<Event>, Skip> {
        map_line(&mut Mapper::new(None), line)
    }

    fn event_clock_engine() -> crate::engine::Engine {
        let mut cfg = crate::config::Config::embedded().expect("config");
        cfg.clock.mode = crate::config::ClockMode::Event;
        crate::engine::Engine::new(crate::engine::settings::Settings::from_config(&cfg))
    }

    fn apply_lines(engine: &mut crate::engine::Engine, m: &mut Mapper, lines: &[&str]) {
        for line in lines {
            for ev in map_line(m, line).expect("mapped") {
                engine.apply(&ev, None).expect("applied");
            }
        }
    }

    fn agent(engine: &crate::engine::Engine, id: &str) -> crate::snapshot::AgentView {
        let snap = crate::snapshot::build(engine, engine.clock_ms());
        snap.agents
            .into_iter()
            .find(|a| a.agent == id)
            .expect("agent")
    }

    /// ADDMEMBER to two queues, REMOVEMEMBER from one: the agent stays a
    /// member of the other, and available (issue 12).
    #[test]
    fn membership_follows_add_and_remove_per_queue() {
        let mut engine = event_clock_engine();
        let mut m = Mapper::new(None);
        apply_lines(
            &mut engine,
            &mut m,
            &[
                "1546015400|MANAGER|q1|SIP/7|ADDMEMBER|",
                "1546015401|MANAGER|q2|SIP/7|ADDMEMBER|",
                "1546015402|MANAGER|q2|SIP/7|REMOVEMEMBER|",
            ],
        );
        let a = agent(&engine, "SIP/7");
        assert_eq!(a.queues, ["q1"]);
        assert_eq!(a.state, crate::event::AgentStatus::Available);
    }

    #[test]
    fn a_logged_off_member_stays_offline_on_a_later_unpause() {
        let mut engine = event_clock_engine();
        let mut m = Mapper::new(None);
        apply_lines(
            &mut engine,
            &mut m,
            &[
                "1546015400|MANAGER|q1|SIP/7|ADDMEMBER|",
                "1546015401|NONE|NONE|SIP/7|PAUSE|lunch",
                "1546015402|NONE|NONE|SIP/7|AGENTLOGOFF|SIP/7|60",
            ],
        );
        assert_eq!(
            map_line(&mut m, "1546015403|NONE|NONE|SIP/7|UNPAUSE|"),
            Err(Skip::Passed),
            "passed over (and counted as such)"
        );
        let a = agent(&engine, "SIP/7");
        assert_eq!(a.state, crate::event::AgentStatus::Offline);
        // Logging in again makes the pause lines count again.
        apply_lines(
            &mut engine,
            &mut m,
            &[
                "1546015500|MANAGER|q1|SIP/7|ADDMEMBER|",
                "1546015501|NONE|NONE|SIP/7|PAUSE|coaching",
            ],
        );
        let a = agent(&engine, "SIP/7");
        assert_eq!(a.state, crate::event::AgentStatus::Paused);
    }

    #[test]
    fn the_agent_table_maps_members_to_agents_names_and_teams() {
        let mut table = AgentTable::new();
        table.insert(
            "SIP/201".into(),
            crate::source::pbx::AgentEntry {
                agent: Some("anna".into()),
                name: Some("Anna Schmidt".into()),
                team: Some("sales".into()),
            },
        );
        let mut m = Mapper::new(None).with_agents(table);
        let login =
            map_line(&mut m, "1546015400|MANAGER|orders|SIP/201|ADDMEMBER|").expect("login");
        assert!(
            matches!(&login[0].body, Body::AgentLogin { agent, name: Some(n), team: Some(t), queues }
                if agent == "anna" && n == "Anna Schmidt" && t == "sales" && queues[0] == "orders"),
            "{login:?}"
        );
        map_line(&mut m, "1546015410|c1|orders|NONE|ENTERQUEUE||+4930|1").expect("enter");
        let ans =
            map_line(&mut m, "1546015420|c1|orders|SIP/201|CONNECT|10|c1.2|3").expect("connect");
        assert!(
            matches!(&ans[0].body, Body::CallAnswered { agent, .. } if agent == "anna"),
            "{ans:?}"
        );
        assert_eq!(m.take_unmapped(), 0);
        // A member the table lacks keeps its PBX name, and is counted.
        let p = map_line(&mut m, "1546015430|NONE|NONE|SIP/999|PAUSE|lunch").expect("pause");
        assert!(matches!(&p[0].body, Body::AgentState { agent, .. } if agent == "SIP/999"));
        assert_eq!(m.take_unmapped(), 1);
        // A bad row is refused with its key path.
        let cfg = crate::config::Config::parse(
            "[[sources]]\ntype = \"asterisk_queue_log\"\npath = \"/x\"\n[sources.agents.\"SIP/7\"]\nagent = \"\"\n",
            "t",
        )
        .expect("parses");
        let err = crate::source::validate(&cfg).expect_err("empty agent id");
        assert!(
            err.to_string()
                .contains(r#"sources[0].agents."SIP/7".agent"#),
            "{err}"
        );
    }

    /// Issue 17: an agent seen first on a CONNECT (logged in before the
    /// read position) lands in the agent table's team, a member of the
    /// call's queue, instead of team "none".
    #[test]
    fn a_member_first_seen_answering_gets_its_team_and_queue() {
        let mut table = AgentTable::new();
        table.insert(
            "SIP/201".into(),
            crate::source::pbx::AgentEntry {
                agent: Some("anna".into()),
                name: None,
                team: Some("sales".into()),
            },
        );
        let mut engine = event_clock_engine();
        let mut m = Mapper::new(None).with_agents(table).reconstructing();
        apply_lines(
            &mut engine,
            &mut m,
            &[
                "1546015410|c1|orders|NONE|ENTERQUEUE||+4930|1",
                "1546015420|c1|orders|SIP/201|CONNECT|10|c1.2|3",
                "1546015480|c1|orders|SIP/201|COMPLETECALLER|10|60|1",
                "1546015500|c2|orders|NONE|ENTERQUEUE||+4931|1",
                "1546015505|c2|orders|SIP/201|CONNECT|5|c2.2|3",
            ],
        );
        assert_eq!(m.take_inferred(), 1, "once, not per call");
        let a = agent(&engine, "anna");
        assert_eq!(a.team, "sales");
        assert_eq!(a.queues, ["orders"]);
        assert_eq!(a.state, crate::event::AgentStatus::OnCall);
    }

    #[test]
    fn events_and_their_fields() {
        let e = one("1546015415|1.1|201|NONE|ENTERQUEUE||+13238679471|1").expect("enter");
        assert!(
            matches!(&e[0].body, Body::CallOffered { customer: Some(c), queue, .. } if c == "+13238679471" && queue == "201")
        );
        assert_eq!(e[0].ts_ms(), 1_546_015_415_000);
        let e = one("1|1.1|201|NONE|ENTERQUEUE||anonymous|1").expect("enter");
        assert!(matches!(
            &e[0].body,
            Body::CallOffered { customer: None, .. }
        ));
        let e = one("1|1.1|201|Paty Marin|COMPLETECALLER|10|122|1").expect("complete");
        assert!(matches!(
            &e[0].body,
            Body::CallEnded {
                talk_ms: Some(122_000),
                ..
            }
        ));
        assert!(
            matches!(e[1].body, Body::WrapEnded { .. }),
            "no wrap in queue_log: ends at once"
        );
        let e = one("1|1.1|q|A|BLINDTRANSFER|200|from-internal|5|60|1").expect("transfer");
        assert!(matches!(
            &e[0].body,
            Body::CallEnded {
                talk_ms: Some(60_000),
                ..
            }
        ));
        let e = one("1|1.1|q|A|ATTENDEDTRANSFER|BRIDGE|abc|5|77|1").expect("attended");
        assert!(matches!(
            &e[0].body,
            Body::CallEnded {
                talk_ms: Some(77_000),
                ..
            }
        ));
        let e = one("1|1.1|q|NONE|ABANDON|1|1|13").expect("abandon");
        assert!(matches!(e[0].body, Body::CallAbandoned { .. }));
        for (exit, want) in [
            ("EXITWITHTIMEOUT|1|1|300", ExitReason::Timeout),
            ("EXITWITHKEY|5|1|1|20", ExitReason::Key),
            ("EXITEMPTY|1|1|2", ExitReason::Empty),
        ] {
            let e = one(&format!("1|1.1|q|NONE|{exit}")).expect("exit");
            assert!(
                matches!(e[0].body, Body::CallExited { reason, .. } if reason == want),
                "{exit}: {e:?}"
            );
        }
        for (refusal, want) in [
            ("FULL|", ExitReason::Full),
            ("JOINEMPTY|", ExitReason::Joinempty),
            ("JOINUNAVAIL|", ExitReason::Joinempty),
            ("CLOSED|", ExitReason::Closed),
        ] {
            let e = one(&format!("1|1.1|q|NONE|{refusal}")).expect("refusal");
            assert!(
                matches!(&e[0].body, Body::CallRefused { reason, queue, call: Some(c), .. }
                    if *reason == want && queue == "q" && c == "1.1"),
                "{refusal}: {e:?}"
            );
        }
        let e = one("1|NONE|q|Agent/1|PAUSE|lunch").expect("pause");
        assert!(matches!(&e[0].body, Body::AgentState { reason: Some(r), .. } if r == "lunch"));
        let e = one("1|MANAGER|sales|SIP/7|ADDMEMBER|").expect("add");
        assert!(matches!(&e[0].body, Body::AgentLogin { queues, .. } if queues.len() == 1));
        assert!(matches!(
            one("1|NONE|NONE|Agent/1|AGENTLOGOFF|SIP/1|300").expect("off")[0].body,
            Body::AgentLogout { .. }
        ));
    }

    fn queue(engine: &crate::engine::Engine, name: &str) -> crate::snapshot::QueueView {
        let snap = crate::snapshot::build(engine, engine.clock_ms());
        snap.queues
            .into_iter()
            .find(|q| q.name == name)
            .expect("queue")
    }

    /// Issue 17: a timeout is not an abandon. The caller who timed out
    /// of `sales` and went on (same uniqueid, as Asterisk keeps it) to
    /// `failover` is a second call there; full and closed queues turn
    /// callers away, counted by reason but never offered.
    #[test]
    fn every_caller_who_did_not_get_through_is_counted_by_reason() {
        let mut cfg = crate::config::Config::embedded().expect("config");
        cfg.clock.mode = crate::config::ClockMode::Event;
        cfg.defaults.abandon_creates_callback = true;
        let mut engine =
            crate::engine::Engine::new(crate::engine::settings::Settings::from_config(&cfg));
        let mut m = Mapper::new(None);
        apply_lines(
            &mut engine,
            &mut m,
            &[
                "1546015400|MANAGER|sales|SIP/7|ADDMEMBER|",
                "1546015410|c1|sales|NONE|ENTERQUEUE||+4930111|1",
                "1546015710|c1|sales|NONE|EXITWITHTIMEOUT|1|1|300",
                "1546015711|c1|failover|NONE|ENTERQUEUE||+4930111|1",
                "1546015721|c1|failover|SIP/7|CONNECT|10|c1.9|2",
                "1546015781|c1|failover|SIP/7|COMPLETECALLER|10|60|1",
                "1546015800|c2|sales|NONE|ENTERQUEUE||+4930222|1",
                "1546015805|c2|sales|NONE|EXITWITHKEY|5|1|1|5",
                "1546015810|c3|sales|NONE|FULL|",
                "1546015811|NONE|sales|NONE|CLOSED|",
                "1546015820|c4|sales|NONE|ENTERQUEUE||+4930444|1",
                "1546015850|c4|sales|NONE|ABANDON|1|1|30",
            ],
        );
        let sales = queue(&engine, "sales");
        let c = sales.totals.counts;
        assert_eq!(
            (c.offered, c.answered, c.abandoned, c.exited, c.refused),
            (3, 0, 1, 2, 2),
            "{c:?}"
        );
        assert_eq!(sales.exits["timeout"], 1);
        assert_eq!(sales.exits["key"], 1);
        assert_eq!(sales.exits["full"], 1);
        assert_eq!(sales.exits["closed"], 1);
        assert_eq!(sales.exits["empty"], 0);
        // Default formula: the two exits and the abandon are not in
        // time; the refusals are not in the queue.
        assert_eq!(sales.totals.service_level, Some(0.0));
        let failover = queue(&engine, "failover");
        let f = failover.totals.counts;
        assert_eq!(
            (f.offered, f.answered, f.answered_in_sl),
            (1, 1, 1),
            "{f:?}"
        );
        assert_eq!(sales.waiting + failover.waiting, 0);
        // Only the hang-up (30 s, at the minimum wait) owes a callback;
        // the timeout after 300 s does not.
        assert_eq!(sales.callbacks.created.get("abandoned"), Some(&1));
    }

    #[test]
    fn skips_say_why() {
        assert_eq!(one("1|NONE|NONE|NONE|QUEUESTART|"), Err(Skip::Passed));
        assert_eq!(one("1|1.1|201|NONE|DID|+1555"), Err(Skip::Passed));
        // A ring of a call this mapper never saw waiting says nothing.
        assert_eq!(one("1|1.1|201|A|RINGNOANSWER|0"), Err(Skip::Passed));
        assert_eq!(one("1|1.1|201|A|WHATEVER|0"), Err(Skip::Unknown));
        assert_eq!(one("yesterday|1.1|201|A|CONNECT|1"), Err(Skip::Malformed));
        assert_eq!(one("1|1.1|201"), Err(Skip::Malformed));
        assert_eq!(
            one("1|NONE|201|NONE|CONNECT|1|2|3"),
            Err(Skip::Malformed),
            "CONNECT without an agent"
        );
    }

    #[test]
    fn an_agent_dump_is_an_abandon_while_waiting_and_an_end_when_connected() {
        let mut m = Mapper::new(None);
        map_line(&mut m, "1|1.1|q|NONE|ENTERQUEUE||x|1").expect("enter");
        assert!(matches!(
            map_line(&mut m, "2|1.1|q|A|AGENTDUMP").expect("dump")[0].body,
            Body::CallAbandoned { .. }
        ));
        map_line(&mut m, "1|2.2|q|NONE|ENTERQUEUE||x|1").expect("enter");
        map_line(&mut m, "2|2.2|q|A|CONNECT|1|3.3|1").expect("connect");
        assert!(matches!(
            map_line(&mut m, "3|2.2|q|A|AGENTDUMP").expect("dump")[0].body,
            Body::CallEnded { .. }
        ));
    }
}
