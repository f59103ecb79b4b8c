//! The wallboard in a real headless Chromium (Debian's `chromium`, driven
//! through `chromedriver` with fantoccini): it loads from the running
//! daemon, follows injected events, turns a tile red when a callback goes
//! overdue, and reconnects after the daemon restarts. A screenshot goes to
//! `target/wallboard.png` for people to look at.

mod common;

use std::process::{Command, Stdio};

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};

async fn browser() -> (Reaper, Client, tempfile::TempDir) {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is installed (apt-get install chromium chromium-driver)");
    let driver = Reaper(child);
    let profile = tempfile::tempdir().expect("profile dir");
    let caps: serde_json::Map<String, serde_json::Value> = serde_json::from_value(serde_json::json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1920,1080",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }
    }))
    .expect("caps");
    let url = format!("http://127.0.0.1:{port}");
    let client = wait_for(30, "chromedriver to start a session", || {
        let caps = caps.clone();
        let url = url.clone();
        async move {
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps)
                .connect(&url)
                .await
                .ok()
        }
    })
    .await;
    (driver, client, profile)
}

async fn text(c: &Client, css: &str) -> Option<String> {
    c.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

async fn attr(c: &Client, css: &str, name: &str) -> Option<String> {
    c.find(Locator::Css(css))
        .await
        .ok()?
        .attr(name)
        .await
        .ok()?
}

#[tokio::test]
async fn the_wallboard_follows_events_and_reconnects() {
    // Real clock: the overdue flip must happen by itself.
    let cfg = config("[targets.callbacks_overdue]\ntarget = 0\nwarn = 0\ncritical = 0\n")
        .replace("mode = \"event\"", "mode = \"system\"");
    let d = Daemon::start(&cfg);
    let port = d.http.port();
    let (_driver, c, _profile) = browser().await;
    c.goto(&format!("http://127.0.0.1:{port}/wallboard?team=sales"))
        .await
        .expect("page loads");
    wait_for(30, "the first snapshot to render", || async {
        (text(&c, "#tile-waiting .value").await.as_deref() == Some("0")).then_some(())
    })
    .await;

    let now = chrono::Utc::now();
    let at = |s: i64| (now + chrono::Duration::seconds(s)).to_rfc3339();
    let line = |id: &str, s: i64, ty: &str, f: &str| {
        format!(r#"{{"id":"{id}","ts":"{}","type":"{ty}",{f}}}"#, at(s))
    };
    let mut events = Vec::new();
    for a in 0..5 {
        events.push(line(
            &format!("l{a}"),
            -60,
            "agent_login",
            &format!(r#""agent":"a{a}","name":"Agent Number {a}","team":"sales""#),
        ));
    }
    events.push(line(
        "c1",
        -30,
        "call_offered",
        r#""call":"c1","queue":"orders""#,
    ));
    events.push(line(
        "c2",
        -20,
        "call_offered",
        r#""call":"c2","queue":"orders""#,
    ));
    events.push(line(
        "c3",
        -5,
        "call_answered",
        r#""call":"c1","agent":"a0""#,
    ));
    assert_eq!(post(&d, events.join("\n")).await.0, 200);
    wait_for(20, "tiles and the agent grid to update", || async {
        let waiting = text(&c, "#tile-waiting .value").await?;
        let agents = c.find_all(Locator::Css("#agents .agent")).await.ok()?.len();
        let on_call = c
            .find_all(Locator::Css("#agents .agent[data-state='on_call']"))
            .await
            .ok()?
            .len();
        (waiting == "1" && agents == 5 && on_call == 1).then_some(())
    })
    .await;

    // A callback due in 3 s: nothing else happens, yet the tile turns red
    // and the task appears in the overdue list.
    let task = line(
        "k1",
        0,
        "task_created",
        &format!(
            r#""task":"k1","kind":"callback","queue":"orders","due":"{}""#,
            at(3)
        ),
    );
    assert_eq!(post(&d, task).await.0, 200);
    let cls = attr(&c, "#tile-callbacks", "class")
        .await
        .unwrap_or_default();
    assert!(
        !cls.contains("status-critical"),
        "not red before the deadline: {cls}"
    );
    wait_for(
        30,
        "the callbacks tile to turn red and list the task",
        || async {
            let cls = attr(&c, "#tile-callbacks", "class").await?;
            let listed = c
                .find(Locator::Css("#overdue li[data-task='k1']"))
                .await
                .is_ok();
            (cls.contains("status-critical") && listed).then_some(())
        },
    )
    .await;
    // Its age counts up in the page without any message.
    let age = |s: String| s.trim_start_matches('+').to_string();
    let first = age(text(&c, "#overdue li[data-task='k1'] .age")
        .await
        .unwrap_or_default());
    let later = wait_for(10, "the overdue age to count up", || {
        let first = first.clone();
        let c = &c;
        async move {
            let now = age(text(c, "#overdue li[data-task='k1'] .age").await?);
            (now != first).then_some(now)
        }
    })
    .await;
    assert_ne!(first, later);

    let png = c.screenshot().await.expect("screenshot");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&out).expect("target dir");
    std::fs::write(out.join("wallboard.png"), png).expect("write screenshot");

    // Restart the daemon on the same port: the page shows the loss and
    // reconnects by itself.
    assert!(d.terminate().success());
    wait_for(20, "the connection-lost banner", || async {
        attr(&c, "#conn", "hidden").await.is_none().then_some(())
    })
    .await;
    let cfg2 = cfg.replace(
        "http = \"127.0.0.1:0\"",
        &format!("http = \"127.0.0.1:{port}\""),
    );
    let d2 = Daemon::start(&cfg2);
    wait_for(40, "the page to reconnect", || async {
        let hidden = attr(&c, "#conn", "hidden").await.is_some();
        let waiting = text(&c, "#tile-waiting .value").await?;
        (hidden && waiting == "0").then_some(())
    })
    .await;
    post(
        &d2,
        line("c9", 10, "call_offered", r#""call":"c9","queue":"orders""#),
    )
    .await;
    wait_for(20, "events after the reconnect to show", || async {
        (text(&c, "#tile-waiting .value").await.as_deref() == Some("1")).then_some(())
    })
    .await;

    // The default view (no team, two queues) shows the desk's handling
    // time and conversion, not a blank tile.
    let mut wrap = Vec::new();
    for (i, (ty, s)) in [
        ("call_offered", 11),
        ("call_answered", 12),
        ("call_ended", 72),
        ("wrap_ended", 102),
    ]
    .into_iter()
    .enumerate()
    {
        let f = if ty == "call_offered" {
            r#""call":"w1","queue":"orders""#
        } else if ty == "call_answered" {
            r#""call":"w1","agent":"a1""#
        } else {
            r#""call":"w1""#
        };
        wrap.push(line(&format!("w{i}"), s, ty, f));
    }
    wrap.push(line(
        "a1",
        0,
        "agent_login",
        r#""agent":"a1","team":"sales","queues":["orders"]"#,
    ));
    wrap.rotate_right(1);
    let (status, reply) = post(&d2, wrap.join("\n")).await;
    assert_eq!(status, 200, "{reply}");
    c.goto(&format!("http://127.0.0.1:{port}/"))
        .await
        .expect("page loads");
    wait_for(
        30,
        "the desk's handling time on the default view",
        || async {
            let aht = text(&c, "#tile-aht .value").await?;
            let conv = text(&c, "#tile-sales .value").await?;
            (aht != "–" && conv != "–").then_some((aht, conv))
        },
    )
    .await;
    let _ = c.close().await;
}
