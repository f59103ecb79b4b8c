//! Keeps the docs true: examples decode, every metric is documented,
//! the privacy table is the policy's. `CALLWATCH_BLESS=1` rewrites the
//! generated tables in place (then review the diff).

/// Checks that `doc` holds `table` (a markdown table starting with the
/// same header line); with `CALLWATCH_BLESS=1` replaces it instead.
fn holds_table(path: &str, table: &str) {
    let doc = std::fs::read_to_string(path).expect("doc");
    if doc.contains(table) {
        return;
    }
    if std::env::var_os("CALLWATCH_BLESS").is_some() {
        let header = table.lines().next().expect("header");
        let start = doc
            .find(header)
            .expect("the table's header line in the doc");
        let rest = &doc[start..];
        let end = rest
            .find("\n\n")
            .map(|i| start + i + 1)
            .unwrap_or(doc.len());
        let new = format!("{}{}{}", &doc[..start], table, &doc[end..]);
        std::fs::write(path, new).expect("write");
        return;
    }
    panic!("{path}'s generated table is stale; it should be:\n{table}");
}

#[test]
fn the_privacy_table_is_the_policy() {
    holds_table(
        concat!(env!("CARGO_MANIFEST_DIR"), "/docs/privacy.md"),
        &callwatch::privacy::doc_table(),
    );
}

#[test]
fn the_event_field_table_is_the_schema() {
    holds_table(
        concat!(env!("CARGO_MANIFEST_DIR"), "/docs/events.md"),
        &callwatch::schema::doc_table(),
    );
}

#[test]
fn every_event_example_in_the_docs_decodes() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/events.md"))
        .expect("docs/events.md");
    let mut seen = std::collections::BTreeSet::new();
    let mut in_json = false;
    for line in doc.lines() {
        match line.trim() {
            "```json" => in_json = true,
            "```" => in_json = false,
            l if in_json => {
                let ev =
                    callwatch::event::decode(l.as_bytes()).unwrap_or_else(|e| panic!("{l}: {e}"));
                seen.insert(ev.body.type_name());
            }
            _ => {}
        }
    }
    for ty in callwatch::event::TYPES {
        assert!(seen.contains(ty), "docs/events.md has no example of {ty}");
    }
}

#[test]
fn every_metric_family_is_documented() {
    holds_table(
        concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md"),
        &callwatch::metric::doc_table(),
    );
}

/// Every generated alert links to a section of docs/runbook.md that exists.
#[test]
fn every_alert_has_its_runbook_section() {
    let root = env!("CARGO_MANIFEST_DIR");
    let alerts =
        std::fs::read_to_string(format!("{root}/config/prometheus/alerts.yml")).expect("alerts");
    let runbook = std::fs::read_to_string(format!("{root}/docs/runbook.md")).expect("runbook");
    // GitHub's anchors: lower case, spaces to dashes, punctuation dropped.
    let anchors: Vec<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(|h| {
            h.to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-')
                .collect::<String>()
                .replace(' ', "-")
        })
        .collect();
    let mut n = 0;
    for url in alerts
        .lines()
        .filter_map(|l| l.trim().strip_prefix("runbook_url: "))
    {
        let anchor = url.trim_matches('"').rsplit('#').next().unwrap_or("");
        assert!(
            anchors.iter().any(|a| a == anchor),
            "{url}: no section in docs/runbook.md ({anchors:?})"
        );
        n += 1;
    }
    assert!(n >= 9, "{n} alerts");
}

/// The ```toml blocks of a doc.
fn toml_blocks(path: &str) -> Vec<String> {
    let doc = std::fs::read_to_string(path).expect("doc");
    doc.split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_source_and_publish_example_in_the_docs_is_valid() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut checked = 0;
    for doc in [
        "docs/sources/amazon-connect.md",
        "docs/sources/asterisk.md",
        "docs/sources/freeswitch.md",
        "docs/sources/nats.md",
        "docs/sources/twilio.md",
        "docs/scale-out.md",
    ] {
        for block in toml_blocks(&format!("{root}/{doc}")) {
            if !block.contains("[[sources]]") && !block.contains("[publish]") {
                continue;
            }
            let cfg = callwatch::config::Config::parse(&block, doc)
                .unwrap_or_else(|e| panic!("{doc}: {e}\n{block}"));
            callwatch::source::validate(&cfg).unwrap_or_else(|e| panic!("{doc}: {e}\n{block}"));
            if block.contains("[publish]") {
                callwatch::publish::PublishConfig::of(&cfg)
                    .unwrap_or_else(|e| panic!("{doc}: {e}\n{block}"));
            }
            // The check can fail: a misspelt key is refused with its path.
            if block.contains("servers = ") && block.contains("[[sources]]") {
                let bad = block.replacen("servers = ", "server = ", 1);
                let cfg = callwatch::config::Config::parse(&bad, doc).expect("parses");
                let err = callwatch::source::validate(&cfg).expect_err("misspelt key");
                assert!(err.to_string().contains("sources[0]"), "{err}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 6, "only {checked} examples found");
}

/// Every example event in docs/events.md is valid under the JSON Schema
/// the daemon serves, lenient and strict; and the schema refuses what the
/// decoder refuses for a missing or unknown field.
#[test]
fn every_event_example_in_the_docs_fits_the_schema() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/events.md"))
        .expect("docs/events.md");
    let lenient = jsonschema::validator_for(&callwatch::schema::events_schema(false))
        .expect("a valid schema");
    let strict =
        jsonschema::validator_for(&callwatch::schema::events_schema(true)).expect("a valid schema");
    let mut in_json = false;
    let mut n = 0;
    for line in doc.lines() {
        match line.trim() {
            "```json" => in_json = true,
            "```" => in_json = false,
            l if in_json => {
                let v: serde_json::Value = serde_json::from_str(l).expect("json");
                for (name, s) in [("lenient", &lenient), ("strict", &strict)] {
                    let errors: Vec<String> = s.iter_errors(&v).map(|e| e.to_string()).collect();
                    assert!(errors.is_empty(), "{name}: {l}: {errors:?}");
                }
                n += 1;
            }
            _ => {}
        }
    }
    assert!(n >= callwatch::event::TYPES.len());
    let missing =
        serde_json::json!({"id":"1","ts":"2026-03-02T08:00:00Z","type":"call_answered","call":"c"});
    assert!(!lenient.is_valid(&missing));
    let both = serde_json::json!({"id":"1","ts":"2026-03-02T08:00:00Z","type":"call_transferred","call":"c","to_agent":"a","to_queue":"q"});
    assert!(!lenient.is_valid(&both));
    let extra = serde_json::json!({"id":"1","ts":"2026-03-02T08:00:00Z","type":"call_hold","call":"c","colour":"red"});
    assert!(lenient.is_valid(&extra) && !strict.is_valid(&extra));
    let unknown = serde_json::json!({"id":"1","ts":"2026-03-02T08:00:00Z","type":"call_exploded"});
    assert!(!lenient.is_valid(&unknown));
}
