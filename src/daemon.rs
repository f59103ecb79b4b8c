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
    #[error("tls: {0}")]
    Tls(#[from] crate::tls::TlsError),
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

/// Reads the configuration again.
pub type LoadConfig = Box<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>;
/// Applies a new `log.level`.
pub type SetLogLevel = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// How a running daemon is told to reload its configuration.
#[derive(Default)]
pub struct Control {
    /// Reads the configuration again (the file, with the command line's
    /// overrides); without it the daemon cannot reload.
    pub load: Option<LoadConfig>,
    /// One message per SIGHUP.
    pub hup: Option<tokio::sync::mpsc::Receiver<()>>,
    /// Applies a new `log.level`.
    pub log_level: Option<SetLogLevel>,
}

/// The HTTP layer's options for a configuration.
fn http_options(config: &Config) -> HttpOptions {
    HttpOptions {
        limits: api::IngestLimits::of(config),
        auth: config.auth.clone(),
        privacy: config.privacy.clone(),
        matrix: Arc::new(crate::goal::Matrix::from_config(config)),
        currency: config.sales.currency.clone(),
        wallboard: crate::wallboard::page(config).into(),
        qa_period: config.quality.period,
        stream_only: config.storage.journal == crate::config::JournalMode::Stream,
    }
}

/// Warnings a configuration deserves, at start and at each reload.
fn warn_about(config: &Config) {
    for w in crate::privacy::warnings(&config.auth, &config.privacy) {
        tracing::warn!("{w}");
    }
    if crate::config::goals::legacy_targets_set(config) {
        tracing::warn!(
            "[targets] is deprecated: it is mapped onto the goal matrix ([goals], docs/goals.md); \
             run `callwatch goals` to see the result and move it into [goals.matrix]"
        );
    }
}

/// What a reload may change while the daemon runs.
struct Live {
    /// The configuration loaded at start (what restart-only settings
    /// are compared with).
    started: Config,
    /// The configuration in force.
    current: Config,
    ingest: crate::writer::Ingest,
    http: Arc<arc_swap::ArcSwap<HttpOptions>>,
    hub: Arc<Hub>,
    /// The `[[sources]]` entries, stopped and started again when they
    /// change (the built-in TCP ingest and the demo keep running).
    configured: Running,
    configured_stop: CancellationToken,
    cancel: CancellationToken,
    telemetry: Arc<Telemetry>,
    shared: Arc<Shared>,
    /// The listeners' TLS: re-read from the started paths on a reload.
    tls: crate::tls::Listeners,
}

impl Live {
    async fn reload(&mut self, control: &Control) -> Result<crate::reload::Done, String> {
        let result = self.try_reload(control).await;
        let t = &self.telemetry;
        let mut status = self
            .shared
            .reload
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        status.reloads += 1;
        match &result {
            Ok(done) => {
                let now = chrono::Utc::now().timestamp_millis();
                status.last_success_ms = now;
                status.last_error = None;
                t.config_reloaded(true, now);
                tracing::info!(applied = ?done.applied, "configuration reloaded");
                if !done.restart_needed.is_empty() {
                    tracing::warn!(
                        settings = ?done.restart_needed,
                        "these settings changed in the file but take effect only at a restart"
                    );
                }
            }
            Err(why) => {
                status.last_error = Some(why.clone());
                t.config_reloaded(false, 0);
                tracing::error!(
                    "configuration reload refused, the running configuration stays: {why}"
                );
            }
        }
        if let Ok(mut s) = self.shared.reload.lock() {
            *s = status;
        }
        result
    }

    async fn try_reload(&mut self, control: &Control) -> Result<crate::reload::Done, String> {
        let load = control
            .load
            .as_ref()
            .ok_or("no configuration file to reload (started with the embedded one)")?;
        // Whole or nothing: every check before any part changes.
        let new = load().map_err(|e| e.to_string())?;
        crate::source::validate(&new).map_err(|e| e.to_string())?;
        let built =
            crate::source::build_all(&new).map_err(|p| ConfigError::Invalid(p).to_string())?;
        let restart_needed = crate::reload::restart_needed(&self.started, &new);
        let mut applied = vec!["goals, targets, calendars and holidays"];
        // Renewed certificate files (same paths): checked before anything
        // else changes, so a bad file refuses the whole reload.
        let now_s = chrono::Utc::now().timestamp();
        if self
            .tls
            .reload(self.started.server.tls.as_ref(), now_s)
            .map_err(|e| format!("tls: {e}"))?
        {
            applied.push("tls certificates");
        }
        self.ingest.reload(Settings::from_config(&new)).await?;
        self.ingest.set_strict(new.ingest.strict);
        applied.push("ingest.strict");
        self.http.store(Arc::new(http_options(&new)));
        applied.push("auth, privacy, goal sheet and wallboard page");
        self.hub.reconfigure(
            FeedOptions::from_config(&new.feed),
            Policy::new(&new.privacy),
        );
        applied.push("feed and privacy policy");
        if new.sources != self.current.sources {
            // Stopped sources have stored their positions; the new set
            // starts from them.
            self.configured_stop.cancel();
            let old = std::mem::replace(&mut self.configured, Running::idle());
            if let Some(e) = old.finish().await {
                return Err(format!("a source failed while stopping: {e}"));
            }
            self.configured_stop = self.cancel.child_token();
            let state_dir = new.storage.data_dir.as_ref().map(|d| d.join("sources"));
            self.configured = Running::start(
                built,
                &self.ingest,
                &self.configured_stop,
                &self.telemetry,
                state_dir,
            );
            applied.push("sources");
        }
        if new.log.level != self.current.log.level {
            if let Some(set) = &control.log_level {
                set(&new.log.level)?;
                applied.push("log level");
            }
        }
        warn_about(&new);
        self.current = new;
        Ok(crate::reload::Done {
            applied,
            restart_needed,
        })
    }
}

/// Runs the daemon until `shutdown` completes.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
    mut control: Control,
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
            snapshot_mode: st.snapshot_mode,
        }),
        None => None,
    };
    let deadletters = match &storage {
        Some(s) => Some(
            DeadLetters::start(&s.dir, st.deadletter_max_bytes, telemetry.clone())
                .map_err(RunError::Storage)?,
        ),
        None => None,
    };
    let shared = Arc::new(Shared::new(
        clock,
        telemetry.clone(),
        deadletters,
        storage.as_ref().is_some_and(|s| !s.stream),
    ));
    shared
        .strict
        .store(config.ingest.strict, std::sync::atomic::Ordering::Relaxed);
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

    let tls =
        crate::tls::Listeners::start(config.server.tls.as_ref(), chrono::Utc::now().timestamp())?;
    let state_dir = config.storage.data_dir.as_ref().map(|d| d.join("sources"));
    let configured_stop = cancel.child_token();
    let configured = Running::start(
        built,
        &ingest,
        &configured_stop,
        &telemetry,
        state_dir.clone(),
    );
    let mut builtin = Vec::new();
    if let Some(l) = listeners.ingest_tcp {
        builtin.push(TcpSource::built(l, &config, tls.tcp.clone()));
    }
    if config.demo.enabled {
        builtin.push(Built {
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
    let running = Running::start(builtin, &ingest, &cancel, &telemetry, state_dir);
    warn_about(&config);
    let hub = Hub::start(
        shared.clone(),
        FeedOptions::from_config(&config.feed),
        Policy::new(&config.privacy),
        cancel.clone(),
    );
    let http = Arc::new(arc_swap::ArcSwap::from_pointee(http_options(&config)));
    let (reload_tx, mut reload_rx) = tokio::sync::mpsc::channel::<crate::reload::Request>(4);
    let app = api::router(
        shared.clone(),
        ingest.clone(),
        http.clone(),
        hub.clone(),
        Some(reload_tx),
    );
    let http_cancel = cancel.clone();
    let server = tokio::spawn(crate::http::serve(
        listeners.http,
        app,
        crate::http::HttpLimits::of(&config),
        tls.http.clone(),
        telemetry.clone(),
        http_cancel,
    ));
    tracing::info!(
        http = %http_addr.map(|a| a.to_string()).unwrap_or_default(),
        ingest_tcp = %tcp_addr.map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
        demo = config.demo.enabled,
        "callwatch listening"
    );
    tokio::spawn(crate::systemd::supervise(shared.clone(), cancel.clone()));
    if let Ok(mut s) = shared.reload.lock() {
        s.last_success_ms = chrono::Utc::now().timestamp_millis();
        telemetry.config_loaded(s.last_success_ms);
    }
    let limit = config.server.shutdown_timeout;
    let mut live = Live {
        started: config.clone(),
        current: config,
        ingest,
        http,
        hub: hub.clone(),
        configured,
        configured_stop,
        cancel: cancel.clone(),
        telemetry: telemetry.clone(),
        shared: shared.clone(),
        tls,
    };
    let mut hup = control.hup.take();
    tokio::pin!(shutdown);
    loop {
        let failure = live.configured.failure.clone();
        tokio::select! {
            _ = &mut shutdown => break,
            _ = running.failure.cancelled() => break,
            _ = failure.cancelled() => break,
            _ = shared.fatal.cancelled() => break,
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                let _ = live.reload(&control).await;
            }
            Some(reply) = reload_rx.recv() => {
                let _ = reply.send(live.reload(&control).await);
            }
        }
    }
    let Live {
        configured, ingest, ..
    } = live;
    drop(ingest);
    let feed = hub;
    tracing::info!("shutting down: draining sources and in-flight batches");
    crate::systemd::stopping();
    cancel.cancel();
    let drain = async {
        // Wallboards get their close frame (and go to a replica) while
        // the sources drain.
        let (failed, other, ()) =
            tokio::join!(running.finish(), configured.finish(), feed.drained());
        let failed = failed.or(other);
        let served = server.await;
        // Every ingest handle is gone now; stop the timers and let the
        // writer finish its last group, sync and (if configured) snapshot.
        timers.cancel();
        let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        (failed, served)
    };
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
