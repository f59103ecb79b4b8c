//! The Asterisk sources against the real binary, fed with real
//! third-party samples (tests/fixtures/SOURCES.md): a queue_log file
//! followed through appends, rotation, truncation and a restart, and an
//! AMI test server replaying recorded sessions, including a login
//! failure and a connection dropped in the middle of an event.

mod common;

use std::io::Write as _;

use common::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/asterisk");

fn queue_log_config(path: &std::path::Path) -> String {
    config(&format!(
        "[[sources]]\ntype = \"asterisk_queue_log\"\nname = \"pbx1\"\npath = \"{}\"\nfrom_start = true\npoll_interval = \"50ms\"\n",
        path.display()
    ))
}

async fn counters(d: &Daemon) -> std::collections::BTreeMap<String, f64> {
    parse_metrics(&metrics_text(d).await)
}

#[tokio::test]
async fn queue_log_sample_is_mapped_and_followed() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("queue_log");
    std::fs::copy(format!("{FIXTURES}/queue_log.xalakox-asterisk2slack"), &log)
        .expect("copy fixture");
    let data = dir.path().join("data");
    let cfg = queue_log_config(&log);
    let d = Daemon::start_args(&cfg, &["--data-dir", data.to_str().expect("utf-8")]);
    let src = r#"source="asterisk_queue_log""#;
    // 22 non-empty lines (and one blank) in the sample.
    let m = wait_for(30, "the sample to be read", || async {
        let m = counters(&d).await;
        // Received is counted before the writer answers; wait for the
        // outcomes too (the last lines are the two talk segments' ends).
        let done = m.get(&format!("callwatch_events_received_total{{{src}}}")) == Some(&23.0)
            && m.get("callwatch_events_duplicate_total") >= Some(&6.0);
        done.then_some(m)
    })
    .await;
    let q = r#"{queue="201"}"#;
    // Two calls enter the queue (one ENTERQUEUE logged seven times), both
    // connect to Paty Marin; one completes after 122 s of talk. Two more
    // started before the file: one connects to Paty Marin (held 6 s) and
    // completes after 228 s, one completes at Vanessa Flores after 406 s
    // (held 10 s). They are rebuilt from those figures, not refused.
    assert_eq!(
        metric(&m, &format!("callwatch_calls_offered_total{q}")),
        4.0
    );
    assert_eq!(
        metric(&m, &format!("callwatch_calls_answered_total{q}")),
        4.0
    );
    assert_eq!(
        metric(
            &m,
            &format!(
                r#"callwatch_source_resync_corrections_total{{{src},kind="call_started_before_source"}}"#
            )
        ),
        2.0
    );
    assert_eq!(
        metric(&m, "callwatch_events_duplicate_total"),
        6.0,
        "the repeated ENTERQUEUE"
    );
    assert_eq!(
        metric(&m, &format!("callwatch_call_talk_seconds_sum{q}")),
        122.0 + 228.0 + 406.0
    );
    // Waits are the PBX's holdtime of each CONNECT/COMPLETE line.
    assert_eq!(
        metric(&m, &format!("callwatch_call_wait_seconds_sum{q}")),
        10.0 + 14.0 + 6.0 + 10.0
    );
    // DID is passed over, counted; the three RINGNOANSWER lines are
    // missed rings of the waiting call, per queue and per agent.
    assert_eq!(
        metric(
            &m,
            &format!(r#"callwatch_source_skipped_total{{{src},reason="passed"}}"#)
        ),
        1.0
    );
    assert_eq!(metric(&m, &format!("callwatch_calls_missed_total{q}")), 3.0);
    assert_eq!(
        metric(
            &m,
            r#"callwatch_agent_missed_calls_total{agent="John Rembold"}"#
        ),
        1.0
    );
    // The three COMPLETEAGENT lines that repeat a call's end (one per
    // queue position) are passed over as repeated, not refused: they
    // were 6 of the 11 refusals on this file.
    assert_eq!(
        metric(
            &m,
            &format!(r#"callwatch_source_skipped_total{{{src},reason="repeated"}}"#)
        ),
        3.0
    );
    // Nothing the PBX really wrote is refused (it was 11 of 23 lines).
    let refused: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("callwatch_events_rejected_total{") && k.contains(src))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(refused, 0.0);
    let snap = get_json(&d, "/api/v1/snapshot").await;
    let paty = snap["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["agent"] == "Paty Marin")
        .expect("agent")
        .clone();
    assert_eq!(
        paty["talk_s"],
        122.0 + 228.0,
        "talk stated by COMPLETECALLER/AGENT"
    );
    assert!(
        snap["agents"]
            .as_array()
            .expect("agents")
            .iter()
            .any(|a| a["agent"] == "Vanessa Flores"),
        "the agent of the call rebuilt from its end"
    );
    // Caller numbers become customers, never labels.
    assert!(!metrics_text(&d).await.contains("+1323"));

    // Appended lines are followed.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("open");
    writeln!(f, "1546030000|1546030000.1|201|NONE|ENTERQUEUE||+4930123|1").expect("append");
    writeln!(f, "1546030060|1546030000.1|201|NONE|ABANDON|1|1|60").expect("append");
    drop(f);
    wait_for(20, "appended lines", || async {
        (counters(&d)
            .await
            .get(&format!("callwatch_calls_abandoned_total{q}"))
            == Some(&1.0))
        .then_some(())
    })
    .await;
    // Rotation: the file is renamed and a new one started.
    std::fs::rename(&log, dir.path().join("queue_log.1")).expect("rotate");
    std::fs::write(
        &log,
        "1546031000|1546031000.2|201|NONE|ENTERQUEUE||+4930999|1\n",
    )
    .expect("new file");
    wait_for(20, "the rotated file's first line", || async {
        (counters(&d)
            .await
            .get(&format!("callwatch_calls_offered_total{q}"))
            == Some(&6.0))
        .then_some(())
    })
    .await;
    // Truncation in place: read from the start again (old lines are
    // recognised as duplicates, new ones applied).
    std::fs::write(&log, "1546031000|1546031000.2|201|NONE|ENTERQUEUE||+4930999|1\n1546031030|1546031000.2|201|Vanessa Flores|CONNECT|30|1546031000.3|2\n").expect("truncate");
    wait_for(20, "the line after the truncation", || async {
        (counters(&d)
            .await
            .get(&format!("callwatch_calls_answered_total{q}"))
            == Some(&5.0))
        .then_some(())
    })
    .await;
    assert!(d.terminate().success());
    // A restart resumes at the stored position: nothing is read twice.
    let d = Daemon::start_args(&cfg, &["--data-dir", data.to_str().expect("utf-8")]);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("open");
    writeln!(
        f,
        "1546031200|1546031000.2|201|Vanessa Flores|COMPLETEAGENT|30|170|1"
    )
    .expect("append");
    drop(f);
    let m = wait_for(20, "the line appended while restarting", || async {
        let m = counters(&d).await;
        (m.get(&format!("callwatch_events_received_total{{{src}}}")) == Some(&1.0)).then_some(m)
    })
    .await;
    assert_eq!(
        metric(&m, "callwatch_events_duplicate_total"),
        0.0,
        "no line re-read"
    );
    assert_eq!(
        metric(&m, &format!("callwatch_calls_answered_total{q}")),
        5.0,
        "state recovered"
    );
    // The call connected before the restart ends normally: the tracker
    // came back with the position, so it is not rebuilt a second time.
    assert_eq!(
        metric(
            &m,
            &format!(
                r#"callwatch_source_resync_corrections_total{{{src},kind="call_started_before_source"}}"#
            )
        ),
        0.0
    );
    let talk = wait_for(20, "the call's end after the restart", || async {
        let m = counters(&d).await;
        let t = m
            .get(&format!("callwatch_call_talk_seconds_count{q}"))
            .copied();
        (t == Some(4.0)).then_some(m)
    })
    .await;
    assert_eq!(
        metric(&talk, &format!("callwatch_call_talk_seconds_sum{q}")),
        122.0 + 228.0 + 406.0 + 170.0
    );
}

/// Server-side messages of a recorded session (client actions dropped).
fn server_blocks(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{file}")).expect("fixture");
    text.split("\n\n")
        .map(str::trim)
        .filter(|b| {
            !b.is_empty()
                && !b.to_ascii_lowercase().starts_with("action:")
                && !b.starts_with("Response:")
        })
        .map(|b| b.replace('\n', "\r\n") + "\r\n\r\n")
        .collect()
}

async fn read_action<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> String {
    let mut out = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
            return out;
        }
        if line.trim().is_empty() {
            if !out.is_empty() {
                return out;
            }
            continue;
        }
        out.push_str(&line);
    }
}

const CALL_START: &str = "Event: QueueCallerJoin\r\nChannel: SIP/trunk-0001\r\nCallerIDNum: +4989123456\r\nUniqueid: 1700000000.11\r\nQueue: general_queue\r\nPosition: 1\r\nCount: 1\r\n\r\nEvent: AgentConnect\r\nQueue: general_queue\r\nUniqueid: 1700000000.11\r\nMemberName: Agent/402\r\nInterface: Local/id-3@agentcallback\r\nHoldTime: 9\r\nRingTime: 3\r\n\r\n";
const CALL_END: &str = "Event: AgentComplete\r\nQueue: general_queue\r\nUniqueid: 1700000000.11\r\nMemberName: Agent/402\r\nHoldTime: 9\r\nTalkTime: 95\r\nReason: caller\r\n\r\n";

#[tokio::test]
async fn ami_sessions_resync_survive_drops_and_refused_logins() {
    let server = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = server.local_addr().expect("addr");
    let status = server_blocks("ami.panoramisk-queue_status.yaml");
    let noise = server_blocks("ami.panoramisk-agent_not_in_pause.yaml");
    let login = server_blocks("ami.panoramisk-agent_loggued_in.yaml");
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<u32>(8);
    tokio::spawn(async move {
        for n in 1u32.. {
            let Ok((s, _)) = server.accept().await else {
                return;
            };
            let (r, mut w) = s.into_split();
            let mut r = BufReader::new(r);
            let _ = w.write_all(b"Asterisk Call Manager/2.10.3\r\n").await;
            let act = read_action(&mut r).await;
            assert!(act.to_ascii_lowercase().contains("action: login"), "{act}");
            if n == 1 {
                // First attempt: the password is refused.
                let _ = w.write_all(b"Response: Error\r\nActionID: callwatch-login\r\nMessage: Authentication failed\r\n\r\n").await;
                let _ = done_tx.send(n).await;
                continue;
            }
            let _ = w.write_all(b"Response: Success\r\nActionID: callwatch-login\r\nMessage: Authentication accepted\r\n\r\n").await;
            let act = read_action(&mut r).await;
            assert!(
                act.contains("Action: QueueStatus"),
                "resync after each connect: {act}"
            );
            let _ = w.write_all(b"Response: Success\r\nActionID: callwatch-resync\r\nMessage: Queue status will follow\r\n\r\n").await;
            for b in &status {
                let _ = w.write_all(b.as_bytes()).await;
            }
            if n == 2 {
                for b in noise.iter().chain(login.iter()) {
                    let _ = w.write_all(b.as_bytes()).await;
                }
                let _ = w.write_all(CALL_START.as_bytes()).await;
                // Dropped in the middle of an event.
                let _ = w.write_all(&CALL_END.as_bytes()[..40]).await;
                let _ = done_tx.send(n).await;
                continue;
            }
            let _ = w.write_all(CALL_END.as_bytes()).await;
            let _ = done_tx.send(n).await;
            // Keep the third session open (its CoreShowChannels stays
            // unanswered: connected calls are then left as they are).
            while !read_action(&mut r).await.is_empty() {}
        }
    });
    let d = Daemon::start(&config(&format!(
        "[[sources]]\ntype = \"asterisk_ami\"\nname = \"pbx\"\naddress = \"{addr}\"\nusername = \"callwatch\"\nsecret = \"s3cret\"\n"
    )).replace("mode = \"event\"", "mode = \"system\""));
    let q = r#"{queue="general_queue"}"#;
    let m = wait_for(60, "the call to complete across the reconnect", || async {
        let m = counters(&d).await;
        (m.get(&format!("callwatch_call_talk_seconds_count{q}")) == Some(&1.0)).then_some(m)
    })
    .await;
    let mut sessions = Vec::new();
    while let Ok(n) = done_rx.try_recv() {
        sessions.push(n);
    }
    assert_eq!(sessions, [1, 2, 3], "refused, dropped, resumed");
    assert_eq!(
        metric(&m, &format!("callwatch_calls_offered_total{q}")),
        1.0
    );
    assert_eq!(
        metric(&m, &format!("callwatch_calls_answered_total{q}")),
        1.0
    );
    assert_eq!(
        metric(&m, &format!("callwatch_call_talk_seconds_sum{q}")),
        95.0
    );
    // The recorded sessions have no Timestamp headers: every event the
    // source made (applied, duplicate or refused) was timed by receipt.
    let refused: f64 = m
        .iter()
        .filter(|(k, _)| {
            k.starts_with("callwatch_events_rejected_total{") && k.contains("asterisk_ami")
        })
        .map(|(_, v)| v)
        .sum();
    assert_eq!(
        metric(
            &m,
            r#"callwatch_source_receipt_timed_events_total{source="asterisk_ami"}"#
        ),
        metric(&m, "callwatch_events_applied_total")
            + metric(&m, "callwatch_events_duplicate_total")
            + refused
    );
    // The wait is the PBX's HoldTime, not the time between receiving
    // the join and the connect (0.08 s here before the fix).
    assert_eq!(
        metric(&m, &format!("callwatch_call_wait_seconds_sum{q}")),
        9.0
    );
    assert_eq!(
        metric(
            &m,
            r#"callwatch_source_skipped_total{source="asterisk_ami",reason="disconnected"}"#
        ),
        2.0
    );
    assert!(
        metric(
            &m,
            r#"callwatch_source_skipped_total{source="asterisk_ami",reason="passed"}"#
        ) > 50.0,
        "noise passed over"
    );
    let snap = get_json(&d, "/api/v1/snapshot").await;
    let agents: Vec<&str> = snap["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(|a| a["agent"].as_str())
        .collect();
    // QueueStatus members (Asterisk 11 `Name`) and the QueueMemberAdded login.
    assert!(
        agents.contains(&"Agent/220") && agents.contains(&"Agent/859"),
        "{agents:?}"
    );
    assert!(agents.contains(&"Agent/402"));
    // 17 QueueMember lines name 6 distinct members; plus Agent/402.
    assert_eq!(agents.len(), 7, "{agents:?}");
    // The caller number is a customer reference, not a label.
    assert!(!metrics_text(&d).await.contains("4989123456"));
}

#[tokio::test]
async fn the_agent_table_gives_pbx_members_their_agent_id_name_and_team() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("queue_log");
    std::fs::copy(format!("{FIXTURES}/queue_log.xalakox-asterisk2slack"), &log)
        .expect("copy fixture");
    let cfg = config(&format!(
        "[[sources]]\ntype = \"asterisk_queue_log\"\nname = \"pbx1\"\npath = \"{}\"\nfrom_start = true\npoll_interval = \"50ms\"\n\
         [sources.agents.\"Paty Marin\"]\nagent = \"a-107\"\nname = \"Paty Marin\"\nteam = \"service\"\n",
        log.display()
    ));
    let d = Daemon::start(&cfg);
    let src = r#"source="asterisk_queue_log""#;
    let m = wait_for(30, "the sample to be read", || async {
        let m = counters(&d).await;
        (m.get(&format!("callwatch_events_received_total{{{src}}}")) == Some(&23.0)).then_some(m)
    })
    .await;
    // Paty Marin's lines (3 CONNECT, 1 COMPLETECALLER, 4 COMPLETEAGENT of
    // which 3 repeated) are hers; the other members are not in the table.
    assert!(
        metric(
            &m,
            &format!("callwatch_source_unmapped_agents_total{{{src}}}")
        ) >= 4.0,
        "John Rembold, Tania, Sara and Vanessa Flores are counted as unmapped"
    );
    let snap = wait_for(20, "the agents", || async {
        let s = get_json(&d, "/api/v1/snapshot").await;
        let found = s["agents"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["agent"] == "a-107"));
        found.then_some(s)
    })
    .await;
    let agents = snap["agents"].as_array().expect("agents");
    assert!(
        !agents.iter().any(|a| a["agent"] == "Paty Marin"),
        "the PBX name is replaced by the agent id"
    );
    let paty = agents
        .iter()
        .find(|a| a["agent"] == "a-107")
        .expect("a-107");
    assert_eq!(paty["talk_s"], 122.0 + 228.0);
}

/// A QueueStatus / CoreShowChannels answer, as Asterisk 16+ sends it.
fn status_answer(
    members: &[(&str, &str, bool)],
    entries: &[(&str, &str)],
    channels: &[&str],
) -> String {
    let mut o = String::from(
        "Response: Success\r\nActionID: callwatch-resync\r\nEventList: start\r\nMessage: Queue status will follow\r\n\r\n",
    );
    for (member, queue, paused) in members {
        let p = if *paused {
            "1\r\nPausedReason: lunch"
        } else {
            "0"
        };
        o += &format!("Event: QueueMember\r\nQueue: {queue}\r\nMemberName: {member}\r\nInterface: {member}\r\nMembership: dynamic\r\nStatus: 1\r\nPaused: {p}\r\nActionID: callwatch-resync\r\n\r\n");
    }
    for (i, (call, queue)) in entries.iter().enumerate() {
        o += &format!("Event: QueueEntry\r\nQueue: {queue}\r\nPosition: {}\r\nChannel: PJSIP/trunk-{call}\r\nUniqueid: {call}\r\nCallerIDNum: +4930{i}\r\nWait: 12\r\nActionID: callwatch-resync\r\n\r\n", i + 1);
    }
    o += "Event: QueueStatusComplete\r\nActionID: callwatch-resync\r\nEventList: Complete\r\nListItems: 0\r\n\r\n";
    o += "Response: Success\r\nActionID: callwatch-channels\r\nEventList: start\r\nMessage: Channels will follow\r\n\r\n";
    for c in channels {
        o += &format!("Event: CoreShowChannel\r\nActionID: callwatch-channels\r\nChannel: PJSIP/trunk-{c}\r\nUniqueid: {c}\r\nLinkedid: {c}\r\nApplication: Queue\r\n\r\n");
    }
    o += &format!("Event: CoreShowChannelsComplete\r\nActionID: callwatch-channels\r\nEventList: Complete\r\nListItems: {}\r\n\r\n", channels.len());
    o
}

/// Issue 17: after a reconnect the PBX's lists are the truth. While the
/// source was disconnected two waiting calls left, the connected call
/// ended, one member was removed, another left one of its two queues and
/// the paused one unpaused; the resync closes all of it, and the state
/// equals what the server lists.
#[tokio::test]
async fn an_ami_resync_replaces_what_the_pbx_no_longer_lists() {
    let server = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = server.local_addr().expect("addr");
    let first = status_answer(
        &[
            ("PJSIP/anna", "sales", true),
            ("PJSIP/bob", "sales", false),
            ("PJSIP/carl", "sales", false),
            ("PJSIP/carl", "support", false),
        ],
        &[("c1", "sales"), ("c2", "sales"), ("c3", "sales"), ("c4", "support")],
        &["c1", "c2", "c3", "c4"],
    ) + "Event: AgentConnect\r\nQueue: support\r\nUniqueid: c4\r\nMemberName: PJSIP/carl\r\nHoldTime: 12\r\nRingTime: 2\r\n\r\n";
    let second = status_answer(
        &[
            ("PJSIP/anna", "sales", false),
            ("PJSIP/carl", "sales", false),
        ],
        &[("c3", "sales")],
        &["c3"],
    );
    tokio::spawn(async move {
        for n in 1u32.. {
            let Ok((s, _)) = server.accept().await else {
                return;
            };
            let (r, mut w) = s.into_split();
            let mut r = BufReader::new(r);
            let _ = w.write_all(b"Asterisk Call Manager/5.0.1\r\n").await;
            let _ = read_action(&mut r).await;
            let _ = w.write_all(b"Response: Success\r\nActionID: callwatch-login\r\nMessage: Authentication accepted\r\n\r\n").await;
            let status = read_action(&mut r).await;
            let channels = read_action(&mut r).await;
            assert!(status.contains("Action: QueueStatus"), "{status}");
            assert!(channels.contains("Action: CoreShowChannels"), "{channels}");
            let answer = if n == 1 { &first } else { &second };
            let _ = w.write_all(answer.as_bytes()).await;
            if n == 1 {
                continue; // dropped: the PBX changes while disconnected
            }
            while !read_action(&mut r).await.is_empty() {}
        }
    });
    let d = Daemon::start(&config(&format!(
        "[[sources]]\ntype = \"asterisk_ami\"\nname = \"pbx\"\naddress = \"{addr}\"\nusername = \"callwatch\"\nsecret = \"s3cret\"\n"
    )).replace("mode = \"event\"", "mode = \"system\""));
    let kind = |k: &str| {
        format!(r#"callwatch_source_resync_corrections_total{{source="asterisk_ami",kind="{k}"}}"#)
    };
    let m = wait_for(60, "the resync after the reconnect", || async {
        let m = counters(&d).await;
        (m.get(&kind("member_removed")) == Some(&2.0) && m.get(&kind("call_ended")) == Some(&1.0))
            .then_some(m)
    })
    .await;
    assert_eq!(metric(&m, &kind("call_exited")), 2.0);
    assert_eq!(metric(&m, &kind("pause_cleared")), 1.0);
    assert_eq!(
        metric(
            &m,
            r#"callwatch_calls_exited_total{queue="sales",reason="resync"}"#
        ),
        2.0
    );
    assert_eq!(
        metric(&m, r#"callwatch_calls_abandoned_total{queue="sales"}"#),
        0.0
    );
    assert_eq!(
        metric(&m, r#"callwatch_queue_calls_waiting{queue="sales"}"#),
        1.0
    );
    assert_eq!(
        metric(&m, r#"callwatch_queue_calls_waiting{queue="support"}"#),
        0.0
    );
    let refused: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("callwatch_events_rejected_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(refused, 0.0, "a resync's events are all accepted");
    // The agents as the server lists them.
    let snap = get_json(&d, "/api/v1/snapshot").await;
    let agent = |id: &str| {
        snap["agents"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["agent"] == id))
            .cloned()
            .unwrap_or_else(|| panic!("{id} in {snap}"))
    };
    assert_eq!(agent("PJSIP/anna")["state"], "available");
    assert_eq!(agent("PJSIP/anna")["queues"], serde_json::json!(["sales"]));
    assert_eq!(agent("PJSIP/bob")["state"], "offline");
    assert_eq!(agent("PJSIP/carl")["queues"], serde_json::json!(["sales"]));
    assert_eq!(agent("PJSIP/carl")["state"], "available", "c4 ended");
}

/// A callwatch restart (not only a reconnect): the AMI source stores
/// what it believes beside the journal, so the first resync after the
/// restart closes the waiting call that left while callwatch was down.
#[tokio::test]
async fn an_ami_resync_after_a_callwatch_restart_closes_what_ended_meanwhile() {
    let server = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = server.local_addr().expect("addr");
    let first = status_answer(
        &[("PJSIP/anna", "sales", false)],
        &[("c1", "sales"), ("c2", "sales")],
        &["c1", "c2"],
    );
    let second = status_answer(
        &[("PJSIP/anna", "sales", false)],
        &[("c2", "sales")],
        &["c2"],
    );
    tokio::spawn(async move {
        for n in 1u32.. {
            let Ok((s, _)) = server.accept().await else {
                return;
            };
            let (r, mut w) = s.into_split();
            let mut r = BufReader::new(r);
            let _ = w.write_all(b"Asterisk Call Manager/5.0.1\r\n").await;
            let _ = read_action(&mut r).await;
            let _ = w.write_all(b"Response: Success\r\nActionID: callwatch-login\r\nMessage: Authentication accepted\r\n\r\n").await;
            let _ = read_action(&mut r).await;
            let _ = read_action(&mut r).await;
            let answer = if n == 1 { &first } else { &second };
            let _ = w.write_all(answer.as_bytes()).await;
            while !read_action(&mut r).await.is_empty() {}
        }
    });
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().display().to_string();
    let cfg = config(&format!(
        "[[sources]]\ntype = \"asterisk_ami\"\nname = \"pbx\"\naddress = \"{addr}\"\nusername = \"callwatch\"\nsecret = \"s3cret\"\n"
    )).replace("mode = \"event\"", "mode = \"system\"");
    let waiting = r#"callwatch_queue_calls_waiting{queue="sales"}"#;
    let d = Daemon::start_args(&cfg, &["--data-dir", &data]);
    wait_for(30, "two calls waiting", || async {
        (counters(&d).await.get(waiting) == Some(&2.0)).then_some(())
    })
    .await;
    assert!(d.terminate().success());
    let d = Daemon::start_args(&cfg, &["--data-dir", &data]);
    let m = wait_for(30, "the resync after the restart", || async {
        let m = counters(&d).await;
        (m.get(waiting) == Some(&1.0)).then_some(m)
    })
    .await;
    assert_eq!(
        metric(
            &m,
            r#"callwatch_calls_exited_total{queue="sales",reason="resync"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            r#"callwatch_source_resync_corrections_total{source="asterisk_ami",kind="call_exited"}"#
        ),
        1.0
    );
}
