//! Start-up and shutdown: wires the writer, the sources and the HTTP API.
//!
//! Shutdown drains in order: stop accepting (sources and HTTP stop on the
//! cancellation token), let in-flight batches finish and be answered (a
//! TCP client gets the ACK of what was read before `ERR shutting down`),
//! close every feed client with 1001 "shutting down", then stop the
//! writer once the last ingest handle is gone (it syncs and, if
//! configured, snapshots) — all within `server.shutdown_timeout`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{self, HttpOptions};
use crate::clock::{EventClock, SharedClock, SystemClock};
use crate::config::{ClockMode, Config, ConfigError};
use crate::deadletter::DeadLetters;
use crate::engine::settings::Settings;
use crate::engine::Engine;
use crate::feed::{FeedOptions, Hub};
use crate::metric::Telemetry;
use crate::privacy::Policy;
use crate::simulate::SimOptions;
use crate::source::simulator::SimulatorSource;
use crate::source::tcp::TcpSource;
use crate::source::{Built, Running};
use crate::writer::{self, Shared, StorageOptions};

/// The sockets the daemon serves, bound by the caller (so tests and
/// systemd-style activation can hand in their own).
pub struct Listeners {
    pub http: TcpListener,
    pub ingest_tcp: Option<TcpListener>,
}

impl Listeners {
    /// Binds the addresses of the configuration.
    pub async fn bind(config: &Config) -> std::io::Result<Listeners> {
        let http = TcpListener::bind(config.server.http).await?;
        let ingest_tcp = match config.server.ingest_tcp {
            Some(a) => Some(TcpListener::bind(a).await?),
            None => None,
        };
        Ok(Listeners { http, ingest_tcp })
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.local_addr().ok()
    }

    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.ingest_tcp.as_ref().and_then(|l| l.local_addr().ok())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("http server: {0}")]
    Http(std::io::Error),
    #[error("storage: {0}")]
    Storage(std::io::Error),
    #[error("source {0}")]
    Source(String),
    #[error("{0}")]
    Recovery(String),
    #[error("shutdown did not finish within server.shutdown_timeout ({0:?}); exiting anyway")]
    Drain(std::time::Duration),
}

/// Builds the engine and clock the configuration asks for.
pub fn engine_for(config: &Config) -> (Engine, SharedClock) {
    let clock: SharedClock = match config.clock.mode {
        ClockMode::System => Arc::new(SystemClock),
        ClockMode::Event => Arc::new(EventClock::default()),
    };
    (Engine::new(Settings::from_config(config)), clock)
}

/// Runs the daemon until `shutdown` completes.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    crate::source::validate(&config)?;
    let built = crate::source::build_all(&config).map_err(ConfigError::Invalid)?;
    let (_, clock) = engine_for(&config);
    let telemetry = Telemetry::new();
    let st = &config.storage;
    let storage = match &st.data_dir {
        Some(dir) => Some(StorageOptions {
            dir: dir.clone(),
            fsync: st.fsync_policy().map_err(|e| {
                RunError::Config(ConfigError::Invalid(vec![crate::config::Problem {
                    path: "storage.fsync".into(),
                    message: e,
                }]))
            })?,
            segment_bytes: st.segment_bytes,
            snapshot_every: st.snapshot_every,
            snapshot_interval: st.snapshot_interval,
            keep_snapshots: st.keep_snapshots,
            stream: st.journal == crate::config::JournalMode::Stream,
            repair: st.repair,
            snapshot_on_shutdown: st.snapshot_on_shutdown,
        }),
        None => None,
    };
    let deadletters = match &storage {
        Some(s) => {
            Some(DeadLetters::start(&s.dir, st.deadletter_max_bytes).map_err(RunError::Storage)?)
        }
        None => None,
    };
    let shared = Arc::new(Shared::new(
        clock,
        telemetry.clone(),
        deadletters,
        storage.as_ref().is_some_and(|s| !s.stream),
    ));
    let cancel = CancellationToken::new();
    let timers = CancellationToken::new();
    match &storage {
        Some(s) => tracing::info!(dir = %s.dir.display(), fsync = %st.fsync, "recovering state"),
        None => tracing::info!(
            "no data directory (--data-dir): running in memory only; state is lost on restart"
        ),
    }
    let (ingest, writer) = writer::start(
        shared.clone(),
        Settings::from_config(&config),
        storage,
        config.feed.build_interval,
        timers.clone(),
    )
    .map_err(RunError::Storage)?;
    let (http_addr, tcp_addr) = (listeners.http_addr(), listeners.tcp_addr());

    let mut sources = built;
    if let Some(l) = listeners.ingest_tcp {
        sources.push(TcpSource::built(l, &config));
    }
    if config.demo.enabled {
        sources.push(Built {
            kind: crate::source::simulator::NAME,
            name: "simulator".into(),
            checkpoint_file: String::new(),
            source: Box::new(SimulatorSource::new(SimOptions {
                agents: config.demo.agents,
                rate: config.demo.rate,
                seed: config.demo.seed,
                site: None,
            })),
        });
    }
    let state_dir = config.storage.data_dir.as_ref().map(|d| d.join("sources"));
    let running = Running::start(sources, &ingest, &cancel, &telemetry, state_dir);

    for w in crate::privacy::warnings(&config.auth, &config.privacy) {
        tracing::warn!("{w}");
    }
    if crate::config::goals::legacy_targets_set(&config) {
        tracing::warn!(
            "[targets] is deprecated: it is mapped onto the goal matrix ([goals], docs/goals.md);              run `callwatch goals` to see the result and move it into [goals.matrix]"
        );
    }
    let hub = Hub::start(
        shared.clone(),
        FeedOptions::from_config(&config.feed),
        Policy::new(&config.privacy),
        cancel.clone(),
    );
    let feed = hub.clone();
    let app = api::router(
        shared.clone(),
        ingest,
        HttpOptions {
            limits: api::IngestLimits::of(&config),
            auth: config.auth.clone(),
            privacy: config.privacy.clone(),
            matrix: Arc::new(crate::goal::Matrix::from_config(&config)),
            currency: config.sales.currency.clone(),
            wallboard: crate::wallboard::page(&config).into(),
            qa_period: config.quality.period,
            stream_only: st.journal == crate::config::JournalMode::Stream,
        },
        hub,
    );
    let http_cancel = cancel.clone();
    let server = tokio::spawn(crate::http::serve(
        listeners.http,
        app,
        crate::http::HttpLimits::of(&config),
        telemetry.clone(),
        http_cancel,
    ));
    tracing::info!(
        http = %http_addr.map(|a| a.to_string()).unwrap_or_default(),
        ingest_tcp = %tcp_addr.map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
        demo = config.demo.enabled,
        "callwatch listening"
    );

    tokio::select! {
        _ = shutdown => {}
        _ = running.failure.cancelled() => {}
        _ = shared.fatal.cancelled() => {}
    }
    tracing::info!("shutting down: draining sources and in-flight batches");
    cancel.cancel();
    let drain = async {
        // Wallboards get their close frame (and go to a replica) while
        // the sources drain.
        let (failed, ()) = tokio::join!(running.finish(), feed.drained());
        let served = server.await;
        // Every ingest handle is gone now; stop the timers and let the
        // writer finish its last group, sync and (if configured) snapshot.
        timers.cancel();
        let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        (failed, served)
    };
    let limit = config.server.shutdown_timeout;
    let Ok((failed, served)) = tokio::time::timeout(limit, drain).await else {
        // What was acknowledged is durable already; what is still in
        // flight is not acknowledged, and senders resend it.
        return Err(RunError::Drain(limit));
    };
    tracing::info!("drained; exiting");
    if let Some(why) = shared.failure.get() {
        return Err(RunError::Recovery(why.clone()));
    }
    if let Some(e) = failed {
        return Err(RunError::Source(e));
    }
    served.map_err(|e| RunError::Http(std::io::Error::other(e)))
}
