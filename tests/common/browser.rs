//! A real headless Chromium through chromedriver (fantoccini), for the
//! wallboard tests.
#![allow(dead_code)]

use std::process::{Command, Stdio};

use fantoccini::{Client, ClientBuilder};

use super::{free_port, wait_for, Reaper};

pub async fn browser() -> (Reaper, Client, tempfile::TempDir) {
    browser_sized(1920, 1080).await
}

pub async fn browser_sized(w: u32, h: u32) -> (Reaper, Client, tempfile::TempDir) {
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
                "--disable-dev-shm-usage", format!("--window-size={w},{h}"), "--hide-scrollbars",
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
