//! Sources: everything that feeds events in.
//!
//! Each source lives in its own module behind the one [`Source`] trait:
//! it owns its input (a listener, a file, a connection), decodes into
//! canonical events, counts what it received and refused, and hands
//! batches to the writer through [`Ingest`]. HTTP ingest is served by the
//! API router (it shares the HTTP listener) but follows the same rules.

pub mod asterisk;
pub mod line;
pub mod simulator;
pub mod tcp;

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::writer::Ingest;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{source_name}: {message}")]
    Failed {
        source_name: &'static str,
        message: String,
    },
}

/// A long-running producer of events.
pub trait Source: Send {
    /// The `source` label of its counters.
    fn name(&self) -> &'static str;
    /// Runs until `shutdown` is cancelled (or the input ends).
    fn run(
        self: Box<Self>,
        ingest: Ingest,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SourceError>>;
}
