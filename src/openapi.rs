//! The OpenAPI 3.1 description of the HTTP API, served at
//! `/api/v1/openapi.json`.
//!
//! Query parameters and the bodies integrators parse (ingest replies,
//! errors, the backlog, `/readyz`, `/api/v1/state`, reload replies) are
//! generated from the Rust types with schemars; the event body is the
//! schema of `schema.rs`. The large read views (snapshot, scorecards,
//! QA, goals) are described as objects and documented in docs/api.md:
//! their shape follows the configuration (KPIs, goals, privacy) more
//! than any one type. The document follows the running configuration:
//! `security` is required where a token is configured, and the event
//! schema is strict when `ingest.strict` is on.

use schemars::generate::{Contract, SchemaGenerator, SchemaSettings};
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use crate::api::{
    CardsQuery, CoachingQuery, CompareQuery, ErrorBody, IngestReply, QaQuery, Readiness,
    SamplesQuery, SignalsQuery, StateView,
};
use crate::privacy::Endpoint;
use crate::snapshot::{BacklogList, BacklogQuery};

/// Where the document puts its named schemas.
const COMPONENTS: &str = "/components/schemas";
/// Prefix of the event schemas among the components.
const EVENT_PREFIX: &str = "event_";

/// Who may call an operation.
#[derive(Clone, Copy)]
enum Guard {
    /// Anyone (health, the wallboard's static files, the schemas).
    Open,
    /// The ingest token (`auth.ingest_token`).
    Ingest,
    /// A read role the privacy policy lets call the endpoint.
    Read(Endpoint),
}

/// Who may call what in this configuration: the document says where a
/// token is required, optional (the anonymous role may call it too) or
/// not asked for. Decided by `privacy`, only reported here.
pub struct Access<'a> {
    pub ingest_token: bool,
    pub read_tokens: bool,
    /// Whether a request without a token may call the endpoint.
    pub anonymous: &'a dyn Fn(Endpoint) -> bool,
}

/// What a response carries.
enum Body {
    Json(Value),
    /// A non-JSON media type, described by a string schema.
    Text(&'static str),
    /// A JSON document of its own media type.
    Document(&'static str),
    Empty,
}

/// One operation being described.
struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    guard: Guard,
    /// The query parameters (a schemars object schema), if any.
    query: Option<Value>,
    /// A path parameter: its name and what it is.
    path_param: Option<(&'static str, &'static str)>,
    request: Option<Value>,
    responses: Vec<(u16, &'static str, Body)>,
}

/// Builds the schemas the operations refer to.
struct Schemas {
    /// Response bodies: what the daemon serialises.
    out: SchemaGenerator,
    /// Query strings: what it deserialises, inlined into parameters.
    query: SchemaGenerator,
}

impl Schemas {
    fn new() -> Schemas {
        let out = SchemaSettings::draft2020_12().with(|s| {
            s.definitions_path = COMPONENTS.into();
            s.meta_schema = None;
            s.contract = Contract::Serialize;
        });
        let query = SchemaSettings::draft2020_12().with(|s| {
            s.meta_schema = None;
            s.inline_subschemas = true;
        });
        Schemas {
            out: out.into_generator(),
            query: query.into_generator(),
        }
    }

    fn json<T: JsonSchema>(&mut self) -> Body {
        Body::Json(self.out.subschema_for::<T>().to_value())
    }

    fn query<T: JsonSchema>(&mut self) -> Option<Value> {
        Some(self.query.root_schema_for::<T>().to_value())
    }
}

/// Turns a query struct's object schema into OpenAPI parameters.
fn parameters(object: &Value) -> Vec<Value> {
    let required: Vec<&str> = object["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = object["properties"].as_object() else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, schema)| {
            let mut schema = schema.clone();
            let description = schema.as_object_mut().and_then(|o| o.remove("description"));
            // `Option<T>` is `["T", "null"]`: a query parameter is absent,
            // never null.
            if let Some(types) = schema.get_mut("type").and_then(Value::as_array_mut) {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    schema["type"] = types[0].clone();
                }
            }
            let mut p = json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "schema": schema,
            });
            if let Some(d) = description {
                p["description"] = d;
            }
            p
        })
        .collect()
}

/// Rewrites `#/$defs/X` references of the event schema to its place
/// among the components.
fn rebase(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get_mut("$ref") {
                if let Some(name) = r.strip_prefix("#/$defs/") {
                    *r = format!("#{COMPONENTS}/{EVENT_PREFIX}{name}");
                }
            }
            o.values_mut().for_each(rebase);
        }
        Value::Array(a) => a.iter_mut().for_each(rebase),
        _ => {}
    }
}

/// The event schema's definitions as components, and the schema of one
/// event referring to them.
fn event_components(strict: bool) -> (Map<String, Value>, Value) {
    let mut schema = crate::schema::events_schema(strict);
    rebase(&mut schema);
    let mut defs = Map::new();
    if let Some(o) = schema.as_object_mut() {
        if let Some(Value::Object(d)) = o.remove("$defs") {
            defs = d
                .into_iter()
                .map(|(k, v)| (format!("{EVENT_PREFIX}{k}"), v))
                .collect();
        }
        o.remove("$schema");
        o.remove("$id");
    }
    (defs, schema)
}

const JSON: &str = "application/json";
/// What `busy()` and a daemon still recovering answer.
const UNAVAILABLE: (u16, &str, Body) = (
    503,
    "Recovering, or the writer did not publish a view in time; retry after `Retry-After`",
    Body::Text("text/plain; charset=utf-8"),
);

fn error_body(s: &mut Schemas) -> Body {
    s.json::<ErrorBody<'static>>()
}

/// The responses every read endpoint can give besides its own.
fn read_errors(s: &mut Schemas, query: bool) -> Vec<(u16, &'static str, Body)> {
    let mut v = vec![
        (401, "Missing or wrong bearer token", error_body(s)),
        (403, "This role may not read this endpoint", error_body(s)),
        UNAVAILABLE,
    ];
    if query {
        v.push((
            400,
            "A query parameter is unknown or invalid",
            error_body(s),
        ));
    }
    v
}

fn any_object(what: &'static str) -> Body {
    Body::Json(json!({"type": "object", "description": what}))
}

/// A read endpoint answering JSON.
fn read(
    s: &mut Schemas,
    e: Endpoint,
    path: &'static str,
    summary: &'static str,
    query: Option<Value>,
    ok: Body,
) -> Op {
    let mut responses = vec![(200, "The view, as this role may see it", ok)];
    responses.extend(read_errors(s, query.is_some()));
    Op {
        method: "get",
        path,
        summary,
        guard: Guard::Read(e),
        query,
        path_param: None,
        request: None,
        responses,
    }
}

fn open(path: &'static str, summary: &'static str, media: &'static str) -> Op {
    Op {
        method: "get",
        path,
        summary,
        guard: Guard::Open,
        query: None,
        path_param: None,
        request: None,
        responses: vec![(200, summary, Body::Text(media))],
    }
}

/// Every operation of `api::router`.
fn operations(s: &mut Schemas, event: &Value) -> Vec<Op> {
    let html = "text/html; charset=utf-8";
    let mut ops = vec![
        open("/", "The wallboard page", html),
        open("/wallboard", "The wallboard page", html),
        open(
            "/wallboard.js",
            "The wallboard's script",
            "text/javascript; charset=utf-8",
        ),
        open(
            "/wallboard.css",
            "The wallboard's style sheet",
            "text/css; charset=utf-8",
        ),
        open("/healthz", "The process is up", "text/plain; charset=utf-8"),
        Op {
            method: "get",
            path: "/ws",
            summary: "The live feed (a websocket; docs/feed.md)",
            guard: Guard::Read(Endpoint::Feed),
            path_param: None,
            query: Some(json!({"type": "object", "properties": {
                "token": {"type": "string", "description": "A read token, for browsers that cannot set headers"},
                "queues": {"type": "string", "description": "Comma-separated queues the feed is scoped to (at most 64)"},
            }})),
            request: None,
            responses: vec![
                (101, "Switching to the websocket protocol", Body::Empty),
                (
                    400,
                    "Not a websocket upgrade request",
                    Body::Text("text/plain; charset=utf-8"),
                ),
                (
                    426,
                    "Not a websocket upgrade request",
                    Body::Text("text/plain; charset=utf-8"),
                ),
                (401, "Missing or wrong token", error_body(s)),
                (403, "This role may not read the feed", error_body(s)),
                UNAVAILABLE,
            ],
        },
        Op {
            method: "post",
            path: "/api/v1/events",
            summary: "Ingest events: one JSON object, a JSON array, or NDJSON (docs/api.md)",
            guard: Guard::Ingest,
            query: None,
            path_param: None,
            // An empty body is a batch of no events, answered 200.
            request: Some(json!({
                "required": false,
                "content": {
                    JSON: {"schema": {"oneOf": [event, {"type": "array", "items": event}]}},
                    "application/x-ndjson": {"schema": {"type": "string", "description": "One event per line"}},
                },
            })),
            responses: vec![
                (200, "Every event was applied or was a duplicate", s.json::<IngestReply>()),
                (422, "Some events were refused; the others were applied", s.json::<IngestReply>()),
                (400, "The body is not a JSON array or NDJSON", error_body(s)),
                (401, "Missing or wrong ingest token", error_body(s)),
                (408, "The body did not arrive within server.http_body_timeout", error_body(s)),
                (409, "This daemon takes events from its JetStream stream only", error_body(s)),
                (413, "Over server.max_body_bytes or server.max_events_per_request", error_body(s)),
                (415, "The Content-Type cannot hold events", error_body(s)),
                (503, "Storage failed or the daemon is stopping; nothing was applied, resend after Retry-After", error_body(s)),
            ],
        },
        Op {
            method: "post",
            path: "/api/v1/sources/{name}",
            summary: "A platform's callback for the HTTP-delivered source of that name (docs/sources/)",
            // Each source checks its platform's own signature or token.
            guard: Guard::Open,
            query: None,
            path_param: Some(("name", "The `name` of the source in `[[sources]]`")),
            request: Some(json!({
                "required": false,
                "content": {
                    "application/x-www-form-urlencoded": {"schema": {"type": "object", "additionalProperties": {"type": "string"}}},
                    JSON: {"schema": {}},
                },
            })),
            responses: vec![
                (204, "Taken (and durable): Twilio", Body::Empty),
                (
                    200,
                    "Taken (and durable): Amazon Connect (Firehose's requestId and timestamp, or {})",
                    any_object("The platform's expected answer"),
                ),
                (400, "Not an event of this platform", error_body(s)),
                (403, "The platform's signature or token is missing or wrong", error_body(s)),
                (404, "No HTTP-delivered source of that name", error_body(s)),
                (408, "The body did not arrive within server.http_body_timeout", error_body(s)),
                (413, "Over the source's max_body_bytes", error_body(s)),
                (429, "Over the source's rate_per_second; retry after Retry-After", error_body(s)),
                (503, "The source is busy or stopping; retry after Retry-After", error_body(s)),
            ],
        },
        read(
            s,
            Endpoint::Snapshot, "/api/v1/snapshot",
            "The live state: queues, agents, tasks, KPIs",
            None,
            any_object("The snapshot (docs/api.md)"),
        ),
    ];
    let q = s.query::<BacklogQuery>();
    let ok = s.json::<BacklogList>();
    ops.push(read(
        s,
        Endpoint::Backlog,
        "/api/v1/backlog",
        "Open tasks, oldest first",
        q,
        ok,
    ));
    let ok = s.json::<StateView>();
    ops.push(read(
        s,
        Endpoint::State,
        "/api/v1/state",
        "The state digest, to compare replicas",
        None,
        ok,
    ));
    let q = s.query::<CardsQuery>();
    let mut cards = read(
        s,
        Endpoint::Scorecards,
        "/api/v1/scorecards",
        "Scorecards of the goal matrix",
        q,
        any_object("Scorecards (docs/api.md)"),
    );
    cards
        .responses
        .push((404, "No scorecard for that scope", error_body(s)));
    ops.push(cards);
    let q = s.query::<CompareQuery>();
    ops.push(read(
        s,
        Endpoint::Scorecards,
        "/api/v1/scorecards/compare",
        "Scores compared across one scope kind",
        q,
        any_object("The comparison (docs/api.md)"),
    ));
    ops.push(read(
        s,
        Endpoint::Goals,
        "/api/v1/goals",
        "The goal matrix",
        None,
        any_object("The goal matrix (docs/goals.md)"),
    ));
    let mut sheet = read(
        s,
        Endpoint::Goals,
        "/goals",
        "The goal matrix as a page",
        None,
        Body::Text(html),
    );
    sheet.responses.retain(|r| r.0 != 400);
    ops.push(sheet);
    let q = s.query::<QaQuery>();
    let mut scores = read(
        s,
        Endpoint::Quality,
        "/api/v1/qa/scores",
        "QA scores",
        q,
        any_object("QA scores (docs/quality.md)"),
    );
    scores
        .responses
        .push((404, "No QA score for that scope", error_body(s)));
    ops.push(scores);
    let q = s.query::<SignalsQuery>();
    ops.push(read(
        s,
        Endpoint::Quality,
        "/api/v1/qa/signals",
        "Integrity signals",
        q,
        any_object("Signals (docs/quality.md)"),
    ));
    let q = s.query::<SamplesQuery>();
    ops.push(read(
        s,
        Endpoint::Quality,
        "/api/v1/qa/samples",
        "QA samples",
        q,
        any_object("Samples (docs/quality.md)"),
    ));
    let q = s.query::<CoachingQuery>();
    ops.push(read(
        s,
        Endpoint::Quality,
        "/api/v1/coaching",
        "Coaching rows",
        q,
        any_object("Coaching (docs/quality.md)"),
    ));
    ops.push(read(
        s,
        Endpoint::Metrics,
        "/metrics",
        "Prometheus metrics (docs/metrics.md)",
        None,
        Body::Text("text/plain; version=0.0.4; charset=utf-8"),
    ));
    let mut schema = open(
        "/api/v1/schema/events.json",
        "The JSON Schema of the events",
        "",
    );
    schema.responses[0].2 = Body::Document("application/schema+json");
    ops.push(schema);
    let doc = s.json::<Value>();
    ops.push(Op {
        method: "get",
        path: "/api/v1/openapi.json",
        summary: "This description",
        guard: Guard::Open,
        query: None,
        path_param: None,
        request: None,
        responses: vec![(200, "This description", doc)],
    });
    let ready = s.json::<Readiness>();
    let not_ready = s.json::<Readiness>();
    ops.push(Op {
        method: "get",
        path: "/readyz",
        summary: "Ready once recovery is done, with what it found",
        guard: Guard::Open,
        query: None,
        path_param: None,
        request: None,
        responses: vec![(200, "Ready", ready), (503, "Recovering", not_ready)],
    });
    let done = s.json::<crate::reload::Done>();
    let mut reload = Op {
        method: "post",
        path: "/api/v1/admin/reload",
        summary: "Re-read the configuration file, as SIGHUP does",
        guard: Guard::Read(Endpoint::Admin),
        query: None,
        path_param: None,
        request: None,
        responses: vec![
            (200, "What the reload applied", done),
            (422, "Why nothing was applied", error_body(s)),
            (501, "This process cannot reload", error_body(s)),
        ],
    };
    reload.responses.extend(read_errors(s, false));
    ops.push(reload);
    ops
}

/// The `security` of an operation behind `guard`, if it asks for any.
fn security(guard: Guard, access: &Access) -> Option<Value> {
    let bearer = json!({"bearer": []});
    match guard {
        Guard::Open => None,
        Guard::Ingest => access.ingest_token.then(|| json!([bearer])),
        Guard::Read(_) if !access.read_tokens => None,
        // `{}`: no token is also accepted.
        Guard::Read(e) if (access.anonymous)(e) => Some(json!([bearer, {}])),
        Guard::Read(_) => Some(json!([bearer])),
    }
}

fn content(body: Body) -> Option<Value> {
    match body {
        Body::Json(schema) => Some(json!({JSON: {"schema": schema}})),
        Body::Text(media) => Some(json!({media: {"schema": {"type": "string"}}})),
        Body::Document(media) => Some(json!({media: {"schema": {"type": "object"}}})),
        Body::Empty => None,
    }
}

/// The document for a daemon with this configuration.
pub fn document(access: &Access, strict: bool) -> Value {
    let mut s = Schemas::new();
    let (event_defs, event) = event_components(strict);
    let ops = operations(&mut s, &event);
    let mut paths = Map::new();
    for op in ops {
        let mut responses = Map::new();
        for (status, description, body) in op.responses {
            let mut r = json!({ "description": description });
            if let Some(c) = content(body) {
                r["content"] = c;
            }
            responses.insert(status.to_string(), r);
        }
        let mut o = json!({
            "summary": op.summary,
            "operationId": format!("{} {}", op.method, op.path),
            "responses": responses,
        });
        let mut params = op.query.as_ref().map(parameters).unwrap_or_default();
        if let Some((name, description)) = op.path_param {
            params.push(json!({"name": name, "in": "path", "required": true, "description": description, "schema": {"type": "string", "minLength": 1}}));
        }
        if !params.is_empty() {
            o["parameters"] = Value::Array(params);
        }
        if let Some(b) = op.request {
            o["requestBody"] = b;
        }
        if let Some(sec) = security(op.guard, access) {
            o["security"] = sec;
        }
        let entry = paths
            .entry(op.path)
            .or_insert_with(|| Value::Object(Map::new()));
        entry[op.method] = o;
    }
    let mut schemas = s.out.take_definitions(true);
    schemas.extend(event_defs);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "callwatch",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The HTTP API of the callwatch daemon (docs/api.md).",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No tokens: everyone may call everything.
    fn open_config() -> Access<'static> {
        Access {
            ingest_token: false,
            read_tokens: false,
            anonymous: &|_| true,
        }
    }

    /// Every route `api::router` serves is described, and nothing else.
    #[test]
    fn every_route_is_described() {
        let source = include_str!("api.rs");
        let mut routed: Vec<(String, String)> = Vec::new();
        for part in source.split(".route(\"").skip(1) {
            let (path, rest) = part.split_once('"').expect("a quoted path");
            let method = rest
                .trim_start_matches(',')
                .trim_start()
                .split('(')
                .next()
                .expect("a method router")
                .to_string();
            routed.push((method, path.to_string()));
        }
        assert!(routed.len() > 20, "found only {routed:?}");
        let doc = document(&open_config(), false);
        let mut described: Vec<(String, String)> = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                described.push((method.clone(), path.clone()));
            }
        }
        routed.sort();
        described.sort();
        assert_eq!(routed, described);
    }

    #[test]
    fn queries_become_optional_typed_parameters() {
        let doc = document(&open_config(), false);
        let params = &doc["paths"]["/api/v1/backlog"]["get"]["parameters"];
        let limit = params
            .as_array()
            .expect("parameters")
            .iter()
            .find(|p| p["name"] == "limit")
            .expect("limit");
        assert_eq!(limit["in"], "query");
        assert_eq!(limit["required"], false);
        assert_eq!(limit["schema"]["type"], "integer");
        let period = doc["paths"]["/api/v1/scorecards"]["get"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .find(|p| p["name"] == "period")
            .expect("period")
            .clone();
        assert_eq!(
            period["schema"]["enum"],
            json!(["today", "week", "month", "60m"])
        );
        assert_eq!(period["required"], false);
    }

    #[test]
    fn security_follows_the_configured_tokens() {
        let open = document(&open_config(), false);
        assert!(open["paths"]["/api/v1/snapshot"]["get"]["security"].is_null());
        // Read tokens, and an anonymous role that may read the snapshot
        // but not the QA scores.
        let access = Access {
            ingest_token: false,
            read_tokens: true,
            anonymous: &|e| e == Endpoint::Snapshot,
        };
        let doc = document(&access, false);
        let sec = |path: &str, method: &str| doc["paths"][path][method]["security"].clone();
        assert_eq!(sec("/api/v1/snapshot", "get"), json!([{"bearer": []}, {}]));
        assert_eq!(sec("/api/v1/qa/scores", "get"), json!([{"bearer": []}]));
        assert_eq!(sec("/api/v1/admin/reload", "post"), json!([{"bearer": []}]));
        // Ingest has its own token, unset here.
        assert!(sec("/api/v1/events", "post").is_null());
        assert!(sec("/healthz", "get").is_null());
        let ingest = Access {
            ingest_token: true,
            ..open_config()
        };
        let doc = document(&ingest, false);
        assert_eq!(
            doc["paths"]["/api/v1/events"]["post"]["security"],
            json!([{"bearer": []}])
        );
    }

    /// Every `$ref` points at a component that exists.
    #[test]
    fn references_resolve() {
        fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(o) => {
                    if let Some(Value::String(r)) = o.get("$ref") {
                        out.push(r);
                    }
                    o.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        for strict in [false, true] {
            let doc = document(&open_config(), strict);
            let mut all = Vec::new();
            refs(&doc, &mut all);
            assert!(all.len() > 10);
            for r in all {
                let pointer = r.strip_prefix('#').expect("a local reference");
                assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
            }
        }
    }
}
