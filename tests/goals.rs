//! The goal matrix end to end, on the real daemon: scorecard arithmetic
//! for a team, a partner and a site checked against numbers worked out by
//! hand here; the guardrail withholding the sales credit of an interval
//! in which the service level was below its minimum (and crediting the
//! same sales in a healthy one); and one threshold walked through the
//! wallboard status, the alert rule, the dashboard and the points.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

/// Team `sales` (queue orders) has a bad second interval; team `steady`
/// (queue orders2) makes the same sales with good service; team `ext`
/// (queue ext_orders) is run by the partner `acme`.
fn goals_config(sl_minimum: f64) -> String {
    format!(
        r#"
[server]
http = "127.0.0.1:0"
ingest_tcp = "127.0.0.1:0"
[clock]
mode = "event"
[privacy]
anonymous_role = "supervisor"
min_group_size = 0
[defaults]
site = "hq"
timezone = "Europe/Berlin"
short_abandon_threshold = "5s"
service_level_threshold = "20s"
[sites.hq]
timezone = "Europe/Berlin"
[[queues]]
name = "orders"
team = "sales"
[[queues]]
name = "orders2"
team = "steady"
[[queues]]
name = "ext_orders"
team = "ext"
[teams.sales]
[teams.steady]
[teams.ext]
partner = "acme"
[goals.guardrail]
mode = "every_primary"
interval = "15m"
[goals.objectives.service]
serves = "customers reach us"
[goals.objectives.revenue]
[goals.matrix.sl]
objective = "service"
kpi = "service_level"
category = "primary"
weight = 3
target = 0.8
warn = 0.75
minimum = {sl_minimum}
alert = true
for = "5m"
severity = "warning"
[goals.matrix.aht]
objective = "service"
kpi = "aht"
category = "primary"
weight = 1
target = 300
warn = 420
minimum = 600
[goals.matrix.revenue]
objective = "revenue"
kpi = "revenue"
category = "sales"
weight = 2
target = 1000
warn = 500
minimum = 0
[goals.matrix.conversion]
objective = "revenue"
kpi = "conversion"
category = "sales"
weight = 1
target = 0.5
warn = 0.3
minimum = 0.1
"#
    )
}

/// One call: offered at `hm:00`, answered after `wait` s, 120 s of talk,
/// 60 s of wrap; with a sale of `price` 5 s after the call ends.
fn call(
    out: &mut Vec<String>,
    id: &str,
    queue: &str,
    agent: &str,
    hm: &str,
    wait: u32,
    price: Option<u32>,
) {
    let t = |s: u32| format!("{}:{:02}", add_min(hm, s / 60), s % 60);
    out.push(ev(
        &format!("{id}-o"),
        &t(0),
        "call_offered",
        &format!(r#""call":"{id}","queue":"{queue}""#),
    ));
    out.push(ev(
        &format!("{id}-a"),
        &t(wait),
        "call_answered",
        &format!(r#""call":"{id}","agent":"{agent}""#),
    ));
    out.push(ev(
        &format!("{id}-e"),
        &t(wait + 120),
        "call_ended",
        &format!(r#""call":"{id}""#),
    ));
    if let Some(p) = price {
        out.push(ev(
            &format!("{id}-s"),
            &t(wait + 125),
            "sale",
            &format!(
                r#""sale":"s-{id}","agent":"{agent}","call":"{id}","kind":"new","unit_price":{p}"#
            ),
        ));
    }
    out.push(ev(
        &format!("{id}-w"),
        &t(wait + 180),
        "wrap_ended",
        &format!(r#""call":"{id}""#),
    ));
}

/// "08:30" plus `m` minutes, as "HH:MM".
fn add_min(hm: &str, m: u32) -> String {
    let (h, mm) = hm.split_once(':').expect("HH:MM");
    let total = h.parse::<u32>().expect("h") * 60 + mm.parse::<u32>().expect("m") + m;
    format!("{:02}:{:02}", total / 60, total % 60)
}

fn day() -> Vec<String> {
    let mut e = Vec::new();
    for (agent, team, queue) in [
        ("a1", "sales", "orders"),
        ("a2", "sales", "orders"),
        ("a3", "sales", "orders"),
        ("a4", "sales", "orders"),
        ("g1", "steady", "orders2"),
        ("g2", "steady", "orders2"),
        ("g3", "steady", "orders2"),
        ("g4", "steady", "orders2"),
        ("b1", "ext", "ext_orders"),
        ("b2", "ext", "ext_orders"),
    ] {
        e.push(ev(
            &format!("login-{agent}"),
            "07:55:00",
            "agent_login",
            &format!(r#""agent":"{agent}","team":"{team}","queues":["{queue}"]"#),
        ));
    }
    // 08:00-08:15 UTC (09:00-09:15 in Berlin): good service everywhere.
    // orders and orders2: 4 calls each answered in 10 s, two sales of 300.
    for (q, p) in [("orders", "a"), ("orders2", "g")] {
        for i in 1..=4 {
            let price = (i <= 2).then_some(300);
            call(
                &mut e,
                &format!("{q}-x{i}"),
                q,
                &format!("{p}{i}"),
                &format!("08:0{}", i * 2),
                10,
                price,
            );
        }
    }
    call(&mut e, "ext-1", "ext_orders", "b1", "08:02", 10, Some(500));
    call(&mut e, "ext-2", "ext_orders", "b2", "08:04", 10, None);
    // 08:30-08:45: orders answers 1 of 4 within 20 s (SL 0.25); orders2
    // answers all within 10 s. Both sell 2 x 200.
    for (q, p, slow) in [("orders", "a", 60), ("orders2", "g", 10)] {
        for i in 1..=4 {
            let wait = if i == 1 { 10 } else { slow };
            let price = (i <= 2).then_some(200);
            call(
                &mut e,
                &format!("{q}-y{i}"),
                q,
                &format!("{p}{i}"),
                &format!("08:3{}", i * 2),
                wait,
                price,
            );
        }
    }
    // "Now" on the event clock.
    e.push(ev("hb", "08:50:00", "heartbeat", ""));
    e
}

fn card<'a>(cards: &'a Value, scope: &str) -> &'a Value {
    cards["scorecards"]
        .as_array()
        .expect("scorecards")
        .iter()
        .find(|c| c["scope"] == scope)
        .unwrap_or_else(|| panic!("no scorecard for {scope}: {cards}"))
}

fn goal<'a>(card: &'a Value, id: &str) -> &'a Value {
    card["goals"]
        .as_array()
        .expect("goals")
        .iter()
        .find(|g| g["goal"] == id)
        .unwrap_or_else(|| panic!("no goal {id} in {card}"))
}

fn goal_ids(card: &Value) -> Vec<&str> {
    card["goals"]
        .as_array()
        .expect("goals")
        .iter()
        .filter_map(|g| g["goal"].as_str())
        .collect()
}

fn close(a: &Value, b: f64, what: &str) {
    let v = a
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: {a} is not a number"));
    assert!((v - b).abs() < 1e-9, "{what}: {v} != {b}");
}

async fn started(sl_minimum: f64) -> Daemon {
    let d = Daemon::start(&goals_config(sl_minimum));
    let (status, reply) = post(&d, day().join("\n")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["rejected"], serde_json::json!([]), "{reply}");
    d
}

#[tokio::test]
async fn scorecards_match_the_hand_computed_day_and_the_guardrail_withholds_a_bad_interval() {
    let d = started(0.6).await;
    let all = get_json(&d, "/api/v1/scorecards").await;

    // Team sales. Service level today: (4 + 1) in threshold / 8 = 0.625;
    // attainment (0.625 - 0.6) / (0.8 - 0.6) = 0.125, x weight 3 = 0.375.
    // AHT 120 + 60 = 180 s, better than target: 1 point of 1.
    // Primary score (0.375 + 1) / (3 + 1) = 0.34375 (shown to 3 places).
    let sales = card(&all, "team:sales");
    let sl = goal(sales, "sl");
    close(&sl["value"], 0.625, "sales sl");
    assert_eq!(
        (sl["numerator"].as_f64(), sl["denominator"].as_f64()),
        (Some(5.0), Some(8.0))
    );
    assert_eq!(sl["status"], "warn");
    close(&sl["points"], 0.375, "sales sl points");
    close(&goal(sales, "aht")["value"], 180.0, "sales aht");
    close(&goal(sales, "aht")["points"], 1.0, "sales aht points");
    close(&sales["primary_score"], 0.344, "sales primary score");
    // 09:30-09:45 Berlin had SL 1/4: its 400 of revenue is not credited.
    // Revenue raw 1000, credited 600: 2 x 600/1000 = 1.2 points.
    // Conversion raw 4/8, credited 2/8 = 0.25: (0.25-0.1)/(0.5-0.1) = 0.375.
    // Sales score (1.2 + 0.375) / 3 = 0.525.
    let rev = goal(sales, "revenue");
    close(&rev["value"], 1000.0, "sales raw revenue");
    close(&rev["credited"], 600.0, "sales credited revenue");
    close(&rev["points"], 1.2, "sales revenue points");
    close(
        &goal(sales, "conversion")["value"],
        0.5,
        "sales raw conversion",
    );
    close(
        &goal(sales, "conversion")["credited"],
        0.25,
        "sales credited conversion",
    );
    close(
        &goal(sales, "conversion")["points"],
        0.375,
        "sales conversion points",
    );
    close(&sales["sales_score"], 0.525, "sales score");
    let g = &sales["guardrail"];
    assert_eq!(g["met"], false);
    close(&g["withheld_revenue"], 400.0, "withheld");
    close(&g["credited_revenue"], 600.0, "credited");
    close(
        &g["withheld_incremental"],
        400.0,
        "withheld incremental (new sales)",
    );
    assert_eq!(
        (
            g["intervals"].as_u64(),
            g["intervals_failed"].as_u64(),
            g["withheld_sales"].as_u64()
        ),
        (Some(2), Some(1), Some(2))
    );
    assert_eq!(
        g["reasons"],
        serde_json::json!(["sl 0.25 below minimum 0.6 (09:30–09:45)"])
    );

    // Team steady made the same sales with good service: all credited,
    // and its raw revenue is the same as sales'.
    let steady = card(&all, "team:steady");
    close(
        &goal(steady, "revenue")["value"],
        1000.0,
        "steady raw revenue",
    );
    close(
        &goal(steady, "revenue")["credited"],
        1000.0,
        "steady credited",
    );
    assert_eq!(steady["guardrail"]["met"], true);
    close(
        &steady["guardrail"]["withheld_revenue"],
        0.0,
        "steady withheld",
    );
    close(
        &goal(steady, "revenue")["points"],
        2.0,
        "steady revenue points",
    );

    // Partner acme (queue ext_orders): SL 1.0 and AHT 180: primary 1.0.
    // Revenue 500: 2 x 0.5 = 1; conversion 1/2 = 0.5: 1. Sales 2/3.
    let acme = card(&all, "partner:acme");
    close(&acme["primary_score"], 1.0, "acme primary");
    close(&goal(acme, "revenue")["points"], 1.0, "acme revenue points");
    close(&acme["sales_score"], 0.667, "acme sales score");
    // The in-house comparison column is orders + orders2.
    let own = card(&all, "partner:in_house");
    close(&goal(own, "sl")["value"], 13.0 / 16.0, "in-house sl");

    // Site hq: all three queues. SL (5 + 8 + 2) / 18 = 0.8333: capped, 3.
    // Primary (3 + 1) / 4 = 1. Interval 09:30 at the site: (1 + 4) / 8 =
    // 0.625, above 0.6, so nothing is withheld at site level.
    let hq = card(&all, "site:hq");
    close(&goal(hq, "sl")["value"], 15.0 / 18.0, "site sl");
    close(&hq["primary_score"], 1.0, "site primary");
    close(&goal(hq, "revenue")["value"], 2500.0, "site revenue");
    close(&hq["guardrail"]["withheld_revenue"], 0.0, "site withheld");

    // One scope, and the comparison by partner.
    let one = get_json(&d, "/api/v1/scorecards?scope=team:sales&period=today").await;
    assert_eq!(one["scorecards"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["period"], "today");
    let cmp = get_json(&d, "/api/v1/scorecards/compare?by=partner").await;
    let sl_row = cmp["goals"]
        .as_array()
        .expect("goals")
        .iter()
        .find(|g| g["goal"] == "sl")
        .expect("sl row");
    close(&sl_row["scopes"]["acme"]["value"], 1.0, "compare acme");
    close(
        &sl_row["scopes"]["in_house"]["value"],
        13.0 / 16.0,
        "compare in-house",
    );

    // The same figures on /metrics.
    let m = parse_metrics(&metrics_text(&d).await);
    close(
        &Value::from(metric(
            &m,
            r#"callwatch_guardrail_withheld_revenue{scope_kind="team",scope="sales"}"#,
        )),
        400.0,
        "metric withheld",
    );
    close(
        &Value::from(metric(
            &m,
            r#"callwatch_score{scope_kind="partner",scope="acme",category="primary"}"#,
        )),
        1.0,
        "metric acme score",
    );
}

#[tokio::test]
async fn bad_scorecard_queries_get_a_clear_error() {
    let d = started(0.6).await;
    for (path, code, needle) in [
        ("/api/v1/scorecards?scope=team", 400, "must be site:NAME"),
        (
            "/api/v1/scorecards?scope=team:nobody",
            404,
            "no scorecard for team:nobody",
        ),
        ("/api/v1/scorecards?period=year", 400, "not one of today"),
        (
            "/api/v1/scorecards/compare?by=planet",
            400,
            "not one of site",
        ),
        ("/api/v1/scorecards?colour=red", 400, "unknown field"),
    ] {
        let r = client().get(d.url(path)).send().await.expect("get");
        assert_eq!(r.status().as_u16(), code, "{path}");
        let text = r.text().await.unwrap_or_default();
        assert!(text.contains(needle), "{path}: {text}");
    }
}

fn generated(cmd: &str, cfg: &str) -> std::collections::BTreeMap<String, String> {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, cfg).expect("write");
    let out = dir.path().join("out");
    let st = Command::new(BIN)
        .args([cmd, "--config"])
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("runs");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let mut files = std::collections::BTreeMap::new();
    for e in walk(&out) {
        let rel = e.strip_prefix(&out).expect("under").display().to_string();
        files.insert(rel, std::fs::read_to_string(&e).expect("read"));
    }
    files
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The minimum steps of the goal panel for `sl` in the goals board.
fn sl_panel_steps(files: &std::collections::BTreeMap<String, String>) -> Vec<f64> {
    let d: Value = serde_json::from_str(&files["callwatch-goals.json"]).expect("json");
    let p = d["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .find(|p| {
            p["description"]
                .as_str()
                .is_some_and(|s| s.contains("(goal:sl)"))
        })
        .expect("sl panel")
        .clone();
    p["fieldConfig"]["defaults"]["thresholds"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["value"].as_f64())
        .collect()
}

#[tokio::test]
async fn one_threshold_moves_the_wallboard_the_alert_the_dashboard_and_the_points() {
    // The sales team's service level today is 0.625: with a minimum of
    // 0.6 it is "warn" and earns points; with 0.65 it is "critical".
    let mut seen = Vec::new();
    for minimum in [0.6, 0.65] {
        let cfg = goals_config(minimum);
        let d = started(minimum).await;
        // Wallboard: the team's goal status the feed colours the tile by.
        let snap = get_json(&d, "/api/v1/snapshot").await;
        let team = snap["teams"]
            .as_array()
            .expect("teams")
            .iter()
            .find(|t| t["name"] == "sales")
            .expect("team sales")
            .clone();
        let status = team["kpis"]["sl"]["status"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let cards = get_json(&d, "/api/v1/scorecards?scope=team:sales").await;
        let points = goal(card(&cards, "team:sales"), "sl")["points"].as_f64();
        let rules = generated("rules", &cfg);
        let alert = rules["alerts.yml"]
            .lines()
            .find(|l| l.contains(r#"goal="sl""#))
            .expect("sl alert")
            .trim()
            .to_string();
        let steps = sl_panel_steps(&generated("dashboards", &cfg));
        seen.push((status, points, alert, steps));
    }
    let (a, b) = (&seen[0], &seen[1]);
    assert_eq!(
        (a.0.as_str(), b.0.as_str()),
        ("warn", "critical"),
        "wallboard status"
    );
    assert_eq!((a.1, b.1), (Some(0.375), Some(0.0)), "scorecard points");
    assert!(
        a.2.ends_with("< 0.6") && b.2.ends_with("< 0.65"),
        "alert: {} / {}",
        a.2,
        b.2
    );
    assert!(
        a.3.contains(&0.6) && b.3.contains(&0.65) && !b.3.contains(&0.6),
        "dashboard: {:?} / {:?}",
        a.3,
        b.3
    );
}

#[test]
fn the_goal_sheet_names_every_goal_with_its_measure_and_thresholds() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, goals_config(0.6)).expect("write");
    let out = Command::new(BIN)
        .arg("goals")
        .arg("--config")
        .arg(&path)
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "sl [primary] Service level",
        "minimum       60 %",
        "revenue [sales] Revenue",
        "calls answered within the queue's service-level threshold",
        "Guardrail: Sales goals are credited only for the 15m intervals in which every primary goal",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
}

#[tokio::test]
async fn the_goals_page_is_served() {
    let d = started(0.6).await;
    let r = client().get(d.url("/goals")).send().await.expect("get");
    assert_eq!(r.status().as_u16(), 200);
    let html = r.text().await.unwrap_or_default();
    assert!(html.contains("<h3 id=\"goal-sl\">Service level"), "{html}");
    let m = get_json(&d, "/api/v1/goals").await;
    assert_eq!(m["goals"][0]["kpi"], "service_level");
    assert_eq!(m["goals"][0]["overrides"], serde_json::json!({}));
}

/// The demo's traffic (the simulator) on the shipped configuration: within
/// a few minutes the sales team's rush costs it service level and the
/// guardrail withholds part of its sales credit, while the partner's
/// scorecard sits beside the desk's own.
#[tokio::test]
async fn the_demo_shows_withheld_credit_and_a_partner_within_minutes() {
    let cfg = shipped_config();
    let d = Daemon::start(&cfg);
    // Ten minutes of the demo's default traffic (4 events/s).
    let out = Command::new(BIN)
        .args([
            "simulate", "--stdout", "--rate", "4", "--agents", "24", "--events", "2400",
        ])
        .output()
        .expect("simulate");
    assert!(out.status.success());
    let (status, reply) = post(&d, String::from_utf8_lossy(&out.stdout).into_owned()).await;
    assert_eq!(status, 200, "{reply}");
    let all = get_json(&d, "/api/v1/scorecards").await;
    let sales = card(&all, "team:sales");
    let g = &sales["guardrail"];
    assert_eq!(g["met"], false, "{g}");
    assert!(g["withheld_revenue"].as_f64() > Some(0.0), "{g}");
    assert!(!g["reasons"].as_array().expect("reasons").is_empty());
    // Raw revenue is all of it; the credited part is less.
    let rev = goal(sales, "revenue_today");
    assert!(rev["credited"].as_f64() < rev["value"].as_f64(), "{rev}");
    let acme = card(&all, "partner:acme");
    assert!(goal(acme, "service_level")["value"].is_number(), "{acme}");
    assert!(card(&all, "partner:in_house")["primary_score"].is_number());
}

/// A wallboard viewer of a team smaller than `min_group_size` sees its
/// service goals, not the goals one person's work can be read from.
#[tokio::test]
async fn small_scopes_scorecards_follow_the_privacy_policy() {
    let cfg = goals_config(0.6).replace(
        "anonymous_role = \"supervisor\"\nmin_group_size = 0",
        "anonymous_role = \"wallboard\"\nmin_group_size = 5",
    );
    let d = Daemon::start(&cfg);
    let (status, reply) = post(&d, day().join("\n")).await;
    assert_eq!(status, 200, "{reply}");
    let all = get_json(&d, "/api/v1/scorecards").await;
    let sales = card(&all, "team:sales");
    assert_eq!(goal_ids(sales), ["sl"], "{sales}");
    assert!(sales["sales_score"].is_null());
    assert_eq!(sales["guardrail"]["withheld_revenue"], 0.0);
    for w in ["aht", "revenue", "conversion"] {
        assert!(
            sales["withheld"]
                .as_array()
                .expect("withheld")
                .iter()
                .any(|x| x == w),
            "{sales}"
        );
    }
    // The whole site has 10 agents: nothing withheld there.
    assert!(card(&all, "site:hq")["withheld"].is_null());
    let m = metrics_text(&d).await;
    assert!(
        !m.contains(r#"scope_kind="team",scope="sales",goal="revenue""#),
        "per-person figures of a small team on /metrics"
    );
}

#[tokio::test]
async fn agent_scorecards_only_where_the_policy_allows_and_their_credit_follows_the_team() {
    let on = goals_config(0.6).replace(
        "min_group_size = 0",
        "min_group_size = 0\nagent_scorecards = true",
    );
    let d = Daemon::start(&on);
    let (status, reply) = post(&d, day().join("\n")).await;
    assert_eq!(status, 200, "{reply}");
    let cards = get_json(&d, "/api/v1/scorecards?scope=agent:a1").await;
    let a1 = card(&cards, "agent:a1");
    // Only the per-person goals: aht, revenue, conversion (no sl).
    assert_eq!(goal_ids(a1), ["aht", "conversion", "revenue"], "{a1}");
    // a1 sold 300 at 09:04 Berlin (team sales healthy) and 200 at 09:34
    // (team sales below its SL minimum): 200 withheld, 300 credited.
    let g = &a1["guardrail"];
    assert_eq!(g["met"], false, "{a1}");
    close(&g["withheld_revenue"], 200.0, "agent withheld");
    close(&g["credited_revenue"], 300.0, "agent credited");
    assert_eq!(g["intervals"], 2);
    assert_eq!(g["intervals_failed"], 1);
    let rev = goal(a1, "revenue");
    close(&rev["value"], 500.0, "agent raw revenue");
    close(&rev["credited"], 300.0, "agent credited revenue");
    // Revenue: 2 x 300/1000 = 0.6 points. Conversion credited 1/2 = 0.5,
    // at target: 1 point. Sales score 1.6 / 3 = 0.533. AHT 180 s: 1 of 1.
    close(&rev["points"], 0.6, "agent revenue points");
    close(
        &goal(a1, "conversion")["points"],
        1.0,
        "agent conversion points",
    );
    close(&a1["sales_score"], 0.533, "agent sales score");
    close(&a1["primary_score"], 1.0, "agent primary score");
    assert_eq!(goal(a1, "aht")["period"], "today");
    // Never an agent id as a label without per-agent metrics.
    let m = metrics_text(&d).await;
    assert!(
        !m.contains(r#"scope_kind="agent""#),
        "agent scorecards on /metrics"
    );

    // The wallboard role never sees them, even with the option on.
    let wb = Daemon::start(&on.replace(
        "anonymous_role = \"supervisor\"",
        "anonymous_role = \"wallboard\"",
    ));
    let (status, reply) = post(&wb, day().join("\n")).await;
    assert_eq!(status, 200, "{reply}");
    let all = get_json(&wb, "/api/v1/scorecards").await;
    assert!(
        all["scorecards"]
            .as_array()
            .expect("scorecards")
            .iter()
            .all(|c| c["kind"] != "agent"),
        "{all}"
    );
    // Off (the default): not even a supervisor gets one.
    let off = started(0.6).await;
    let r = reqwest::get(off.url("/api/v1/scorecards?scope=agent:a1"))
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn scorecards_ride_the_feed_for_clients_that_ask_scoped_and_redacted_like_the_api() {
    let d = started(0.6).await;
    let api = get_json(&d, "/api/v1/scorecards").await;

    // Only on request, and only the scope's cards.
    let (_plain, plain) = ws_snapshot(&d, "?team=sales").await;
    assert!(plain["board"].get("scorecards").is_none(), "{plain}");
    let (mut ws, snap) = ws_snapshot(&d, "?team=sales&scorecards=1").await;
    let cards = &snap["board"]["scorecards"];
    assert_eq!(keys(cards), ["queue:orders", "team:sales"]);
    assert_eq!(
        cards["team:sales"],
        *card(&api, "team:sales"),
        "the feed's card is the API's"
    );
    let (_all, whole) = ws_snapshot(&d, "?scorecards=1").await;
    let all = keys(&whole["board"]["scorecards"]);
    for want in ["site:hq", "partner:acme", "team:ext", "queue:orders2"] {
        assert!(all.iter().any(|k| k == want), "{want} missing: {all:?}");
    }
    assert!(!all.iter().any(|k| k.starts_with("agent:")), "{all:?}");

    // A sale changes the card, and the change arrives as a delta (linked
    // to a call of the team's queue: a scope's sums are its queues').
    let before = goal(card(&api, "team:sales"), "revenue")["value"].clone();
    let (status, _) = post(
        &d,
        ev(
            "late-sale",
            "08:51:00",
            "sale",
            r#""sale":"s-late","agent":"a3","call":"orders-x3","kind":"new","unit_price":50"#,
        ),
    )
    .await;
    assert_eq!(status, 200);
    let delta = ws_until(&mut ws, |m| {
        m["type"] == "delta" && m["set"]["scorecards"].get("team:sales").is_some()
    })
    .await;
    let after = goal(&delta["set"]["scorecards"]["team:sales"], "revenue")["value"].clone();
    close(
        &after,
        before.as_f64().expect("revenue before") + 50.0,
        "revenue on the feed",
    );

    // A wallboard viewer of a small team gets the card without its
    // personal goals, as from the API.
    let cfg = goals_config(0.6)
        .replace(
            "anonymous_role = \"supervisor\"",
            "anonymous_role = \"wallboard\"",
        )
        .replace("min_group_size = 0", "min_group_size = 3");
    let w = Daemon::start(&cfg);
    let (status, _) = post(&w, day().join("\n")).await;
    assert_eq!(status, 200);
    let (_ws, snap) = ws_snapshot(&w, "?scorecards=1").await;
    let ext = &snap["board"]["scorecards"]["team:ext"];
    assert_eq!(goal_ids(ext), ["sl"], "{ext}");
    assert!(
        ext["withheld"]
            .as_array()
            .is_some_and(|w| w.iter().any(|g| g == "revenue")),
        "{ext}"
    );
    assert_eq!(ext["sales_score"], Value::Null);
    let sales = &snap["board"]["scorecards"]["team:sales"];
    assert!(goal_ids(sales).contains(&"revenue"), "{sales}");
    let api_ext = get_json(&w, "/api/v1/scorecards?scope=team:ext").await;
    assert_eq!(
        *ext,
        *card(&api_ext, "team:ext"),
        "same redaction as the API"
    );
}
