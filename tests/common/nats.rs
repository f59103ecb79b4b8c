//! Real `nats-server` processes for the JetStream tests: single nodes and
//! three-node clusters on free loopback ports, each with its own store.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub struct Node {
    child: Option<Child>,
    pub port: u16,
    pub monitor: u16,
    pub cluster_port: u16,
    pub store: PathBuf,
    args: Vec<String>,
}

impl Node {
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("nats-server")
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server (apt-get install nats-server)");
        self.child = Some(child);
    }

    /// SIGKILL: the broker dies as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same ports and store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Waits until the node answers `/healthz` (JetStream ready).
    pub fn wait_healthy(&self, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let url = format!("http://127.0.0.1:{}/healthz", self.monitor);
        loop {
            let ok = reqwest::blocking_get(&url);
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server on {} not healthy",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

mod reqwest {
    /// A plain HTTP GET answering 200, without a runtime.
    pub fn blocking_get(url: &str) -> bool {
        use std::io::{Read, Write};
        let Some(rest) = url.strip_prefix("http://") else {
            return false;
        };
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let Ok(mut s) = std::net::TcpStream::connect(host) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
        if s.write_all(format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
            .is_err()
        {
            return false;
        }
        let mut buf = String::new();
        let _ = s.read_to_string(&mut buf);
        buf.starts_with("HTTP/1.1 200") || buf.starts_with("HTTP/1.0 200")
    }
}

fn node(dir: &std::path::Path, name: &str, cluster: Option<(&str, u16, &[u16])>) -> Node {
    node_with(dir, name, cluster, &[])
}

fn node_with(
    dir: &std::path::Path,
    name: &str,
    cluster: Option<(&str, u16, &[u16])>,
    extra: &[&str],
) -> Node {
    let (port, monitor) = (free_port(), free_port());
    let store = dir.join(name);
    let mut args: Vec<String> = vec![
        "-js".into(),
        "-a".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
        "-m".into(),
        monitor.to_string(),
        "-sd".into(),
        store.display().to_string(),
        "-n".into(),
        name.into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let mut cluster_port = 0;
    if let Some((cname, cport, routes)) = cluster {
        cluster_port = cport;
        args.push("--cluster_name".into());
        args.push(cname.into());
        args.push("--cluster".into());
        args.push(format!("nats://127.0.0.1:{cport}"));
        let r: Vec<String> = routes
            .iter()
            .filter(|p| **p != cport)
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect();
        args.push("--routes".into());
        args.push(r.join(","));
    }
    let mut n = Node {
        child: None,
        port,
        monitor,
        cluster_port,
        store,
        args,
    };
    n.spawn();
    n
}

/// One JetStream node.
pub fn single(dir: &std::path::Path) -> Node {
    let n = node(dir, "n1", None);
    n.wait_healthy(20);
    n
}

/// One JetStream node with extra command-line options (auth...).
pub fn single_with(dir: &std::path::Path, extra: &[&str]) -> Node {
    let n = node_with(dir, "n1", None, extra);
    n.wait_healthy(20);
    n
}

/// A three-node JetStream cluster.
pub fn cluster(dir: &std::path::Path) -> Vec<Node> {
    let ports = [free_port(), free_port(), free_port()];
    let nodes: Vec<Node> = (0..3)
        .map(|i| node(dir, &format!("c{i}"), Some(("cw", ports[i], &ports))))
        .collect();
    for n in &nodes {
        n.wait_healthy(30);
    }
    nodes
}

/// A node that is not running yet (its ports reserved): `restart` starts it.
pub fn stopped(dir: &std::path::Path) -> Node {
    let mut n = node(dir, "n1", None);
    n.kill();
    n
}

/// Connects a test client.
pub async fn client(urls: &[String]) -> async_nats::Client {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(1))
            .connect(urls)
            .await
        {
            Ok(c) => return c,
            Err(e) => {
                assert!(Instant::now() < deadline, "cannot connect to NATS: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Creates the stream `name` on `subjects` with `replicas` copies.
pub async fn stream(
    js: &async_nats::jetstream::Context,
    name: &str,
    subjects: &[&str],
    replicas: usize,
) -> async_nats::jetstream::stream::Stream {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match js
            .get_or_create_stream(async_nats::jetstream::stream::Config {
                name: name.into(),
                subjects: subjects.iter().map(|s| s.to_string()).collect(),
                num_replicas: replicas,
                ..Default::default()
            })
            .await
        {
            Ok(s) => return s,
            Err(e) => {
                // A fresh cluster elects its meta leader first.
                assert!(Instant::now() < deadline, "cannot create the stream: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Publishes one canonical event with its id as `Nats-Msg-Id`; waits for
/// the broker's ack. `Err` if it did not come (the caller retries).
pub async fn publish(
    js: &async_nats::jetstream::Context,
    subject: &str,
    id: &str,
    payload: String,
) -> Result<async_nats::jetstream::publish::PublishAck, String> {
    let mut h = async_nats::HeaderMap::new();
    h.insert("Nats-Msg-Id", id);
    let ack = js
        .publish_with_headers(subject.to_string(), h, payload.into())
        .await
        .map_err(|e| e.to_string())?;
    tokio::time::timeout(Duration::from_secs(5), ack)
        .await
        .map_err(|_| "no ack".to_string())?
        .map_err(|e| e.to_string())
}

/// Every payload on the stream, in stream order.
pub async fn read_all(js: &async_nats::jetstream::Context, stream: &str) -> Vec<String> {
    use futures_util::StreamExt;
    let s = js.get_stream(stream).await.expect("stream");
    let total = s.cached_info().state.messages as usize;
    let c = s
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .expect("ordered consumer");
    let mut msgs = c.messages().await.expect("messages");
    let mut out = Vec::with_capacity(total);
    while out.len() < total {
        let m = tokio::time::timeout(Duration::from_secs(10), msgs.next())
            .await
            .expect("stream read in time")
            .expect("message")
            .expect("ok message");
        out.push(String::from_utf8_lossy(&m.payload).into_owned());
    }
    out
}
