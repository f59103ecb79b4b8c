//! The live feed: `GET /ws`, protocol version 1 (docs/feed.md).
//!
//! One hub task builds the board (at most every `feed.build_interval`,
//! 100 ms by default, and at least once a second so time-driven flips
//! like "overdue" are seen without an event) and publishes it through a
//! `watch` channel, which keeps only the latest. Each client task scopes
//! and redacts the latest board for its viewer, diffs it against what it
//! last sent, and sends the difference, at most `feed.max_rate` times a
//! second. Because a slow
//! client only ever holds "what I last sent" and "the latest board",
//! its pending changes are merged by construction and its memory is
//! bounded; a client that cannot take a message within
//! `feed.send_timeout` is closed. Alerts go out at once through a
//! bounded broadcast channel; a client that falls behind on alerts gets a
//! fresh snapshot instead.

pub mod alert;
pub mod board;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::{broadcast, watch, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::FeedConfig;
use crate::event::AgentStatus;
use crate::privacy::{Policy, Role};
use crate::writer::Shared;
pub use alert::Alert;
use board::{Board, Scope};

pub const PROTOCOL: u32 = 1;

/// Messages from the daemon to a client.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Out<'a> {
    Snapshot {
        protocol: u32,
        seq: u64,
        now: i64,
        role: Role,
        scope: &'a Scope,
        board: &'a Board,
    },
    /// Sent as `delta_message` (the shared encoding plus this client's
    /// fields); kept here as the message's definition, which a test holds
    /// `delta_message` to.
    #[cfg_attr(not(test), allow(dead_code))]
    Delta {
        seq: u64,
        now: i64,
        #[serde(flatten)]
        delta: board::Delta,
    },
    Alert {
        seq: u64,
        now: i64,
        alert: &'a Alert,
    },
    Error {
        error: String,
    },
}

/// Messages from a client.
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum In {
    /// Replace the scope; answered with a snapshot.
    Subscribe {
        #[serde(default)]
        scope: Scope,
    },
    /// Ask for a fresh snapshot (after a gap in `seq`).
    Resync,
}

/// Feed settings, resolved.
#[derive(Debug, Clone)]
pub struct FeedOptions {
    pub max_rate: u32,
    /// Board rebuilds at most this often, however many events arrive.
    pub build_interval: Duration,
    pub max_clients: usize,
    pub ping_interval: Duration,
    pub idle_timeout: Duration,
    pub send_timeout: Duration,
    pub overdue_list: usize,
    pub pause_limits: BTreeMap<String, Duration>,
    pub pause_default: Option<Duration>,
}

impl FeedOptions {
    pub fn from_config(c: &FeedConfig) -> FeedOptions {
        FeedOptions {
            max_rate: c.max_rate.max(1),
            build_interval: c.build_interval,
            max_clients: c.max_clients,
            ping_interval: c.ping_interval,
            idle_timeout: c.idle_timeout,
            send_timeout: c.send_timeout,
            overdue_list: c.overdue_list,
            pause_limits: c
                .pause_limits
                .iter()
                .map(|(k, v)| (k.clone(), v.0))
                .collect(),
            pause_default: c.pause_limit,
        }
    }
}

/// A scoped, redacted board with an id unique for the hub's lifetime, so
/// deltas between two views can be cached by the pair of ids.
struct View {
    id: u64,
    board: Board,
}

/// Scoped views of the latest board and the deltas between views, shared
/// by the clients that have the same role and scope. Only entries for the
/// latest board are kept (a new board clears the cache), so memory is
/// bounded by the number of distinct scopes connected.
#[derive(Default)]
struct Views {
    inner: parking_lot::Mutex<ViewCache>,
    next_id: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct ViewCache {
    board: Option<Arc<Board>>,
    views: std::collections::HashMap<(Role, String), Arc<View>>,
    deltas: std::collections::HashMap<(u64, u64), Option<Arc<str>>>,
}

impl Views {
    fn fresh(&self, board: Board) -> Arc<View> {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Arc::new(View { id, board })
    }

    /// The view of `board` for (`role`, `scope`); built outside the lock
    /// by the first client that asks.
    fn view(
        &self,
        board: &Arc<Board>,
        key: &(Role, String),
        build: impl FnOnce() -> Board,
    ) -> Arc<View> {
        {
            let mut g = self.inner.lock();
            if !g.board.as_ref().is_some_and(|b| Arc::ptr_eq(b, board)) {
                *g = ViewCache {
                    board: Some(board.clone()),
                    ..ViewCache::default()
                };
            }
            if let Some(v) = g.views.get(key) {
                return v.clone();
            }
        }
        let v = self.fresh(build());
        let mut g = self.inner.lock();
        if g.board.as_ref().is_some_and(|b| Arc::ptr_eq(b, board)) {
            g.views.entry(key.clone()).or_insert(v).clone()
        } else {
            v
        }
    }

    /// The JSON object of the delta from `old` to `new` (`None`: nothing
    /// changed), encoded once per pair of views.
    fn delta(&self, old: &View, new: &View) -> Option<Arc<str>> {
        if old.id == new.id {
            return None;
        }
        if let Some(d) = self.inner.lock().deltas.get(&(old.id, new.id)) {
            return d.clone();
        }
        let d = board::diff(&old.board, &new.board);
        let text: Option<Arc<str>> = if d.is_empty() {
            None
        } else {
            serde_json::to_string(&d).ok().map(Arc::from)
        };
        self.inner
            .lock()
            .deltas
            .insert((old.id, new.id), text.clone());
        text
    }
}

/// A delta message: the shared encoded delta with this client's `seq`
/// and `now` (the same JSON as `Out::Delta`).
fn delta_message(seq: u64, now: i64, delta: &str) -> String {
    let fields = delta.strip_prefix('{').unwrap_or(delta);
    format!(r#"{{"type":"delta","seq":{seq},"now":{now},{fields}"#)
}

/// The feed's shared side.
pub struct Hub {
    board: watch::Receiver<Arc<Board>>,
    alerts: broadcast::Sender<Arc<Alert>>,
    slots: Arc<Semaphore>,
    views: Views,
    /// Swapped by a configuration reload; each use loads the current
    /// (a connection's rate and timeouts at its start).
    opts: Arc<arc_swap::ArcSwap<FeedOptions>>,
    policy: arc_swap::ArcSwap<Policy>,
    /// `feed.max_clients` as started (the semaphore's size).
    max_clients: usize,
    shared: Arc<Shared>,
}

impl Hub {
    /// Starts the hub task; it stops with `cancel`.
    pub fn start(
        shared: Arc<Shared>,
        opts: FeedOptions,
        policy: Policy,
        cancel: CancellationToken,
    ) -> Arc<Hub> {
        let (board_tx, board) = watch::channel(Arc::new(Board::default()));
        let (alerts, _) = broadcast::channel(1024);
        let max_clients = opts.max_clients;
        let opts = Arc::new(arc_swap::ArcSwap::from_pointee(opts));
        let hub = Arc::new(Hub {
            board,
            alerts: alerts.clone(),
            slots: Arc::new(Semaphore::new(max_clients)),
            views: Views::default(),
            opts: opts.clone(),
            policy: arc_swap::ArcSwap::from_pointee(policy),
            max_clients,
            shared: shared.clone(),
        });
        tokio::spawn(run_hub(
            shared,
            opts,
            max_clients,
            board_tx,
            alerts,
            hub.slots.clone(),
            cancel,
        ));
        hub
    }

    pub fn clients(&self) -> usize {
        self.max_clients - self.slots.available_permits()
    }

    /// The privacy policy in force.
    pub fn policy(&self) -> arc_swap::Guard<Arc<Policy>> {
        self.policy.load()
    }

    /// Applies a reloaded configuration's feed options and privacy
    /// policy (`feed.max_clients` keeps its value until a restart).
    pub fn reconfigure(&self, opts: FeedOptions, policy: Policy) {
        self.opts.store(Arc::new(opts));
        self.policy.store(Arc::new(policy));
    }

    /// Resolves once every feed client is gone (after the shutdown each
    /// was sent its close frame).
    pub async fn drained(&self) {
        let n = u32::try_from(self.max_clients).unwrap_or(u32::MAX);
        let _ = self.slots.acquire_many(n).await;
    }
}

async fn run_hub(
    shared: Arc<Shared>,
    options: Arc<arc_swap::ArcSwap<FeedOptions>>,
    max_clients: usize,
    board_tx: watch::Sender<Arc<Board>>,
    alerts: broadcast::Sender<Arc<Alert>>,
    slots: Arc<Semaphore>,
    cancel: CancellationToken,
) {
    let mut views = shared.view.subscribe();
    let mut prev: Option<Arc<crate::view::View>> = None;
    let mut paused_alerted: HashSet<(String, i64)> = HashSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            r = views.changed() => if r.is_err() { return },
        }
        // The writer publishes views (at least once a second); the hub
        // only turns them into boards for clients, and alerts start with
        // the first client.
        let view = views.borrow_and_update().clone();
        let opts = options.load();
        if view.empty || slots.available_permits() == max_clients {
            prev = None;
            continue;
        }
        let board = &view.board;
        if let Some(prev) = &prev {
            for a in detect(&prev.board, board, view.at_ms, &opts, &mut paused_alerted) {
                shared.telemetry.feed_message("alert_built");
                let _ = alerts.send(Arc::new(a));
            }
        }
        let mut shown = board.clone();
        if shown.overdue.len() > opts.overdue_list {
            let keep: Vec<String> = shown
                .overdue
                .keys()
                .take(opts.overdue_list)
                .cloned()
                .collect();
            shown.overdue.retain(|k, _| keep.contains(k));
        }
        if board_tx.borrow().as_ref() != &shown {
            board_tx.send_replace(Arc::new(shown));
        }
        prev = Some(view);
    }
}

/// Alerts for what changed between two boards.
fn detect(
    prev: &Board,
    now_b: &Board,
    now: i64,
    opts: &FeedOptions,
    paused: &mut HashSet<(String, i64)>,
) -> Vec<Alert> {
    let mut out = Vec::new();
    for (id, o) in &now_b.overdue {
        if !prev.overdue.contains_key(id) {
            out.push(Alert::TaskOverdue {
                task: id.clone(),
                task_kind: o.kind.clone(),
                queue: o.queue.clone(),
                due: o.due,
                customer: o.customer.clone(),
            });
        }
    }
    for (name, q) in &now_b.queues {
        let level = |b: &Board| {
            b.queues
                .get(name)
                .and_then(|q| q.kpis.values().find(|k| k.kpi == "oldest_wait"))
                .map(|k| k.status)
        };
        let (before, after) = (level(prev), level(now_b));
        use crate::snapshot::Status;
        let rank = |s: Option<Status>| match s {
            Some(Status::Warn) => 1,
            Some(Status::Critical) => 2,
            _ => 0,
        };
        if rank(after) > rank(before) {
            if let (Some(k), Some(since)) = (
                q.kpis.values().find(|k| k.kpi == "oldest_wait"),
                q.oldest_since,
            ) {
                let (lvl, thr) = if rank(after) == 2 {
                    ("critical", k.critical)
                } else {
                    ("warn", k.warn)
                };
                out.push(Alert::OldestWait {
                    queue: name.clone(),
                    level: lvl,
                    since,
                    threshold_s: thr,
                });
            }
        }
    }
    paused.retain(|(id, since)| {
        now_b
            .agents
            .get(id)
            .is_some_and(|a| a.since == *since && a.state == AgentStatus::Paused)
    });
    for (id, a) in &now_b.agents {
        if a.state != AgentStatus::Paused {
            continue;
        }
        let limit = a
            .reason
            .as_ref()
            .and_then(|r| opts.pause_limits.get(r))
            .copied()
            .or(opts.pause_default);
        let Some(limit) = limit else { continue };
        if now - a.since > limit.as_millis() as i64 && paused.insert((id.clone(), a.since)) {
            out.push(Alert::PauseTooLong {
                agent: id.clone(),
                team: a.team.clone(),
                site: a.site.clone(),
                reason: a.reason.clone(),
                since: a.since,
                limit_s: limit.as_secs_f64(),
            });
        }
    }
    out
}

/// Why the daemon closed a feed connection (also a metric label).
fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// Refuses a client past `feed.max_clients` with a close reason.
pub async fn refuse(mut socket: WebSocket) {
    let _ = socket.send(close(1013, "too many clients")).await;
}

/// Takes a client slot, if one is free.
pub fn admit(hub: &Arc<Hub>) -> Option<tokio::sync::OwnedSemaphorePermit> {
    hub.slots.clone().try_acquire_owned().ok()
}

/// Serves one websocket client until it leaves or is closed.
pub async fn serve(
    socket: WebSocket,
    hub: Arc<Hub>,
    role: Role,
    mut scope: Scope,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let t = hub.shared.telemetry.clone();
    t.feed_clients(1.0);
    // While clients are connected the writer publishes views by itself.
    let live = &hub.shared.feed_clients;
    live.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut qa = QaInterest {
        hub: &hub,
        counted: false,
    };
    qa.follow(role, &scope);
    let why = client_loop(socket, &hub, role, &mut scope, &mut qa).await;
    drop(qa);
    live.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    t.feed_clients(-1.0);
    t.feed_disconnect(why);
    drop(permit);
}

/// Counts a client in `qa_feed_clients` while its scope follows quality
/// management and its role sees it.
struct QaInterest<'a> {
    hub: &'a Hub,
    counted: bool,
}

impl QaInterest<'_> {
    fn follow(&mut self, role: Role, scope: &Scope) {
        let want = scope.qa && self.hub.policy().sees_quality(role);
        let n = &self.hub.shared.qa_feed_clients;
        match (self.counted, want) {
            (false, true) => {
                n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            (true, false) => {
                n.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
            _ => {}
        }
        self.counted = want;
    }
}

impl Drop for QaInterest<'_> {
    fn drop(&mut self) {
        if self.counted {
            self.hub
                .shared
                .qa_feed_clients
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// The cache key of a viewer: role and scope.
fn scope_key(role: Role, scope: &Scope) -> (Role, String) {
    (role, serde_json::to_string(scope).unwrap_or_default())
}

/// The viewer's scoped view of `board`, shared with every viewer of the
/// same key.
fn view_for(
    hub: &Hub,
    board: &Arc<Board>,
    key: &(Role, String),
    scope: &Scope,
    role: Role,
) -> Arc<View> {
    hub.views.view(board, key, || {
        let mut b = board.scoped(scope);
        hub.policy().board(&mut b, role, hub.shared.now_ms());
        b
    })
}

async fn client_loop(
    socket: WebSocket,
    hub: &Arc<Hub>,
    role: Role,
    scope: &mut Scope,
    qa: &mut QaInterest<'_>,
) -> &'static str {
    let (mut tx, mut rx) = socket.split();
    let mut board_rx = hub.board.clone();
    let mut alerts = hub.alerts.subscribe();
    let opts = hub.opts.load_full();
    let telemetry = &hub.shared.telemetry;
    let min_gap = Duration::from_secs(1) / opts.max_rate;
    let mut seq = 0u64;
    let mut ping = tokio::time::interval(opts.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;

    macro_rules! send {
        (text $text:expr, $kind:literal) => {{
            let text: String = $text;
            match tokio::time::timeout(opts.send_timeout, tx.send(Message::Text(text.into()))).await
            {
                Ok(Ok(())) => telemetry.feed_message($kind),
                Ok(Err(_)) => return "gone",
                Err(_) => return "too_slow",
            }
        }};
        ($msg:expr, $kind:literal) => {{
            let text = match serde_json::to_string(&$msg) {
                Ok(t) => t,
                Err(_) => return "encode",
            };
            match tokio::time::timeout(opts.send_timeout, tx.send(Message::Text(text.into()))).await
            {
                Ok(Ok(())) => telemetry.feed_message($kind),
                Ok(Err(_)) => return "gone",
                // A client that cannot take one message in time is not
                // worth buffering for: close it, the others go on.
                Err(_) => return "too_slow",
            }
        }};
    }

    // A client that connects right after an event should see it: wait
    // briefly for the board that includes the latest change.
    let latest = *hub.shared.changes.borrow();
    let stale = |b: &Board| !b.built || b.version < latest;
    if stale(&board_rx.borrow()) {
        let _ =
            tokio::time::timeout(Duration::from_secs(2), board_rx.wait_for(|b| !stale(b))).await;
    }
    let mut key = scope_key(role, scope);
    let mut last = {
        let b = board_rx.borrow_and_update().clone();
        view_for(hub, &b, &key, scope, role)
    };
    seq += 1;
    send!(
        Out::Snapshot {
            protocol: PROTOCOL,
            seq,
            now: hub.shared.now_ms(),
            role,
            scope,
            board: &last.board
        },
        "snapshot"
    );
    let mut last_sent = tokio::time::Instant::now();
    // Idleness counts from here: the wait for a fresh board above is ours.
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            r = board_rx.changed() => {
                if r.is_err() {
                    let _ = tokio::time::timeout(opts.send_timeout, tx.send(close(1001, "shutting down"))).await;
                    return "shutdown";
                }
                // At most max_rate deltas a second: wait out the gap; any
                // boards published meanwhile merge into one delta.
                tokio::time::sleep_until(last_sent + min_gap).await;
                let now = hub.shared.now_ms();
                let b = board_rx.borrow_and_update().clone();
                let view = view_for(hub, &b, &key, scope, role);
                if let Some(delta) = hub.views.delta(&last, &view) {
                    seq += 1;
                    send!(text delta_message(seq, now, &delta), "delta");
                    last_sent = tokio::time::Instant::now();
                }
                last = view;
            }
            a = alerts.recv() => match a {
                Ok(alert) => {
                    let now = hub.shared.now_ms();
                    let b = board_rx.borrow().clone();
                    let mine = alert
                        .in_scope(&b, scope)
                        .and_then(|name| hub.policy().alert(&alert, role, name, now));
                    if let Some(mine) = mine {
                        seq += 1;
                        send!(Out::Alert { seq, now, alert: &mine }, "alert");
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Too far behind on alerts: start over from a snapshot.
                    let now = hub.shared.now_ms();
                    let b = board_rx.borrow_and_update().clone();
                    last = view_for(hub, &b, &key, scope, role);
                    seq += 1;
                    send!(Out::Snapshot { protocol: PROTOCOL, seq, now, role, scope, board: &last.board }, "snapshot");
                }
                Err(broadcast::error::RecvError::Closed) => {
                    let _ = tokio::time::timeout(opts.send_timeout, tx.send(close(1001, "shutting down"))).await;
                    return "shutdown";
                }
            },
            m = rx.next() => {
                last_heard = Instant::now();
                match m {
                    Some(Err(e)) => {
                        // Over the protocol's hard limit: still a close
                        // with a reason, not a reset.
                        let inner = e.into_inner();
                        let too_big = inner
                            .downcast_ref::<tokio_tungstenite::tungstenite::Error>()
                            .is_some_and(|t| matches!(t, tokio_tungstenite::tungstenite::Error::Capacity(_)));
                        if too_big {
                            let _ = tokio::time::timeout(opts.send_timeout, tx.send(close(1009, "message too big"))).await;
                            return "bad_message";
                        }
                        return "client_closed";
                    }
                    None | Some(Ok(Message::Close(_))) => return "client_closed",
                    Some(Ok(Message::Text(t))) => {
                        if t.len() > 64 * 1024 {
                            let _ = tokio::time::timeout(opts.send_timeout, tx.send(close(1009, "message too big"))).await;
                            return "bad_message";
                        }
                        match serde_json::from_str::<In>(&t) {
                            Ok(In::Subscribe { scope: s }) => {
                                if let Err(e) = s.check() {
                                    // Refused whole: the scope stays as it was.
                                    send!(Out::Error { error: format!("bad subscribe: {e}") }, "error");
                                    continue;
                                }
                                *scope = s;
                            }
                            Ok(In::Resync) => {}
                            Err(e) => {
                                send!(Out::Error { error: format!("bad message: {e}") }, "error");
                                continue;
                            }
                        }
                        let now = hub.shared.now_ms();
                        key = scope_key(role, scope);
                        qa.follow(role, scope);
                        let b = board_rx.borrow_and_update().clone();
                        last = view_for(hub, &b, &key, scope, role);
                        seq += 1;
                        send!(Out::Snapshot { protocol: PROTOCOL, seq, now, role, scope, board: &last.board }, "snapshot");
                    }
                    Some(Ok(_)) => {}
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > opts.idle_timeout {
                    let _ = tokio::time::timeout(opts.send_timeout, tx.send(close(1000, "idle timeout"))).await;
                    return "idle";
                }
                if tokio::time::timeout(opts.send_timeout, tx.send(Message::Ping(Default::default()))).await.is_err() {
                    return "too_slow";
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spliced_delta_is_the_delta_message() {
        let mut delta = board::Delta::default();
        delta.set.insert(
            "agents",
            serde_json::json!({"a1": {"state": "paused", "reason": "p\"1"}}),
        );
        delta.remove.insert("queues", vec!["old".into()]);
        let shared = serde_json::to_string(&delta).expect("encode");
        let spliced = delta_message(7, 1_772_434_800_000, &shared);
        let direct = serde_json::to_string(&Out::Delta {
            seq: 7,
            now: 1_772_434_800_000,
            delta,
        })
        .expect("encode");
        assert_eq!(spliced, direct);
    }

    #[test]
    fn viewers_of_one_scope_share_a_view_and_its_delta() {
        let views = Views::default();
        let (b1, b2) = (Arc::new(Board::default()), Arc::new(Board::default()));
        let key = scope_key(Role::Supervisor, &Scope::default());
        let other = scope_key(Role::Wallboard, &Scope::default());
        let mut builds = 0;
        let v1 = views.view(&b1, &key, || {
            builds += 1;
            Board::default()
        });
        let again = views.view(&b1, &key, || {
            builds += 1;
            Board::default()
        });
        assert!(Arc::ptr_eq(&v1, &again));
        let w = views.view(&b1, &other, Board::default);
        assert!(!Arc::ptr_eq(&v1, &w), "another role is another view");
        let v2 = views.view(&b2, &key, || {
            builds += 1;
            Board {
                version: 9,
                ..Board::default()
            }
        });
        assert_eq!(builds, 2, "one build per board and key");
        assert!(views.delta(&v1, &v1).is_none());
        assert!(views.delta(&v1, &v2).is_none(), "equal boards: no delta");
    }
}
