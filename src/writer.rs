//! The single writer: the one task that changes the state.
//!
//! Sources send decoded events in batches over a bounded channel (so a
//! fast sender is slowed down rather than buffered without limit). The
//! writer applies a whole batch under one short write lock — never held
//! across an await — and answers each batch with one outcome per event.
//! This is the point where, with a journal, accepted events are made
//! durable before the reply (the acknowledgement) is sent.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::{mpsc, oneshot, watch};

use crate::clock::SharedClock;
use crate::engine::{Applied, Engine};
use crate::event::Event;
use crate::metric::Telemetry;
use crate::reject::Rejection;

/// What became of one submitted event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Applied,
    Duplicate,
    Rejected(Rejection),
}

/// State shared between the writer and the readers.
pub struct Shared {
    pub engine: RwLock<Engine>,
    pub clock: SharedClock,
    pub telemetry: Arc<Telemetry>,
    pub ready: AtomicBool,
    /// Export per-agent series (`privacy.per_agent_metrics`).
    pub per_agent_metrics: bool,
    /// The engine version after each batch, for change listeners.
    pub changes: watch::Sender<u64>,
}

impl Shared {
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

struct Batch {
    source: &'static str,
    events: Vec<Event>,
    reply: oneshot::Sender<Vec<Outcome>>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the daemon is shutting down")]
    ShuttingDown,
}

/// A source's handle to the writer.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Batch>,
    telemetry: Arc<Telemetry>,
}

impl Ingest {
    /// Counts events a source received, valid or not.
    pub fn received(&self, source: &'static str, n: usize) {
        self.telemetry.received(source, n as u64);
    }

    /// Counts an event the source itself refused (could not decode).
    pub fn rejected(&self, source: &'static str, r: &Rejection) {
        self.telemetry.rejected(source, r.reason);
    }

    /// Applies a batch and waits for one outcome per event. Engine
    /// rejections are counted here; the caller reports them to the sender.
    pub async fn submit(
        &self,
        source: &'static str,
        events: Vec<Event>,
    ) -> Result<Vec<Outcome>, IngestError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Batch {
                source,
                events,
                reply,
            })
            .await
            .map_err(|_| IngestError::ShuttingDown)?;
        rx.await.map_err(|_| IngestError::ShuttingDown)
    }
}

/// How often the writer runs housekeeping (retention).
const TICK: Duration = Duration::from_secs(1);
/// Batches queued to the writer before senders wait.
const QUEUE: usize = 256;

/// Creates the writer's channel; `run` drives it until every `Ingest`
/// handle is dropped, so in-flight batches are always answered.
pub fn channel(shared: Arc<Shared>) -> (Ingest, impl std::future::Future<Output = ()>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let ingest = Ingest {
        tx,
        telemetry: shared.telemetry.clone(),
    };
    (ingest, run(shared, rx))
}

async fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<Batch>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            batch = rx.recv() => match batch {
                Some(b) => apply(&shared, b),
                None => break,
            },
            _ = tick.tick() => {
                let now = shared.now_ms();
                shared.engine.write().tick(now);
            }
        }
    }
    tracing::debug!("writer drained");
}

fn apply(shared: &Shared, batch: Batch) {
    let mut outcomes = Vec::with_capacity(batch.events.len());
    let (mut dups, version) = (0u64, {
        let mut engine = shared.engine.write();
        for ev in &batch.events {
            let now = shared.clock.now_ms();
            let outcome = match engine.apply(ev, now) {
                Ok(Applied::New) => {
                    shared.clock.observe(ev.ts_ms());
                    Outcome::Applied
                }
                Ok(Applied::Duplicate) => Outcome::Duplicate,
                Err(r) => Outcome::Rejected(r),
            };
            outcomes.push(outcome);
        }
        engine.version()
    });
    for o in &outcomes {
        match o {
            Outcome::Duplicate => dups += 1,
            Outcome::Rejected(r) => shared.telemetry.rejected(batch.source, r.reason),
            Outcome::Applied => {}
        }
    }
    if dups > 0 {
        shared.telemetry.duplicates(dups);
    }
    shared.changes.send_replace(version);
    // The sender may have gone (client disconnected); the events are
    // applied regardless, and a retry will be a duplicate.
    let _ = batch.reply.send(outcomes);
}
