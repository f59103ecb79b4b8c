//! The demo source: the simulator, paced in real time.
//!
//! Events carry wall-clock timestamps as they are emitted, so the demo
//! daemon (on the system clock) shows live ages and waits.

use futures_util::future::BoxFuture;

use super::{Context, Source, SourceError};
use crate::simulate::{SimOptions, Simulator};

pub const NAME: &str = "simulator";

pub struct SimulatorSource {
    opts: SimOptions,
}

impl SimulatorSource {
    pub fn new(opts: SimOptions) -> Self {
        SimulatorSource { opts }
    }
}

impl Source for SimulatorSource {
    fn run(self: Box<Self>, mut cx: Context) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move {
            let start = chrono::Utc::now().timestamp_millis();
            let origin = tokio::time::Instant::now();
            let mut sim = Simulator::new(self.opts, start);
            loop {
                let due = sim.peek_ms() - start;
                let at = origin + std::time::Duration::from_millis(due.max(0) as u64);
                tokio::select! {
                    _ = cx.shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep_until(at) => {}
                }
                let now = start + origin.elapsed().as_millis() as i64;
                let mut batch = Vec::new();
                while sim.peek_ms() <= now && batch.len() < 1000 {
                    if let Some(ev) = sim.next() {
                        batch.push(ev);
                    }
                }
                cx.received(batch.len());
                if cx.submit(batch, None).await.is_err() {
                    return Ok(());
                }
            }
        })
    }
}
