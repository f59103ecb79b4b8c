//! The shipped alert rules and dashboards, proven against a real
//! Prometheus (Debian package `prometheus`) scraping a real callwatch.

mod common;

use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("command runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

#[test]
fn promtool_checks_and_unit_tests_every_alert() {
    let p = format!("{ROOT}/config/prometheus");
    let out = run(Command::new("promtool").args([
        "check",
        "rules",
        &format!("{p}/rules.yml"),
        &format!("{p}/alerts.yml"),
    ]));
    assert!(out.contains("SUCCESS: 7 rules found"), "{out}");
    assert!(out.contains("SUCCESS: 10 rules found"), "{out}");
    let out = run(Command::new("promtool").args([
        "test",
        "rules",
        &format!("{p}/tests/alerts_test.yml"),
    ]));
    assert!(out.contains("SUCCESS"), "{out}");
    // Every alert has a quiet and a firing case in the unit tests.
    let alerts = std::fs::read_to_string(format!("{p}/alerts.yml")).expect("alerts");
    let tests = std::fs::read_to_string(format!("{p}/tests/alerts_test.yml")).expect("tests");
    for line in alerts
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        let cases = tests.matches(&format!("alertname: {line}\n")).count();
        assert!(cases >= 2, "{line} has {cases} test case(s)");
    }
    // One alert per goal with alerting on, named after the goal.
    let m =
        callwatch::goal::Matrix::from_config(&callwatch::config::Config::embedded().expect("cfg"));
    for g in m.goals.iter().filter(|g| g.alert.is_some()) {
        let name = callwatch::rules::alert_name(&g.id);
        assert!(
            alerts.contains(&format!("- alert: {name}\n")),
            "{name} missing"
        );
    }
    // Absolute runbook links and the three severities only.
    for l in alerts.lines().map(str::trim) {
        if let Some(u) = l.strip_prefix("runbook_url: ") {
            assert!(u.starts_with("\"https://"), "{l}");
        }
        if let Some(sev) = l.strip_prefix("severity: ") {
            assert!(["critical", "warning", "info"].contains(&sev), "{l}");
        }
    }
    run(Command::new("promtool").args(["check", "config", &format!("{p}/prometheus.yml")]));
}

#[test]
fn shipped_rules_and_dashboards_are_exactly_the_generated_ones() {
    for (cmd, dir) in [("rules", "config/prometheus"), ("dashboards", "dashboards")] {
        run(Command::new(env!("CARGO_BIN_EXE_callwatch"))
            .args([cmd, "--check", "--out"])
            .arg(format!("{ROOT}/{dir}")));
    }
    assert!(
        !std::path::Path::new(&format!("{ROOT}/dashboards/generate.py")).exists(),
        "one generator: the binary"
    );
}

#[test]
fn dashboards_take_their_thresholds_from_the_goals_and_select_job_and_instance() {
    let cfg = callwatch::config::Config::embedded().expect("config");
    let m = callwatch::goal::Matrix::from_config(&cfg);
    let mut checked = 0;
    for name in DASHBOARDS {
        let text = std::fs::read_to_string(format!("{ROOT}/dashboards/callwatch-{name}.json"))
            .expect("dashboard");
        let d: Value = serde_json::from_str(&text).expect("json");
        assert!(text.contains("${datasource}"));
        assert!(
            !text.contains(r#"job=\"callwatch\""#),
            "{name}: a hard-coded job"
        );
        let vars: Vec<&str> = d["templating"]["list"]
            .as_array()
            .expect("vars")
            .iter()
            .filter_map(|v| v["name"].as_str())
            .collect();
        for v in ["datasource", "job", "instance"] {
            assert!(vars.contains(&v), "{name} lacks ${v}");
        }
        for p in d["panels"].as_array().expect("panels") {
            for t in p["targets"].as_array().expect("targets") {
                let e = t["expr"].as_str().expect("expr");
                assert!(
                    e.contains(r#"instance=~"$instance""#),
                    "{name}/{}: {e}",
                    p["title"]
                );
            }
            let Some(id) = p["description"]
                .as_str()
                .and_then(|s| s.split("(goal:").nth(1))
                .and_then(|s| s.split(')').next())
            else {
                continue;
            };
            let g = m.goal(id).expect("a goal of the matrix");
            assert_eq!(
                p["fieldConfig"]["defaults"]["thresholds"],
                callwatch::dashboard::thresholds(g),
                "{name}/{}",
                p["title"]
            );
            checked += 1;
        }
    }
    assert!(checked >= 12, "{checked} panels carry goal thresholds");
    // No orange for 0 overdue: a count at its target of 0 is green.
    let g = m.goal("callbacks_overdue").expect("goal");
    let steps = callwatch::dashboard::thresholds(g)["steps"].clone();
    assert_eq!(steps[0]["color"], "green");
    assert!(steps
        .as_array()
        .expect("steps")
        .iter()
        .skip(1)
        .all(|s| s["value"].as_f64() > Some(0.0)));
}

const DASHBOARDS: [&str; 5] = ["overview", "backlog", "agents", "sales", "goals"];

/// An instant query; `Null` while Prometheus is not reachable yet.
async fn query(base: &str, expr: &str) -> Value {
    let Ok(r) = client()
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await
    else {
        return Value::Null;
    };
    serde_json::from_str(&r.text().await.unwrap_or_default()).unwrap_or(Value::Null)
}

/// Waits until `expr` returns at least one series; the query's answer.
async fn data_for(base: &str, expr: &str, secs: u64, what: &str) -> Value {
    wait_for(secs, &format!("data for {what}"), || async {
        let v = query(base, expr).await;
        (v["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty()))
        .then_some(v)
    })
    .await
}

/// Panel expressions with Grafana's variables filled in.
fn panel_queries() -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for name in DASHBOARDS {
        let text = std::fs::read_to_string(format!("{ROOT}/dashboards/callwatch-{name}.json"))
            .expect("dashboard");
        let d: Value = serde_json::from_str(&text).expect("json");
        for p in d["panels"].as_array().expect("panels") {
            let title = format!("{name} / {}", p["title"].as_str().unwrap_or(""));
            for t in p["targets"].as_array().expect("targets") {
                let mut e = t["expr"].as_str().expect("expr").to_string();
                for v in [
                    "$site",
                    "$team",
                    "$queue",
                    "$kind",
                    "$agent",
                    "$instance",
                    "$scope_kind",
                    "$scope",
                ] {
                    e = e.replace(v, ".*");
                }
                e = e.replace("$job", "callwatch");
                e = e.replace("$__rate_interval", "30s");
                // Offers, order confirmations and complaints take hours
                // to complete in the simulation: their SLA goals have no
                // value within this test's minute (the query must still run).
                let slow = name == "goals" && title.contains("Processing within SLA");
                out.push((title.clone(), e, !slow));
            }
        }
    }
    out
}

const SCRAPE_TOKEN: &str = "prometheus-read-token-0123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_over_two_instances_runs_every_panel_and_rule_and_fires_the_overdue_alert() {
    // Two callwatch instances on the shipped configuration (its goals are
    // what the dashboards and alerts are built on), each running the
    // simulator (whose partner team gives the partner comparison data),
    // on ephemeral ports, per-agent series on.
    let shipped = std::fs::read_to_string(format!("{ROOT}/config/callwatch.toml")).expect("config");
    let cfg = shipped
        .replace("http = \"127.0.0.1:9464\"", "http = \"127.0.0.1:0\"")
        .replace(
            "ingest_tcp = \"127.0.0.1:9465\"",
            "ingest_tcp = \"127.0.0.1:0\"",
        )
        .replace("per_agent_metrics = false", "per_agent_metrics = true")
        // Per-agent series go to the supervisor role only: Prometheus
        // scrapes with the read token, as docs/privacy.md says it must.
        .replace(
            "# read_token = \"at-least-16-characters\"",
            &format!("read_token = \"{SCRAPE_TOKEN}\""),
        )
        .replace("agents = 24\nrate = 4.0", "agents = 40\nrate = 40.0");
    let d = Daemon::start_args(&cfg, &["--demo"]);
    let d2 = Daemon::start_args(&cfg.replace("seed = 1", "seed = 2"), &["--demo"]);
    let now = chrono::Utc::now();
    let at = |m: i64| (now + chrono::Duration::minutes(m)).to_rfc3339();
    let mut created = vec![format!(
        r#"{{"id":"x-late","ts":"{}","type":"task_created","task":"late","kind":"callback","queue":"orders","customer":"C-1","due":"{}"}}"#,
        at(-60),
        at(-20)
    )];
    let mut done = Vec::new();
    for i in 0..3 {
        created.push(format!(r#"{{"id":"x-c{i}","ts":"{}","type":"task_created","task":"ok{i}","kind":"callback","queue":"orders"}}"#, at(-5)));
        done.push(format!(r#"{{"id":"x-d{i}","ts":"{}","type":"task_completed","task":"ok{i}","agent":"agent-0001"}}"#, at(0)));
    }
    let (status, reply) = post(&d, created.join("\n")).await;
    assert_eq!(status, 200, "{reply}");
    let dir = tempfile::tempdir().expect("tmp");
    // The shipped rules, with `for:` shortened so the test need not wait.
    for f in ["rules.yml", "alerts.yml"] {
        let text = std::fs::read_to_string(format!("{ROOT}/config/prometheus/{f}")).expect("rules");
        let text = regex_lite_for(&text);
        std::fs::write(dir.path().join(f), text).expect("write");
    }
    let port = free_port();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [rules.yml, alerts.yml]\n\
             scrape_configs:\n  - job_name: callwatch\n    authorization:\n      credentials: \"{SCRAPE_TOKEN}\"\n    static_configs:\n      - targets: [\"{}\", \"{}\"]\n",
            d.http, d2.http
        ),
    )
    .expect("write");
    let _prom = Reaper(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus is installed (apt-get install prometheus)"),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_for(
        60,
        "Prometheus to scrape both instances a few times",
        || async {
            let v = query(
                &base,
                r#"count(count_over_time(up{job="callwatch"}[1m]) >= 3) == 2"#,
            )
            .await;
            (v["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty()))
            .then_some(())
        },
    )
    .await;
    // Now the scripted part: callbacks completed in time (their counters
    // exist from the start, so the completions are an increase Prometheus
    // sees) and one callback 20 minutes overdue, on the first instance.
    let (status, reply) = post(&d, done.join("\n")).await;
    assert_eq!(status, 200, "{reply}");

    // (b) the overdue alert fires, for that instance only.
    let alert = wait_for(90, "CallwatchGoalCallbacksOverdue to fire", || async {
        let v: Value = serde_json::from_str(
            &client()
                .get(format!("{base}/api/v1/alerts"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?,
        )
        .ok()?;
        v["data"]["alerts"]
            .as_array()?
            .iter()
            .find(|a| {
                a["labels"]["alertname"] == "CallwatchGoalCallbacksOverdue"
                    && a["labels"]["scope"] == "orders"
                    && a["state"] == "firing"
            })
            .cloned()
    })
    .await;
    assert_eq!(alert["labels"]["instance"], d.http.to_string());
    assert_eq!(
        (
            alert["labels"]["scope_kind"].as_str(),
            alert["labels"]["severity"].as_str()
        ),
        (Some("queue"), Some("critical"))
    );
    let desc = alert["annotations"]["description"].as_str().unwrap_or("");
    assert!(
        desc.starts_with("Goal callbacks_overdue (Callbacks overdue) is 1 in queue orders"),
        "{desc}"
    );

    // (a) every recording rule and every panel query runs and has data,
    // and the per-queue rules keep the two instances apart.
    let rules =
        std::fs::read_to_string(format!("{ROOT}/config/prometheus/rules.yml")).expect("rules");
    for record in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record: "))
    {
        let v = data_for(&base, record, 60, &format!("recording rule {record}")).await;
        assert_eq!(v["status"], "success");
    }
    data_for(
        &base,
        "count(count by (instance) (callwatch:queue_service_level:ratio_rate1h)) == 2",
        60,
        "the service-level rule per instance",
    )
    .await;
    for (title, expr, must_have_data) in panel_queries() {
        let v = query(&base, &expr).await;
        assert_eq!(v["status"], "success", "{title}: {expr}: {v}");
        if must_have_data {
            let v = data_for(&base, &expr, 30, &title).await;
            assert_eq!(v["status"], "success");
        }
    }
}

/// The rules with every `for:` set to 0s.
fn regex_lite_for(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.trim_start().starts_with("for: ") {
                let indent = &l[..l.len() - l.trim_start().len()];
                format!("{indent}for: 0s")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
