//! Dead letters: refused events, kept with their reason for inspection.
//!
//! Sources and the writer hand refusals to a bounded channel; one thread
//! appends them as NDJSON to `deadletters.ndjson` in the data directory,
//! rotating to `deadletters.1.ndjson` at the size limit (so at most twice
//! the limit is on disk). When the channel is full the entry is dropped
//! and counted rather than slowing ingest down.

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
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeadLetters")
    }
}

impl DeadLetters {
    /// Starts the writer thread for `dir`.
    pub fn start(dir: &Path, max_bytes: u64) -> io::Result<DeadLetters> {
        fs::create_dir_all(dir)?;
        let (tx, rx) = sync_channel::<String>(4096);
        let path = dir.join(FILE);
        let old = dir.join(OLD);
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        let mut size = file.metadata()?.len();
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
                            }
                            Err(e) => tracing::warn!(error = %e, "dead letters: cannot rotate"),
                        }
                    }
                    match file.write_all(line.as_bytes()) {
                        Ok(()) => size += line.len() as u64,
                        Err(e) => tracing::warn!(error = %e, "dead letters: cannot write"),
                    }
                }
            })?;
        Ok(DeadLetters {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
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
