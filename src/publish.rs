//! `callwatch publish`: the edge publisher.
//!
//! Runs near a PBX with the ordinary sources (TCP and HTTP ingest, the
//! `[[sources]]` entries such as Asterisk queue_log and AMI) and sends the
//! canonical events to JetStream instead of applying them. Every batch a
//! source hands in is first appended to a local journal and fsynced (the
//! sender gets its ACK only then), and a sender task publishes the
//! journal in order with `Nats-Msg-Id` = event id, so the broker's
//! deduplication and callwatch's own agree when something is resent. A
//! fsynced checkpoint says how far the broker has acknowledged; sent
//! segments are removed. While the broker is unreachable the journal
//! grows up to `buffer_max_bytes`; a batch beyond that is refused to its
//! sender (TCP `ERR storage`, HTTP 503, PBX sources wait and retry),
//! never dropped. docs/scale-out.md has the topology.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError, Problem};
use crate::journal::{Journal, Record};
use crate::metric::Telemetry;
use crate::source::backoff::Backoff;
use crate::source::checkpoint::Checkpoint;
use crate::source::nats::Connection;
use crate::source::tcp::TcpSource;
use crate::source::Running;
use crate::writer::{Batches, IngestError, Outcome, Shared};
use crate::Listeners;

fn default_subject() -> String {
    "callwatch.events.{site}".into()
}
fn default_stream() -> String {
    "CALLWATCH".into()
}
fn default_buffer() -> u64 {
    256 << 20
}
fn default_window() -> usize {
    256
}
fn one() -> usize {
    1
}

/// `[publish]`: where and how the edge publisher sends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    #[serde(flatten)]
    pub connection: Connection,
    /// `{site}` is the event's site (else `defaults.site`).
    #[serde(default = "default_subject")]
    pub subject: String,
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Create the stream (on `callwatch.events.>`) if it is missing.
    #[serde(default)]
    pub create_stream: bool,
    #[serde(default = "one")]
    pub replicas: usize,
    /// Unsent events kept at most (bytes of their JSON).
    #[serde(default = "default_buffer")]
    pub buffer_max_bytes: u64,
    /// Messages awaiting the broker's ack at once.
    #[serde(default = "default_window")]
    pub window: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("publish needs a data directory for its buffer (--data-dir or storage.data_dir)")]
    NoDataDir,
    #[error("edge buffer {dir}: {message}")]
    Buffer { dir: String, message: String },
    #[error("http server: {0}")]
    Http(std::io::Error),
    #[error("source {0}")]
    Source(String),
    #[error("tls: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

impl PublishConfig {
    /// Reads `[publish]` of the configuration, with its problems by key.
    pub fn of(config: &Config) -> Result<PublishConfig, ConfigError> {
        let problem =
            |path: String, message: String| ConfigError::Invalid(vec![Problem { path, message }]);
        let Some(t) = &config.publish else {
            return Err(problem(
                "publish".into(),
                "missing: `callwatch publish` needs a [publish] section".into(),
            ));
        };
        let c: PublishConfig = crate::source::parse(t).map_err(|p| {
            ConfigError::Invalid(
                p.into_iter()
                    .map(|(k, m)| Problem {
                        path: format!("publish.{k}"),
                        message: m,
                    })
                    .collect(),
            )
        })?;
        let mut p: Vec<Problem> = c
            .connection
            .problems()
            .into_iter()
            .map(|(k, m)| Problem {
                path: format!("publish.{k}"),
                message: m,
            })
            .collect();
        if c.subject.is_empty() || c.subject.contains(['*', '>', ' ']) {
            p.push(Problem {
                path: "publish.subject".into(),
                message: format!("{:?} is not a subject to publish on", c.subject),
            });
        }
        if c.buffer_max_bytes < 1 << 20 {
            p.push(Problem {
                path: "publish.buffer_max_bytes".into(),
                message: "at least 1 MiB".into(),
            });
        }
        if !(1..=10_000).contains(&c.window) {
            p.push(Problem {
                path: "publish.window".into(),
                message: "must be 1..=10000".into(),
            });
        }
        if p.is_empty() {
            Ok(c)
        } else {
            Err(ConfigError::Invalid(p))
        }
    }
}

/// Journaled events not yet acknowledged by the broker, in order.
struct Queue {
    items: Mutex<VecDeque<(u64, bytes::Bytes)>>,
    bytes: std::sync::atomic::AtomicU64,
    more: Notify,
}

impl Queue {
    fn len(&self) -> usize {
        self.items.lock().len()
    }
}

/// The buffer thread: journals each batch, then answers it.
fn buffer(
    mut batches: Batches,
    mut journal: Journal,
    queue: Arc<Queue>,
    max_bytes: u64,
    telemetry: Arc<Telemetry>,
) {
    while let Some(b) = batches.blocking_next() {
        let size = b.encoded.byte_len() as u64;
        if queue.bytes.load(Ordering::Acquire) + size > max_bytes {
            telemetry.storage_error();
            b.refuse(IngestError::Storage(format!(
                "the edge buffer is full ({max_bytes} bytes unsent: the broker is unreachable or slow; publish.buffer_max_bytes)"
            )));
            continue;
        }
        let first = journal.next();
        let now = chrono::Utc::now().timestamp_millis();
        for p in b.encoded.iter() {
            journal.append_encoded(now, p);
        }
        if let Err(e) = journal.commit() {
            journal.discard();
            telemetry.storage_error();
            b.refuse(IngestError::Storage(format!(
                "edge buffer write failed: {e}"
            )));
            continue;
        }
        {
            let mut q = queue.items.lock();
            for (i, p) in b.encoded.iter().enumerate() {
                q.push_back((first + i as u64, bytes::Bytes::copy_from_slice(p)));
            }
            telemetry.publish_buffered(q.len() as u64);
        }
        queue.bytes.fetch_add(size, Ordering::AcqRel);
        queue.more.notify_one();
        let n = b.events.len();
        b.answer(vec![Outcome::Applied; n]);
    }
}

/// The subject of one event.
fn subject_of(template: &str, payload: &[u8], default_site: &str) -> Option<(String, String)> {
    let ev = crate::event::decode(payload).ok()?;
    let site = ev.site.as_deref().unwrap_or(default_site);
    Some((template.replace("{site}", site), ev.id.to_string()))
}

/// Publishes the queue in order, forever; acknowledged events leave the
/// queue and the checkpoint moves past them.
#[allow(clippy::too_many_arguments)]
async fn send(
    cfg: PublishConfig,
    default_site: String,
    queue: Arc<Queue>,
    checkpoint: Checkpoint,
    journal_dir: PathBuf,
    telemetry: Arc<Telemetry>,
    stop: CancellationToken,
    connected: Arc<AtomicBool>,
) {
    let (client, _lost) = match cfg
        .connection
        .connect("callwatch-publish", telemetry.clone(), "publish")
        .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot set up the NATS connection");
            return;
        }
    };
    let js = async_nats::jetstream::new(client.clone());
    let mut backoff = Backoff::default();
    let mut stream_ok = !cfg.create_stream;
    loop {
        if queue.len() == 0 {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = queue.more.notified() => {}
            }
            continue;
        }
        if !stream_ok {
            let made = js
                .get_or_create_stream(async_nats::jetstream::stream::Config {
                    name: cfg.stream.clone(),
                    subjects: vec![cfg.subject.replace("{site}", ">")],
                    num_replicas: cfg.replicas,
                    duplicate_window: Duration::from_secs(120),
                    ..Default::default()
                })
                .await;
            match made {
                Ok(_) => stream_ok = true,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reach the stream; retrying");
                    connected.store(false, Ordering::Release);
                    if !backoff.wait(&stop).await {
                        return;
                    }
                    continue;
                }
            }
        }
        let window: Vec<(u64, bytes::Bytes)> = queue
            .items
            .lock()
            .iter()
            .take(cfg.window)
            .cloned()
            .collect();
        let mut acks = Vec::with_capacity(window.len());
        let mut failed = None;
        for (_, payload) in &window {
            let Some((subject, id)) = subject_of(&cfg.subject, payload, &default_site) else {
                // Validated on the way in; cannot happen short of a bug.
                tracing::error!("an unreadable event in the edge buffer is sent as it is");
                acks.push(None);
                continue;
            };
            let mut h = async_nats::HeaderMap::new();
            h.insert("Nats-Msg-Id", id.as_str());
            match js.publish_with_headers(subject, h, payload.clone()).await {
                Ok(f) => acks.push(Some(f)),
                Err(e) => {
                    failed = Some(e.to_string());
                    break;
                }
            }
        }
        let mut acked = 0usize;
        if failed.is_none() {
            for f in acks {
                let Some(f) = f else {
                    acked += 1;
                    continue;
                };
                match tokio::time::timeout(Duration::from_secs(5), f).await {
                    Ok(Ok(_)) => acked += 1,
                    Ok(Err(e)) => {
                        failed = Some(e.to_string());
                        break;
                    }
                    Err(_) => {
                        failed = Some("no ack from the broker within 5 s".into());
                        break;
                    }
                }
            }
        }
        if acked > 0 {
            let (last, bytes) = {
                let mut q = queue.items.lock();
                let mut bytes = 0u64;
                let mut last = 0;
                for _ in 0..acked {
                    if let Some((seq, p)) = q.pop_front() {
                        bytes += p.len() as u64;
                        last = seq;
                    }
                }
                (last, bytes)
            };
            queue.bytes.fetch_sub(bytes, Ordering::AcqRel);
            if let Err(e) = checkpoint.save(&(last + 1)) {
                // An older checkpoint only means resending (deduplicated).
                tracing::warn!(error = %e, "cannot store the publish position");
            }
            let _ = remove_sent(&journal_dir, last + 1);
            telemetry.publish_buffered(queue.len() as u64);
            telemetry.publish_sent(acked as u64);
            connected.store(true, Ordering::Release);
            backoff.reset();
        }
        if let Some(e) = failed {
            tracing::warn!(error = %e, unsent = queue.len(), "publishing paused; the buffer keeps what is unsent");
            connected.store(false, Ordering::Release);
            if !backoff.wait(&stop).await {
                return;
            }
        }
    }
}

/// Removes journal segments whose records were all acknowledged.
fn remove_sent(dir: &Path, sent: u64) -> std::io::Result<()> {
    let segs = crate::journal::segments(dir)?;
    for w in segs.windows(2) {
        if w[1].0 <= sent {
            std::fs::remove_file(&w[0].1)?;
        }
    }
    Ok(())
}

#[derive(Clone)]
struct Edge {
    ingest: crate::writer::Ingest,
    limits: crate::api::IngestLimits,
    telemetry: Arc<Telemetry>,
    ready: Arc<AtomicBool>,
}

async fn metrics(State(e): State<Edge>) -> Response {
    let mut buf = String::new();
    e.telemetry.render(&mut buf);
    buf.into_response()
}

async fn events(
    State(e): State<Edge>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Response {
    crate::api::ingest_request(&e.ingest, &e.limits, headers, body).await
}

/// Webhook sources behind the edge: their events go to the buffer and on
/// to the stream like every other source's.
async fn source_hook(
    State(e): State<Edge>,
    axum::extract::Path(name): axum::extract::Path<String>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Response {
    crate::api::source_request(&e.ingest, e.limits.body_timeout, &name, &uri, headers, body).await
}

async fn readyz(State(e): State<Edge>) -> Response {
    if e.ready.load(Ordering::Acquire) {
        "ready\n".into_response()
    } else {
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

/// Runs the edge publisher until `shutdown` completes.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), PublishError> {
    crate::source::validate(&config)?;
    let cfg = PublishConfig::of(&config)?;
    let built = crate::source::build_all(&config).map_err(ConfigError::Invalid)?;
    let data = config
        .storage
        .data_dir
        .clone()
        .ok_or(PublishError::NoDataDir)?;
    let dir = data.join("publish");
    let journal_dir = dir.join("journal");
    let buffer_err = |message: String| PublishError::Buffer {
        dir: dir.display().to_string(),
        message,
    };
    std::fs::create_dir_all(&journal_dir).map_err(|e| buffer_err(e.to_string()))?;
    let checkpoint = Checkpoint::new(Some(dir.clone()), "sent");
    let sent: u64 = checkpoint
        .load()
        .map_err(|e| buffer_err(e.to_string()))?
        .unwrap_or(0);
    // Recover what is unsent. Damage other than a torn tail (never
    // acknowledged) stops the start: those events were acknowledged.
    let mut items = VecDeque::new();
    let mut bytes = 0u64;
    let quarantine = dir.join("quarantine");
    let opts = crate::journal::ReplayOptions {
        from: sent,
        quarantine: Some(&quarantine),
    };
    let scan = crate::journal::replay(&journal_dir, opts, |seq, r| {
        if let Record::Event { event, .. } = r {
            let p = bytes::Bytes::from(crate::event::encode(&event));
            bytes += p.len() as u64;
            items.push_back((seq, p));
        }
    })
    .map_err(|e| buffer_err(e.to_string()))?;
    let (torn, fatal): (Vec<_>, Vec<_>) = scan
        .findings
        .iter()
        .partition(|f| matches!(f, crate::journal::Finding::TornTail { .. }));
    if !fatal.is_empty() {
        return Err(buffer_err(format!(
            "damaged, acknowledged events cannot be recovered (copies in {}): {}",
            quarantine.display(),
            fatal
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    for f in torn {
        tracing::warn!("{f}");
    }
    if let Some((path, at)) = &scan.cut {
        crate::journal::cut_tail(path, *at, Some(&quarantine))
            .map_err(|e| buffer_err(e.to_string()))?;
    }
    let next = scan.next;
    let fsync = config.storage.fsync_policy().map_err(&buffer_err)?;
    let journal = Journal::open(
        &journal_dir,
        next.max(sent),
        fsync,
        config.storage.segment_bytes,
    )
    .map_err(|e| buffer_err(e.to_string()))?;
    tracing::info!(unsent = items.len(), "edge buffer recovered");
    let telemetry = Telemetry::new();
    let queue = Arc::new(Queue {
        items: Mutex::new(items),
        bytes: std::sync::atomic::AtomicU64::new(bytes),
        more: Notify::new(),
    });
    telemetry.publish_buffered(queue.len() as u64);
    telemetry.publish_sent(0);
    let (_, clock) = crate::engine_for(&config);
    let shared = Arc::new(Shared::new(clock, telemetry.clone(), None, true));
    shared
        .strict
        .store(config.ingest.strict, std::sync::atomic::Ordering::Relaxed);
    let (ingest, batches) = crate::writer::sink(shared);
    let buf_thread = {
        let (queue, telemetry, max) = (queue.clone(), telemetry.clone(), cfg.buffer_max_bytes);
        std::thread::Builder::new()
            .name("callwatch-edge-buffer".into())
            .spawn(move || buffer(batches, journal, queue, max, telemetry))
            .map_err(|e| buffer_err(e.to_string()))?
    };
    let cancel = CancellationToken::new();
    let sender_stop = CancellationToken::new();
    let connected = Arc::new(AtomicBool::new(false));
    let default_site = config.defaults.site.clone();
    let sender = tokio::spawn(send(
        cfg.clone(),
        default_site,
        queue.clone(),
        checkpoint,
        journal_dir.clone(),
        telemetry.clone(),
        sender_stop.clone(),
        connected,
    ));
    let tls =
        crate::tls::Listeners::start(config.server.tls.as_ref(), chrono::Utc::now().timestamp())?;
    let mut sources = built;
    let tcp_addr = listeners.tcp_addr();
    if let Some(l) = listeners.ingest_tcp {
        sources.push(TcpSource::built(l, &config, tls.tcp.clone()));
    }
    let running = Running::start(
        sources,
        &ingest,
        &cancel,
        &telemetry,
        Some(data.join("sources")),
    );
    let ready = Arc::new(AtomicBool::new(true));
    let app = axum::Router::new()
        .route("/api/v1/events", axum::routing::post(events))
        .route("/api/v1/sources/{name}", axum::routing::post(source_hook))
        .route("/metrics", axum::routing::get(metrics))
        .route("/readyz", axum::routing::get(readyz))
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .with_state(Edge {
            ingest,
            limits: crate::api::IngestLimits::of(&config),
            telemetry: telemetry.clone(),
            ready,
        });
    let http_addr = listeners.http.local_addr().ok();
    let http_cancel = cancel.clone();
    let server = tokio::spawn(crate::http::serve(
        listeners.http,
        app,
        crate::http::HttpLimits::of(&config),
        tls.http.clone(),
        telemetry.clone(),
        http_cancel,
    ));
    tracing::info!(
        http = %http_addr.map(|a| a.to_string()).unwrap_or_default(),
        ingest_tcp = %tcp_addr.map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
        subject = %cfg.subject,
        "callwatch listening (edge publisher)"
    );
    tokio::select! {
        _ = shutdown => {}
        _ = running.failure.cancelled() => {}
    }
    tracing::info!("shutting down: draining sources; unsent events stay in the buffer");
    cancel.cancel();
    let failed = running.finish().await;
    let served = server.await;
    // The sources and HTTP are gone: the buffer thread ends. Give the
    // sender a moment to flush what the broker will take.
    let _ = tokio::task::spawn_blocking(move || buf_thread.join()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while queue.len() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sender_stop.cancel();
    let _ = sender.await;
    if let Some(e) = failed {
        return Err(PublishError::Source(e));
    }
    served.map_err(|e| PublishError::Http(std::io::Error::other(e)))
}
