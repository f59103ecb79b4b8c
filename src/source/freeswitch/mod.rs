//! Source `freeswitch_esl`: an inbound Event Socket client of FreeSWITCH
//! for mod_callcenter (docs/sources/freeswitch.md).
//!
//! Connects to `mod_event_socket`, authenticates, reads the module's
//! lists (`callcenter_config agent list`, `tier list`, `member list`)
//! and makes the tracker agree with them (what the module no longer lists
//! is closed, what it lists is opened), then subscribes to
//! `CUSTOM callcenter::info` and maps each event (`map.rs`). Reconnects
//! with the sources' shared backoff and resynchronises after each
//! connect, so what changed while disconnected is taken from FreeSWITCH
//! rather than guessed. What the source believes is kept in its
//! checkpoint, so that the first resync after a restart closes what ended
//! meanwhile.

pub mod frame;
pub mod map;

use futures_util::future::BoxFuture;
use serde::Deserialize;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::event::Event;
use crate::source::pbx::{agent_table_problems, AgentTable, Belief, Mapper, Throttle};
use crate::source::{self, Built, Context, Kind, Problems, Setup, Source, SourceError};
use frame::FrameError;
use map::{Listing, Tiers, Timed};

pub const NAME: &str = "freeswitch_esl";

/// The registry entry.
pub const KIND: Kind = Kind { name: NAME, build };

/// `[[sources]]` with `type = "freeswitch_esl"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EslConfig {
    pub name: Option<String>,
    /// host:port of mod_event_socket, usually port 8021.
    pub address: String,
    /// event_socket.conf.xml `password`.
    pub password: String,
    pub site: Option<String>,
    /// mod_callcenter agent name (`1000@default`) → agent id, name, team.
    #[serde(default)]
    pub agents: AgentTable,
}

/// How long the server may take to answer a command or a list.
const REPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn build(table: &toml::Table, setup: &Setup) -> Result<Built, Problems> {
    let c: EslConfig = source::parse(table)?;
    if !c.address.contains(':') {
        return Err(vec![(
            "address".into(),
            format!("{:?} is not host:port", c.address),
        )]);
    }
    if c.password.is_empty() || c.password.contains(['\n', '\r']) {
        return Err(vec![(
            "password".into(),
            "must be one line, not empty".into(),
        )]);
    }
    let p = agent_table_problems(&c.agents);
    if !p.is_empty() {
        return Err(p);
    }
    let name = source::default_name(c.name.clone(), NAME, setup.index);
    Ok(Built {
        kind: NAME,
        checkpoint_file: format!("{name}.esl"),
        name,
        source: Box::new(EslSource { opts: c }),
    })
}

pub struct EslSource {
    opts: EslConfig,
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("authentication refused: {0}")]
    Auth(String),
    #[error("{0} answered {1:?}")]
    Command(&'static str, String),
    #[error("no answer to {0} within 10 s")]
    Timeout(&'static str),
    #[error("disconnected by the server")]
    Disconnected,
    #[error("shutting down")]
    Stop,
}

type Reader = BufReader<tokio::net::tcp::OwnedReadHalf>;

/// Reads frames until one of `want` type, passing over events (before the
/// subscription there are none; a stray one is of no use yet).
async fn until(
    r: &mut Reader,
    want: &str,
    what: &'static str,
) -> Result<frame::Frame, SessionError> {
    let wait = async {
        loop {
            let f = frame::read(r).await?;
            match f.content_type() {
                t if t == want => return Ok(f),
                "text/disconnect-notice" | "text/rude-rejection" => {
                    return Err(SessionError::Disconnected)
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(REPLY_TIMEOUT, wait)
        .await
        .map_err(|_| SessionError::Timeout(what))?
}

/// A command with a `command/reply` answer that must say `+OK`.
async fn command(
    r: &mut Reader,
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    line: &str,
    what: &'static str,
) -> Result<(), SessionError> {
    w.write_all(format!("{line}\n\n").as_bytes()).await?;
    let f = until(r, "command/reply", what).await?;
    let reply = f.headers.get("Reply-Text");
    if reply.starts_with("+OK") {
        Ok(())
    } else {
        Err(SessionError::Command(what, reply.to_string()))
    }
}

/// An `api` command's answer, as a table.
async fn list(
    r: &mut Reader,
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    what: &'static str,
) -> Result<Vec<std::collections::HashMap<String, String>>, SessionError> {
    w.write_all(format!("api callcenter_config {what}\n\n").as_bytes())
        .await?;
    let f = until(r, "api/response", what).await?;
    map::table(&f.body).map_err(|e| SessionError::Command(what, e))
}

/// Submits `events`, then keeps `belief` (what the tracker believes
/// after them) in the checkpoint.
async fn submit(cx: &mut Context, belief: Belief, events: Vec<Event>) -> Result<(), SessionError> {
    if events.is_empty() {
        return Ok(());
    }
    if cx.submit(events, None).await.is_err() {
        return Err(SessionError::Stop);
    }
    if let Err(e) = cx.checkpoint.save(&belief) {
        tracing::warn!(source = %cx.name(), error = %e, "cannot store what the FreeSWITCH source knows");
    }
    Ok(())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What the source keeps from one session to the next.
#[derive(Default)]
struct State {
    mapper: Mapper,
    tiers: Tiers,
    throttle: Throttle,
    sessions: u64,
    /// The newest time the module stamped.
    last_ts: Option<i64>,
}

async fn session(
    o: &EslConfig,
    cx: &mut Context,
    st: &mut State,
    authenticated: &mut bool,
) -> Result<(), SessionError> {
    let State {
        mapper,
        tiers,
        throttle,
        sessions,
        last_ts,
    } = st;
    let stream = TcpStream::connect(&o.address).await?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    until(&mut r, "auth/request", "the connect").await?;
    w.write_all(format!("auth {}\n\n", o.password).as_bytes())
        .await?;
    let f = until(&mut r, "command/reply", "auth").await?;
    let reply = f.headers.get("Reply-Text");
    if !reply.starts_with("+OK") {
        return Err(SessionError::Auth(reply.to_string()));
    }
    *authenticated = true;
    *sessions += 1;
    if *sessions > 1 {
        cx.reconnected();
    }
    tracing::info!(source = %cx.name(), address = %o.address, "ESL connected; resynchronising with callcenter_config");
    // The lists before the subscription: an event after them describes a
    // change after them. A call that joins in between is rebuilt from its
    // answer's times (counted as started before the source).
    let listing = Listing {
        agents: list(&mut r, &mut w, "agent list").await?,
        tiers: list(&mut r, &mut w, "tier list").await?,
        members: list(&mut r, &mut w, "member list").await?,
    };
    // The lists have no time: they are as old as the module's last
    // stamp, where there was one (receipt time would put the corrections
    // after later events when the two clocks differ).
    let c = map::resync(mapper, tiers, &listing, last_ts.unwrap_or_else(now_ms));
    cx.corrected("call_exited", c.calls_exited);
    cx.corrected("call_ended", c.calls_ended);
    cx.corrected("call_started_before_source", c.calls_found);
    cx.corrected("member_removed", c.members_removed);
    cx.corrected("member_added", c.members_added);
    cx.corrected("member_inferred", mapper.take_inferred());
    cx.corrected("pause_set", c.pauses_set);
    cx.corrected("pause_cleared", c.pauses_cleared);
    if !c.events.is_empty() {
        cx.telemetry().receipt_timed(NAME, c.events.len() as u64);
        tracing::info!(source = %cx.name(), calls_exited = c.calls_exited, calls_ended = c.calls_ended, calls_found = c.calls_found, members_removed = c.members_removed, members_added = c.members_added, "ESL resync made the state agree with mod_callcenter");
        let belief = mapper.belief();
        submit(cx, belief, c.events).await?;
    }
    command(
        &mut r,
        &mut w,
        "event plain CUSTOM callcenter::info",
        "event",
    )
    .await?;
    loop {
        let f = tokio::select! {
            _ = cx.shutdown.cancelled() => return Err(SessionError::Stop),
            f = frame::read(&mut r) => f?,
        };
        match f.content_type() {
            "text/event-plain" => {}
            "text/disconnect-notice" | "text/rude-rejection" => {
                return Err(SessionError::Disconnected)
            }
            // Replies and anything else: not events.
            _ => continue,
        }
        cx.received(1);
        let h = frame::event(&f.body);
        let mapped = map::map_event(mapper, tiers, &h, now_ms());
        cx.telemetry().unmapped_agents(NAME, mapper.take_unmapped());
        cx.corrected("call_started_before_source", mapper.take_reconstructed());
        cx.corrected("member_inferred", mapper.take_inferred());
        match mapped {
            Ok((events, timed)) => {
                if timed == Timed::Receipt && !events.is_empty() {
                    cx.telemetry().receipt_timed(NAME, events.len() as u64);
                }
                if timed == Timed::Pbx {
                    let newest = events.iter().map(|e| e.ts.timestamp_millis()).max();
                    *last_ts = newest.max(*last_ts);
                }
                let belief = mapper.belief();
                submit(cx, belief, events).await?;
            }
            Err(why) => throttle.skip(cx, why, &f.body),
        }
    }
}

impl Source for EslSource {
    fn run(self: Box<Self>, mut cx: Context) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move {
            let o = self.opts;
            let mapper = crate::source::pbx::start(
                &cx,
                o.site.clone(),
                o.agents.clone(),
                &["member_added", "pause_set"],
            )?;
            let mut st = State {
                mapper,
                ..State::default()
            };
            loop {
                let mut authenticated = false;
                let result = session(&o, &mut cx, &mut st, &mut authenticated).await;
                if authenticated {
                    cx.backoff.reset();
                }
                match result {
                    Err(SessionError::Stop) => return Ok(()),
                    Err(e) => {
                        cx.skipped("disconnected");
                        tracing::warn!(source = %cx.name(), address = %o.address, error = %e, "ESL session ended; reconnecting");
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
