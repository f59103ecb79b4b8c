//! Keeps the docs true: examples decode, every metric is documented.

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
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md"))
        .expect("docs/metrics.md");
    let table = callwatch::metric::doc_table();
    assert!(
        doc.contains(&table),
        "docs/metrics.md's family table is stale; it should end with:\n{table}"
    );
}
