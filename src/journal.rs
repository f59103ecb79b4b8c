//! The journal: an append-only log of everything that changed the state.
//!
//! Files `journal/<first seq, 20 digits>.log`. A segment of format 2 (the
//! one written since callwatch 0.2) opens with the 8 bytes `CWJRNL\0\x02`,
//! then a run of records:
//!
//! ```text
//! [4]     magic FF 43 57 52 ("\xffCWR"; 0xFF never occurs in the JSON)
//! u32 LE  length of the body (1 + 8 + payload)
//! u64 LE  the record's number
//! u32 LE  CRC-32 of length and number (a flipped length is caught here)
//! u32 LE  CRC-32 of the body
//! body:   u8 kind (1 = event, 2 = tick), i64 LE "now" the writer
//!         applied it with, payload (the event as JSON; empty for a tick)
//! ```
//!
//! Format 1 (callwatch 0.1: length, CRC, body; records numbered by their
//! position from the segment's name) is still read, never written.
//!
//! Appends go to an in-memory buffer and reach the file in `commit`, once
//! per group of batches, followed by `fdatasync` under the `always`
//! policy: concurrent senders share one sync (group commit). A failed
//! commit truncates the file back to where the group started, so the file
//! never holds a record that was not acknowledged as written.
//!
//! Reading tells a torn tail from damage. A torn tail is the beginning of
//! a record that the *last* segment ends inside of: only a crash during a
//! write leaves one, and under `always` it was never acknowledged, so
//! recovery cuts it. Anything else that does not frame is damage: the
//! reader resynchronises on the next intact header, so a bad record costs
//! that record only, and the numbers of the whole records around it say
//! exactly which records were lost. Damaged segments are copied to the
//! quarantine directory before anything is cut.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::event::{self, Event};

pub const KIND_EVENT: u8 = 1;
pub const KIND_TICK: u8 = 2;
/// The journal format this build writes.
pub const FORMAT: u32 = 2;
/// Opens every format-2 segment.
const SEGMENT_MAGIC: &[u8; 8] = b"CWJRNL\x00\x02";
/// Opens every format-2 record. 0xFF never occurs in UTF-8, so a JSON
/// payload cannot hold it: resynchronising after damage only stops at
/// real headers (and at bytes of the binary fields, which the header
/// checksum then refuses).
const RECORD_MAGIC: [u8; 4] = [0xFF, b'C', b'W', b'R'];
/// magic, length, number, header CRC, body CRC.
const HEADER: usize = 4 + 4 + 8 + 4 + 4;
/// Format 1: length, CRC.
const HEADER_V1: usize = 8;
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

/// Encodes a format-2 record into `buf`.
fn encode(buf: &mut Vec<u8>, seq: u64, kind: u8, now_ms: i64, payload: &[u8]) {
    let len = (1 + 8 + payload.len()) as u32;
    let mut head = [0u8; 12];
    head[..4].copy_from_slice(&len.to_le_bytes());
    head[4..].copy_from_slice(&seq.to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[kind]);
    crc.update(&now_ms.to_le_bytes());
    crc.update(payload);
    buf.extend_from_slice(&RECORD_MAGIC);
    buf.extend_from_slice(&head);
    buf.extend_from_slice(&crc32fast::hash(&head).to_le_bytes());
    buf.extend_from_slice(&crc.finalize().to_le_bytes());
    buf.push(kind);
    buf.extend_from_slice(&now_ms.to_le_bytes());
    buf.extend_from_slice(payload);
}

/// Encodes a format-1 record (tests build old segments with it).
pub fn encode_v1(buf: &mut Vec<u8>, kind: u8, now_ms: i64, payload: &[u8]) {
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

/// A whole record as read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub seq: u64,
    pub kind: u8,
    pub now_ms: i64,
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    /// A checked body (at least 9 bytes: kind and "now") as a frame.
    fn of(seq: u64, body: &'a [u8]) -> Frame<'a> {
        let mut now = [0u8; 8];
        now.copy_from_slice(&body[1..9]);
        Frame {
            seq,
            kind: body[0],
            now_ms: i64::from_le_bytes(now),
            payload: &body[9..],
        }
    }
}

/// What a stretch of a segment's bytes holds; the items of a segment
/// cover its bytes after the header without gaps or overlaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    Record {
        at: u64,
        len: u64,
        frame: Frame<'a>,
    },
    /// Bytes that do not frame a record, with whole records after them.
    /// `seq` when the header held and only the body failed its checksum.
    Damaged {
        at: u64,
        len: u64,
        seq: Option<u64>,
    },
    /// Bytes at the end with no whole record after them; `torn` when
    /// they are the beginning of a record the file ends inside of.
    Tail {
        at: u64,
        len: u64,
        torn: bool,
    },
}

/// The format of a segment from its first bytes (an empty file, or one
/// cut inside its header, is an empty format-2 segment).
pub fn format_of(bytes: &[u8]) -> u32 {
    // "CWJRNL\0" then the format number: a later format keeps the
    // prefix, so this build can tell it was written by a newer one.
    let prefix = &SEGMENT_MAGIC[..7];
    let n = bytes.len().min(prefix.len());
    match bytes.get(7) {
        _ if bytes[..n] != prefix[..n] => 1,
        Some(v) => u32::from(*v),
        None => FORMAT,
    }
}

/// Parses one segment's bytes; `first` is the number in its name
/// (format 1 numbers records by position from it).
pub fn parse(bytes: &[u8], first: u64) -> Vec<Item<'_>> {
    if format_of(bytes) == 1 {
        return parse_v1(bytes, first);
    }
    let n = bytes.len();
    if n < SEGMENT_MAGIC.len() {
        // Created, then the process died inside the header.
        return match n {
            0 => Vec::new(),
            _ => vec![Item::Tail {
                at: 0,
                len: n as u64,
                torn: true,
            }],
        };
    }
    let mut out = Vec::new();
    let mut at = SEGMENT_MAGIC.len();
    // Start of a run of bytes that frame nothing.
    let mut bad: Option<usize> = None;
    let flush = |out: &mut Vec<Item<'_>>, bad: &mut Option<usize>, to: usize| {
        if let Some(from) = bad.take() {
            out.push(Item::Damaged {
                at: from as u64,
                len: (to - from) as u64,
                seq: None,
            });
        }
    };
    while at < n {
        match header_at(bytes, at) {
            Header::Valid { len, seq, crc } => {
                let end = at + HEADER + len;
                if end > n {
                    // The header is whole, the body is not: a write the
                    // file ends inside of. (After damage it is damage.)
                    let torn = bad.is_none();
                    let from = bad.take().unwrap_or(at);
                    out.push(Item::Tail {
                        at: from as u64,
                        len: (n - from) as u64,
                        torn,
                    });
                    return out;
                }
                flush(&mut out, &mut bad, at);
                let body = &bytes[at + HEADER..end];
                if crc32fast::hash(body) == crc {
                    out.push(Item::Record {
                        at: at as u64,
                        len: (HEADER + len) as u64,
                        frame: Frame::of(seq, body),
                    });
                } else {
                    out.push(Item::Damaged {
                        at: at as u64,
                        len: (HEADER + len) as u64,
                        seq: Some(seq),
                    });
                }
                at = end;
            }
            Header::Short if bad.is_none() => {
                // Fewer bytes than a header: torn if they begin like one.
                let left = &bytes[at..];
                let k = left.len().min(RECORD_MAGIC.len());
                out.push(Item::Tail {
                    at: at as u64,
                    len: left.len() as u64,
                    torn: left[..k] == RECORD_MAGIC[..k],
                });
                return out;
            }
            Header::Short | Header::Invalid => {
                bad.get_or_insert(at);
                // Resynchronise on the next byte that could open a header.
                at = bytes[at + 1..]
                    .iter()
                    .position(|b| *b == RECORD_MAGIC[0])
                    .map_or(n, |p| at + 1 + p);
            }
        }
    }
    if let Some(from) = bad {
        out.push(Item::Tail {
            at: from as u64,
            len: (n - from) as u64,
            torn: false,
        });
    }
    out
}

enum Header {
    Valid {
        len: usize,
        seq: u64,
        crc: u32,
    },
    /// Fewer bytes left than a header.
    Short,
    Invalid,
}

fn header_at(bytes: &[u8], at: usize) -> Header {
    let Some(h) = bytes.get(at..at + HEADER) else {
        return Header::Short;
    };
    if h[..4] != RECORD_MAGIC {
        return Header::Invalid;
    }
    let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    if crc32fast::hash(&h[4..16]) != word(16) {
        return Header::Invalid;
    }
    let len = word(4) as usize;
    if !(9..=MAX_RECORD).contains(&len) {
        return Header::Invalid;
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&h[8..16]);
    Header::Valid {
        len,
        seq: u64::from_le_bytes(seq),
        crc: word(20),
    }
}

/// Format 1 (callwatch 0.1): length and CRC per record, numbered by
/// position. A bad record is skipped when its length leads to a good
/// one; anything else ends the segment as a tail (this format cannot
/// tell a torn write from damage; format 2 can).
fn parse_v1(bytes: &[u8], first: u64) -> Vec<Item<'_>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    let mut seq = first;
    let whole = |at: usize| -> Option<(usize, bool)> {
        let h = bytes.get(at..at + HEADER_V1)?;
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        if !(9..=MAX_RECORD).contains(&len) {
            return None;
        }
        let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        let body = bytes.get(at + HEADER_V1..at + HEADER_V1 + len)?;
        Some((len, crc32fast::hash(body) == crc))
    };
    while at < bytes.len() {
        match whole(at) {
            Some((len, true)) => {
                let body = &bytes[at + HEADER_V1..at + HEADER_V1 + len];
                out.push(Item::Record {
                    at: at as u64,
                    len: (HEADER_V1 + len) as u64,
                    frame: Frame::of(seq, body),
                });
                at += HEADER_V1 + len;
            }
            Some((len, false)) if whole(at + HEADER_V1 + len).is_some_and(|(_, ok)| ok) => {
                out.push(Item::Damaged {
                    at: at as u64,
                    len: (HEADER_V1 + len) as u64,
                    seq: Some(seq),
                });
                at += HEADER_V1 + len;
            }
            _ => {
                out.push(Item::Tail {
                    at: at as u64,
                    len: (bytes.len() - at) as u64,
                    torn: true,
                });
                break;
            }
        }
        seq += 1;
    }
    out
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
    /// Opens the journal for appending record number `next`, in a new
    /// segment named `next` (or the last one, if it is that and holds no
    /// record yet). A segment written before is never appended to: its
    /// end is where recovery read it, and a new file keeps a restart's
    /// records apart from whatever an earlier run left there.
    pub fn open(dir: &Path, next: u64, fsync: Fsync, segment_bytes: u64) -> io::Result<Journal> {
        fs::create_dir_all(dir)?;
        let path = dir.join(segment_name(next));
        let reuse = match segments(dir)?.pop() {
            Some((first, last)) if first == next => {
                let len = fs::metadata(&last)?.len();
                if len > SEGMENT_MAGIC.len() as u64 {
                    return Err(io::Error::other(format!(
                        "{} already holds records; refusing to append record {next} to it",
                        last.display()
                    )));
                }
                true
            }
            Some((first, last)) if first > next => {
                return Err(io::Error::other(format!(
                    "{} starts after record {next}: the journal is ahead of the state",
                    last.display()
                )))
            }
            _ => false,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        if !reuse || file.metadata()?.len() != SEGMENT_MAGIC.len() as u64 {
            file.set_len(0)?;
            file.write_all(SEGMENT_MAGIC)?;
            file.sync_data()?;
        }
        file.seek(SeekFrom::End(0))?;
        sync_dir(dir)?;
        Ok(Journal {
            dir: dir.to_path_buf(),
            file,
            fsync,
            segment_bytes,
            seg_first: next,
            seg_len: SEGMENT_MAGIC.len() as u64,
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
        encode(
            &mut self.buf,
            self.next + self.pending,
            KIND_EVENT,
            now_ms,
            payload,
        );
        self.pending += 1;
    }

    pub fn append_tick(&mut self, now_ms: i64) {
        encode(
            &mut self.buf,
            self.next + self.pending,
            KIND_TICK,
            now_ms,
            &[],
        );
        self.pending += 1;
    }

    /// Bytes appended since the last commit.
    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
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
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        file.write_all(SEGMENT_MAGIC)?;
        file.sync_data()?;
        sync_dir(&self.dir)?;
        self.file = file;
        self.seg_first = self.next;
        self.seg_len = SEGMENT_MAGIC.len() as u64;
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

/// Removes the segments of `dir` whose records all come before `seq`
/// (safe beside the appending writer: the last segment, the one it
/// appends to, always stays).
pub fn remove_segments_before(dir: &Path, seq: u64) -> io::Result<usize> {
    let segs = segments(dir)?;
    let mut removed = 0;
    for w in segs.windows(2) {
        if w[1].0 <= seq {
            fs::remove_file(&w[0].1)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Makes a directory entry (a created or renamed file) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What reading the journal found besides whole records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The beginning of a record the last segment ends inside of: a write
    /// cut short by a crash, never acknowledged under `fsync = "always"`.
    /// Cut (and its bytes kept in quarantine).
    TornTail {
        segment: PathBuf,
        at: u64,
        bytes: u64,
    },
    /// Bytes that do not frame records. `lost` are the numbers of the
    /// records they held, from the whole records around them; `open`
    /// when nothing whole follows (the end of the log: how many records
    /// the bytes held is unknown beyond `lost`).
    Damaged {
        segment: PathBuf,
        at: u64,
        bytes: u64,
        lost: Range<u64>,
        open: bool,
    },
    /// A record that reads back whole but does not decode.
    Undecodable { seq: u64 },
    /// Records missing with no damage around them: a segment deleted or
    /// cut at a record boundary. `before` is the segment after the gap.
    Missing { lost: Range<u64>, before: PathBuf },
}

impl Finding {
    /// Records this finding cost (a torn tail: the one never acknowledged).
    pub fn records(&self) -> u64 {
        match self {
            Finding::TornTail { .. } => 1,
            Finding::Damaged { lost, open, .. } => (lost.end - lost.start).max(u64::from(*open)),
            Finding::Undecodable { .. } => 1,
            Finding::Missing { lost, .. } => lost.end - lost.start,
        }
    }

    /// The `reason` label of `callwatch_recovery_records_skipped_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Finding::TornTail { .. } => "torn_tail",
            Finding::Damaged { .. } => "damaged",
            Finding::Undecodable { .. } => "undecodable",
            Finding::Missing { .. } => "missing",
        }
    }
}

fn range(r: &Range<u64>) -> String {
    match r.end - r.start {
        0 => "no whole record".into(),
        1 => format!("record {}", r.start),
        _ => format!("records {}..={}", r.start, r.end - 1),
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::TornTail { segment, at, bytes } => write!(
                f,
                "{}: cut {bytes} byte(s) of a torn tail at offset {at} (a write a crash interrupted, never acknowledged)",
                segment.display()
            ),
            Finding::Damaged {
                segment,
                at,
                bytes,
                lost,
                open,
            } => {
                write!(
                    f,
                    "{}: {bytes} damaged byte(s) at offset {at}: {} lost",
                    segment.display(),
                    range(lost)
                )?;
                if *open {
                    write!(f, ", and however many records they held after it (nothing whole follows)")?;
                }
                Ok(())
            }
            Finding::Undecodable { seq } => {
                write!(f, "journal record {seq} is whole but does not decode; skipped")
            }
            Finding::Missing { lost, before } => write!(
                f,
                "journal gap: {} missing before {} (a segment deleted or cut)",
                range(lost),
                before.display()
            ),
        }
    }
}

/// How `replay` reads.
#[derive(Debug, Clone, Copy)]
pub struct ReplayOptions<'a> {
    /// The first record wanted (records before it are not read back).
    pub from: u64,
    /// Where damaged segments are copied before anything is cut.
    pub quarantine: Option<&'a Path>,
}

/// What `replay` found.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// The number after the last record read (at least `from`, and at
    /// least the last segment's name).
    pub next: u64,
    /// The number after the last whole record (before `from`: `from`).
    pub end: u64,
    /// How far the journal reaches at all: one past its highest whole
    /// record, or the last segment's name, whichever is higher (records
    /// before `from` included). Below `from`, the journal ends before the
    /// position it should continue.
    pub reach: u64,
    pub findings: Vec<Finding>,
    /// Where the last segment should be cut so that it ends with its last
    /// whole record (a torn tail, or damage nothing whole follows):
    /// `cut_tail` does it, once the reader has decided to go on.
    pub cut: Option<(PathBuf, u64)>,
    /// Formats of the segments read, by first record number.
    pub formats: Vec<(u64, u32)>,
}

/// A run of damaged bytes whose lost records are known once the next
/// whole record is read.
struct Pending {
    segment: PathBuf,
    at: u64,
    bytes: u64,
    /// One past the highest number a damaged record's intact header named.
    known_end: u64,
    /// The run ends with such a record (nothing unknown after it).
    exact: bool,
}

impl Pending {
    fn extend(this: &mut Option<Pending>, segment: &Path, at: u64, len: u64, seq: Option<u64>) {
        let p = this.get_or_insert_with(|| Pending {
            segment: segment.to_path_buf(),
            at,
            bytes: 0,
            known_end: 0,
            exact: false,
        });
        if p.segment == segment {
            p.bytes = at + len - p.at;
        }
        p.exact = seq.is_some();
        if let Some(s) = seq {
            p.known_end = p.known_end.max(s + 1);
        }
    }
}

/// Reads every record from `opts.from` on. Calls `f(seq, record)` in
/// order and reports all else: torn tail, damage (resynchronised past),
/// undecodable records, gaps.
pub fn replay(
    dir: &Path,
    opts: ReplayOptions<'_>,
    mut f: impl FnMut(u64, Record),
) -> io::Result<Scan> {
    let from = opts.from;
    let segs = segments(dir)?;
    let mut scan = Scan {
        next: from,
        end: from,
        ..Scan::default()
    };
    let mut expected = from;
    let mut pending: Option<Pending> = None;
    let last = segs.len().saturating_sub(1);
    for (i, (first, path)) in segs.iter().enumerate() {
        if segs.get(i + 1).is_some_and(|s| s.0 <= from) {
            continue;
        }
        let bytes = fs::read(path)?;
        let format = format_of(&bytes);
        if format > FORMAT {
            return Err(io::Error::other(format!(
                "{} is in journal format {format}, written by a newer callwatch; this build ({}) \
                 reads formats up to {FORMAT}. Start the newer build again, or restore the data \
                 directory from before the upgrade (docs/upgrading.md)",
                path.display(),
                env!("CARGO_PKG_VERSION")
            )));
        }
        scan.formats.push((*first, format));
        scan.reach = scan.reach.max(*first);
        let aside = format!("journal-{}", file_name(path));
        if *first > expected && pending.is_none() {
            scan.findings.push(Finding::Missing {
                lost: expected..*first,
                before: path.clone(),
            });
            expected = *first;
        }
        for item in parse(&bytes, *first) {
            match item {
                Item::Record { frame, .. } => {
                    scan.reach = scan.reach.max(frame.seq + 1);
                    if let Some(p) = pending.take() {
                        // Damage wholly before `from` cost nothing wanted.
                        if !(frame.seq <= from && expected == from) {
                            scan.findings.push(Finding::Damaged {
                                segment: p.segment,
                                at: p.at,
                                bytes: p.bytes,
                                lost: expected..frame.seq.max(expected),
                                open: false,
                            });
                        }
                        // The damage accounts for the records up to here.
                        expected = expected.max(frame.seq);
                    }
                    if frame.seq < expected {
                        continue;
                    }
                    if frame.seq > expected {
                        scan.findings.push(Finding::Missing {
                            lost: expected..frame.seq,
                            before: path.clone(),
                        });
                    }
                    match decode(frame.kind, frame.now_ms, frame.payload) {
                        Some(rec) => f(frame.seq, rec),
                        None => scan.findings.push(Finding::Undecodable { seq: frame.seq }),
                    }
                    expected = frame.seq + 1;
                }
                Item::Damaged { at, len, seq } => {
                    if let Some(q) = opts.quarantine {
                        quarantine(q, path, &aside)?;
                    }
                    Pending::extend(&mut pending, path, at, len, seq);
                }
                Item::Tail { at, len, torn } if torn && i == last && pending.is_none() => {
                    scan.cut = Some((path.clone(), at));
                    scan.findings.push(Finding::TornTail {
                        segment: path.clone(),
                        at,
                        bytes: len,
                    });
                }
                Item::Tail { at, len, .. } => {
                    if let Some(q) = opts.quarantine {
                        quarantine(q, path, &aside)?;
                    }
                    Pending::extend(&mut pending, path, at, len, None);
                    if i == last {
                        // Nothing whole follows anywhere: the copy in
                        // quarantine keeps the bytes, the live file may
                        // end at the last whole record.
                        let cut_at = pending
                            .as_ref()
                            .filter(|p| p.segment == *path)
                            .map_or(at, |p| p.at);
                        scan.cut = Some((path.clone(), cut_at));
                    }
                }
            }
        }
        scan.next = scan.next.max(*first);
    }
    if let Some(p) = pending {
        // Damage with nothing whole after it; the segments' names and
        // intact headers still say which records existed.
        let end = expected.max(scan.next).max(p.known_end);
        scan.findings.push(Finding::Damaged {
            segment: p.segment,
            at: p.at,
            bytes: p.bytes,
            lost: expected..end,
            open: !p.exact,
        });
        scan.next = end;
    }
    scan.end = expected;
    scan.next = scan.next.max(expected);
    Ok(scan)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Cuts the last segment back to `at` bytes, durably, keeping the bytes
/// cut in `quarantine` (as `journal-<segment>.tail-<at>`).
pub fn cut_tail(path: &Path, at: u64, quarantine: Option<&Path>) -> io::Result<()> {
    if let Some(q) = quarantine {
        let bytes = fs::read(path)?;
        let tail = bytes.get(at as usize..).unwrap_or_default();
        if !tail.is_empty() {
            fs::create_dir_all(q)?;
            let to = q.join(format!("journal-{}.tail-{at}", file_name(path)));
            fs::write(&to, tail)?;
            File::open(&to)?.sync_all()?;
            sync_dir(q)?;
        }
    }
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(at)?;
    file.sync_all()
}

/// Copies `file` into the quarantine directory `q` as `name` (once: a
/// copy of the same length already there is kept).
pub fn quarantine(q: &Path, file: &Path, name: &str) -> io::Result<PathBuf> {
    fs::create_dir_all(q)?;
    let to = q.join(name);
    let same = fs::metadata(&to)
        .ok()
        .zip(fs::metadata(file).ok())
        .is_some_and(|(a, b)| a.len() == b.len());
    if !same {
        fs::copy(file, &to)?;
        File::open(&to)?.sync_all()?;
        sync_dir(q)?;
    }
    Ok(to)
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

    fn read_all(dir: &Path, from: u64) -> (Vec<u64>, Scan) {
        let mut v = Vec::new();
        let q = dir.join("quarantine");
        let opts = ReplayOptions {
            from,
            quarantine: Some(&q),
        };
        let scan = replay(dir, opts, |s, _| v.push(s)).expect("replay");
        if let Some((path, at)) = &scan.cut {
            cut_tail(path, *at, Some(&q)).expect("cut");
        }
        (v, scan)
    }

    /// A journal of `n` events in one segment; returns its path.
    fn one_segment(dir: &Path, n: u32) -> PathBuf {
        let mut j = Journal::open(dir, 0, Fsync::Always, 1 << 20).expect("open");
        for i in 0..n {
            j.append_event(1, &ev(i));
        }
        j.commit().expect("commit");
        segments(dir).expect("ls")[0].1.clone()
    }

    /// Offsets of the records of a segment.
    fn offsets(bytes: &[u8]) -> Vec<usize> {
        parse(bytes, 0)
            .iter()
            .filter_map(|i| match i {
                Item::Record { at, .. } => Some(*at as usize),
                _ => None,
            })
            .collect()
    }

    fn seqs(r: Range<u64>) -> Vec<u64> {
        r.collect()
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
        let mut recs = Vec::new();
        let opts = ReplayOptions {
            from: 0,
            quarantine: None,
        };
        let scan = replay(dir.path(), opts, |s, r| recs.push((s, r))).expect("replay");
        assert_eq!((recs.len(), scan.next, scan.end), (14, 14, 14));
        assert!(scan.findings.is_empty(), "{:?}", scan.findings);
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
        // Reopen: a new segment, numbering continues.
        drop(j);
        let before = segments(dir.path()).expect("ls").len();
        let mut j = Journal::open(dir.path(), 14, Fsync::Never, 300).expect("reopen");
        j.append_event(1, &ev(99));
        j.commit().expect("commit");
        let (got, scan) = read_all(dir.path(), 0);
        assert_eq!(got, seqs(0..15));
        assert!(scan.findings.is_empty(), "{:?}", scan.findings);
        assert!(segments(dir.path()).expect("ls").len() >= before);
        // Segments before a snapshot position can go.
        assert!(j.remove_before(9).expect("rm") > 0);
        let (got, scan) = read_all(dir.path(), 9);
        assert_eq!(got, seqs(9..15));
        assert!(scan.findings.is_empty(), "{:?}", scan.findings);
    }

    #[test]
    fn a_torn_tail_is_cut_kept_aside_and_reported() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = one_segment(dir.path(), 3);
        let whole = fs::metadata(&path).expect("meta").len();
        // Half a record, as a crash mid-write leaves it.
        let mut rec = Vec::new();
        encode(&mut rec, 3, KIND_EVENT, 1, event::encode(&ev(3)).as_bytes());
        let half = rec.len() / 2;
        append_raw(&path, &rec[..half]).expect("tear");
        let (got, scan) = read_all(dir.path(), 0);
        assert_eq!(got, seqs(0..3));
        assert_eq!(scan.next, 3);
        assert_eq!(
            scan.findings,
            [Finding::TornTail {
                segment: path.clone(),
                at: whole,
                bytes: half as u64
            }]
        );
        assert_eq!(fs::metadata(&path).expect("meta").len(), whole, "cut back");
        let kept = dir
            .path()
            .join("quarantine")
            .join(format!("journal-{}.tail-{whole}", file_name(&path)));
        assert_eq!(fs::read(kept).expect("kept aside"), rec[..half]);
        // A torn header is torn too.
        append_raw(&path, &rec[..7]).expect("tear");
        let (_, scan) = read_all(dir.path(), 0);
        assert!(matches!(
            scan.findings[..],
            [Finding::TornTail { bytes: 7, .. }]
        ));
        // Appending after the cut continues cleanly, in a new segment.
        let mut j = Journal::open(dir.path(), scan.next, Fsync::Always, 1 << 20).expect("open");
        j.append_event(1, &ev(4));
        j.commit().expect("commit");
        let (got, scan) = read_all(dir.path(), 0);
        assert_eq!(got, seqs(0..4));
        assert!(scan.findings.is_empty(), "{:?}", scan.findings);
    }

    #[test]
    fn a_flipped_payload_byte_costs_that_record_only() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = one_segment(dir.path(), 6);
        let mut bytes = fs::read(&path).expect("read");
        let at = offsets(&bytes);
        bytes[at[2] + HEADER + 30] ^= 0x5a;
        fs::write(&path, &bytes).expect("write");
        let (got, scan) = read_all(dir.path(), 0);
        assert_eq!(got, [0, 1, 3, 4, 5]);
        assert_eq!(scan.next, 6);
        assert_eq!(
            scan.findings,
            [Finding::Damaged {
                segment: path.clone(),
                at: at[2] as u64,
                bytes: (at[3] - at[2]) as u64,
                lost: 2..3,
                open: false
            }]
        );
        // Kept aside whole, never changed in place.
        assert_eq!(fs::read(&path).expect("read"), bytes);
        let kept = dir
            .path()
            .join("quarantine")
            .join(format!("journal-{}", file_name(&path)));
        assert_eq!(fs::read(kept).expect("kept"), bytes);
    }

    #[test]
    fn a_flipped_length_bit_resynchronises_instead_of_cutting() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = one_segment(dir.path(), 80);
        let mut bytes = fs::read(&path).expect("read");
        let at = offsets(&bytes);
        // Record 4's length grows by 2^20: format 1 read this as a torn
        // tail and lost the 75 records after it.
        bytes[at[4] + 6] ^= 0x10;
        fs::write(&path, &bytes).expect("write");
        let (got, scan) = read_all(dir.path(), 0);
        let want: Vec<u64> = (0..80).filter(|s| *s != 4).collect();
        assert_eq!(got, want);
        assert_eq!(scan.findings.len(), 1, "{:?}", scan.findings);
        assert!(
            matches!(&scan.findings[0], Finding::Damaged { lost, open: false, .. } if *lost == (4..5))
        );
        assert_eq!(fs::read(&path).expect("read").len(), bytes.len(), "not cut");
    }

    #[test]
    fn adjacent_bad_records_cost_those_records() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = one_segment(dir.path(), 20);
        let mut bytes = fs::read(&path).expect("read");
        let at = offsets(&bytes);
        bytes[at[7] + 1] ^= 0xff; // magic
        bytes[at[8] + HEADER + 3] ^= 0x01; // body
        fs::write(&path, &bytes).expect("write");
        let (got, scan) = read_all(dir.path(), 0);
        let want: Vec<u64> = (0..20).filter(|s| *s != 7 && *s != 8).collect();
        assert_eq!(got, want);
        assert_eq!(
            scan.findings.len(),
            1,
            "one damaged run: {:?}",
            scan.findings
        );
        assert_eq!(scan.findings[0].records(), 2);
        assert_eq!(scan.findings[0].reason(), "damaged");
    }

    #[test]
    fn damage_in_the_last_record_is_damage_not_a_torn_tail() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = one_segment(dir.path(), 5);
        let mut bytes = fs::read(&path).expect("read");
        let n = bytes.len();
        bytes[n - 3] ^= 0x20;
        fs::write(&path, &bytes).expect("write");
        let (got, scan) = read_all(dir.path(), 0);
        assert_eq!(got, seqs(0..4));
        // The header named it: exactly record 4, and it is not reused.
        assert!(
            matches!(&scan.findings[..], [Finding::Damaged { lost, open: false, .. }] if *lost == (4..5)),
            "{:?}",
            scan.findings
        );
        assert_eq!(scan.next, 5);
        // Garbage at the end (no intact header): unknown, cut after the copy.
        bytes[n - 3] ^= 0x20;
        let at = offsets(&bytes);
        bytes[at[4]] ^= 0xff;
        fs::write(&path, &bytes).expect("write");
        let (_, scan) = read_all(dir.path(), 0);
        assert!(
            matches!(&scan.findings[..], [Finding::Damaged { lost, open: true, .. }] if *lost == (4..4)),
            "{:?}",
            scan.findings
        );
        assert!(scan.findings[0]
            .to_string()
            .contains("however many records"));
        assert_eq!(fs::read(&path).expect("read").len(), at[4]);
    }

    #[test]
    fn a_missing_segment_is_a_gap_and_damage_before_from_costs_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut j = Journal::open(dir.path(), 0, Fsync::Always, 200).expect("open");
        for i in 0..12 {
            j.append_event(1, &ev(i));
            j.commit().expect("commit");
        }
        let segs = segments(dir.path()).expect("ls");
        assert!(segs.len() >= 4, "{segs:?}");
        fs::remove_file(&segs[1].1).expect("rm");
        let (got, scan) = read_all(dir.path(), 0);
        let (lo, hi) = (segs[1].0, segs[2].0);
        assert!(!got.iter().any(|s| (lo..hi).contains(s)));
        assert_eq!(
            scan.findings,
            [Finding::Missing {
                lost: lo..hi,
                before: segs[2].1.clone()
            }]
        );
        // Read from after the gap: nothing wanted is missing.
        let (got, scan) = read_all(dir.path(), hi);
        assert_eq!(got.first(), Some(&hi));
        assert!(scan.findings.is_empty(), "{:?}", scan.findings);
    }

    #[test]
    fn format_1_segments_still_read() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut bytes = Vec::new();
        for i in 0..3 {
            encode_v1(&mut bytes, KIND_EVENT, 7, event::encode(&ev(i)).as_bytes());
        }
        let path = dir.path().join(segment_name(10));
        fs::write(&path, &bytes).expect("write");
        let (got, scan) = read_all(dir.path(), 10);
        assert_eq!(got, seqs(10..13));
        assert_eq!(scan.formats, [(10, 1)]);
        assert!(scan.findings.is_empty());
        // New records go to a new format-2 segment.
        let mut j = Journal::open(dir.path(), scan.next, Fsync::Always, 1 << 20).expect("open");
        j.append_event(1, &ev(3));
        j.commit().expect("commit");
        let (got, scan) = read_all(dir.path(), 10);
        assert_eq!(got, seqs(10..14));
        assert_eq!(scan.formats, [(10, 1), (13, 2)]);
    }

    #[test]
    fn items_tile_the_segment() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = one_segment(dir.path(), 10);
        let mut bytes = fs::read(&path).expect("read");
        for (i, b) in [(40usize, 0x11u8), (200, 0xff), (333, 0x01)] {
            bytes[i] ^= b;
        }
        bytes.truncate(bytes.len() - 9);
        let mut at = SEGMENT_MAGIC.len() as u64;
        for item in parse(&bytes, 0) {
            let (a, l) = match item {
                Item::Record { at, len, .. }
                | Item::Damaged { at, len, .. }
                | Item::Tail { at, len, .. } => (at, len),
            };
            assert_eq!(a, at);
            at += l;
        }
        assert_eq!(at, bytes.len() as u64);
    }

    /// The fuzz seed was written by hand from the module doc (Python's
    /// zlib.crc32): the documented format is the one read.
    #[test]
    fn the_documented_format_reads() {
        let bytes = include_bytes!("../fuzz/seeds/journal/twenty-events-format2.log");
        assert_eq!(format_of(bytes), 2);
        let seqs: Vec<u64> = parse(bytes, 0)
            .into_iter()
            .map(|i| match i {
                Item::Record { frame, .. } => {
                    assert!(decode(frame.kind, frame.now_ms, frame.payload).is_some());
                    frame.seq
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(seqs, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn a_segment_of_a_newer_format_is_refused_not_misread() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = one_segment(dir.path(), 3);
        let mut bytes = fs::read(&path).expect("read");
        bytes[7] = 3;
        fs::write(&path, &bytes).expect("write");
        let opts = ReplayOptions {
            from: 0,
            quarantine: None,
        };
        let e = replay(dir.path(), opts, |_, _| {}).expect_err("refused");
        assert!(
            e.to_string()
                .contains("journal format 3, written by a newer callwatch"),
            "{e}"
        );
        assert_eq!(fs::read(&path).expect("read"), bytes, "untouched");
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
