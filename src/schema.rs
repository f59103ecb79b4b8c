//! The canonical event schema as data: which fields each event type
//! takes, which of them are required, and what values they hold.
//!
//! One table serves three readers: strict ingest (`ingest.strict`, which
//! refuses a field its type does not take), the JSON Schema served at
//! `/api/v1/schema/events.json`, and the field table in docs/events.md.
//! The decoder ([`crate::event::decode`]) stays the authority on what is
//! valid; tests hold this table to it (every field listed survives a
//! decode and re-encode, every required one is refused when absent), so
//! the three cannot drift from the code.

use serde_json::{json, Map, Value};

use crate::event::{Tag, MAX_LOGIN_QUEUES, MAX_QA_ITEMS, MAX_TEXT, TYPES};
use crate::money::{MAX_PRICE, MAX_QUANTITY};

/// Whether a field must be present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Required,
    Optional,
    /// Exactly one field of this group must be present (a contact named
    /// by `call`, `task` or `sale`; a transfer `to_agent` or `to_queue`).
    OneOf(&'static str),
    /// At most one field of this group may be present.
    AtMostOne(&'static str),
}

/// What a field holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A non-empty string of at most [`MAX_TEXT`] bytes.
    Text,
    /// An RFC 3339 time with an offset.
    Time,
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// A number of seconds in [0, 7 days].
    Seconds,
    /// A number in [0, max].
    Number(f64),
    Integer,
    /// An array of [`Kind::Text`], at most this many.
    Texts(usize),
    /// An array of 1 to 4 distinct tags.
    Tags,
    /// QA items: `{name, score, max}` objects, at most [`MAX_QA_ITEMS`].
    Items,
    /// A task kind: `[a-z0-9_]{1,32}`.
    Label,
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub need: Need,
    pub kind: Kind,
}

const fn req(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        need: Need::Required,
        kind,
    }
}

const fn opt(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        need: Need::Optional,
        kind,
    }
}

const fn one(group: &'static str, name: &'static str) -> Field {
    Field {
        name,
        need: Need::OneOf(group),
        kind: Kind::Text,
    }
}

const fn link(name: &'static str) -> Field {
    Field {
        name,
        need: Need::AtMostOne("link"),
        kind: Kind::Text,
    }
}

use Kind::{Integer, Label, Seconds, Text, Time};

const AGENT_STATES: [&str; 6] = [
    "available",
    "on_call",
    "on_hold",
    "wrap_up",
    "paused",
    "offline",
];
const SALE_KINDS: [&str; 6] = [
    "new",
    "upsell",
    "cross_sell",
    "upgrade",
    "downgrade",
    "renewal",
];
/// A caller who left the queue without an agent (`call_exited`).
const EXITS: [&str; 5] = ["timeout", "key", "empty", "leaveempty", "resync"];
/// A caller turned away before the queue (`call_refused`).
const REFUSALS: [&str; 3] = ["full", "joinempty", "closed"];
const DIRECTIONS: [&str; 2] = ["inbound", "outbound"];
const RESULTS: [&str; 5] = [
    "reached",
    "no_answer",
    "busy",
    "voicemail",
    "invalid_number",
];
const MONEY: Kind = Kind::Number(MAX_PRICE);

/// The envelope every event carries.
pub const ENVELOPE: [Field; 4] = [
    req("id", Text),
    req("ts", Time),
    req("type", Text),
    opt("site", Text),
];

/// The fields of each type besides the envelope, in documentation order.
pub const BODIES: [(&str, &[Field]); 24] = [
    (
        "agent_login",
        &[
            req("agent", Text),
            opt("name", Text),
            opt("team", Text),
            opt("queues", Kind::Texts(MAX_LOGIN_QUEUES)),
        ],
    ),
    (
        "agent_state",
        &[
            req("agent", Text),
            req("state", Kind::Enum(&AGENT_STATES)),
            opt("reason", Text),
        ],
    ),
    (
        "agent_logout",
        &[
            req("agent", Text),
            opt("queues", Kind::Texts(MAX_LOGIN_QUEUES)),
        ],
    ),
    (
        "call_offered",
        &[
            req("call", Text),
            req("queue", Text),
            opt("direction", Kind::Enum(&DIRECTIONS)),
            opt("customer", Text),
        ],
    ),
    (
        "call_answered",
        &[
            req("call", Text),
            req("agent", Text),
            opt("wait_s", Seconds),
        ],
    ),
    ("call_hold", &[req("call", Text)]),
    ("call_resume", &[req("call", Text)]),
    ("call_abandoned", &[req("call", Text)]),
    (
        "call_exited",
        &[req("call", Text), req("reason", Kind::Enum(&EXITS))],
    ),
    (
        "call_refused",
        &[
            req("queue", Text),
            req("reason", Kind::Enum(&REFUSALS)),
            opt("call", Text),
            opt("customer", Text),
        ],
    ),
    (
        "call_missed",
        &[
            req("call", Text),
            req("agent", Text),
            opt("ring_s", Seconds),
        ],
    ),
    (
        "call_transferred",
        &[
            req("call", Text),
            one("target", "to_agent"),
            one("target", "to_queue"),
        ],
    ),
    (
        "call_ended",
        &[
            req("call", Text),
            opt("talk_s", Seconds),
            opt("hold_s", Seconds),
        ],
    ),
    ("wrap_ended", &[req("call", Text), opt("outcome", Text)]),
    (
        "task_created",
        &[
            req("task", Text),
            req("kind", Label),
            opt("queue", Text),
            opt("customer", Text),
            opt("due", Time),
            opt("priority", Integer),
        ],
    ),
    ("task_assigned", &[req("task", Text), req("agent", Text)]),
    (
        "task_attempted",
        &[
            req("task", Text),
            req("agent", Text),
            req("result", Kind::Enum(&RESULTS)),
        ],
    ),
    (
        "task_completed",
        &[req("task", Text), opt("agent", Text), opt("outcome", Text)],
    ),
    ("task_cancelled", &[req("task", Text), opt("reason", Text)]),
    (
        "sale",
        &[
            req("sale", Text),
            req("agent", Text),
            req("kind", Kind::Enum(&SALE_KINDS)),
            req("unit_price", MONEY),
            opt("quantity", Kind::Number(MAX_QUANTITY)),
            opt("previous_value", MONEY),
            opt("product", Text),
            opt("currency", Text),
            link("call"),
            link("task"),
        ],
    ),
    ("sale_cancelled", &[req("sale", Text), opt("reason", Text)]),
    (
        "qa_scored",
        &[
            one("contact", "call"),
            one("contact", "task"),
            one("contact", "sale"),
            req("agent", Text),
            req("evaluator", Text),
            req("form", Text),
            req("score", Kind::Number(100.0)),
            opt("items", Kind::Items),
        ],
    ),
    (
        "contact_tagged",
        &[
            one("contact", "call"),
            one("contact", "task"),
            req("agent", Text),
            req("tags", Kind::Tags),
        ],
    ),
    ("heartbeat", &[]),
];

/// The body fields of `ty`, or `None` for a type callwatch does not know.
pub fn body(ty: &str) -> Option<&'static [Field]> {
    BODIES.iter().find(|(t, _)| *t == ty).map(|(_, f)| *f)
}

/// Whether an event of type `ty` takes a field called `key`.
pub fn takes(ty: &str, key: &str) -> bool {
    ENVELOPE.iter().any(|f| f.name == key)
        || body(ty).is_some_and(|fs| fs.iter().any(|f| f.name == key))
}

fn kind_doc(k: Kind) -> String {
    match k {
        Kind::Text => "string".into(),
        Kind::Time => "RFC 3339 time".into(),
        Kind::Enum(v) => v
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(" \\| "),
        Kind::Seconds => "seconds, 0 to 604800".into(),
        Kind::Number(max) => format!("number, 0 to {max}"),
        Kind::Integer => "integer".into(),
        Kind::Texts(n) => format!("array of strings, at most {n}"),
        Kind::Tags => format!("array of 1 to {} tags", Tag::ALL.len()),
        Kind::Items => format!("array of `{{name, score, max}}`, at most {MAX_QA_ITEMS}"),
        Kind::Label => "string matching `[a-z0-9_]{1,32}`".into(),
    }
}

/// The markdown table of docs/events.md: every type, its required and
/// optional fields (the envelope's `id`, `ts`, `type` are always
/// required, `site` always optional).
pub fn doc_table() -> String {
    let mut out = String::from("| type | required | optional |\n|---|---|---|\n");
    for (ty, fields) in BODIES {
        let show = |f: &Field| format!("`{}` ({})", f.name, kind_doc(f.kind));
        let mut required: Vec<String> = fields
            .iter()
            .filter(|f| f.need == Need::Required)
            .map(show)
            .collect();
        let mut groups: Vec<&str> = Vec::new();
        for f in fields {
            if let Need::OneOf(g) = f.need {
                if !groups.contains(&g) {
                    groups.push(g);
                }
            }
        }
        for g in groups {
            let names: Vec<String> = fields
                .iter()
                .filter(|f| f.need == Need::OneOf(g))
                .map(|f| format!("`{}`", f.name))
                .collect();
            required.push(format!("exactly one of {} (string)", names.join(", ")));
        }
        let mut optional: Vec<String> = fields
            .iter()
            .filter(|f| f.need == Need::Optional)
            .map(show)
            .collect();
        let links: Vec<String> = fields
            .iter()
            .filter(|f| matches!(f.need, Need::AtMostOne(_)))
            .map(|f| format!("`{}`", f.name))
            .collect();
        if !links.is_empty() {
            optional.push(format!("at most one of {} (string)", links.join(", ")));
        }
        let cell = |v: Vec<String>| match v.is_empty() {
            true => "–".to_string(),
            false => v.join("; "),
        };
        out.push_str(&format!(
            "| `{ty}` | {} | {} |\n",
            cell(required),
            cell(optional)
        ));
    }
    out
}

fn kind_schema(k: Kind) -> Value {
    let text = json!({"type": "string", "minLength": 1, "maxLength": MAX_TEXT});
    match k {
        // maxLength counts characters, the decoder bytes: the schema is
        // the looser of the two for non-ASCII text.
        Kind::Text => text,
        Kind::Time => json!({"type": "string", "format": "date-time"}),
        Kind::Enum(v) => json!({"type": "string", "enum": v}),
        Kind::Seconds => json!({"type": "number", "minimum": 0, "maximum": 604_800}),
        Kind::Number(max) => json!({"type": "number", "minimum": 0, "maximum": max}),
        Kind::Integer => json!({"type": "integer", "minimum": i32::MIN, "maximum": i32::MAX}),
        Kind::Texts(n) => json!({"type": "array", "items": text, "maxItems": n}),
        Kind::Tags => json!({
            "type": "array",
            "items": {"enum": Tag::ALL.map(Tag::as_str)},
            "minItems": 1,
            "maxItems": Tag::ALL.len(),
        }),
        Kind::Items => json!({
            "type": "array",
            "maxItems": MAX_QA_ITEMS,
            "items": {
                "type": "object",
                "required": ["name", "score", "max"],
                "additionalProperties": false,
                "properties": {
                    "name": text,
                    "score": {"type": "number", "minimum": 0},
                    "max": {"type": "number", "exclusiveMinimum": 0, "maximum": 1000},
                },
            },
        }),
        Kind::Label => json!({"type": "string", "pattern": "^[a-z0-9_]{1,32}$"}),
    }
}

/// The JSON Schema (2020-12) of one event of type `ty`. With `strict`,
/// fields the type does not take are refused, as `ingest.strict` does.
fn type_schema(ty: &str, fields: &[Field], strict: bool) -> Value {
    let mut props = Map::new();
    let mut required: Vec<&str> = vec!["id", "ts", "type"];
    for f in ENVELOPE.iter().chain(fields) {
        let mut k = kind_schema(f.kind);
        if f.need != Need::Required {
            // The decoder reads a null as the field's absence.
            k = json!({"anyOf": [k, {"type": "null"}]});
        }
        props.insert(f.name.into(), k);
        if f.need == Need::Required && !required.contains(&f.name) {
            required.push(f.name);
        }
    }
    props.insert("type".into(), json!({"const": ty}));
    let mut schema = json!({
        "type": "object",
        "properties": props,
        "required": required,
    });
    let mut all_of = Vec::new();
    let mut groups: Vec<Need> = Vec::new();
    for f in fields {
        if matches!(f.need, Need::OneOf(_) | Need::AtMostOne(_)) && !groups.contains(&f.need) {
            groups.push(f.need);
        }
    }
    for g in groups {
        let names: Vec<&str> = fields
            .iter()
            .filter(|f| f.need == g)
            .map(|f| f.name)
            .collect();
        // Given, and not null (which is absence).
        let given =
            |n: &str| json!({"required": [n], "properties": {n: {"not": {"type": "null"}}}});
        let only = |n: &str| {
            let others: Vec<Value> = names
                .iter()
                .filter(|o| **o != n)
                .map(|o| given(o))
                .collect();
            let mut one = given(n);
            one["not"] = json!({"anyOf": others});
            one
        };
        let mut choices: Vec<Value> = names.iter().map(|n| only(n)).collect();
        if matches!(g, Need::AtMostOne(_)) {
            let any: Vec<Value> = names.iter().map(|n| given(n)).collect();
            choices.push(json!({"not": {"anyOf": any}}));
        }
        all_of.push(json!({"oneOf": choices}));
    }
    if !all_of.is_empty() {
        schema["allOf"] = Value::Array(all_of);
    }
    if strict {
        schema["additionalProperties"] = json!(false);
    }
    schema
}

/// The JSON Schema (2020-12) of a canonical event, one definition per
/// type; `strict` describes `ingest.strict` (no unknown fields).
pub fn events_schema(strict: bool) -> Value {
    let mut defs = Map::new();
    for (ty, fields) in BODIES {
        defs.insert(ty.into(), type_schema(ty, fields, strict));
    }
    let refs: Vec<Value> = TYPES
        .iter()
        .map(|t| json!({"if": {"properties": {"type": {"const": t}}, "required": ["type"]}, "then": {"$ref": format!("#/$defs/{t}")}}))
        .collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://callwatch.invalid/schema/events.json",
        "title": "callwatch canonical event, v1",
        "description": "One event as sent to POST /api/v1/events or TCP ingest (docs/events.md). Bounds the decoder checks beyond this schema: string lengths in bytes, plausible times, `due` within 400 days of `ts`, QA item scores within their max.",
        "type": "object",
        "required": ["id", "ts", "type"],
        "properties": {"type": {"enum": TYPES}},
        "allOf": refs,
        "$defs": defs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{decode, encode, AgentStatus, ExitReason, SaleKind};
    use crate::reject::Reason;

    /// A valid value for a field of this kind.
    fn sample(f: &Field) -> Value {
        match f.kind {
            Kind::Text => json!(format!("{}-1", f.name)),
            Kind::Time => json!("2026-03-02T09:00:00+01:00"),
            Kind::Enum(v) => json!(v[v.len() - 1]),
            Kind::Seconds => json!(12.5),
            Kind::Number(max) => json!((max / 2.0).min(50.0)),
            Kind::Integer => json!(3),
            Kind::Texts(_) => json!(["orders", "service"]),
            Kind::Tags => json!(["objection"]),
            Kind::Items => json!([{"name": "greeting", "score": 4, "max": 5}]),
            Kind::Label => json!("offer_followup"),
        }
    }

    /// Every field of `ty` (the first of each exactly-one group).
    fn full(ty: &str, fields: &[Field]) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("id".into(), json!("e-1"));
        m.insert("ts".into(), json!("2026-03-02T08:00:00+01:00"));
        m.insert("type".into(), json!(ty));
        m.insert("site".into(), json!("hq"));
        let mut groups = Vec::new();
        for f in fields {
            if let Need::OneOf(g) | Need::AtMostOne(g) = f.need {
                if groups.contains(&g) {
                    continue;
                }
                groups.push(g);
            }
            m.insert(f.name.into(), sample(f));
        }
        m
    }

    fn keys(line: &str) -> Vec<String> {
        let v: Map<String, Value> = serde_json::from_str(line).expect("object");
        let mut k: Vec<String> = v.keys().cloned().collect();
        k.sort();
        k
    }

    #[test]
    fn the_table_names_every_type_in_order() {
        let names: Vec<&str> = BODIES.iter().map(|(t, _)| *t).collect();
        assert_eq!(names, TYPES);
        // The value lists are the enums' own.
        assert_eq!(AGENT_STATES, AgentStatus::ALL.map(AgentStatus::as_str));
        assert_eq!(SALE_KINDS, SaleKind::ALL.map(SaleKind::as_str));
        for r in ExitReason::ALL {
            let s = r.as_str();
            assert_eq!(REFUSALS.contains(&s), r.is_refusal(), "{s}");
            assert_ne!(EXITS.contains(&s), REFUSALS.contains(&s), "{s}");
        }
    }

    /// Each field the table lists survives a decode and re-encode (so the
    /// decoder reads it), and what the encoder writes is in the table (so
    /// strict mode refuses nothing the decoder reads).
    #[test]
    fn every_listed_field_is_read_and_nothing_read_is_unlisted() {
        for (ty, fields) in BODIES {
            let mut groups: Vec<Vec<&Field>> = vec![fields.iter().collect()];
            // Each member of a one-of group in turn.
            for f in fields.iter().filter(|f| matches!(f.need, Need::OneOf(_))) {
                groups.push(
                    fields
                        .iter()
                        .filter(|o| o.need != f.need || o.name == f.name)
                        .collect(),
                );
            }
            for set in groups {
                let mut m = full(ty, fields);
                for f in fields {
                    if !set.iter().any(|s| s.name == f.name) {
                        m.remove(f.name);
                    }
                }
                for f in &set {
                    if let Need::OneOf(_) = f.need {
                        for o in fields.iter().filter(|o| o.need == f.need) {
                            m.remove(o.name);
                        }
                        m.insert(f.name.into(), sample(f));
                    }
                }
                let line = Value::Object(m.clone()).to_string();
                let ev = decode(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
                let again = encode(&ev);
                let mut sent: Vec<String> = m.keys().cloned().collect();
                sent.sort();
                assert_eq!(keys(&again), sent, "{ty}: {line} re-encodes as {again}");
                for k in keys(&again) {
                    assert!(takes(ty, &k), "{ty} writes {k}, which the table lacks");
                }
            }
        }
    }

    /// A null is the absence of the field, to the decoder as to the
    /// schema: for every field that is not required, an event with it
    /// null decodes as the event without it, and both fit the schema.
    #[test]
    fn a_null_optional_field_is_its_absence() {
        let lenient = jsonschema::validator_for(&events_schema(false)).expect("a schema");
        let fits = |v: &Value| lenient.is_valid(v);
        for (ty, fields) in BODIES {
            let base = full(ty, fields);
            for f in ENVELOPE.iter().chain(fields.iter()) {
                if f.need == Need::Required || !base.contains_key(f.name) {
                    continue;
                }
                let mut without = base.clone();
                without.remove(f.name);
                let mut null = base.clone();
                null.insert(f.name.into(), Value::Null);
                let (a, b) = (Value::Object(without), Value::Object(null));
                let d = |v: &Value| decode(v.to_string().as_bytes());
                // The same event, or the same refusal (a one-of group left
                // empty).
                let (x, y) = (format!("{:?}", d(&a)), format!("{:?}", d(&b)));
                assert_eq!(x, y, "{ty}.{}: absent, then null", f.name);
                assert_eq!(
                    fits(&a),
                    fits(&b),
                    "{ty}.{} null vs absent in the schema",
                    f.name
                );
            }
        }
    }

    /// A field of the wire record a type does not list is ignored by the
    /// decoder for that type (or refused): never read into the event.
    #[test]
    fn no_type_reads_a_field_it_does_not_list() {
        let wire = crate::event::wire_fields();
        assert!(wire.len() > 30 && wire.contains(&"unit_price"), "{wire:?}");
        for name in wire {
            assert!(
                BODIES.iter().any(|(t, _)| takes(t, name)),
                "the wire field {name} is in no type's table"
            );
        }
        let any_field = |name: &str| {
            BODIES
                .iter()
                .flat_map(|(_, fs)| fs.iter())
                .find(|f| f.name == name)
                .map(sample)
                .unwrap_or(json!("x"))
        };
        for (ty, fields) in BODIES {
            for name in wire.iter().filter(|n| !takes(ty, n)) {
                let mut m = full(ty, fields);
                m.insert((*name).into(), any_field(name));
                let line = Value::Object(m).to_string();
                if let Ok(ev) = decode(line.as_bytes()) {
                    let again = encode(&ev);
                    assert!(
                        !keys(&again).iter().any(|k| k == name),
                        "{ty} reads `{name}`, which its table lacks: {again}"
                    );
                    assert_eq!(ev, decode(full_line(ty, fields).as_bytes()).expect("full"));
                }
            }
        }
    }

    fn full_line(ty: &str, fields: &[Field]) -> String {
        Value::Object(full(ty, fields)).to_string()
    }

    #[test]
    fn every_required_field_is_refused_when_absent() {
        for (ty, fields) in BODIES {
            for f in fields.iter().filter(|f| f.need != Need::Optional) {
                if matches!(f.need, Need::AtMostOne(_)) {
                    continue;
                }
                let mut m = full(ty, fields);
                m.remove(f.name);
                if let Need::OneOf(_) = f.need {
                    for o in fields.iter().filter(|o| o.need == f.need) {
                        m.remove(o.name);
                    }
                }
                let line = Value::Object(m).to_string();
                let err = decode(line.as_bytes()).expect_err(&line);
                assert_eq!(err.reason, Reason::MissingField, "{line}: {err}");
                assert!(err.message.contains(f.name), "{line}: {err}");
            }
        }
    }

    #[test]
    fn every_listed_value_decodes() {
        for (ty, fields) in BODIES {
            for f in fields {
                let Kind::Enum(values) = f.kind else { continue };
                for v in values {
                    let mut m = full(ty, fields);
                    m.insert(f.name.into(), json!(v));
                    let line = Value::Object(m).to_string();
                    let ev = decode(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
                    let again: Map<String, Value> =
                        serde_json::from_str(&encode(&ev)).expect("json");
                    // `direction` inbound is the default, left out.
                    if let Some(back) = again.get(f.name) {
                        assert_eq!(back, &json!(v), "{line}");
                    }
                }
                let mut m = full(ty, fields);
                m.insert(f.name.into(), json!("no_such_value"));
                let line = Value::Object(m).to_string();
                assert!(decode(line.as_bytes()).is_err(), "{line}");
            }
        }
    }

    #[test]
    fn the_schema_has_one_definition_per_type() {
        let s = events_schema(false);
        let defs = s["$defs"].as_object().expect("defs");
        assert_eq!(defs.len(), TYPES.len());
        assert_eq!(
            defs["sale"]["required"],
            json!(["id", "ts", "type", "sale", "agent", "kind", "unit_price"])
        );
        assert_eq!(
            events_schema(true)["$defs"]["heartbeat"]["additionalProperties"],
            json!(false)
        );
    }
}
