//! Source `nats_jetstream`: a durable pull consumer on a JetStream stream.
//!
//! Each message is one canonical event (the JSON of docs/events.md), as
//! `callwatch publish` or any integrator sends it, on subjects such as
//! `callwatch.events.<site>`. Messages are taken in batches and acked
//! explicitly only once the batch is durable here (the writer answered,
//! so the journal commit under the fsync policy is done): a crash before
//! that means redelivery, and a redelivered message is a duplicate by its
//! event id. A message that is not a valid event is dead-lettered,
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
    Ok(Built {
        kind: NAME,
        // The broker keeps the consumer's position; nothing local.
        checkpoint_file: String::new(),
        name,
        source: Box::new(JetStreamSource { opts: c }),
    })
}

pub struct JetStreamSource {
    opts: JetStreamConfig,
}

/// The consumer's configuration as the broker is to keep it.
fn consumer_config(
    o: &JetStreamConfig,
    durable: &str,
) -> async_nats::jetstream::consumer::pull::Config {
    use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
    let mut c = pull::Config {
        durable_name: Some(durable.to_string()),
        description: Some("callwatch daemon".into()),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
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
    #[error("shutting down")]
    Stop,
}

async fn session(
    o: &JetStreamConfig,
    client: &async_nats::Client,
    cx: &mut Context,
) -> Result<(), SessionError> {
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
    let durable = o.consumer.clone().unwrap_or_else(|| cx.name().to_string());
    let consumer = stream
        .get_or_create_consumer(&durable, consumer_config(o, &durable))
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
    tracing::info!(source = %cx.name(), stream = %o.stream, consumer = %durable, "consuming");
    cx.backoff.reset();
    let mut chunks = messages.ready_chunks(o.batch);
    loop {
        let chunk = tokio::select! {
            _ = cx.shutdown.cancelled() => return Err(SessionError::Stop),
            c = chunks.next() => match c {
                Some(c) => c,
                None => return Err(SessionError::Broker("message stream ended".into())),
            },
        };
        let mut msgs = Vec::with_capacity(chunk.len());
        for m in chunk {
            match m {
                Ok(m) => msgs.push(m),
                // Missed heartbeats and the like: the pull stream retries
                // by itself; the error is only logged.
                Err(e) => tracing::warn!(source = %cx.name(), error = %e, "pull stream"),
            }
        }
        if msgs.is_empty() {
            continue;
        }
        apply(o, &js, cx, &msgs).await?;
    }
}

/// Decodes, applies and acks one batch of messages.
async fn apply(
    o: &JetStreamConfig,
    js: &async_nats::jetstream::Context,
    cx: &mut Context,
    msgs: &[async_nats::jetstream::Message],
) -> Result<(), SessionError> {
    let bytes = msgs.iter().map(|m| m.payload.len()).sum();
    let mut batch = Decoded::with_capacity(msgs.len(), bytes);
    let mut pending = 0;
    for (i, m) in msgs.iter().enumerate() {
        batch.push(&cx.ingest, NAME, i as u64, &m.payload);
        if let Ok(info) = m.info() {
            pending = info.pending;
        }
    }
    cx.received(msgs.len());
    cx.telemetry().source_pending(NAME, pending);
    let (events, raws, numbers) = batch.into_parts();
    let outcomes = cx
        .submit(events, Some(raws))
        .await
        .map_err(|_| SessionError::Stop)?;
    let tally = numbers.tally(outcomes);
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
    // Durable now: ack everything, refused messages included (they are
    // dead letters; redelivering them would not make them valid).
    for m in msgs {
        if let Err(e) = m.ack().await {
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
            let client = o
                .connection
                .connect(cx.name(), cx.telemetry().clone(), NAME)
                .await
                .map_err(|message| SourceError::Failed {
                    source_name: cx.name().to_string(),
                    message,
                })?;
            loop {
                match session(&o, &client, &mut cx).await {
                    Err(SessionError::Stop) => break,
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
