//! The `callwatch` command: a thin shell over the library.

use std::io::{BufReader, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory, Parser, Subcommand};

use callwatch::config::{Config, ConfigError, LogFormat};
use callwatch::simulate::{SimOptions, Simulator};

#[derive(Parser)]
#[command(
    name = "callwatch",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("CALLWATCH_GIT_REV"), ")"),
    about = "Live monitoring for call-center desks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        /// Configuration file (default: the embedded config/callwatch.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// HTTP listen address (overrides server.http).
        #[arg(long)]
        http: Option<SocketAddr>,
        /// TCP ingest listen address (overrides server.ingest_tcp).
        #[arg(long)]
        ingest_tcp: Option<SocketAddr>,
        /// Also run the built-in simulator feeding the daemon.
        #[arg(long)]
        demo: bool,
        /// Keep a journal and snapshots here (overrides storage.data_dir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Start on a damaged data directory that recovery would refuse
        /// (a journal gap, a journal ending before its snapshot, no
        /// readable snapshot), accepting exactly the losses it names; the
        /// originals are kept in <data dir>/quarantine/repair-<ms>/.
        #[arg(long)]
        repair: bool,
    },
    /// Run an edge publisher: the sources of the config, sending to
    /// JetStream (`[publish]`) through a local buffer (docs/scale-out.md).
    Publish {
        #[arg(long)]
        config: PathBuf,
        /// HTTP listen address (overrides server.http).
        #[arg(long)]
        http: Option<SocketAddr>,
        /// TCP ingest listen address (overrides server.ingest_tcp).
        #[arg(long)]
        ingest_tcp: Option<SocketAddr>,
        /// The buffer lives here (overrides storage.data_dir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Check a data directory: formats, record ranges, damage, and what a
    /// start of this build would do with it (exit 1 on damage). Changes
    /// nothing.
    CheckData {
        /// The data directory (default: storage.data_dir of --config).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// List the dead letters (refused events) kept in a data directory.
    Deadletters {
        /// The data directory (default: storage.data_dir of --config).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the goal sheet: every goal, how it is measured, its thresholds.
    Goals {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Write the Prometheus recording rules, alerts and their promtool tests.
    Rules(GenArgs),
    /// Write the Grafana dashboards.
    Dashboards(GenArgs),
    /// Validate a configuration file; exit status 1 when invalid.
    CheckConfig { file: PathBuf },
    /// Send an NDJSON events file to a daemon, or apply it offline.
    /// Exit status 1 when any event was refused.
    Replay(ReplayArgs),
    /// Check an NDJSON events file as the daemon would take it, in order
    /// from an empty state: print each refusal as `FILE:LINE: reason: message`
    /// and exit 1 if there is any (for a sender's CI). Changes nothing.
    CheckEvents {
        file: PathBuf,
        /// Configuration the events are checked against (default: the
        /// embedded one); its `ingest.strict` applies.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Refuse fields a type does not take, whatever the config says.
        #[arg(long)]
        strict: bool,
    },
    /// Generate realistic call-center traffic.
    Simulate(SimulateArgs),
    /// Print the live feed, one JSON message per line.
    Tail {
        /// Feed URL; give it again for each daemon of an HA pair: on a
        /// lost connection the next one is used at once.
        #[arg(long, default_value = "ws://127.0.0.1:9464/ws")]
        url: Vec<String>,
        /// Scope as key=value (queue, team, site, kind; comma lists allowed).
        #[arg(long)]
        scope: Vec<String>,
        /// Read token (wallboard or supervisor role).
        #[arg(long, env = "CALLWATCH_READ_TOKEN")]
        token: Option<String>,
    },
    /// Print the shell completion script for SHELL (bash, zsh, fish,
    /// elvish, powershell) to stdout.
    Completions { shell: clap_complete::Shell },
    /// Write the man pages, callwatch(1) and one per subcommand
    /// (callwatch-run(1), ...), into DIR.
    Manpages {
        #[arg(long)]
        out: PathBuf,
    },
    /// Measure throughput and recovery against this machine's own ceiling.
    Bench {
        /// Smaller runs (under two minutes here): a smoke check for CI.
        #[arg(long)]
        quick: bool,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Run only this measurement (`scrape-stall`, `snapshot-stall`, `scorecards`, `jetstream`, `webhook`); the other keys are 0.
        #[arg(long)]
        only: Option<String>,
    },
}

#[derive(Args)]
struct GenArgs {
    /// Configuration (default: the embedded one).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory to write to (default: config/prometheus or dashboards).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write nothing; exit 1 if a file there differs from the output.
    #[arg(long)]
    check: bool,
}

/// Writes (or with `check`, compares) generated files under `dir`.
fn generate(dir: &Path, files: Vec<(String, String)>, check: bool) -> anyhow::Result<ExitCode> {
    let mut stale = Vec::new();
    for (name, text) in files {
        let path = dir.join(&name);
        if check {
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(path.display().to_string());
            }
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    if stale.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("stale generated file(s): {}", stale.join(", "));
        Ok(ExitCode::FAILURE)
    }
}

/// Exit status 1 when a sender's events were refused.
fn refusals_fail(refused: u64) -> ExitCode {
    match refused {
        0 => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

/// Loads and validates a configuration for a generator.
fn valid(path: Option<&Path>) -> anyhow::Result<Config> {
    let cfg = load(path)?;
    callwatch::source::validate(&cfg)?;
    Ok(cfg)
}

#[derive(Args)]
struct ReplayArgs {
    file: PathBuf,
    /// Base URL of a running daemon, e.g. http://127.0.0.1:9464
    #[arg(long, conflicts_with = "offline", required_unless_present = "offline")]
    to: Option<String>,
    /// Pace by event time divided by N (default: as fast as possible).
    #[arg(long, requires = "to")]
    speed: Option<f64>,
    /// Ingest bearer token.
    #[arg(long, env = "CALLWATCH_INGEST_TOKEN")]
    token: Option<String>,
    /// Apply to a fresh engine and print the final snapshot JSON.
    #[arg(long)]
    offline: bool,
    /// Configuration for --offline (default: the embedded one).
    #[arg(long)]
    config: Option<PathBuf>,
    /// With --offline: refuse fields a type does not take.
    #[arg(long, requires = "offline")]
    strict: bool,
}

#[derive(Args)]
struct SimulateArgs {
    #[arg(long, default_value_t = 24)]
    agents: usize,
    /// Events per second (of event time).
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many events to generate (default with --stdout: 10000;
    /// with --to: until interrupted).
    #[arg(long)]
    events: Option<usize>,
    /// With --stdout: the first event time (RFC 3339).
    #[arg(long, default_value = "2026-03-02T07:00:00Z")]
    start: String,
    /// Post to a running daemon in real time.
    #[arg(long, conflicts_with = "stdout", required_unless_present = "stdout")]
    to: Option<String>,
    #[arg(long, env = "CALLWATCH_INGEST_TOKEN")]
    token: Option<String>,
    /// Print NDJSON as fast as possible.
    #[arg(long)]
    stdout: bool,
}

/// Every websocket client and ingest connection is a file descriptor, and
/// many distributions still start services with a soft limit of 1,024:
/// raise the soft limit to the hard one, as Go's runtime does. Failure is
/// only logged; the configured connection limits still apply.
fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
}

/// Installs the log subscriber; returns how to change its level later
/// (a reload). `RUST_LOG`, when set, wins over the configuration.
fn init_logging(format: LogFormat, level: &str) -> callwatch::daemon::SetLogLevel {
    let from_env = std::env::var_os("RUST_LOG").is_some();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    fn setter<L, S>(
        handle: tracing_subscriber::reload::Handle<L, S>,
        from_env: bool,
    ) -> callwatch::daemon::SetLogLevel
    where
        L: From<tracing_subscriber::EnvFilter> + Send + Sync + 'static,
        S: 'static,
    {
        Box::new(move |level: &str| {
            if from_env {
                tracing::info!("log.level changed; RUST_LOG is set and stays in force");
                return Ok(());
            }
            let f = tracing_subscriber::EnvFilter::try_new(level)
                .map_err(|e| format!("log.level {level:?}: {e}"))?;
            handle.reload(f).map_err(|e| e.to_string())
        })
    }
    match format {
        LogFormat::Plain => {
            let b = builder.with_filter_reloading();
            let h = b.reload_handle();
            b.init();
            setter(h, from_env)
        }
        LogFormat::Json => {
            let b = builder.json().with_filter_reloading();
            let h = b.reload_handle();
            b.init();
            setter(h, from_env)
        }
    }
}

fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    match path {
        Some(p) => Config::load(p),
        None => Config::embedded(),
    }
}

/// Resolves on SIGINT or SIGTERM; a second one ends the process at once
/// (what was acknowledged is durable already). SIGHUP (a systemd
/// `ExecReload`) never kills the daemon: it asks `reload` to re-read the
/// configuration, or is logged and ignored where nothing reloads (the
/// edge publisher). The handlers are installed
/// at once, not when the future is first polled, so a signal during
/// start-up is handled.
fn shutdown_signal(
    reload: Option<tokio::sync::mpsc::Sender<()>>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, Signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).ok();
        let mut int = signal(SignalKind::interrupt()).ok();
        let hup = signal(SignalKind::hangup()).ok();
        async fn recv(s: &mut Option<Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        async move {
            if let Some(mut hup) = hup {
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        match &reload {
                            Some(tx) => {
                                tracing::info!("SIGHUP: reloading the configuration");
                                let _ = tx.try_send(());
                            }
                            None => tracing::warn!(
                                "SIGHUP: this process does not reload its configuration; running on"
                            ),
                        }
                    }
                });
            }
            tokio::select! { _ = recv(&mut term) => {}, _ = recv(&mut int) => {} }
            tokio::spawn(async move {
                tokio::select! { _ = recv(&mut term) => {}, _ = recv(&mut int) => {} }
                eprintln!("callwatch: second signal: exiting without finishing the drain");
                std::process::exit(1);
            });
        }
    }
    #[cfg(not(unix))]
    async move {
        let _ = reload;
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("callwatch: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    match cli.command {
        Command::Run {
            config,
            http,
            ingest_tcp,
            demo,
            data_dir,
            repair,
        } => {
            // The file as given plus the command line: read at start and
            // again at each reload.
            let overrides = move |path: Option<&Path>| -> Result<Config, ConfigError> {
                let mut cfg = load(path)?;
                cfg.storage.repair = repair;
                if let Some(a) = http {
                    cfg.server.http = a;
                }
                if let Some(a) = ingest_tcp {
                    cfg.server.ingest_tcp = Some(a);
                }
                cfg.demo.enabled |= demo;
                if cfg.demo.enabled && cfg.quality.sample.secret.is_none() {
                    // The demo draws a QA sample; a desk sets its own secret.
                    cfg.quality.sample.secret = Some("callwatch-demo-sample-secret".into());
                }
                if data_dir.is_some() {
                    cfg.storage.data_dir = data_dir.clone();
                }
                Ok(cfg)
            };
            let cfg = overrides(config.as_deref())?;
            let log_level = init_logging(cfg.log.format, &cfg.log.level);
            callwatch::source::validate(&cfg)?;
            raise_fd_limit();
            rt.block_on(async move {
                let listeners = callwatch::Listeners::bind(&cfg)
                    .await
                    .context("binding the listen addresses")?;
                let (hup_tx, hup) = tokio::sync::mpsc::channel(4);
                let control = callwatch::Control {
                    load: config.map(|p| {
                        Box::new(move || overrides(Some(&p))) as callwatch::daemon::LoadConfig
                    }),
                    hup: Some(hup),
                    log_level: Some(log_level),
                };
                callwatch::run(cfg, listeners, shutdown_signal(Some(hup_tx)), control).await?;
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::Publish {
            config,
            http,
            ingest_tcp,
            data_dir,
        } => {
            let mut cfg = load(Some(&config))?;
            if let Some(a) = http {
                cfg.server.http = a;
            }
            if let Some(a) = ingest_tcp {
                cfg.server.ingest_tcp = Some(a);
            }
            if data_dir.is_some() {
                cfg.storage.data_dir = data_dir;
            }
            let _ = init_logging(cfg.log.format, &cfg.log.level);
            raise_fd_limit();
            rt.block_on(async move {
                let listeners = callwatch::Listeners::bind(&cfg)
                    .await
                    .context("binding the listen addresses")?;
                callwatch::publish::run(cfg, listeners, shutdown_signal(None)).await?;
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::CheckData { data_dir, config } => {
            let cfg = valid(config.as_deref())?;
            let dir = data_dir
                .or(cfg.storage.data_dir.clone())
                .context("no --data-dir given and no storage.data_dir configured")?;
            let settings = callwatch::engine::settings::Settings::from_config(&cfg);
            let mut out = std::io::stdout().lock();
            let ok = callwatch::store::check(&dir, &settings, &mut out)
                .with_context(|| format!("checking {}", dir.display()))?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Deadletters { data_dir, config } => {
            let dir = match data_dir {
                Some(d) => d,
                None => load(config.as_deref())?
                    .storage
                    .data_dir
                    .context("no --data-dir given and no storage.data_dir configured")?,
            };
            let mut out = std::io::stdout().lock();
            let n = callwatch::deadletter::list(&dir, &mut out)
                .with_context(|| format!("reading dead letters in {}", dir.display()))?;
            eprintln!("{n} dead letter(s) in {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Goals { config } => {
            let cfg = valid(config.as_deref())?;
            let m = callwatch::goal::Matrix::from_config(&cfg);
            print!("{}", callwatch::sheet::text(&m, &cfg.sales.currency));
            Ok(ExitCode::SUCCESS)
        }
        Command::Rules(a) => {
            let cfg = valid(a.config.as_deref())?;
            let files = callwatch::rules::files(&cfg)
                .into_iter()
                .map(|(n, t)| (n.to_string(), t))
                .collect();
            let dir = a.out.unwrap_or_else(|| PathBuf::from("config/prometheus"));
            generate(&dir, files, a.check)
        }
        Command::Dashboards(a) => {
            let cfg = valid(a.config.as_deref())?;
            let dir = a.out.unwrap_or_else(|| PathBuf::from("dashboards"));
            generate(&dir, callwatch::dashboard::files(&cfg), a.check)
        }
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "callwatch", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Manpages { out } => {
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            clap_mangen::generate_to(Cli::command(), &out)
                .with_context(|| format!("writing man pages to {}", out.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { file } => {
            let cfg = match Config::load(&file) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            // The certificate files too: a start would refuse them.
            if let Some(tls) = &cfg.server.tls {
                if let Err(e) = callwatch::tls::load(tls, chrono::Utc::now().timestamp()) {
                    eprintln!("{}: server.tls: {e}", file.display());
                    return Ok(ExitCode::FAILURE);
                }
            }
            match callwatch::source::validate(&cfg) {
                Ok(()) => {
                    println!("{}: ok", file.display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(ConfigError::Invalid(problems)) => {
                    for p in problems {
                        eprintln!("{}: {p}", file.display());
                    }
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Replay(a) => {
            let _ = init_logging(LogFormat::Plain, "warn");
            let file = std::fs::File::open(&a.file)
                .with_context(|| format!("opening {}", a.file.display()))?;
            let input = BufReader::new(file);
            if a.offline {
                let cfg = load(a.config.as_deref())?;
                callwatch::source::validate(&cfg)?;
                let (snap, sum) = callwatch::replay::offline(&cfg, input, a.strict, |line, r| {
                    eprintln!("line {line}: {}: {}", r.reason, r.message)
                })?;
                let mut out = std::io::stdout().lock();
                serde_json::to_writer_pretty(&mut out, &snap)?;
                writeln!(out)?;
                eprintln!(
                    "{} lines: {} applied, {} duplicates, {} rejected",
                    sum.lines, sum.applied, sum.duplicates, sum.rejected
                );
                return Ok(refusals_fail(sum.rejected));
            }
            let url = a.to.context("--to URL or --offline is required")?;
            let s = rt.block_on(callwatch::replay::to_url(input, &url, a.token, a.speed))?;
            eprintln!(
                "sent {}: {} accepted, {} duplicates, {} rejected",
                s.sent, s.accepted, s.duplicates, s.rejected
            );
            Ok(refusals_fail(s.rejected))
        }
        Command::CheckEvents {
            file,
            config,
            strict,
        } => {
            let cfg = load(config.as_deref())?;
            callwatch::source::validate(&cfg)?;
            let input = BufReader::new(
                std::fs::File::open(&file)
                    .with_context(|| format!("opening {}", file.display()))?,
            );
            let mut out = std::io::stdout().lock();
            let mut failed = Ok(());
            let (_, sum) = callwatch::replay::offline(&cfg, input, strict, |line, r| {
                if failed.is_ok() {
                    failed = writeln!(
                        out,
                        "{}:{line}: {}: {}",
                        file.display(),
                        r.reason,
                        r.message
                    );
                }
            })?;
            failed?;
            eprintln!(
                "{}: {} events: {} valid, {} duplicates, {} refused",
                file.display(),
                sum.lines,
                sum.applied,
                sum.duplicates,
                sum.rejected
            );
            Ok(refusals_fail(sum.rejected))
        }
        Command::Tail { url, scope, token } => {
            let _ = init_logging(LogFormat::Plain, "warn");
            rt.block_on(tail(url, scope, token))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { quick, json, only } => {
            let _ = init_logging(LogFormat::Plain, "warn");
            raise_fd_limit();
            let r = callwatch::bench::run(callwatch::bench::BenchOptions { quick, only })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", callwatch::bench::table(&r));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Simulate(a) => {
            let _ = init_logging(LogFormat::Plain, "warn");
            let opts = SimOptions {
                agents: a.agents,
                rate: a.rate,
                seed: a.seed,
                site: None,
            };
            if a.stdout {
                let start = chrono::DateTime::parse_from_rfc3339(&a.start)
                    .with_context(|| format!("--start {:?} is not RFC 3339", a.start))?;
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                let n = a.events.unwrap_or(10_000);
                for ev in Simulator::new(opts, start.timestamp_millis()).take(n) {
                    writeln!(out, "{}", callwatch::event::encode(&ev))?;
                }
                out.flush()?;
                return Ok(ExitCode::SUCCESS);
            }
            let url = a.to.context("--to URL or --stdout is required")?;
            rt.block_on(simulate_live(opts, &url, a.token, a.events))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Generates events in real time and posts them every 100 ms.
async fn simulate_live(
    opts: SimOptions,
    url: &str,
    token: Option<String>,
    limit: Option<usize>,
) -> anyhow::Result<()> {
    let mut left = limit.unwrap_or(usize::MAX);
    let start = chrono::Utc::now().timestamp_millis();
    let origin = tokio::time::Instant::now();
    let mut sim = Simulator::new(opts, start);
    let mut sender = callwatch::replay::Sender::new(url, token);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown_signal(None) => return Ok(()),
        }
        let now = start + origin.elapsed().as_millis() as i64;
        let (mut body, mut n) = (String::new(), 0);
        while sim.peek_ms() <= now && n < 10_000 && left > 0 {
            if let Some(ev) = sim.next() {
                callwatch::replay::push_ndjson(&mut body, &ev);
                n += 1;
                left -= 1;
            }
        }
        if n > 0 {
            sender.send(body, n as u64).await?;
        }
        if left == 0 {
            eprintln!(
                "sent {}: {} accepted, {} duplicates, {} rejected",
                sender.sent, sender.accepted, sender.duplicates, sender.rejected
            );
            return Ok(());
        }
    }
}

/// Connects to the feed and prints every message until it closes. With
/// several URLs (an HA pair) a lost connection moves on to the next one
/// at once, and it keeps going until interrupted.
async fn tail(urls: Vec<String>, scope: Vec<String>, token: Option<String>) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut parsed = Vec::new();
    for u in &urls {
        let mut url = reqwest::Url::parse(u).with_context(|| format!("{u:?} is not a URL"))?;
        for s in &scope {
            let (k, v) = s
                .split_once('=')
                .with_context(|| format!("--scope {s:?} is not key=value"))?;
            url.query_pairs_mut().append_pair(k, v);
        }
        if let Some(t) = &token {
            url.query_pairs_mut().append_pair("token", t);
        }
        parsed.push(url);
    }
    let failover = parsed.len() > 1;
    let mut out = std::io::stdout().lock();
    let mut failed_in_a_row = 0;
    for url in parsed.iter().cycle() {
        let mut ws = match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok((ws, _)) => ws,
            Err(e) if failover => {
                eprintln!("{url}: {e}; trying the next daemon");
                failed_in_a_row += 1;
                if failed_in_a_row >= parsed.len() {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    failed_in_a_row = 0;
                }
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("connecting to {url}")),
        };
        failed_in_a_row = 0;
        if failover {
            eprintln!("following {url}");
        }
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Text(t)) => {
                    writeln!(out, "{t}")?;
                    out.flush()?;
                }
                Ok(Message::Close(frame)) => {
                    if let Some(f) = frame {
                        eprintln!("closed: {} {}", u16::from(f.code), f.reason);
                    }
                    break;
                }
                Ok(_) => {}
                Err(e) if failover => {
                    eprintln!("{url}: {e}");
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !failover {
            return Ok(());
        }
    }
    Ok(())
}
