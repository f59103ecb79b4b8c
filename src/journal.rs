//! The journal: an append-only log of everything that changed the state.
//!
//! Files `journal/<first seq, 20 digits>.log`, each a run of records:
//!
//! ```text
//! u32 LE  length of what follows the checksum (1 + 8 + payload)
//! u32 LE  CRC-32 of kind, now and payload
//! u8      kind: 1 = event, 2 = tick
//! i64 LE  "now" the writer applied it with
//! ...     payload: the event as canonical JSON (empty for a tick)
//! ```
//!
//! Records are numbered implicitly: a segment's name is the number of its
//! first record. Appends go to an in-memory buffer and reach the file in
//! `commit`, once per group of batches, followed by `fdatasync` under the
//! `always` policy: concurrent senders share one sync (group commit).
//! A failed commit truncates the file back to where the group started, so
//! the file never holds a record that was not acknowledged as written.
//!
//! Reading stops at the first record whose header or checksum does not
//! hold at the end of the log (a torn tail from a crash mid-write) and
//! reports how many bytes follow it, so recovery can cut them; a bad
//! record followed by good ones (bytes flipped in place) is skipped and
//! reported.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::event::{self, Event};

pub const KIND_EVENT: u8 = 1;
pub const KIND_TICK: u8 = 2;
const HEADER: usize = 8;
/// A record longer than this is corrupt by definition (events are limited
/// far below it).
const MAX_RECORD: usize = 16 << 20;

/// When appended records are forced to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Before every acknowledgement (group commit).
    Always,
    /// Every interval; acknowledgements wait only for the write.
    Interval(Duration),
    /// Never explicitly; the operating system decides.
    Never,
}

impl std::str::FromStr for Fsync {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(Fsync::Always),
            "never" => Ok(Fsync::Never),
            _ => s
                .strip_prefix("interval:")
                .and_then(|ms| ms.parse::<u64>().ok())
                .filter(|ms| *ms > 0)
                .map(|ms| Fsync::Interval(Duration::from_millis(ms)))
                .ok_or_else(|| format!("{s:?} is not \"always\", \"never\" or \"interval:<ms>\"")),
        }
    }
}

/// One decoded record. (Records are short-lived; boxing the event would
/// cost an allocation per replayed record for nothing.)
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Record {
    Event { now_ms: i64, event: Event },
    Tick { now_ms: i64 },
}

fn segment_name(first: u64) -> String {
    format!("{first:020}.log")
}

/// The segments in a directory, sorted by first record number.
pub fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let first = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(first) = first {
            out.push((first, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Encodes a record into `buf`.
fn encode(buf: &mut Vec<u8>, kind: u8, now_ms: i64, payload: &[u8]) {
    let len = (1 + 8 + payload.len()) as u32;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[kind]);
    crc.update(&now_ms.to_le_bytes());
    crc.update(payload);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc.finalize().to_le_bytes());
    buf.push(kind);
    buf.extend_from_slice(&now_ms.to_le_bytes());
    buf.extend_from_slice(payload);
}

/// What reading a segment found besides records.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Records skipped because their checksum failed (good ones follow).
    pub skipped: u64,
    /// Offset where an unreadable tail starts, and its length in bytes.
    pub torn_at: Option<(u64, u64)>,
}

/// A record's raw parts: kind, now, payload.
pub type RawRecord<'a> = (u8, i64, &'a [u8]);

/// Parses the records of one segment's bytes. Returns each record's raw
/// parts (`None` for a skipped one, which still takes its number).
pub fn parse(bytes: &[u8]) -> (Vec<Option<RawRecord<'_>>>, Damage) {
    let mut out = Vec::new();
    let mut damage = Damage::default();
    let mut at = 0usize;
    while at < bytes.len() {
        let whole = |at: usize| -> Option<(usize, bool)> {
            let h = bytes.get(at..at + HEADER)?;
            let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
            if !(9..=MAX_RECORD).contains(&len) {
                return None;
            }
            let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
            let body = bytes.get(at + HEADER..at + HEADER + len)?;
            Some((len, crc32fast::hash(body) == crc))
        };
        match whole(at) {
            Some((len, true)) => {
                let body = &bytes[at + HEADER..at + HEADER + len];
                let mut now = [0u8; 8];
                now.copy_from_slice(&body[1..9]);
                out.push(Some((body[0], i64::from_le_bytes(now), &body[9..])));
                at += HEADER + len;
            }
            Some((len, false)) if whole(at + HEADER + len).is_some_and(|(_, ok)| ok) => {
                // A damaged record in the middle: its length still leads
                // to a good record, so only this one is lost.
                damage.skipped += 1;
                out.push(None);
                at += HEADER + len;
            }
            _ => {
                damage.torn_at = Some((at as u64, (bytes.len() - at) as u64));
                break;
            }
        }
    }
    (out, damage)
}

/// Decodes a record's parts.
pub fn decode(kind: u8, now_ms: i64, payload: &[u8]) -> Option<Record> {
    match kind {
        KIND_EVENT => event::decode(payload)
            .ok()
            .map(|event| Record::Event { now_ms, event }),
        KIND_TICK => Some(Record::Tick { now_ms }),
        _ => None,
    }
}

/// The appending side.
pub struct Journal {
    dir: PathBuf,
    file: File,
    fsync: Fsync,
    segment_bytes: u64,
    /// Number of the first record of the current segment.
    seg_first: u64,
    /// Bytes in the current segment that are committed.
    seg_len: u64,
    /// Number the next appended record gets.
    next: u64,
    /// Records buffered since the last commit.
    pending: u64,
    buf: Vec<u8>,
    /// Written but not yet synced (interval policy).
    unsynced: bool,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.dir)
            .field("next", &self.next)
            .finish()
    }
}

impl Journal {
    /// Opens the journal for appending record number `next` (recovery has
    /// already cut any torn tail of the last segment).
    pub fn open(dir: &Path, next: u64, fsync: Fsync, segment_bytes: u64) -> io::Result<Journal> {
        fs::create_dir_all(dir)?;
        let (seg_first, path) = match segments(dir)?.pop() {
            Some((first, path)) if first <= next => (first, path),
            _ => (next, dir.join(segment_name(next))),
        };
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let seg_len = file.metadata()?.len();
        sync_dir(dir)?;
        Ok(Journal {
            dir: dir.to_path_buf(),
            file,
            fsync,
            segment_bytes,
            seg_first,
            seg_len,
            next,
            pending: 0,
            buf: Vec::with_capacity(1 << 20),
            unsynced: false,
        })
    }

    pub fn append_event(&mut self, now_ms: i64, ev: &Event) {
        self.append_encoded(now_ms, event::encode(ev).as_bytes());
    }

    /// Appends an event already encoded by `event::encode_into` (the
    /// sources encode on their own threads; the writer only copies).
    pub fn append_encoded(&mut self, now_ms: i64, payload: &[u8]) {
        encode(&mut self.buf, KIND_EVENT, now_ms, payload);
        self.pending += 1;
    }

    pub fn append_tick(&mut self, now_ms: i64) {
        encode(&mut self.buf, KIND_TICK, now_ms, &[]);
        self.pending += 1;
    }

    /// Number of the next record to be appended (= records committed).
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Writes what was appended since the last commit, syncing under the
    /// `always` policy. On error nothing of it remains in the file.
    pub fn commit(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let res = self.write_pending();
        self.buf.clear();
        match res {
            Ok(()) => {
                self.next += std::mem::take(&mut self.pending);
                if self.seg_len >= self.segment_bytes {
                    self.rotate()?;
                }
                Ok(())
            }
            Err(e) => {
                self.pending = 0;
                // Cut back to the last committed byte; shrinking needs no space.
                let _ = self.file.set_len(self.seg_len);
                Err(e)
            }
        }
    }

    fn write_pending(&mut self) -> io::Result<()> {
        self.file.write_all(&self.buf)?;
        if self.fsync == Fsync::Always {
            self.file.sync_data()?;
        } else {
            self.unsynced = true;
        }
        self.seg_len += self.buf.len() as u64;
        Ok(())
    }

    /// Drops appended records that were not committed.
    pub fn discard(&mut self) {
        self.buf.clear();
        self.pending = 0;
    }

    /// Syncs written data (the interval policy's timer calls this).
    pub fn sync(&mut self) -> io::Result<()> {
        if self.unsynced {
            self.file.sync_data()?;
            self.unsynced = false;
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        let path = self.dir.join(segment_name(self.next));
        self.file = OpenOptions::new().create(true).append(true).open(&path)?;
        sync_dir(&self.dir)?;
        self.seg_first = self.next;
        self.seg_len = 0;
        self.unsynced = false;
        Ok(())
    }

    /// Removes segments whose records all come before `seq`.
    pub fn remove_before(&self, seq: u64) -> io::Result<usize> {
        let segs = segments(&self.dir)?;
        let mut removed = 0;
        for (i, (first, path)) in segs.iter().enumerate() {
            let next_first = segs.get(i + 1).map(|s| s.0);
            match next_first {
                Some(nf) if nf <= seq && *first != self.seg_first => {
                    fs::remove_file(path)?;
                    removed += 1;
                }
                _ => {}
            }
        }
        Ok(removed)
    }
}

/// Makes a directory entry (a created or renamed file) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads every record from `from` on, cutting a torn tail of the last
/// segment. Calls `f(seq, record)` in order; returns the next record
/// number and what was damaged.
pub fn replay(
    dir: &Path,
    from: u64,
    mut f: impl FnMut(u64, Record),
) -> io::Result<(u64, Vec<String>)> {
    let segs = segments(dir)?;
    let mut next = from;
    let mut notes = Vec::new();
    let last = segs.len().saturating_sub(1);
    for (i, (first, path)) in segs.iter().enumerate() {
        let seg_end_hint = segs.get(i + 1).map(|s| s.0);
        if seg_end_hint.is_some_and(|nf| nf <= from) {
            continue;
        }
        if *first > next {
            notes.push(format!(
                "journal gap: records {next}..{first} are missing (segment {} starts later)",
                path.display()
            ));
            next = *first;
        }
        let mut bytes = Vec::new();
        File::open(path)?.read_to_end(&mut bytes)?;
        let (records, damage) = parse(&bytes);
        for (j, r) in records.into_iter().enumerate() {
            let seq = first + j as u64;
            if seq < next {
                continue;
            }
            match r.and_then(|(k, now, p)| decode(k, now, p)) {
                Some(rec) => f(seq, rec),
                None => notes.push(format!("journal record {seq} is damaged and was skipped")),
            }
            next = seq + 1;
        }
        if damage.skipped > 0 {
            notes.push(format!(
                "{}: {} damaged record(s) skipped",
                path.display(),
                damage.skipped
            ));
        }
        if let Some((at, len)) = damage.torn_at {
            if i == last {
                let file = OpenOptions::new().write(true).open(path)?;
                file.set_len(at)?;
                file.sync_all()?;
                notes.push(format!(
                    "{}: cut {len} byte(s) of a torn tail at offset {at}",
                    path.display()
                ));
            } else {
                notes.push(format!(
                    "{}: {len} unreadable byte(s) at offset {at} skipped",
                    path.display()
                ));
                // Keep numbering consistent with the next segment's name.
                if let Some(nf) = seg_end_hint {
                    next = next.max(nf);
                }
            }
        }
    }
    Ok((next, notes))
}

/// Appends raw bytes to the current end (tests simulate torn writes).
pub fn append_raw(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new().append(true).open(path)?;
    f.seek(SeekFrom::End(0))?;
    f.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: u32) -> Event {
        let line = format!(
            r#"{{"id":"e{i}","ts":"2026-03-02T08:00:00Z","type":"call_offered","call":"c{i}","queue":"q"}}"#
        );
        event::decode(line.as_bytes()).expect("valid")
    }

    fn read_all(dir: &Path) -> (Vec<(u64, Record)>, u64, Vec<String>) {
        let mut v = Vec::new();
        let (next, notes) = replay(dir, 0, |s, r| v.push((s, r))).expect("replay");
        (v, next, notes)
    }

    #[test]
    fn appends_commits_rotates_and_replays() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut j = Journal::open(dir.path(), 0, Fsync::Always, 300).expect("open");
        for i in 0..10 {
            j.append_event(1000 + i as i64, &ev(i));
            if i % 3 == 0 {
                j.append_tick(5000);
            }
            j.commit().expect("commit");
        }
        assert_eq!(j.next(), 14);
        assert!(segments(dir.path()).expect("ls").len() > 2, "rotated");
        let (recs, next, notes) = read_all(dir.path());
        assert_eq!((recs.len(), next), (14, 14));
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(
            recs[0],
            (
                0,
                Record::Event {
                    now_ms: 1000,
                    event: ev(0)
                }
            )
        );
        assert_eq!(recs[1], (1, Record::Tick { now_ms: 5000 }));
        // Reopen and continue numbering.
        drop(j);
        let mut j = Journal::open(dir.path(), 14, Fsync::Never, 300).expect("reopen");
        j.append_event(1, &ev(99));
        j.commit().expect("commit");
        let (recs, _, _) = read_all(dir.path());
        assert_eq!(recs.last().map(|r| r.0), Some(14));
        // Segments before a snapshot position can go.
        assert!(j.remove_before(9).expect("rm") > 0);
        let mut first = None;
        replay(dir.path(), 9, |s, _| {
            first.get_or_insert(s);
        })
        .expect("replay");
        assert_eq!(first, Some(9));
    }

    #[test]
    fn a_torn_tail_is_cut_and_reported() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut j = Journal::open(dir.path(), 0, Fsync::Always, 1 << 20).expect("open");
        for i in 0..3 {
            j.append_event(1, &ev(i));
        }
        j.commit().expect("commit");
        let path = segments(dir.path()).expect("ls")[0].1.clone();
        let whole = fs::metadata(&path).expect("meta").len();
        // Half a record, as a crash mid-write leaves it.
        let mut rec = Vec::new();
        encode(&mut rec, KIND_EVENT, 1, event::encode(&ev(3)).as_bytes());
        append_raw(&path, &rec[..rec.len() / 2]).expect("tear");
        let (recs, next, notes) = read_all(dir.path());
        assert_eq!((recs.len(), next), (3, 3));
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].contains(&format!(
                "cut {} byte(s) of a torn tail at offset {whole}",
                rec.len() / 2
            )),
            "{notes:?}"
        );
        assert_eq!(
            fs::metadata(&path).expect("meta").len(),
            whole,
            "file cut back"
        );
        // Appending after the cut continues cleanly.
        let mut j = Journal::open(dir.path(), next, Fsync::Always, 1 << 20).expect("open");
        j.append_event(1, &ev(4));
        j.commit().expect("commit");
        assert_eq!(read_all(dir.path()).0.len(), 4);
    }

    #[test]
    fn flipped_bytes_skip_one_record_or_cut_the_tail() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut j = Journal::open(dir.path(), 0, Fsync::Always, 1 << 20).expect("open");
        for i in 0..4 {
            j.append_event(1, &ev(i));
        }
        j.commit().expect("commit");
        let path = segments(dir.path()).expect("ls")[0].1.clone();
        let mut bytes = fs::read(&path).expect("read");
        let rec_len = bytes.len() / 4;
        // Flip a payload byte of record 1: records 0, 2, 3 survive.
        bytes[rec_len + 30] ^= 0x5a;
        fs::write(&path, &bytes).expect("write");
        let (recs, next, notes) = read_all(dir.path());
        assert_eq!(recs.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 2, 3]);
        assert_eq!(next, 4);
        assert!(
            notes
                .iter()
                .any(|n| n.contains("1 damaged record(s) skipped")),
            "{notes:?}"
        );
        // Flip a byte of the last record: it is cut as a torn tail.
        bytes[rec_len + 30] ^= 0x5a;
        bytes[3 * rec_len + 20] ^= 0x01;
        fs::write(&path, &bytes).expect("write");
        let (recs, next, notes) = read_all(dir.path());
        assert_eq!((recs.len(), next), (3, 3));
        assert!(notes.iter().any(|n| n.contains("torn tail")), "{notes:?}");
    }

    #[test]
    fn fsync_policy_parses() {
        assert_eq!("always".parse(), Ok(Fsync::Always));
        assert_eq!(
            "interval:250".parse(),
            Ok(Fsync::Interval(Duration::from_millis(250)))
        );
        assert!("interval:0".parse::<Fsync>().is_err());
        assert!("sometimes".parse::<Fsync>().is_err());
    }
}
