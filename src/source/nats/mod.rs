//! Source `nats_jetstream`: a durable pull consumer on a JetStream stream.
//!
//! Each message is one canonical event (the JSON of docs/events.md), as
//! `callwatch publish` or any integrator sends it, on subjects such as
//! `callwatch.events.<site>`. Messages are taken in batches and acked
//! (one ack-all per batch) only once the batch is durable here (the writer answered,
//! so the journal commit under the fsync policy is done).
//!
//! Order matters to the engine (an answer before its offer is refused),
//! and JetStream redelivers an unacked message only after `ack_wait`,
//! behind newer ones. So the daemon keeps its own position: the stream
//! sequence up to which the state holds the stream, in its checkpoint
//! (fsynced after each durable batch). Every session, at start and after
//! any lost connection, (re)creates the durable consumer just after that
//! position: delivery is in stream order, and what the checkpoint lagged
//! behind the journal comes again as duplicates by event id. Without a
//! data directory the position starts at 0, so a restarted in-memory
//! daemon rebuilds its state from the stream.
//!
//! A message that is not a valid event is dead-lettered,
//! counted and acked, so it never blocks the ones behind it. The consumer
//! is created if missing; its name is this daemon's, so two daemons on
//! the same subjects (each with its own consumer) are an HA pair, and
//! daemons with disjoint subject filters split the sites between them
//! (docs/scale-out.md).

pub mod connect;

use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use serde::Deserialize;

use super::batch::Decoded;
use super::{Built, Context, Kind, Problems, Setup, Source, SourceError};
pub use connect::Connection;

pub const NAME: &str = "nats_jetstream";

/// The registry entry.
pub const KIND: Kind = Kind { name: NAME, build };

fn default_stream() -> String {
    "CALLWATCH".into()
}
fn default_subjects() -> Vec<String> {
    vec!["callwatch.events.>".into()]
}
fn default_batch() -> usize {
    1000
}
fn default_max_ack_pending() -> i64 {
    20_000
}
fn default_ack_wait() -> Duration {
    Duration::from_secs(30)
}

/// `[[sources]]` with `type = "nats_jetstream"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JetStreamConfig {
    /// Instance name; also the durable consumer's name unless `consumer`
    /// is set. Defaults to `nats_jetstream-<n>`.
    pub name: Option<String>,
    #[serde(flatten)]
    pub connection: Connection,
    #[serde(default = "default_stream")]
    pub stream: String,
    /// The durable consumer; give each daemon its own.
    pub consumer: Option<String>,
    /// The subjects this daemon consumes (its partition of the sites).
    /// One filter works on every JetStream server; several need 2.10+.
    #[serde(default = "default_subjects")]
    pub subjects: Vec<String>,
    /// Messages taken per batch (one journal commit).
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Messages delivered but not yet acked, at most.
    #[serde(default = "default_max_ack_pending")]
    pub max_ack_pending: i64,
    /// Redelivery after this long without an ack.
    #[serde(default = "default_ack_wait", with = "humantime_serde")]
    pub ack_wait: Duration,
    /// Create the stream (file storage, `replicas` copies) if it does not
    /// exist. Off by default: the stream is usually the operator's.
    #[serde(default)]
    pub create_stream: bool,
    #[serde(default = "one")]
    pub replicas: usize,
    /// Also republish each dead-lettered message here (with its reason in
    /// the `Callwatch-Reason` header); the local dead-letter file keeps it
    /// either way.
    pub deadletter_subject: Option<String>,
}

fn one() -> usize {
    1
}

fn build(table: &toml::Table, setup: &Setup) -> Result<Built, Problems> {
    let c: JetStreamConfig = super::parse(table)?;
    let mut p = c.connection.problems();
    if c.stream.is_empty() || c.stream.contains(['.', '*', '>', ' ']) {
        p.push((
            "stream".into(),
            format!("{:?} is not a stream name", c.stream),
        ));
    }
    if c.subjects.is_empty() {
        p.push(("subjects".into(), "at least one subject filter".into()));
    }
    if !(1..=100_000).contains(&c.batch) {
        p.push(("batch".into(), "must be 1..=100000".into()));
    }
    if c.max_ack_pending < c.batch as i64 {
        p.push((
            "max_ack_pending".into(),
            "must be at least `batch`, or batches never fill".into(),
        ));
    }
    if !(1..=5).contains(&c.replicas) {
        p.push(("replicas".into(), "must be 1..=5".into()));
    }
    if !p.is_empty() {
        return Err(p);
    }
    let name = super::default_name(c.name.clone(), NAME, setup.index);
    let stream_mode = setup.config.storage.journal == crate::config::JournalMode::Stream
        && setup.config.storage.data_dir.is_some();
    Ok(Built {
        kind: NAME,
        checkpoint_file: format!("{name}.jetstream"),
        name,
        source: Box::new(JetStreamSource {
            opts: c,
            stream_mode,
        }),
    })
}

pub struct JetStreamSource {
    opts: JetStreamConfig,
    /// `storage.journal = "stream"`: the position comes from the snapshot
    /// recovery loaded, not from the checkpoint file.
    stream_mode: bool,
}

/// The consumer's configuration as the broker is to keep it.
fn consumer_config(
    o: &JetStreamConfig,
    durable: &str,
    after: u64,
) -> async_nats::jetstream::consumer::pull::Config {
    use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
    let mut c = pull::Config {
        durable_name: Some(durable.to_string()),
        description: Some("callwatch daemon".into()),
        deliver_policy: if after == 0 {
            DeliverPolicy::All
        } else {
            DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            }
        },
        // One ack per batch, on its last message, acknowledges the whole
        // batch: delivery is in order and the batch is durable by then.
        ack_policy: AckPolicy::All,
        ack_wait: o.ack_wait,
        max_ack_pending: o.max_ack_pending,
        ..Default::default()
    };
    match o.subjects.as_slice() {
        [one] if one.as_str() != ">" => c.filter_subject = one.clone(),
        [_] => {}
        many => c.filter_subjects = many.to_vec(),
    }
    c
}

/// Why a consuming session ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("{0}")]
    Broker(String),
    /// The state cannot be brought up to date from the stream.
    #[error("{0}")]
    Fatal(String),
    #[error("shutting down")]
    Stop,
}

/// The checkpoint: how far into which stream the state goes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Position {
    stream: String,
    sequence: u64,
}

async fn session(
    o: &JetStreamConfig,
    client: &async_nats::Client,
    lost: &mut tokio::sync::watch::Receiver<u64>,
    cx: &mut Context,
    at: &mut u64,
) -> Result<(), SessionError> {
    lost.borrow_and_update();
    let js = async_nats::jetstream::new(client.clone());
    let broker = |e: &dyn std::fmt::Display| SessionError::Broker(e.to_string());
    let stream = match js.get_stream(&o.stream).await {
        Ok(s) => s,
        Err(_) if o.create_stream => js
            .get_or_create_stream(async_nats::jetstream::stream::Config {
                name: o.stream.clone(),
                subjects: o.subjects.clone(),
                num_replicas: o.replicas,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(|e| broker(&e))?,
        Err(e) => return Err(broker(&format!("stream {}: {e}", o.stream))),
    };
    // Resuming after `at` needs the stream to still hold `at + 1`.
    let first = stream.cached_info().state.first_sequence;
    if *at > 0 && first > *at + 1 {
        return Err(SessionError::Fatal(format!(
            "stream {} starts at sequence {first}, but this daemon's state ends at {}: messages {}..{first} are gone (retention); the state cannot be brought up to date. Rebuild it: stop, move the data directory aside, start again",
            o.stream,
            *at,
            *at + 1
        )));
    }
    let durable = o.consumer.clone().unwrap_or_else(|| cx.name().to_string());
    // Start over at our own position (see the module doc); the old
    // consumer's unacked deliveries would come back out of order.
    match stream.delete_consumer(&durable).await {
        Ok(_) => {}
        Err(e) if e.to_string().contains("not found") => {}
        Err(e) => return Err(broker(&format!("consumer {durable}: {e}"))),
    }
    let consumer: async_nats::jetstream::consumer::PullConsumer = stream
        .create_consumer(consumer_config(o, &durable, *at))
        .await
        .map_err(|e| broker(&format!("consumer {durable}: {e}")))?;
    let messages = consumer
        .stream()
        .max_messages_per_batch(o.batch)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .map_err(|e| broker(&e))?;
    tracing::info!(source = %cx.name(), stream = %o.stream, consumer = %durable, after = *at, "consuming");
    cx.backoff.reset();
    let mut chunks = messages.ready_chunks(o.batch);
    let mut saved = std::time::Instant::now();
    loop {
        let chunk = tokio::select! {
            _ = cx.shutdown.cancelled() => return Err(SessionError::Stop),
            _ = lost.changed() => return Err(SessionError::Broker("connection lost".into())),
            c = chunks.next() => match c {
                Some(c) => c,
                None => return Err(SessionError::Broker("message stream ended".into())),
            },
        };
        let mut msgs = Vec::with_capacity(o.batch);
        let mut failed: Option<String> = None;
        let take = |chunk: Vec<Result<async_nats::jetstream::Message, _>>,
                    msgs: &mut Vec<async_nats::jetstream::Message>,
                    failed: &mut Option<String>| {
            for m in chunk {
                match m {
                    Ok(m) => msgs.push(m),
                    Err(e) => *failed = Some(format!("{e}")),
                }
            }
        };
        take(chunk, &mut msgs, &mut failed);
        // Messages arrive from the broker a few at a time: linger a
        // moment for more, so that a busy stream makes full batches (one
        // journal commit each) while a quiet one waits at most LINGER.
        let until = tokio::time::Instant::now() + LINGER;
        while msgs.len() < o.batch && failed.is_none() {
            match tokio::time::timeout_at(until, chunks.next()).await {
                Ok(Some(c)) => take(c, &mut msgs, &mut failed),
                Ok(None) | Err(_) => break,
            }
        }
        // What came before an error is in order; apply it, then start
        // over from the position (a message may have been lost in flight).
        if !msgs.is_empty() {
            apply(o, &js, cx, &msgs, at).await?;
            if saved.elapsed() >= SAVE_EVERY || failed.is_some() {
                save_position(o, cx, *at);
                saved = std::time::Instant::now();
            }
        }
        if let Some(e) = failed {
            return Err(SessionError::Broker(format!("pull stream: {e}")));
        }
    }
}

/// Longest wait for more messages before a batch goes to the writer.
const LINGER: Duration = Duration::from_millis(2);
/// The position file is written at most this often (and when a session
/// ends): it may lag the journal, which only means duplicates, recognised
/// by event id, after a crash.
const SAVE_EVERY: Duration = Duration::from_millis(250);

fn save_position(o: &JetStreamConfig, cx: &Context, at: u64) {
    let pos = Position {
        stream: o.stream.clone(),
        sequence: at,
    };
    if let Err(e) = cx.checkpoint.save(&pos) {
        // Not fatal: an older position only means duplicates on restart.
        tracing::warn!(source = %cx.name(), error = %e, "cannot store the stream position");
    }
}

/// Decodes, applies and acks one batch of messages, and moves the
/// position past it.
async fn apply(
    o: &JetStreamConfig,
    js: &async_nats::jetstream::Context,
    cx: &mut Context,
    msgs: &[async_nats::jetstream::Message],
    at: &mut u64,
) -> Result<(), SessionError> {
    let bytes = msgs.iter().map(|m| m.payload.len()).sum();
    let mut batch = Decoded::with_capacity(msgs.len(), bytes);
    let (mut pending, mut seq) = (0, *at);
    let mut taken = 0;
    for (i, m) in msgs.iter().enumerate() {
        let Ok(info) = m.info() else {
            cx.skipped("not_jetstream");
            continue;
        };
        pending = info.pending;
        if info.stream_sequence <= seq {
            // Already in the state (a redelivery): ack, do not apply.
            cx.skipped("redelivered");
            continue;
        }
        seq = info.stream_sequence;
        taken += 1;
        batch.push(&cx.ingest, NAME, i as u64, &m.payload);
    }
    cx.received(taken);
    cx.telemetry().source_pending(NAME, pending);
    let (events, raws, numbers) = batch.into_parts();
    let outcomes = cx
        .submit(events, Some(raws))
        .await
        .map_err(|_| SessionError::Stop)?;
    let tally = numbers.tally(outcomes);
    *at = seq;
    cx.ingest.position(cx.name(), seq);
    if let Some(subject) = &o.deadletter_subject {
        for (i, r) in &tally.refused {
            let mut h = async_nats::HeaderMap::new();
            h.insert("Callwatch-Reason", r.reason.as_str());
            let m = &msgs[*i as usize];
            if let Err(e) = js
                .publish_with_headers(subject.clone(), h, m.payload.clone())
                .await
            {
                tracing::warn!(source = %cx.name(), error = %e, "cannot republish a dead letter");
            }
        }
    }
    // Durable now: ack the batch, refused messages included (they are
    // dead letters; redelivering them would not make them valid).
    if let Some(last) = msgs.last() {
        if let Err(e) = last.ack().await {
            // Not acked means redelivered later: a duplicate, not a loss.
            tracing::warn!(source = %cx.name(), error = %e, "ack failed");
        }
    }
    Ok(())
}

impl Source for JetStreamSource {
    fn run(self: Box<Self>, mut cx: Context) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move {
            let o = self.opts;
            let fail = |name: &str, message: String| SourceError::Failed {
                source_name: name.to_string(),
                message,
            };
            let stored: Option<Position> = cx
                .checkpoint
                .load()
                .map_err(|e| fail(cx.name(), e.to_string()))?;
            let stored = if self.stream_mode {
                // The snapshot's position, not the file's (which may be
                // ahead of the snapshot, the state recovered).
                let p = cx.ingest.recovered_position(cx.name()).await;
                (p > 0).then(|| Position {
                    stream: o.stream.clone(),
                    sequence: p,
                })
            } else {
                stored
            };
            let mut at = match stored {
                Some(p) if p.stream == o.stream => p.sequence,
                Some(p) => {
                    return Err(fail(
                        cx.name(),
                        format!(
                            "the checkpoint is for stream {:?}, not {:?}; remove it to consume the new stream from its start",
                            p.stream, o.stream
                        ),
                    ))
                }
                None => 0,
            };
            if at > 0 {
                cx.ingest.position(cx.name(), at);
            }
            let (client, mut lost) = o
                .connection
                .connect(cx.name(), cx.telemetry().clone(), NAME)
                .await
                .map_err(|m| fail(cx.name(), m))?;
            loop {
                let ended = session(&o, &client, &mut lost, &mut cx, &mut at).await;
                if at > 0 {
                    save_position(&o, &cx, at);
                }
                match ended {
                    Err(SessionError::Stop) => break,
                    Err(SessionError::Fatal(m)) => return Err(fail(cx.name(), m)),
                    Ok(()) => {}
                    Err(SessionError::Broker(e)) => {
                        cx.skipped("disconnected");
                        tracing::warn!(source = %cx.name(), error = %e, "JetStream session ended; retrying");
                    }
                }
                let shutdown = cx.shutdown.clone();
                if !cx.backoff.wait(&shutdown).await {
                    break;
                }
            }
            // Acks still buffered reach the broker before we go.
            let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
            Ok(())
        })
    }
}
