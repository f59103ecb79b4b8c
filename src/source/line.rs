//! Splitting a byte stream into bounded lines.
//!
//! A line longer than the limit is not buffered: its bytes are dropped as
//! they arrive and it is reported once as too long when its newline comes,
//! so a client cannot make the daemon hold more than `max` bytes.

use bytes::{Bytes, BytesMut};

#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line without its `\n` (and a trailing `\r`, if any).
    Text(Bytes),
    /// A line longer than the limit; its content was discarded.
    TooLong,
}

#[derive(Debug)]
pub struct Lines {
    pub buf: BytesMut,
    max: usize,
    discarding: bool,
}

impl Lines {
    pub fn new(max: usize) -> Self {
        Lines {
            buf: BytesMut::with_capacity(8192),
            max,
            discarding: false,
        }
    }

    /// The next complete line in the buffer, if any. Empty lines are
    /// skipped.
    pub fn next_line(&mut self) -> Option<Line> {
        loop {
            match memchr::memchr(b'\n', &self.buf) {
                Some(i) => {
                    let mut line = self.buf.split_to(i + 1);
                    line.truncate(i);
                    if line.last() == Some(&b'\r') {
                        line.truncate(i - 1);
                    }
                    if std::mem::take(&mut self.discarding) || line.len() > self.max {
                        return Some(Line::TooLong);
                    }
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    return Some(Line::Text(line.freeze()));
                }
                None => {
                    // `max` counts the content without its line end, so a
                    // partial line may hold one more byte (a `\r`).
                    if self.buf.len() > self.max + 1 {
                        self.buf.clear();
                        self.discarding = true;
                    }
                    return None;
                }
            }
        }
    }

    /// At end of input: the unterminated last line, if any.
    pub fn finish(&mut self) -> Option<Line> {
        if std::mem::take(&mut self.discarding) {
            self.buf.clear();
            return Some(Line::TooLong);
        }
        if self.buf.iter().all(u8::is_ascii_whitespace) {
            self.buf.clear();
            return None;
        }
        let mut line = self.buf.split();
        if line.last() == Some(&b'\r') {
            line.truncate(line.len() - 1);
        }
        if line.len() > self.max {
            return Some(Line::TooLong);
        }
        Some(Line::Text(line.freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crlf_line_of_exactly_max_bytes_is_the_same_however_it_arrives() {
        // Found by the tcp_lines fuzz target: the `\r` arriving before the
        // `\n` made a line of exactly `max` bytes look too long.
        let mut whole = Lines::new(3);
        whole.buf.extend_from_slice(b"abc\r\n");
        assert_eq!(
            whole.next_line(),
            Some(Line::Text(Bytes::from_static(b"abc")))
        );
        let mut split = Lines::new(3);
        split.buf.extend_from_slice(b"abc\r");
        assert_eq!(split.next_line(), None);
        split.buf.extend_from_slice(b"\n");
        assert_eq!(
            split.next_line(),
            Some(Line::Text(Bytes::from_static(b"abc")))
        );
        // And an unterminated last line one byte over the limit is too long.
        let mut end = Lines::new(3);
        end.buf.extend_from_slice(b"abcd");
        assert_eq!(end.next_line(), None);
        assert_eq!(end.finish(), Some(Line::TooLong));
    }

    #[test]
    fn splits_bounds_and_recovers() {
        let mut l = Lines::new(5);
        l.buf.extend_from_slice(b"abc\r\n\n12345678");
        assert_eq!(l.next_line(), Some(Line::Text(Bytes::from_static(b"abc"))));
        assert_eq!(l.next_line(), None);
        assert!(l.buf.is_empty(), "an overlong partial line is not kept");
        l.buf.extend_from_slice(b"9999\nok\n");
        assert_eq!(l.next_line(), Some(Line::TooLong));
        assert_eq!(l.next_line(), Some(Line::Text(Bytes::from_static(b"ok"))));
        l.buf.extend_from_slice(b"tail");
        assert_eq!(l.next_line(), None);
        assert_eq!(l.finish(), Some(Line::Text(Bytes::from_static(b"tail"))));
    }
}
