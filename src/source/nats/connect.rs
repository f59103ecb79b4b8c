//! Connecting to NATS: servers, credentials and TLS, shared by the
//! `nats_jetstream` source and the edge publisher (`callwatch publish`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::metric::Telemetry;

/// How to reach the broker. Credentials: at most one of user/password,
/// token or a creds file (NATS decentralised auth).
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// `nats://host:port` (or `tls://`); the client fails over between them.
    pub servers: Vec<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    pub creds_file: Option<PathBuf>,
    /// Require TLS even if the server does not ask for it.
    #[serde(default)]
    pub tls: bool,
    /// A CA bundle to verify the server with (besides the system roots).
    pub tls_ca: Option<PathBuf>,
    /// A client certificate (PEM) and its key, for a broker that verifies
    /// its clients (`tls { verify: true }`).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Connection {
    /// The configuration's mistakes, by key.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if self.servers.is_empty() {
            p.push(("servers".into(), "at least one server URL".into()));
        }
        for (i, s) in self.servers.iter().enumerate() {
            if s.parse::<async_nats::ServerAddr>().is_err() {
                p.push((format!("servers[{i}]"), format!("{s:?} is not a NATS URL")));
            }
        }
        let ways = [
            self.user.is_some() || self.password.is_some(),
            self.token.is_some(),
            self.creds_file.is_some(),
        ];
        if ways.iter().filter(|w| **w).count() > 1 {
            p.push((
                "user".into(),
                "give one of user/password, token or creds_file".into(),
            ));
        }
        if self.user.is_some() != self.password.is_some() {
            p.push(("password".into(), "user and password go together".into()));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            p.push(("tls_key".into(), "tls_cert and tls_key go together".into()));
        }
        // Checked here: the client retries a connection for ever, so a
        // file it cannot read would only show as a broker never reached.
        for (key, path) in [("tls_ca", &self.tls_ca), ("tls_cert", &self.tls_cert)] {
            if let Some(path) = path {
                if let Err(e) = crate::tls::read_certs(path) {
                    p.push((key.into(), e.to_string()));
                }
            }
        }
        if let Some(path) = &self.tls_key {
            if let Err(e) = crate::tls::read_key(path) {
                p.push(("tls_key".into(), e.to_string()));
            }
        }
        p
    }

    /// Connects, retrying in the background until the broker answers
    /// (the client reconnects by itself after that). Each reconnect is
    /// counted for `source`; the receiver changes whenever the connection
    /// is lost, so a consumer can start over from its own position.
    pub async fn connect(
        &self,
        client_name: &str,
        telemetry: Arc<Telemetry>,
        source: &'static str,
    ) -> Result<(async_nats::Client, tokio::sync::watch::Receiver<u64>), String> {
        let addrs: Vec<async_nats::ServerAddr> =
            self.servers.iter().filter_map(|s| s.parse().ok()).collect();
        // A first attempt in the foreground: its error names the cause (a
        // TLS handshake, a certificate, credentials), which the client's
        // own retries report only as a kind ("TLS error").
        if let Err(e) = self
            .options()
            .await?
            .connection_timeout(Duration::from_secs(2))
            .connect(addrs.as_slice())
            .await
        {
            tracing::warn!(source = %client_name, error = %e, "cannot connect to NATS yet; retrying");
        }
        let mut opts = self.options().await?;
        let seen = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let last_error = Arc::new(std::sync::Mutex::new(String::new()));
        let (lost_tx, lost) = tokio::sync::watch::channel(0u64);
        let lost_tx = Arc::new(lost_tx);
        let name = client_name.to_string();
        opts = opts
            .name(client_name)
            .connection_timeout(Duration::from_secs(2))
            .retry_on_initial_connect()
            .max_reconnects(None)
            // Quick first retries, then every 2 s at most: a broker back
            // after a restart is used within seconds.
            .reconnect_delay_callback(|n| {
                Duration::from_millis((100u64 << n.min(5) as u64).min(2000))
            })
            .event_callback(move |ev| {
                let (seen, telemetry, name, lost_tx, last_error) = (
                    seen.clone(),
                    telemetry.clone(),
                    name.clone(),
                    lost_tx.clone(),
                    last_error.clone(),
                );
                async move {
                    match ev {
                        async_nats::Event::ClientError(e) => {
                            // A failed attempt, every retry: logged when
                            // the reason changes, not at every attempt.
                            let e = e.to_string();
                            let mut last = last_error.lock().unwrap_or_else(|p| p.into_inner());
                            if *last != e {
                                tracing::warn!(source = %name, error = %e, "NATS connection attempt failed; retrying");
                                *last = e;
                            }
                        }
                        async_nats::Event::Connected => {
                            last_error.lock().unwrap_or_else(|p| p.into_inner()).clear();
                            if seen.swap(true, std::sync::atomic::Ordering::AcqRel) {
                                telemetry.reconnected(source);
                                tracing::info!(source = %name, "NATS connection back");
                            }
                        }
                        async_nats::Event::Disconnected => {
                            lost_tx.send_modify(|n| *n += 1);
                            tracing::warn!(source = %name, "NATS connection lost; reconnecting");
                        }
                        other => tracing::debug!(source = %name, event = %other, "NATS event"),
                    }
                }
            });
        let client = opts
            .connect(addrs.as_slice())
            .await
            .map_err(|e| e.to_string())?;
        Ok((client, lost))
    }

    /// The credentials and TLS of this connection.
    async fn options(&self) -> Result<async_nats::ConnectOptions, String> {
        let mut opts = match (&self.user, &self.password, &self.token, &self.creds_file) {
            (Some(u), Some(p), _, _) => {
                async_nats::ConnectOptions::with_user_and_password(u.clone(), p.clone())
            }
            (_, _, Some(t), _) => async_nats::ConnectOptions::with_token(t.clone()),
            (_, _, _, Some(f)) => async_nats::ConnectOptions::with_credentials_file(f)
                .await
                .map_err(|e| format!("creds_file {}: {e}", f.display()))?,
            _ => async_nats::ConnectOptions::new(),
        };
        if self.tls {
            opts = opts.require_tls(true);
        }
        if let Some(ca) = &self.tls_ca {
            opts = opts.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            opts = opts.add_client_certificate(cert.clone(), key.clone());
        }
        Ok(opts)
    }
}
