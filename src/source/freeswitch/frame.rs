//! The framing of FreeSWITCH's Event Socket (inbound mode): a frame is
//! `Name: value` header lines up to an empty line, then `Content-Length`
//! bytes of body. An event in `plain` format is such a body: its own
//! header lines, each value URL-encoded, and an optional body of its own.

use std::collections::HashMap;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// Largest frame body accepted (bytes): an event with every channel
/// variable is a few KiB; this bounds what a peer can make us hold.
pub const MAX_BODY: usize = 256 * 1024;
/// Most header lines of one frame or event.
const MAX_HEADERS: usize = 1024;
/// Longest header line.
const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed")]
    Closed,
    #[error("frame too large: {0}")]
    TooLarge(&'static str),
    #[error("bad Content-Length {0:?}")]
    BadLength(String),
}

/// Header names as FreeSWITCH writes them (case kept) and their values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Headers(HashMap<String, String>);

impl Headers {
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn insert(&mut self, name: &str, value: String) {
        self.0.insert(name.to_string(), value);
    }
}

/// One frame from the server.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    pub headers: Headers,
    pub body: String,
}

impl Frame {
    pub fn content_type(&self) -> &str {
        self.headers.get("Content-Type")
    }
}

/// Splits `Name: value` lines; `decode` URL-decodes the values (event
/// bodies in `plain` format).
fn header_lines(text: &str, decode: bool) -> Headers {
    let mut h = Headers::default();
    for line in text.lines().take(MAX_HEADERS) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let value = if decode {
            percent_encoding::percent_decode_str(value)
                .decode_utf8_lossy()
                .into_owned()
        } else {
            value.to_string()
        };
        h.0.insert(name.trim().to_string(), value);
    }
    h
}

/// Reads one frame.
pub async fn read<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Frame, FrameError> {
    let mut head = String::new();
    let mut line = String::new();
    let mut lines = 0;
    loop {
        line.clear();
        let n = (&mut *r)
            .take(MAX_LINE as u64 + 1)
            .read_line(&mut line)
            .await?;
        if n == 0 {
            return Err(FrameError::Closed);
        }
        if n > MAX_LINE {
            return Err(FrameError::TooLarge("header line"));
        }
        if line.trim().is_empty() {
            // Blank lines between frames are no frame.
            if head.is_empty() {
                continue;
            }
            break;
        }
        lines += 1;
        if lines > MAX_HEADERS {
            return Err(FrameError::TooLarge("headers"));
        }
        head.push_str(&line);
    }
    let headers = header_lines(&head, false);
    let len = match headers.get("Content-Length") {
        "" => 0,
        v => v
            .parse::<usize>()
            .map_err(|_| FrameError::BadLength(v.to_string()))?,
    };
    if len > MAX_BODY {
        return Err(FrameError::TooLarge("body"));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(Frame {
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The headers of an event in `plain` format (values URL-decoded); its
/// own body, if any, is not needed by callwatch.
pub fn event(body: &str) -> Headers {
    let head = body.split("\n\n").next().unwrap_or("");
    header_lines(head, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_with_and_without_bodies_and_decoded_events() {
        let event = "Event-Name: CUSTOM\nEvent-Subclass: callcenter%3A%3Ainfo\nCC-Agent-Status: Available%20(On%20Demand)\n\n";
        let wire = format!(
            "Content-Type: auth/request\n\nContent-Type: command/reply\nReply-Text: +OK accepted\n\nContent-Length: {}\nContent-Type: text/event-plain\n\n{event}",
            event.len()
        );
        let mut r = tokio::io::BufReader::new(wire.as_bytes());
        assert_eq!(
            read(&mut r).await.expect("auth").content_type(),
            "auth/request"
        );
        let reply = read(&mut r).await.expect("reply");
        assert_eq!(reply.headers.get("Reply-Text"), "+OK accepted");
        let ev = read(&mut r).await.expect("event");
        assert_eq!(ev.content_type(), "text/event-plain");
        let h = super::event(&ev.body);
        assert_eq!(h.get("Event-Subclass"), "callcenter::info");
        assert_eq!(h.get("CC-Agent-Status"), "Available (On Demand)");
        assert!(matches!(read(&mut r).await, Err(FrameError::Closed)));
    }

    #[tokio::test]
    async fn oversized_and_bad_lengths_are_errors() {
        let wire = format!("Content-Length: {}\n\n", MAX_BODY + 1);
        let mut r = tokio::io::BufReader::new(wire.as_bytes());
        assert!(matches!(
            read(&mut r).await,
            Err(FrameError::TooLarge("body"))
        ));
        let mut r = tokio::io::BufReader::new(&b"Content-Length: x\n\n"[..]);
        assert!(matches!(read(&mut r).await, Err(FrameError::BadLength(_))));
        let long = format!("X: {}\n\n", "a".repeat(MAX_LINE + 10));
        let mut r = tokio::io::BufReader::new(long.as_bytes());
        assert!(matches!(
            read(&mut r).await,
            Err(FrameError::TooLarge("header line"))
        ));
    }
}
