//! The published view: one immutable read model of the state, built by
//! the writer and shared by every reader.
//!
//! Readers (`/metrics`, the API, the feed hub) never touch the engine:
//! the engine is owned by the writer thread, and after a group of
//! batches the writer builds a `View` and publishes it as an `Arc` on a
//! `watch` channel. A slow scrape or a thousand feed clients therefore
//! cannot delay ingest; what publishing costs the writer is bounded by
//! the publication rule in `writer.rs` (at most every
//! `feed.build_interval`, and never more than a fifth of the writer's
//! time).
//!
//! Figures that depend on "now" (waits, ages, overdue, due soon) are
//! computed at the view's `at_ms`; the writer republishes at least once
//! a second, so they are never more than about a second old.

use std::collections::HashMap;

use crate::config::Period;
use crate::engine::histogram::Histogram;
use crate::engine::{Engine, EngineCounters};
use crate::feed::board::{self, Board};
use crate::kpi::ScopeKind;
use crate::scorecard::{self, Scorecard};
use crate::snapshot::{self, BacklogList, BacklogQuery, Snapshot, TaskView};

/// Most overdue tasks a view lists for the feed (`feed.overdue_list` is
/// at most this).
pub const OVERDUE_MAX: usize = 1000;

/// Task rows a view holds per (kind, queue) besides the overall most
/// urgent: what a filtered backlog list can return at most.
pub const PER_GROUP: usize = 1000;

/// The wait, talk, hold and wrap histograms of one queue.
#[derive(Debug, Clone)]
pub struct QueueHistograms {
    pub queue: String,
    pub wait: Histogram,
    pub talk: Histogram,
    pub hold: Histogram,
    pub wrap: Histogram,
}

/// Completion times of one (task kind, queue).
#[derive(Debug, Clone)]
pub struct Completion {
    pub kind: String,
    pub queue: String,
    pub histogram: Histogram,
}

/// Everything a reader may answer from, as of one instant.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// The writer's group count it was built after (it grows with every
    /// group, duplicates-only groups included, unlike the engine version).
    pub version: u64,
    /// The instant "now"-dependent figures were computed at.
    pub at_ms: i64,
    /// The engine's clock (latest event time).
    pub clock_ms: i64,
    /// The state digest, when a reader asked for it.
    pub digest: Option<String>,
    /// Unredacted: only `privacy::Policy` turns it into what a role sees.
    pub snapshot: Snapshot,
    pub board: Board,
    /// Open tasks, most urgent first (only when `with_tasks`): the
    /// `snapshot::BACKLOG_MAX` most urgent of all, and the `PER_GROUP`
    /// most urgent of each (kind, queue).
    pub tasks: Vec<TaskView>,
    pub with_tasks: bool,
    pub histograms: Vec<QueueHistograms>,
    pub completion: Vec<Completion>,
    pub counters: EngineCounters,
    /// Every scope's scorecard, each goal over its own period.
    pub scorecards: Vec<Scorecard>,
    /// Scorecards with every goal over one period, when a reader asked.
    pub period_cards: Option<(Period, Vec<Scorecard>)>,
    /// QA scores over one period, when a reader asked (docs/quality.md).
    pub qa: Option<crate::quality::QaScores>,
    /// The period and parts (`quality::part`) of the QA read models here.
    pub qa_period: Option<Period>,
    pub qa_parts: u8,
    /// The integrity signals over the same period (with `qa`).
    pub signals: Option<crate::quality::Signals>,
    /// The QA sample of the current sample period and the one before
    /// (with `qa`).
    pub samples: Option<[crate::quality::Samples; 2]>,
    /// Coaching figures over the `qa` period (with `qa`).
    pub coaching: Option<crate::quality::Coaching>,
    /// QA sample counts per team (every view, for `/metrics`).
    pub team_samples: Vec<crate::quality::TeamSample>,
    /// Integrity signals of the sample period per (team, signal), for
    /// `/metrics` (recomputed every 30 s, see writer.rs).
    pub signal_counts: Vec<(String, &'static str, u64)>,
    /// Whether the signals were attached (see `attach_signals`).
    pub with_signals: bool,
    /// Set only on the placeholder before the first build.
    pub empty: bool,
}

impl View {
    /// The placeholder published before recovery has finished.
    pub fn placeholder() -> View {
        View {
            empty: true,
            ..View::default()
        }
    }

    /// The view of `engine` at `now_ms`.
    pub fn build(
        engine: &Engine,
        now_ms: i64,
        digest: Option<String>,
        seq: u64,
        with_tasks: bool,
        period: Option<Period>,
        qa: Option<(Period, u8)>,
    ) -> View {
        use crate::quality::part;
        let want = |bit: u8| qa.filter(|(_, parts)| parts & bit != 0).map(|(p, _)| p);
        let (mut snapshot, overdue) = snapshot::build_parts(engine, now_ms);
        let scorecards = scorecard::build(engine, &snapshot, now_ms, None);
        snapshot::set_kpis(&mut snapshot, &scorecards);
        let period_cards =
            period.map(|p| (p, scorecard::build(engine, &snapshot, now_ms, Some(p))));
        let mut board = board::build(engine, &snapshot, overdue, now_ms, OVERDUE_MAX);
        board.version = seq;
        for c in &scorecards {
            if c.kind == ScopeKind::Agent {
                continue;
            }
            if let Some(t) = board
                .teams
                .get_mut(&c.name)
                .filter(|_| c.kind == ScopeKind::Team)
            {
                t.primary_score = c.primary_score;
                t.sales_score = c.sales_score;
                t.guardrail = Some(c.guardrail.clone());
            }
            board.scorecards.insert(c.scope.clone(), c.clone());
        }
        let mut histograms: Vec<QueueHistograms> = engine
            .queues
            .iter()
            .map(|(name, q)| QueueHistograms {
                queue: name.to_string(),
                wait: q.wait.clone(),
                talk: q.talk.clone(),
                hold: q.hold.clone(),
                wrap: q.wrap.clone(),
            })
            .collect();
        histograms.sort_by(|a, b| a.queue.cmp(&b.queue));
        let mut completion: Vec<Completion> = engine
            .task_stats
            .iter()
            .map(|((k, q), st)| Completion {
                kind: engine.kind_name(*k).to_string(),
                queue: q.to_string(),
                histogram: st.completion.clone(),
            })
            .collect();
        completion.sort_by(|a, b| (&a.kind, &a.queue).cmp(&(&b.kind, &b.queue)));
        View {
            version: seq,
            at_ms: now_ms,
            clock_ms: engine.clock_ms(),
            digest,
            tasks: if with_tasks {
                urgent_tasks(engine, now_ms)
            } else {
                Vec::new()
            },
            with_tasks,
            snapshot,
            board,
            histograms,
            completion,
            counters: *engine.counters(),
            period_cards,
            qa: want(part::SCORES).map(|p| crate::quality::build(engine, now_ms, p)),
            qa_period: qa.map(|(p, _)| p),
            qa_parts: qa.map_or(0, |(_, parts)| parts),
            signals: want(part::SIGNALS).map(|p| crate::quality::signals(engine, now_ms, p)),
            samples: want(part::SAMPLES).map(|_| {
                [
                    crate::quality::samples(engine, now_ms, false),
                    crate::quality::samples(engine, now_ms, true),
                ]
            }),
            coaching: want(part::COACHING).map(|p| crate::quality::coaching(engine, now_ms, p)),
            team_samples: crate::quality::team_samples(engine, now_ms),
            signal_counts: Vec::new(),
            with_signals: false,
            scorecards,
            empty: false,
        }
    }

    /// The open-task list for a filter: rows from `tasks`, the total from
    /// the backlog aggregates (exact even where rows were capped).
    /// Adds the (cached) integrity signals: the board's `qa` map for QA
    /// feed clients and the counts for `/metrics`.
    pub fn attach_signals(&mut self, signals: &[crate::quality::Signal]) {
        self.board.qa = board::qa_entries(&self.team_samples, signals);
        let mut counts: std::collections::BTreeMap<(String, &'static str), u64> =
            Default::default();
        for s in signals {
            *counts.entry((s.team.clone(), s.signal)).or_default() += 1;
        }
        self.signal_counts = counts.into_iter().map(|((t, s), n)| (t, s, n)).collect();
        self.with_signals = true;
    }

    pub fn backlog_list(&self, q: &BacklogQuery) -> BacklogList {
        let site_of = |queue: &str| {
            self.snapshot
                .queues
                .iter()
                .find(|v| v.name == queue)
                .map(|v| v.site.as_str())
        };
        let group_ok = |kind: &str, queue: &str| {
            q.kind.as_deref().is_none_or(|k| k == kind)
                && q.queue.as_deref().is_none_or(|x| x == queue)
                && q.site.as_deref().is_none_or(|s| site_of(queue) == Some(s))
        };
        let total = self
            .snapshot
            .backlog
            .iter()
            .filter(|b| group_ok(&b.kind, &b.queue))
            .map(|b| {
                // `due_soon` excludes overdue tasks.
                let rest = b.open - b.overdue - b.due_soon;
                match (q.overdue, q.due_soon) {
                    (None, None) => b.open,
                    (Some(true), Some(true)) => 0,
                    (Some(true), _) => b.overdue,
                    (_, Some(true)) => b.due_soon,
                    (Some(false), None) => b.open - b.overdue,
                    (None, Some(false)) => b.open - b.due_soon,
                    (Some(false), Some(false)) => rest,
                }
            })
            .sum::<u64>() as usize;
        let limit = q.limit.unwrap_or(500).min(snapshot::BACKLOG_MAX);
        let tasks = self
            .tasks
            .iter()
            .filter(|t| {
                group_ok(&t.kind, &t.queue)
                    && q.overdue.is_none_or(|w| w == t.overdue)
                    && q.due_soon.is_none_or(|w| w == t.due_soon)
            })
            .take(limit)
            .cloned()
            .collect();
        BacklogList {
            now: snapshot::rfc3339(self.at_ms),
            total,
            tasks,
        }
    }
}

/// The `BACKLOG_MAX` most urgent open tasks, and the `PER_GROUP` most
/// urgent of each (kind, queue), most urgent first: selections (linear)
/// over references, then rows only for what was kept, so a million open
/// tasks cost a pass, not a sort or a million rows.
fn urgent_tasks(engine: &Engine, now_ms: i64) -> Vec<TaskView> {
    type Row<'a> = (i64, i32, &'a str, &'a crate::engine::Task);
    fn urgency(a: &Row, b: &Row) -> std::cmp::Ordering {
        a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2))
    }
    let all: Vec<Row> = engine
        .tasks
        .iter()
        .map(|(id, t)| (t.due_ms, t.priority, id.as_str(), t))
        .collect();
    let mut keep = vec![false; all.len()];
    let mut pick = |mut idx: Vec<u32>, n: usize| {
        let by = |a: &u32, b: &u32| urgency(&all[*a as usize], &all[*b as usize]);
        if idx.len() > n {
            idx.select_nth_unstable_by(n, by);
            idx.truncate(n);
        }
        for i in idx {
            keep[i as usize] = true;
        }
    };
    let mut groups: HashMap<(u8, &str), Vec<u32>> = HashMap::new();
    for (i, r) in all.iter().enumerate() {
        groups
            .entry((r.3.kind, r.3.queue.as_str()))
            .or_default()
            .push(i as u32);
    }
    pick((0..all.len() as u32).collect(), snapshot::BACKLOG_MAX);
    for (_, g) in groups {
        pick(g, PER_GROUP);
    }
    let mut rows: Vec<&Row> = all
        .iter()
        .zip(&keep)
        .filter_map(|(r, k)| k.then_some(r))
        .collect();
    rows.sort_unstable_by(|a, b| urgency(a, b));
    rows.into_iter()
        .map(|(_, _, id, t)| snapshot::task_view(engine, id, t, now_ms))
        .collect()
}
