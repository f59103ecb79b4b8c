//! Replaying NDJSON event files: offline into a fresh engine, or over
//! HTTP into a running daemon. The HTTP sender is shared with
//! `callwatch simulate --to`.

use std::io::BufRead;
use std::time::Duration;

use crate::clock::{Clock, EventClock};
use crate::config::Config;
use crate::engine::settings::Settings;
use crate::engine::Engine;
use crate::event::{self, Event};
use crate::snapshot::{self, Snapshot};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("reading the events: {0}")]
    Read(#[from] std::io::Error),
    #[error("sending to {url}: {message}")]
    Send { url: String, message: String },
}

/// Counts of an offline replay.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Summary {
    pub lines: u64,
    pub applied: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

/// Applies every line to a fresh engine (now = the latest event time) and
/// returns the final view, as `GET /api/v1/snapshot` would show it.
/// Each refusal goes to `refused` with its line number (1-based, blank
/// lines counted); with `strict` (or `ingest.strict` in `config`), fields
/// a type does not take are refused as the daemon would.
pub fn offline(
    config: &Config,
    input: impl BufRead,
    strict: bool,
    mut refused: impl FnMut(u64, &crate::reject::Rejection),
) -> Result<(Snapshot, Summary), ReplayError> {
    let strict = strict || config.ingest.strict;
    // Offline, "now" is the event clock whatever the file says: a lead
    // over the wall clock means nothing here.
    let mut config = config.clone();
    config.clock.mode = crate::config::ClockMode::Event;
    let mut engine = Engine::new(Settings::from_config(&config));
    let clock = EventClock::default();
    let mut sum = Summary::default();
    for (no, line) in input.split(b'\n').enumerate() {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        sum.lines += 1;
        let decoded = match strict {
            true => event::decode_strict(&line),
            false => event::decode(&line),
        };
        let res = decoded.and_then(|ev| engine.apply_at(&ev, &clock).1);
        match res {
            Ok(crate::engine::Applied::New) => sum.applied += 1,
            Ok(crate::engine::Applied::Duplicate) => sum.duplicates += 1,
            Err(r) => {
                sum.rejected += 1;
                refused(no as u64 + 1, &r);
            }
        }
    }
    let mut snap = snapshot::build(&engine, clock.now_ms());
    snap.digest = Some(engine.digest());
    Ok((snap, sum))
}

/// Posts NDJSON batches to a daemon.
pub struct Sender {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
    pub sent: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

#[derive(serde::Deserialize)]
struct Reply {
    accepted: u64,
    duplicates: u64,
    rejected: Vec<serde_json::Value>,
}

impl Sender {
    pub fn new(base: &str, token: Option<String>) -> Sender {
        Sender {
            client: reqwest::Client::new(),
            url: format!("{}/api/v1/events", base.trim_end_matches('/')),
            token,
            sent: 0,
            accepted: 0,
            duplicates: 0,
            rejected: 0,
        }
    }

    /// Sends one batch of NDJSON lines; retries while the daemon is not
    /// reachable or not ready, so events are not dropped on a restart.
    pub async fn send(&mut self, body: String, n: u64) -> Result<(), ReplayError> {
        let mut backoff = Duration::from_millis(100);
        for attempt in 0.. {
            let mut req = self
                .client
                .post(&self.url)
                .header("content-type", "application/x-ndjson")
                .body(body.clone());
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            let err = match req.send().await {
                Ok(resp) if resp.status().as_u16() == 503 => "daemon not ready (503)".to_string(),
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    match serde_json::from_str::<Reply>(&text) {
                        Ok(r) => {
                            self.sent += n;
                            self.accepted += r.accepted;
                            self.duplicates += r.duplicates;
                            self.rejected += r.rejected.len() as u64;
                            for rej in r.rejected.iter().take(5) {
                                tracing::warn!(%rej, "event rejected");
                            }
                            return Ok(());
                        }
                        Err(_) => {
                            return Err(ReplayError::Send {
                                url: self.url.clone(),
                                message: format!("{status}: {text}"),
                            })
                        }
                    }
                }
                Err(e) => e.to_string(),
            };
            if attempt >= 20 {
                return Err(ReplayError::Send {
                    url: self.url.clone(),
                    message: err,
                });
            }
            tracing::warn!(error = %err, "retrying in {backoff:?}");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        Ok(())
    }
}

/// Sends a file's events: as fast as possible, or paced by event time
/// divided by `speed`.
pub async fn to_url(
    input: impl BufRead,
    url: &str,
    token: Option<String>,
    speed: Option<f64>,
) -> Result<Sender, ReplayError> {
    const BATCH: u64 = 1000;
    let mut sender = Sender::new(url, token);
    let start = tokio::time::Instant::now();
    let mut first_ts: Option<i64> = None;
    let (mut body, mut n) = (String::new(), 0u64);
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        if let Some(speed) = speed.filter(|s| *s > 0.0) {
            // Unparseable lines are sent as they are: the daemon explains.
            if let Ok(ev) = event::decode(line.as_bytes()) {
                let t0 = *first_ts.get_or_insert(ev.ts_ms());
                let due = ((ev.ts_ms() - t0).max(0) as f64 / speed) as u64;
                let at = start + Duration::from_millis(due);
                if at > tokio::time::Instant::now() && n > 0 {
                    sender.send(std::mem::take(&mut body), n).await?;
                    n = 0;
                }
                tokio::time::sleep_until(at).await;
            }
        }
        body.push_str(&line);
        body.push('\n');
        n += 1;
        if n >= BATCH {
            sender.send(std::mem::take(&mut body), n).await?;
            n = 0;
        }
    }
    if n > 0 {
        sender.send(body, n).await?;
    }
    Ok(sender)
}

/// Encodes events as NDJSON into `body`.
pub fn push_ndjson(body: &mut String, ev: &Event) {
    body.push_str(&event::encode(ev));
    body.push('\n');
}
