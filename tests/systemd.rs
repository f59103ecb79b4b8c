//! The systemd contract of packaging/callwatch.service (`Type=notify`,
//! `WatchdogSec=`): the daemon says `READY=1` only once recovery is done
//! and it serves, pings the watchdog while the writer lives, and says
//! `STOPPING=1` when it drains. A Unix datagram socket stands in for the
//! service manager's `NOTIFY_SOCKET`.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::*;

/// The next notification, within `secs`.
fn next(sock: &UnixDatagram, secs: u64) -> String {
    sock.set_read_timeout(Some(Duration::from_secs(secs)))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("a notification in time");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn ready_after_recovery_watchdog_while_alive_stopping_at_the_drain() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).expect("bind");
    let data = tmp.path().join("data");
    // A journal to recover first.
    {
        let d = Daemon::start_args(&config(""), &["--data-dir", data.to_str().expect("utf-8")]);
        let day = scripted_day();
        assert_eq!(post(&d, day.join("\n")).await.0, 200);
        assert!(d.terminate().success());
    }
    let d = Daemon::start_env(
        &config(""),
        &["--data-dir", data.to_str().expect("utf-8")],
        &[
            ("NOTIFY_SOCKET", path.to_str().expect("utf-8")),
            // 0.4 s: a ping every 0.2 s.
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let ready = next(&sock, 30);
    assert!(ready.contains("READY=1\n"), "{ready}");
    assert!(ready.contains("STATUS=ready: "), "{ready}");
    // Ready means ready: recovery is done when the manager hears it.
    let r = client().get(d.url("/readyz")).send().await.expect("readyz");
    assert_eq!(r.status().as_u16(), 200);
    let snap = get_json(&d, "/api/v1/snapshot").await;
    assert_eq!(
        snap["events"]["applied"].as_u64(),
        Some(scripted_day().len() as u64)
    );
    // Pings keep coming while the writer ticks (each second here, the
    // writer's tick: at most one ping per tick).
    let start = Instant::now();
    for _ in 0..3 {
        assert_eq!(next(&sock, 10), "WATCHDOG=1\n");
    }
    assert!(start.elapsed() >= Duration::from_millis(400));
    d.signal("TERM");
    let mut seen = Vec::new();
    loop {
        let m = next(&sock, 10);
        seen.push(m.clone());
        if m.contains("STOPPING=1") {
            break;
        }
        assert_eq!(m, "WATCHDOG=1\n", "{seen:?}");
    }
    assert!(d.wait_exit(30).success());
}

/// The shipped unit keeps the contract docs/install.md describes, and
/// every file the package lists from the source tree exists (the built
/// ones under target/ are checked by .ci/package).
#[test]
fn the_unit_and_the_package_list_match_the_docs() {
    let root = env!("CARGO_MANIFEST_DIR");
    let unit =
        std::fs::read_to_string(format!("{root}/packaging/callwatch.service")).expect("unit");
    let doc = std::fs::read_to_string(format!("{root}/docs/install.md")).expect("doc");
    let value = |key: &str| -> String {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("the unit has no {key}="))
            .to_string()
    };
    assert_eq!(value("Type"), "notify");
    assert!(value("ExecReload").contains("-HUP $MAINPID"));
    assert!(value("ExecStart")
        .starts_with("/usr/bin/callwatch run --config /etc/callwatch/callwatch.toml"));
    for key in ["WatchdogSec", "TimeoutStartSec", "TimeoutStopSec"] {
        let v = value(key);
        assert!(
            doc.contains(&format!("{key}={v}")),
            "docs/install.md does not say {key}={v}"
        );
    }
    assert_eq!(value("User"), "callwatch");
    assert_eq!(value("StateDirectory"), "callwatch");
    for key in [
        "ProtectSystem",
        "ProtectHome",
        "PrivateTmp",
        "NoNewPrivileges",
        "RestrictAddressFamilies",
        "SystemCallFilter",
    ] {
        value(key);
        assert!(doc.contains(key), "docs/install.md does not name {key}");
    }
    assert_eq!(value("CapabilityBoundingSet"), "");
    let cargo: toml::Table = std::fs::read_to_string(format!("{root}/Cargo.toml"))
        .expect("Cargo.toml")
        .parse()
        .expect("toml");
    let assets = cargo["package"]["metadata"]["deb"]["assets"]
        .as_array()
        .expect("assets");
    let mut listed = 0;
    for a in assets {
        let src = a[0].as_str().expect("source");
        if src.starts_with("target/") {
            continue;
        }
        listed += 1;
        match src.strip_suffix("*.json").or(src.strip_suffix("*.md")) {
            Some(dir) => assert!(
                std::fs::read_dir(format!("{root}/{dir}"))
                    .expect(src)
                    .next()
                    .is_some(),
                "{src}"
            ),
            None => assert!(
                std::path::Path::new(&format!("{root}/{src}")).is_file(),
                "{src} is missing"
            ),
        }
    }
    assert!(listed >= 10);
}
