//! What every source gets from the daemon: one [`Context`].
//!
//! The writer handle, the shutdown signal, the source's own durable
//! checkpoint, the shared reconnect policy and the counters every source
//! reports under the same names (received, refused, skipped, reconnects,
//! lag). A source decides how to read its input; everything else is
//! here, once.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::checkpoint::Checkpoint;
use crate::event::Event;
use crate::metric::Telemetry;
use crate::reject::Rejection;
use crate::writer::{Encoded, Ingest, IngestError, Outcome};

/// The source was asked to stop (or the writer is gone) before its batch
/// was taken: nothing of it was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

pub struct Context {
    pub ingest: Ingest,
    pub shutdown: CancellationToken,
    pub checkpoint: Checkpoint,
    pub backoff: Backoff,
    kind: &'static str,
    name: String,
    telemetry: Arc<Telemetry>,
}

impl Context {
    pub fn new(
        kind: &'static str,
        name: String,
        ingest: Ingest,
        shutdown: CancellationToken,
        telemetry: Arc<Telemetry>,
        checkpoint: Checkpoint,
    ) -> Context {
        telemetry.source_started(kind);
        Context {
            ingest,
            shutdown,
            checkpoint,
            backoff: Backoff::default(),
            kind,
            name,
            telemetry,
        }
    }

    /// The `source` label of the counters (the source's type).
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The configured instance name (log lines, checkpoint file).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    pub fn received(&self, n: usize) {
        self.ingest.received(self.kind, n);
    }

    pub fn skipped(&self, reason: &'static str) {
        self.ingest.skipped(self.kind, reason);
    }

    pub fn rejected(&self, r: &Rejection, input: &[u8]) {
        self.ingest.rejected(self.kind, r, input);
    }

    /// State set right from what the peer says (`kind` names what).
    pub fn corrected(&self, kind: &'static str, n: u64) {
        if n > 0 {
            self.telemetry.corrected(self.kind, kind, n);
        }
    }

    /// The peer is back after a lost connection.
    pub fn reconnected(&self) {
        self.telemetry.reconnected(self.kind);
    }

    /// Applies a batch and waits until it is durable (the journal commit
    /// under the fsync policy). While storage fails the batch is kept and
    /// retried with backoff (counted as a reconnect): a source never
    /// exits, and never skips input, because the disk was full for a
    /// while. `Err(Stopped)` only on shutdown, with nothing applied.
    pub async fn submit(
        &mut self,
        events: Vec<Event>,
        raw: Option<Encoded>,
    ) -> Result<Vec<Outcome>, Stopped> {
        let (mut events, mut raw) = (events, raw);
        loop {
            match self.ingest.offer(self.kind, events, raw).await {
                Ok(o) => {
                    self.backoff.reset();
                    return Ok(o);
                }
                Err(r) if matches!(r.error, IngestError::Storage(_)) => {
                    tracing::warn!(source = %self.name, error = %r.error, "batch refused by storage; retrying");
                    self.telemetry.reconnected(self.kind);
                    (events, raw) = (r.events, r.encoded);
                    if !self.backoff.wait(&self.shutdown).await {
                        return Err(Stopped);
                    }
                }
                Err(_) => return Err(Stopped),
            }
        }
    }
}
