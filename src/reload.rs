//! Configuration reload (SIGHUP, `POST /api/v1/admin/reload`): the
//! request, what it did, and what the last one said. The daemon's loop
//! (daemon.rs) does the work: it re-reads the file, validates it whole,
//! and only then hands each part its new settings; a configuration that
//! fails validation changes nothing.

use serde::Serialize;

use crate::config::Config;

/// A reload asked for over HTTP: the answer goes back on the channel.
pub type Request = tokio::sync::oneshot::Sender<Result<Done, String>>;

/// What a successful reload applied.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Done {
    /// The parts that took the new settings.
    pub applied: Vec<&'static str>,
    /// Settings that differ from the running ones but take effect only
    /// at a restart (listen addresses, the data directory, ...).
    pub restart_needed: Vec<&'static str>,
}

/// The outcome of the last reload, for `/readyz`.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct Status {
    pub reloads: u64,
    /// When the configuration last loaded (or reloaded) successfully.
    pub last_success_ms: i64,
    /// Why the last reload was refused (cleared by a successful one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Settings a running daemon cannot change, each with whether `new`
/// differs from `running` there.
pub fn restart_needed(running: &Config, new: &Config) -> Vec<&'static str> {
    let (a, b) = (running, new);
    let mut out = Vec::new();
    let mut differs = |key: &'static str, same: bool| {
        if !same {
            out.push(key);
        }
    };
    differs("server.http", a.server.http == b.server.http);
    differs(
        "server.ingest_tcp",
        a.server.ingest_tcp == b.server.ingest_tcp,
    );
    differs(
        "server (limits of the TCP and HTTP listeners)",
        toml_eq(&a.server, &b.server),
    );
    differs("storage", toml_eq(&a.storage, &b.storage));
    differs("clock", toml_eq(&a.clock, &b.clock));
    differs("feed.max_clients", a.feed.max_clients == b.feed.max_clients);
    differs("demo", toml_eq(&a.demo, &b.demo));
    differs("log.format", toml_eq(&a.log.format, &b.log.format));
    out.dedup();
    out
}

fn toml_eq<T: Serialize>(a: &T, b: &T) -> bool {
    match (serde_json::to_value(a), serde_json::to_value(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_only_settings_are_named() {
        let a = Config::embedded().expect("cfg");
        let mut b = a.clone();
        assert!(restart_needed(&a, &b).is_empty());
        b.server.http = "127.0.0.1:1".parse().expect("addr");
        b.storage.keep_snapshots += 1;
        b.log.level = "debug".into();
        let named = restart_needed(&a, &b);
        assert!(named.contains(&"server.http"), "{named:?}");
        assert!(named.contains(&"storage"), "{named:?}");
        assert!(
            !named.iter().any(|n| n.starts_with("log.level")),
            "reloadable"
        );
    }
}
