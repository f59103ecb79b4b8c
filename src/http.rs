//! The HTTP listener: serves the API router with a cap on open
//! connections, a header-read timeout (which also closes idle keep-alive
//! connections and slowloris clients), backoff when `accept` fails, and
//! a graceful drain on shutdown. (`axum::serve` offers none of these
//! knobs; this is the part of it we need, on hyper directly.)

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metric::Telemetry;
use crate::source::tcp::AcceptBackoff;

/// What a client may hold of the HTTP listener.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

impl HttpLimits {
    pub fn of(config: &crate::config::Config) -> HttpLimits {
        HttpLimits {
            max_connections: config.server.max_http_connections,
            header_timeout: config.server.http_header_timeout,
        }
    }
}

/// Said to a connection over the cap, without waiting on the client.
const TOO_MANY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 37\r\n\r\ntoo many connections; try again later";

/// Serves `app` on `listener` until `stop`, then lets every open request
/// finish (keep-alive connections close after their current response)
/// and returns once they have.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: HttpLimits,
    tls: Option<crate::tls::Current>,
    telemetry: Arc<Telemetry>,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let conns = TaskTracker::new();
    let mut backoff = AcceptBackoff::default();
    loop {
        let stream = tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => match r {
                Ok((s, _)) => {
                    backoff.reset();
                    s
                }
                Err(e) => {
                    telemetry.http_disconnected("accept_failed");
                    backoff.wait(&e, &stop).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            telemetry.http_disconnected("too_many_connections");
            let _ = stream.try_write(TOO_MANY);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (svc, telemetry, stop, tls) = (
            TowerToHyperService::new(app.clone()),
            telemetry.clone(),
            stop.clone(),
            tls.clone(),
        );
        conns.spawn(async move {
            // Held until the connection closes or is upgraded (a feed
            // client then counts against the feed's own cap).
            let _permit = permit;
            telemetry.http_connections(1.0);
            let done = match tls {
                None => connection(stream, svc, limits, &stop).await,
                Some(tls) => {
                    // The handshake counts against the header timeout: a
                    // client that opens and says nothing is closed.
                    let acceptor = tls.get();
                    match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls_stream)) => connection(tls_stream, svc, limits, &stop).await,
                        failed => {
                            telemetry.http_disconnected("tls_handshake");
                            if let Ok(Err(e)) = failed {
                                tracing::debug!(error = %e, "tls handshake failed");
                            }
                            Ok(())
                        }
                    }
                }
            };
            telemetry.http_connections(-1.0);
            if let Err(e) = done {
                if e.is_timeout() {
                    telemetry.http_disconnected("header_timeout");
                }
                tracing::debug!(error = %e, "http connection ended");
            }
        });
    }
    conns.close();
    conns.wait().await;
}

/// Serves one connection, plain or TLS, until it closes or `stop` (then
/// gracefully: the current response finishes).
async fn connection<S>(
    io: S,
    svc: TowerToHyperService<axum::Router>,
    limits: HttpLimits,
    stop: &CancellationToken,
) -> Result<(), hyper::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut conn = pin!(builder
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades());
    tokio::select! {
        r = conn.as_mut() => r,
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}
