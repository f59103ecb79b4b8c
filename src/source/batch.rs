//! Decoding a sender's canonical JSON items into one batch.
//!
//! HTTP (array items or NDJSON lines), TCP (lines), JetStream (message
//! payloads) and the edge publisher all hand the writer the same thing:
//! the decoded events, the bytes each came from (journaled as they are),
//! the sender's number for each (line, index, stream sequence), and the
//! items refused before the writer saw them. Refusals are counted and
//! kept as dead letters here, once, for every source.

use crate::event::{self, Event};
use crate::reject::Rejection;
use crate::writer::{Encoded, Ingest, Outcome};

#[derive(Default)]
pub struct Decoded {
    pub events: Vec<Event>,
    pub raws: Encoded,
    /// The sender's number of each event, in order.
    pub numbers: Vec<u64>,
    /// Items refused before the writer saw them, by number.
    pub refused: Vec<(u64, Rejection)>,
}

impl Decoded {
    pub fn with_capacity(items: usize, bytes: usize) -> Decoded {
        Decoded {
            events: Vec::with_capacity(items),
            raws: Encoded::with_capacity(items, bytes),
            numbers: Vec::with_capacity(items),
            refused: Vec::new(),
        }
    }

    /// Decodes one item; a refusal is counted for `source`.
    pub fn push(&mut self, ingest: &Ingest, source: &'static str, number: u64, raw: &[u8]) {
        let decoded = match ingest.strict() {
            true => event::decode_strict(raw),
            false => event::decode(raw),
        };
        match decoded {
            Ok(ev) => {
                self.events.push(ev);
                self.raws.push(raw);
                self.numbers.push(number);
            }
            Err(r) => self.refuse(ingest, source, number, r, raw),
        }
    }

    /// An item refused before decoding (too long, not text...).
    pub fn refuse(
        &mut self,
        ingest: &Ingest,
        source: &'static str,
        number: u64,
        r: Rejection,
        raw: &[u8],
    ) {
        ingest.rejected(source, &r, raw);
        self.refused.push((number, r));
    }

    /// Items taken so far, decoded or refused.
    pub fn len(&self) -> usize {
        self.events.len() + self.refused.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Splits into what goes to the writer and what was refused already.
    pub fn into_parts(self) -> (Vec<Event>, Encoded, Numbers) {
        (
            self.events,
            self.raws,
            Numbers {
                numbers: self.numbers,
                refused: self.refused,
            },
        )
    }
}

/// The numbering of a batch handed to the writer, to pair its outcomes
/// with the sender's items.
#[derive(Default)]
pub struct Numbers {
    pub numbers: Vec<u64>,
    pub refused: Vec<(u64, Rejection)>,
}

/// What became of a batch, in the sender's numbering.
#[derive(Debug, Default)]
pub struct Tally {
    pub applied: usize,
    pub duplicates: usize,
    /// Every refused item (before or by the writer), by number.
    pub refused: Vec<(u64, Rejection)>,
}

impl Numbers {
    pub fn tally(self, outcomes: Vec<Outcome>) -> Tally {
        let mut t = Tally {
            refused: self.refused,
            ..Tally::default()
        };
        for (no, o) in self.numbers.into_iter().zip(outcomes) {
            match o {
                Outcome::Applied => t.applied += 1,
                Outcome::Duplicate => t.duplicates += 1,
                Outcome::Rejected(r) => t.refused.push((no, r)),
            }
        }
        t.refused.sort_by_key(|(no, _)| *no);
        t
    }
}
