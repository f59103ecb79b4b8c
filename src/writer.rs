//! The single writer: the one thread that changes the state.
//!
//! Sources send decoded events in batches over a bounded channel (so a
//! fast sender is slowed down rather than buffered without limit). The
//! writer runs on its own OS thread, because with a data directory it
//! does blocking file I/O. It takes every batch that is waiting (a
//! group), applies the events under one write lock — never held across an
//! await — appends the accepted ones to the journal, commits the journal
//! once for the whole group (one fsync shared by all senders), and only
//! then answers each batch. If the commit fails, the state is rebuilt from
//! the data directory (so it again equals what is durable), every batch of
//! the group is answered with a storage error, and ingest is refused until
//! a probe write succeeds.
//!
//! The engine belongs to this thread alone: readers answer from the
//! immutable view it publishes (`view.rs`), so no reader ever holds up
//! ingest. A view is built only when someone reads: when a reader asks
//! (its view lacks the latest group, is over a second old, or lacks the
//! digest or task rows it needs), and while feed clients are connected,
//! after each change and every second. Never sooner than
//! `feed.build_interval` after the last, and never more often than four
//! times its own build time allows: publishing takes at most a fifth of
//! the writer's time, however large the state and however many readers.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

use crate::clock::SharedClock;
use crate::deadletter::DeadLetters;
use crate::engine::settings::Settings;
use crate::engine::{Applied, Engine};
use crate::event::{self, Event};
use crate::journal::{Fsync, Journal};
use crate::metric::Telemetry;
use crate::reject::Rejection;
use crate::store;
use crate::view::View;

/// What became of one submitted event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Applied,
    Duplicate,
    Rejected(Rejection),
}

/// State shared between the writer and the readers.
pub struct Shared {
    /// The latest published view of the state.
    pub view: watch::Sender<Arc<View>>,
    pub clock: SharedClock,
    pub telemetry: Arc<Telemetry>,
    pub ready: AtomicBool,
    /// The writer's group count, after each group (and recovery), for
    /// readers that want a view including what they just sent.
    pub changes: watch::Sender<u64>,
    /// Feed clients connected: while there are any, the writer keeps
    /// publishing views on its own (else only when a reader asks).
    pub feed_clients: std::sync::atomic::AtomicUsize,
    /// Feed clients that follow quality management (`?qa=1` with the
    /// grant): while there are any, views carry fresh integrity signals.
    pub qa_feed_clients: std::sync::atomic::AtomicUsize,
    pub deadletters: Option<DeadLetters>,
    /// Events are journaled (there is a data directory).
    pub journaled: bool,
    /// The number of journal records committed (the next record's
    /// sequence number), for `GET /api/v1/state`.
    pub journal_seq: std::sync::atomic::AtomicU64,
    /// How far each positioned source's input is durable here (the
    /// JetStream stream sequence), for `GET /api/v1/state`.
    pub positions: dashmap::DashMap<String, u64>,
    /// What the last recovery found (`/readyz` shows it).
    pub recovery: std::sync::Mutex<Option<store::Report>>,
    /// `ingest.strict`: sources refuse fields a type does not take
    /// (set at start and by a reload; the journal is never read strictly).
    pub strict: AtomicBool,
    /// Ticks the writer thread has taken: the service watchdog's sign of
    /// life (systemd.rs).
    pub ticks: std::sync::atomic::AtomicU64,
    /// What the last configuration reload said (`/readyz` shows it).
    pub reload: std::sync::Mutex<crate::reload::Status>,
    /// Cancelled when the writer cannot go on (recovery refused or
    /// failed): the daemon then stops with `failure`.
    pub fatal: tokio_util::sync::CancellationToken,
    pub failure: std::sync::OnceLock<String>,
    /// The webhook sources running, by name (`POST /api/v1/sources/<name>`).
    pub hooks: Arc<crate::source::hook::Hooks>,
}

impl Shared {
    /// State shared by a writer and its readers, before recovery.
    pub fn new(
        clock: SharedClock,
        telemetry: Arc<Telemetry>,
        deadletters: Option<DeadLetters>,
        journaled: bool,
    ) -> Shared {
        Shared {
            view: watch::Sender::new(Arc::new(View::placeholder())),
            clock,
            telemetry,
            ready: AtomicBool::new(false),
            changes: watch::Sender::new(0),
            feed_clients: Default::default(),
            qa_feed_clients: Default::default(),
            deadletters,
            journaled,
            journal_seq: Default::default(),
            positions: Default::default(),
            recovery: Default::default(),
            strict: Default::default(),
            ticks: Default::default(),
            reload: Default::default(),
            fatal: Default::default(),
            failure: Default::default(),
            hooks: Default::default(),
        }
    }

    /// What the last configuration reload said.
    pub fn reload_status(&self) -> crate::reload::Status {
        self.reload.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The last recovery's report, if there was one.
    pub fn recovery_report(&self) -> Option<store::Report> {
        self.recovery.lock().ok().and_then(|r| r.clone())
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
    /// Keeps a refused input as a dead letter (with a data directory).
    pub fn dead_letter(&self, source: &str, r: &Rejection, input: &[u8]) {
        if let Some(d) = &self.deadletters {
            d.record(self.now_ms(), source, r, input);
        }
    }
}

struct Batch {
    source: &'static str,
    events: Vec<Event>,
    /// Journal payloads of `events`, encoded by the submitting task so
    /// that the writer, the one thread every event passes, only copies
    /// bytes (re-encoding was a fifth of its time).
    encoded: Option<Encoded>,
    reply: oneshot::Sender<Result<Vec<Outcome>, Returned>>,
}

/// A batch the writer could not take, handed back so that a source can
/// retry it as it was (no copy of every batch on the way in).
#[derive(Debug)]
pub struct Returned {
    pub error: IngestError,
    pub events: Vec<Event>,
    pub encoded: Option<Encoded>,
}

impl Batch {
    fn give_back(self, error: IngestError) {
        let Batch {
            events,
            encoded,
            reply,
            ..
        } = self;
        let _ = reply.send(Err(Returned {
            error,
            events,
            encoded,
        }));
    }
}

/// The journal payloads of a batch's events, back to back; `ends[i]` is
/// where event i's ends. A payload is any JSON that `event::decode`
/// turns into that event: the sender's own line where a source has it
/// (nothing to encode at all), else the canonical encoding.
#[derive(Debug, Default)]
pub struct Encoded {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Encoded {
    pub fn with_capacity(events: usize, bytes: usize) -> Encoded {
        Encoded {
            bytes: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(events),
        }
    }

    /// Adds the next event's payload: input it was decoded from.
    pub fn push(&mut self, raw: &[u8]) {
        self.bytes.extend_from_slice(raw);
        self.ends.push(self.bytes.len());
    }

    /// Each event's payload, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(a, b)| &self.bytes[a..b])
    }

    /// Payload bytes in all.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    fn of(events: &[Event]) -> Encoded {
        let mut e = Encoded::with_capacity(events.len(), events.len() * 160);
        for ev in events {
            event::encode_into(&mut e.bytes, ev);
            e.ends.push(e.bytes.len());
        }
        e
    }

    fn get(&self, i: usize) -> Option<&[u8]> {
        let start = if i == 0 { 0 } else { *self.ends.get(i - 1)? };
        self.bytes.get(start..*self.ends.get(i)?)
    }
}

enum Command {
    Batch(Batch),
    /// Publish a view if one is due; `asked` by a reader (then with what
    /// it wants), else the timer.
    Publish {
        want: Wanted,
        asked: bool,
    },
    /// Housekeeping (retention; probing storage after a failure).
    Tick,
    /// The `interval` fsync policy's timer.
    Sync,
    /// A configuration reload: the engine's settings from now on.
    Reload(Box<Settings>, oneshot::Sender<Result<(), String>>),
}

/// What a reader needs in a view beyond the live figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wanted {
    /// The state digest (O(state) to compute; cached while unchanged).
    pub digest: bool,
    /// The open-task rows of the backlog list.
    pub tasks: bool,
    /// Scorecards with every goal over this period.
    pub period: Option<crate::config::Period>,
    /// Quality management's read models over this period …
    pub qa: Option<crate::config::Period>,
    /// … these of them (`quality::part` bits).
    pub qa_parts: u8,
    /// Fresh integrity signal counts (`/metrics` for a role that sees
    /// them).
    pub signals: bool,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    #[error("the daemon is shutting down")]
    ShuttingDown,
    #[error("storage unavailable, nothing in this batch was applied: {0}")]
    Storage(String),
}

/// A source's handle to the writer.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

impl Ingest {
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.shared.telemetry
    }

    /// The webhook sources of this process.
    pub fn hooks(&self) -> &Arc<crate::source::hook::Hooks> {
        &self.shared.hooks
    }

    /// Whether canonical JSON is decoded strictly (`ingest.strict`).
    pub fn strict(&self) -> bool {
        self.shared.strict.load(Ordering::Relaxed)
    }

    pub fn set_strict(&self, strict: bool) {
        self.shared.strict.store(strict, Ordering::Relaxed);
    }

    /// Counts events a source received, valid or not.
    pub fn received(&self, source: &'static str, n: usize) {
        self.shared.telemetry.received(source, n as u64);
    }

    /// Counts input a source passed over (not an event callwatch tracks,
    /// or not understood), by reason.
    pub fn skipped(&self, source: &'static str, reason: &'static str) {
        self.shared.telemetry.skipped(source, reason);
    }

    /// Stream mode: the position of `source` in the snapshot recovery
    /// loaded (0 without one), once recovery is done.
    pub async fn recovered_position(&self, source: &str) -> u64 {
        while !self.shared.is_ready() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.shared.positions.get(source).map(|p| *p).unwrap_or(0)
    }

    /// Records that `source`'s input up to `position` is durable here.
    pub fn position(&self, source: &str, position: u64) {
        match self.shared.positions.get_mut(source) {
            Some(mut p) => *p = position,
            None => {
                self.shared.positions.insert(source.to_string(), position);
            }
        }
    }

    /// Counts (and keeps as a dead letter) an input the source refused.
    pub fn rejected(&self, source: &'static str, r: &Rejection, input: &[u8]) {
        self.shared.telemetry.rejected(source, r.reason);
        self.shared.dead_letter(source, r, input);
    }

    /// A view that includes every group applied before the call
    /// (read-your-writes for a sender that reads after its POST), is at
    /// most a second old, and has what `want` asks for; the writer builds
    /// one if the latest does not do. `None` if none came within `wait`.
    /// Applies reloaded settings to the engine (goals, targets,
    /// calendars, holidays, ...), keeping its state.
    pub async fn reload(&self, settings: Settings) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Reload(Box::new(settings), reply))
            .await
            .map_err(|_| "the writer has stopped".to_string())?;
        rx.await.map_err(|_| "the writer has stopped".to_string())?
    }

    pub async fn view(&self, want: Wanted, wait: Duration) -> Option<Arc<View>> {
        let seq = *self.shared.changes.borrow();
        let now = self.shared.now_ms();
        let ok = |v: &Arc<View>| {
            !v.empty
                && v.version >= seq
                && v.at_ms + 1000 >= now
                && (!want.digest || v.digest.is_some())
                && (!want.tasks || v.with_tasks)
                && want
                    .period
                    .is_none_or(|p| v.period_cards.as_ref().is_some_and(|(q, _)| *q == p))
                && want.qa.is_none_or(|p| {
                    v.qa_period == Some(p) && v.qa_parts & want.qa_parts == want.qa_parts
                })
                && (!want.signals || v.with_signals)
        };
        let deadline = tokio::time::Instant::now() + wait;
        let mut rx = self.shared.view.subscribe();
        loop {
            let v = rx.borrow_and_update().clone();
            if ok(&v) {
                return Some(v);
            }
            // Ask again after every view that is not this one: the writer
            // builds one view for what readers asked since its last, and
            // where two want different periods, the first asker's wins.
            let ask = self.tx.send(Command::Publish { want, asked: true });
            tokio::time::timeout_at(deadline, ask).await.ok()?.ok()?;
            tokio::time::timeout_at(deadline, rx.changed())
                .await
                .ok()?
                .ok()?;
        }
    }

    /// Applies a batch and waits for one outcome per event. Waits while
    /// the daemon is still recovering. Engine rejections are counted here;
    /// the caller reports them to the sender.
    pub async fn submit(
        &self,
        source: &'static str,
        events: Vec<Event>,
    ) -> Result<Vec<Outcome>, IngestError> {
        self.submit_raw(source, events, None).await
    }

    /// `submit`, with the input each event was decoded from (one entry per
    /// event, in order) to journal as it is instead of re-encoding.
    pub async fn submit_raw(
        &self,
        source: &'static str,
        events: Vec<Event>,
        raw: Option<Encoded>,
    ) -> Result<Vec<Outcome>, IngestError> {
        self.send(source, events, raw).await?.await
    }

    /// Hands a batch to the writer and returns without waiting for it to
    /// be applied, so a source can prepare the next batch meanwhile.
    /// Batches of one source are applied in the order they were sent.
    pub async fn send(
        &self,
        source: &'static str,
        events: Vec<Event>,
        raw: Option<Encoded>,
    ) -> Result<Pending, IngestError> {
        self.hand_over(source, events, raw)
            .await
            .map_err(|r| r.error)
    }

    /// `submit`, handing the batch back when the writer cannot take it
    /// (storage failing, shutting down), so that the caller can wait and
    /// retry the very same batch.
    pub async fn offer(
        &self,
        source: &'static str,
        events: Vec<Event>,
        raw: Option<Encoded>,
    ) -> Result<Vec<Outcome>, Returned> {
        match self.hand_over(source, events, raw).await?.0 {
            None => Ok(Vec::new()),
            Some(rx) => rx.await.unwrap_or_else(|_| {
                Err(Returned {
                    error: IngestError::ShuttingDown,
                    events: Vec::new(),
                    encoded: None,
                })
            }),
        }
    }

    async fn hand_over(
        &self,
        source: &'static str,
        events: Vec<Event>,
        raw: Option<Encoded>,
    ) -> Result<Pending, Returned> {
        if events.is_empty() {
            return Ok(Pending(None));
        }
        // How far behind its input the source is: every batch of every
        // source passes here, once.
        if let Some(newest) = events.iter().map(|e| e.ts.timestamp_millis()).max() {
            let now = chrono::Utc::now().timestamp_millis();
            self.shared
                .telemetry
                .source_lag(source, ((now - newest).max(0) as f64) / 1000.0);
        }
        let (reply, rx) = oneshot::channel();
        let encoded = match raw {
            _ if !self.shared.journaled => None,
            Some(r) if r.ends.len() == events.len() => Some(r),
            _ => Some(Encoded::of(&events)),
        };
        let sent = self
            .tx
            .send(Command::Batch(Batch {
                source,
                events,
                encoded,
                reply,
            }))
            .await;
        match sent {
            Ok(()) => Ok(Pending(Some(rx))),
            Err(mpsc::error::SendError(Command::Batch(b))) => Err(Returned {
                error: IngestError::ShuttingDown,
                events: b.events,
                encoded: b.encoded,
            }),
            Err(_) => Err(Returned {
                error: IngestError::ShuttingDown,
                events: Vec::new(),
                encoded: None,
            }),
        }
    }
}

/// Batches for a sink other than the writer (the edge publisher's
/// buffer): sources hand in through the same [`Ingest`] either way.
pub struct Batches(mpsc::Receiver<Command>);

/// One batch taken by a sink, to be answered.
pub struct Taken {
    pub source: &'static str,
    pub events: Vec<Event>,
    /// Always present: a sink's `Shared` is journaled.
    pub encoded: Encoded,
    reply: oneshot::Sender<Result<Vec<Outcome>, Returned>>,
}

impl Taken {
    pub fn answer(self, outcomes: Vec<Outcome>) {
        let _ = self.reply.send(Ok(outcomes));
    }

    /// Nothing of the batch was taken.
    pub fn refuse(self, error: IngestError) {
        let _ = self.reply.send(Err(Returned {
            error,
            events: self.events,
            encoded: Some(self.encoded),
        }));
    }
}

impl Batches {
    /// The next batch (blocking; for the sink's own thread). Other
    /// commands have no meaning for a sink and are passed over. `None`
    /// once every `Ingest` handle is gone.
    pub fn blocking_next(&mut self) -> Option<Taken> {
        loop {
            if let Command::Batch(b) = self.0.blocking_recv()? {
                let encoded = b.encoded.unwrap_or_else(|| Encoded::of(&b.events));
                return Some(Taken {
                    source: b.source,
                    events: b.events,
                    encoded,
                    reply: b.reply,
                });
            }
        }
    }
}

/// An ingest handle whose batches go to `Batches` instead of a writer.
pub fn sink(shared: Arc<Shared>) -> (Ingest, Batches) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (Ingest { tx, shared }, Batches(rx))
}

/// The outcome of a batch handed to the writer: one per event.
pub struct Pending(Option<oneshot::Receiver<Result<Vec<Outcome>, Returned>>>);

impl std::future::Future for Pending {
    type Output = Result<Vec<Outcome>, IngestError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        match self.0.as_mut() {
            None => Poll::Ready(Ok(Vec::new())),
            Some(rx) => match std::pin::Pin::new(rx).poll(cx) {
                Poll::Ready(Ok(r)) => Poll::Ready(r.map_err(|r| r.error)),
                Poll::Ready(Err(_)) => Poll::Ready(Err(IngestError::ShuttingDown)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// Durability settings of the writer.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    pub dir: PathBuf,
    pub fsync: Fsync,
    pub segment_bytes: u64,
    pub snapshot_every: u64,
    pub snapshot_interval: Duration,
    pub keep_snapshots: usize,
    /// `storage.journal = "stream"`: no journal, snapshots with the
    /// stream positions they cover.
    pub stream: bool,
    /// `run --repair`: accept the losses recovery names (store::recover).
    pub repair: bool,
    /// `storage.snapshot_on_shutdown`.
    pub snapshot_on_shutdown: bool,
    /// `storage.snapshot_mode`.
    pub snapshot_mode: crate::config::SnapshotMode,
}

/// Batches queued to the writer before senders wait.
const QUEUE: usize = 256;
/// Most events applied in one group (one commit).
const GROUP_EVENTS: usize = 32_768;
const TICK: Duration = Duration::from_secs(1);
/// How far the wall clock may run ahead of the engine's before the
/// writer applies a heartbeat.
const HEARTBEAT_AFTER_MS: i64 = 1000;

/// Starts the writer thread (which first recovers from `storage`, if
/// any) and the timers that feed it. The thread ends once every `Ingest`
/// handle is dropped and `stop` is cancelled, after a final commit.
pub fn start(
    shared: Arc<Shared>,
    settings: Settings,
    storage: Option<StorageOptions>,
    publish_every: Duration,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<(Ingest, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let ingest = Ingest {
        tx: tx.clone(),
        shared: shared.clone(),
    };
    let sync_every = match storage.as_ref().map(|s| s.fsync) {
        Some(Fsync::Interval(d)) => Some(d),
        _ => None,
    };
    // Timers live on the runtime; they stop with `stop` so the channel
    // closes when the sources are gone.
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sync = tokio::time::interval(sync_every.unwrap_or(Duration::from_secs(3600)));
        // Wakes an idle writer to publish what a rate-limited group left.
        let mut publish = tokio::time::interval(publish_every.max(Duration::from_millis(20)));
        publish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let cmd = tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => Command::Tick,
                _ = publish.tick() => Command::Publish { want: Wanted::default(), asked: false },
                _ = sync.tick(), if sync_every.is_some() => Command::Sync,
            };
            if tx.send(cmd).await.is_err() {
                break;
            }
        }
    });
    let handle = std::thread::Builder::new()
        .name("callwatch-writer".into())
        .spawn({
            let snapshots = store::SnapshotWriter::start()?;
            move || Writer::new(snapshots, shared, settings, storage, publish_every).run(rx)
        })?;
    Ok((ingest, handle))
}

/// Should the writer thread ever die of a panic, the daemon stops
/// claiming to be ready (`/readyz` answers 503) instead of accepting
/// connections whose events nobody applies.
struct NotReadyOnPanic(Arc<Shared>);

impl Drop for NotReadyOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.ready.store(false, Ordering::Release);
            tracing::error!("the writer thread panicked; the daemon is no longer ready");
        }
    }
}

struct Durable {
    opts: StorageOptions,
    /// `None` in stream mode: the stream is the log.
    journal: Option<Journal>,
    /// Stream mode: events applied, counted from the snapshot loaded (the
    /// next snapshot's position).
    applied: u64,
    /// Position of the last snapshot handed to the snapshot thread...
    last_snapshot: u64,
    /// ...and of the last one it wrote whole.
    confirmed_snapshot: u64,
    /// Size of the last snapshot serialised.
    last_snapshot_bytes: usize,
    last_snapshot_at: Instant,
}

impl Durable {
    /// The position a snapshot taken now claims.
    fn position(&self) -> u64 {
        match &self.journal {
            Some(j) => j.next(),
            None => self.applied,
        }
    }
}

/// When the next view may be published, and what is wanted of it.
struct Publisher {
    every: Duration,
    last_at: Option<Instant>,
    /// Something was applied (or counted: duplicates) since the last view.
    dirty: bool,
    last_cost: Duration,
    /// A reader asked for a view (and for what).
    asked: bool,
    want: Wanted,
    /// The digest of `digest_version`, kept while the state is unchanged.
    digest: Option<(u64, String)>,
    /// The current sample period's integrity signals, recomputed at most
    /// every `SIGNALS_EVERY` (one pass over the QA register).
    signals: Option<(Instant, u64, Arc<Vec<crate::quality::Signal>>)>,
    signals_cost: Duration,
}

/// The integrity signals for `/metrics` and the QA feed are recomputed
/// after a change at most once a second, and at most once per 100 times
/// their last cost (a large register: one pass every few seconds, about
/// 1 % of the writer).
const SIGNALS_EVERY: Duration = Duration::from_secs(1);

struct Writer {
    shared: Arc<Shared>,
    /// Owned by this thread: nothing else reads or writes it.
    engine: Engine,
    /// Groups applied (and recoveries), the views' version.
    groups: u64,
    publisher: Publisher,
    settings: Settings,
    storage: Option<StorageOptions>,
    durable: Option<Durable>,
    /// Set after a failed commit; ingest is refused until a probe succeeds.
    degraded: Option<String>,
    /// Bytes of the group whose commit failed: the probe writes as many
    /// before ingest is tried again.
    probe_bytes: usize,
    /// The probe succeeded; ingest is resumed once a real group commits.
    resuming: bool,
    snapshots: store::SnapshotWriter,
}

impl Writer {
    fn new(
        snapshots: store::SnapshotWriter,
        shared: Arc<Shared>,
        settings: Settings,
        storage: Option<StorageOptions>,
        publish_every: Duration,
    ) -> Writer {
        Writer {
            shared,
            engine: Engine::new(settings.clone()),
            groups: 0,
            publisher: Publisher {
                every: publish_every,
                last_at: None,
                dirty: true,
                last_cost: Duration::ZERO,
                asked: false,
                want: Wanted::default(),
                digest: None,
                signals: None,
                signals_cost: Duration::ZERO,
            },
            settings,
            storage,
            durable: None,
            degraded: None,
            probe_bytes: 0,
            resuming: false,
            snapshots,
        }
    }

    fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let _ready = NotReadyOnPanic(self.shared.clone());
        if let Some(opts) = self.storage.clone() {
            if let Err(e) = self.recover(&opts, true) {
                // Never "ready but not ingesting": the daemon stops and
                // says why.
                let why = format!("recovery of {} failed: {e}", opts.dir.display());
                tracing::error!("{why}");
                let _ = self.shared.failure.set(why);
                self.shared.fatal.cancel();
                return;
            }
        }
        self.publish(true);
        self.shared.ready.store(true, Ordering::Release);
        let mut later = Vec::new();
        while let Some(cmd) = rx.blocking_recv() {
            match cmd {
                Command::Batch(first) => {
                    let mut group = vec![first];
                    let mut n = group[0].events.len();
                    while n < GROUP_EVENTS {
                        match rx.try_recv() {
                            Ok(Command::Batch(b)) => {
                                n += b.events.len();
                                group.push(b);
                            }
                            Ok(other) => later.push(other),
                            Err(_) => break,
                        }
                    }
                    self.apply_group(group);
                    for cmd in later.drain(..) {
                        self.housekeeping(cmd);
                    }
                }
                other => self.housekeeping(other),
            }
        }
        if let Some(j) = self.durable.as_mut().and_then(|d| d.journal.as_mut()) {
            if let Err(e) = j.sync() {
                tracing::error!(error = %e, "final journal sync failed");
            }
        }
        if self
            .storage
            .as_ref()
            .is_some_and(|o| o.stream || o.snapshot_on_shutdown)
        {
            // Stream mode keeps only snapshots: one more on the way out
            // makes the next start replay less of the stream (and of the
            // journal, where configured).
            self.maybe_snapshot_now(true);
        }
        // A snapshot being written (the shutdown's, or one before) is
        // finished before the process goes.
        self.snapshots.finish();
        tracing::debug!("writer drained");
    }

    /// Recovers the state from the data directory: at start (`first`,
    /// which also opens the journal) and to rebuild after a failed write
    /// (the journal stays open as it is).
    fn recover(&mut self, opts: &StorageOptions, first: bool) -> Result<(), store::RecoveryError> {
        if opts.stream {
            let started = Instant::now();
            let rec =
                store::recover_snapshot(&opts.dir, &self.settings, self.shared.clock.as_ref())?;
            for note in &rec.notes {
                tracing::warn!(dir = %opts.dir.display(), "recovery: {note}");
            }
            tracing::info!(
                snapshot = rec.seq,
                ms = started.elapsed().as_millis() as u64,
                "recovered state from {} (stream mode: the stream is replayed from the positions {:?})",
                opts.dir.display(),
                rec.positions
            );
            for (name, at) in &rec.positions {
                self.shared.positions.insert(name.clone(), *at);
            }
            self.engine = rec.engine;
            self.groups += 1;
            self.publisher.dirty = true;
            self.shared.changes.send_replace(self.groups);
            self.publish(true);
            self.durable = Some(Durable {
                opts: opts.clone(),
                journal: None,
                applied: rec.seq,
                last_snapshot: rec.seq,
                confirmed_snapshot: rec.seq,
                last_snapshot_bytes: 0,
                last_snapshot_at: Instant::now(),
            });
            return Ok(());
        }
        let started = Instant::now();
        let ropts = store::RecoverOptions {
            repair: opts.repair && first,
            dry_run: false,
        };
        let rec = store::recover(&opts.dir, &self.settings, self.shared.clock.as_ref(), ropts)?;
        let report = &rec.report;
        for f in &report.findings {
            match report.status {
                store::Status::Repaired => {
                    tracing::error!(dir = %opts.dir.display(), "recovery: {f}")
                }
                _ => tracing::warn!(dir = %opts.dir.display(), "recovery: {f}"),
            }
        }
        self.shared.telemetry.recovered(report);
        tracing::info!(
            snapshot = rec.snapshot,
            replayed = rec.replayed,
            next = rec.next,
            status = report.status.as_str(),
            ms = started.elapsed().as_millis() as u64,
            "recovered state from {}",
            opts.dir.display()
        );
        if let Ok(mut r) = self.shared.recovery.lock() {
            *r = Some(rec.report.clone());
        }
        let journal = match self.durable.as_mut().and_then(|d| d.journal.take()) {
            Some(j) if !first => j,
            _ => Journal::open(
                &store::journal_dir(&opts.dir),
                rec.next,
                opts.fsync,
                opts.segment_bytes,
            )?,
        };
        self.engine = rec.engine;
        self.groups += 1;
        let version = self.groups;
        self.publisher.dirty = true;
        self.shared
            .journal_seq
            .store(journal.next(), Ordering::Release);
        self.shared.changes.send_replace(version);
        self.publish(true);
        self.durable = Some(Durable {
            opts: opts.clone(),
            journal: Some(journal),
            applied: 0,
            last_snapshot: rec.snapshot,
            confirmed_snapshot: rec.snapshot,
            last_snapshot_bytes: 0,
            last_snapshot_at: Instant::now(),
        });
        Ok(())
    }

    fn apply_group(&mut self, group: Vec<Batch>) {
        if let Some(why) = &self.degraded {
            let err = IngestError::Storage(why.clone());
            for b in group {
                b.give_back(err.clone());
            }
            return;
        }
        let mut results = Vec::with_capacity(group.len());
        let version = {
            let engine = &mut self.engine;
            for b in &group {
                let mut outcomes = Vec::with_capacity(b.events.len());
                for (i, ev) in b.events.iter().enumerate() {
                    let (now, result) = engine.apply_at(ev, self.shared.clock.as_ref());
                    outcomes.push(match result {
                        Ok(Applied::New) => {
                            if let Some(d) = self.durable.as_mut() {
                                match (
                                    d.journal.as_mut(),
                                    b.encoded.as_ref().and_then(|e| e.get(i)),
                                ) {
                                    (Some(j), Some(p)) => j.append_encoded(now, p),
                                    (Some(j), None) => j.append_event(now, ev),
                                    (None, _) => d.applied += 1,
                                }
                            }
                            Outcome::Applied
                        }
                        Ok(Applied::Duplicate) => Outcome::Duplicate,
                        Err(r) => Outcome::Rejected(r),
                    });
                }
                results.push(outcomes);
            }
            self.groups += 1;
            self.groups
        };
        let mut bytes = 0;
        let committed = self
            .durable
            .as_mut()
            .and_then(|d| d.journal.as_mut())
            .map(|j| {
                bytes = j.pending_bytes();
                j.commit().map(|()| j.next())
            });
        if let Some(Ok(next)) = committed {
            self.shared.journal_seq.store(next, Ordering::Release);
            if std::mem::take(&mut self.resuming) && bytes > 0 {
                tracing::info!("storage writable again; ingest resumed");
            }
        }
        if let Some(Err(_)) = committed {
            self.probe_bytes = bytes;
        }
        if let Some(Err(e)) = committed {
            self.storage_failed(e);
            let err = IngestError::Storage(self.degraded.clone().unwrap_or_default());
            for b in group {
                b.give_back(err.clone());
            }
            return;
        }
        let mut dups = 0;
        for (b, outcomes) in group.iter().zip(&results) {
            for (ev, o) in b.events.iter().zip(outcomes) {
                match o {
                    Outcome::Duplicate => dups += 1,
                    Outcome::Rejected(r) => {
                        self.shared.telemetry.rejected(b.source, r.reason);
                        self.shared
                            .dead_letter(b.source, r, event::encode(ev).as_bytes());
                    }
                    Outcome::Applied => {}
                }
            }
        }
        if dups > 0 {
            self.shared.telemetry.duplicates(dups);
        }
        self.shared.changes.send_replace(version);
        self.publisher.dirty = true;
        self.publish(false);
        for (b, outcomes) in group.into_iter().zip(results) {
            // The sender may have gone; the events are applied regardless,
            // and a retry will be recognised as a duplicate.
            let _ = b.reply.send(Ok(outcomes));
        }
        self.maybe_snapshot();
    }

    /// After a failed commit: the state holds events that are not durable,
    /// so rebuild it from disk, and refuse ingest until writes work again.
    fn storage_failed(&mut self, e: std::io::Error) {
        let why = format!("journal write failed: {e}");
        tracing::error!("{why}; rebuilding state from the data directory");
        self.shared.telemetry.storage_error();
        self.degraded = Some(why);
        self.snapshots.wait_idle();
        if let Some(opts) = self.storage.clone() {
            if let Err(e) = self.recover(&opts, false) {
                tracing::error!(error = %e, "rebuild after a write failure failed");
                if let Ok(mut r) = self.shared.recovery.lock() {
                    if let Some(r) = r.as_mut() {
                        r.status = store::Status::Failed;
                        r.skipped.values_mut().for_each(|n| *n = 0);
                        r.findings
                            .push(format!("rebuild after a write failure failed: {e}"));
                        self.shared.telemetry.recovered(r);
                    }
                }
            }
        }
    }

    fn housekeeping(&mut self, cmd: Command) {
        match cmd {
            Command::Tick => self.tick(),
            Command::Publish { want, asked } => {
                let p = &mut self.publisher;
                p.asked |= asked;
                p.want.digest |= want.digest;
                p.want.tasks |= want.tasks;
                // The first asker's period: a later one asks again
                // after this view (`Ingest::view`).
                p.want.period = p.want.period.or(want.period);
                p.want.qa = p.want.qa.or(want.qa);
                p.want.qa_parts |= want.qa_parts;
                p.want.signals |= want.signals;
                self.publish(false);
            }
            Command::Sync => {
                if let Some(Err(e)) = self
                    .durable
                    .as_mut()
                    .and_then(|d| d.journal.as_mut())
                    .map(|j| j.sync())
                {
                    self.storage_failed(e);
                }
            }
            Command::Batch(b) => self.apply_group(vec![b]),
            Command::Reload(settings, reply) => {
                let _ = reply.send(self.reload(*settings));
            }
        }
    }

    /// New settings for the same state: through the snapshot path
    /// (`save`, then `load` under the new settings), which re-derives what
    /// the engine keeps of its settings (queue parameters, calendars)
    /// exactly as a restart would.
    fn reload(&mut self, settings: Settings) -> Result<(), String> {
        let bytes = self.engine.save().map_err(|e| e.to_string())?;
        let engine = Engine::load(settings.clone(), &bytes).map_err(|e| e.to_string())?;
        self.engine = engine;
        self.settings = settings;
        self.groups += 1;
        self.publisher.dirty = true;
        self.publisher.digest = None;
        self.shared.changes.send_replace(self.groups);
        self.publish(true);
        Ok(())
    }

    fn tick(&mut self) {
        self.shared.ticks.fetch_add(1, Ordering::Relaxed);
        let now = self.shared.now_ms();
        if self.degraded.is_some() {
            // Probe with as many bytes as the group that failed (a few
            // bytes fit long before a batch does), in a file of its own
            // that nothing reads: only a real commit declares ingest
            // resumed.
            let size = self.probe_bytes.max(64 << 10);
            let ok = self
                .durable
                .as_ref()
                .filter(|d| d.journal.is_some())
                .is_some_and(|d| store::probe(&d.opts.dir, size).is_ok());
            if ok {
                tracing::info!(bytes = size, "storage probe succeeded; trying ingest again");
                self.degraded = None;
                self.resuming = true;
            }
            return;
        }
        // Memory only: retention runs on the event clock inside `apply`,
        // so nothing here is journaled.
        self.engine.tick();
        self.heartbeat(now);
        self.publish(false);
        self.maybe_snapshot();
    }

    /// On the system clock, time passes without events: once the wall
    /// clock is a second past the engine's, apply a heartbeat event
    /// stamped now, through the one apply path and the journal like any
    /// other event, so deadlines become breaches and retention runs on a
    /// quiet desk, and a restart or replay sees the same.
    fn heartbeat(&mut self, now: i64) {
        if !self.settings.wall_clock {
            return;
        }
        let behind = now - self.engine.clock_ms();
        if behind < HEARTBEAT_AFTER_MS {
            return;
        }
        let Some(ts) = chrono::DateTime::from_timestamp_millis(now) else {
            return;
        };
        let ev = Event {
            id: event::Text::from(format!("callwatch-heartbeat-{now}")),
            ts: ts.fixed_offset(),
            site: None,
            body: event::Body::Heartbeat,
        };
        let (reply, _rx) = oneshot::channel();
        self.apply_group(vec![Batch {
            source: "heartbeat",
            encoded: self
                .shared
                .journaled
                .then(|| Encoded::of(std::slice::from_ref(&ev))),
            events: vec![ev],
            reply,
        }]);
    }

    /// Publishes a view of the state if one is due (see the module doc);
    /// `force` after recovery.
    fn publish(&mut self, force: bool) {
        let p = &mut self.publisher;
        let version = self.engine.version();
        let now = Instant::now();
        if !force {
            let Some(last) = p.last_at else { return };
            let since = now.duration_since(last);
            let live = self.shared.feed_clients.load(Ordering::Relaxed) > 0;
            // Nobody reading: nothing to build. A reader that asked gets
            // one; feed clients get every change and the passing seconds.
            if !(p.asked || (live && (p.dirty || since >= Duration::from_secs(1)))) {
                return;
            }
            if since < p.every.max(p.last_cost * 4) {
                return;
            }
        }
        let digest = if p.want.digest {
            match &p.digest {
                Some((v, d)) if *v == version => Some(d.clone()),
                _ => {
                    let d = self.engine.digest();
                    p.digest = Some((version, d.clone()));
                    Some(d)
                }
            }
        } else {
            None
        };
        let mut view = View::build(
            &self.engine,
            self.shared.now_ms(),
            digest,
            self.groups,
            p.want.tasks,
            p.want.period,
            p.want.qa.map(|q| (q, p.want.qa_parts)),
        );
        let every = SIGNALS_EVERY.max(p.signals_cost * 100);
        // Only computed for someone who reads them: one pass over the QA
        // register is not free at scale.
        let wanted = p.want.signals || self.shared.qa_feed_clients.load(Ordering::Relaxed) > 0;
        let fresh = p
            .signals
            .as_ref()
            .is_some_and(|(at, v, _)| *v == version || now.duration_since(*at) < every);
        if wanted && !fresh {
            let started = Instant::now();
            let q = &self.engine.settings().quality;
            let list = if q.enabled {
                crate::quality::signals(&self.engine, self.shared.now_ms(), q.sample.period).signals
            } else {
                Vec::new()
            };
            p.signals = Some((now, version, Arc::new(list)));
            p.signals_cost = started.elapsed();
        }
        if let Some((_, _, list)) = p.signals.as_ref().filter(|_| wanted) {
            view.attach_signals(list);
        }
        p.want = Wanted::default();
        p.asked = false;
        p.dirty = false;
        p.last_cost = now.elapsed();
        p.last_at = Some(Instant::now());
        self.shared.view.send_replace(Arc::new(view));
    }

    fn maybe_snapshot(&mut self) {
        self.maybe_snapshot_now(false);
    }

    fn maybe_snapshot_now(&mut self, force: bool) {
        let Some(d) = self.durable.as_mut() else {
            return;
        };
        match self.snapshots.take_outcome() {
            Some(Ok((seq, bytes))) => {
                d.confirmed_snapshot = seq;
                d.last_snapshot_bytes = bytes;
            }
            // Due again at once: the journal still holds it all.
            Some(Err(_)) => d.last_snapshot = d.confirmed_snapshot,
            None => {}
        }
        if self.snapshots.busy() && !force {
            return;
        }
        let since = d.position().saturating_sub(d.last_snapshot);
        let due = since >= d.opts.snapshot_every
            || (since > 0 && (force || d.last_snapshot_at.elapsed() >= d.opts.snapshot_interval));
        if !due {
            return;
        }
        // Everything up to `seq` must be durable before a snapshot claims it.
        if let Some(Err(e)) = d.journal.as_mut().map(|j| j.sync()) {
            self.storage_failed(e);
            return;
        }
        let seq = d.position();
        let started = Instant::now();
        // The positions before the state: a source moves its position
        // only after its batch is applied, so what is read here is never
        // ahead of the state saved below (at worst behind: duplicates on
        // the next start, recognised by event id).
        let positions: store::Positions = self
            .shared
            .positions
            .iter()
            .map(|e| (e.key().clone(), *e.value()))
            .collect();
        let clock_ms = self.shared.clock.now_ms();
        let state = match snapshot_body(&self.engine, d, seq, clock_ms, &positions) {
            Some(b) => b,
            None => return,
        };
        let taken_ms = started.elapsed().as_millis() as u64;
        let job = store::SnapshotJob {
            data: d.opts.dir.clone(),
            seq,
            clock_ms,
            state,
            pause_ms: taken_ms,
            keep: d.opts.keep_snapshots,
            positions,
            journal: d.journal.is_some(),
        };
        let handed = match force {
            true => self.snapshots.submit_after(job),
            false => self.snapshots.submit(job),
        };
        if handed {
            d.last_snapshot = seq;
            d.last_snapshot_at = Instant::now();
            tracing::debug!(seq, taken_ms, "snapshot handed to its thread");
        }
    }
}

/// The state as of now for a snapshot: a forked child that writes it
/// (copy-on-write, the writer goes on at once), or the bytes
/// serialised here. `None` (due again later) if neither worked.
fn snapshot_body(
    engine: &Engine,
    d: &Durable,
    seq: u64,
    clock_ms: i64,
    positions: &store::Positions,
) -> Option<store::SnapshotBody> {
    // Sized like the last one: a large state is not copied through
    // every doubling of a growing buffer.
    let capacity = d.last_snapshot_bytes + d.last_snapshot_bytes / 8;
    #[cfg(target_os = "linux")]
    if d.opts.snapshot_mode == crate::config::SnapshotMode::Fork {
        let dir = &d.opts.dir;
        // The child may only compute, allocate and write files
        // (fork.rs): serialisation and `put_snapshot` do just that.
        let forked = crate::fork::spawn(|| {
            let state = engine
                .save_into(Vec::with_capacity(capacity))
                .map_err(|e| format!("serialising the state: {e}"))?;
            store::put_snapshot(dir, seq, clock_ms, &state, positions)
                .map_err(|e| e.to_string())?;
            Ok(state.len() as u64)
        });
        match forked {
            Ok(child) => return Some(store::SnapshotBody::Forked(child)),
            // Memory or process limits: this snapshot is serialised
            // here instead.
            Err(e) => {
                tracing::warn!(error = %e, "cannot fork for a snapshot; serialising on the writer")
            }
        }
    }
    match engine.save_into(Vec::with_capacity(capacity)) {
        Ok(b) => Some(store::SnapshotBody::Bytes(b)),
        Err(e) => {
            tracing::warn!(error = %e, "snapshot failed; will retry");
            None
        }
    }
}
