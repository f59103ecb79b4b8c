//! Configuration reload (issue 18 point 3): SIGHUP and `POST
//! /api/v1/admin/reload` re-read the file; a goal threshold, a holiday and
//! a source change while events stream in, without losing or refusing
//! anything; an invalid file changes nothing and says why.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;

/// The test config plus opening hours, a business-clock task kind and
/// `extra`; `target` is the service-level target.
fn cfg(target: f64, holidays: &str, extra: &str) -> String {
    config(&format!(
        r#"
[sites.hq.hours]
mon = ["08:00-18:00"]
tue = ["08:00-18:00"]
wed = ["08:00-18:00"]
thu = ["08:00-18:00"]
fri = ["08:00-18:00"]
holidays = [{holidays}]
[tasks.kinds.complaint]
sla = "4h"
due_soon = "30m"
clock = "business"
{extra}
"#
    ))
    .replace("target = 0.8", &format!("target = {target}"))
}

fn due_of(backlog: &serde_json::Value, task: &str) -> String {
    backlog["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["task"] == task)
        .and_then(|t| t["due"].as_str())
        .unwrap_or_else(|| panic!("{task} not in {backlog}"))
        .to_string()
}

fn sl_target(goals: &serde_json::Value) -> f64 {
    let g = goals["goals"]
        .as_array()
        .expect("goals")
        .iter()
        .find(|g| g["kpi"] == "service_level")
        .unwrap_or_else(|| panic!("{goals}"));
    g["target"].as_f64().unwrap_or_else(|| panic!("{g}"))
}

async fn reloads(d: &Daemon, n: u64) -> serde_json::Value {
    wait_for(20, "the reload to be done", || async {
        let r = readyz(d).await;
        (r["config"]["reloads"].as_u64() == Some(n)).then_some(r["config"].clone())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_goals_holidays_and_sources_without_touching_the_state() {
    let d = Daemon::start(&cfg(0.8, "", ""));
    let path = d.dir.path().join("callwatch.toml");
    assert_eq!(sl_target(&get_json(&d, "/api/v1/goals").await), 0.8);
    // Tuesday 17:00 in Berlin: one business hour today, three tomorrow.
    let task = |id: &str| {
        format!(
            r#"{{"id":"{id}","ts":"2026-03-03T16:00:00Z","type":"task_created","task":"{id}","kind":"complaint","queue":"orders"}}"#
        )
    };
    assert_eq!(post(&d, task("before")).await.1["accepted"], 1);
    // Events stream in while the configuration changes.
    let sent = Arc::new(AtomicUsize::new(0));
    let url = d.url("/api/v1/events");
    let streamer = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let c = reqwest::Client::new();
            for b in 0..60 {
                let body: Vec<String> = (0..50)
                    .map(|i| {
                        let n = b * 50 + i;
                        format!(
                            r#"{{"id":"s{n}","ts":"2026-03-03T15:00:00Z","type":"agent_login","agent":"a{n}","team":"sales"}}"#
                        )
                    })
                    .collect();
                let r = c
                    .post(&url)
                    .body(body.join("\n"))
                    .send()
                    .await
                    .expect("post");
                assert_eq!(r.status().as_u16(), 200);
                let v: serde_json::Value =
                    serde_json::from_str(&r.text().await.expect("body")).expect("json");
                assert_eq!(v["accepted"], 50, "nothing refused: {v}");
                sent.fetch_add(50, Ordering::Release);
            }
        })
    };
    wait_for(20, "the stream to be under way", || async {
        (sent.load(Ordering::Acquire) >= 500).then_some(())
    })
    .await;
    // A queue_log source is added; a holiday and a new target too.
    let qlog = d.dir.path().join("queue_log");
    std::fs::write(&qlog, "1772553600|q-1|service|NONE|ENTERQUEUE||4930123|1\n")
        .expect("queue_log");
    let source = format!(
        "[[sources]]\ntype = \"asterisk_queue_log\"\nname = \"pbx\"\npath = \"{}\"\nfrom_start = true\npoll_interval = \"50ms\"\n",
        qlog.display()
    );
    std::fs::write(&path, cfg(0.85, r#""2026-03-04""#, &source)).expect("config");
    d.signal("HUP");
    let status = reloads(&d, 1).await;
    assert!(status.get("last_error").is_none(), "{status}");
    streamer.await.expect("the stream ran through");
    // The new values apply.
    assert_eq!(sl_target(&get_json(&d, "/api/v1/goals").await), 0.85);
    let m = parse_metrics(&metrics_text(&d).await);
    assert_eq!(
        metric(&m, r#"callwatch_config_reload_total{result="success"}"#),
        1.0
    );
    assert_eq!(post(&d, task("after")).await.1["accepted"], 1);
    let backlog = get_json(&d, "/api/v1/backlog").await;
    assert_eq!(due_of(&backlog, "before"), "2026-03-04T10:00:00.000Z");
    assert_eq!(
        due_of(&backlog, "after"),
        "2026-03-05T10:00:00.000Z",
        "Wednesday is a holiday now"
    );
    let snap = wait_for(20, "the added source's call", || async {
        let s = get_json(&d, "/api/v1/snapshot").await;
        let waiting = s["queues"]
            .as_array()?
            .iter()
            .find(|q| q["name"] == "service")?["waiting"]
            .as_u64();
        (waiting == Some(1)).then_some(s)
    })
    .await;
    // The state is whole: every event applied, nothing refused.
    let agents = snap["agents"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(agents, 3000, "every streamed login is there");
    let m = parse_metrics(&metrics_text(&d).await);
    let refused: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("callwatch_events_rejected_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(refused, 0.0);

    // An invalid file: nothing changes, and it says why.
    let before = get_json(&d, "/api/v1/snapshot").await;
    std::fs::write(&path, cfg(0.85, r#""not a date""#, &source)).expect("config");
    let r = client()
        .post(d.url("/api/v1/admin/reload"))
        .send()
        .await
        .expect("reload");
    assert_eq!(r.status().as_u16(), 422);
    let why = r.text().await.expect("body");
    assert!(why.contains("not a date"), "{why}");
    let status = reloads(&d, 2).await;
    assert!(
        status["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("not a date")),
        "{status}"
    );
    assert_eq!(sl_target(&get_json(&d, "/api/v1/goals").await), 0.85);
    let after = get_json(&d, "/api/v1/snapshot").await;
    assert_eq!(after["digest"], before["digest"]);
    let m = parse_metrics(&metrics_text(&d).await);
    assert_eq!(
        metric(&m, r#"callwatch_config_reload_total{result="failure"}"#),
        1.0
    );
    // A valid one again (the log level too): applied, and the state is
    // exactly what it was.
    std::fs::write(
        &path,
        cfg(0.85, r#""2026-03-04""#, &source) + "\n[log]\nlevel = \"debug\"\n",
    )
    .expect("config");
    let r = client()
        .post(d.url("/api/v1/admin/reload"))
        .send()
        .await
        .expect("reload");
    assert_eq!(r.status().as_u16(), 200);
    let done: serde_json::Value =
        serde_json::from_str(&r.text().await.expect("body")).expect("json");
    assert!(
        done["applied"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "log level")),
        "{done}"
    );
    let status = reloads(&d, 3).await;
    assert!(status.get("last_error").is_none(), "{status}");
    let again = get_json(&d, "/api/v1/snapshot").await;
    assert_eq!(
        again["digest"], before["digest"],
        "a reload changes no state"
    );
    // And the daemon still runs normally.
    assert!(d.terminate().success());
}
