//! Sources: everything that feeds events in.
//!
//! Every source has one shape (docs/design.md, "Adding a source"): a
//! module that owns its config type, implements [`Source`], and is one
//! entry of [`KINDS`]. It gets a [`Context`] with the writer handle, the
//! shutdown signal, its durable checkpoint, the shared backoff and the
//! counters every source reports alike. HTTP ingest is served by the API
//! router (it shares the HTTP listener) and TCP and the simulator are
//! configured under `[server]` and `[demo]`; they run on the same context.

pub mod amazon_connect;
pub mod asterisk;
pub mod backoff;
pub mod batch;
pub mod checkpoint;
pub mod context;
pub mod freeswitch;
pub mod hook;
pub mod line;
pub mod nats;
pub mod pbx;
pub mod simulator;
pub mod tcp;
pub mod twilio;

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, ConfigError, Problem};
pub use context::{Context, Stopped};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{source_name}: {message}")]
    Failed {
        source_name: String,
        message: String,
    },
}

/// A long-running producer of events.
pub trait Source: Send {
    /// Runs until `cx.shutdown` is cancelled (or the input ends).
    fn run(self: Box<Self>, cx: Context) -> BoxFuture<'static, Result<(), SourceError>>;
}

/// What a source module's `build` gets besides its own table.
pub struct Setup<'a> {
    /// Position in `[[sources]]` (default names).
    pub index: usize,
    pub config: &'a Config,
}

impl Setup<'_> {
    /// Where checkpoints live (with a data directory).
    pub fn state_dir(&self) -> Option<PathBuf> {
        self.config
            .storage
            .data_dir
            .as_ref()
            .map(|d| d.join("sources"))
    }
}

/// A configured source, ready to run.
pub struct Built {
    pub kind: &'static str,
    pub name: String,
    /// The checkpoint file, under `<data dir>/sources/`.
    pub checkpoint_file: String,
    pub source: Box<dyn Source>,
}

/// A key path and what is wrong there, relative to the source's table.
pub type Problems = Vec<(String, String)>;

/// One kind of `[[sources]]` entry.
pub struct Kind {
    /// Its `type`, and the `source` label of its counters.
    pub name: &'static str,
    /// Reads and checks the table, and builds the source.
    pub build: fn(&toml::Table, &Setup) -> Result<Built, Problems>,
}

/// Every configurable source type. A new source is one module and one
/// line here.
pub const KINDS: &[Kind] = &[
    amazon_connect::KIND,
    asterisk::queue_log::KIND,
    asterisk::ami::KIND,
    freeswitch::KIND,
    nats::KIND,
    twilio::KIND,
];

/// A source's table as its own config type, with key paths in errors
/// (`type` is the registry's, not the module's).
pub fn parse<T: DeserializeOwned>(table: &toml::Table) -> Result<T, Problems> {
    let mut t = table.clone();
    t.remove("type");
    let de = toml::Value::Table(t);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        vec![(
            if path == "." { String::new() } else { path },
            e.into_inner().to_string(),
        )]
    })
}

/// The default instance name: `<type>-<index>`.
pub fn default_name(name: Option<String>, kind: &str, index: usize) -> String {
    name.unwrap_or_else(|| format!("{kind}-{index}"))
}

/// Builds every `[[sources]]` entry, or says what is wrong with each.
pub fn build_all(config: &Config) -> Result<Vec<Built>, Vec<Problem>> {
    let mut built = Vec::new();
    let mut problems = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, table) in config.sources.iter().enumerate() {
        let at = |key: &str| {
            if key.is_empty() {
                format!("sources[{i}]")
            } else {
                format!("sources[{i}].{key}")
            }
        };
        let Some(ty) = table.get("type").and_then(|v| v.as_str()) else {
            problems.push(Problem {
                path: at("type"),
                message: format!(
                    "missing; one of {}",
                    KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
                ),
            });
            continue;
        };
        let Some(kind) = KINDS.iter().find(|k| k.name == ty) else {
            problems.push(Problem {
                path: at("type"),
                message: format!(
                    "unknown source type {ty:?}; one of {}",
                    KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
                ),
            });
            continue;
        };
        match (kind.build)(table, &Setup { index: i, config }) {
            Ok(b) => {
                if !names.insert(b.name.clone()) {
                    problems.push(Problem {
                        path: at("name"),
                        message: format!(
                            "{:?} is used by another source (names key checkpoints)",
                            b.name
                        ),
                    });
                }
                built.push(b);
            }
            Err(ps) => problems.extend(ps.into_iter().map(|(k, m)| Problem {
                path: at(&k),
                message: m,
            })),
        }
    }
    if problems.is_empty() {
        Ok(built)
    } else {
        Err(problems)
    }
}

/// The sources of a process (daemon or edge publisher), running.
///
/// A source that stops with an error (an unreadable checkpoint, a stream
/// that no longer holds what the state needs) stops the process: running
/// on without it would show a desk that is not there.
pub struct Running {
    pub tasks: TaskTracker,
    /// Cancelled when a source failed.
    pub failure: CancellationToken,
    failed: Arc<parking_lot::Mutex<Option<String>>>,
}

impl Running {
    /// Starts each source with its context: checkpoints under `state_dir`
    /// (`<data dir>/sources`), stopped by `shutdown`.
    pub fn start(
        sources: Vec<Built>,
        ingest: &crate::writer::Ingest,
        shutdown: &CancellationToken,
        telemetry: &Arc<crate::metric::Telemetry>,
        state_dir: Option<PathBuf>,
    ) -> Running {
        let r = Running {
            tasks: TaskTracker::new(),
            failure: CancellationToken::new(),
            failed: Arc::default(),
        };
        for b in sources {
            let checkpoint = if b.checkpoint_file.is_empty() {
                checkpoint::Checkpoint::memory()
            } else {
                checkpoint::Checkpoint::new(state_dir.clone(), &b.checkpoint_file)
            };
            let name = b.name.clone();
            let cx = Context::new(
                b.kind,
                b.name,
                ingest.clone(),
                shutdown.clone(),
                telemetry.clone(),
                checkpoint,
            );
            let fut = b.source.run(cx);
            let (failure, failed) = (r.failure.clone(), r.failed.clone());
            r.tasks.spawn(async move {
                if let Err(e) = fut.await {
                    tracing::error!(source = %name, error = %e, "source failed; stopping");
                    failed.lock().get_or_insert_with(|| e.to_string());
                    failure.cancel();
                }
            });
        }
        r
    }

    /// No sources (a placeholder while a set is replaced).
    pub fn idle() -> Running {
        Running {
            tasks: TaskTracker::new(),
            failure: CancellationToken::new(),
            failed: Arc::default(),
        }
    }

    /// Waits for every source to finish (after `shutdown`); the first
    /// failure, if one stopped the process.
    pub async fn finish(self) -> Option<String> {
        self.tasks.close();
        self.tasks.wait().await;
        self.failed.lock().take()
    }
}

/// The whole configuration's check: its own rules and every source's.
pub fn validate(config: &Config) -> Result<(), ConfigError> {
    let mut problems = match config.validate() {
        Ok(()) => Vec::new(),
        Err(ConfigError::Invalid(p)) => p,
        Err(e) => return Err(e),
    };
    if let Err(p) = build_all(config) {
        problems.extend(p);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid(problems))
    }
}
