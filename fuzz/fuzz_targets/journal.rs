//! The journal reader: any bytes as a segment parse into records, skipped
//! records and at most one torn tail, never a panic; valid records decode.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (records, damage) = callwatch::journal::parse(data);
    if let Some((at, len)) = damage.torn_at {
        assert_eq!(at + len, data.len() as u64);
    }
    for (kind, now, payload) in records.into_iter().flatten() {
        let _ = callwatch::journal::decode(kind, now, payload);
    }
});
