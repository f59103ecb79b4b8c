//! TLS on the listeners (`[server.tls]`): the certificate and key files,
//! checked at load (an expired or not yet valid certificate, a key that
//! does not match, is an error naming the file), and held so that a
//! reload swaps in renewed files while connections keep the one they
//! started with. Also the client side, for sources that connect to a
//! peer over TLS (the AMI source).

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, server::WebPkiClientVerifier, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::TlsConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

fn file_err(path: &Path, message: impl Into<String>) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// The acceptors of one load of `[server.tls]`: for HTTP (ALPN
/// `http/1.1`) and for TCP ingest (client certificates when `client_ca`).
pub struct Acceptors {
    pub http: Option<TlsAcceptor>,
    pub tcp: Option<TlsAcceptor>,
}

/// The PEM certificates of a file (at least one).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    certs(path)
}

/// The PEM private key of a file.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_err(path, e.to_string()))
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(path, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(path, e.to_string()))?;
    if certs.is_empty() {
        return Err(file_err(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// Refuses a leaf certificate outside its validity at `now_s` (Unix
/// seconds): a daemon that starts with it would fail every handshake.
fn check_validity(path: &Path, leaf: &CertificateDer<'_>, now_s: i64) -> Result<(), TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| file_err(path, format!("not an X.509 certificate: {e}")))?;
    let v = cert.validity();
    if now_s > v.not_after.timestamp() {
        return Err(file_err(
            path,
            format!("the certificate expired on {}", v.not_after),
        ));
    }
    if now_s < v.not_before.timestamp() {
        return Err(file_err(
            path,
            format!("the certificate is not valid before {}", v.not_before),
        ));
    }
    Ok(())
}

/// ring, already in the tree for the JetStream client; rustls now
/// prefers aws-lc-rs (post-quantum key exchange), whose C build this
/// project does not take on yet (docs/design.md).
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client for a peer that speaks TLS: it verifies the peer against the
/// system's roots and `ca` (the peer's own CA, for a PBX with a private
/// one). No roots at all is an error, not a client that trusts nothing.
pub fn connector(ca: Option<&Path>) -> Result<TlsConnector, TlsError> {
    let mut roots = RootCertStore::empty();
    // Unreadable system roots are no error where `ca` is given.
    if let Ok(native) = rustls_native_certs::load_native_certs() {
        roots.add_parsable_certificates(native);
    }
    if let Some(path) = ca {
        for c in certs(path)? {
            roots
                .add(c)
                .map_err(|e| file_err(path, format!("not a CA certificate: {e}")))?;
        }
    }
    if roots.is_empty() {
        return Err(TlsError::Rustls(rustls::Error::General(
            "no CA certificate to verify the peer with: the system has none; give a CA file".into(),
        )));
    }
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(cfg)))
}

/// The name a peer at `address` (`host:port`) must show in its
/// certificate: `name` if given, else the host.
pub fn server_name(
    address: &str,
    name: Option<&str>,
) -> Result<rustls_pki_types::ServerName<'static>, String> {
    let host = match name {
        Some(n) => n,
        None => address
            .rsplit_once(':')
            .map_or(address, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']'),
    };
    rustls_pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host:?} is not a DNS name or IP address: {e}"))
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    clients: Option<Arc<RootCertStore>>,
    alpn: &[&[u8]],
) -> Result<ServerConfig, TlsError> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)?;
    let builder = match clients {
        Some(roots) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?,
        ),
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_single_cert(chain, key)?;
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(cfg)
}

/// Reads and checks the files of `cfg` at `now_s`.
pub fn load(cfg: &TlsConfig, now_s: i64) -> Result<Acceptors, TlsError> {
    let chain = certs(&cfg.cert)?;
    check_validity(&cfg.cert, &chain[0], now_s)?;
    let key = read_key(&cfg.key)?;
    let clients = match &cfg.client_ca {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for c in certs(path)? {
                roots
                    .add(c)
                    .map_err(|e| file_err(path, format!("not a CA certificate: {e}")))?;
            }
            Some(Arc::new(roots))
        }
        None => None,
    };
    let http = match cfg.http {
        true => Some(TlsAcceptor::from(Arc::new(
            server_config(chain.clone(), key.clone_key(), None, &[b"http/1.1"]).map_err(
                |e| match e {
                    TlsError::Rustls(r) => file_err(
                        &cfg.key,
                        format!("{r} (does the key match the certificate?)"),
                    ),
                    other => other,
                },
            )?,
        ))),
        false => None,
    };
    let tcp = match cfg.ingest_tcp {
        true => Some(TlsAcceptor::from(Arc::new(server_config(
            chain,
            key,
            clients,
            &[],
        )?))),
        false => None,
    };
    Ok(Acceptors { http, tcp })
}

/// The current acceptor of one listener; a reload stores a new one.
#[derive(Clone)]
pub struct Current(Arc<ArcSwap<TlsAcceptor>>);

impl std::fmt::Debug for Current {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tls::Current")
    }
}

impl Current {
    pub fn new(a: TlsAcceptor) -> Current {
        Current(Arc::new(ArcSwap::from_pointee(a)))
    }

    pub fn get(&self) -> Arc<TlsAcceptor> {
        self.0.load_full()
    }

    pub fn store(&self, a: TlsAcceptor) {
        self.0.store(Arc::new(a));
    }
}

/// The TLS of both listeners, reloadable.
#[derive(Clone, Default)]
pub struct Listeners {
    pub http: Option<Current>,
    pub tcp: Option<Current>,
}

impl Listeners {
    pub fn start(cfg: Option<&TlsConfig>, now_s: i64) -> Result<Listeners, TlsError> {
        let Some(cfg) = cfg else {
            return Ok(Listeners::default());
        };
        let a = load(cfg, now_s)?;
        Ok(Listeners {
            http: a.http.map(Current::new),
            tcp: a.tcp.map(Current::new),
        })
    }

    /// Re-reads the files (same paths; other paths need a restart). On
    /// an error nothing changes.
    pub fn reload(&self, cfg: Option<&TlsConfig>, now_s: i64) -> Result<bool, TlsError> {
        let Some(cfg) = cfg else {
            return Ok(false);
        };
        let a = load(cfg, now_s)?;
        if let (Some(cur), Some(new)) = (&self.http, a.http) {
            cur.store(new);
        }
        if let (Some(cur), Some(new)) = (&self.tcp, a.tcp) {
            cur.store(new);
        }
        Ok(self.http.is_some() || self.tcp.is_some())
    }
}
