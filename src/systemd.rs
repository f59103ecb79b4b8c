//! Telling the service manager how the daemon is doing (sd_notify(3)):
//! `READY=1` once recovery is done and the listeners serve, `STATUS=`
//! lines, `STOPPING=1` when the drain starts, and `WATCHDOG=1` only while
//! the writer thread is still taking its ticks, so a writer stuck on a
//! hung disk gets the unit restarted (`WatchdogSec=` in
//! packaging/callwatch.service). Outside a `Type=notify` unit (no
//! `NOTIFY_SOCKET`) every call does nothing.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use crate::writer::Shared;

fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "could not notify the service manager");
    }
}

/// The drain has begun.
pub fn stopping() {
    notify(&[NotifyState::Stopping, NotifyState::Status("draining")]);
}

/// Says `READY=1` once the writer is ready (recovery done), then pings
/// the watchdog, if the unit has one, at half its period for as long as
/// the writer ticks. Ends with `cancel` or when the writer fails.
pub async fn supervise(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut poll = tokio::time::interval(Duration::from_millis(20));
    while !shared.is_ready() {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = shared.fatal.cancelled() => return,
            _ = poll.tick() => {}
        }
    }
    let status = format!(
        "ready: {} journal records",
        shared.journal_seq.load(Ordering::Relaxed)
    );
    notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
    tracing::debug!("told the service manager: ready");
    let Some(period) = sd_notify::watchdog_enabled() else {
        return;
    };
    let mut every = tokio::time::interval(period / 2);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = shared.ticks.load(Ordering::Relaxed);
    let mut stalled = false;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = shared.fatal.cancelled() => return,
            _ = every.tick() => {}
        }
        let now = shared.ticks.load(Ordering::Relaxed);
        if now != seen {
            seen = now;
            stalled = false;
            notify(&[NotifyState::Watchdog]);
        } else if !stalled {
            // Once per stall: the service manager acts on the silence.
            stalled = true;
            tracing::error!(
                "the writer has not ticked for {:?}; not pinging the watchdog",
                period / 2
            );
        }
    }
}
