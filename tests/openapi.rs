//! The OpenAPI description (issue 20 point 4): served by the daemon,
//! holding the examples of docs/api.md, and held to the running daemon by
//! schemathesis, which must find no server error and no response that
//! contradicts the description. Also readers that want different views
//! at once, which schemathesis found answered 503.

mod common;

use std::process::Command;

use common::*;
use serde_json::{json, Value};

/// The schemathesis CLI: `$SCHEMATHESIS`, else `st` on the PATH
/// (`.ci/run` installs it; docs/api.md says how).
fn schemathesis() -> String {
    std::env::var("SCHEMATHESIS").unwrap_or_else(|_| "st".into())
}

async fn document(d: &Daemon) -> Value {
    let r = client()
        .get(d.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("openapi.json");
    assert_eq!(r.status(), 200);
    serde_json::from_str(&r.text().await.expect("body")).expect("a JSON document")
}

/// The JSON examples of docs/api.md, each with the operation of the
/// section it stands in (`## \`GET /path\``).
fn api_examples() -> Vec<(String, String, Value)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md"))
        .expect("docs/api.md");
    let mut out = Vec::new();
    let mut op: Option<(String, String)> = None;
    let mut block: Option<String> = None;
    for line in text.lines() {
        if let Some(b) = block.as_mut() {
            if line.starts_with("```") {
                let v: Value = serde_json::from_str(b)
                    .unwrap_or_else(|e| panic!("docs/api.md example is not JSON: {e}\n{b}"));
                let (m, p) = op.clone().expect("an example under an operation heading");
                out.push((m, p, v));
                block = None;
            } else {
                b.push_str(line);
                b.push('\n');
            }
            continue;
        }
        if line.starts_with("```json") {
            block = Some(String::new());
        } else if let Some(h) = line.strip_prefix("## `") {
            let mut words = h.split(['`', ' ', '?']);
            let method = words.next().unwrap_or("").to_ascii_lowercase();
            let path = words.next().unwrap_or("").to_string();
            op = Some((method, path));
        }
    }
    out
}

/// A validator for `pointer` in `doc`: the document is the root, so that
/// its `#/components/...` references resolve.
fn validator(doc: &Value, pointer: &str) -> jsonschema::Validator {
    let mut root = doc.clone();
    root["$ref"] = Value::String(format!("#{pointer}"));
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    jsonschema::validator_for(&root).expect("a valid schema")
}

fn escape(p: &str) -> String {
    p.replace('~', "~0").replace('/', "~1")
}

#[tokio::test]
async fn every_docs_example_fits_a_described_response() {
    let d = Daemon::start(&config(""));
    let doc = document(&d).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let examples = api_examples();
    assert!(examples.len() >= 4, "found {} examples", examples.len());
    for (method, path, example) in &examples {
        let op = &doc["paths"][path][method];
        assert!(
            op.is_object(),
            "docs/api.md names {method} {path}, which is not described"
        );
        // An example fits one of the operation's JSON responses.
        let mut errors = Vec::new();
        let statuses = op["responses"].as_object().expect("responses");
        for (status, r) in statuses {
            if r["content"]["application/json"].is_null() {
                continue;
            }
            let pointer = format!(
                "/paths/{}/{method}/responses/{status}/content/application~1json/schema",
                escape(path)
            );
            match validator(&doc, &pointer).validate(example) {
                Ok(()) => {
                    errors.clear();
                    break;
                }
                Err(e) => errors.push(format!("{status}: {e}")),
            }
        }
        assert!(
            errors.is_empty(),
            "the docs/api.md example of {method} {path} fits none of its responses: {errors:?}\n{example}"
        );
    }
    // The event bodies of docs/events.md are held by tests/docs.rs against
    // the event schema; here, that the request body is that schema.
    let body = &doc["paths"]["/api/v1/events"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"];
    let one = validator(
        &doc,
        "/paths/~1api~1v1~1events/post/requestBody/content/application~1json/schema",
    );
    assert!(body.is_object());
    let good = json!({"id": "e1", "ts": "2026-03-02T08:05:00+01:00", "type": "call_offered", "call": "c1", "queue": "orders"});
    assert!(one.is_valid(&good));
    assert!(one.is_valid(&json!([good])));
    assert!(!one
        .is_valid(&json!({"id": "e1", "ts": "2026-03-02T08:05:00+01:00", "type": "call_offered"})));
}

/// Readers asking for views that differ (QA over different periods,
/// scorecards over others) at the same moment are each answered. They
/// used to share one request slot: the writer published one of the views
/// and the others waited out their 2 s and got 503.
#[tokio::test]
async fn readers_wanting_different_views_at_once_are_all_answered() {
    let d = Daemon::start(&config(""));
    let day = scripted_day();
    let (status, _) = post(&d, day.join("\n")).await;
    assert_eq!(status, 200);
    let paths = [
        "/api/v1/coaching?period=today",
        "/api/v1/coaching?period=month",
        "/api/v1/qa/scores?period=week",
        "/api/v1/qa/signals?period=60m",
        "/api/v1/scorecards?period=today",
        "/api/v1/scorecards?period=month",
        "/api/v1/backlog",
        "/api/v1/state",
    ];
    for _round in 0..3 {
        let c = client();
        let mut asks = tokio::task::JoinSet::new();
        for p in paths {
            let c = c.clone();
            let url = d.url(p);
            asks.spawn(async move {
                let r = c.get(&url).send().await.expect("get");
                (url, r.status().as_u16())
            });
        }
        while let Some(answer) = asks.join_next().await {
            let (url, status) = answer.expect("a reader task");
            assert_eq!(status, 200, "{url}");
        }
    }
}

/// Runs schemathesis against `d` with `args`; panics with its report
/// unless it passes.
fn run_schemathesis(d: &Daemon, args: &[&str], operations: u32) {
    let dir = tempfile::tempdir().expect("tmp");
    // Every check, with two exceptions (docs/api.md, "OpenAPI"): an
    // event that fits the schema can still be refused with 422 (a time
    // outside the plausible years, a call it does not know), and `/ws`
    // answers only a websocket upgrade, which schemathesis cannot send.
    let cfg = dir.path().join("schemathesis.toml");
    std::fs::write(
        &cfg,
        r#"
[[operations]]
include-path = "/api/v1/events"
checks.positive_data_acceptance.expected-statuses = [200, 422]

[[operations]]
include-path = "/ws"
checks.positive_data_acceptance.enabled = false

# The daemons under test run a Twilio source of this name, so the
# callbacks reach its signature check rather than a 404.
[[operations]]
include-path = "/api/v1/sources/{name}"
parameters = { name = "tw" }
checks.positive_data_acceptance.enabled = false
"#,
    )
    .expect("config");
    let url = d.url("/api/v1/openapi.json");
    let out = Command::new(schemathesis())
        .current_dir(dir.path())
        .args(["--config-file"])
        .arg(&cfg)
        .args(["run", &url])
        // One worker: with two, CPython 3.11's `ast.parse` inside
        // hypothesis failed now and then ("AST constructor recursion depth
        // mismatch"), a thread-safety fault of the tool, not of the API.
        .args(["--max-examples", "25", "--workers", "1", "--seed", "20261207"])
        .args(["--request-timeout", "10"])
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; install it with `pip install schemathesis` (docs/api.md) or set SCHEMATHESIS",
                schemathesis()
            )
        });
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It ran every operation (a filter or a load error would test less).
    let total = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tested:"))
        .map(|n| n.trim().to_string());
    assert!(
        total
            .as_deref()
            .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n >= operations)),
        "{report}"
    );
}

/// A webhook source, so that `/api/v1/sources/{name}` has one to reach.
const TWILIO: &str = "[[sources]]\ntype = \"twilio_taskrouter\"\nname = \"tw\"\nauth_token = \"0123456789abcdef0123456789abcdef\"\nurl = \"https://callwatch.example/api/v1/sources/tw\"\n";

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_drift_open() {
    let d = Daemon::start(&config(TWILIO));
    let (status, _) = post(&d, scripted_day().join("\n")).await;
    assert_eq!(status, 200);
    run_schemathesis(&d, &[], 23);
    // Still up and consistent after hundreds of hostile requests.
    let r = client().get(d.url("/readyz")).send().await.expect("readyz");
    assert_eq!(r.status(), 200);
    let state = get_json(&d, "/api/v1/state").await;
    assert!(
        state["digest"].as_str().is_some_and(|s| s.len() == 64),
        "{state}"
    );
}

/// With tokens configured every guarded operation says so, and
/// schemathesis checks that each refuses a request without one
/// (`ignored_auth`) while it sends the supervisor's token for the rest.
#[tokio::test]
async fn schemathesis_with_tokens_finds_every_guard_enforced() {
    let extra = r#"
[auth]
ingest_token = "ingest-secret-0123"
supervisor_token = "supervisor-secret-0123"
"#;
    let cfg = config(&format!("{extra}{TWILIO}")).replace("anonymous_role = \"supervisor\"\n", "");
    let d = Daemon::start(&cfg);
    let doc = document(&d).await;
    // The anonymous role (`wallboard`, the default) may read the
    // snapshot but not the QA scores nor reload.
    let sec = |path: &str, method: &str| doc["paths"][path][method]["security"].clone();
    assert_eq!(sec("/api/v1/snapshot", "get"), json!([{"bearer": []}, {}]));
    assert_eq!(sec("/api/v1/qa/scores", "get"), json!([{"bearer": []}]));
    assert_eq!(sec("/api/v1/admin/reload", "post"), json!([{"bearer": []}]));
    assert_eq!(sec("/api/v1/events", "post"), json!([{"bearer": []}]));
    let r = client()
        .get(d.url("/api/v1/qa/scores"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    // One token per run: the ingest operation takes only its own.
    run_schemathesis(
        &d,
        &[
            "-H",
            "Authorization: Bearer supervisor-secret-0123",
            "--exclude-path",
            "/api/v1/events",
        ],
        21,
    );
    run_schemathesis(
        &d,
        &[
            "-H",
            "Authorization: Bearer ingest-secret-0123",
            "--include-path",
            "/api/v1/events",
        ],
        1,
    );
}
