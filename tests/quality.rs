//! Quality management on the real daemon: QA evaluations and tags are
//! validated against the contacts callwatch saw handled (a refusal
//! changes nothing), QA scores carry a t interval that matches a hand
//! computation, a score too uncertain to rank on is marked so in the
//! scorecard, and roles without the quality grant see none of it.

mod common;

use common::*;
use serde_json::Value;

const WALL: &str = "wallboard-token-0123456789";
const SUP: &str = "supervisor-token-0123456789";
const QA: &str = "qa-token-000000000000000000";

fn qa_config(qa_teams: &str) -> String {
    format!(
        r#"
[server]
http = "127.0.0.1:0"
ingest_tcp = "127.0.0.1:0"
[auth]
wallboard_token = "{WALL}"
supervisor_token = "{SUP}"
qa_token = "{QA}"
[clock]
mode = "event"
[privacy]
anonymous_role = "wallboard"
min_group_size = 0
qa_teams = [{qa_teams}]
[defaults]
site = "hq"
timezone = "Europe/Berlin"
[sites.hq]
[[queues]]
name = "orders"
team = "sales"
[[queues]]
name = "service"
team = "service"
[quality]
confidence = 0.95
max_interval_width = 20
period = "month"
[goals.objectives.quality]
[goals.matrix.qa]
objective = "quality"
kpi = "qa_score"
category = "primary"
weight = 1
target = 85
warn = 80
minimum = 70
"#
    )
}

/// A call in `queue` handled by `agent`, ended at `hms`.
fn handled(out: &mut Vec<String>, id: &str, queue: &str, agent: &str, hms: &str) {
    out.push(ev(
        &format!("{id}-o"),
        hms,
        "call_offered",
        &format!(r#""call":"{id}","queue":"{queue}""#),
    ));
    out.push(ev(
        &format!("{id}-a"),
        hms,
        "call_answered",
        &format!(r#""call":"{id}","agent":"{agent}""#),
    ));
    out.push(ev(
        &format!("{id}-e"),
        hms,
        "call_ended",
        &format!(r#""call":"{id}""#),
    ));
}

fn scored(id: &str, call: &str, agent: &str, evaluator: &str, score: f64) -> String {
    ev(
        id,
        "09:00:00",
        "qa_scored",
        &format!(
            r#""call":"{call}","agent":"{agent}","evaluator":"{evaluator}","form":"inbound-v1","score":{score}"#
        ),
    )
}

/// a1 (sales) scored 80, 90, 85, 95, 75; s1 (sales) 60; v1 (service) 88.
fn day() -> Vec<String> {
    let mut e = Vec::new();
    for (a, team, q) in [
        ("a1", "sales", "orders"),
        ("s1", "sales", "orders"),
        ("v1", "service", "service"),
    ] {
        e.push(ev(
            &format!("l-{a}"),
            "08:00:00",
            "agent_login",
            &format!(r#""agent":"{a}","team":"{team}","queues":["{q}"]"#),
        ));
    }
    for i in 0..5 {
        handled(
            &mut e,
            &format!("c{i}"),
            "orders",
            "a1",
            &format!("08:1{i}:00"),
        );
    }
    handled(&mut e, "c5", "orders", "s1", "08:20:00");
    handled(&mut e, "c6", "service", "v1", "08:21:00");
    for (i, s) in [80.0, 90.0, 85.0, 95.0, 75.0].into_iter().enumerate() {
        e.push(scored(&format!("q{i}"), &format!("c{i}"), "a1", "eva", s));
    }
    e.push(scored("q5", "c5", "s1", "eva", 60.0));
    e.push(scored("q6", "c6", "v1", "eva", 88.0));
    e.push(ev(
        "t1",
        "09:01:00",
        "contact_tagged",
        r#""call":"c0","agent":"a1","tags":["buying_signal","offer_made"]"#,
    ));
    e
}

fn score<'a>(v: &'a Value, scope: &str) -> &'a Value {
    v["qa"]["scores"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["scope"] == scope))
        .unwrap_or_else(|| panic!("no QA score for {scope}: {v}"))
}

fn near(v: &Value, want: f64, what: &str) {
    let got = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: {v} is not a number"));
    assert!((got - want).abs() < 1e-3, "{what}: {got} != {want}");
}

/// Student's t quantiles used below (two-sided 95 %): t(0.975; 4) and
/// t(0.975; 5), from the table.
const T4: f64 = 2.776_445;
const T5: f64 = 2.570_582;

async fn started(qa_teams: &str) -> Daemon {
    let d = Daemon::start(&qa_config(qa_teams));
    let (status, reply) = post(&d, day().join("\n")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["rejected"], serde_json::json!([]), "{reply}");
    d
}

#[tokio::test]
async fn qa_scores_carry_a_t_interval_that_matches_a_hand_computation() {
    let d = started("").await;
    let v = get_json_as(&d, "/api/v1/qa/scores", SUP).await;
    assert_eq!(v["qa"]["period"], "month");
    assert_eq!(v["qa"]["confidence"], 0.95);

    // a1: mean 85, sd sqrt(250 / 4), half-width t4 * sd / sqrt(5).
    let a1 = score(&v, "agent:a1");
    let sd = (250.0f64 / 4.0).sqrt();
    let half = T4 * sd / 5f64.sqrt();
    near(&a1["mean"], 85.0, "a1 mean");
    near(&a1["sd"], sd, "a1 sd");
    near(&a1["half_width"], half, "a1 half-width");
    near(&a1["lower"], 85.0 - half, "a1 lower");
    near(&a1["upper"], 85.0 + half, "a1 upper");
    assert_eq!(a1["n"], 5);
    assert_eq!(a1["method"], "t");
    assert_eq!(a1["display"], "85 ± 10 (n = 5)");
    assert_eq!(a1["enough"], true, "19.6 points wide, within 20");
    assert_eq!(a1["team"], "sales");

    // One evaluation has no interval: never enough.
    let s1 = score(&v, "agent:s1");
    assert_eq!(
        (s1["display"].as_str(), s1["enough"].as_bool()),
        (Some("60 (n = 1)"), Some(false))
    );
    assert!(s1["half_width"].is_null());

    // Team sales: 80, 90, 85, 95, 75, 60.
    let vals = [80.0, 90.0, 85.0, 95.0, 75.0, 60.0f64];
    let mean = vals.iter().sum::<f64>() / 6.0;
    let sd = (vals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 5.0).sqrt();
    let half = T5 * sd / 6f64.sqrt();
    let team = score(&v, "team:sales");
    near(&team["mean"], mean, "team mean");
    near(&team["half_width"], half, "team half-width");
    assert_eq!(team["enough"], false, "{:.1} points wide", 2.0 * half);
    near(
        &score(&v, "site:hq")["mean"],
        (vals.iter().sum::<f64>() + 88.0) / 7.0,
        "site mean",
    );

    // The scorecard's QA goal: the same mean, marked too uncertain to
    // score (no points) rather than ranked.
    let cards = get_json_as(&d, "/api/v1/scorecards?scope=team:sales", SUP).await;
    let g = &cards["scorecards"][0]["goals"][0];
    assert_eq!(g["kpi"], "qa_score");
    near(&g["value"], mean, "goal value");
    assert_eq!(g["status"], "not_enough_data");
    assert!(g["points"].is_null(), "{g}");
    near(&g["interval"]["half_width"], half, "goal interval");

    // A correction by the same evaluator replaces the score; a second
    // evaluator's counts on its own.
    let (status, reply) = post(
        &d,
        [
            scored("fix", "c4", "a1", "eva", 85.0),
            scored("second", "c4", "a1", "otto", 85.0),
        ]
        .join("\n"),
    )
    .await;
    assert_eq!(
        (status, &reply["rejected"]),
        (200, &serde_json::json!([])),
        "{reply}"
    );
    let v = get_json_as(&d, "/api/v1/qa/scores?scope=agent:a1", SUP).await;
    let a1 = score(&v, "agent:a1");
    assert_eq!(a1["n"], 6);
    near(
        &a1["mean"],
        (80.0 + 90.0 + 85.0 + 95.0 + 85.0 + 85.0) / 6.0,
        "a1 after the correction",
    );
}

#[tokio::test]
async fn bad_qa_events_are_refused_with_a_reason_and_change_nothing() {
    let d = started("").await;
    let before = get_json_as(&d, "/api/v1/state", SUP).await["digest"].clone();
    let waiting = ev(
        "w-o",
        "09:02:00",
        "call_offered",
        r#""call":"w1","queue":"orders""#,
    );
    let (status, _) = post(&d, waiting).await;
    assert_eq!(status, 200);
    let before_bad = get_json_as(&d, "/api/v1/state", SUP).await["digest"].clone();
    assert_ne!(before, before_bad);
    let cases = [
        (
            scored("b1", "c0", "a1", "eva", 101.0),
            "invalid_value",
            "[0, 100]",
        ),
        (
            scored("b2", "nope", "a1", "eva", 50.0),
            "unknown_call",
            "not a handled contact",
        ),
        (
            scored("b3", "w1", "a1", "eva", 50.0),
            "invalid_transition",
            "not handled yet",
        ),
        (
            scored("b4", "c0", "s1", "eva", 50.0),
            "invalid_value",
            "handled by \"a1\"",
        ),
        (
            ev(
                "b5",
                "09:03:00",
                "contact_tagged",
                r#""call":"c0","agent":"a1","tags":["upsold"]"#,
            ),
            "invalid_value",
            "not one of buying_signal",
        ),
        (
            ev(
                "b6",
                "09:03:00",
                "contact_tagged",
                r#""sale":"x","agent":"a1","tags":["objection"]"#,
            ),
            "invalid_value",
            "not `sale`",
        ),
        (
            ev(
                "b7",
                "09:03:00",
                "qa_scored",
                r#""call":"c0","agent":"a1","form":"f","score":50"#,
            ),
            "missing_field",
            "evaluator",
        ),
        (
            ev(
                "b8",
                "09:03:00",
                "qa_scored",
                r#""call":"c0","agent":"a1","evaluator":"e","form":"f","score":50,"items":[{"name":"greeting","score":6,"max":5}]"#,
            ),
            "invalid_value",
            "items[0].score",
        ),
    ];
    for (line, reason, text) in cases {
        let (status, reply) = post(&d, line.clone()).await;
        assert_eq!(status, 422, "all refused: {reply}");
        let r = &reply["rejected"][0];
        assert_eq!(r["reason"], reason, "{line}: {reply}");
        assert!(
            r["error"].as_str().unwrap_or("").contains(text),
            "{line}: {reply}"
        );
    }
    let after = get_json_as(&d, "/api/v1/state", SUP).await["digest"].clone();
    assert_eq!(before_bad, after, "refused events changed the state");
}

/// Every output a role can read, as raw bytes.
async fn everything(d: &Daemon, token: Option<&str>) -> String {
    let mut all = String::new();
    for path in [
        "/api/v1/snapshot",
        "/api/v1/backlog",
        "/api/v1/scorecards",
        "/api/v1/scorecards/compare?by=team",
        "/api/v1/qa/scores",
        "/api/v1/qa/scores?period=today",
        "/metrics",
        "/",
    ] {
        let mut req = client().get(format!("http://{}{path}", d.http));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request");
        all.push_str(&format!("\n== {path} {}\n", resp.status()));
        all.push_str(&resp.text().await.unwrap_or_default());
    }
    let q = token
        .map(|t| format!("?token={t}&scorecards=1&qa=1"))
        .unwrap_or("?scorecards=1&qa=1".into());
    use futures_util::StreamExt;
    match tokio_tungstenite::connect_async(format!("ws://{}/ws{q}", d.http)).await {
        Ok((mut ws, _)) => {
            if let Ok(Some(Ok(m))) =
                tokio::time::timeout(std::time::Duration::from_secs(10), ws.next()).await
            {
                all.push_str("\n== /ws\n");
                all.push_str(&m.into_text().map(|t| t.to_string()).unwrap_or_default());
            }
        }
        Err(e) => all.push_str(&format!("\n== /ws refused: {e}\n")),
    }
    all
}

#[tokio::test]
async fn only_roles_with_the_quality_grant_see_qa_data() {
    let d = started("\"sales\"").await;
    // The QA goal on the scorecards and the QA scores are there for the
    // supervisor (proving the search below can find them) ...
    let sup = everything(&d, Some(SUP)).await;
    for needle in ["qa_score", "\"agent:a1\"", "85 ± 10 (n = 5)"] {
        assert!(sup.contains(needle), "supervisor misses {needle}");
    }
    // ... and nowhere for the wallboard token or an anonymous reader.
    // A token that may not read them: 403; none at all: 401 (a token
    // might help).
    for (who, token, refused) in [("wallboard", Some(WALL), 403), ("anonymous", None, 401)] {
        let seen = everything(&d, token).await;
        assert!(
            seen.contains(&format!("== /api/v1/qa/scores {refused}")),
            "{who}: {seen}"
        );
        for needle in [
            "qa_score",
            "agent:a1\"",
            "± ",
            "buying_signal",
            // A `qa` map or key (the feed echoes the asked scope's
            // `"qa":true`, which is the client's own request).
            "\"qa\":{",
            "evaluator",
            "callwatch_qa_sampled_contacts{",
            "callwatch_qa_signals{",
            "\"signal\"",
        ] {
            assert!(!seen.contains(needle), "{who} sees {needle:?}");
        }
    }
    // The qa role: its teams only (privacy.qa_teams = ["sales"]), no
    // site or partner figures, and none of the live outputs.
    let v = get_json_as(&d, "/api/v1/qa/scores", QA).await;
    let scopes: Vec<&str> = v["qa"]["scores"]
        .as_array()
        .expect("scores")
        .iter()
        .filter_map(|s| s["scope"].as_str())
        .collect();
    assert_eq!(scopes, ["team:sales", "agent:a1", "agent:s1"]);
    let qa = everything(&d, Some(QA)).await;
    for path in ["/api/v1/snapshot", "/api/v1/backlog", "/metrics"] {
        assert!(qa.contains(&format!("== {path} 403")), "qa reads {path}");
    }
}

/// A handled call of `secs` talk, with an optional customer, at minute
/// `m` of day `day` (March 2026).
fn call_at(
    out: &mut Vec<String>,
    id: &str,
    agent: &str,
    day: u32,
    m: u32,
    secs: u32,
    customer: Option<&str>,
) {
    let ts = |s: u32| {
        format!(
            "2026-03-{day:02}T{:02}:{:02}:{:02}Z",
            8 + (m + s / 60) / 60,
            (m + s / 60) % 60,
            s % 60
        )
    };
    let cust = customer
        .map(|c| format!(r#","customer":"{c}""#))
        .unwrap_or_default();
    out.push(format!(
        r#"{{"id":"{id}-o","ts":"{}","type":"call_offered","call":"{id}","queue":"orders"{cust}}}"#,
        ts(0)
    ));
    out.push(format!(
        r#"{{"id":"{id}-a","ts":"{}","type":"call_answered","call":"{id}","agent":"{agent}"}}"#,
        ts(0)
    ));
    out.push(format!(
        r#"{{"id":"{id}-e","ts":"{}","type":"call_ended","call":"{id}"}}"#,
        ts(secs)
    ));
}

fn sale_at(out: &mut Vec<String>, id: &str, agent: &str, call: Option<&str>, day: u32, m: u32) {
    let link = call
        .map(|c| format!(r#","call":"{c}""#))
        .unwrap_or_default();
    out.push(format!(
        r#"{{"id":"{id}","ts":"2026-03-{day:02}T{:02}:{:02}:59Z","type":"sale","sale":"{id}","agent":"{agent}","kind":"new","unit_price":100{link}}}"#,
        8 + m / 60,
        m % 60
    ));
}

fn cancel(out: &mut Vec<String>, id: &str, day: u32) {
    out.push(format!(
        r#"{{"id":"x-{id}","ts":"2026-03-{day:02}T18:00:00Z","type":"sale_cancelled","sale":"{id}"}}"#
    ));
}

fn signal_day() -> Vec<String> {
    let mut e = Vec::new();
    for a in ["a1", "r1", "n1", "f1", "s1", "b1", "gone", "d1"] {
        e.push(format!(
            r#"{{"id":"l-{a}","ts":"2026-03-02T07:00:00Z","type":"agent_login","agent":"{a}","team":"sales","queues":["orders"]}}"#
        ));
    }
    // a1: 20 sales on own calls, 12 cancelled. r1: 100, 5 cancelled.
    for i in 0..20 {
        call_at(&mut e, &format!("a{i}"), "a1", 2, i, 120, None);
        sale_at(
            &mut e,
            &format!("sa{i}"),
            "a1",
            Some(&format!("a{i}")),
            2,
            i,
        );
        if i < 12 {
            cancel(&mut e, &format!("sa{i}"), 2);
        }
    }
    for i in 0..100 {
        call_at(&mut e, &format!("r{i}"), "r1", 2, 20 + i, 120, None);
        sale_at(
            &mut e,
            &format!("sr{i}"),
            "r1",
            Some(&format!("r{i}")),
            2,
            20 + i,
        );
        if i < 5 {
            cancel(&mut e, &format!("sr{i}"), 2);
        }
    }
    // n1, new: 2 contacts, a sale on each, one cancelled (1 of 2).
    for i in 0..2 {
        call_at(&mut e, &format!("n{i}"), "n1", 2, 130 + i, 120, None);
        sale_at(
            &mut e,
            &format!("sn{i}"),
            "n1",
            Some(&format!("n{i}")),
            2,
            130 + i,
        );
    }
    cancel(&mut e, "sn0", 2);
    // f1: 40 contacts, no sale.
    for i in 0..40 {
        call_at(&mut e, &format!("f{i}"), "f1", 2, 140 + i, 120, None);
    }
    // s1: a sale on a 10 s call (short), and one on a 2 min call.
    call_at(&mut e, "short", "s1", 2, 190, 10, None);
    sale_at(&mut e, "s-short", "s1", Some("short"), 2, 191);
    call_at(&mut e, "long", "s1", 2, 192, 120, None);
    sale_at(&mut e, "s-long", "s1", Some("long"), 2, 193);
    // b1: a sale on a1's call, and one on no contact.
    sale_at(&mut e, "s-foreign", "b1", Some("a19"), 2, 194);
    sale_at(&mut e, "s-nolink", "b1", None, 2, 195);
    // gone: logs out, then books a sale on its own earlier call.
    call_at(&mut e, "g1", "gone", 2, 196, 120, None);
    e.push(
        r#"{"id":"lo-gone","ts":"2026-03-02T11:30:00Z","type":"agent_logout","agent":"gone"}"#
            .into(),
    );
    sale_at(&mut e, "s-gone", "gone", Some("g1"), 2, 215);
    // d1: 10 sales on own calls, all downgrades.
    for i in 0..10 {
        call_at(&mut e, &format!("d{i}"), "d1", 2, 220 + i, 120, None);
        e.push(format!(
            r#"{{"id":"sd{i}","ts":"2026-03-02T11:{:02}:59Z","type":"sale","sale":"sd{i}","agent":"d1","call":"d{i}","kind":"downgrade","unit_price":50,"previous_value":80}}"#,
            40 + i
        ));
    }
    // Customer K-1 buys twice within a week; K-2 ten days apart.
    call_at(&mut e, "k1a", "s1", 3, 0, 120, Some("K-1"));
    sale_at(&mut e, "s-k1a", "s1", Some("k1a"), 3, 1);
    call_at(&mut e, "k1b", "s1", 6, 0, 120, Some("K-1"));
    sale_at(&mut e, "s-k1b", "s1", Some("k1b"), 6, 1);
    call_at(&mut e, "k2a", "s1", 3, 10, 120, Some("K-2"));
    sale_at(&mut e, "s-k2a", "s1", Some("k2a"), 3, 11);
    call_at(&mut e, "k2b", "s1", 13, 10, 120, Some("K-2"));
    sale_at(&mut e, "s-k2b", "s1", Some("k2b"), 13, 11);
    e.push(r#"{"id":"hb","ts":"2026-03-14T12:00:00Z","type":"heartbeat"}"#.into());
    e
}

fn flagged<'a>(v: &'a Value, signal: &str) -> Vec<&'a Value> {
    v["signals"]["signals"]
        .as_array()
        .expect("signals")
        .iter()
        .filter(|s| s["signal"] == signal)
        .collect()
}

fn who(list: &[&Value]) -> Vec<String> {
    list.iter()
        .map(|s| {
            let items: Vec<&str> = s["items"]
                .as_array()
                .map(|i| i.iter().filter_map(|x| x.as_str()).collect())
                .unwrap_or_default();
            format!(
                "{}{}",
                s["agent"].as_str().unwrap_or(""),
                if items.is_empty() {
                    String::new()
                } else {
                    format!(" {}", items.join(","))
                }
            )
        })
        .collect()
}

#[tokio::test]
async fn integrity_signals_trip_on_their_cases_and_not_on_the_others() {
    let d = Daemon::start(&qa_config(""));
    let (status, reply) = post(&d, signal_day().join("\n")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["rejected"], serde_json::json!([]), "{reply}");
    let v = get_json_as(&d, "/api/v1/qa/signals?period=month", SUP).await;

    // 12 of 20 cancelled against 6 of 121 in the rest of the team: flagged
    // with the p-value; 1 of 2 is not; the reference agent is not.
    let c = flagged(&v, "cancellations");
    assert_eq!(who(&c), ["a1"], "{v}");
    let n = &c[0]["numbers"];
    assert_eq!(
        (n["sales"].as_f64(), n["cancelled"].as_f64()),
        (Some(20.0), Some(12.0))
    );
    assert_eq!(
        (n["team_sales"].as_f64(), n["team_cancelled"].as_f64()),
        (Some(121.0), Some(6.0)),
        "r1's 100, n1's 2, d1's 10 and the 9 other sales"
    );
    let p0: f64 = 6.5 / 122.0;
    let mut p = 0.0;
    let mut binom = 1.0f64; // C(20, k) p0^k (1-p0)^(20-k), summed for k >= 12
    for k in 0..=20u32 {
        if k > 0 {
            binom *= (20 - k + 1) as f64 / k as f64;
        }
        if k >= 12 {
            p += binom * p0.powi(k as i32) * (1.0 - p0).powi(20 - k as i32);
        }
    }
    let got = n["p_value"].as_f64().expect("p-value");
    assert!((got - p).abs() <= 1e-6 * p, "p-value {got} != {p}");
    assert!(c[0]["test"]
        .as_str()
        .unwrap_or("")
        .contains("exact binomial"));

    // Funnel plot: 0 of 40 converted is far below the team; the new agent
    // with 1 of 2 is not an outlier.
    let conv = who(&flagged(&v, "conversion"));
    assert!(conv.contains(&"f1".to_string()), "{conv:?}");
    assert!(!conv.contains(&"n1".to_string()), "{conv:?}");

    // All of d1's sales downgrades, in a team with 10 of 141: flagged;
    // nobody else (their 0 % is inside the limits).
    assert_eq!(who(&flagged(&v, "downgrades")), ["d1"]);
    assert_eq!(who(&flagged(&v, "short_contact")), ["s1 s-short"]);
    assert_eq!(
        who(&flagged(&v, "no_own_contact")),
        ["b1 s-foreign", "b1 s-nolink"]
    );
    assert_eq!(who(&flagged(&v, "outside_login")), ["gone s-gone"]);
    assert_eq!(who(&flagged(&v, "repeat_customer")), ["s1 s-k1a,s-k1b"]);
    assert!(
        !v.to_string().contains("K-1"),
        "a signal never names the customer"
    );

    // The wallboard role gets none of it.
    let (status, _) = {
        let r = client()
            .get(format!("http://{}/api/v1/qa/signals", d.http))
            .bearer_auth(WALL)
            .send()
            .await
            .expect("request");
        (r.status().as_u16(), ())
    };
    assert_eq!(status, 403);
}

fn sample_config(secret: &str) -> String {
    format!(
        "{}\n[quality.sample]\nsecret = \"{secret}\"\nperiod = \"month\"\nmin_per_agent = 4\nmargin = 5\nassumed_sd = 10\nmin_duration = \"20s\"\n[tasks.kinds.callback]\nsla = \"4h\"\n",
        qa_config("")
    )
}

/// m1 in March: 60 inbound calls without a sale, 30 with one, 10
/// outbound, 20 callbacks completed, 15 calls of 10 s (too short to
/// draw), one of them with a sale (a short_contact signal).
fn sample_month() -> Vec<String> {
    let mut e = vec![
        r#"{"id":"l-m1","ts":"2026-03-01T23:30:00Z","type":"agent_login","agent":"m1","team":"sales","queues":["orders"]}"#.to_string(),
    ];
    let ts = |day: u32, m: u32, s: u32| {
        format!("2026-03-{day:02}T{:02}:{:02}:{:02}Z", 8 + m / 60, m % 60, s)
    };
    let mut n = 0u32;
    // 135 calls and 20 callbacks over days 2..28, in time order.
    let mut plan: Vec<(&str, u32)> = Vec::new();
    plan.extend(std::iter::repeat_n(("in", 120), 60));
    plan.extend(std::iter::repeat_n(("in_sale", 120), 30));
    plan.extend(std::iter::repeat_n(("out", 120), 10));
    plan.extend(std::iter::repeat_n(("callback", 0), 20));
    plan.extend(std::iter::repeat_n(("short", 10), 14));
    plan.push(("short_sale", 10));
    // Interleave the kinds over the month (a fixed shuffle: stride 7).
    let len = plan.len();
    let order: Vec<usize> = (0..len).map(|i| (i * 7) % len).collect();
    for (slot, &i) in order.iter().enumerate() {
        let (what, talk) = plan[i];
        let day = 2 + (slot as u32 * 26) / len as u32;
        let m = (slot as u32 * 5) % 480;
        n += 1;
        let id = format!("m{n}");
        if what == "callback" {
            e.push(format!(r#"{{"id":"{id}-c","ts":"{}","type":"task_created","task":"{id}","kind":"callback","queue":"orders"}}"#, ts(day, m, 0)));
            e.push(format!(
                r#"{{"id":"{id}-d","ts":"{}","type":"task_completed","task":"{id}","agent":"m1"}}"#,
                ts(day, m, 30)
            ));
            continue;
        }
        let dir = if what == "out" {
            r#","direction":"outbound""#
        } else {
            ""
        };
        e.push(format!(r#"{{"id":"{id}-o","ts":"{}","type":"call_offered","call":"{id}","queue":"orders"{dir}}}"#, ts(day, m, 0)));
        e.push(format!(
            r#"{{"id":"{id}-a","ts":"{}","type":"call_answered","call":"{id}","agent":"m1"}}"#,
            ts(day, m, 0)
        ));
        if what == "in_sale" || what == "short_sale" {
            e.push(format!(r#"{{"id":"{id}-s","ts":"{}","type":"sale","sale":"s{id}","agent":"m1","call":"{id}","kind":"new","unit_price":10}}"#, ts(day, m, 5)));
        }
        let end = ts(day, m + talk / 60, talk % 60);
        e.push(format!(
            r#"{{"id":"{id}-e","ts":"{end}","type":"call_ended","call":"{id}"}}"#
        ));
    }
    e.push(r#"{"id":"hb-end","ts":"2026-03-31T21:00:00Z","type":"heartbeat"}"#.to_string());
    e
}

async fn sample_of(secret: &str) -> (Daemon, Value) {
    let d = Daemon::start(&sample_config(secret));
    let (status, reply) = post(&d, sample_month().join("\n")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["rejected"], serde_json::json!([]), "{reply}");
    let v = get_json_as(&d, "/api/v1/qa/samples?agent=m1", SUP).await;
    (d, v["sample"]["agents"][0].clone())
}

fn drawn(a: &Value) -> Vec<(String, String)> {
    a["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .map(|c| {
            (
                c["contact"].as_str().unwrap_or("").to_string(),
                c["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_qa_sample_is_stratified_reproducible_keyed_and_adds_flagged_contacts() {
    let secret = "an-auditors-secret-0001";
    let (d, a) = sample_of(secret).await;
    // Population: 120 contacts of at least 20 s (the 15 short ones are
    // not drawn at random). Size: n0 = (1.96 * 10 / 5)^2 = 15.37, with the
    // finite-population correction 15.37 / (1 + 14.37 / 120) = 13.7: 14.
    assert_eq!(a["population"], 120, "{a}");
    assert_eq!(a["size"], 14, "{a}");
    let strata: Vec<(String, u64, u64)> = a["strata"]
        .as_array()
        .expect("strata")
        .iter()
        .map(|s| {
            (
                s["stratum"].as_str().unwrap_or("").to_string(),
                s["population"].as_u64().unwrap_or(0),
                s["drawn"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let pops: Vec<(&str, u64)> = strata.iter().map(|(s, p, _)| (s.as_str(), *p)).collect();
    assert_eq!(
        pops,
        [
            ("callback/no_sale", 20),
            ("inbound/no_sale", 60),
            ("inbound/sale", 30),
            ("outbound/no_sale", 10)
        ]
    );
    let total: u64 = strata.iter().map(|s| s.2).sum();
    assert_eq!(total, 14, "{strata:?}");
    for (name, pop, got) in &strata {
        let exact = 14.0 * *pop as f64 / 120.0;
        assert!(
            (*got as f64 - exact).abs() < 1.0,
            "{name}: {got} drawn, {exact:.2} proportional"
        );
    }
    // Spread over the month, not the latest contacts only.
    let handled: Vec<&str> = a["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .filter(|c| c["reason"] == "random")
        .filter_map(|c| c["handled"].as_str())
        .collect();
    assert!(handled.iter().any(|h| h < &"2026-03-10"), "{handled:?}");
    assert!(handled.iter().any(|h| h > &"2026-03-20"), "{handled:?}");
    // The short call with a sale is in, as what it is; no other short call.
    let list = drawn(&a);
    let flagged: Vec<&(String, String)> = list.iter().filter(|(_, r)| r != "random").collect();
    assert_eq!(flagged.len(), 1, "{list:?}");
    assert_eq!(flagged[0].1, "short_contact");
    assert_eq!(list.len(), 15);

    // The same config, secret and events on a second daemon: the same
    // sample. Another secret: another sample.
    let (_d2, again) = sample_of(secret).await;
    assert_eq!(drawn(&again), list, "an auditor redraws the same sample");
    let (_d3, other) = sample_of("another-secret-00000002").await;
    assert_ne!(drawn(&other), list, "the secret decides the draw");

    // An evaluation closes the contact's review; /metrics counts per team.
    let (id, _) = list
        .iter()
        .find(|(_, r)| r == "random")
        .expect("a random one");
    let call = id.trim_start_matches("call:").trim_start_matches("task:");
    let field = if id.starts_with("task:") {
        "task"
    } else {
        "call"
    };
    let ev_line = format!(
        r#"{{"id":"qa-1","ts":"2026-03-31T21:01:00Z","type":"qa_scored","{field}":"{call}","agent":"m1","evaluator":"eva","form":"f","score":90}}"#
    );
    let (status, reply) = post(&d, ev_line).await;
    assert_eq!(status, 200, "{reply}");
    let v = get_json_as(&d, "/api/v1/qa/samples?agent=m1", SUP).await;
    let st: Vec<&str> = v["sample"]["agents"][0]["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .filter(|c| c["contact"] == id.as_str())
        .filter_map(|c| c["status"].as_str())
        .collect();
    assert_eq!(st, ["evaluated"]);
    let text = client()
        .get(format!("http://{}/metrics", d.http))
        .bearer_auth(SUP)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    let m = parse_metrics(&text);
    assert_eq!(
        metric(&m, r#"callwatch_qa_sampled_contacts{team="sales"}"#),
        15.0
    );
    assert_eq!(
        metric(&m, r#"callwatch_qa_evaluated_contacts{team="sales"}"#),
        1.0
    );
    let count = |want: &str| {
        v["sample"]["agents"][0]["contacts"]
            .as_array()
            .map_or(0, |c| c.iter().filter(|c| c["status"] == want).count()) as f64
    };
    let backlog = |overdue: &str| {
        metric(
            &m,
            &format!(
                r#"callwatch_qa_evaluation_backlog_contacts{{team="sales",overdue="{overdue}"}}"#
            ),
        )
    };
    assert_eq!(backlog("false"), count("open"));
    assert_eq!(backlog("true"), count("overdue"));
    assert_eq!(count("open") + count("overdue"), 14.0);
    assert!(
        count("overdue") > 0.0,
        "drawn early in the month, not evaluated within 7 days"
    );
    let wall = client()
        .get(format!("http://{}/metrics", d.http))
        .bearer_auth(WALL)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    // The period before (February) had no contacts; a bad period is 400.
    let feb = get_json_as(&d, "/api/v1/qa/samples?period=previous", SUP).await;
    assert_eq!(feb["sample"]["from"], "2026-01-31T23:00:00.000Z", "{feb}");
    assert_eq!(feb["sample"]["agents"], serde_json::json!([]));
    let bad = client()
        .get(format!("http://{}/api/v1/qa/samples?period=june", d.http))
        .bearer_auth(SUP)
        .send()
        .await
        .expect("request");
    assert_eq!(bad.status().as_u16(), 400);
    assert!(
        !wall.contains("callwatch_qa_sampled_contacts{"),
        "no QA series for the wallboard"
    );
}

#[tokio::test]
async fn coaching_counts_buying_signals_and_follows_later_sales_into_the_goals() {
    let cfg = qa_config("").replace(
        "[goals.matrix.qa]",
        "[goals.matrix.signals]\nobjective = \"quality\"\nkpi = \"buying_signal_conversion\"\ncategory = \"sales\"\nweight = 1\ntarget = 0.5\nwarn = 0.4\nminimum = 0.2\n\
         [goals.matrix.missed]\nobjective = \"quality\"\nkpi = \"missed_opportunities\"\ncategory = \"primary\"\nweight = 1\ntarget = 0.1\nwarn = 0.2\nminimum = 0.4\n\
         [goals.matrix.offers]\nobjective = \"quality\"\nkpi = \"offer_conversion\"\ncategory = \"sales\"\nweight = 1\ntarget = 0.6\nwarn = 0.5\nminimum = 0.2\n\
         [goals.matrix.qa]",
    );
    let d = Daemon::start(&cfg);
    let mut e = vec![ev(
        "l",
        "08:00:00",
        "agent_login",
        r#""agent":"a1","team":"sales","queues":["orders"]"#,
    )];
    for i in 1..=4 {
        handled(
            &mut e,
            &format!("c{i}"),
            "orders",
            "a1",
            &format!("08:0{i}:00"),
        );
    }
    e.push(ev(
        "s1",
        "08:05:00",
        "sale",
        r#""sale":"s1","agent":"a1","call":"c1","kind":"new","unit_price":100"#,
    ));
    let tag = |id: &str, call: &str, tags: &str| {
        ev(
            id,
            "08:06:00",
            "contact_tagged",
            &format!(r#""call":"{call}","agent":"a1","tags":{tags}"#),
        )
    };
    // c1 signal + offer, sold; c2 signal only (missed); c3 signal + offer,
    // not sold (yet); c4 an objection, no signal.
    e.push(tag("t1", "c1", r#"["buying_signal","offer_made"]"#));
    e.push(tag("t2", "c2", r#"["buying_signal"]"#));
    e.push(tag("t3", "c3", r#"["buying_signal"]"#));
    e.push(tag("t3b", "c3", r#"["offer_made"]"#));
    e.push(tag("t4", "c4", r#"["objection"]"#));
    let (status, reply) = post(&d, e.join("\n")).await;
    assert_eq!(
        (status, &reply["rejected"]),
        (200, &serde_json::json!([])),
        "{reply}"
    );

    let goals = |v: &Value| -> Vec<(String, Option<f64>)> {
        v["scorecards"][0]["goals"]
            .as_array()
            .expect("goals")
            .iter()
            .filter(|g| g["kpi"] != "qa_score")
            .map(|g| {
                (
                    g["goal"].as_str().unwrap_or("").to_string(),
                    g["value"].as_f64(),
                )
            })
            .collect()
    };
    let v = get_json_as(&d, "/api/v1/scorecards?scope=team:sales", SUP).await;
    let third: f64 = 1.0 / 3.0;
    assert_eq!(
        goals(&v),
        [
            ("signals".to_string(), Some(third)),
            ("missed".to_string(), Some(third)),
            ("offers".to_string(), Some(0.5)),
        ],
        "{v}"
    );
    let c = get_json_as(&d, "/api/v1/coaching?agent=a1&period=today", SUP).await;
    let row = &c["coaching"]["rows"][0];
    assert_eq!(
        (
            row["tagged_contacts"].as_u64(),
            row["buying_signals"].as_u64(),
            row["buying_signals_converted"].as_u64(),
            row["missed_opportunities"].as_u64(),
            row["offers_made"].as_u64(),
            row["offers_sold"].as_u64()
        ),
        (Some(4), Some(3), Some(1), Some(1), Some(2), Some(1)),
        "{c}"
    );

    // A later sale on c3 converts its signal and its offer; cancelling
    // c1's takes c1's back.
    let (status, _) = post(
        &d,
        [
            ev(
                "s3",
                "08:30:00",
                "sale",
                r#""sale":"s3","agent":"a1","call":"c3","kind":"new","unit_price":100"#,
            ),
            ev("x1", "08:31:00", "sale_cancelled", r#""sale":"s1""#),
        ]
        .join("\n"),
    )
    .await;
    assert_eq!(status, 200);
    let v = get_json_as(&d, "/api/v1/scorecards?scope=team:sales", SUP).await;
    assert_eq!(
        goals(&v),
        [
            ("signals".to_string(), Some(third)),
            ("missed".to_string(), Some(third)),
            ("offers".to_string(), Some(0.5)),
        ],
        "c3 sold, c1 no longer: the same shares, other contacts"
    );
    let c = get_json_as(&d, "/api/v1/coaching?agent=a1&period=today", SUP).await;
    assert_eq!(c["coaching"]["rows"][0]["buying_signals_converted"], 1);
    let (status, _) = post(
        &d,
        ev(
            "s1b",
            "08:32:00",
            "sale",
            r#""sale":"s1b","agent":"a1","call":"c1","kind":"new","unit_price":100"#,
        ),
    )
    .await;
    assert_eq!(status, 200);
    let v = get_json_as(&d, "/api/v1/scorecards?scope=team:sales", SUP).await;
    assert_eq!(
        goals(&v),
        [
            ("signals".to_string(), Some(2.0 / 3.0)),
            ("missed".to_string(), Some(third)),
            ("offers".to_string(), Some(1.0)),
        ]
    );
    // The wallboard sees neither the coaching view nor these goals.
    let wall = get_json_as(&d, "/api/v1/scorecards?scope=team:sales", WALL).await;
    assert!(goals(&wall).is_empty(), "{wall}");
}

/// The demo's traffic (the simulator) on the shipped configuration
/// produces QA scores, tags, a sample and one agent (agent-0001, whose
/// customers cancel most of its sales) flagged by the cancellation test.
#[tokio::test]
async fn the_demo_produces_qa_scores_tags_and_a_cancellation_signal() {
    let cfg = shipped_config()
        .replace(
            "anonymous_role = \"wallboard\"",
            "anonymous_role = \"supervisor\"",
        )
        .replace(
            "# secret = \"a-secret-of-16-or-more-characters\"",
            "secret = \"callwatch-demo-sample-secret\"",
        );
    let d = Daemon::start(&cfg);
    let out = std::process::Command::new(BIN)
        .args([
            "simulate", "--stdout", "--rate", "4", "--agents", "24", "--events", "30000",
        ])
        .output()
        .expect("simulate");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    for chunk in lines.chunks(5000) {
        let (status, reply) = post(&d, chunk.join("\n")).await;
        assert_eq!(status, 200, "{reply}");
    }
    let scores = get_json(&d, "/api/v1/qa/scores?period=today").await;
    let n: u64 = scores["qa"]["scores"]
        .as_array()
        .expect("scores")
        .iter()
        .filter(|s| s["kind"] == "agent")
        .filter_map(|s| s["n"].as_u64())
        .sum();
    assert!(n >= 20, "QA evaluations in the demo: {n}");
    let c = get_json(&d, "/api/v1/coaching?period=today").await;
    assert!(
        c["coaching"]["rows"][0]["buying_signals"].as_u64() > Some(0),
        "{c}"
    );
    let s = get_json(&d, "/api/v1/qa/signals?period=today&signal=cancellations").await;
    let who: Vec<&str> = s["signals"]["signals"]
        .as_array()
        .expect("signals")
        .iter()
        .filter_map(|x| x["agent"].as_str())
        .collect();
    assert_eq!(who, ["agent-0001"], "{s}");
    let sample = get_json(&d, "/api/v1/qa/samples").await;
    assert!(
        sample["sample"]["agents"].as_array().is_some_and(|a| a
            .iter()
            .any(|a| !a["contacts"].as_array().is_none_or(Vec::is_empty))),
        "a sample is drawn: {sample}"
    );
}

#[tokio::test]
async fn qa_staff_get_a_feed_of_signals_and_prometheus_counts_them_per_team() {
    let d = Daemon::start(&qa_config("\"sales\""));
    let (status, reply) = post(&d, signal_day().join("\n")).await;
    assert_eq!(status, 200, "{reply}");
    let mut qa = ws_connect(&d, &format!("?token={QA}&qa=1")).await;
    let snap = ws_until(&mut qa, |m| m["type"] == "snapshot").await;
    let board = &snap["board"];
    // The signals are recomputed at most once a second after a change:
    // they come with the snapshot or with a delta soon after.
    let qa_map = if board["qa"].get("signal:cancellations:a1:").is_some() {
        board["qa"].clone()
    } else {
        ws_until(&mut qa, |m| {
            m["set"]["qa"].get("signal:cancellations:a1:").is_some()
        })
        .await["set"]["qa"]
            .clone()
    };
    let keys: Vec<&str> = qa_map
        .as_object()
        .map(|o| o.keys().map(|k| k.as_str()).collect())
        .unwrap_or_default();
    assert!(keys.contains(&"signal:cancellations:a1:"), "{keys:?}");
    assert!(
        keys.contains(&"signal:short_contact:s1:s-short"),
        "{keys:?}"
    );
    assert_eq!(qa_map["signal:cancellations:a1:"]["entry"], "signal");
    for live in ["queues", "agents", "teams", "backlog", "overdue"] {
        assert!(
            board[live].as_object().is_none_or(|o| o.is_empty()),
            "the qa role sees no {live}: {board}"
        );
    }
    // A new short sale reaches the QA feed as a delta.
    let mut e = Vec::new();
    call_at(&mut e, "short2", "s1", 14, 0, 8, None);
    sale_at(&mut e, "s-short2", "s1", Some("short2"), 14, 1);
    let (status, _) = post(&d, e.join("\n")).await;
    assert_eq!(status, 200);
    let delta = ws_until(&mut qa, |m| {
        m["type"] == "delta"
            && m["set"]["qa"]
                .get("signal:short_contact:s1:s-short2")
                .is_some()
    })
    .await;
    assert_eq!(
        delta["set"]["qa"]["signal:short_contact:s1:s-short2"]["numbers"]["talk_s"],
        8.0
    );
    // The wallboard asking for it gets nothing of it.
    let mut wall = ws_connect(&d, &format!("?token={WALL}&qa=1")).await;
    let w = ws_until(&mut wall, |m| m["type"] == "snapshot").await;
    assert!(w["board"].get("qa").is_none(), "{w}");
    // Counts per team on /metrics, for the supervisor only.
    let text = client()
        .get(format!("http://{}/metrics", d.http))
        .bearer_auth(SUP)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    let m = parse_metrics(&text);
    assert_eq!(
        metric(
            &m,
            r#"callwatch_qa_signals{team="sales",signal="short_contact"}"#
        ),
        2.0
    );
    assert_eq!(
        metric(
            &m,
            r#"callwatch_qa_signals{team="sales",signal="cancellations"}"#
        ),
        1.0
    );
}
