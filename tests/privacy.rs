//! The privacy policy end to end: for every role and for a request
//! without a token, every output (snapshot, backlog, feed, metrics) is
//! searched as raw bytes for the people and customers the policy says
//! that reader must not see.

mod common;

use common::*;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

const INGEST: &str = "ingest-token-0123456789";
const READ: &str = "read-token-0123456789";
const WALL: &str = "wallboard-token-0123456789";
const SUP: &str = "supervisor-token-0123456789";

const IDS: [&str; 3] = ["agent.anna.berger", "agent.bob.kunz", "agent.carl.solo"];
const NAMES: [&str; 3] = ["Anna Berger", "Bob Kunz", "Carl Solo"];
const CUSTOMERS: [&str; 3] = ["CUST-4711", "+4930123456", "CUST-0815"];

fn desk_config(read_token: bool, agents: &str) -> String {
    let read = if read_token {
        format!("read_token = \"{READ}\"\n")
    } else {
        String::new()
    };
    config(&format!(
        "[auth]\ningest_token = \"{INGEST}\"\n{read}wallboard_token = \"{WALL}\"\nsupervisor_token = \"{SUP}\"\n"
    ))
    .replace(
        "anonymous_role = \"supervisor\"",
        &format!(
            "anonymous_role = \"wallboard\"\nmin_group_size = 2\nwallboard_agents = \"{agents}\"\npseudonym_key = \"0123456789abcdef0123\""
        ),
    )
}

/// Two agents in `orders` (team sales), one alone in `service`; calls,
/// sales in both queues, callbacks with customers assigned to agents.
fn desk() -> String {
    [
        ev("l1", "08:00:00", "agent_login", r#""agent":"agent.anna.berger","name":"Anna Berger","team":"sales","queues":["orders"]"#),
        ev("l2", "08:00:00", "agent_login", r#""agent":"agent.bob.kunz","name":"Bob Kunz","team":"sales","queues":["orders"]"#),
        ev("l3", "08:00:00", "agent_login", r#""agent":"agent.carl.solo","name":"Carl Solo","team":"service","queues":["service"]"#),
        ev("o1", "08:01:00", "call_offered", r#""call":"c1","queue":"orders","customer":"+4930123456""#),
        ev("a1", "08:01:10", "call_answered", r#""call":"c1","agent":"agent.anna.berger""#),
        ev("s1", "08:02:00", "sale", r#""sale":"s1","agent":"agent.anna.berger","call":"c1","kind":"new","quantity":2,"unit_price":100.0"#),
        ev("e1", "08:03:00", "call_ended", r#""call":"c1""#),
        ev("o2", "08:04:00", "call_offered", r#""call":"c2","queue":"service","customer":"CUST-0815""#),
        ev("a2", "08:04:05", "call_answered", r#""call":"c2","agent":"agent.carl.solo""#),
        ev("s2", "08:05:00", "sale", r#""sale":"s2","agent":"agent.carl.solo","call":"c2","kind":"upgrade","quantity":1,"unit_price":480.0,"previous_value":300.0"#),
        ev("e2", "08:06:00", "call_ended", r#""call":"c2""#),
        ev("t1", "08:07:00", "task_created", r#""task":"k1","kind":"callback","queue":"orders","customer":"CUST-4711","due":"2026-03-02T08:08:00Z""#),
        ev("t2", "08:07:00", "task_assigned", r#""task":"k1","agent":"agent.bob.kunz""#),
        ev("t3", "08:07:00", "task_created", r#""task":"k2","kind":"callback","queue":"service","customer":"CUST-0815""#),
        ev("t4", "08:07:30", "task_assigned", r#""task":"k2","agent":"agent.carl.solo""#),
        // The desk's clock passes k1's deadline: it is overdue.
        ev("hb", "08:10:00", "heartbeat", ""),
    ]
    .join("\n")
}

async fn ingest(d: &Daemon) {
    let r = client()
        .post(d.url("/api/v1/events"))
        .bearer_auth(INGEST)
        .body(desk())
        .send()
        .await
        .expect("post");
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    assert!(status.is_success(), "{status}: {body}");
}

/// Status and raw body of a GET, with an optional token.
async fn raw(d: &Daemon, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = client().get(d.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("get");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// The first feed message (the snapshot), raw.
async fn feed(d: &Daemon, token: Option<&str>) -> Result<String, String> {
    let q = token.map(|t| format!("?token={t}")).unwrap_or_default();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws{q}", d.http))
        .await
        .map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Ok(t.to_string()),
            Ok(Some(Ok(_))) => continue,
            other => return Err(format!("{other:?}")),
        }
    }
}

/// Every output a reader gets, as (what, bytes).
async fn outputs(d: &Daemon, token: Option<&str>) -> Vec<(String, u16, String)> {
    let mut out = Vec::new();
    for path in ["/api/v1/snapshot", "/api/v1/backlog", "/metrics"] {
        let (status, body) = raw(d, path, token).await;
        out.push((path.to_string(), status, body));
    }
    match feed(d, token).await {
        Ok(text) => out.push(("/ws".into(), 200, text)),
        Err(e) => out.push(("/ws".into(), 401, e)),
    }
    out
}

fn assert_none(who: &str, outs: &[(String, u16, String)], secrets: &[&str]) {
    for (path, status, body) in outs {
        assert_eq!(*status, 200, "{who} {path}: {body}");
        for s in secrets {
            assert!(!body.contains(s), "{who} sees {s:?} in {path}: {body}");
        }
    }
}

#[tokio::test]
async fn no_output_shows_a_person_or_customer_the_role_may_not_see() {
    let d = Daemon::start(&desk_config(true, "pseudonyms"));
    ingest(&d).await;
    let secrets: Vec<&str> = IDS
        .iter()
        .chain(&NAMES)
        .chain(&CUSTOMERS)
        .copied()
        .collect();

    // The wallboard role: pseudonyms only, no customers, no agent series.
    let wall = outputs(&d, Some(WALL)).await;
    assert_none("wallboard", &wall, &secrets);
    let metrics = &wall[2].2;
    assert!(!metrics.contains("callwatch_agent_"), "{metrics}");
    assert!(
        metrics.contains("callwatch_queue_calls_waiting"),
        "still a scrape"
    );
    let snap: serde_json::Value = serde_json::from_str(&wall[0].2).expect("json");
    let agents = snap["agents"].as_array().expect("agents");
    assert_eq!(agents.len(), 3, "{snap}");
    for a in agents {
        assert!(
            a["agent"].as_str().is_some_and(|l| l.starts_with("Agent ")),
            "{a}"
        );
        for per_person in [
            "talk_s",
            "hold_s",
            "wrap_s",
            "idle_s_today",
            "paused_s_today",
            "today",
            "sales",
            "contacts_handled",
        ] {
            assert!(
                a.get(per_person).is_none(),
                "wallboard sees {per_person}: {a}"
            );
        }
    }
    let backlog: serde_json::Value = serde_json::from_str(&wall[1].2).expect("json");
    let k1 = backlog["tasks"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["task"] == "k1"))
        .expect("k1 listed");
    assert!(
        k1["agent"]
            .as_str()
            .is_some_and(|l| l.starts_with("Agent ")),
        "{k1}"
    );

    // A request without a token needs the read token here.
    for (path, status, body) in outputs(&d, None).await {
        assert_eq!(status, 401, "anonymous {path}: {body}");
        for s in &secrets {
            assert!(!body.contains(s), "anonymous sees {s:?} in {path}");
        }
    }

    // Supervisors (supervisor or read token) see people and customers:
    // what the checks above find absent is really there to find.
    for token in [SUP, READ] {
        let sup = outputs(&d, Some(token)).await;
        let all: String = sup.iter().map(|o| o.2.as_str()).collect();
        for s in IDS.iter().chain(&CUSTOMERS[..1]) {
            assert!(all.contains(s), "supervisor misses {s}");
        }
        assert!(sup[0].2.contains("Anna Berger"), "names in the snapshot");
        assert!(sup[2]
            .2
            .contains("callwatch_agent_state{agent=\"agent.anna.berger\""));
        // Never a customer as a metric label, for anyone.
        for c in CUSTOMERS {
            assert!(!sup[2].2.contains(c), "customer {c} in /metrics");
        }
    }
}

#[tokio::test]
async fn anonymous_is_the_wallboard_without_a_read_token_and_names_never_show_ids() {
    let d = Daemon::start(&desk_config(false, "names"));
    ingest(&d).await;
    let ids_and_customers: Vec<&str> = IDS.iter().chain(&CUSTOMERS).copied().collect();
    for (who, token) in [("anonymous", None), ("wallboard", Some(WALL))] {
        let outs = outputs(&d, token).await;
        assert_none(who, &outs, &ids_and_customers);
        assert!(
            !outs[2].2.contains("callwatch_agent_"),
            "{who}: agent series"
        );
        // Names are what this configuration shows.
        assert!(outs[0].2.contains("Anna Berger"), "{who}: {}", outs[0].2);
        assert!(outs[3].2.contains("Anna Berger"), "{who}: {}", outs[3].2);
    }
}

#[tokio::test]
async fn a_group_smaller_than_min_group_size_shows_no_one_persons_figures() {
    let d = Daemon::start(&desk_config(true, "pseudonyms"));
    ingest(&d).await;
    let queue = |snap: &serde_json::Value, name: &str| -> serde_json::Value {
        snap["queues"]
            .as_array()
            .and_then(|q| q.iter().find(|q| q["name"] == name).cloned())
            .expect("queue")
    };
    let wall = get_json_as(&d, "/api/v1/snapshot", WALL).await;
    let sup = get_json_as(&d, "/api/v1/snapshot", SUP).await;
    // `service` is Carl alone: his sale and handling time are his.
    let (ws, ss) = (queue(&wall, "service"), queue(&sup, "service"));
    assert_eq!(ss["sales"]["revenue"], 480.0, "{ss}");
    assert_eq!(ss["today_contacts"]["conversion"], 1.0, "{ss}");
    assert_eq!(ws["sales"]["revenue"], 0.0, "{ws}");
    assert_eq!(ws["today_contacts"]["revenue"], 0.0, "{ws}");
    assert!(ws["today_contacts"]["aht_s"].is_null(), "{ws}");
    assert!(ws["today_contacts"]["conversion"].is_null(), "{ws}");
    assert!(
        ws["withheld"].as_array().is_some_and(|w| !w.is_empty()),
        "{ws}"
    );
    assert!(wall["teams"]
        .as_array()
        .expect("teams")
        .iter()
        .all(|t| t["name"] != "service"));
    // Service figures of the queue stay: they are about the callers.
    assert_eq!(ws["today"]["answered"], 1, "{ws}");
    // `orders` has two agents: its figures are shown.
    assert_eq!(queue(&wall, "orders")["sales"]["revenue"], 200.0);

    // The same on the feed and on /metrics.
    let board: serde_json::Value =
        serde_json::from_str(&feed(&d, Some(WALL)).await.expect("feed")).expect("json");
    let tile = &board["board"]["queues"]["service"];
    for k in ["aht_s", "talk_s", "conversion", "revenue_today"] {
        assert!(tile[k].is_null(), "{k} on the wallboard: {tile}");
    }
    assert_eq!(board["board"]["queues"]["orders"]["revenue_today"], 200.0);
    let (_, wall_metrics) = raw(&d, "/metrics", Some(WALL)).await;
    let m = parse_metrics(&wall_metrics);
    assert!(!m
        .keys()
        .any(|k| k.starts_with("callwatch_revenue_total{queue=\"service\"")));
    assert!(!m
        .keys()
        .any(|k| k.starts_with("callwatch_call_talk_seconds_count{queue=\"service\"")));
    assert_eq!(
        metric(&m, "callwatch_revenue_total{queue=\"orders\"}"),
        200.0
    );
    let (_, sup_metrics) = raw(&d, "/metrics", Some(SUP)).await;
    assert_eq!(
        metric(
            &parse_metrics(&sup_metrics),
            "callwatch_revenue_total{queue=\"service\"}"
        ),
        480.0
    );
}

#[tokio::test]
async fn per_agent_metrics_without_a_token_that_could_read_them_is_refused() {
    let cfg = config("").replace(
        "anonymous_role = \"supervisor\"",
        "anonymous_role = \"wallboard\"",
    );
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, cfg).expect("write");
    let out = std::process::Command::new(BIN)
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run");
    let err =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("privacy.per_agent_metrics"), "{err}");
    assert!(err.contains("read_token"), "{err}");
}
