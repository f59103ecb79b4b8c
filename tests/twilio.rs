//! The Twilio TaskRouter source: event callbacks POSTed to
//! `/api/v1/sources/<name>` as TaskRouter sends them (form-encoded,
//! signed with `X-Twilio-Signature`), against the real binary: a call
//! from queue entry to completion, a cancelled task, worker activities;
//! unsigned, wrongly signed, malformed, oversized, repeated and
//! too-frequent callbacks.
//!
//! The callbacks carry the parameters of Twilio's TaskRouter Events
//! reference (EventType, Sid, TimestampMs, TaskSid, TaskQueueName,
//! TaskAttributes, TaskChannelUniqueName, WorkerName, WorkerActivityName,
//! WorkerPreviousActivityName, TaskCanceledReason); they are written here
//! from that list, not copied from a capture (docs/sources/twilio.md).

mod common;

use common::*;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn source(name: &str, extra: &str) -> String {
    format!(
        "[[sources]]\ntype = \"twilio_taskrouter\"\nname = \"{name}\"\nauth_token = \"{TOKEN}\"\nurl = \"https://callwatch.example/api/v1/sources/{name}\"\n{extra}\n"
    )
}

fn form(params: &[(&str, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
        .finish()
}

/// POSTs a callback signed as Twilio signs it (or with `signature`).
async fn callback(
    d: &Daemon,
    name: &str,
    params: &[(&str, String)],
    signature: Option<&str>,
) -> (u16, String) {
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let url = format!("https://callwatch.example/api/v1/sources/{name}");
    let sig = callwatch::source::twilio::signature(TOKEN, &url, &owned);
    let mut req = client()
        .post(d.url(&format!("/api/v1/sources/{name}")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(params));
    match signature {
        Some("") => {}
        Some(s) => req = req.header("x-twilio-signature", s),
        None => req = req.header("x-twilio-signature", sig),
    }
    let r = req.send().await.expect("post");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

/// One TaskRouter event: its type and Sid, a time `secs` after
/// 2026-03-02 08:00 Berlin, and its fields.
fn event(
    kind: &str,
    sid: &str,
    secs: i64,
    fields: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let ms = (1_772_434_800 + secs) * 1000;
    let mut v = vec![
        ("EventType", kind.to_string()),
        ("Sid", sid.to_string()),
        (
            "AccountSid",
            "AC00000000000000000000000000000001".to_string(),
        ),
        (
            "WorkspaceSid",
            "WS00000000000000000000000000000001".to_string(),
        ),
        ("Timestamp", (ms / 1000).to_string()),
        ("TimestampMs", ms.to_string()),
    ];
    v.extend(fields.iter().map(|(k, v)| (*k, v.to_string())));
    v
}

fn task(sid: &'static str) -> [(&'static str, &'static str); 2] {
    [("TaskSid", sid), ("TaskChannelUniqueName", "voice")]
}

async fn counter(d: &Daemon, series: &str) -> f64 {
    parse_metrics(&metrics_text(d).await)
        .get(series)
        .copied()
        .unwrap_or(0.0)
}

#[tokio::test]
async fn taskrouter_callbacks_make_calls_and_agent_states_and_bad_ones_are_refused() {
    let d = Daemon::start(&config(
        &(source("tw", "") + &source("slow", "rate_per_second = 1\nmax_body_bytes = 1024")),
    ));
    let t1 = task("WT00000000000000000000000000000001");
    let t2 = task("WT00000000000000000000000000000002");
    let attrs = r#"{"from":"+4930555123","type":"inbound"}"#;
    let sequence = [
        event(
            "worker.activity.update",
            "EV01",
            0,
            &[
                ("WorkerName", "alice"),
                ("WorkerActivityName", "Available"),
                ("WorkerPreviousActivityName", "Offline"),
            ],
        ),
        event("task.created", "EV02", 10, &t1),
        event(
            "task-queue.entered",
            "EV03",
            10,
            &[
                t1[0],
                t1[1],
                ("TaskQueueName", "orders"),
                ("TaskAttributes", attrs),
            ],
        ),
        event(
            "reservation.created",
            "EV04",
            12,
            &[t1[0], t1[1], ("WorkerName", "bob")],
        ),
        event(
            "reservation.timeout",
            "EV05",
            27,
            &[t1[0], t1[1], ("WorkerName", "bob")],
        ),
        event(
            "reservation.accepted",
            "EV06",
            30,
            &[t1[0], t1[1], ("WorkerName", "alice")],
        ),
        event("task.wrapup", "EV07", 150, &t1),
        event("task.completed", "EV08", 180, &t1),
        event(
            "task-queue.entered",
            "EV09",
            200,
            &[
                t2[0],
                t2[1],
                ("TaskQueueName", "orders"),
                ("TaskAttributes", "{}"),
            ],
        ),
        event(
            "task.canceled",
            "EV10",
            260,
            &[t2[0], t2[1], ("TaskCanceledReason", "hangup")],
        ),
        event(
            "worker.activity.update",
            "EV11",
            300,
            &[
                ("WorkerName", "alice"),
                ("WorkerActivityName", "Break"),
                ("WorkerPreviousActivityName", "Available"),
            ],
        ),
    ];
    for e in &sequence {
        let (status, body) = callback(&d, "tw", e, None).await;
        assert_eq!(status, 204, "{e:?}: {body}");
    }
    let snap = get_json(&d, "/api/v1/snapshot").await;
    let q = snap["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["name"] == "orders")
        .expect("orders");
    let t = &q["totals"];
    assert_eq!(
        (
            t["offered"].as_u64(),
            t["answered"].as_u64(),
            t["abandoned"].as_u64()
        ),
        (Some(2), Some(1), Some(1)),
        "{q}"
    );
    // Talk from acceptance to wrap-up (120 s), after-call work to
    // completion (30 s): TaskRouter's own times.
    assert_eq!(q["today_contacts"]["talk_s"], 120.0, "{q}");
    assert_eq!(q["today_contacts"]["wrap_s"], 30.0, "{q}");
    let alice = snap["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["agent"] == "alice")
        .expect("alice");
    assert_eq!(alice["state"], "paused");
    assert_eq!(alice["reason"], "Break");
    assert!(!metrics_text(&d).await.contains("4930555123"));

    // Twilio retries a callback it got no answer to: the same Sid is a
    // duplicate, answered 204 again.
    let dup_before = counter(&d, "callwatch_events_duplicate_total").await;
    assert_eq!(callback(&d, "tw", &sequence[5], None).await.0, 204);
    assert_eq!(
        counter(&d, "callwatch_events_duplicate_total").await,
        dup_before + 1.0
    );

    // Unsigned and wrongly signed: 403, counted, nothing applied.
    let applied = get_json(&d, "/api/v1/state").await["events_applied"].as_u64();
    let forged = event(
        "task-queue.entered",
        "EV90",
        400,
        &[t2[0], t2[1], ("TaskQueueName", "orders")],
    );
    let (status, body) = callback(&d, "tw", &forged, Some("")).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("bad_signature") && body.contains("X-Twilio-Signature"),
        "{body}"
    );
    assert_eq!(
        callback(&d, "tw", &forged, Some("c2lnbmVkIGJ5IHNvbWVvbmUgZWxzZQ=="))
            .await
            .0,
        403
    );
    let bad =
        r#"callwatch_events_rejected_total{source="twilio_taskrouter",reason="bad_signature"}"#;
    assert_eq!(counter(&d, bad).await, 2.0);
    assert_eq!(
        get_json(&d, "/api/v1/state").await["events_applied"].as_u64(),
        applied
    );

    // Signed but not an event: 400 with what is missing.
    let (status, body) =
        callback(&d, "tw", &[("EventType", "task.created".to_string())], None).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Sid"), "{body}");

    // No such source: 404.
    assert_eq!(callback(&d, "nope", &sequence[0], None).await.0, 404);

    // The other source's limits: 1 KiB, 1 request/s with a burst of 2.
    let big = event(
        "task.created",
        "EV91",
        0,
        &[("TaskAttributes", &"x".repeat(2048))],
    );
    assert_eq!(callback(&d, "slow", &big, None).await.0, 413);
    let mut statuses = Vec::new();
    for i in 0..4 {
        let e = event("task.created", &format!("EV9{i}"), 0, &t1);
        statuses.push(callback(&d, "slow", &e, None).await.0);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    let limited =
        r#"callwatch_source_skipped_total{source="twilio_taskrouter",reason="rate_limited"}"#;
    assert!(counter(&d, limited).await >= 1.0);
}

/// Behind an edge publisher (`callwatch publish`) the callbacks go to
/// the edge buffer and on to the JetStream stream, with their ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_publisher_takes_callbacks_onto_the_stream() {
    let tmp = tempfile::tempdir().expect("tmp");
    let broker = common::nats::single(tmp.path());
    let url = broker.url();
    let data = tempfile::tempdir().expect("edge data");
    let cfg = config(&format!(
        "[publish]\nservers = [{url:?}]\ncreate_stream = true\n{}",
        source("tw", "")
    ));
    let dir = data.path().to_str().expect("utf-8").to_string();
    let edge = Daemon::start_publisher(&cfg, &["--data-dir", &dir]);
    let t1 = task("WT00000000000000000000000000000003");
    let calls = [
        event(
            "task-queue.entered",
            "EV21",
            10,
            &[t1[0], t1[1], ("TaskQueueName", "orders")],
        ),
        event(
            "reservation.accepted",
            "EV22",
            20,
            &[t1[0], t1[1], ("WorkerName", "alice")],
        ),
    ];
    for e in &calls {
        assert_eq!(callback(&edge, "tw", e, None).await.0, 204);
    }
    assert_eq!(callback(&edge, "tw", &calls[0], Some("")).await.0, 403);
    wait_for(30, "the edge to publish", || async {
        let m = parse_metrics(&metrics_text(&edge).await);
        (metric(&m, "callwatch_publish_sent_total") >= 2.0).then_some(())
    })
    .await;
    let c = common::nats::client(&[url]).await;
    let js = async_nats::jetstream::new(c);
    let ids: Vec<String> = common::nats::read_all(&js, "CALLWATCH")
        .await
        .iter()
        .filter_map(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        .filter_map(|v| v["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(ids, ["tw:EV21", "tw:EV22"]);
}

/// Tasks whose attributes mark them as callbacks (`[sources.callbacks]`)
/// become callwatch tasks of that kind: created when they enter a queue,
/// assigned, then completed; the call figures do not count them.
#[tokio::test]
async fn callback_tasks_become_callwatch_tasks() {
    let d = Daemon::start(&config(&source(
        "tw",
        "[sources.callbacks]\nattribute = \"type\"\nvalue = \"callback\"\nkind = \"callback\"",
    )));
    let t = task("WT00000000000000000000000000000009");
    let attrs = r#"{"type":"callback","from":"+4930555999"}"#;
    let entered = event(
        "task-queue.entered",
        "EV31",
        10,
        &[
            t[0],
            t[1],
            ("TaskQueueName", "service"),
            ("TaskAttributes", attrs),
        ],
    );
    assert_eq!(callback(&d, "tw", &entered, None).await.0, 204);
    let backlog = get_json(&d, "/api/v1/backlog").await;
    assert_eq!(backlog["total"], 1, "{backlog}");
    let open = &backlog["tasks"][0];
    assert_eq!(
        (open["kind"].as_str(), open["queue"].as_str()),
        (Some("callback"), Some("service")),
        "{open}"
    );
    assert_eq!(open["customer"], "+4930555999");
    // Later events of the task do not repeat the attribute here: the
    // source remembers the task is a callback.
    let accepted = event(
        "reservation.accepted",
        "EV32",
        60,
        &[t[0], t[1], ("WorkerName", "alice")],
    );
    assert_eq!(callback(&d, "tw", &accepted, None).await.0, 204);
    let completed = event(
        "task.completed",
        "EV33",
        400,
        &[t[0], t[1], ("WorkerName", "alice")],
    );
    assert_eq!(callback(&d, "tw", &completed, None).await.0, 204);
    let backlog = get_json(&d, "/api/v1/backlog").await;
    assert_eq!(backlog["total"], 0, "{backlog}");
    let snap = get_json(&d, "/api/v1/snapshot").await;
    let service = snap["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["name"] == "service")
        .expect("service");
    assert_eq!(
        service["totals"]["offered"], 0,
        "a callback task is no call: {service}"
    );
    let refused = counter(
        &d,
        r#"callwatch_events_rejected_total{source="twilio_taskrouter",reason="unknown_task"}"#,
    )
    .await;
    assert_eq!(refused, 0.0);
}
