//! Typed configuration: parsing, defaults and validation.
//!
//! Parsing (`Config::parse`) only checks shape: every struct denies unknown
//! keys so a typo is an error, not a silently ignored setting. Meaning is
//! checked separately in [`Config::validate`], which collects every problem
//! with its key path instead of stopping at the first, so `check-config`
//! can show an operator the whole list at once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::calendar::Calendar;
use crate::event::{valid_task_kind, MAX_TEXT};

pub mod goals;
pub use goals::{Category, GoalConfig, GoalsConfig, Period, Severity};

/// The configuration compiled into the binary; identical to
/// `config/callwatch.toml` (a unit test holds them equal).
pub const DEFAULT_TOML: &str = include_str!("../../config/callwatch.toml");

/// The queue label used for tasks that name no queue.
pub const NO_QUEUE: &str = "none";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{} problem(s) in the configuration:\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

/// One validation finding: the key path and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub clock: ClockConfig,
    pub ingest: IngestConfig,
    pub log: LogConfig,
    pub limits: LimitsConfig,
    pub retention: RetentionConfig,
    pub privacy: PrivacyConfig,
    pub defaults: DefaultsConfig,
    pub sales: SalesConfig,
    pub sites: BTreeMap<String, SiteConfig>,
    pub queues: Vec<QueueConfig>,
    pub teams: BTreeMap<String, TeamConfig>,
    pub tasks: TasksConfig,
    /// Deprecated: mapped onto `goals` (docs/goals.md).
    pub targets: Targets,
    pub goals: GoalsConfig,
    pub demo: DemoConfig,
    pub storage: StorageConfig,
    pub feed: FeedConfig,
    pub wallboard: WallboardConfig,
    pub quality: QualityConfig,
    /// `[[sources]]`: each table is read by the source module its
    /// `type` names (`source::KINDS`), which owns that config type.
    pub sources: Vec<toml::Table>,
    /// `[publish]`: the edge publisher's broker and buffer (read by
    /// `publish.rs`, which owns that config type).
    pub publish: Option<toml::Table>,
}

/// `"host:port"`, or `"off"` for no listener.
mod addr_or_off {
    use std::net::SocketAddr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(a) => s.serialize_str(&a.to_string()),
            None => s.serialize_str("off"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        let text = String::deserialize(d)?;
        if text == "off" {
            return Ok(None);
        }
        text.parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{text:?} is not host:port or \"off\"")))
    }
}

/// Durability: where and how the journal and snapshots are kept.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Without a data directory the daemon keeps state in memory only.
    pub data_dir: Option<std::path::PathBuf>,
    /// "always" (group commit, the default), "interval:<ms>" or "never".
    pub fsync: String,
    pub segment_bytes: u64,
    /// Take a snapshot after this many journal records...
    pub snapshot_every: u64,
    /// ...or this long after the last one, if anything changed.
    #[serde(with = "humantime_serde")]
    pub snapshot_interval: Duration,
    pub keep_snapshots: usize,
    pub deadletter_max_bytes: u64,
    /// Where the durable log is: `local` (the journal in the data
    /// directory, the default) or `stream` (the JetStream stream; only
    /// snapshots are kept here). docs/sources/nats.md.
    pub journal: JournalMode,
    /// Write a snapshot when the daemon stops (the next start replays
    /// less journal).
    pub snapshot_on_shutdown: bool,
    /// How a snapshot is taken: `fork` (a copy-on-write child process
    /// serialises and writes it; the default on Linux) or `thread` (the
    /// writer serialises, which pauses ingest for as long).
    pub snapshot_mode: SnapshotMode,
    /// `callwatch run --repair` (a flag, never a setting in the file: a
    /// repair is decided once, by a person who read what it will cost).
    #[serde(skip)]
    pub repair: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum JournalMode {
    #[default]
    Local,
    Stream,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotMode {
    Fork,
    Thread,
}

impl Default for SnapshotMode {
    fn default() -> Self {
        match cfg!(target_os = "linux") {
            true => SnapshotMode::Fork,
            false => SnapshotMode::Thread,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: None,
            fsync: "always".into(),
            segment_bytes: 64 << 20,
            snapshot_every: 1_000_000,
            snapshot_interval: Duration::from_secs(300),
            keep_snapshots: 2,
            deadletter_max_bytes: 16 << 20,
            journal: JournalMode::Local,
            snapshot_on_shutdown: false,
            snapshot_mode: SnapshotMode::default(),
            repair: false,
        }
    }
}

impl StorageConfig {
    pub fn fsync_policy(&self) -> Result<crate::journal::Fsync, String> {
        self.fsync.parse()
    }
}

/// The built-in simulator feeding the daemon (`run --demo`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    pub enabled: bool,
    pub agents: usize,
    /// Events per second of event time.
    pub rate: f64,
    pub seed: u64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            enabled: false,
            agents: 24,
            rate: 4.0,
            seed: 1,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// HTTP API, metrics and ingest.
    pub http: SocketAddr,
    /// NDJSON over TCP; `"off"` disables it (omitted, it is the default
    /// address).
    #[serde(with = "addr_or_off")]
    pub ingest_tcp: Option<SocketAddr>,
    pub max_body_bytes: usize,
    pub max_events_per_request: usize,
    pub max_line_bytes: usize,
    /// Bad lines after which a TCP client is disconnected.
    pub max_bad_lines: u32,
    pub max_tcp_clients: usize,
    /// Events the TCP source hands to the writer in one batch at most.
    pub tcp_batch: usize,
    /// A TCP client must send its first line (AUTH, or an event) within
    /// this: a connection that says nothing does not hold a slot.
    #[serde(with = "humantime_serde")]
    pub tcp_first_line_timeout: std::time::Duration,
    /// A TCP client quiet this long (nothing in flight) is disconnected.
    #[serde(with = "humantime_serde")]
    pub tcp_idle_timeout: std::time::Duration,
    /// A TCP client that does not take an answer (ACK, ERR) within this
    /// is disconnected: one that never reads cannot hold the daemon.
    #[serde(with = "humantime_serde")]
    pub tcp_write_timeout: std::time::Duration,
    /// HTTP connections open at once; more are answered 503 and closed.
    pub max_http_connections: usize,
    /// A request's headers must arrive within this (counted from the
    /// connection's first byte, or from the end of its last response):
    /// a slowloris or an idle keep-alive connection is closed.
    #[serde(with = "humantime_serde")]
    pub http_header_timeout: std::time::Duration,
    /// A request body must arrive whole within this (408 otherwise).
    #[serde(with = "humantime_serde")]
    pub http_body_timeout: std::time::Duration,
    /// On SIGTERM, how long sources, connections and the writer may take
    /// to finish what they hold before the process exits anyway.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: std::time::Duration,
    /// `[server.tls]`: TLS on the listeners (docs/config.md).
    pub tls: Option<TlsConfig>,
}

/// TLS for the HTTP/websocket listener and TCP ingest. The files are
/// re-read on every reload (SIGHUP), so a renewed certificate takes
/// effect without a restart.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: std::path::PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: std::path::PathBuf,
    /// TLS on `server.http` (HTTPS, WSS).
    #[serde(default = "yes")]
    pub http: bool,
    /// TLS on `server.ingest_tcp`.
    #[serde(default = "yes")]
    pub ingest_tcp: bool,
    /// PEM CA certificates: TCP ingest clients must present a
    /// certificate signed by one of them (mutual TLS), on top of any
    /// `auth.ingest_token`.
    pub client_ca: Option<std::path::PathBuf>,
}

fn yes() -> bool {
    true
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            http: SocketAddr::from(([127, 0, 0, 1], 9464)),
            ingest_tcp: Some(SocketAddr::from(([127, 0, 0, 1], 9465))),
            max_body_bytes: 8 << 20,
            max_events_per_request: 10_000,
            max_line_bytes: 64 << 10,
            max_bad_lines: 100,
            max_tcp_clients: 256,
            tcp_batch: 1024,
            tcp_first_line_timeout: std::time::Duration::from_secs(10),
            tcp_idle_timeout: std::time::Duration::from_secs(300),
            tcp_write_timeout: std::time::Duration::from_secs(30),
            max_http_connections: 512,
            http_header_timeout: std::time::Duration::from_secs(10),
            http_body_timeout: std::time::Duration::from_secs(60),
            shutdown_timeout: std::time::Duration::from_secs(30),
            tls: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Bearer token for POST /api/v1/events and `AUTH` on TCP.
    pub ingest_token: Option<String>,
    /// Bearer token for the read API and /metrics (supervisor role).
    pub read_token: Option<String>,
    /// Token of the `wallboard` role (API, feed, wallboard page).
    pub wallboard_token: Option<String>,
    /// Token of the `supervisor` role.
    pub supervisor_token: Option<String>,
    /// Token of the `qa` role.
    pub qa_token: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClockMode {
    /// Wall-clock time.
    #[default]
    System,
    /// Now = the latest event time applied (replays, tests).
    Event,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ClockConfig {
    pub mode: ClockMode,
}

/// How canonical JSON events are read.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Refuse a field the event's type does not take (`unknown_field`)
    /// instead of ignoring it. Off by default, so senders can add fields
    /// before callwatch knows them; on, a misspelt optional field is
    /// caught at once. Journal replay is never strict.
    pub strict: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Plain,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing-subscriber filter; `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Plain,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub max_queues: usize,
    pub max_agents: usize,
    pub max_teams: usize,
    pub max_sites: usize,
    pub max_task_kinds: usize,
    pub max_open_tasks: usize,
    pub max_live_calls: usize,
    /// Ended calls kept for late events (wrap-up, sales) besides
    /// `retention.closed_items`: beyond it the oldest go first.
    pub max_ended_calls: usize,
    /// Closed tasks kept (for late attempts and repeats), likewise.
    pub max_closed_tasks: usize,
    /// Event ids remembered for duplicate detection.
    pub dedup_capacity: usize,
    /// Events stamped longer than this before the daemon's clock are
    /// refused (`implausible_timestamp`); "0s" turns the check off (for
    /// replaying old files into a daemon on the system clock).
    #[serde(with = "humantime_serde")]
    pub event_max_age: Duration,
    /// Events stamped further than this after the daemon's clock are
    /// refused; "0s" turns the check off. Not checked under the event
    /// clock, where "now" is the latest event itself.
    #[serde(with = "humantime_serde")]
    pub event_max_lead: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_queues: 500,
            max_agents: 20_000,
            max_teams: 500,
            max_sites: 50,
            max_task_kinds: 32,
            max_open_tasks: 2_000_000,
            max_live_calls: 200_000,
            max_ended_calls: 500_000,
            max_closed_tasks: 500_000,
            dedup_capacity: 1_000_000,
            event_max_age: Duration::from_secs(7 * 24 * 3600),
            event_max_lead: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// How long an event id is remembered for duplicate detection.
    #[serde(with = "humantime_serde")]
    pub dedup_horizon: Duration,
    /// A logged-out agent (and their series) is forgotten after this.
    #[serde(with = "humantime_serde")]
    pub agent_after_logout: Duration,
    /// A queue not in the config is forgotten after this long idle.
    #[serde(with = "humantime_serde")]
    pub idle_queue: Duration,
    /// Ended calls and closed tasks are remembered this long, so that a late
    /// or repeated event about them gets a precise answer and sales can
    /// still be linked for conversion.
    #[serde(with = "humantime_serde")]
    pub closed_items: Duration,
    /// Sales are remembered this long so they can be cancelled.
    #[serde(with = "humantime_serde")]
    pub sales: Duration,
    /// The scorecards' interval sums are kept this long (a month's goals
    /// need 31 days).
    #[serde(with = "humantime_serde")]
    pub goal_intervals: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            dedup_horizon: Duration::from_secs(24 * 3600),
            agent_after_logout: Duration::from_secs(12 * 3600),
            idle_queue: Duration::from_secs(24 * 3600),
            closed_items: Duration::from_secs(36 * 3600),
            sales: Duration::from_secs(7 * 24 * 3600),
            goal_intervals: Duration::from_secs(35 * 24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// Export per-agent Prometheus series (`callwatch_agent_*`). Off by
    /// default: agent-level monitoring needs the works council's consent.
    pub per_agent_metrics: bool,
    /// How the wallboard role sees agents.
    pub wallboard_agents: AgentDisplay,
    /// Per-agent sales figures for the wallboard role.
    pub wallboard_agent_sales: bool,
    /// Scorecards per agent (`scope=agent:ID`) for the supervisor role.
    /// Off by default, like `per_agent_metrics`: a per-person scorecard is
    /// performance monitoring and needs the works council's consent.
    /// The wallboard role never sees them.
    pub agent_scorecards: bool,
    /// Team figures are shown to the wallboard role only for teams of at
    /// least this many agents (logged in).
    pub min_group_size: u64,
    /// Key for pseudonyms; without one a random key per process start.
    pub pseudonym_key: Option<String>,
    /// Pseudonyms stay the same for this many days.
    pub pseudonym_period_days: u32,
    /// The role of a read request without a token (when no read token is
    /// configured).
    pub anonymous_role: Role,
    /// The teams whose QA data the `qa` role sees (empty: every team).
    pub qa_teams: Vec<String>,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            per_agent_metrics: false,
            wallboard_agents: AgentDisplay::Pseudonyms,
            wallboard_agent_sales: false,
            agent_scorecards: false,
            min_group_size: 5,
            pseudonym_key: None,
            pseudonym_period_days: 1,
            anonymous_role: Role::Wallboard,
            qa_teams: Vec::new(),
        }
    }
}

/// A read role (what each may see is `privacy::Policy`'s to decide).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The TV on the service floor, and anyone without a supervisor token.
    Wallboard,
    /// Team leads and analysts: everything the configuration allows.
    Supervisor,
    /// QA staff and coaches: QA scores (and the scorecards and goal sheet)
    /// of `privacy.qa_teams`, no live per-person figures.
    Qa,
}

/// How agents appear to the wallboard role.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum AgentDisplay {
    Names,
    #[default]
    Pseudonyms,
    Hidden,
}

/// The websocket feed.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedConfig {
    /// Most delta messages per second per client.
    pub max_rate: u32,
    /// The hub rebuilds the board at most this often (bursts of events
    /// coalesce into one build).
    #[serde(with = "humantime_serde")]
    pub build_interval: Duration,
    pub max_clients: usize,
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    /// A client that sends nothing (not even a pong) this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A client that cannot take a message this long is closed.
    #[serde(with = "humantime_serde")]
    pub send_timeout: Duration,
    /// Most tasks in the overdue list.
    pub overdue_list: usize,
    /// Longest pause per reason before an alert; `default` for others.
    #[serde(with = "humantime_serde::option")]
    pub pause_limit: Option<Duration>,
    pub pause_limits: BTreeMap<String, HumanDuration>,
}

/// A duration written like "15m" (for maps).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct HumanDuration(#[serde(with = "humantime_serde")] pub Duration);

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            max_rate: 4,
            build_interval: Duration::from_millis(100),
            max_clients: 500,
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(5),
            overdue_list: 50,
            pause_limit: Some(Duration::from_secs(30 * 60)),
            pause_limits: BTreeMap::new(),
        }
    }
}

/// Quality management: QA evaluations and their statistics
/// (docs/quality.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityConfig {
    /// Keep the register of handled contacts and take `qa_scored` and
    /// `contact_tagged` events.
    pub enabled: bool,
    /// Handled contacts, evaluations and tags are forgotten after this.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Most records of each kind (handled contacts, evaluations, tags).
    pub max_records: usize,
    /// Confidence level of the QA score intervals.
    pub confidence: f64,
    /// A QA score whose interval is wider than this many points (upper −
    /// lower bound) is "not enough evaluations": shown, but not scored.
    pub max_interval_width: f64,
    /// The period QA scores are reported over by default.
    pub period: crate::config::goals::Period,
    /// Significance of the integrity signals' tests (one-sided binomial;
    /// two-sided funnel limits).
    pub significance: f64,
    /// A sale on a call with less talk than this is a signal.
    #[serde(with = "humantime_serde")]
    pub short_contact: Duration,
    /// Two sales to one customer within this long are a signal.
    #[serde(with = "humantime_serde")]
    pub repeat_window: Duration,
    pub sample: SampleConfig,
}

/// The QA sample drawn per agent and period (docs/quality.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SampleConfig {
    /// Seeds the draw (16+ characters); without it no sample is drawn.
    pub secret: Option<String>,
    /// `week` or `month`.
    pub period: crate::config::goals::Period,
    /// At least this many contacts per agent and period (all, if fewer).
    pub min_per_agent: u32,
    /// Or as many as estimate the agent's QA score to ± `margin` points
    /// at `quality.confidence`, for scores with standard deviation
    /// `assumed_sd`, whichever is more.
    pub margin: f64,
    pub assumed_sd: f64,
    /// Shorter contacts are not drawn (unless a signal points at them).
    #[serde(with = "humantime_serde")]
    pub min_duration: Duration,
    /// A drawn contact not evaluated this long after it was drawn is
    /// overdue.
    #[serde(with = "humantime_serde")]
    pub evaluate_within: Duration,
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig {
            secret: None,
            period: crate::config::goals::Period::Month,
            min_per_agent: 4,
            margin: 5.0,
            assumed_sd: 10.0,
            min_duration: Duration::from_secs(20),
            evaluate_within: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig {
            enabled: true,
            retention: Duration::from_secs(35 * 24 * 3600),
            max_records: 2_000_000,
            confidence: 0.95,
            max_interval_width: 20.0,
            period: crate::config::goals::Period::Month,
            significance: 0.01,
            short_contact: Duration::from_secs(30),
            repeat_window: Duration::from_secs(7 * 24 * 3600),
            sample: SampleConfig::default(),
        }
    }
}

/// The wallboard page (docs/feed.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WallboardConfig {
    /// BCP 47 tag for numbers, amounts and the clock (`de-DE`, `en-GB`).
    pub locale: String,
    /// Other daemons of an HA pair (`host:port`), which the page fails
    /// over to when the one it came from stops answering
    /// (docs/scale-out.md). The `peers=` URL parameter overrides it.
    pub peers: Vec<String>,
}

impl Default for WallboardConfig {
    fn default() -> Self {
        WallboardConfig {
            locale: "de-DE".into(),
            peers: Vec::new(),
        }
    }
}

/// A BCP 47 language tag as browsers take it: letters, digits and
/// hyphens, starting with a 2–3 letter language (`de`, `de-DE`,
/// `zh-Hant-TW`). Strict, since the page embeds it.
pub fn valid_locale(s: &str) -> bool {
    let mut parts = s.split('-');
    let lang = parts.next().unwrap_or("");
    (2..=3).contains(&lang.len())
        && lang.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DefaultsConfig {
    /// Site for queues, agents and teams that name none.
    pub site: String,
    pub timezone: Tz,
    #[serde(with = "humantime_serde")]
    pub service_level_threshold: Duration,
    pub service_level_target: f64,
    #[serde(with = "humantime_serde")]
    pub short_abandon_threshold: Duration,
    pub abandon_creates_callback: bool,
    #[serde(with = "humantime_serde")]
    pub abandon_min_wait: Duration,
    pub callback_max_attempts: u32,
    #[serde(with = "humantime_serde")]
    pub callback_min_gap: Duration,
}

impl Default for DefaultsConfig {
    fn default() -> Self {
        DefaultsConfig {
            site: "default".into(),
            timezone: Tz::UTC,
            service_level_threshold: Duration::from_secs(20),
            service_level_target: 0.8,
            short_abandon_threshold: Duration::from_secs(5),
            abandon_creates_callback: false,
            abandon_min_wait: Duration::from_secs(30),
            callback_max_attempts: 3,
            callback_min_gap: Duration::ZERO,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SalesConfig {
    /// ISO 4217 code all amounts are in; a sale in another currency is
    /// refused rather than silently added to the wrong total.
    pub currency: String,
}

impl Default for SalesConfig {
    fn default() -> Self {
        SalesConfig {
            currency: "EUR".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    pub timezone: Option<Tz>,
    /// Opening hours; without them the site counts as always open.
    pub hours: Option<HoursConfig>,
    /// An outsourcer running this site, measured on the same matrix.
    pub partner: Option<String>,
    #[serde(default)]
    pub targets: Targets,
}

/// Opening hours: intervals like "08:00-12:00" per weekday, closed dates
/// ("YYYY-MM-DD", or "MM-DD" every year), and special days with their own
/// intervals (an empty list closes the day).
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HoursConfig {
    #[serde(default)]
    pub mon: Vec<String>,
    #[serde(default)]
    pub tue: Vec<String>,
    #[serde(default)]
    pub wed: Vec<String>,
    #[serde(default)]
    pub thu: Vec<String>,
    #[serde(default)]
    pub fri: Vec<String>,
    #[serde(default)]
    pub sat: Vec<String>,
    #[serde(default)]
    pub sun: Vec<String>,
    #[serde(default)]
    pub holidays: Vec<String>,
    #[serde(default)]
    pub special: BTreeMap<String, Vec<String>>,
}

/// Which time an SLA counts.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SlaClock {
    /// Wall time.
    #[default]
    Calendar,
    /// Only time the queue's site is open.
    Business,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    pub name: String,
    pub site: Option<String>,
    pub team: Option<String>,
    pub timezone: Option<Tz>,
    #[serde(default, with = "humantime_serde")]
    pub service_level_threshold: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub short_abandon_threshold: Option<Duration>,
    /// Overrides the site's opening hours for this queue.
    pub hours: Option<HoursConfig>,
    /// Abandoned calls with a customer become callbacks owed.
    pub abandon_creates_callback: Option<bool>,
    /// Calls abandoned sooner are not owed a callback.
    #[serde(default, with = "humantime_serde")]
    pub abandon_min_wait: Option<Duration>,
    /// Unsuccessful attempts after which a callback is `unreachable`.
    pub callback_max_attempts: Option<u32>,
    /// Attempts closer together than this count as one.
    #[serde(default, with = "humantime_serde")]
    pub callback_min_gap: Option<Duration>,
    #[serde(default)]
    pub targets: Targets,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TeamConfig {
    pub site: Option<String>,
    /// An outsourcer running this team, measured on the same matrix.
    pub partner: Option<String>,
    #[serde(default)]
    pub targets: Targets,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TasksConfig {
    /// SLA of a kind with no entry below.
    #[serde(with = "humantime_serde")]
    pub default_sla: Duration,
    /// How long before its deadline a task counts as due soon.
    #[serde(with = "humantime_serde")]
    pub default_due_soon: Duration,
    pub kinds: BTreeMap<String, KindConfig>,
}

impl Default for TasksConfig {
    fn default() -> Self {
        TasksConfig {
            default_sla: Duration::from_secs(24 * 3600),
            default_due_soon: Duration::from_secs(30 * 60),
            kinds: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct KindConfig {
    #[serde(default, with = "humantime_serde")]
    pub sla: Option<Duration>,
    /// `calendar` (wall time, the default) or `business` (open time only).
    pub clock: Option<SlaClock>,
    #[serde(default, with = "humantime_serde")]
    pub due_soon: Option<Duration>,
    /// Per-queue overrides of `sla` and `due_soon`.
    #[serde(default)]
    pub queues: BTreeMap<String, KindQueueConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct KindQueueConfig {
    #[serde(default, with = "humantime_serde")]
    pub sla: Option<Duration>,
    pub clock: Option<SlaClock>,
    #[serde(default, with = "humantime_serde")]
    pub due_soon: Option<Duration>,
}

pub use crate::kpi::Better;

/// A KPI's goal and the thresholds at which it turns warn and critical
/// (the deprecated `[targets]` form; `goal.rs` maps it onto the matrix).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub target: f64,
    pub warn: f64,
    pub critical: f64,
    /// Ignored since the goal matrix: a KPI's direction is its own.
    pub direction: Option<Better>,
}

/// The deprecated `[targets]` tables: seven KPIs by their old names.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    pub service_level: Option<Target>,
    /// Seconds.
    pub oldest_wait: Option<Target>,
    pub callbacks_open: Option<Target>,
    pub callbacks_overdue: Option<Target>,
    /// Seconds.
    pub aht: Option<Target>,
    pub conversion: Option<Target>,
    pub revenue_today: Option<Target>,
}

impl Targets {
    /// (old name, KPI id, target) of every target set, in sheet order.
    pub fn entries(&self) -> Vec<(&'static str, &'static str, &Target)> {
        [
            ("service_level", "service_level", &self.service_level),
            ("oldest_wait", "oldest_wait", &self.oldest_wait),
            ("callbacks_open", "callbacks_open", &self.callbacks_open),
            (
                "callbacks_overdue",
                "callbacks_overdue",
                &self.callbacks_overdue,
            ),
            ("aht", "aht", &self.aht),
            ("conversion", "conversion", &self.conversion),
            ("revenue_today", "revenue", &self.revenue_today),
        ]
        .into_iter()
        .filter_map(|(name, kpi, t)| t.as_ref().map(|t| (name, kpi, t)))
        .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }
}

/// A goal id, objective or partner key: `[a-z0-9_]{1,64}`.
pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Config {
    /// Parses TOML; reports the key path of the first shape error.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        serde_path_to_error::deserialize(de).map_err(|e| ConfigError::Parse {
            path: format!("{origin}: {}", e.path()),
            message: e.inner().message().to_string(),
        })
    }

    /// Reads and parses a file (validation is separate).
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// The embedded default configuration.
    pub fn embedded() -> Result<Config, ConfigError> {
        Config::parse(DEFAULT_TOML, "<embedded config>")
    }

    /// Checks meaning; returns every problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut p = Vec::new();
        let mut push = |path: String, message: String| p.push(Problem { path, message });
        let s = &self.server;
        for (key, d) in [
            ("server.tcp_first_line_timeout", s.tcp_first_line_timeout),
            ("server.tcp_idle_timeout", s.tcp_idle_timeout),
            ("server.tcp_write_timeout", s.tcp_write_timeout),
            ("server.http_header_timeout", s.http_header_timeout),
            ("server.http_body_timeout", s.http_body_timeout),
            ("server.shutdown_timeout", s.shutdown_timeout),
        ] {
            if d.is_zero() {
                push(key.into(), "must be > 0".into());
            }
        }
        for (key, v) in [
            ("server.max_body_bytes", s.max_body_bytes),
            ("server.max_events_per_request", s.max_events_per_request),
            ("server.max_line_bytes", s.max_line_bytes),
            ("server.max_tcp_clients", s.max_tcp_clients),
            ("server.max_http_connections", s.max_http_connections),
            ("server.tcp_batch", s.tcp_batch),
            ("limits.max_queues", self.limits.max_queues),
            ("limits.max_agents", self.limits.max_agents),
            ("limits.max_teams", self.limits.max_teams),
            ("limits.max_sites", self.limits.max_sites),
            ("limits.max_task_kinds", self.limits.max_task_kinds),
            ("limits.max_open_tasks", self.limits.max_open_tasks),
            ("limits.max_live_calls", self.limits.max_live_calls),
            ("limits.max_ended_calls", self.limits.max_ended_calls),
            ("limits.max_closed_tasks", self.limits.max_closed_tasks),
            ("limits.dedup_capacity", self.limits.dedup_capacity),
        ] {
            if key == "limits.dedup_capacity" && v > crate::engine::dedup::MAX_CAPACITY {
                push(key.into(), "must be at most 1073741824 (2^30)".into());
            }
            if v == 0 {
                push(key.into(), "must be greater than 0".into());
            }
        }
        if s.max_line_bytes > s.max_body_bytes {
            push(
                "server.max_line_bytes".into(),
                "must not exceed server.max_body_bytes".into(),
            );
        }
        if s.max_bad_lines == 0 {
            push(
                "server.max_bad_lines".into(),
                "must be greater than 0".into(),
            );
        }
        if s.http.port() != 0 && Some(s.http) == s.ingest_tcp {
            push(
                "server.ingest_tcp".into(),
                "must differ from server.http".into(),
            );
        }
        for (key, tok) in [
            ("auth.ingest_token", &self.auth.ingest_token),
            ("auth.read_token", &self.auth.read_token),
            ("auth.wallboard_token", &self.auth.wallboard_token),
            ("auth.supervisor_token", &self.auth.supervisor_token),
            ("auth.qa_token", &self.auth.qa_token),
        ] {
            if let Some(t) = tok {
                if t.len() < 16 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    push(
                        key.into(),
                        "must be at least 16 characters without spaces".into(),
                    );
                }
            }
        }
        let c = &self.sales.currency;
        if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
            push(
                "sales.currency".into(),
                format!("{c:?} is not an ISO 4217 code like \"EUR\""),
            );
        }
        let q = &self.quality;
        if !(q.confidence > 0.5 && q.confidence < 1.0) {
            push(
                "quality.confidence".into(),
                format!("must be in (0.5, 1), got {}", q.confidence),
            );
        }
        if !(q.max_interval_width > 0.0 && q.max_interval_width <= 100.0) {
            push(
                "quality.max_interval_width".into(),
                format!("must be in (0, 100] points, got {}", q.max_interval_width),
            );
        }
        if q.retention < Duration::from_secs(24 * 3600)
            || q.retention > Duration::from_secs(800 * 24 * 3600)
        {
            push(
                "quality.retention".into(),
                "must be between 1 day and 800 days".into(),
            );
        }
        let sm = &q.sample;
        if !matches!(
            sm.period,
            crate::config::goals::Period::Week | crate::config::goals::Period::Month
        ) {
            push(
                "quality.sample.period".into(),
                "must be \"week\" or \"month\"".into(),
            );
        }
        if sm.secret.as_ref().is_some_and(|k| k.len() < 16) {
            push(
                "quality.sample.secret".into(),
                "must be at least 16 characters".into(),
            );
        }
        let points = |v: f64| v > 0.0 && v <= 50.0;
        if !(points(sm.margin) && points(sm.assumed_sd)) {
            push(
                "quality.sample".into(),
                "margin and assumed_sd must be in (0, 50] points".into(),
            );
        }
        if sm.min_per_agent > 1000 {
            push(
                "quality.sample.min_per_agent".into(),
                "must be at most 1000".into(),
            );
        }
        if !(q.significance > 0.0 && q.significance <= 0.2) {
            push(
                "quality.significance".into(),
                format!("must be in (0, 0.2], got {}", q.significance),
            );
        }
        if q.max_records == 0 {
            push("quality.max_records".into(), "must be at least 1".into());
        }
        if !valid_locale(&self.wallboard.locale) {
            push(
                "wallboard.locale".into(),
                format!(
                    "{:?} is not a language tag like \"de-DE\"",
                    self.wallboard.locale
                ),
            );
        }
        let d = &self.defaults;
        if !(d.service_level_target > 0.0 && d.service_level_target <= 1.0) {
            push(
                "defaults.service_level_target".into(),
                "must be in (0, 1]".into(),
            );
        }
        check_name(&mut push, "defaults.site", &d.site);
        if self.sites.len() > self.limits.max_sites {
            push(
                "sites".into(),
                format!("{} sites, more than limits.max_sites", self.sites.len()),
            );
        }
        if d.callback_max_attempts == 0 {
            push(
                "defaults.callback_max_attempts".into(),
                "must be at least 1".into(),
            );
        }
        for (name, site) in &self.sites {
            check_name(&mut push, &format!("sites.{name}"), name);
            if let Some(h) = &site.hours {
                let tz = site.timezone.unwrap_or(d.timezone);
                if let Err(e) = Calendar::from_config(tz, h, &format!("sites.{name}.hours")) {
                    push(e.path, e.message);
                }
            }
            check_targets(&mut push, &format!("sites.{name}.targets"), &site.targets);
        }
        check_targets(&mut push, "targets", &self.targets);
        let mut seen = std::collections::BTreeSet::new();
        if self.queues.len() > self.limits.max_queues {
            push(
                "queues".into(),
                format!("{} queues, more than limits.max_queues", self.queues.len()),
            );
        }
        for (i, q) in self.queues.iter().enumerate() {
            let at = format!("queues[{i}]");
            check_name(&mut push, &format!("{at}.name"), &q.name);
            if q.name == NO_QUEUE {
                push(
                    format!("{at}.name"),
                    format!("{NO_QUEUE:?} is reserved for tasks without a queue"),
                );
            }
            if !seen.insert(q.name.as_str()) {
                push(
                    format!("{at}.name"),
                    format!("queue {:?} is defined twice", q.name),
                );
            }
            if let Some(site) = &q.site {
                if site != &d.site && !self.sites.contains_key(site) {
                    push(
                        format!("{at}.site"),
                        format!("site {site:?} is not defined under [sites]"),
                    );
                }
            }
            if let Some(team) = &q.team {
                check_name(&mut push, &format!("{at}.team"), team);
            }
            if let Some(h) = &q.hours {
                if let Err(e) = Calendar::from_config(Tz::UTC, h, &format!("{at}.hours")) {
                    push(e.path, e.message);
                }
            }
            if q.callback_max_attempts == Some(0) {
                push(
                    format!("{at}.callback_max_attempts"),
                    "must be at least 1".into(),
                );
            }
            check_targets(&mut push, &format!("{at}.targets"), &q.targets);
        }
        for (name, team) in &self.teams {
            check_name(&mut push, &format!("teams.{name}"), name);
            if let Some(site) = &team.site {
                if site != &d.site && !self.sites.contains_key(site) {
                    push(
                        format!("teams.{name}.site"),
                        format!("site {site:?} is not defined under [sites]"),
                    );
                }
            }
            check_targets(&mut push, &format!("teams.{name}.targets"), &team.targets);
        }
        if self.tasks.kinds.len() > self.limits.max_task_kinds {
            push(
                "tasks.kinds".into(),
                format!(
                    "{} kinds configured, more than limits.max_task_kinds",
                    self.tasks.kinds.len()
                ),
            );
        }
        for (kind, k) in &self.tasks.kinds {
            if !valid_task_kind(kind) {
                push(
                    format!("tasks.kinds.{kind}"),
                    "a task kind must match [a-z0-9_]{1,32}".into(),
                );
            }
            if k.sla == Some(Duration::ZERO) {
                push(format!("tasks.kinds.{kind}.sla"), "must be > 0".into());
            }
            for (q, kq) in &k.queues {
                if kq.sla == Some(Duration::ZERO) {
                    push(
                        format!("tasks.kinds.{kind}.queues.{q}.sla"),
                        "must be > 0".into(),
                    );
                }
            }
        }
        if self.demo.agents == 0 || self.demo.agents > self.limits.max_agents {
            push(
                "demo.agents".into(),
                "must be between 1 and limits.max_agents".into(),
            );
        }
        if !(self.demo.rate > 0.0 && self.demo.rate <= 1e6) {
            push("demo.rate".into(), "must be in (0, 1000000]".into());
        }
        if self.feed.max_rate == 0 || self.feed.max_rate > 1000 {
            push("feed.max_rate".into(), "must be between 1 and 1000".into());
        }
        if self.feed.build_interval > Duration::from_secs(10) {
            push("feed.build_interval".into(), "must be at most 10s".into());
        }
        if self.feed.max_clients == 0 {
            push("feed.max_clients".into(), "must be greater than 0".into());
        }
        if self.feed.overdue_list > crate::view::OVERDUE_MAX {
            push(
                "feed.overdue_list".into(),
                format!("must be at most {}", crate::view::OVERDUE_MAX),
            );
        }
        if self.privacy.per_agent_metrics
            && self.auth.read_token.is_none()
            && self.auth.supervisor_token.is_none()
            && self.privacy.anonymous_role != Role::Supervisor
        {
            push(
                "privacy.per_agent_metrics".into(),
                "no role could read them: per-agent series are served only to the supervisor \
                 role; set auth.read_token or auth.supervisor_token (docs/privacy.md)"
                    .into(),
            );
        }
        if self
            .privacy
            .pseudonym_key
            .as_ref()
            .is_some_and(|k| k.len() < 16)
        {
            push(
                "privacy.pseudonym_key".into(),
                "must be at least 16 characters".into(),
            );
        }
        let st = &self.storage;
        if let Err(e) = st.fsync_policy() {
            push("storage.fsync".into(), e);
        }
        for (key, v) in [
            ("storage.segment_bytes", st.segment_bytes),
            ("storage.snapshot_every", st.snapshot_every),
            ("storage.keep_snapshots", st.keep_snapshots as u64),
            ("storage.deadletter_max_bytes", st.deadletter_max_bytes),
        ] {
            if v == 0 {
                push(key.into(), "must be greater than 0".into());
            }
        }
        if st.journal == JournalMode::Stream {
            // Only what comes from the stream can be replayed from it.
            if self.server.ingest_tcp.is_some() {
                push(
                    "server.ingest_tcp".into(),
                    "must be off with storage.journal = \"stream\" (events that do not come from the stream could not be recovered)".into(),
                );
            }
            if self.demo.enabled {
                push(
                    "demo.enabled".into(),
                    "the simulator cannot run with storage.journal = \"stream\"".into(),
                );
            }
            let streams = self
                .sources
                .iter()
                .filter(|t| t.get("type").and_then(|v| v.as_str()) == Some("nats_jetstream"))
                .count();
            if streams == 0 || streams != self.sources.len() {
                push(
                    "sources".into(),
                    "storage.journal = \"stream\" takes nats_jetstream sources only, at least one"
                        .into(),
                );
            }
        }
        goals::validate(self, &mut push);
        if self.tasks.default_sla.is_zero() {
            push("tasks.default_sla".into(), "must be > 0".into());
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(p))
        }
    }
}

fn check_name(push: &mut impl FnMut(String, String), path: &str, name: &str) {
    if name.is_empty() || name.len() > MAX_TEXT || name.chars().any(|c| c.is_control()) {
        push(
            path.to_string(),
            format!("{name:?} must be 1 to {MAX_TEXT} bytes without control characters"),
        );
    }
}

fn check_targets(push: &mut impl FnMut(String, String), path: &str, t: &Targets) {
    for (name, id, target) in t.entries() {
        let Some(def) = crate::kpi::get(id) else {
            continue;
        };
        goals::check_thresholds(
            push,
            &format!("{path}.{name}"),
            def,
            Some(target.target),
            Some(target.warn),
            Some(target.critical),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_tcp_off_disables_the_listener_and_omitted_keeps_the_default() {
        let off = Config::parse("[server]\ningest_tcp = \"off\"\n", "t").expect("parses");
        assert_eq!(off.server.ingest_tcp, None);
        let omitted = Config::parse("[server]\n", "t").expect("parses");
        assert!(omitted.server.ingest_tcp.is_some());
        assert!(Config::parse("[server]\ningest_tcp = \"nope\"\n", "t").is_err());
    }

    #[test]
    fn embedded_default_is_valid_and_equals_the_shipped_file() {
        let shipped = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/callwatch.toml"
        ))
        .expect("config/callwatch.toml exists");
        assert_eq!(shipped, DEFAULT_TOML);
        let cfg = Config::embedded().expect("parses");
        cfg.validate().expect("valid");
    }

    #[test]
    fn unknown_key_is_a_parse_error_with_its_path() {
        let err = Config::parse("[server]\nhttp_port = 3\n", "t.toml").expect_err("unknown");
        let text = err.to_string();
        assert!(text.contains("server"), "{text}");
        assert!(text.contains("http_port"), "{text}");
    }

    #[test]
    fn validation_reports_every_problem_with_its_path() {
        let cfg = Config::parse(
            r#"
[sales]
currency = "euro"
[[queues]]
name = "a"
site = "mars"
[[queues]]
name = "a"
[targets.service_level]
target = 0.5
warn = 0.8
critical = 0.9
[feed]
max_rate = 1001
build_interval = "11s"
[wallboard]
locale = "de_DE\"><script>"
"#,
            "t.toml",
        )
        .expect("parses");
        let Err(ConfigError::Invalid(problems)) = cfg.validate() else {
            panic!("expected problems");
        };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "sales.currency",
                "wallboard.locale",
                "targets.service_level",
                "queues[0].site",
                "queues[1].name",
                "feed.max_rate",
                "feed.build_interval"
            ]
        );
    }

    #[test]
    fn locales_are_language_tags() {
        for ok in ["de", "de-DE", "en-GB", "zh-Hant-TW", "gsw-CH"] {
            assert!(valid_locale(ok), "{ok}");
        }
        for bad in [
            "", "d", "de_DE", "de-", "-DE", "deutsch", "de-DE\"", "de DE",
        ] {
            assert!(!valid_locale(bad), "{bad}");
        }
    }
}
