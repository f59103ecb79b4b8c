//! Strict ingest and the dry run for senders (issue 20 point 5):
//! `ingest.strict` refuses a field its type does not take, on every
//! canonical path and after a reload, but never on journal replay;
//! `callwatch check-events` and `replay --offline` name each refusal by
//! line and exit 1 when there is one.

mod common;

use std::process::Command;

use common::*;

/// A good offer, one with a misspelt optional field, a good answer, one
/// without its agent.
fn mixed() -> Vec<String> {
    vec![
        ev(
            "m1",
            "08:00:00",
            "call_offered",
            r#""call":"c1","queue":"orders""#,
        ),
        ev(
            "m2",
            "08:00:01",
            "call_offered",
            r#""call":"c2","queue":"orders","custmer":"K-1""#,
        ),
        ev(
            "m3",
            "08:00:05",
            "call_answered",
            r#""call":"c1","agent":"a1""#,
        ),
        ev("m4", "08:00:06", "call_answered", r#""call":"c2""#),
    ]
}

fn check_events(file: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .arg("check-events")
        .arg(file)
        .args(args)
        .output()
        .expect("check-events");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_events_names_each_refusal_by_line_and_fails() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("events.ndjson");
    // A blank line counts, as an editor shows the file.
    let mut lines = mixed();
    lines.insert(2, String::new());
    std::fs::write(&file, lines.join("\n")).expect("write");
    let shown = file.display().to_string();

    let (code, out, err) = check_events(&file, &[]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(
        out,
        format!("{shown}:5: missing_field: missing field `agent` (required for call_answered)\n"),
        "lenient: the misspelt field is ignored"
    );
    assert!(
        err.contains("4 events: 3 valid, 0 duplicates, 1 refused"),
        "{err}"
    );

    let (code, out, _) = check_events(&file, &["--strict"]);
    assert_eq!(code, Some(1));
    let refusals: Vec<&str> = out.lines().collect();
    assert_eq!(
        refusals,
        [
            format!("{shown}:2: unknown_field: `custmer` is not a field of call_offered (ingest.strict refuses unknown fields)"),
            format!("{shown}:5: missing_field: missing field `agent` (required for call_answered)"),
        ]
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        "{out}"
    );

    // The config's own ingest.strict applies without the flag.
    let cfg = dir.path().join("strict.toml");
    std::fs::write(&cfg, config("[ingest]\nstrict = true\n")).expect("write");
    let (_, out, _) = check_events(&file, &["--config", cfg.to_str().expect("utf-8")]);
    assert!(out.contains(":2: unknown_field:"), "{out}");

    let good = dir.path().join("good.ndjson");
    std::fs::write(&good, [&lines[0], &lines[3]].map(|s| s.as_str()).join("\n")).expect("write");
    let (code, out, err) = check_events(&good, &["--strict"]);
    assert_eq!((code, out.as_str()), (Some(0), ""), "{err}");
}

#[test]
fn replay_offline_exits_1_when_events_were_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("events.ndjson");
    std::fs::write(&file, mixed().join("\n")).expect("write");
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .args(["replay", "--offline"])
            .args(extra)
            .arg(&file)
            .output()
            .expect("replay")
    };
    let out = run(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("line 4: missing_field"), "{err}");
    // The snapshot is still printed: the valid events applied.
    let snap: serde_json::Value = serde_json::from_slice(&out.stdout).expect("snapshot");
    assert_eq!(snap["events"]["applied"], 3);
    let out = run(&["--strict"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2: unknown_field"));
}

#[tokio::test]
async fn strict_ingest_refuses_unknown_fields_on_http_and_tcp_and_counts_them() {
    let d = Daemon::start(&config("[ingest]\nstrict = true\n"));
    let (status, reply) = post(&d, mixed()[..3].join("\n")).await;
    // Some refused: 422 (docs/api.md), the others applied.
    assert_eq!(status, 422, "{reply}");
    assert_eq!(reply["accepted"], 2, "{reply}");
    assert_eq!(reply["rejected"][0]["reason"], "unknown_field", "{reply}");
    assert_eq!(reply["rejected"][0]["index"], 1, "{reply}");

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let tcp = tokio::net::TcpStream::connect(d.tcp.expect("tcp"))
        .await
        .expect("connect");
    let (r, mut w) = tcp.into_split();
    let line = ev(
        "t1",
        "08:01:00",
        "agent_state",
        r#""agent":"a2","state":"paused","reasn":"lunch""#,
    );
    w.write_all(format!("{line}\n").as_bytes())
        .await
        .expect("write");
    let mut lines = BufReader::new(r).lines();
    let first = lines.next_line().await.expect("read").expect("a line");
    assert!(
        first.starts_with("ERR 1 unknown_field `reasn` is not a field of agent_state"),
        "{first}"
    );
    // The schema the daemon serves is the strict one, open to all.
    let schema = get_json(&d, "/api/v1/schema/events.json").await;
    assert_eq!(
        schema["$defs"]["agent_state"]["additionalProperties"],
        false
    );
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let m = parse_metrics(&metrics_text(&d).await);
    assert_eq!(
        metric(
            &m,
            r#"callwatch_events_rejected_total{source="http",reason="unknown_field"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            r#"callwatch_events_rejected_total{source="tcp",reason="unknown_field"}"#
        ),
        1.0
    );
}

/// What the journal holds was accepted under the rules of its day: a
/// restart with `ingest.strict` on recovers it whole, and a reload turns
/// strictness on and off for what comes next.
#[tokio::test]
async fn strictness_never_applies_to_the_journal_and_follows_a_reload() {
    let data = tempfile::tempdir().expect("tmp");
    let dir = data.path().to_str().expect("utf-8");
    let lenient = config("");
    let d = Daemon::start_args(&lenient, &["--data-dir", dir]);
    assert_eq!(post(&d, mixed()[..3].join("\n")).await.1["accepted"], 3);
    let before = get_json(&d, "/api/v1/snapshot").await;
    assert!(d.terminate().success());

    let strict = config("[ingest]\nstrict = true\n");
    let d = Daemon::start_args(&strict, &["--data-dir", dir]);
    let after = get_json(&d, "/api/v1/snapshot").await;
    assert_eq!(after["events"]["applied"], 3);
    assert_eq!(after["digest"], before["digest"]);
    let extra = |id: &str| {
        ev(
            id,
            "08:02:00",
            "call_offered",
            r#""call":"c9","queue":"orders","colour":"red""#,
        )
    };
    assert_eq!(
        post(&d, extra("x1")).await.1["rejected"][0]["reason"],
        "unknown_field"
    );

    // Back to lenient by a reload: the same event is taken.
    std::fs::write(d.dir.path().join("callwatch.toml"), &lenient).expect("write");
    d.signal("HUP");
    wait_for(20, "the reload", || async {
        (readyz(&d).await["config"]["reloads"].as_u64() == Some(1)).then_some(())
    })
    .await;
    assert_eq!(post(&d, extra("x1")).await.1["accepted"], 1);
}

/// A body that cannot be events (a file upload, XML) is refused with 415
/// before it is read; JSON, NDJSON, text and curl's `-d` default are taken.
#[tokio::test]
async fn ingest_checks_the_content_type() {
    let d = Daemon::start(&config(""));
    let send = |ty: &'static str, id: &'static str| {
        let body = ev(
            id,
            "08:00:00",
            "call_offered",
            &format!(r#""call":"{id}","queue":"orders""#),
        );
        let req = client().post(d.url("/api/v1/events")).body(body);
        async move {
            let r = req.header("content-type", ty).send().await.expect("post");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
    };
    for (i, ty) in [
        "multipart/form-data; boundary=x",
        "application/xml",
        "text/csv",
    ]
    .into_iter()
    .enumerate()
    {
        let id = ["u1", "u2", "u3"][i];
        let (status, text) = send(ty, id).await;
        assert_eq!(status, 415, "{ty}: {text}");
        assert!(text.contains("is not JSON"), "{text}");
    }
    assert_eq!(
        get_json(&d, "/api/v1/snapshot").await["events"]["applied"],
        0
    );
    let ok = [
        ("application/x-ndjson", "k1"),
        ("application/json; charset=utf-8", "k2"),
        ("text/plain", "k3"),
        ("application/x-www-form-urlencoded", "k4"),
        ("application/cloudevents+json", "k5"),
    ];
    for (ty, id) in ok {
        let (status, text) = send(ty, id).await;
        assert_eq!(status, 200, "{ty}: {text}");
    }
    assert_eq!(
        get_json(&d, "/api/v1/snapshot").await["events"]["applied"],
        5
    );
}
