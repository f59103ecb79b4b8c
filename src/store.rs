//! The data directory: journal, snapshots, recovery.
//!
//! Layout: `journal/` (segments, see `journal.rs`), `snapshots/`
//! (`<seq>.snap`: the state after the first `seq` journal records),
//! `deadletters.ndjson`. On start the newest snapshot that reads back
//! intact is loaded (a damaged one is reported and the one before it
//! tried, down to an empty state) and the journal is replayed from its
//! position; a torn journal tail is cut. Journal segments are removed only
//! once they are older than the oldest snapshot kept, so falling back one
//! snapshot always finds the records it needs.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::clock::Clock;
use crate::engine::settings::Settings;
use crate::engine::{Applied, Engine};
use crate::journal::{self, Record};

const MAGIC: &[u8; 8] = b"CWSNAP01";
const SNAP_HEADER: usize = 8 + 8 + 8 + 8 + 4;
/// Records handed from the journal reader to the applying thread at once.
const RECOVERY_BATCH: usize = 1024;

pub fn journal_dir(data: &Path) -> PathBuf {
    data.join("journal")
}

pub fn snapshot_dir(data: &Path) -> PathBuf {
    data.join("snapshots")
}

/// What recovery found and did.
#[derive(Debug)]
pub struct Recovered {
    pub engine: Engine,
    /// The number the next journal record gets.
    pub next: u64,
    /// Position of the snapshot loaded (0 without one).
    pub snapshot: u64,
    /// Journal records replayed after it.
    pub replayed: u64,
    /// Human-readable findings: damage, cuts, fallbacks.
    pub notes: Vec<String>,
}

fn snapshots(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut v = Vec::new();
    if !dir.exists() {
        return Ok(v);
    }
    for e in fs::read_dir(dir)? {
        let path = e?.path();
        if let Some(seq) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".snap"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            v.push((seq, path));
        }
    }
    v.sort();
    Ok(v)
}

/// Reads a snapshot file: (seq, clock, state bytes), checked.
fn read_snapshot(path: &Path) -> Result<(u64, i64, Vec<u8>), String> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() < SNAP_HEADER || &bytes[..8] != MAGIC {
        return Err("not a callwatch snapshot (bad header)".into());
    }
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let (seq, clock, len) = (u64_at(8), u64_at(16) as i64, u64_at(24) as usize);
    let mut c = [0u8; 4];
    c.copy_from_slice(&bytes[32..36]);
    let body = &bytes[SNAP_HEADER..];
    if body.len() != len {
        return Err(format!("truncated: {} of {len} bytes", body.len()));
    }
    if crc32fast::hash(body) != u32::from_le_bytes(c) {
        return Err("checksum mismatch".into());
    }
    Ok((seq, clock, body.to_vec()))
}

/// Writes a snapshot durably (temporary file, fsync, rename, fsync dir),
/// then keeps the newest `keep`. Returns the position of the oldest
/// snapshot kept: journal records before it are no longer needed.
pub fn write_snapshot(
    data: &Path,
    seq: u64,
    clock_ms: i64,
    state: &[u8],
    keep: usize,
    positions: &Positions,
) -> io::Result<u64> {
    let dir = snapshot_dir(data);
    fs::create_dir_all(&dir)?;
    // The sources' positions the state covers, before the snapshot that
    // claims them (a snapshot never exists without its positions).
    if !positions.is_empty() {
        let side = dir.join(format!("{seq:020}.positions"));
        let tmp = dir.join(format!("{seq:020}.positions.tmp"));
        let mut f = File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(positions).map_err(io::Error::other)?)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &side)?;
    }
    let tmp = dir.join(format!("{seq:020}.snap.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(MAGIC)?;
    f.write_all(&seq.to_le_bytes())?;
    f.write_all(&(clock_ms as u64).to_le_bytes())?;
    f.write_all(&(state.len() as u64).to_le_bytes())?;
    f.write_all(&crc32fast::hash(state).to_le_bytes())?;
    f.write_all(state)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, dir.join(format!("{seq:020}.snap")))?;
    journal::sync_dir(&dir)?;
    let all = snapshots(&dir)?;
    let cut = all.len().saturating_sub(keep.max(1));
    for (_, path) in &all[..cut] {
        fs::remove_file(path)?;
        let side = path.with_extension("positions");
        if side.exists() {
            fs::remove_file(side)?;
        }
    }
    Ok(all.get(cut).map(|s| s.0).unwrap_or(0))
}

/// How far each positioned source's input a snapshot covers (JetStream:
/// stream sequence), by source name.
pub type Positions = std::collections::BTreeMap<String, u64>;

/// What `recover_snapshot` found.
#[derive(Debug)]
pub struct FromSnapshot {
    pub engine: Engine,
    /// The snapshot's position (events applied up to it).
    pub seq: u64,
    pub positions: Positions,
    pub notes: Vec<String>,
}

/// Stream mode (`storage.journal = "stream"`): the newest intact snapshot
/// and the stream positions it covers; there is no journal to replay.
/// A snapshot without its positions file is unusable here (the stream
/// could not be resumed at the right place), and so is a data directory
/// that holds a journal (it was used in local mode: switching would
/// silently drop what only that journal has).
pub fn recover_snapshot(
    data: &Path,
    settings: &Settings,
    clock: &dyn Clock,
) -> io::Result<FromSnapshot> {
    if !journal::segments(&journal_dir(data))?.is_empty() {
        return Err(io::Error::other(format!(
            "{} holds a journal: this data directory was used with storage.journal = \"local\"; \
             start stream mode with an empty one (or set journal = \"local\" again)",
            data.display()
        )));
    }
    let mut notes = Vec::new();
    for (_, path) in snapshots(&snapshot_dir(data))?.into_iter().rev() {
        let side = path.with_extension("positions");
        let loaded = read_snapshot(&path)
            .and_then(|(s, c, bytes)| {
                Engine::load(settings.clone(), &bytes)
                    .map(|e| (s, c, e))
                    .map_err(|e| e.to_string())
            })
            .and_then(|(s, c, e)| {
                let text = fs::read(&side)
                    .map_err(|e| format!("its positions {}: {e}", side.display()))?;
                let p: Positions = serde_json::from_slice(&text)
                    .map_err(|e| format!("its positions {}: {e}", side.display()))?;
                Ok((s, c, e, p))
            });
        match loaded {
            Ok((seq, c, engine, positions)) => {
                clock.observe(c);
                return Ok(FromSnapshot {
                    engine,
                    seq,
                    positions,
                    notes,
                });
            }
            Err(why) => notes.push(format!(
                "snapshot {} is unusable ({why}); falling back to an older one",
                path.display()
            )),
        }
    }
    if !notes.is_empty() {
        return Err(io::Error::other(format!(
            "no usable snapshot, and the stream cannot be replayed from a guessed place: {}",
            notes.join("; ")
        )));
    }
    Ok(FromSnapshot {
        engine: Engine::new(settings.clone()),
        seq: 0,
        positions: Positions::new(),
        notes,
    })
}

/// Loads the newest intact snapshot and replays the journal after it.
pub fn recover(data: &Path, settings: &Settings, clock: &dyn Clock) -> io::Result<Recovered> {
    let mut notes = Vec::new();
    let mut engine = None;
    let mut from = 0;
    for (seq, path) in snapshots(&snapshot_dir(data))?.into_iter().rev() {
        match read_snapshot(&path).and_then(|(s, c, bytes)| {
            Engine::load(settings.clone(), &bytes)
                .map(|e| (s, c, e))
                .map_err(|e| e.to_string())
        }) {
            Ok((s, c, e)) => {
                clock.observe(c);
                engine = Some(e);
                from = s;
                break;
            }
            Err(why) => notes.push(format!(
                "snapshot {} is unusable ({why}); falling back to an older one",
                path.display()
            )),
        }
        let _ = seq;
    }
    let mut engine = engine.unwrap_or_else(|| {
        if !notes.is_empty() {
            notes.push("no intact snapshot: replaying the whole journal".into());
        }
        Engine::new(settings.clone())
    });
    // Reading, checking and decoding records runs on its own thread,
    // applying them on this one: on two cores recovery then costs about
    // what applying alone costs (decode was a third of it).
    let mut replayed = 0;
    let jdir = journal_dir(data);
    let (next, mut jnotes) = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Record>>(8);
        let reader = s.spawn(move || {
            let mut batch = Vec::with_capacity(RECOVERY_BATCH);
            let r = journal::replay(&jdir, from, |_, rec| {
                batch.push(rec);
                if batch.len() == RECOVERY_BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(RECOVERY_BATCH));
                    let _ = tx.send(full);
                }
            });
            if !batch.is_empty() {
                let _ = tx.send(batch);
            }
            r
        });
        for rec in rx.into_iter().flatten() {
            replayed += 1;
            match rec {
                // The journal holds accepted events only: their times were
                // judged when they arrived, so they are not judged again.
                Record::Event { event, .. } => {
                    if let Ok(Applied::New) = engine.apply(&event, None) {
                        clock.observe(event.ts_ms());
                    }
                }
                // Older builds journaled retention ticks; retention now
                // runs on the event clock inside `apply`.
                Record::Tick { .. } => {}
            }
        }
        reader
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the journal reader panicked")))
    })?;
    if from > 0 && next < from {
        notes.push(format!(
            "the journal ends at record {next}, before the snapshot's {from}"
        ));
    }
    notes.append(&mut jnotes);
    Ok(Recovered {
        engine,
        next: next.max(from),
        snapshot: from,
        replayed,
        notes,
    })
}

/// Copies the raw journal segments into `out` (tests and support).
pub fn journal_files(data: &Path) -> io::Result<Vec<PathBuf>> {
    Ok(journal::segments(&journal_dir(data))?
        .into_iter()
        .map(|(_, p)| p)
        .collect())
}

pub fn snapshot_files(data: &Path) -> io::Result<Vec<PathBuf>> {
    Ok(snapshots(&snapshot_dir(data))?
        .into_iter()
        .map(|(_, p)| p)
        .collect())
}
