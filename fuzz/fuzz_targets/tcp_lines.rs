//! The TCP line protocol's framing: arbitrary bytes in arbitrary chunks
//! split into bounded lines; the same bytes give the same lines however
//! they are chunked, and no line exceeds the limit.
#![no_main]

use callwatch::source::line::{Line, Lines};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 64;

fn split(data: &[u8], chunk: usize) -> Vec<Line> {
    let mut lines = Lines::new(MAX);
    let mut out = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        lines.buf.extend_from_slice(piece);
        while let Some(l) = lines.next_line() {
            out.push(l);
        }
        assert!(lines.buf.len() <= MAX + chunk.max(1), "buffer bounded");
    }
    out.extend(lines.finish());
    out
}

fuzz_target!(|input: (u8, &[u8])| {
    let (chunk, data) = input;
    let whole = split(data, data.len().max(1));
    let pieces = split(data, chunk as usize % 17 + 1);
    assert_eq!(whole, pieces);
    for l in &whole {
        if let Line::Text(t) = l {
            assert!(t.len() <= MAX);
            let _ = callwatch::event::decode(t);
        }
    }
});
