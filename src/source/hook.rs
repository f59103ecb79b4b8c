//! HTTP-delivered sources (webhooks): `POST /api/v1/sources/<name>` hands
//! the request to the running source of that name.
//!
//! A webhook source is a source like any other: it runs on its
//! [`Context`](super::Context), registers itself here under its name when
//! it starts and is removed when it stops (a reload that drops or changes
//! it), checks the platform's signature, maps the request and submits its
//! events through the context, so they are journaled, deduplicated and
//! counted as every source's are. The HTTP side only bounds what a client
//! can make it do: the body size, a per-source rate, a bounded queue and a
//! reply deadline.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::HeaderMap;
use dashmap::DashMap;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{mpsc, oneshot};

/// Requests queued for one source at most; more are answered 503.
const QUEUE: usize = 256;

/// One request, as the source sees it.
pub struct Request {
    /// The query string, if any (part of what some platforms sign).
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub reply: oneshot::Sender<Reply>,
}

/// What the source answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<String>) -> Reply {
        Reply {
            status,
            content_type,
            body: body.into(),
        }
    }

    /// An error as the API's other errors are written.
    pub fn error(status: u16, reason: &str, message: &str) -> Reply {
        Reply::new(
            status,
            "application/json",
            serde_json::json!({"error": message, "reason": reason}).to_string(),
        )
    }
}

/// What a webhook source lets its clients do.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// Requests per second, sustained, and in one burst.
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

impl Limits {
    /// A webhook source's configured `max_body_bytes` (1 KiB to
    /// `max_mib` MiB) and `rate_per_second` (at least 1), by key.
    pub fn problems(
        max_body_bytes: usize,
        max_mib: usize,
        rate_per_second: u32,
    ) -> super::Problems {
        let mut p = Vec::new();
        if !(1024..=max_mib << 20).contains(&max_body_bytes) {
            p.push((
                "max_body_bytes".into(),
                format!("between 1 KiB and {max_mib} MiB"),
            ));
        }
        if rate_per_second == 0 {
            p.push(("rate_per_second".into(), "at least 1".into()));
        }
        p
    }

    /// `rate_per_second` sustained, bursts of twice as many.
    pub fn of(max_body_bytes: usize, rate_per_second: u32) -> Limits {
        Limits {
            max_body_bytes,
            per_second: NonZeroU32::new(rate_per_second).unwrap_or(NonZeroU32::MIN),
            burst: NonZeroU32::new(rate_per_second.saturating_mul(2)).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// Ids a webhook source remembers between requests (calls answered or
/// talking), at most `cap`, the oldest forgotten first.
pub struct Recent {
    set: std::collections::HashSet<String>,
    order: std::collections::VecDeque<String>,
    cap: usize,
}

impl Recent {
    pub fn new(cap: usize) -> Recent {
        Recent {
            set: Default::default(),
            order: Default::default(),
            cap,
        }
    }

    pub fn insert(&mut self, id: &str) {
        if self.set.insert(id.to_string()) {
            self.order.push_back(id.to_string());
            while self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.set.contains(id)
    }

    /// Whether it was there (it is not any more).
    pub fn remove(&mut self, id: &str) -> bool {
        // The id stays in `order` until it ages out; `set` decides.
        self.set.remove(id)
    }
}

/// A registered source, as the HTTP side reaches it.
#[derive(Clone)]
pub struct Entry {
    id: u64,
    /// The `source` label of its counters.
    pub kind: &'static str,
    pub tx: mpsc::Sender<Request>,
    pub limiter: Arc<DefaultDirectRateLimiter>,
    pub max_body_bytes: usize,
}

/// The webhook sources of a process, by name.
#[derive(Default)]
pub struct Hooks {
    map: DashMap<String, Entry>,
    next: AtomicU64,
}

/// A source's registration: its requests, and its place in [`Hooks`]
/// until dropped.
pub struct Registration {
    pub requests: mpsc::Receiver<Request>,
    hooks: Arc<Hooks>,
    name: String,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Only its own entry: a source of the same name started after it
        // keeps its place.
        self.hooks.map.remove_if(&self.name, |_, e| e.id == self.id);
    }
}

impl Hooks {
    /// Registers `name` (replacing a stale entry of that name).
    pub fn register(
        self: &Arc<Self>,
        name: &str,
        kind: &'static str,
        limits: Limits,
    ) -> Registration {
        let (tx, requests) = mpsc::channel(QUEUE);
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let quota = Quota::per_second(limits.per_second).allow_burst(limits.burst);
        self.map.insert(
            name.to_string(),
            Entry {
                id,
                kind,
                tx,
                limiter: Arc::new(RateLimiter::direct(quota)),
                max_body_bytes: limits.max_body_bytes,
            },
        );
        Registration {
            requests,
            hooks: self.clone(),
            name: name.to_string(),
            id,
        }
    }

    pub fn get(&self, name: &str) -> Option<Entry> {
        self.map.get(name).map(|e| e.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_body_bytes: 1024,
            per_second: NonZeroU32::MIN,
            burst: NonZeroU32::new(2).expect("2"),
        }
    }

    #[test]
    fn a_registration_is_removed_when_dropped_but_not_its_successor() {
        let hooks = Arc::new(Hooks::default());
        let old = hooks.register("tw", "twilio_taskrouter", limits());
        assert!(hooks.get("tw").is_some());
        let new = hooks.register("tw", "twilio_taskrouter", limits());
        drop(old);
        assert!(hooks.get("tw").is_some(), "the successor stays");
        drop(new);
        assert!(hooks.get("tw").is_none());
    }

    #[test]
    fn the_rate_allows_the_burst_then_refuses() {
        let hooks = Arc::new(Hooks::default());
        let _r = hooks.register("tw", "twilio_taskrouter", limits());
        let e = hooks.get("tw").expect("entry");
        assert!(e.limiter.check().is_ok());
        assert!(e.limiter.check().is_ok());
        assert!(e.limiter.check().is_err());
    }
}
