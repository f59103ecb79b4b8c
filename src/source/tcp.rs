//! NDJSON over TCP.
//!
//! Protocol (docs/api.md): if an ingest token is configured the first line
//! must be `AUTH <token>` (answered `OK`). Then one event per line. After
//! each batch of lines the daemon writes one `ERR <line> <reason>
//! <message>` per refused line and then `ACK <n>`: every line up to number
//! `n` (counted from 1, blank lines and AUTH not counted) has been
//! applied, recognised as a duplicate, or answered with ERR. A sender
//! resends what follows its last ACK after a broken connection.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::batch::{Decoded, Numbers};
use super::line::{Line, Lines};
use super::{Context, Source, SourceError};
use crate::reject::{Reason, Rejection};
use crate::writer::{Ingest, IngestError, Outcome, Pending};

pub const NAME: &str = "tcp";
const READ_CHUNK: usize = 256 * 1024;

/// Settings of the TCP source.
#[derive(Debug, Clone)]
pub struct TcpOptions {
    pub token: Option<String>,
    pub max_line_bytes: usize,
    pub max_bad_lines: u32,
    pub max_clients: usize,
    pub batch: usize,
    pub first_line_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
    /// TLS on this listener (`[server.tls]`), reloadable.
    pub tls: Option<crate::tls::Current>,
}

pub struct TcpSource {
    listener: TcpListener,
    opts: TcpOptions,
}

impl TcpSource {
    pub fn new(listener: TcpListener, opts: TcpOptions) -> Self {
        TcpSource { listener, opts }
    }

    /// The TCP source of a process, from `[server]` and `[auth]`.
    pub fn built(
        listener: TcpListener,
        config: &crate::config::Config,
        tls: Option<crate::tls::Current>,
    ) -> super::Built {
        let s = &config.server;
        super::Built {
            kind: NAME,
            name: NAME.into(),
            checkpoint_file: String::new(),
            source: Box::new(TcpSource::new(
                listener,
                TcpOptions {
                    token: config.auth.ingest_token.clone(),
                    max_line_bytes: s.max_line_bytes,
                    max_bad_lines: s.max_bad_lines,
                    max_clients: s.max_tcp_clients,
                    batch: s.tcp_batch,
                    first_line_timeout: s.tcp_first_line_timeout,
                    idle_timeout: s.tcp_idle_timeout,
                    write_timeout: s.tcp_write_timeout,
                    tls,
                },
            )),
        }
    }
}

impl Source for TcpSource {
    fn run(self: Box<Self>, cx: Context) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move {
            let TcpSource { listener, opts } = *self;
            let telemetry = cx.telemetry().clone();
            let (ingest, shutdown) = (cx.ingest.clone(), cx.shutdown.clone());
            let opts = Arc::new(opts);
            let slots = Arc::new(Semaphore::new(opts.max_clients));
            let conns = TaskTracker::new();
            let mut accept_backoff = AcceptBackoff::default();
            loop {
                let (stream, peer) = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    r = listener.accept() => match r {
                        Ok(c) => {
                            accept_backoff.reset();
                            c
                        }
                        Err(e) => {
                            // Out of file descriptors and the like: keep
                            // serving, but wait before the next accept
                            // instead of spinning on the same error.
                            telemetry.disconnected("accept_failed");
                            accept_backoff.wait(&e, &shutdown).await;
                            continue;
                        }
                    },
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    telemetry.disconnected("too_many_clients");
                    // Said without waiting for a client that does not read.
                    let _ = stream.try_write(b"ERR too many clients; try again later\n");
                    continue;
                };
                let (ingest, opts, telemetry, shutdown) = (
                    ingest.clone(),
                    opts.clone(),
                    telemetry.clone(),
                    shutdown.clone(),
                );
                conns.spawn(async move {
                    telemetry.tcp_clients(1.0);
                    let why = serve(stream, &opts, &ingest, &shutdown).await;
                    telemetry.tcp_clients(-1.0);
                    if let Some(why) = why {
                        telemetry.disconnected(why);
                        tracing::info!(%peer, reason = why, "tcp client disconnected");
                    }
                    drop(permit);
                });
            }
            conns.close();
            conns.wait().await;
            Ok(())
        })
    }
}

/// Waits after a failed accept: 10 ms doubling to 1 s, reset by the next
/// accepted connection; logs at most once a second.
#[derive(Default)]
pub struct AcceptBackoff {
    delay: Duration,
    logged: Option<std::time::Instant>,
}

impl AcceptBackoff {
    pub fn reset(&mut self) {
        self.delay = Duration::ZERO;
    }

    pub async fn wait(&mut self, e: &std::io::Error, shutdown: &CancellationToken) {
        self.delay = (self.delay * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
        if self
            .logged
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.logged = Some(std::time::Instant::now());
            tracing::warn!(error = %e, retry_in = ?self.delay, "accept failed (out of file descriptors?)");
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(self.delay) => {}
        }
    }
}

/// Writes `bytes` unless the client does not take them within the write
/// timeout. `Err(None)`: the connection broke; `Err(Some(why))`: timed out.
async fn reply(
    wr: &mut (impl AsyncWriteExt + Unpin),
    bytes: &[u8],
    timeout: Duration,
) -> Result<(), Option<&'static str>> {
    match tokio::time::timeout(timeout, wr.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(None),
        Err(_) => Err(Some("write_timeout")),
    }
}

/// A batch handed to the writer whose outcome is not yet acknowledged.
struct InFlight {
    pending: Pending,
    /// Line numbers of the batch, and lines refused before the writer.
    numbers: Numbers,
    /// The ACK to send: every line up to here.
    upto: u64,
}

/// What woke the connection up.
enum Wake {
    Read(std::io::Result<usize>),
    Outcome(Result<Vec<Outcome>, IngestError>),
    Shutdown,
    /// No first line in time, or quiet too long with nothing in flight.
    Quiet,
}

/// Serves one client; returns why the daemon hung up, if it did.
///
/// One batch at a time is in flight: while the writer applies batch k,
/// this task splits and decodes batch k+1, so the two cores overlap
/// instead of taking turns. ACKs still go out in line order, and an
/// outcome that arrives while the client is quiet is acknowledged at
/// once (the read and the outcome are awaited together).
async fn serve(
    mut stream: TcpStream,
    opts: &TcpOptions,
    ingest: &Ingest,
    shutdown: &CancellationToken,
) -> Option<&'static str> {
    let _ = stream.set_nodelay(true);
    let Some(tls) = &opts.tls else {
        let (rd, wr) = stream.split();
        return serve_lines(rd, wr, opts, ingest, shutdown).await;
    };
    // The handshake must be done within the first-line timeout: a client
    // that connects and says nothing does not hold a slot.
    let acceptor = tls.get();
    match tokio::time::timeout(opts.first_line_timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls_stream)) => {
            let (rd, wr) = tokio::io::split(tls_stream);
            serve_lines(rd, wr, opts, ingest, shutdown).await
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "tls handshake failed");
            Some("tls_handshake")
        }
        Err(_) => Some("tls_handshake"),
    }
}

/// Serves one client's lines, on a plain or TLS connection.
async fn serve_lines(
    mut rd: impl tokio::io::AsyncRead + Unpin,
    mut wr: impl AsyncWriteExt + Unpin,
    opts: &TcpOptions,
    ingest: &Ingest,
    shutdown: &CancellationToken,
) -> Option<&'static str> {
    let mut lines = Lines::new(opts.max_line_bytes);
    let mut authed = opts.token.is_none();
    let mut line_no: u64 = 0;
    let mut bad: u32 = 0;
    let mut out = Vec::with_capacity(256);
    let mut eof = false;
    let mut inflight: Option<InFlight> = None;
    let wt = opts.write_timeout;
    // Until the first line, the deadline is fixed from the connect (a
    // client trickling bytes does not extend it); then it is the idle
    // timeout from the last read.
    let first_line_by = tokio::time::Instant::now() + opts.first_line_timeout;
    let mut heard = false;
    let mut last_read = tokio::time::Instant::now();
    while !eof {
        // Read in large chunks: more lines per batch means fewer journal
        // syncs per event under fsync = "always".
        lines.buf.reserve(READ_CHUNK);
        let n = loop {
            let quiet_at = if heard {
                last_read + opts.idle_timeout
            } else {
                first_line_by
            };
            let wake = tokio::select! {
                _ = shutdown.cancelled() => Wake::Shutdown,
                r = rd.read_buf(&mut lines.buf) => Wake::Read(r),
                _ = tokio::time::sleep_until(quiet_at), if inflight.is_none() => Wake::Quiet,
                o = async {
                    match inflight.as_mut() {
                        Some(f) => (&mut f.pending).await,
                        None => std::future::pending().await,
                    }
                }, if inflight.is_some() => Wake::Outcome(o),
            };
            match wake {
                Wake::Shutdown => {
                    // Drain: what was read is answered before the door
                    // closes (the writer runs until every source is done).
                    if let Some(mut f) = inflight.take() {
                        let o = (&mut f.pending).await;
                        let why = acknowledge(&mut wr, f, o, &mut bad, &mut out, opts).await;
                        if why.is_some() {
                            return why;
                        }
                    }
                    let _ = reply(&mut wr, b"ERR shutting down\n", wt).await;
                    return Some("shutdown");
                }
                Wake::Quiet if heard => {
                    let _ = reply(
                        &mut wr,
                        b"ERR closing: idle (server.tcp_idle_timeout)\n",
                        wt,
                    )
                    .await;
                    return Some("idle_timeout");
                }
                Wake::Quiet => {
                    let _ = reply(
                        &mut wr,
                        b"ERR closing: no first line in time (server.tcp_first_line_timeout)\n",
                        wt,
                    )
                    .await;
                    return Some("first_line_timeout");
                }
                Wake::Read(Ok(n)) => {
                    last_read = tokio::time::Instant::now();
                    break n;
                }
                Wake::Read(Err(_)) => return None,
                Wake::Outcome(o) => {
                    let f = inflight.take()?;
                    let why = acknowledge(&mut wr, f, o, &mut bad, &mut out, opts).await;
                    if why.is_some() {
                        return why;
                    }
                }
            }
        };
        eof = n == 0;
        loop {
            // The lines as received: journaled as they are.
            let mut batch = Decoded::default();
            let mut received = 0usize;
            while batch.len() < opts.batch {
                let next = match lines.next_line() {
                    Some(l) => l,
                    None if eof => match lines.finish() {
                        Some(l) => l,
                        None => break,
                    },
                    None => break,
                };
                heard = true;
                if !authed {
                    match next {
                        Line::Text(t) if check_auth(&t, opts.token.as_deref()) => {
                            authed = true;
                            if let Err(why) = reply(&mut wr, b"OK\n", wt).await {
                                return why;
                            }
                            continue;
                        }
                        _ => {
                            let _ =
                                reply(&mut wr, b"ERR auth required: send AUTH <token> first\n", wt)
                                    .await;
                            return Some("auth");
                        }
                    }
                }
                line_no += 1;
                received += 1;
                match next {
                    Line::Text(t) => batch.push(ingest, NAME, line_no, &t),
                    Line::TooLong => batch.refuse(
                        ingest,
                        NAME,
                        line_no,
                        Rejection::new(
                            Reason::TooLarge,
                            format!("line longer than {} bytes", opts.max_line_bytes),
                        ),
                        b"",
                    ),
                }
            }
            if batch.is_empty() {
                break;
            }
            // One counter update per batch, not per line.
            ingest.received(NAME, std::mem::take(&mut received));
            let (events, raws, numbers) = batch.into_parts();
            let pending = match ingest.send(NAME, events, Some(raws)).await {
                Ok(p) => p,
                Err(e) => return refused(&mut wr, e, wt).await,
            };
            // The previous batch is acknowledged first: ACKs stay in order.
            if let Some(mut f) = inflight.take() {
                let o = (&mut f.pending).await;
                let why = acknowledge(&mut wr, f, o, &mut bad, &mut out, opts).await;
                if why.is_some() {
                    return why;
                }
            }
            inflight = Some(InFlight {
                pending,
                numbers,
                upto: line_no,
            });
        }
    }
    if let Some(mut f) = inflight.take() {
        let o = (&mut f.pending).await;
        return acknowledge(&mut wr, f, o, &mut bad, &mut out, opts).await;
    }
    None
}

/// Answers the writer refusing a whole batch.
async fn refused(
    wr: &mut (impl AsyncWriteExt + Unpin),
    e: IngestError,
    wt: Duration,
) -> Option<&'static str> {
    match e {
        IngestError::ShuttingDown => {
            let _ = reply(wr, b"ERR shutting down\n", wt).await;
            Some("shutdown")
        }
        IngestError::Storage(_) => {
            // No ACK: nothing of this batch was applied; the sender
            // reconnects and resends from its last ACK.
            let msg = e.to_string().replace(['\n', '\r'], " ");
            let _ = reply(wr, format!("ERR storage {msg}\n").as_bytes(), wt).await;
            Some("storage")
        }
    }
}

/// Writes a batch's ERR lines and its ACK.
async fn acknowledge(
    wr: &mut (impl AsyncWriteExt + Unpin),
    f: InFlight,
    outcome: Result<Vec<Outcome>, IngestError>,
    bad: &mut u32,
    out: &mut Vec<u8>,
    opts: &TcpOptions,
) -> Option<&'static str> {
    let outcomes = match outcome {
        Ok(o) => o,
        Err(e) => return refused(wr, e, opts.write_timeout).await,
    };
    let errors = f.numbers.tally(outcomes).refused;
    out.clear();
    for (no, r) in &errors {
        let msg = r.message.replace(['\n', '\r'], " ");
        out.extend_from_slice(format!("ERR {no} {} {msg}\n", r.reason).as_bytes());
    }
    *bad = bad.saturating_add(errors.len() as u32);
    out.extend_from_slice(format!("ACK {}\n", f.upto).as_bytes());
    if let Err(why) = reply(wr, out, opts.write_timeout).await {
        return why;
    }
    if *bad >= opts.max_bad_lines {
        let msg = format!("ERR closing: {} bad lines (server.max_bad_lines)\n", *bad);
        let _ = reply(wr, msg.as_bytes(), opts.write_timeout).await;
        return Some("bad_lines");
    }
    None
}

fn check_auth(line: &[u8], token: Option<&str>) -> bool {
    let (Some(token), Some(given)) = (token, line.strip_prefix(b"AUTH ")) else {
        return false;
    };
    let given = given.trim_ascii();
    given.ct_eq(token.as_bytes()).into()
}
