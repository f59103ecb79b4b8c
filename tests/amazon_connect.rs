//! The Amazon Connect source against the real binary, fed as the AWS
//! forwarders deliver: a Kinesis Data Firehose HTTP endpoint delivery
//! (base64 records, the access key header, the `requestId` answer) of
//! AWS's sample agent event, EventBridge contact events (AWS's sample
//! `CONNECTED_TO_AGENT` among them), and agent events that end the call
//! and its after-call work; a wrong key and a body that is no event.

mod common;

use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

const KEY: &str = "firehose-key-0123456789";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/amazon_connect");

/// AWS's sample agent event as JSON: its `//` comments removed and the
/// `},` its first `Concurrency` entry lacks put back (both as printed in
/// the AWS documentation).
fn sample_agent_event() -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURES}/sample-agent-event-stream.txt"))
        .expect("fixture");
    let mut json = String::new();
    for line in text.lines() {
        json.push_str(line.split("//").next().unwrap_or(""));
        json.push('\n');
    }
    let json = json.replacen(
        "\"MaximumSlots\": 3  \n                    {",
        "\"MaximumSlots\": 3  \n                    },{",
        1,
    );
    serde_json::from_str(&json).expect("the sample, repaired, is JSON")
}

fn sample_contact_event() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURES}/sample-contact-event.json")).expect("fixture"),
    )
    .expect("JSON")
}

fn source() -> String {
    format!(
        "[[sources]]\ntype = \"amazon_connect\"\nname = \"connect\"\naccess_key = \"{KEY}\"\n\
         [sources.queues]\n\"arn:aws:connect:us-west-2:123456789012:instance/i/queue/q-orders\" = \"orders\"\n\
         [sources.agents]\n\"arn\" = \"aestest\"\n"
    )
}

async fn post(d: &Daemon, body: &Value, header: (&str, &str)) -> (u16, Value) {
    let r = client()
        .post(d.url("/api/v1/sources/connect"))
        .header("content-type", "application/json")
        .header(header.0, header.1)
        .body(body.to_string())
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A Firehose HTTP endpoint delivery of `records`.
fn firehose(request_id: &str, records: &[Value]) -> Value {
    let data: Vec<Value> = records
        .iter()
        .map(|r| json!({"data": base64::engine::general_purpose::STANDARD.encode(r.to_string())}))
        .collect();
    json!({"requestId": request_id, "timestamp": 1_619_894_628_000i64, "records": data})
}

/// An EventBridge contact event like AWS's sample, for `contact`.
fn contact(id: &str, contact: &str, kind: &str, extra: Value) -> Value {
    let mut e = sample_contact_event();
    e["id"] = json!(id);
    e["detail"]["eventType"] = json!(kind);
    e["detail"]["contactId"] = json!(contact);
    if let Value::Object(x) = extra {
        for (k, v) in x {
            e["detail"][k] = v;
        }
    }
    e
}

/// Voice contacts of a snapshot: (contact id, state).
type Contacts<'a> = &'a [(&'a str, &'a str)];

/// An agent event like AWS's sample: `kind` at `ts`, the agent's status
/// before and after, and its voice contacts (id, state) before and after.
fn agent_event(
    id: &str,
    kind: &str,
    ts: &str,
    status: (&str, &str),
    contacts: (Contacts, Contacts),
) -> Value {
    let mut e = sample_agent_event();
    e["AgentARN"] = json!("arn");
    e["EventId"] = json!(id);
    e["EventType"] = json!(kind);
    e["EventTimestamp"] = json!(ts);
    let list = |cs: &[(&str, &str)]| -> Value {
        cs.iter()
            .map(|(c, s)| json!({"ContactId": c, "Channel": "VOICE", "State": s, "InitiationMethod": "INBOUND"}))
            .collect()
    };
    e["PreviousAgentSnapshot"]["AgentStatus"]["Name"] = json!(status.0);
    e["CurrentAgentSnapshot"]["AgentStatus"]["Name"] = json!(status.1);
    e["PreviousAgentSnapshot"]["Contacts"] = list(contacts.0);
    e["CurrentAgentSnapshot"]["Contacts"] = list(contacts.1);
    e
}

#[tokio::test]
async fn firehose_and_eventbridge_deliveries_make_calls_and_agent_states() {
    let d = Daemon::start(&config(&source()));
    let firehose_key = ("x-amz-firehose-access-key", KEY);
    let api_key = ("x-api-key", KEY);

    // AWS's sample, a heart beat of an offline agent, through Firehose:
    // answered with the requestId, passed over.
    let (status, reply) = post(
        &d,
        &firehose("rid-1", &[sample_agent_event()]),
        firehose_key,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["requestId"], "rid-1");
    assert!(
        reply["timestamp"].as_i64().is_some_and(|t| t > 0),
        "{reply}"
    );

    // The agent logs in and becomes available (Firehose, two records).
    let login = agent_event(
        "ev-1",
        "LOGIN",
        "2021-05-01T18:40:00.000Z",
        ("Offline", "Offline"),
        (&[], &[]),
    );
    let ready = agent_event(
        "ev-2",
        "STATE_CHANGE",
        "2021-05-01T18:40:05.000Z",
        ("Offline", "Available"),
        (&[], &[]),
    );
    let (status, _) = post(&d, &firehose("rid-2", &[login, ready]), firehose_key).await;
    assert_eq!(status, 200);
    // A call queues, and AWS's sample connects it to the agent (EventBridge).
    let c1 = "11111111-1111-1111-1111-111111111111";
    let queued = contact(
        "eb-1",
        c1,
        "QUEUED",
        json!({"queueInfo": {"queueArn": "arn:aws:connect:us-west-2:123456789012:instance/i/queue/q-orders", "enqueueTimestamp": "2021-05-01T18:43:00.000Z"},
               "customerEndpoint": {"address": "+12065550100", "type": "TELEPHONE_NUMBER"}}),
    );
    assert_eq!(post(&d, &queued, api_key).await.0, 200);
    assert_eq!(post(&d, &sample_contact_event(), api_key).await.0, 200);
    // The agent's snapshots: the contact ends (after-call work), then
    // leaves the snapshot (the work is done).
    let ended = agent_event(
        "ev-3",
        "STATE_CHANGE",
        "2021-05-01T18:45:48.000Z",
        ("Available", "Available"),
        (&[(c1, "CONNECTED")], &[(c1, "ENDED")]),
    );
    let done = agent_event(
        "ev-4",
        "STATE_CHANGE",
        "2021-05-01T18:46:18.000Z",
        ("Available", "Available"),
        (&[(c1, "ENDED")], &[]),
    );
    assert_eq!(
        post(&d, &firehose("rid-3", &[ended, done]), firehose_key)
            .await
            .0,
        200
    );
    // A second call is disconnected before an agent took it.
    let c2 = "22222222-2222-2222-2222-222222222222";
    let q2 = json!({"queueInfo": {"queueArn": "arn:aws:connect:us-west-2:123456789012:instance/i/queue/q-orders", "enqueueTimestamp": "2021-05-01T18:47:00.000Z"}});
    assert_eq!(
        post(&d, &contact("eb-2", c2, "QUEUED", q2.clone()), api_key)
            .await
            .0,
        200
    );
    let mut gone = q2;
    gone["disconnectTimestamp"] = json!("2021-05-01T18:47:40.000Z");
    assert_eq!(
        post(&d, &contact("eb-3", c2, "DISCONNECTED", gone), api_key)
            .await
            .0,
        200
    );
    // The agent goes to lunch.
    let lunch = agent_event(
        "ev-5",
        "STATE_CHANGE",
        "2021-05-01T18:50:00.000Z",
        ("Available", "Lunch"),
        (&[], &[]),
    );
    assert_eq!(
        post(&d, &firehose("rid-4", &[lunch]), firehose_key).await.0,
        200
    );

    let snap = get_json(&d, "/api/v1/snapshot").await;
    let q = snap["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["name"] == "orders")
        .expect("orders: the queue ARN mapped to its name");
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
    // Wait 48 s (queued 18:43:00, connected 18:43:48), talk 120 s, after-
    // call work 30 s: Connect's own times.
    assert_eq!(q["today_contacts"]["talk_s"], 120.0, "{q}");
    assert_eq!(q["today_contacts"]["wrap_s"], 30.0, "{q}");
    let agent = snap["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["agent"] == "aestest")
        .expect("the agent ARN mapped to aestest");
    assert_eq!(agent["state"], "paused");
    assert_eq!(agent["reason"], "Lunch");
    assert_eq!(agent["queues"], json!(["Omni-channel-queue"]));
    let m = metrics_text(&d).await;
    assert!(!m.contains("12065550100"), "the caller is no label");
    let m = parse_metrics(&m);
    assert_eq!(
        metric(&m, r#"callwatch_call_wait_seconds_sum{queue="orders"}"#),
        48.0
    );
    assert!(
        metric(
            &m,
            r#"callwatch_source_skipped_total{source="amazon_connect",reason="passed"}"#
        ) >= 1.0
    );
    let refused: f64 = m
        .iter()
        .filter(|(k, _)| {
            k.starts_with("callwatch_events_rejected_total{") && k.contains("amazon_connect")
        })
        .map(|(_, v)| v)
        .sum();
    assert_eq!(refused, 0.0, "nothing refused");

    // The same delivery again (Firehose retries): duplicates.
    let before = metric(&m, "callwatch_events_duplicate_total");
    let again = agent_event(
        "ev-5",
        "STATE_CHANGE",
        "2021-05-01T18:50:00.000Z",
        ("Available", "Lunch"),
        (&[], &[]),
    );
    assert_eq!(
        post(&d, &firehose("rid-4", &[again]), firehose_key).await.0,
        200
    );
    let m = parse_metrics(&metrics_text(&d).await);
    assert_eq!(metric(&m, "callwatch_events_duplicate_total"), before + 1.0);

    // A wrong key: 403, in Firehose's answer format, counted.
    let (status, reply) = post(
        &d,
        &firehose("rid-5", &[sample_agent_event()]),
        ("x-amz-firehose-access-key", "wrong"),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(reply["requestId"], "rid-5");
    assert!(
        reply["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("access key")),
        "{reply}"
    );
    let bad = r#"callwatch_events_rejected_total{source="amazon_connect",reason="bad_signature"}"#;
    assert_eq!(metric(&parse_metrics(&metrics_text(&d).await), bad), 1.0);
    // No key at all, and a body that is no event.
    assert_eq!(
        post(&d, &sample_contact_event(), ("x-other", "x")).await.0,
        403
    );
    let (status, reply) = post(&d, &json!({"hello": "world"}), api_key).await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .is_some_and(|e| e.contains("not an Amazon Connect event")),
        "{reply}"
    );
}
