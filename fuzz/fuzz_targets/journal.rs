//! The journal reader: any bytes as a segment parse into items that tile
//! the input exactly (records, damaged runs, at most one tail, last),
//! never a panic; whole records decode or are refused cleanly.
#![no_main]

use callwatch::journal::Item;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let items = callwatch::journal::parse(data, 0);
    let mut at = match items.first() {
        Some(Item::Record { at, .. } | Item::Damaged { at, .. } | Item::Tail { at, .. }) => *at,
        None => data.len() as u64,
    };
    // Only a segment header (or nothing) precedes the first item.
    assert!(at <= 8, "items start at {at}");
    for (i, item) in items.iter().enumerate() {
        let (a, len) = match item {
            Item::Record { at, len, frame } => {
                let _ = callwatch::journal::decode(frame.kind, frame.now_ms, frame.payload);
                (*at, *len)
            }
            Item::Damaged { at, len, .. } => (*at, *len),
            Item::Tail { at, len, .. } => {
                assert_eq!(i, items.len() - 1, "a tail is last");
                (*at, *len)
            }
        };
        assert_eq!(a, at, "items are contiguous");
        assert!(len > 0);
        at += len;
    }
    assert_eq!(at, data.len() as u64, "items cover the input");
});
