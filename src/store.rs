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
/// A forked snapshot child that takes longer is killed and the snapshot
/// counted as failed (a hung disk must not hold every later snapshot
/// back). A million open tasks take about a second here.
#[cfg(target_os = "linux")]
const SNAPSHOT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(600);

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
    pub report: Report,
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

/// The snapshot's files, durably, or nothing at all: a failed snapshot
/// leaves nothing behind (a full disk gets its space back at once).
pub fn put_snapshot(
    data: &Path,
    seq: u64,
    clock_ms: i64,
    state: &[u8],
    positions: &Positions,
) -> io::Result<()> {
    let dir = snapshot_dir(data);
    fs::create_dir_all(&dir)?;
    let side_tmp = dir.join(format!("{seq:020}.positions.tmp"));
    let tmp = dir.join(format!("{seq:020}.snap.tmp"));
    let written = write_snapshot_files(&dir, seq, clock_ms, state, positions, &side_tmp, &tmp);
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
        let _ = fs::remove_file(&side_tmp);
    }
    written
}

/// Keeps the newest `keep` snapshots; the position of the oldest kept.
pub fn prune_snapshots(data: &Path, keep: usize) -> io::Result<u64> {
    let all = snapshots(&snapshot_dir(data))?;
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

/// How a snapshot's state comes to be written.
#[derive(Debug)]
pub enum SnapshotBody {
    /// Serialised by the writer: the snapshot thread writes the files.
    Bytes(Vec<u8>),
    /// A forked child serialises and writes the files itself
    /// (`storage.snapshot_mode = "fork"`); the snapshot thread waits for
    /// it, then prunes.
    #[cfg(target_os = "linux")]
    Forked(crate::fork::Child),
}

/// A snapshot to write.
#[derive(Debug)]
pub struct SnapshotJob {
    pub data: PathBuf,
    pub seq: u64,
    pub clock_ms: i64,
    pub state: SnapshotBody,
    /// How long the writer paused to take it (collect the positions,
    /// fork or serialise).
    pub pause_ms: u64,
    pub keep: usize,
    pub positions: Positions,
    /// Remove the journal segments the oldest kept snapshot covers.
    pub journal: bool,
}

/// A snapshot job's end: its position and size, or why it failed.
pub type Outcome = Result<(u64, usize), String>;

/// Writes snapshots on a thread of its own, one at a time: the writer
/// thread only serialises the state and hands the bytes over, so the
/// file write, its fsyncs and the removal of covered segments never hold
/// ingest back.
pub struct SnapshotWriter {
    tx: Option<std::sync::mpsc::SyncSender<SnapshotJob>>,
    thread: Option<std::thread::JoinHandle<()>>,
    busy: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Notified when a job is done (`wait_idle`).
    idle: std::sync::Arc<(parking_lot::Mutex<()>, parking_lot::Condvar)>,
    /// The last job's outcome: its position and size, or why it failed.
    outcome: std::sync::Arc<parking_lot::Mutex<Option<Outcome>>>,
}

impl SnapshotWriter {
    pub fn start() -> io::Result<SnapshotWriter> {
        use std::sync::atomic::Ordering;
        let (tx, rx) = std::sync::mpsc::sync_channel::<SnapshotJob>(1);
        let busy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let outcome = std::sync::Arc::new(parking_lot::Mutex::new(None));
        let idle = std::sync::Arc::new((parking_lot::Mutex::new(()), parking_lot::Condvar::new()));
        let (b, o, i) = (busy.clone(), outcome.clone(), idle.clone());
        let thread = std::thread::Builder::new()
            .name("callwatch-snapshot".into())
            .spawn(move || {
                for job in rx {
                    let started = std::time::Instant::now();
                    let written = match job.state {
                        SnapshotBody::Bytes(state) => {
                            put_snapshot(&job.data, job.seq, job.clock_ms, &state, &job.positions)
                                .map(|()| state.len() as u64)
                        }
                        #[cfg(target_os = "linux")]
                        SnapshotBody::Forked(child) => {
                            let r = child.wait(SNAPSHOT_DEADLINE).map_err(io::Error::other);
                            // Under 1 ms; the next fork copies fewer
                            // page table entries (docs/performance.md).
                            crate::fork::trim_heap();
                            r
                        }
                    };
                    let result = written.and_then(|bytes| {
                        let oldest = prune_snapshots(&job.data, job.keep)?;
                        let removed = match job.journal {
                            true => {
                                journal::remove_segments_before(&journal_dir(&job.data), oldest)?
                            }
                            false => 0,
                        };
                        Ok((bytes, removed))
                    });
                    match &result {
                        Ok((bytes, removed)) => tracing::info!(
                            seq = job.seq,
                            bytes,
                            removed_segments = removed,
                            writer_paused_ms = job.pause_ms,
                            ms = started.elapsed().as_millis() as u64,
                            "snapshot written"
                        ),
                        // A failed snapshot loses nothing: the journal
                        // still has it all.
                        Err(e) => tracing::warn!(error = %e, "snapshot failed; will retry"),
                    }
                    *o.lock() = Some(
                        result
                            .map(|(bytes, _)| (job.seq, bytes as usize))
                            .map_err(|e| e.to_string()),
                    );
                    let _g = i.0.lock();
                    b.store(false, Ordering::Release);
                    i.1.notify_all();
                }
            })?;
        Ok(SnapshotWriter {
            tx: Some(tx),
            thread: Some(thread),
            busy,
            idle,
            outcome,
        })
    }

    /// Waits until no snapshot is being written (a rebuild of the state
    /// from the data directory must not read it while files change).
    pub fn wait_idle(&self) {
        let mut g = self.idle.0.lock();
        while self.busy() {
            self.idle.1.wait(&mut g);
        }
    }

    /// A snapshot is being written.
    pub fn busy(&self) -> bool {
        self.busy.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Hands a job over; `false` (the job dropped) while one is written.
    pub fn submit(&self, job: SnapshotJob) -> bool {
        use std::sync::atomic::Ordering;
        if self.busy.swap(true, Ordering::AcqRel) {
            return false;
        }
        match self.tx.as_ref().map(|tx| tx.try_send(job)) {
            Some(Ok(())) => true,
            _ => {
                self.busy.store(false, Ordering::Release);
                false
            }
        }
    }

    /// Hands a job over, waiting behind one being written (the last
    /// snapshot on the way out).
    pub fn submit_after(&self, job: SnapshotJob) -> bool {
        self.busy.store(true, std::sync::atomic::Ordering::Release);
        self.tx.as_ref().is_some_and(|tx| tx.send(job).is_ok())
    }

    /// The outcome of the last job, once: its position and size.
    pub fn take_outcome(&self) -> Option<Outcome> {
        self.outcome.lock().take()
    }

    /// Waits for a job in progress (the daemon is stopping).
    pub fn finish(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Writes and syncs `bytes` bytes in `<data>/probe.tmp` and removes it:
/// whether the file system takes that much now.
pub fn probe(data: &Path, bytes: usize) -> io::Result<()> {
    let path = data.join("probe.tmp");
    let res = File::create(&path).and_then(|mut f| {
        f.write_all(&vec![0u8; bytes])?;
        f.sync_all()
    });
    let _ = fs::remove_file(&path);
    res
}

/// Removes what a write interrupted by a crash or a full disk left:
/// temporary snapshot and positions files (never a snapshot: those are
/// renamed into place only once whole) and the storage probe.
fn remove_leftovers(data: &Path) -> io::Result<Vec<PathBuf>> {
    let mut gone = Vec::new();
    let _ = fs::remove_file(data.join("probe.tmp"));
    let Ok(rd) = fs::read_dir(snapshot_dir(data)) else {
        return Ok(gone);
    };
    for e in rd {
        let path = e?.path();
        if path.extension().is_some_and(|x| x == "tmp") {
            fs::remove_file(&path)?;
            gone.push(path);
        }
    }
    Ok(gone)
}

/// How far each positioned source's input a snapshot covers (JetStream:
/// stream sequence), by source name.
pub type Positions = std::collections::BTreeMap<String, u64>;

fn write_snapshot_files(
    dir: &Path,
    seq: u64,
    clock_ms: i64,
    state: &[u8],
    positions: &Positions,
    side_tmp: &Path,
    tmp: &Path,
) -> io::Result<()> {
    // The sources' positions the state covers, before the snapshot that
    // claims them (a snapshot never exists without its positions).
    if !positions.is_empty() {
        let side = dir.join(format!("{seq:020}.positions"));
        let mut f = File::create(side_tmp)?;
        f.write_all(&serde_json::to_vec(positions).map_err(io::Error::other)?)?;
        f.sync_all()?;
        drop(f);
        fs::rename(side_tmp, &side)?;
    }
    let mut f = File::create(tmp)?;
    f.write_all(MAGIC)?;
    f.write_all(&seq.to_le_bytes())?;
    f.write_all(&(clock_ms as u64).to_le_bytes())?;
    f.write_all(&(state.len() as u64).to_le_bytes())?;
    f.write_all(&crc32fast::hash(state).to_le_bytes())?;
    f.write_all(state)?;
    f.sync_all()?;
    drop(f);
    fs::rename(tmp, dir.join(format!("{seq:020}.snap")))?;
    journal::sync_dir(dir)
}

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
) -> Result<FromSnapshot, RecoveryError> {
    if !journal::segments(&journal_dir(data))?.is_empty() {
        return Err(RecoveryError::Refused {
            dir: data.display().to_string(),
            problems: "it holds a journal: this data directory was used with storage.journal = \"local\"; \
                 start stream mode with an empty one (or set journal = \"local\" again)"
                .into(),
        });
    }
    let mut notes = Vec::new();
    for p in remove_leftovers(data)? {
        notes.push(format!(
            "removed {}, left by an interrupted snapshot",
            p.display()
        ));
    }
    for (_, path) in snapshots(&snapshot_dir(data))?.into_iter().rev() {
        let side = path.with_extension("positions");
        let loaded = load_snapshot(&path, settings)?.and_then(|(s, c, e)| {
            let text =
                fs::read(&side).map_err(|e| format!("its positions {}: {e}", side.display()))?;
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
        return Err(RecoveryError::Refused {
            dir: data.display().to_string(),
            problems: format!(
                "no usable snapshot, and the stream cannot be replayed from a guessed place: {}",
                notes.join("; ")
            ),
        });
    }
    Ok(FromSnapshot {
        engine: Engine::new(settings.clone()),
        seq: 0,
        positions: Positions::new(),
        notes,
    })
}

/// How recovery treats what it cannot recover.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoverOptions {
    /// Start anyway on a data directory that would stop the start (a
    /// gap, a journal ending before its snapshot, no readable snapshot),
    /// accepting the losses recovery names; the originals are kept.
    pub repair: bool,
    /// Read and judge only (`callwatch check-data`): nothing is cut,
    /// copied, moved or removed.
    pub dry_run: bool,
}

/// What recovery concluded, worst last.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nothing to report.
    Clean,
    /// Only an unacknowledged torn tail was cut (a crash mid-write).
    TornTail,
    /// Damage was read past (and kept in quarantine): the records it
    /// cost are named; the start went on.
    Damaged,
    /// `--repair` accepted losses that would have stopped the start.
    Repaired,
    /// Recovery failed (the daemon does not start; seen by a rebuild
    /// after a failed write).
    Failed,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Clean,
        Status::TornTail,
        Status::Damaged,
        Status::Repaired,
        Status::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Clean => "clean",
            Status::TornTail => "torn_tail",
            Status::Damaged => "damaged",
            Status::Repaired => "repaired",
            Status::Failed => "failed",
        }
    }
}

/// The `reason` values of `callwatch_recovery_records_skipped_total`.
pub const SKIP_REASONS: [&str; 4] = ["torn_tail", "damaged", "undecodable", "missing"];

/// What recovery found, for the log, `/readyz` and the metrics.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Report {
    pub status: Status,
    /// Position of the snapshot loaded (0 without one).
    pub snapshot: u64,
    /// Journal records replayed after it.
    pub replayed: u64,
    /// The number the next journal record gets.
    pub next: u64,
    /// Every finding, one sentence each.
    pub findings: Vec<String>,
    /// Records lost (or never acknowledged: torn tails), by reason.
    pub skipped: std::collections::BTreeMap<&'static str, u64>,
    /// Where copies of damaged files are kept, when any were made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<PathBuf>,
}

/// Why recovery did not produce a state to start with.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The data directory lost acknowledged records, or cannot show that
    /// it did not; nothing was changed.
    #[error(
        "{dir}: {problems}. Nothing was changed; start with --repair to accept exactly these losses \
         (the originals are then kept in {dir}/quarantine)"
    )]
    Refused { dir: String, problems: String },
    /// Written by a newer build: never read partially.
    #[error("{0}")]
    Newer(String),
}

pub fn quarantine_dir(data: &Path) -> PathBuf {
    data.join("quarantine")
}

/// A snapshot this build cannot use, refusing outright one that a newer
/// build wrote.
fn load_snapshot(
    path: &Path,
    settings: &Settings,
) -> Result<Result<(u64, i64, Engine), String>, RecoveryError> {
    let (seq, clock, bytes) = match read_snapshot(path) {
        Ok(s) => s,
        Err(why) => return Ok(Err(why)),
    };
    match Engine::load(settings.clone(), &bytes) {
        Ok(e) => Ok(Ok((seq, clock, e))),
        Err(e @ crate::engine::persist::LoadError::Newer { .. }) => {
            Err(RecoveryError::Newer(format!(
                "snapshot {}: {e}. Start the newer build again, or restore the data directory \
                 from before the upgrade (docs/upgrading.md)",
                path.display(),
            )))
        }
        Err(e) => Ok(Err(e.to_string())),
    }
}

/// Loads the newest intact snapshot and replays the journal after it.
///
/// A torn tail is cut, damage is read past and copied to the quarantine
/// directory, a snapshot that does not read back is moved there and the
/// one before it used. What would lose acknowledged records without a
/// trace (a gap in the journal, a journal that ends before the snapshot
/// it should continue, no readable snapshot where one was written) stops
/// the start, unless `opts.repair`; a data directory of a newer build
/// always does.
pub fn recover(
    data: &Path,
    settings: &Settings,
    clock: &dyn Clock,
    opts: RecoverOptions,
) -> Result<Recovered, RecoveryError> {
    let quarantine = quarantine_dir(data);
    let mut engine = None;
    let mut from = 0;
    let mut bad = Vec::new();
    for (_, path) in snapshots(&snapshot_dir(data))?.into_iter().rev() {
        match load_snapshot(&path, settings)? {
            Ok((s, c, e)) => {
                clock.observe(c);
                engine = Some(e);
                from = s;
                break;
            }
            Err(why) => bad.push((path, why)),
        }
    }
    let mut findings: Vec<String> = bad
        .iter()
        .map(|(p, why)| format!("snapshot {} is unusable ({why})", p.display()))
        .collect();
    let mut problems = Vec::new();
    if engine.is_none() && !bad.is_empty() {
        problems.push(format!(
            "no readable snapshot, though {} were written ({}); replaying the journal alone would \
             start from whatever it still holds",
            bad.len(),
            bad.iter()
                .map(|(p, why)| format!("{}: {why}", p.display()))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    let mut engine = engine.unwrap_or_else(|| Engine::new(settings.clone()));
    // Reading, checking and decoding records runs on its own thread,
    // applying them on this one: on two cores recovery then costs about
    // what applying alone costs (decode was a third of it).
    let mut replayed = 0;
    let jdir = journal_dir(data);
    let scan = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Record>>(8);
        let q = &quarantine;
        let reader = s.spawn(move || {
            let mut batch = Vec::with_capacity(RECOVERY_BATCH);
            let ropts = journal::ReplayOptions {
                from,
                quarantine: (!opts.dry_run).then_some(q.as_path()),
            };
            let r = journal::replay(&jdir, ropts, |_, rec| {
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
    let mut skipped = std::collections::BTreeMap::new();
    for r in SKIP_REASONS {
        skipped.insert(r, 0);
    }
    for f in &scan.findings {
        *skipped.entry(f.reason()).or_insert(0) += f.records();
        if let journal::Finding::Missing { .. } = f {
            problems.push(f.to_string());
        }
        findings.push(f.to_string());
    }
    if scan.reach < from {
        let why = format!(
            "the journal ends at record {}, before the snapshot's position {from}: it was cut or \
             segments were deleted, and whatever was acknowledged after the snapshot is gone \
             (how many records is unknown)",
            scan.reach
        );
        problems.push(why.clone());
        findings.push(why);
    }
    let repaired = !problems.is_empty();
    if repaired && (opts.dry_run || !opts.repair) {
        return Err(RecoveryError::Refused {
            dir: data.display().to_string(),
            problems: problems.join("; "),
        });
    }
    // Decided: from here on the data directory may change (not in a
    // dry run, which only reports).
    let mut kept_aside = false;
    if !opts.dry_run {
        kept_aside = apply_recovery(data, &quarantine, &scan, &bad, repaired, &mut findings)?;
    }
    let status = if repaired {
        Status::Repaired
    } else if !bad.is_empty()
        || scan
            .findings
            .iter()
            .any(|f| !matches!(f, journal::Finding::TornTail { .. }))
    {
        Status::Damaged
    } else if scan.findings.is_empty() {
        Status::Clean
    } else {
        Status::TornTail
    };
    let next = scan.next.max(from);
    Ok(Recovered {
        engine,
        next,
        snapshot: from,
        replayed,
        report: Report {
            status,
            snapshot: from,
            replayed,
            next,
            findings,
            skipped,
            quarantine: kept_aside.then_some(quarantine),
        },
    })
}

/// What a recovery that goes on changes on disk: leftovers removed, the
/// originals kept for a repair, the tail cut, unreadable snapshots moved
/// aside. Returns whether anything was kept in quarantine.
fn apply_recovery(
    data: &Path,
    quarantine: &Path,
    scan: &journal::Scan,
    bad: &[(PathBuf, String)],
    repaired: bool,
    findings: &mut Vec<String>,
) -> Result<bool, RecoveryError> {
    for p in remove_leftovers(data)? {
        findings.push(format!(
            "removed {}, left by an interrupted snapshot",
            p.display()
        ));
    }
    let mut kept_aside = scan.findings.iter().any(|f| {
        matches!(
            f,
            journal::Finding::Damaged { .. } | journal::Finding::TornTail { .. }
        )
    });
    if repaired {
        let copy = keep_originals(data)?;
        findings.push(format!(
            "--repair: the data directory as it was is kept in {}",
            copy.display()
        ));
        kept_aside = true;
    }
    if let Some((path, at)) = &scan.cut {
        journal::cut_tail(path, *at, Some(quarantine))?;
    }
    for (path, _) in bad {
        // Out of the way of the snapshots kept and deleted from now on,
        // never deleted: a later build may read it.
        fs::create_dir_all(quarantine)?;
        let to = quarantine.join(format!("snapshot-{}", journal_file_name(path)));
        fs::rename(path, &to)?;
        let side = path.with_extension("positions");
        if side.exists() {
            fs::rename(&side, to.with_extension("positions"))?;
        }
        journal::sync_dir(&snapshot_dir(data))?;
        kept_aside = true;
    }
    Ok(kept_aside)
}

/// `callwatch check-data`: the formats and ranges in a data directory,
/// and what a start of this build would do with it. `Ok(false)` when it
/// holds damage (or a start would refuse it).
pub fn check(data: &Path, settings: &Settings, out: &mut impl Write) -> io::Result<bool> {
    use crate::engine::persist;
    writeln!(
        out,
        "callwatch {} reads journal formats 1..={} and state formats {}..={}",
        env!("CARGO_PKG_VERSION"),
        journal::FORMAT,
        persist::OLDEST,
        persist::FORMAT
    )?;
    let mut whole_state = true;
    for (seq, path) in snapshots(&snapshot_dir(data))? {
        let what = match read_snapshot(&path) {
            Ok((_, _, body)) => match persist::format_of(&body) {
                Ok((f, by)) => {
                    let by = by.map(|b| format!(", written by {b}")).unwrap_or_default();
                    match f {
                        f if f == persist::FORMAT => format!("state format {f}{by}"),
                        f if f > persist::FORMAT => {
                            whole_state = false;
                            format!("state format {f}{by}: newer than this build reads; a start refuses it")
                        }
                        f if f >= persist::OLDEST => format!(
                            "state format {f}{by}: a start migrates it to {}",
                            persist::FORMAT
                        ),
                        f => format!("state format {f}: older than any release wrote"),
                    }
                }
                Err(e) => format!("unreadable state ({e})"),
            },
            Err(why) => format!("unusable ({why})"),
        };
        writeln!(out, "snapshot {seq:>12}  {what}  {}", path.display())?;
    }
    let mut whole = true;
    let mut expected: Option<u64> = None;
    for (first, path) in journal::segments(&journal_dir(data))? {
        let bytes = fs::read(&path)?;
        if let Some(e) = expected.filter(|e| *e < first) {
            // Not needed by the next start perhaps, but by a fall-back
            // to an older snapshot.
            writeln!(
                out,
                "gap: records {e}..={} are missing before {}",
                first - 1,
                path.display()
            )?;
            whole = false;
        }
        let items = journal::parse(&bytes, first);
        let seqs: Vec<u64> = items
            .iter()
            .filter_map(|i| match i {
                journal::Item::Record { frame, .. } => Some(frame.seq),
                _ => None,
            })
            .collect();
        let flawed = items.len() - seqs.len();
        whole &= flawed == 0;
        expected = Some(seqs.last().map_or(first, |s| s + 1).max(first));
        let range = match (seqs.first(), seqs.last()) {
            (Some(a), Some(b)) => format!("records {a}..={b}"),
            _ => "no records".into(),
        };
        let format = match bytes.is_empty() {
            true => "-".to_string(),
            false => journal::format_of(&bytes).to_string(),
        };
        writeln!(
            out,
            "segment  {first:>12}  format {format}  {range}{}  {}",
            if flawed > 0 {
                format!("  ({flawed} damaged stretch(es))")
            } else {
                String::new()
            },
            path.display()
        )?;
    }
    let clock = crate::clock::EventClock::default();
    let opts = RecoverOptions {
        repair: false,
        dry_run: true,
    };
    match recover(data, settings, &clock, opts) {
        Ok(rec) => {
            let r = &rec.report;
            writeln!(
                out,
                "a start would load the snapshot at {} and replay {} record(s); the next record is {}; status {}",
                r.snapshot,
                r.replayed,
                r.next,
                r.status.as_str()
            )?;
            let formats: Vec<u32> = journal::segments(&journal_dir(data))?
                .iter()
                .filter_map(|(_, p)| fs::read(p).ok().map(|b| journal::format_of(&b)))
                .collect();
            if formats.iter().any(|f| *f < journal::FORMAT) {
                writeln!(
                    out,
                    "upgrade: the format-1 segments are read as they are; new records go to format-{} segments, and the old ones are removed once a snapshot covers them",
                    journal::FORMAT
                )?;
            }
            for f in &r.findings {
                writeln!(out, "finding: {f}")?;
            }
            Ok(whole && whole_state && matches!(r.status, Status::Clean | Status::TornTail))
        }
        Err(e) => {
            writeln!(out, "a start would stop: {e}")?;
            Ok(false)
        }
    }
}

fn journal_file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `--repair` keeps the journal and snapshots as they were, in
/// `quarantine/repair-<ms>/`: hard links where the file system allows
/// (segments other than the last and snapshots are never written again),
/// copies otherwise and for the last segment.
fn keep_originals(data: &Path) -> io::Result<PathBuf> {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let to = quarantine_dir(data).join(format!("repair-{ms}"));
    let segs = journal::segments(&journal_dir(data))?;
    let last = segs.last().map(|s| s.1.clone());
    for (sub, files) in [
        ("journal", segs.into_iter().map(|s| s.1).collect::<Vec<_>>()),
        (
            "snapshots",
            fs::read_dir(snapshot_dir(data))
                .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default(),
        ),
    ] {
        let dir = to.join(sub);
        fs::create_dir_all(&dir)?;
        for f in files {
            let dest = dir.join(journal_file_name(&f));
            if Some(&f) == last.as_ref() || fs::hard_link(&f, &dest).is_err() {
                fs::copy(&f, &dest)?;
            }
        }
        journal::sync_dir(&dir)?;
    }
    Ok(to)
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
