//! callwatch: live monitoring for call-center and inside-sales desks.
//!
//! Events come in through sources (`source/`, and HTTP in `api`), are
//! decoded (`event`), and handed to the single writer (`writer`) that owns
//! the state (`engine`). Readers (`api`, `metric`) look at consistent
//! views (`snapshot`) under a read lock. `run` wires it together.

pub mod api;
pub mod bench;
pub mod buckets;
pub mod calendar;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod dashboard;
pub mod deadletter;
pub mod engine;
pub mod event;
pub mod feed;
#[cfg(target_os = "linux")]
pub mod fork;
pub mod goal;
pub mod http;
pub mod journal;
pub mod kpi;
pub mod metric;
pub mod money;
pub mod openapi;
pub mod privacy;
pub mod publish;
pub mod quality;
pub mod reject;
pub mod reload;
pub mod replay;
pub mod rules;
pub mod schema;
pub mod scorecard;
pub mod sheet;
pub mod simulate;
pub mod snapshot;
pub mod source;
pub mod stats;
pub mod store;
pub mod systemd;
pub mod tls;
pub mod view;
pub mod wallboard;
pub mod writer;

pub use daemon::{engine_for, run, Control, Listeners, RunError};
