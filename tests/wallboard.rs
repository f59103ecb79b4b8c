//! The wallboard in a real headless Chromium (Debian's `chromium`, driven
//! through `chromedriver` with fantoccini): it loads from the running
//! daemon, follows injected events, turns a tile red when a callback goes
//! overdue, and reconnects after the daemon restarts; it shows the goal
//! matrix of the scope (goal tiles, scores, guardrail), per-queue rows and
//! feed alerts, in the configured locale and currency, and keeps its
//! layout and WCAG AA contrast from 1280×720 to 3840×2160. Screenshots go
//! to `target/wallboard*.png` for people to look at.

mod common;

use common::browser::{browser, browser_sized};
use common::*;
use fantoccini::{Client, Locator};

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

    // The default view (no team, two queues) shows the desk's goals with
    // values, not a blank tile.
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
        "the desk's service level on the default view",
        || async {
            let sl = text(&c, "#goal-service_level .value").await?;
            let values = c.find_all(Locator::Css(".tile .value")).await.ok()?;
            let mut blank = false;
            for v in values {
                let t = v.text().await.ok()?;
                blank |= t.is_empty() || t == "–" || t == "no data";
            }
            (sl.ends_with('%') && !blank).then_some(sl)
        },
    )
    .await;
    let _ = c.close().await;
}

/// A desk of four queues, 60 agents, waiting calls, an overdue callback and
/// sales made while the service level is below its minimum, on a matrix
/// of six goals; shown in en-GB and pounds, Berlin time.
fn desk_config() -> String {
    r#"
[server]
http = "127.0.0.1:0"
ingest_tcp = "127.0.0.1:0"
[clock]
mode = "event"
[privacy]
anonymous_role = "supervisor"
[wallboard]
locale = "en-GB"
[sales]
currency = "GBP"
[defaults]
site = "hq"
timezone = "Europe/Berlin"
service_level_threshold = "20s"
[sites.hq]
[[queues]]
name = "orders"
team = "sales"
[[queues]]
name = "returns"
team = "sales"
[[queues]]
name = "service"
team = "service"
[[queues]]
name = "billing"
team = "service"
[tasks.kinds.callback]
sla = "4h"
due_soon = "30m"
[tasks.kinds.offer]
sla = "24h"
due_soon = "2h"
[goals.objectives.service]
[goals.objectives.revenue]
[goals.matrix.sl]
objective = "service"
kpi = "service_level"
category = "primary"
weight = 3
target = 0.8
warn = 0.75
minimum = 0.6
[goals.matrix.wait]
objective = "service"
kpi = "oldest_wait"
category = "primary"
weight = 1
target = 20
warn = 60
minimum = 180
[goals.matrix.callbacks]
objective = "service"
kpi = "callbacks_overdue"
category = "primary"
weight = 1
target = 0
warn = 0
minimum = 1
[goals.matrix.aht]
objective = "service"
kpi = "aht"
category = "primary"
weight = 1
target = 300
warn = 420
minimum = 600
[goals.matrix.conversion]
objective = "revenue"
kpi = "conversion"
category = "sales"
weight = 1
target = 0.5
warn = 0.3
minimum = 0.1
[goals.matrix.revenue]
objective = "revenue"
kpi = "revenue"
category = "sales"
weight = 2
target = 1000
warn = 500
minimum = 0
[goals.matrix.abandons]
objective = "service"
kpi = "abandon_rate"
category = "primary"
weight = 1
target = 0.05
warn = 0.1
minimum = 0.2
[goals.matrix.asa]
objective = "service"
kpi = "asa"
category = "primary"
weight = 1
target = 20
warn = 40
minimum = 90
[goals.matrix.callback_sla]
objective = "service"
kpi = "callback_sla"
category = "primary"
weight = 1
target = 0.95
warn = 0.9
minimum = 0.8
[goals.matrix.upsell]
objective = "revenue"
kpi = "incremental_revenue"
category = "sales"
weight = 1
target = 500
warn = 250
minimum = 0
[goals.matrix.cancellations]
objective = "revenue"
kpi = "sales_cancellation_rate"
category = "sales"
weight = 1
target = 0.02
warn = 0.05
minimum = 0.1
"#
    .to_string()
}

fn desk_events() -> Vec<String> {
    let mut e = Vec::new();
    for i in 0..60 {
        let (team, queue) = if i % 2 == 0 {
            ("sales", "orders")
        } else {
            ("service", "service")
        };
        e.push(ev(
            &format!("login-{i}"),
            "07:55:00",
            "agent_login",
            &format!(
                r#""agent":"a{i:02}","name":"Agent With A Long Name {i:02}","team":"{team}","queues":["{queue}"]"#
            ),
        ));
    }
    // 08:45-09:00: orders answers 4 calls in 10 s and sells 3 x 250;
    // service answers 6 in 60 s: the site's level is 4/10, below minimum.
    let mut call = |id: String,
                    queue: &str,
                    agent: String,
                    m: u32,
                    wait: u32,
                    price: Option<u32>| {
        let t = |s: u32| format!("08:{:02}:{:02}", m + s / 60, s % 60);
        e.push(ev(
            &format!("{id}-o"),
            &t(0),
            "call_offered",
            &format!(r#""call":"{id}","queue":"{queue}""#),
        ));
        e.push(ev(
            &format!("{id}-a"),
            &t(wait),
            "call_answered",
            &format!(r#""call":"{id}","agent":"{agent}""#),
        ));
        e.push(ev(
            &format!("{id}-e"),
            &t(wait + 100),
            "call_ended",
            &format!(r#""call":"{id}""#),
        ));
        if let Some(p) = price {
            e.push(ev(&format!("{id}-s"), &t(wait + 105), "sale", &format!(
                r#""sale":"s-{id}","agent":"{agent}","call":"{id}","kind":"new","unit_price":{p}"#)));
        }
        e.push(ev(
            &format!("{id}-w"),
            &t(wait + 160),
            "wrap_ended",
            &format!(r#""call":"{id}""#),
        ));
    };
    for i in 0..4u32 {
        call(
            format!("o{i}"),
            "orders",
            format!("a{:02}", i * 2),
            45 + i,
            10,
            (i < 3).then_some(250),
        );
    }
    for i in 0..6u32 {
        call(
            format!("v{i}"),
            "service",
            format!("a{:02}", i * 2 + 1),
            45 + i,
            60,
            None,
        );
    }
    // Waiting now: two callers in billing, one in orders.
    e.push(ev(
        "wb1",
        "08:59:00",
        "call_offered",
        r#""call":"wb1","queue":"billing""#,
    ));
    e.push(ev(
        "wb2",
        "08:59:40",
        "call_offered",
        r#""call":"wb2","queue":"billing""#,
    ));
    e.push(ev(
        "wo1",
        "09:00:10",
        "call_offered",
        r#""call":"wo1","queue":"orders""#,
    ));
    // A callback overdue since 08:30, an offer open.
    e.push(ev(
        "k1",
        "08:00:00",
        "task_created",
        r#""task":"k1","kind":"callback","queue":"service","due":"2026-03-02T08:30:00Z""#,
    ));
    e.push(ev(
        "k2",
        "08:10:00",
        "task_created",
        r#""task":"k2","kind":"offer","queue":"orders""#,
    ));
    e.push(ev("hb1", "09:00:30", "heartbeat", ""));
    e
}

/// What the page's layout and colours look like, measured in the page.
const MEASURE: &str = r#"
const de = document.documentElement, W = innerWidth, H = innerHeight;
const within = (el, box) => { const r = el.getBoundingClientRect(), b = box || {left: 0, top: 0, right: W, bottom: H};
  return r.left >= b.left - 0.5 && r.top >= b.top - 0.5 && r.right <= b.right + 0.5 && r.bottom <= b.bottom + 0.5; };
const tiles = [...document.querySelectorAll('.tile')].map(t => { const v = t.querySelector('.value');
  return { id: t.id, cls: t.className, value: v.textContent, sub: t.querySelector('.sub').textContent,
    inside: within(t), clipped: v.scrollWidth > v.clientWidth + 1,
    lines: Math.round(v.getBoundingClientRect().height / parseFloat(getComputedStyle(v).lineHeight)) }; });
const rows = [...document.querySelectorAll('#queues tr')].filter(r => r.style.display !== 'none');
const more = document.getElementById('queues-more');
const agentBox = document.getElementById('agents').getBoundingClientRect();
const chips = [...document.querySelectorAll('#agents .agent')];
const am = document.getElementById('agents-more');
function rgb(s) { const m = s.match(/rgba?\(([^)]+)\)/); if (!m) return null; const p = m[1].split(',').map(parseFloat);
  return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 }; }
function lum(c) { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); }
function bg(el) { for (let e = el; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
  if (c && c.a > 0.99) return c; } return { r: 255, g: 255, b: 255, a: 1 }; }
const contrast = [], seen = new Set();
const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
let n, texts = 0;
while ((n = walk.nextNode())) {
  const el = n.parentElement;
  if (!n.textContent.trim() || seen.has(el) || el.closest('script')) continue;
  seen.add(el);
  const cs = getComputedStyle(el);
  if (el.closest('[hidden]') || cs.visibility === 'hidden' || el.getClientRects().length === 0) continue;
  texts++;
  const a = lum(rgb(cs.color)), b = lum(bg(el));
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  const size = parseFloat(cs.fontSize), bold = parseInt(cs.fontWeight) >= 700;
  const need = size >= 24 || (size >= 18.66 && bold) ? 3 : 4.5;
  if (ratio < need) contrast.push(n.textContent.trim().slice(0, 40) + ' ' + ratio.toFixed(2) + ' < ' + need);
}
return { w: W, h: H, overflow: de.scrollWidth > W || de.scrollHeight > H || document.body.scrollHeight > H,
  tiles, goals: [...document.querySelectorAll('#goals .tile')].map(t => t.id),
  rows: rows.map(r => r.dataset.queue), rowsOut: rows.filter(r => !within(r)).length,
  queuesMore: more.hidden ? 0 : parseInt(more.textContent.slice(1)),
  agents: chips.filter(c => !c.classList.contains('more')).length,
  agentsMore: am ? parseInt(am.dataset.hidden) : 0,
  agentsOut: chips.filter(c => !within(c, agentBox)).length,
  alerts: [...document.querySelectorAll('#alerts .alert')].map(a => a.textContent),
  clock: document.getElementById('clock').textContent, contrast, texts,
  rendered: document.body.dataset.rendered };
"#;

async fn measure(c: &Client) -> serde_json::Value {
    c.execute(MEASURE, vec![]).await.expect("measure runs")
}

fn tile<'a>(m: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    m["tiles"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["id"] == id))
        .unwrap_or_else(|| panic!("no tile {id}: {m}"))
}

#[tokio::test]
async fn the_wallboard_shows_the_matrix_at_every_size() {
    let d = Daemon::start(&desk_config());
    let (status, reply) = post(&d, desk_events().join("\n")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["rejected"], serde_json::json!([]), "{reply}");
    let cards = get_json(&d, "/api/v1/scorecards?scope=site:hq").await;
    let site = &cards["scorecards"][0];
    assert_eq!(
        site["guardrail"]["met"], false,
        "the scenario withholds credit: {site}"
    );
    // The goal tiles: the site's goals in the matrix's order, but those a
    // live tile shows; "no data" exactly where the card has no value.
    let live = [
        "oldest_wait",
        "callbacks_open",
        "callbacks_overdue",
        "backlog_overdue",
    ];
    let goals: Vec<&serde_json::Value> = site["goals"]
        .as_array()
        .expect("goals")
        .iter()
        .filter(|g| !live.contains(&g["kpi"].as_str().unwrap_or("")))
        .collect();
    let expected: Vec<String> = goals
        .iter()
        .map(|g| format!("goal-{}", g["goal"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(expected.len(), 9, "two rows of compact tiles");
    let no_data: Vec<String> = goals
        .iter()
        .filter(|g| g["value"].is_null())
        .map(|g| format!("goal-{}", g["goal"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(no_data, ["goal-callback_sla"], "{site}");
    let url = format!("http://127.0.0.1:{}/", d.http.port());
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&out).expect("target dir");

    for (i, (w, h)) in [(1280u32, 720u32), (1920, 1080), (3840, 2160)]
        .into_iter()
        .enumerate()
    {
        let (_driver, c, _profile) = browser_sized(w, h).await;
        c.goto(&url).await.expect("page loads");
        // The window includes the browser's own bars: size it so that the
        // page gets exactly w × h.
        let bars = c
            .execute(
                "return [outerWidth - innerWidth, outerHeight - innerHeight]",
                vec![],
            )
            .await
            .expect("window metrics");
        let bar = |i: usize| bars[i].as_u64().unwrap_or(0) as u32;
        c.set_window_size(w + bar(0), h + bar(1))
            .await
            .expect("window resizes");
        let size = format!("{w}x{h}");
        let m = wait_for(30, "the board laid out for the size", || async {
            let m = measure(&c).await;
            (m["rendered"] == size.as_str()
                && m["goals"].as_array().map_or(0, Vec::len) == expected.len()
                && m["agents"].as_u64().unwrap_or(0) > 0
                && m["rows"].as_array().map_or(0, Vec::len) > 0)
                .then_some(m)
        })
        .await;
        let at = format!("{w}x{h}: {m}");
        assert_eq!(
            (m["w"].as_u64(), m["h"].as_u64()),
            (Some(w as u64), Some(h as u64)),
            "viewport {at}"
        );
        // Tiles come from the scope's goals (live KPIs have their own tiles).
        assert_eq!(m["goals"], serde_json::json!(expected), "{at}");
        assert_eq!(m["overflow"], false, "the page scrolls: {at}");
        for t in m["tiles"].as_array().expect("tiles") {
            assert_eq!(t["inside"], true, "tile off screen: {t} at {w}x{h}");
            assert_eq!(
                t["clipped"], false,
                "value wider than its tile: {t} at {w}x{h}"
            );
            assert_eq!(t["lines"], 1, "value wraps: {t} at {w}x{h}");
            let v = t["value"].as_str().unwrap_or("");
            let id = t["id"].as_str().unwrap_or("");
            assert!(!v.is_empty() && v != "–", "blank tile {t} at {w}x{h}");
            assert_eq!(
                v == "no data",
                no_data.iter().any(|n| n == id),
                "{t} at {w}x{h}"
            );
        }
        // Colours and words from the goals: SL 4/10 below its minimum.
        let sl = tile(&m, "goal-sl");
        assert_eq!(sl["value"], "40%", "{at}");
        assert!(
            sl["cls"].as_str().unwrap_or("").contains("status-critical"),
            "{at}"
        );
        assert!(
            sl["sub"]
                .as_str()
                .unwrap_or("")
                .starts_with("below minimum"),
            "{at}"
        );
        // Currency and locale from the config.
        assert_eq!(tile(&m, "goal-revenue")["value"], "£750", "{at}");
        assert!(
            m["clock"].as_str().unwrap_or("").starts_with("10:0"),
            "Berlin time: {at}"
        );
        // The guardrail, with its reason.
        let score = tile(&m, "tile-score");
        let sub = score["sub"].as_str().unwrap_or("");
        assert!(
            sub.starts_with("sales credit withheld £750")
                && sub.contains("sl 0.4 below minimum 0.6"),
            "{at}"
        );
        // Per-queue rows; a queue or an agent that does not fit is counted.
        let rows = m["rows"].as_array().map_or(0, Vec::len) as u64;
        assert_eq!(rows + m["queuesMore"].as_u64().unwrap_or(0), 4, "{at}");
        assert_eq!(m["rows"][0], "billing", "the longest wait first: {at}");
        assert_eq!(m["rowsOut"], 0, "{at}");
        assert_eq!(
            m["agents"].as_u64().unwrap_or(0) + m["agentsMore"].as_u64().unwrap_or(0),
            60,
            "{at}"
        );
        assert!(
            m["agentsMore"].as_u64().unwrap_or(0) > 0,
            "60 agents do not fit: {at}"
        );
        assert_eq!(m["agentsOut"], 0, "{at}");
        // WCAG AA for every visible text.
        assert!(m["texts"].as_u64().unwrap_or(0) > 50, "{at}");
        assert_eq!(
            m["contrast"],
            serde_json::json!([]),
            "contrast below AA at {w}x{h}"
        );

        if i == 0 {
            // An alert from the feed becomes a banner: billing's caller
            // waits past the minimum once the clock moves on.
            assert_eq!(m["alerts"], serde_json::json!([]), "{at}");
            let (status, _) = post(&d, ev("hb2", "09:03:30", "heartbeat", "")).await;
            assert_eq!(status, 200);
            let banner = wait_for(30, "the oldest-wait banners", || async {
                let m = measure(&c).await;
                let a: Vec<String> = m["alerts"]
                    .as_array()?
                    .iter()
                    .filter_map(|a| a.as_str().map(str::to_string))
                    .collect();
                (a.len() == 2).then_some(a)
            })
            .await;
            // Both queues cross their minimum with the same heartbeat.
            assert!(
                banner
                    .iter()
                    .any(|b| b.starts_with("billing: caller waiting 4:3")
                        && b.ends_with("(minimum 3:00)"))
                    && banner
                        .iter()
                        .any(|b| b.starts_with("orders: caller waiting 3:20")),
                "{banner:?}"
            );
            let m = measure(&c).await;
            assert_eq!(m["overflow"], false, "with the banner: {m}");
            assert_eq!(m["contrast"], serde_json::json!([]), "banner contrast: {m}");
        }
        let png = c.screenshot().await.expect("screenshot");
        std::fs::write(out.join(format!("wallboard-{w}x{h}.png")), png).expect("write screenshot");
        let _ = c.close().await;
    }
}
