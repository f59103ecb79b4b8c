//! Dead letters: refused events, kept with their reason for inspection.
//!
//! Sources and the writer hand refusals to a bounded channel; one thread
//! appends them as NDJSON to `deadletters.ndjson` in the data directory,
//! rotating to `deadletters.1.ndjson` at the size limit (so at most twice
//! the limit is on disk). When the channel is full the entry is dropped
//! rather than slowing ingest down; both losses, the entries a rotation
//! overwrites and those a full channel drops, are counted in
//! `callwatch_deadletters_dropped_total{reason}`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

use serde::Serialize;

use crate::reject::Rejection;

pub const FILE: &str = "deadletters.ndjson";
pub const OLD: &str = "deadletters.1.ndjson";
/// Longest raw input kept per entry.
const MAX_RAW: usize = 4096;

#[derive(Serialize)]
struct Entry<'a> {
    at: String,
    source: &'a str,
    reason: &'a str,
    error: &'a str,
    input: &'a str,
}

/// A cheap handle to the dead-letter file.
#[derive(Clone)]
pub struct DeadLetters {
    tx: SyncSender<String>,
    dropped: Arc<AtomicU64>,
    telemetry: Arc<crate::metric::Telemetry>,
}

fn lines_in(path: &Path) -> u64 {
    fs::read(path)
        .map(|b| b.iter().filter(|c| **c == b'\n').count() as u64)
        .unwrap_or(0)
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeadLetters")
    }
}

impl DeadLetters {
    /// Starts the writer thread for `dir`.
    pub fn start(
        dir: &Path,
        max_bytes: u64,
        telemetry: Arc<crate::metric::Telemetry>,
    ) -> io::Result<DeadLetters> {
        fs::create_dir_all(dir)?;
        let (tx, rx) = sync_channel::<String>(4096);
        let path = dir.join(FILE);
        let old = dir.join(OLD);
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        let mut size = file.metadata()?.len();
        // Entries in each file: a rotation overwrites the older one's.
        let (mut lines, mut old_lines) = (lines_in(&path), lines_in(&old));
        telemetry.deadletters_dropped("rotated", 0);
        telemetry.deadletters_dropped("queue_full", 0);
        let t = telemetry.clone();
        std::thread::Builder::new()
            .name("deadletters".into())
            .spawn(move || {
                for line in rx {
                    if size + line.len() as u64 > max_bytes && size > 0 {
                        let rotated = fs::rename(&path, &old).and_then(|()| {
                            OpenOptions::new().create(true).append(true).open(&path)
                        });
                        match rotated {
                            Ok(f) => {
                                file = f;
                                size = 0;
                                t.deadletters_dropped("rotated", old_lines);
                                old_lines = std::mem::take(&mut lines);
                            }
                            Err(e) => tracing::warn!(error = %e, "dead letters: cannot rotate"),
                        }
                    }
                    match file.write_all(line.as_bytes()) {
                        Ok(()) => {
                            size += line.len() as u64;
                            lines += 1;
                        }
                        Err(e) => tracing::warn!(error = %e, "dead letters: cannot write"),
                    }
                }
            })?;
        Ok(DeadLetters {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            telemetry,
        })
    }

    /// Records a refused input (never blocks).
    pub fn record(&self, now_ms: i64, source: &str, r: &Rejection, input: &[u8]) {
        let mut end = input.len().min(MAX_RAW);
        while !input.is_char_boundary_lossy(end) {
            end -= 1;
        }
        let text = String::from_utf8_lossy(&input[..end]);
        let at = chrono::DateTime::from_timestamp_millis(now_ms)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
        let entry = Entry {
            at,
            source,
            reason: r.reason.as_str(),
            error: &r.message,
            input: &text,
        };
        let Ok(mut line) = serde_json::to_string(&entry) else {
            return;
        };
        line.push('\n');
        if let Err(TrySendError::Full(_)) = self.tx.try_send(line) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.telemetry.deadletters_dropped("queue_full", 1);
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

trait CharBoundary {
    fn is_char_boundary_lossy(&self, i: usize) -> bool;
}

impl CharBoundary for [u8] {
    /// True at the end, or where a UTF-8 sequence starts (or the bytes are
    /// not UTF-8 at all, where any cut is as good as another).
    fn is_char_boundary_lossy(&self, i: usize) -> bool {
        i == 0 || i >= self.len() || (self[i] as i8) >= -0x40
    }
}

/// The dead-letter files of a data directory, oldest first.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    [dir.join(OLD), dir.join(FILE)]
        .into_iter()
        .filter(|p| p.exists())
        .collect()
}

/// Prints every dead letter in `dir` to `out`, oldest first.
pub fn list(dir: &Path, out: &mut impl Write) -> io::Result<u64> {
    let mut n = 0;
    for path in files(dir) {
        for line in BufReader::new(File::open(path)?).lines() {
            writeln!(out, "{}", line?)?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reject::Reason;

    fn rendered(t: &crate::metric::Telemetry, series: &str) -> f64 {
        let mut buf = String::new();
        t.render(&mut buf);
        buf.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    #[test]
    fn what_rotation_overwrites_is_counted() {
        let dir = tempfile::tempdir().expect("tmp");
        let t = crate::metric::Telemetry::new();
        let d = DeadLetters::start(dir.path(), 600, t.clone()).expect("start");
        let r = Rejection::new(Reason::UnknownCall, String::from("call \"x\" is not live"));
        for i in 0..40 {
            d.record(0, "http", &r, format!("{{\"id\":\"e{i}\"}}").as_bytes());
        }
        let rotated = r#"callwatch_deadletters_dropped_total{reason="rotated"}"#;
        // Every entry is in a file or counted as overwritten.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let kept: u64 = files(dir.path()).iter().map(|p| lines_in(p)).sum();
            let lost = rendered(&t, rotated) as u64;
            if kept + lost == 40 {
                assert!(lost > 0, "the limit forced rotations");
                let total: u64 = files(dir.path())
                    .iter()
                    .map(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
                    .sum();
                assert!(total <= 2 * 600 + 200, "bounded: {total}");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{kept} + {lost}");
            std::thread::yield_now();
        }
    }
}
