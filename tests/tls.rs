//! TLS on the listeners (issue 20 point 3), with certificates made at
//! test time: HTTPS, WSS and TLS TCP ingest work; a plain client on a TLS
//! listener is cut cleanly and counted; an expired certificate stops the
//! start naming the file; a renewed certificate is served after SIGHUP;
//! with `client_ca`, TCP ingest wants a client certificate from that CA.

mod common;

use std::sync::Arc;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedKey, IsCa, KeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_rustls::rustls;

fn self_signed() -> CertifiedKey {
    rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).expect("cert")
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: tempfile::tempdir().expect("tmp"),
        }
    }
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.to_str().expect("utf-8").to_string()
    }
    fn server(&self, c: &CertifiedKey, extra: &str) -> String {
        let cert = self.write("cert.pem", &c.cert.pem());
        let key = self.write("key.pem", &c.key_pair.serialize_pem());
        config(&format!(
            "[server.tls]\ncert = \"{cert}\"\nkey = \"{key}\"\n{extra}"
        ))
    }
}

#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(trust: &CertifiedKey, me: Option<&CertifiedKey>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trust.cert.der().clone()).expect("root");
    let b = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    Arc::new(match me {
        None => b.with_no_client_auth(),
        Some(leaf) => b
            .with_client_auth_cert(
                vec![leaf.cert.der().clone()],
                PrivateKeyDer::from_pem_slice(leaf.key_pair.serialize_pem().as_bytes())
                    .expect("key"),
            )
            .expect("client auth"),
    })
}

fn https(trust: &CertifiedKey) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(
            reqwest::Certificate::from_pem(trust.cert.pem().as_bytes()).expect("pem"),
        )
        .build()
        .expect("client")
}

async fn wait_https(c: &reqwest::Client, d: &Daemon) {
    let url = format!("https://{}/readyz", d.http);
    wait_for(30, "the daemon to be ready over HTTPS", || async {
        let r = c.get(&url).send().await.ok()?;
        (r.status().as_u16() == 200).then_some(())
    })
    .await;
}

/// Connects to TLS TCP ingest; returns the stream and the server's leaf.
async fn tls_tcp(
    d: &Daemon,
    cfg: Arc<rustls::ClientConfig>,
) -> std::io::Result<(
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    Vec<u8>,
)> {
    let tcp = tokio::net::TcpStream::connect(d.tcp.expect("tcp")).await?;
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let s = tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await?;
    let leaf = s.get_ref().1.peer_certificates().expect("peer")[0].to_vec();
    Ok((s, leaf))
}

async fn send_line(
    s: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    line: &str,
) -> String {
    s.write_all(format!("{line}\n").as_bytes())
        .await
        .expect("write");
    let mut r = BufReader::new(s);
    let mut answer = String::new();
    r.read_line(&mut answer).await.expect("read");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_wss_and_tls_ingest_work_and_plain_clients_are_cut() {
    let c = self_signed();
    let files = Files::new();
    let d = Daemon::start_unready(&files.server(&c, ""), &[]);
    let client = https(&c);
    wait_https(&client, &d).await;

    // HTTPS ingest and reads.
    let ev1 = ev(
        "t1",
        "08:00:00",
        "call_offered",
        r#""call":"c1","queue":"orders""#,
    );
    let r = client
        .post(format!("https://{}/api/v1/events", d.http))
        .body(ev1)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 200);

    // TLS TCP ingest.
    let (mut s, _) = tls_tcp(&d, client_config(&c, None)).await.expect("tls tcp");
    let ev2 = ev(
        "t2",
        "08:00:05",
        "call_answered",
        r#""call":"c1","agent":"a1""#,
    );
    assert_eq!(send_line(&mut s, &ev2).await, "ACK 1\n");

    // WSS: the feed's snapshot holds both events (an answered offer).
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        format!("wss://127.0.0.1:{}/ws", d.http.port()),
        None,
        false,
        Some(tokio_tungstenite::Connector::Rustls(client_config(
            &c, None,
        ))),
    )
    .await
    .expect("wss");
    let snap = ws_until(&mut ws, |m| m["type"] == "snapshot").await;
    assert_eq!(
        snap["board"]["queues"]["orders"]["answered_today"], 1,
        "{snap}"
    );

    // Plain HTTP on the TLS port: cut at once, not hung, and counted.
    let plain = common::client()
        .get(format!("http://{}/readyz", d.http))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
    // Plain TCP on the TLS ingest port: closed without an answer.
    let mut raw = tokio::net::TcpStream::connect(d.tcp.expect("tcp"))
        .await
        .expect("connect");
    raw.write_all(b"{\"id\":\"p1\"}\n").await.expect("write");
    let mut rest = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut raw, &mut rest).await;
    assert!(!String::from_utf8_lossy(&rest).contains("ACK"), "{rest:?}");

    let text = client
        .get(format!("https://{}/metrics", d.http))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let m = parse_metrics(&text);
    assert!(
        metric(
            &m,
            r#"callwatch_http_disconnects_total{reason="tls_handshake"}"#
        ) >= 1.0
    );
    assert!(
        metric(
            &m,
            r#"callwatch_tcp_disconnects_total{reason="tls_handshake"}"#
        ) >= 1.0
    );
}

#[test]
fn an_expired_certificate_stops_the_start_naming_the_file() {
    let mut params = CertificateParams::new(vec!["127.0.0.1".into()]).expect("params");
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("cert");
    let files = Files::new();
    let cfg = files.server(
        &CertifiedKey {
            cert,
            key_pair: key,
        },
        "",
    );
    let path = files.write("callwatch.toml", &cfg);
    let out = std::process::Command::new(BIN)
        .args(["run", "--config", &path])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("cert.pem: the certificate expired on"),
        "{err}"
    );
    // check-config (the unit's ExecStartPre) says so before a start.
    let out = std::process::Command::new(BIN)
        .args(["check-config", &path])
        .output()
        .expect("check-config");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("server.tls:") && err.contains("expired"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_after_sighup() {
    let (old, new) = (self_signed(), self_signed());
    let files = Files::new();
    let cfg = files.server(&old, "");
    let d = Daemon::start_unready(&cfg, &[]);
    wait_https(&https(&old), &d).await;
    let (_, leaf) = tls_tcp(&d, client_config(&old, None)).await.expect("tls");
    assert_eq!(leaf, old.cert.der().to_vec());
    // Renewal: same paths, new files.
    files.write("cert.pem", &new.cert.pem());
    files.write("key.pem", &new.key_pair.serialize_pem());
    d.signal("HUP");
    d.log_until("configuration reloaded", 20);
    let (mut s, leaf) = tls_tcp(&d, client_config(&new, None)).await.expect("tls");
    assert_eq!(leaf, new.cert.der().to_vec());
    let ev1 = ev(
        "r1",
        "08:00:00",
        "call_offered",
        r#""call":"c1","queue":"orders""#,
    );
    assert_eq!(send_line(&mut s, &ev1).await, "ACK 1\n");
    // A broken renewal changes nothing and says why.
    files.write("key.pem", "not a key");
    d.signal("HUP");
    d.log_until("configuration reload refused", 20);
    let (_, leaf) = tls_tcp(&d, client_config(&new, None)).await.expect("tls");
    assert_eq!(leaf, new.cert.der().to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_client_ca_tcp_ingest_wants_a_client_certificate() {
    let server = self_signed();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca");
    let leaf_key = KeyPair::generate().expect("key");
    let leaf_cert = CertificateParams::new(vec!["sender.example".into()])
        .expect("params")
        .signed_by(&leaf_key, &ca_cert, &ca_key)
        .expect("leaf");
    let leaf = CertifiedKey {
        cert: leaf_cert,
        key_pair: leaf_key,
    };
    let files = Files::new();
    let ca_path = files.write("ca.pem", &ca_cert.pem());
    let d = Daemon::start_unready(
        &files.server(&server, &format!("client_ca = \"{ca_path}\"\n")),
        &[],
    );
    wait_https(&https(&server), &d).await;
    // Without a client certificate the handshake (or the first read) fails.
    let anonymous = async {
        let (mut s, _) = tls_tcp(&d, client_config(&server, None)).await?;
        s.write_all(b"{}\n").await?;
        let mut buf = [0u8; 64];
        let n = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await?;
        Ok::<usize, std::io::Error>(n)
    }
    .await;
    assert!(matches!(anonymous, Err(_) | Ok(0)), "{anonymous:?}");
    // With one from the CA, events flow.
    let (mut s, _) = tls_tcp(&d, client_config(&server, Some(&leaf)))
        .await
        .expect("mutual tls");
    let ev1 = ev(
        "m1",
        "08:00:00",
        "call_offered",
        r#""call":"c1","queue":"orders""#,
    );
    assert_eq!(send_line(&mut s, &ev1).await, "ACK 1\n");
    // HTTPS keeps working without client certificates.
    let r = https(&server)
        .get(format!("https://{}/readyz", d.http))
        .send()
        .await
        .expect("https");
    assert_eq!(r.status().as_u16(), 200);
}

/// A scripted Asterisk Manager Interface behind TLS with `pbx`'s
/// certificate: it greets, accepts the login, answers the resync with an
/// empty queue list and sends one answered and completed call. Reports
/// each connection's handshake outcome on the returned channel.
async fn tls_pbx(
    pbx: &CertifiedKey,
) -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<Result<(), String>>,
) {
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![pbx.cert.der().clone()],
            PrivateKeyDer::from_pem_slice(pbx.key_pair.serialize_pem().as_bytes()).expect("key"),
        )
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let s = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    continue;
                }
            };
            let _ = tx.send(Ok(()));
            let (r, mut w) = tokio::io::split(s);
            let mut r = BufReader::new(r);
            let _ = w.write_all(b"Asterisk Call Manager/5.0.1\r\n").await;
            let mut line = String::new();
            // The login action, then the resync's two.
            let mut blank = 0;
            while blank < 1 {
                line.clear();
                if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                    break;
                }
                blank += usize::from(line.trim().is_empty());
            }
            let _ = w
                .write_all(b"Response: Success\r\nActionID: callwatch-login\r\nMessage: Authentication accepted\r\n\r\n")
                .await;
            let _ = w
                .write_all(concat!(
                    "Response: Success\r\nActionID: callwatch-resync\r\nMessage: Queue status will follow\r\n\r\n",
                    "Event: QueueStatusComplete\r\nActionID: callwatch-resync\r\nEventList: Complete\r\nListItems: 0\r\n\r\n",
                    "Event: QueueCallerJoin\r\nChannel: SIP/trunk-0001\r\nUniqueid: 1700000000.11\r\nQueue: general_queue\r\nPosition: 1\r\nCount: 1\r\n\r\n",
                    "Event: AgentConnect\r\nQueue: general_queue\r\nUniqueid: 1700000000.11\r\nMemberName: Agent/402\r\nHoldTime: 9\r\nRingTime: 3\r\n\r\n",
                    "Event: AgentComplete\r\nQueue: general_queue\r\nUniqueid: 1700000000.11\r\nMemberName: Agent/402\r\nHoldTime: 9\r\nTalkTime: 95\r\nReason: caller\r\n\r\n",
                ).as_bytes())
                .await;
            // Hold the session open until the client goes.
            while r.read_line(&mut line).await.unwrap_or(0) > 0 {
                line.clear();
            }
        }
    });
    (addr, rx)
}

fn ami_source(addr: std::net::SocketAddr, extra: &str) -> String {
    config(&format!(
        "[[sources]]\ntype = \"asterisk_ami\"\nname = \"pbx\"\naddress = \"{addr}\"\nusername = \"callwatch\"\nsecret = \"s3cret\"\n{extra}"
    ))
    .replace("mode = \"event\"", "mode = \"system\"")
}

/// The AMI source over TLS to a PBX with a private CA (`tls_ca`): the
/// call comes through. With a CA that did not sign the PBX's certificate
/// the handshake fails, nothing is taken from that peer, and the failed
/// sessions are counted; `check-config` names a CA file that is missing.
#[tokio::test]
async fn the_ami_source_speaks_tls_to_a_pbx_with_a_private_ca() {
    let files = Files::new();
    let pbx = self_signed();
    let (addr, mut handshakes) = tls_pbx(&pbx).await;
    let ca = files.write("pbx-ca.pem", &pbx.cert.pem());
    let d = Daemon::start(&ami_source(
        addr,
        &format!("tls = true\ntls_ca = \"{ca}\"\n"),
    ));
    let q = r#"{queue="general_queue"}"#;
    let m = wait_for(30, "the call over TLS", || async {
        let m = parse_metrics(&metrics_text(&d).await);
        (m.get(&format!("callwatch_call_talk_seconds_count{q}")) == Some(&1.0)).then_some(m)
    })
    .await;
    assert_eq!(
        metric(&m, &format!("callwatch_calls_answered_total{q}")),
        1.0
    );
    assert_eq!(handshakes.recv().await, Some(Ok(())));
    drop(d);

    // Another CA: the PBX is not trusted.
    let (addr, mut handshakes) = tls_pbx(&pbx).await;
    let other = self_signed();
    let wrong = files.write("other-ca.pem", &other.cert.pem());
    let d = Daemon::start(&ami_source(
        addr,
        &format!("tls = true\ntls_ca = \"{wrong}\"\n"),
    ));
    let refused = handshakes.recv().await.expect("a connection");
    assert!(refused.is_err(), "{refused:?}");
    let m = wait_for(30, "the failed session to be counted", || async {
        let m = parse_metrics(&metrics_text(&d).await);
        let lost = r#"callwatch_source_skipped_total{source="asterisk_ami",reason="disconnected"}"#;
        (m.get(lost).copied().unwrap_or(0.0) >= 1.0).then_some(m)
    })
    .await;
    assert_eq!(
        m.get(&format!("callwatch_calls_offered_total{q}"))
            .copied()
            .unwrap_or(0.0),
        0.0
    );
    d.log_until("TLS handshake", 10);

    // A CA file that is not there stops check-config, naming the key.
    let cfg = files.write(
        "missing-ca.toml",
        &ami_source(addr, "tls = true\ntls_ca = \"/nonexistent/ca.pem\"\n"),
    );
    let out = std::process::Command::new(BIN)
        .args(["check-config", &cfg])
        .output()
        .expect("check-config");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("tls_ca") && text.contains("/nonexistent/ca.pem"),
        "{text}"
    );
}
