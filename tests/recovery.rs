//! Recovery never pretends: a fault-injection suite on the real binary.
//!
//! Each case writes acknowledged events into a data directory, damages
//! it the way disks and operators do (torn tails, flipped length and
//! payload bytes in the last and in earlier segments, truncated and
//! deleted segments, corrupt, missing and too-new snapshots), starts the
//! daemon on it and checks two things: every acknowledged event is in the
//! state or named as lost (resending them all, exactly the reported
//! number is applied anew), and what would be lost without a trace stops
//! the start unless `--repair` is given, changing nothing on disk.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use callwatch::journal::{self, Item};
use common::*;

/// Small segments; snapshots every `every` records.
fn cfg(every: u64) -> String {
    config(&format!(
        "[storage]\nfsync = \"always\"\nsegment_bytes = 16384\nsnapshot_every = {every}\nkeep_snapshots = 2\n"
    ))
}

/// `n` events that do not depend on each other (a task each), so losing
/// one costs exactly that one: record number i is event i.
fn independent(n: usize) -> Vec<String> {
    let base = chrono::DateTime::parse_from_rfc3339("2026-03-02T06:00:00Z").expect("time");
    (0..n)
        .map(|i| {
            let ts = (base + chrono::Duration::seconds(i as i64)).to_rfc3339();
            format!(
                r#"{{"id":"r{i}","ts":"{ts}","type":"task_created","task":"t{i}","kind":"callback","queue":"orders"}}"#
            )
        })
        .collect()
}

fn start(cfg: &str, data: &Path, extra: &[&str]) -> Daemon {
    let dir = data.to_str().expect("utf-8").to_string();
    let mut args = vec!["--data-dir", dir.as_str()];
    args.extend_from_slice(extra);
    Daemon::start_args(cfg, &args)
}

/// Writes `events` through a daemon, acknowledged, and stops it.
async fn fill(cfg: &str, data: &Path, events: &[String]) {
    let d = start(cfg, data, &[]);
    for chunk in events.chunks(250) {
        let (status, r) = post(&d, chunk.join("\n")).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["accepted"].as_u64(), Some(chunk.len() as u64), "{r}");
    }
    assert!(d.terminate().success());
}

/// Resends everything; returns how many were applied anew (were lost).
async fn resend(d: &Daemon, events: &[String]) -> u64 {
    let mut accepted = 0;
    for chunk in events.chunks(1000) {
        let (status, r) = post(d, chunk.join("\n")).await;
        assert_eq!(status, 200, "{r}");
        accepted += r["accepted"].as_u64().expect("accepted");
    }
    accepted
}

async fn recovery(d: &Daemon) -> serde_json::Value {
    let v = readyz(d).await;
    assert_eq!(v["ready"], true);
    v["recovery"].clone()
}

/// Records reported lost (torn tails were never acknowledged).
fn reported_lost(rec: &serde_json::Value) -> u64 {
    ["damaged", "undecodable", "missing"]
        .iter()
        .map(|r| rec["skipped"][r].as_u64().expect("skipped count"))
        .sum()
}

fn segments(data: &Path) -> Vec<(u64, PathBuf)> {
    journal::segments(&data.join("journal")).expect("ls")
}

fn snapshots(data: &Path) -> Vec<PathBuf> {
    callwatch::store::snapshot_files(data).expect("ls")
}

/// Offsets of the whole records of a segment, by record number.
fn records(path: &Path) -> Vec<(u64, usize)> {
    let bytes = std::fs::read(path).expect("read");
    journal::parse(&bytes, 0)
        .into_iter()
        .filter_map(|i| match i {
            Item::Record { at, frame, .. } => Some((frame.seq, at as usize)),
            _ => None,
        })
        .collect()
}

fn flip(path: &Path, at: usize, mask: u8) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[at] ^= mask;
    std::fs::write(path, bytes).expect("write");
}

/// Every file of the journal and snapshots, with its contents.
fn fingerprint(data: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for sub in ["journal", "snapshots", "quarantine"] {
        let Ok(rd) = std::fs::read_dir(data.join(sub)) else {
            continue;
        };
        for e in rd.flatten() {
            if e.path().is_file() {
                out.insert(e.path(), std::fs::read(e.path()).expect("read"));
            }
        }
    }
    out
}

/// Starts the daemon and expects it to refuse: a non-zero exit within the
/// deadline; returns what it said.
fn refused(cfg: &str, data: &Path, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("callwatch.toml");
    std::fs::write(&path, cfg).expect("config");
    let mut child = std::process::Command::new(BIN)
        .args(["run", "--config"])
        .arg(&path)
        .arg("--data-dir")
        .arg(data)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the daemon did not refuse to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut text = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut text)
        .expect("stderr");
    assert!(!status.success(), "refusal exits non-zero: {text}");
    text
}

#[tokio::test]
async fn a_torn_tail_is_cut_and_costs_nothing_acknowledged() {
    let data = tempfile::tempdir().expect("tmp");
    let (cfg, events) = (cfg(1_000_000), independent(600));
    fill(&cfg, data.path(), &events).await;
    let (_, last) = segments(data.path()).pop().expect("segment");
    let whole = std::fs::metadata(&last).expect("meta").len();
    // The start of a record header, as a crash inside `write` leaves it.
    journal::append_raw(&last, &[0xff, b'C', b'W', b'R', 9, 0, 0]).expect("tear");
    let d = start(&cfg, data.path(), &[]);
    let rec = recovery(&d).await;
    assert_eq!(rec["status"], "torn_tail", "{rec}");
    assert_eq!(rec["skipped"]["torn_tail"], 1);
    assert_eq!(reported_lost(&rec), 0);
    assert_eq!(
        resend(&d, &events).await,
        0,
        "nothing acknowledged was lost"
    );
    d.log_until(
        &format!("cut 7 byte(s) of a torn tail at offset {whole}"),
        10,
    );
    let m = parse_metrics(&metrics_text(&d).await);
    assert_eq!(
        metric(&m, r#"callwatch_recovery_last_status{status="torn_tail"}"#),
        1.0
    );
    assert_eq!(
        metric(&m, r#"callwatch_recovery_last_status{status="clean"}"#),
        0.0
    );
    assert!(d.terminate().success());
    // The bytes cut are kept aside.
    let q = data.path().join("quarantine");
    let kept: Vec<_> = std::fs::read_dir(&q)
        .expect("quarantine")
        .flatten()
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read(kept[0].path()).expect("read").len(), 7);
    // And the next start is clean.
    let d = start(&cfg, data.path(), &[]);
    assert_eq!(recovery(&d).await["status"], "clean");
}

/// Damage read past: exactly the records it held are lost, and named.
async fn damaged_case(segment_bytes: u64, damage: impl FnOnce(&[(u64, PathBuf)]) -> u64) {
    let data = tempfile::tempdir().expect("tmp");
    let cfg = cfg(1_000_000).replace(
        "segment_bytes = 16384",
        &format!("segment_bytes = {segment_bytes}"),
    );
    let events = independent(1500);
    fill(&cfg, data.path(), &events).await;
    let segs = segments(data.path());
    let expect_lost = damage(&segs);
    let before = fingerprint(data.path());
    let d = start(&cfg, data.path(), &[]);
    let rec = recovery(&d).await;
    assert_eq!(rec["status"], "damaged", "{rec}");
    assert_eq!(reported_lost(&rec), expect_lost, "{rec}");
    let m = parse_metrics(&metrics_text(&d).await);
    assert_eq!(
        metric(
            &m,
            r#"callwatch_recovery_records_skipped_total{reason="damaged"}"#
        ),
        expect_lost as f64
    );
    assert_eq!(
        metric(&m, r#"callwatch_recovery_last_status{status="damaged"}"#),
        1.0
    );
    // What was lost is exactly what was reported: resent, only those
    // are new.
    assert_eq!(resend(&d, &events).await, expect_lost);
    assert!(d.terminate().success());
    // The damaged segment is kept aside as it was, and still in place.
    let q = data.path().join("quarantine");
    let copies: Vec<_> = std::fs::read_dir(&q)
        .expect("quarantine")
        .flatten()
        .collect();
    assert!(!copies.is_empty());
    for c in copies {
        let name = c.file_name().to_string_lossy().to_string();
        let live = data
            .path()
            .join("journal")
            .join(name.strip_prefix("journal-").expect("a segment copy"));
        assert_eq!(
            Some(&std::fs::read(c.path()).expect("read")),
            before.get(&live)
        );
    }
}

#[tokio::test]
async fn a_flipped_length_bit_in_the_last_segment_costs_one_record() {
    // One segment: the damage is in the last one, with 1,000 records
    // after it (format 1 cut the file there and lost them).
    damaged_case(1 << 30, |segs| {
        assert_eq!(segs.len(), 1);
        let (_, last) = segs.last().expect("last");
        let recs = records(last);
        assert_eq!(recs.len(), 1500);
        // Record 500 claims a megabyte more than it holds.
        flip(last, recs[500].1 + 6, 0x10);
        1
    })
    .await;
}

/// Flips `(record index, byte offset in the record, mask)` in segment
/// `seg` of several; each flipped record is one lost.
fn flip_in(segs: &[(u64, PathBuf)], seg: usize, flips: &[(usize, usize, u8)]) -> u64 {
    assert!(segs.len() >= 4, "several segments: {segs:?}");
    let path = &segs[seg].1;
    let recs = records(path);
    for (rec, off, mask) in flips {
        flip(path, recs[*rec].1 + off, *mask);
    }
    flips.len() as u64
}

#[tokio::test]
async fn a_flipped_payload_byte_in_an_earlier_segment_costs_one_record() {
    damaged_case(16384, |segs| flip_in(segs, 1, &[(10, 24 + 40, 0x01)])).await;
}

#[tokio::test]
async fn two_adjacent_bad_records_with_intact_lengths_cost_two() {
    damaged_case(16384, |segs| {
        flip_in(segs, 2, &[(3, 30, 0x02), (4, 30, 0x02)])
    })
    .await;
}

#[tokio::test]
async fn a_flipped_length_bit_in_an_earlier_segment_costs_one_record() {
    // Byte 5 is inside the length field.
    damaged_case(16384, |segs| flip_in(segs, 0, &[(40, 5, 0x04)])).await;
}

#[tokio::test]
async fn a_journal_ending_before_its_snapshot_stops_the_start_until_repaired() {
    let data = tempfile::tempdir().expect("tmp");
    let (cfg, events) = (cfg(500), independent(2000));
    fill(&cfg, data.path(), &events).await;
    let newest: u64 = snapshots(data.path())
        .last()
        .and_then(|p| p.file_stem()?.to_str()?.parse().ok())
        .expect("a snapshot");
    assert!(newest >= 1500, "{newest}");
    // Cut the journal a few records before the snapshot's position, at a
    // record boundary (no torn tail to notice), and drop what follows.
    let cut_at = newest - 5;
    for (first, path) in segments(data.path()) {
        if first > cut_at {
            std::fs::remove_file(&path).expect("rm");
        } else if let Some((_, at)) = records(&path).into_iter().find(|(s, _)| *s == cut_at) {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .expect("open");
            f.set_len(at as u64).expect("cut");
        }
    }
    let before = fingerprint(data.path());
    let said = refused(&cfg, data.path(), &[]);
    assert!(
        said.contains(&format!(
            "the journal ends at record {cut_at}, before the snapshot's position {newest}"
        )),
        "{said}"
    );
    assert!(said.contains("--repair"), "{said}");
    assert_eq!(
        fingerprint(data.path()),
        before,
        "a refused start changes nothing"
    );

    // --repair: starts from the snapshot, says what is gone, keeps the
    // originals.
    let d = start(&cfg, data.path(), &["--repair"]);
    let rec = recovery(&d).await;
    assert_eq!(rec["status"], "repaired", "{rec}");
    assert_eq!(rec["snapshot"], newest);
    let lost = resend(&d, &events).await;
    assert_eq!(lost, 2000 - newest, "the records after the snapshot");
    // The defect this guards: appending after a repaired start must not
    // shift the numbering so that one more crash loses what follows.
    let more = independent(2600);
    for chunk in more[2000..].chunks(100) {
        assert_eq!(post(&d, chunk.join("\n")).await.0, 200);
    }
    d.kill9();
    let d = start(&cfg, data.path(), &[]);
    assert_eq!(recovery(&d).await["status"], "clean");
    assert_eq!(resend(&d, &more).await, 0, "nothing acknowledged lost");
    let kept: Vec<_> = std::fs::read_dir(data.path().join("quarantine"))
        .expect("quarantine")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("repair-"))
        .collect();
    assert_eq!(kept.len(), 1);
    for (path, bytes) in &before {
        let sub = path.parent().and_then(|p| p.file_name()).expect("sub");
        let copy = kept[0]
            .path()
            .join(sub)
            .join(path.file_name().expect("name"));
        assert_eq!(
            &std::fs::read(&copy).expect("original kept"),
            bytes,
            "{}",
            copy.display()
        );
    }
}

#[tokio::test]
async fn a_deleted_segment_is_a_gap_that_stops_the_start() {
    let data = tempfile::tempdir().expect("tmp");
    let (cfg, events) = (cfg(1_000_000), independent(1500));
    fill(&cfg, data.path(), &events).await;
    let segs = segments(data.path());
    std::fs::remove_file(&segs[2].1).expect("rm");
    let (lo, hi) = (segs[2].0, segs[3].0);
    let before = fingerprint(data.path());
    let said = refused(&cfg, data.path(), &[]);
    assert!(
        said.contains(&format!("journal gap: records {lo}..={} missing", hi - 1)),
        "{said}"
    );
    assert_eq!(fingerprint(data.path()), before);
    let d = start(&cfg, data.path(), &["--repair"]);
    let rec = recovery(&d).await;
    assert_eq!(rec["status"], "repaired");
    assert_eq!(rec["skipped"]["missing"], hi - lo);
    assert_eq!(resend(&d, &events).await, hi - lo);
}

#[tokio::test]
async fn unreadable_snapshots_stop_the_start_and_nothing_is_deleted() {
    let data = tempfile::tempdir().expect("tmp");
    let (cfg, events) = (cfg(400), independent(2000));
    fill(&cfg, data.path(), &events).await;
    let snaps = snapshots(data.path());
    assert_eq!(snaps.len(), 2);
    for s in &snaps {
        let n = std::fs::metadata(s).expect("meta").len() as usize;
        flip(s, n - 2, 0xff);
    }
    let before = fingerprint(data.path());
    let said = refused(&cfg, data.path(), &[]);
    assert!(
        said.contains("no readable snapshot, though 2 were written"),
        "{said}"
    );
    assert!(said.contains("checksum mismatch"), "{said}");
    assert_eq!(
        fingerprint(data.path()),
        before,
        "nothing deleted, nothing cut"
    );

    // Repaired: the journal still holds what follows the oldest segment
    // kept; what only the snapshots held is named missing.
    let first = segments(data.path())[0].0;
    let d = start(&cfg, data.path(), &["--repair"]);
    let rec = recovery(&d).await;
    assert_eq!(rec["status"], "repaired", "{rec}");
    assert_eq!(rec["skipped"]["missing"], first);
    assert_eq!(resend(&d, &events).await, first);
    assert!(d.terminate().success());
    // The unreadable snapshots are kept aside, not deleted.
    let q = data.path().join("quarantine");
    let aside = std::fs::read_dir(&q)
        .expect("quarantine")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("snapshot-"))
        .count();
    assert_eq!(aside, 2);
}

#[tokio::test]
async fn a_corrupt_newest_snapshot_falls_back_and_is_kept_aside() {
    let data = tempfile::tempdir().expect("tmp");
    let (cfg, events) = (cfg(400), independent(2000));
    fill(&cfg, data.path(), &events).await;
    let snaps = snapshots(data.path());
    let newest = snaps.last().expect("snapshot").clone();
    flip(&newest, 40, 0x10);
    let corrupt = std::fs::read(&newest).expect("read");
    let d = start(&cfg, data.path(), &[]);
    let rec = recovery(&d).await;
    assert_eq!(rec["status"], "damaged", "{rec}");
    assert_eq!(reported_lost(&rec), 0);
    assert_eq!(
        resend(&d, &events).await,
        0,
        "older snapshot + journal hold it all"
    );
    // Moved out of the snapshots kept (a new one may have been written
    // under the same name since).
    assert_ne!(std::fs::read(&newest).ok(), Some(corrupt.clone()));
    assert_eq!(
        std::fs::read(data.path().join("quarantine").join(format!(
            "snapshot-{}",
            newest.file_name().expect("n").to_string_lossy()
        )))
        .expect("kept aside"),
        corrupt
    );
    assert!(data
        .path()
        .join("quarantine")
        .join(format!(
            "snapshot-{}",
            newest.file_name().expect("n").to_string_lossy()
        ))
        .exists());
}

#[tokio::test]
async fn missing_snapshots_are_a_gap_before_the_journal() {
    let data = tempfile::tempdir().expect("tmp");
    let (cfg, events) = (cfg(400), independent(2000));
    fill(&cfg, data.path(), &events).await;
    let first = segments(data.path())[0].0;
    assert!(first > 0, "old segments were removed");
    for s in snapshots(data.path()) {
        std::fs::remove_file(s).expect("rm");
    }
    let said = refused(&cfg, data.path(), &[]);
    assert!(
        said.contains(&format!("journal gap: records 0..={} missing", first - 1)),
        "{said}"
    );
}

#[tokio::test]
async fn a_snapshot_of_a_newer_build_is_refused_even_with_repair() {
    let data = tempfile::tempdir().expect("tmp");
    let (cfg, events) = (cfg(400), independent(900));
    fill(&cfg, data.path(), &events).await;
    for s in snapshots(data.path()) {
        // The state's format number is the body's first byte (a postcard
        // varint); make it one this build does not know, checksum intact.
        let mut bytes = std::fs::read(&s).expect("read");
        bytes[36] = 0x7f;
        let crc = crc32fast::hash(&bytes[36..]);
        bytes[32..36].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&s, bytes).expect("write");
    }
    let before = fingerprint(data.path());
    for extra in [&[][..], &["--repair"][..]] {
        let said = refused(&cfg, data.path(), extra);
        assert!(
            said.contains("state format 127 was written by callwatch")
                && said.contains(&format!(
                    "this build (callwatch {}) reads formats 7..=",
                    env!("CARGO_PKG_VERSION")
                )),
            "{said}"
        );
        assert_eq!(fingerprint(data.path()), before);
    }
}
