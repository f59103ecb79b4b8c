//! The HTTP API: ingest, snapshot, backlog, metrics, health.
//!
//! Read handlers answer from the view the writer published (`view.rs`)
//! and never touch the engine; what a role may see of it is decided by
//! `privacy::Policy` alone.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use subtle::ConstantTimeEq;

use axum::extract::ws::WebSocketUpgrade;

use crate::config::Period;
use crate::config::{AuthConfig, PrivacyConfig};
use crate::event;
use crate::feed::{self, board::Scope, Hub};
use crate::goal::Scope as GoalScope;
use crate::metric;
use crate::privacy::{self, Endpoint, Role};
use crate::reject::{Reason, Rejection};
use crate::scorecard::{self, Scorecard};
use crate::snapshot::BacklogQuery;
use crate::source::batch::Decoded;
use crate::writer::{Ingest, IngestError, Shared, Wanted};

pub const SOURCE: &str = "http";

/// What the HTTP layer needs besides the shared state.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub limits: IngestLimits,
    pub auth: AuthConfig,
    pub privacy: PrivacyConfig,
    /// The goal matrix, for the goal sheet.
    pub matrix: Arc<crate::goal::Matrix>,
    pub currency: String,
    /// The default period of QA scores (`quality.period`).
    pub qa_period: Period,
    /// The wallboard page, rendered for the configuration.
    pub wallboard: axum::body::Bytes,
    /// `storage.journal = "stream"`: events come from the stream only,
    /// HTTP ingest is refused.
    pub stream_only: bool,
}

#[derive(Clone)]
struct App {
    shared: Arc<Shared>,
    ingest: Ingest,
    /// Loaded per request: a reload swaps it.
    opts: Arc<arc_swap::ArcSwap<HttpOptions>>,
    hub: Arc<Hub>,
    reload: Option<tokio::sync::mpsc::Sender<crate::reload::Request>>,
}

/// The API. `opts` may be swapped while it serves (a reload); `reload`
/// carries `POST /api/v1/admin/reload` to the daemon.
pub fn router(
    shared: Arc<Shared>,
    ingest: Ingest,
    opts: Arc<arc_swap::ArcSwap<HttpOptions>>,
    hub: Arc<Hub>,
    reload: Option<tokio::sync::mpsc::Sender<crate::reload::Request>>,
) -> Router {
    Router::new()
        .route("/", get(wallboard_page))
        .route("/wallboard", get(wallboard_page))
        .route("/wallboard.js", get(wallboard_js))
        .route("/wallboard.css", get(wallboard_css))
        .route("/ws", get(ws))
        .route("/api/v1/events", post(post_events))
        .route("/api/v1/sources/{name}", post(post_source))
        .route("/api/v1/snapshot", get(get_snapshot))
        .route("/api/v1/backlog", get(get_backlog))
        .route("/api/v1/state", get(get_state))
        .route("/api/v1/scorecards", get(get_scorecards))
        .route("/api/v1/scorecards/compare", get(get_compare))
        .route("/api/v1/goals", get(get_goals))
        .route("/api/v1/qa/scores", get(get_qa_scores))
        .route("/api/v1/qa/signals", get(get_qa_signals))
        .route("/api/v1/qa/samples", get(get_qa_samples))
        .route("/api/v1/coaching", get(get_coaching))
        .route("/goals", get(goals_page))
        .route("/metrics", get(get_metrics))
        .route("/api/v1/schema/events.json", get(get_events_schema))
        .route("/api/v1/openapi.json", get(get_openapi))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/admin/reload", post(post_reload))
        .with_state(App {
            shared,
            ingest,
            opts,
            hub,
            reload,
        })
}

#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

fn error(status: StatusCode, reason: Option<Reason>, msg: &str) -> Response {
    (
        status,
        Json(ErrorBody {
            error: msg,
            reason: reason.map(Reason::as_str),
        }),
    )
        .into_response()
}

/// A request without the right bearer token.
struct Unauthorized;

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(ErrorBody {
                error: "missing or wrong bearer token",
                reason: None,
            }),
        )
            .into_response()
    }
}

/// Checks `Authorization: Bearer <token>` when a token is configured,
/// in constant time.
fn authorize(headers: &HeaderMap, token: Option<&str>) -> Result<(), Unauthorized> {
    let Some(token) = token else { return Ok(()) };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    match given {
        Some(g) if bool::from(g.ct_eq(token.as_bytes())) => Ok(()),
        _ => Err(Unauthorized),
    }
}

/// `POST /api/v1/admin/reload` (the supervisor role): re-reads the
/// configuration file as SIGHUP does; 200 with what was applied, 422 with
/// why nothing was.
async fn post_reload(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(r) = reader(&app, &headers, None, Endpoint::Admin) {
        return r.into_response();
    }
    let Some(tx) = app.reload.clone() else {
        return error(
            StatusCode::NOT_IMPLEMENTED,
            None,
            "this process cannot reload its configuration",
        );
    };
    let (reply, rx) = tokio::sync::oneshot::channel();
    if tx.send(reply).await.is_err() {
        return busy();
    }
    match rx.await {
        Ok(Ok(done)) => Json(done).into_response(),
        Ok(Err(why)) => error(StatusCode::UNPROCESSABLE_ENTITY, None, &why),
        Err(_) => busy(),
    }
}

/// The body of `/readyz`.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct Readiness {
    ready: bool,
    /// What the last recovery found (none before it has finished).
    recovery: Option<crate::store::Report>,
    /// The outcome of the last configuration reload.
    config: crate::reload::Status,
}

/// `200` once recovery is done, `503` before; the body says what the
/// last recovery found (docs/api.md).
async fn readyz(State(app): State<App>) -> Response {
    let ready = app.shared.is_ready();
    let body = Readiness {
        ready,
        recovery: app.shared.recovery_report(),
        config: app.shared.reload_status(),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct RejectedItem {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    reason: &'static str,
    error: String,
}

#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct IngestReply {
    accepted: usize,
    duplicates: usize,
    rejected: Vec<RejectedItem>,
}

/// Pulls the `id` out of an item that failed to decode, for the reply.
fn id_of(raw: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct OnlyId {
        id: Option<String>,
    }
    serde_json::from_slice::<OnlyId>(raw).ok()?.id
}

async fn post_events(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    let opts = app.opts.load();
    if opts.stream_only {
        return error(
            StatusCode::CONFLICT,
            None,
            "this daemon takes events from its JetStream stream only (storage.journal = \"stream\"); publish them there",
        );
    }
    ingest_request(&app.ingest, &opts.limits, headers, body).await
}

/// The JSON Schema of the events this daemon takes (strict when
/// `ingest.strict` is on). Open, like `/healthz`: it says nothing about
/// the desk.
async fn get_events_schema(State(app): State<App>) -> Response {
    let schema = crate::schema::events_schema(app.ingest.strict());
    (
        [(header::CONTENT_TYPE, "application/schema+json")],
        schema.to_string(),
    )
        .into_response()
}

/// How long a webhook source may take to answer (the platforms retry
/// after their own deadline: Twilio 15 s, Firehose 3 min).
const HOOK_REPLY: std::time::Duration = std::time::Duration::from_secs(10);

/// `POST /api/v1/sources/<name>`: a platform's callback for the webhook
/// source of that name (`source::hook`). The source checks its own
/// signature or token; here only what a client can make it hold is
/// bounded: the rate, the body, the queue and the wait.
async fn post_source(
    State(app): State<App>,
    axum::extract::Path(name): axum::extract::Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let timeout = app.opts.load().limits.body_timeout;
    source_request(&app.ingest, timeout, &name, &uri, headers, body).await
}

/// `POST /api/v1/sources/<name>` against any ingest handle (the daemon's
/// writer, or the edge publisher's buffer).
pub async fn source_request(
    ingest: &Ingest,
    body_timeout: std::time::Duration,
    name: &str,
    uri: &axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(hook) = ingest.hooks().get(name) else {
        return error(
            StatusCode::NOT_FOUND,
            None,
            &format!("no HTTP-delivered source named {name:?} ([[sources]] name)"),
        );
    };
    let busy = |status: StatusCode, why: &str| {
        (
            status,
            [(header::RETRY_AFTER, "1")],
            Json(ErrorBody {
                error: why,
                reason: None,
            }),
        )
            .into_response()
    };
    if hook.limiter.check().is_err() {
        ingest.skipped(hook.kind, "rate_limited");
        return busy(
            StatusCode::TOO_MANY_REQUESTS,
            "over this source's rate_per_second; retry",
        );
    }
    let limit = hook.max_body_bytes;
    let bytes = match tokio::time::timeout(body_timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(b)) => b,
        Err(_) => {
            ingest.telemetry().http_disconnected("body_timeout");
            return error(
                StatusCode::REQUEST_TIMEOUT,
                None,
                "the body did not arrive in time",
            );
        }
        Ok(Err(_)) => {
            ingest.received(hook.kind, 1);
            let r = Rejection::new(Reason::TooLarge, format!("body larger than {limit} bytes"));
            ingest.rejected(hook.kind, &r, b"");
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                Some(Reason::TooLarge),
                &format!("body larger than {limit} bytes (the source's max_body_bytes)"),
            );
        }
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    let request = crate::source::hook::Request {
        query: uri.query().map(str::to_string),
        headers,
        body: bytes,
        reply,
    };
    if hook.tx.try_send(request).is_err() {
        return busy(StatusCode::SERVICE_UNAVAILABLE, "the source is busy; retry");
    }
    match tokio::time::timeout(HOOK_REPLY, answer).await {
        Ok(Ok(r)) => {
            let status =
                StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, [(header::CONTENT_TYPE, r.content_type)], r.body).into_response()
        }
        _ => busy(
            StatusCode::SERVICE_UNAVAILABLE,
            "the source did not answer in time; retry",
        ),
    }
}

/// The OpenAPI description of this API, for this configuration (which
/// operations want a token; strict or lenient events). Open, like the
/// event schema.
async fn get_openapi(State(app): State<App>) -> Response {
    let opts = app.opts.load();
    let anonymous = privacy::resolve(None, &opts.auth, &opts.privacy).ok();
    let policy = app.hub.policy();
    let access = crate::openapi::Access {
        ingest_token: opts.auth.ingest_token.is_some(),
        read_tokens: privacy::any_read_token(&opts.auth),
        anonymous: &|e| anonymous.is_some_and(|r| policy.allows(r, e)),
    };
    Json(crate::openapi::document(&access, app.ingest.strict())).into_response()
}

/// The media type of an ingest body, when it is one that cannot hold
/// events. JSON, NDJSON and `text/plain` are taken, and so are a missing
/// type and curl's default for `-d` (`application/x-www-form-urlencoded`),
/// which the body is never parsed as; a file upload, XML or the like is
/// refused with 415 before the body is read.
fn unsupported_media_type(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(header::CONTENT_TYPE)?;
    let text = String::from_utf8_lossy(raw.as_bytes());
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let ok = matches!(
        essence.as_str(),
        "" | "application/json"
            | "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "text/plain"
            | "application/x-www-form-urlencoded"
    ) || essence.ends_with("+json");
    (!ok).then(|| text.into_owned())
}

/// What an HTTP ingest request may be.
#[derive(Debug, Clone)]
pub struct IngestLimits {
    pub token: Option<String>,
    pub max_body_bytes: usize,
    pub max_events_per_request: usize,
    /// The body must arrive whole within this (`server.http_body_timeout`).
    pub body_timeout: std::time::Duration,
}

impl IngestLimits {
    pub fn of(config: &crate::config::Config) -> IngestLimits {
        let s = &config.server;
        IngestLimits {
            token: config.auth.ingest_token.clone(),
            max_body_bytes: s.max_body_bytes,
            max_events_per_request: s.max_events_per_request,
            body_timeout: s.http_body_timeout,
        }
    }
}

/// `POST /api/v1/events` against any ingest handle (the daemon's writer,
/// or the edge publisher's buffer).
pub async fn ingest_request(
    ingest: &Ingest,
    limits: &IngestLimits,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(r) = authorize(&headers, limits.token.as_deref()) {
        return r.into_response();
    }
    if let Some(other) = unsupported_media_type(&headers) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            &format!("Content-Type {other:?} is not JSON; send application/x-ndjson or application/json (docs/api.md)"),
        );
    }
    let limit = limits.max_body_bytes;
    let bytes =
        match tokio::time::timeout(limits.body_timeout, axum::body::to_bytes(body, limit)).await {
            Ok(Ok(b)) => b,
            Err(_) => {
                // Nothing of a body that did not arrive is applied.
                ingest.telemetry().http_disconnected("body_timeout");
                let secs = limits.body_timeout.as_secs_f64();
                return error(
                    StatusCode::REQUEST_TIMEOUT,
                    None,
                    &format!("the body did not arrive within {secs} s (server.http_body_timeout)"),
                );
            }
            Ok(Err(_)) => {
                ingest.received(SOURCE, 1);
                let r = Rejection::new(Reason::TooLarge, format!("body larger than {limit} bytes"));
                ingest.rejected(SOURCE, &r, b"");
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Some(Reason::TooLarge),
                    &format!("body larger than {limit} bytes (server.max_body_bytes)"),
                );
            }
        };
    // A body starting with '[' is a JSON array; anything else is NDJSON
    // (a single object is one line of it).
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let items: Vec<&[u8]> = if first == Some(&b'[') {
        match event::split_array(&bytes) {
            Ok(v) => v.into_iter().map(|r| r.get().as_bytes()).collect(),
            Err(r) => {
                ingest.received(SOURCE, 1);
                ingest.rejected(SOURCE, &r, &bytes);
                return error(StatusCode::BAD_REQUEST, Some(r.reason), &r.message);
            }
        }
    } else {
        bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .collect()
    };
    let max = limits.max_events_per_request;
    if items.len() > max {
        ingest.received(SOURCE, items.len());
        let r = Rejection::new(
            Reason::TooLarge,
            format!("more than {max} events in one request"),
        );
        for _ in 0..items.len() {
            ingest.rejected(SOURCE, &r, b"");
        }
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            Some(Reason::TooLarge),
            &format!(
                "{} events in one request, more than {max} (server.max_events_per_request)",
                items.len()
            ),
        );
    }
    ingest.received(SOURCE, items.len());
    let mut batch = Decoded::with_capacity(items.len(), bytes.len());
    for (i, raw) in items.iter().enumerate() {
        batch.push(ingest, SOURCE, i as u64, raw);
    }
    let (events, raws, numbers) = batch.into_parts();
    let outcomes = match ingest.submit_raw(SOURCE, events, Some(raws)).await {
        Ok(o) => o,
        Err(e) => {
            let reason = match e {
                IngestError::Storage(_) => "storage",
                IngestError::ShuttingDown => "shutting_down",
            };
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "1")],
                Json(serde_json::json!({"error": e.to_string(), "reason": reason})),
            )
                .into_response();
        }
    };
    let tally = numbers.tally(outcomes);
    let (accepted, duplicates) = (tally.applied, tally.duplicates);
    let rejected: Vec<RejectedItem> = tally
        .refused
        .into_iter()
        .map(|(i, r)| RejectedItem {
            index: i as usize,
            // Only refused events pay for reporting their id.
            id: id_of(items[i as usize]),
            reason: r.reason.as_str(),
            error: r.message,
        })
        .collect();
    let status = if rejected.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (
        status,
        Json(IngestReply {
            accepted,
            duplicates,
            rejected,
        }),
    )
        .into_response()
}

/// The read role of a request: from `Authorization: Bearer`, or (for
/// browsers, which cannot set headers on a websocket) a `token` parameter.
/// Also whether the request came without a token (the anonymous role).
fn role_of(
    app: &App,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<(Role, bool), Unauthorized> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    let token = header.or(query_token.map(str::as_bytes));
    let opts = app.opts.load();
    let role = privacy::resolve(token, &opts.auth, &opts.privacy).map_err(|_| Unauthorized)?;
    Ok((role, token.is_none()))
}

/// Why a read request is not answered.
enum Refused {
    Unauthorized,
    Forbidden,
    /// Reads before recovery has finished would show an empty state
    /// (and make Prometheus see every counter reset): 503 until ready.
    NotReady,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Unauthorized => Unauthorized.into_response(),
            Refused::Forbidden => error(
                StatusCode::FORBIDDEN,
                None,
                "this role may not read this endpoint (docs/privacy.md)",
            ),
            Refused::NotReady => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "1")],
                "recovering state\n",
            )
                .into_response(),
        }
    }
}

/// The role of a request to `e`, if the policy lets it call `e`.
fn reader(
    app: &App,
    headers: &HeaderMap,
    query_token: Option<&str>,
    e: Endpoint,
) -> Result<Role, Refused> {
    let (role, anonymous) =
        role_of(app, headers, query_token).map_err(|_| Refused::Unauthorized)?;
    if !app.hub.policy().allows(role, e) {
        // Without a token, a token may help: 401, as HTTP has it; with
        // one, this role may not.
        return Err(if anonymous {
            Refused::Unauthorized
        } else {
            Refused::Forbidden
        });
    }
    if !app.shared.is_ready() {
        return Err(Refused::NotReady);
    }
    Ok(role)
}

/// How long a reader waits for the view that includes the latest
/// applied events before it answers from the latest there is.
const FRESH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

async fn get_snapshot(State(app): State<App>, headers: HeaderMap) -> Response {
    let role = match reader(&app, &headers, None, Endpoint::Snapshot) {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    let want = Wanted {
        digest: true,
        ..Wanted::default()
    };
    let Some(view) = app.ingest.view(want, FRESH_WAIT).await else {
        return busy();
    };
    let mut snap = app
        .hub
        .policy()
        .snapshot(&view.snapshot, role, view.at_ms)
        .into_owned();
    // The digest is of the state, not of this (redacted) view.
    snap.digest = view.digest.clone();
    Json(snap).into_response()
}

#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
// `default`: every parameter is optional (schemars cannot tell that of
// a field with its own `schema_with`).
#[serde(deny_unknown_fields, default)]
pub(crate) struct CardsQuery {
    /// `kind:name`, e.g. `team:sales`; all scopes without it.
    #[schemars(schema_with = "scope_param")]
    scope: Option<String>,
    /// `today`, `week`, `month` or `60m`; each goal's own without it.
    #[schemars(schema_with = "period_param")]
    period: Option<String>,
}

/// The `period` a read endpoint takes: one of `Period::ALL`.
fn period_param(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let names: Vec<&str> = Period::ALL.iter().map(|p| p.as_str()).collect();
    schemars::json_schema!({"type": "string", "enum": names})
}

/// The period of QA samples.
fn sample_period_param(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": ["current", "previous"]})
}

/// A scope `kind:name`, the kinds a scorecard has.
fn scope_param(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    use crate::kpi::ScopeKind;
    let kinds: Vec<&str> = ScopeKind::ALL
        .iter()
        .chain([&ScopeKind::Agent])
        .map(|k| k.as_str())
        .collect();
    let pattern = format!("^({}):", kinds.join("|"));
    schemars::json_schema!({"type": "string", "pattern": pattern})
}

/// A scope kind compared across (`ScopeKind::ALL`).
fn by_param(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let kinds: Vec<&str> = crate::kpi::ScopeKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    schemars::json_schema!({"type": "string", "enum": kinds})
}

fn parse_period(p: Option<&str>) -> Result<Option<Period>, String> {
    match p {
        None => Ok(None),
        Some(s) => Period::parse(s)
            .map(Some)
            .ok_or_else(|| format!("period {s:?} is not one of today, week, month, 60m")),
    }
}

/// Scorecards as `role` may see them, for the period asked.
async fn cards_for(
    app: &App,
    role: Role,
    period: Option<Period>,
) -> Option<(Arc<crate::view::View>, Vec<Scorecard>)> {
    let want = Wanted {
        period,
        ..Wanted::default()
    };
    let view = app.ingest.view(want, FRESH_WAIT).await?;
    let mut cards = match (&view.period_cards, period) {
        (Some((p, c)), Some(asked)) if *p == asked => c.clone(),
        _ => view.scorecards.clone(),
    };
    app.hub.policy().scorecards(&mut cards, role);
    Some((view, cards))
}

/// The prologue of the quality management endpoints: the reader's role
/// (the endpoint is the policy's `Quality`), the query, and a view that
/// holds the QA read models over the period the query names (or
/// `quality.period`).
async fn qa_view<Q>(
    app: &App,
    headers: &HeaderMap,
    query: Result<Query<Q>, axum::extract::rejection::QueryRejection>,
    period: fn(&Q) -> Option<&str>,
    parts: u8,
) -> Result<(Role, Q, Arc<crate::view::View>), Response> {
    let role =
        reader(app, headers, None, Endpoint::Quality).map_err(IntoResponse::into_response)?;
    let Query(q) = query.map_err(|e| error(StatusCode::BAD_REQUEST, None, &e.body_text()))?;
    let period = parse_period(period(&q))
        .map_err(|e| error(StatusCode::BAD_REQUEST, None, &e))?
        .unwrap_or(app.opts.load().qa_period);
    let want = Wanted {
        qa: Some(period),
        qa_parts: parts,
        ..Wanted::default()
    };
    let view = app.ingest.view(want, FRESH_WAIT).await.ok_or_else(busy)?;
    Ok((role, q, view))
}

#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct QaQuery {
    /// `agent:ID`, `team:NAME`, `site:NAME` or `partner:NAME`.
    #[schemars(schema_with = "scope_param")]
    scope: Option<String>,
    /// `today`, `week`, `month` or `60m`; `quality.period` without it.
    #[schemars(schema_with = "period_param")]
    period: Option<String>,
}

async fn get_qa_scores(
    State(app): State<App>,
    headers: HeaderMap,
    query: Result<Query<QaQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (role, q, view) = match qa_view(
        &app,
        &headers,
        query,
        |q| q.period.as_deref(),
        crate::quality::part::SCORES,
    )
    .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(mut scores) = view.qa.clone() else {
        return busy();
    };
    app.hub.policy().quality_rows(&mut scores.scores, role);
    if let Some(sc) = &q.scope {
        scores.scores.retain(|s| &s.scope == sc);
        if scores.scores.is_empty() {
            return error(
                StatusCode::NOT_FOUND,
                None,
                &format!("no QA score for {sc:?} in this period, or not one this role may see"),
            );
        }
    }
    Json(serde_json::json!({
        "now": crate::snapshot::rfc3339(view.at_ms),
        "qa": scores,
    }))
    .into_response()
}

#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SignalsQuery {
    /// `today`, `week`, `month` or `60m`; `quality.period` without it.
    #[schemars(schema_with = "period_param")]
    period: Option<String>,
    team: Option<String>,
    agent: Option<String>,
    signal: Option<String>,
}

async fn get_qa_signals(
    State(app): State<App>,
    headers: HeaderMap,
    query: Result<Query<SignalsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (role, q, view) = match qa_view(
        &app,
        &headers,
        query,
        |q| q.period.as_deref(),
        crate::quality::part::SIGNALS,
    )
    .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(mut signals) = view.signals.clone() else {
        return busy();
    };
    app.hub.policy().quality_rows(&mut signals.signals, role);
    signals.signals.retain(|s| {
        q.team.as_ref().is_none_or(|t| &s.team == t)
            && q.agent.as_ref().is_none_or(|a| &s.agent == a)
            && q.signal.as_ref().is_none_or(|k| s.signal == k.as_str())
    });
    Json(serde_json::json!({
        "now": crate::snapshot::rfc3339(view.at_ms),
        "signals": signals,
    }))
    .into_response()
}

#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SamplesQuery {
    team: Option<String>,
    agent: Option<String>,
    /// `current` (default) or `previous` sample period.
    #[schemars(schema_with = "sample_period_param")]
    period: Option<String>,
}

async fn get_qa_samples(
    State(app): State<App>,
    headers: HeaderMap,
    query: Result<Query<SamplesQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    // Samples have their own period (`quality.sample.period`): current
    // or previous, checked before any work.
    let previous = match query.as_ref().map(|Query(q)| q.period.as_deref()) {
        Ok(None | Some("current")) | Err(_) => false,
        Ok(Some("previous")) => true,
        Ok(Some(p)) => {
            return error(
                StatusCode::BAD_REQUEST,
                None,
                &format!("period {p:?} is not current or previous"),
            )
        }
    };
    let (role, q, view) = match qa_view(
        &app,
        &headers,
        query,
        |_| None,
        crate::quality::part::SAMPLES,
    )
    .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some([current, before]) = view.samples.clone() else {
        return busy();
    };
    let mut samples = if previous { before } else { current };
    app.hub.policy().quality_rows(&mut samples.agents, role);
    samples.agents.retain(|a| {
        q.team.as_ref().is_none_or(|t| &a.team == t)
            && q.agent.as_ref().is_none_or(|x| &a.agent == x)
    });
    Json(serde_json::json!({
        "now": crate::snapshot::rfc3339(view.at_ms),
        "sample": samples,
    }))
    .into_response()
}

#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct CoachingQuery {
    /// `today`, `week`, `month` or `60m`; `quality.period` without it.
    #[schemars(schema_with = "period_param")]
    period: Option<String>,
    team: Option<String>,
    agent: Option<String>,
}

async fn get_coaching(
    State(app): State<App>,
    headers: HeaderMap,
    query: Result<Query<CoachingQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (role, q, view) = match qa_view(
        &app,
        &headers,
        query,
        |q| q.period.as_deref(),
        crate::quality::part::COACHING,
    )
    .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(mut c) = view.coaching.clone() else {
        return busy();
    };
    app.hub.policy().quality_rows(&mut c.rows, role);
    c.rows.retain(|r| {
        use crate::quality::TeamRow;
        q.team.as_deref().is_none_or(|t| r.team() == Some(t))
            && q.agent
                .as_ref()
                .is_none_or(|a| r.kind == crate::kpi::ScopeKind::Agent && &r.name == a)
    });
    Json(serde_json::json!({
        "now": crate::snapshot::rfc3339(view.at_ms),
        "coaching": c,
    }))
    .into_response()
}

async fn get_scorecards(
    State(app): State<App>,
    headers: HeaderMap,
    query: Result<Query<CardsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let role = match reader(&app, &headers, None, Endpoint::Scorecards) {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, None, &e.body_text()),
    };
    let period = match parse_period(q.period.as_deref()) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, None, &e),
    };
    let scope = match q.scope.as_deref().map(|s| (s, GoalScope::parse_card(s))) {
        None => None,
        Some((s, None)) => {
            return error(
                StatusCode::BAD_REQUEST,
                None,
                &format!(
                    "scope {s:?} must be site:NAME, team:NAME, queue:NAME, partner:NAME or agent:ID"
                ),
            )
        }
        Some((_, Some(sc))) => Some(sc),
    };
    let Some((view, mut cards)) = cards_for(&app, role, period).await else {
        return busy();
    };
    if let Some(sc) = &scope {
        cards.retain(|c| c.kind == sc.kind && c.name == sc.name);
        if cards.is_empty() {
            return error(
                StatusCode::NOT_FOUND,
                None,
                &format!(
                    "no scorecard for {sc}: not a configured or seen scope, or not one this role may see"
                ),
            );
        }
    }
    Json(serde_json::json!({
        "now": crate::snapshot::rfc3339(view.at_ms),
        "period": period.map_or("own", |p| p.as_str()),
        "currency": view.snapshot.currency,
        "scorecards": cards,
    }))
    .into_response()
}

#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct CompareQuery {
    /// The scope kind compared (`partner` without it).
    #[schemars(schema_with = "by_param")]
    by: Option<String>,
    /// `today`, `week`, `month` or `60m`; each goal's own without it.
    #[schemars(schema_with = "period_param")]
    period: Option<String>,
}

async fn get_compare(
    State(app): State<App>,
    headers: HeaderMap,
    query: Result<Query<CompareQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let role = match reader(&app, &headers, None, Endpoint::Scorecards) {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, None, &e.body_text()),
    };
    let by = q.by.as_deref().unwrap_or("partner");
    let Some(kind) = crate::kpi::ScopeKind::parse(by) else {
        return error(
            StatusCode::BAD_REQUEST,
            None,
            &format!("by {by:?} is not one of site, team, queue, partner"),
        );
    };
    let period = match parse_period(q.period.as_deref()) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, None, &e),
    };
    let Some((view, cards)) = cards_for(&app, role, period).await else {
        return busy();
    };
    let scores: std::collections::BTreeMap<&str, serde_json::Value> = cards
        .iter()
        .filter(|c| c.kind == kind)
        .map(|c| {
            (
                c.name.as_str(),
                serde_json::json!({"primary_score": c.primary_score, "sales_score": c.sales_score, "guardrail_met": c.guardrail.met}),
            )
        })
        .collect();
    Json(serde_json::json!({
        "now": crate::snapshot::rfc3339(view.at_ms),
        "by": kind.as_str(),
        "period": period.map_or("own", |p| p.as_str()),
        "scores": scores,
        "goals": scorecard::compare(&cards, kind),
    }))
    .into_response()
}

async fn get_goals(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(r) = reader(&app, &headers, None, Endpoint::Goals) {
        return r.into_response();
    }
    Json(&*app.opts.load().matrix).into_response()
}

async fn goals_page(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(r) = reader(&app, &headers, None, Endpoint::Goals) {
        return r.into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        crate::sheet::html(&app.opts.load().matrix, &app.opts.load().currency),
    )
        .into_response()
}

/// The writer did not publish in time (it is overloaded or stopping).
fn busy() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        "state view not available yet\n",
    )
        .into_response()
}

async fn ws(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let role = match reader(
        &app,
        &headers,
        q.get("token").map(String::as_str),
        Endpoint::Feed,
    ) {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    let scope = Scope::from_query(&q);
    let hub = app.hub.clone();
    // A small read buffer: tungstenite zero-fills the whole buffer before
    // every read poll (tungstenite-rs#547), and each client's loop polls
    // for reads at every delta. At the default 128 KiB that memset was a
    // third of the daemon's CPU with 1,000 clients; clients send only
    // short control messages. It also keeps 124 KiB per client unused.
    let upgrade = upgrade
        .read_buffer_size(4 * 1024)
        // Above the feed's own 64 KiB limit, so that a message between
        // the two gets the documented 1009 close from the feed.
        .max_message_size(1 << 20)
        .max_frame_size(1 << 20);
    match feed::admit(&hub) {
        Some(permit) => {
            upgrade.on_upgrade(move |socket| feed::serve(socket, hub, role, scope, permit))
        }
        None => {
            app.shared.telemetry.feed_disconnect("too_many_clients");
            upgrade.on_upgrade(feed::refuse)
        }
    }
}

async fn wallboard_page(State(app): State<App>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        app.opts.load().wallboard.clone(),
    )
        .into_response()
}

async fn wallboard_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        crate::wallboard::SCRIPT,
    )
        .into_response()
}

async fn wallboard_css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        crate::wallboard::STYLE,
    )
        .into_response()
}

/// What an operator compares across replicas (docs/api.md).
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(crate) struct StateView {
    digest: String,
    events_applied: u64,
    /// The engine's clock: the latest event time applied.
    last_event_time: Option<String>,
    /// Journal records committed (0 without a data directory).
    journal_seq: u64,
    /// Per positioned source (JetStream): the stream sequence up to
    /// which its messages are durable here. Two replicas at the same
    /// sequence show the same digest.
    sources: std::collections::BTreeMap<String, u64>,
}

async fn get_state(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(r) = reader(&app, &headers, None, Endpoint::State) {
        return r.into_response();
    }
    let want = Wanted {
        digest: true,
        ..Wanted::default()
    };
    let Some(v) = app.ingest.view(want, FRESH_WAIT).await else {
        return busy();
    };
    let clock = v.clock_ms;
    Json(StateView {
        digest: v.digest.clone().unwrap_or_default(),
        events_applied: v.counters.applied,
        last_event_time: (clock > 0)
            .then(|| chrono::DateTime::from_timestamp_millis(clock))
            .flatten()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        journal_seq: app
            .shared
            .journal_seq
            .load(std::sync::atomic::Ordering::Acquire),
        sources: app
            .shared
            .positions
            .iter()
            .map(|e| (e.key().clone(), *e.value()))
            .collect(),
    })
    .into_response()
}

async fn get_backlog(
    State(app): State<App>,
    headers: HeaderMap,
    query: Result<Query<BacklogQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let role = match reader(&app, &headers, None, Endpoint::Backlog) {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, None, &e.body_text()),
    };
    let want = Wanted {
        tasks: true,
        ..Wanted::default()
    };
    let Some(view) = app.ingest.view(want, FRESH_WAIT).await else {
        return busy();
    };
    let mut list = view.backlog_list(&q);
    app.hub.policy().backlog(&mut list, role, view.at_ms);
    Json(list).into_response()
}

async fn get_metrics(State(app): State<App>, headers: HeaderMap) -> Response {
    let role = match reader(&app, &headers, None, Endpoint::Metrics) {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    let want = Wanted {
        signals: app.hub.policy().sees_quality(role),
        ..Wanted::default()
    };
    let Some(view) = app.ingest.view(want, FRESH_WAIT).await else {
        return busy();
    };
    let mut buf = String::with_capacity(64 * 1024);
    let policy = app.hub.policy();
    let snap = policy.snapshot(&view.snapshot, role, view.at_ms);
    let mut cards = view.scorecards.clone();
    policy.metric_scorecards(&mut cards, role);
    metric::render_state(
        &view,
        &snap,
        &cards,
        policy.quality_only(&view.team_samples, role),
        policy.quality_only(&view.signal_counts, role),
        policy.grants(role).agent_metrics,
        &mut buf,
    );
    app.shared.telemetry.render(&mut buf);
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts_gzip);
    let ct = (
        header::CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8",
    );
    if gzip {
        use std::io::Write as _;
        let mut enc = flate2::write::GzEncoder::new(
            Vec::with_capacity(buf.len() / 8),
            flate2::Compression::fast(),
        );
        if enc.write_all(buf.as_bytes()).is_ok() {
            if let Ok(body) = enc.finish() {
                return (
                    [ct, (header::CONTENT_ENCODING, "gzip")],
                    [(header::VARY, "Accept-Encoding")],
                    body,
                )
                    .into_response();
            }
        }
    }
    ([ct], [(header::VARY, "Accept-Encoding")], buf).into_response()
}

/// Whether an `Accept-Encoding` value accepts gzip (a `q=0` refuses it).
fn accepts_gzip(v: &str) -> bool {
    v.split(',').any(|part| {
        let mut it = part.split(';').map(str::trim);
        let coding = it.next().unwrap_or("");
        let refused = it.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn gzip_negotiation() {
        use super::accepts_gzip;
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, gzip;q=0.5"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("identity"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("br, deflate"));
    }
}
