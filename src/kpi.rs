//! The KPI registry: every figure a goal can be set on, defined once.
//!
//! Each entry says what the KPI is called, its unit, which way is better,
//! how it is computed (numerator, denominator, in plain words and as a
//! function of [`Inputs`]), which scopes it exists for and which events
//! feed it. The scorecards, the snapshot's statuses, the wallboard tiles,
//! the goal sheet, the generated alert rules and dashboards all read this
//! table, so a new KPI is one entry here (and, if it needs a new raw sum,
//! one field in [`Inputs`] filled by `scorecard.rs`).
//!
//! This module is a leaf of the domain: it imports nothing of the crate,
//! so configuration validation, the engine and the renderers can all use
//! it without a cycle.

use serde::{Deserialize, Serialize};

/// Which way a KPI improves.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A share between 0 and 1.
    Ratio,
    Seconds,
    Count,
    /// In the configured currency.
    Money,
    /// QA points, 0 to 100.
    Points,
}

impl Unit {
    /// The Grafana unit of a panel showing this KPI.
    pub fn grafana(self) -> &'static str {
        match self {
            Unit::Ratio => "percentunit",
            Unit::Seconds => "s",
            Unit::Count => "short",
            Unit::Money => "currency",
            Unit::Points => "none",
        }
    }
}

/// The kinds of scope a scorecard is drawn up for.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ScopeKind {
    Site,
    Team,
    Queue,
    Partner,
    /// Only the per-person KPIs, only today, only where the privacy
    /// policy allows (`privacy.agent_scorecards`); never an override
    /// scope, so not in `ALL`.
    Agent,
}

impl ScopeKind {
    pub const ALL: [ScopeKind; 4] = [
        ScopeKind::Site,
        ScopeKind::Team,
        ScopeKind::Queue,
        ScopeKind::Partner,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Site => "site",
            ScopeKind::Team => "team",
            ScopeKind::Queue => "queue",
            ScopeKind::Partner => "partner",
            ScopeKind::Agent => "agent",
        }
    }
    /// An override scope kind (site, team, queue, partner).
    pub fn parse(s: &str) -> Option<ScopeKind> {
        ScopeKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
    /// A scorecard's scope kind: an override scope kind or `agent`.
    pub fn parse_card(s: &str) -> Option<ScopeKind> {
        ScopeKind::parse(s).or((s == "agent").then_some(ScopeKind::Agent))
    }
}

const ALL_SCOPES: &[ScopeKind] = &ScopeKind::ALL;
/// The KPIs one person's work is measured by also exist per agent.
const PERSONAL_SCOPES: &[ScopeKind] = &[
    ScopeKind::Site,
    ScopeKind::Team,
    ScopeKind::Queue,
    ScopeKind::Partner,
    ScopeKind::Agent,
];

/// Which abandoned calls the service level counts (a goal option).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Abandons {
    /// answered in threshold / (answered + abandoned − short abandons)
    #[default]
    Long,
    /// answered in threshold / (answered + abandoned)
    All,
    /// answered in threshold / answered
    None,
}

/// Which callers who left without an agent the service level counts (a
/// goal option): exits are timeouts, exit keys and empty queues; refusals
/// are callers turned away before the queue (full, joinempty, closed).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Exits {
    /// Exits count as not answered in threshold; refusals do not count.
    #[default]
    Waiting,
    /// Exits and refusals count as not answered in threshold.
    All,
    /// Neither counts.
    None,
}

/// The raw sums of one scope over one period, and the scope's values now.
/// Filled by `scorecard.rs` from the engine's ledger and the snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Inputs {
    pub offered: u64,
    pub answered: u64,
    pub answered_in_sl: u64,
    pub abandoned: u64,
    pub abandoned_short: u64,
    /// Callers who left the queue without an agent, not by hanging up.
    pub exited: u64,
    /// Callers turned away before the queue.
    pub refused: u64,
    /// Sum of the waits of answered calls.
    pub wait_ms: i64,
    /// Longest wait of a call answered or abandoned in the period.
    pub max_wait_ms: i64,
    pub contacts: u64,
    pub converted: u64,
    pub wrapped: u64,
    pub talk_ms: i64,
    pub hold_ms: i64,
    pub wrap_ms: i64,
    /// Net of cancellations.
    pub sales: u64,
    pub revenue: f64,
    pub incremental: f64,
    pub cancelled: u64,
    /// The task kind the goal names (callbacks for callback KPIs).
    pub task: TaskInputs,
    /// QA scores given (hundredths of a point).
    pub qa: crate::engine::qa::QaSums,
    /// Coaching sums of tagged contacts.
    pub coach: crate::engine::qa::CoachSums,
    /// Values now; `None` for a past interval (the guardrail).
    pub now: Option<Now>,
}

impl std::ops::AddAssign<&Inputs> for Inputs {
    /// Sums of two periods (or scopes); the longest wait is the longer.
    fn add_assign(&mut self, x: &Inputs) {
        let i = self;
        i.offered += x.offered;
        i.answered += x.answered;
        i.answered_in_sl += x.answered_in_sl;
        i.abandoned += x.abandoned;
        i.abandoned_short += x.abandoned_short;
        i.exited += x.exited;
        i.refused += x.refused;
        i.wait_ms += x.wait_ms;
        i.max_wait_ms = i.max_wait_ms.max(x.max_wait_ms);
        i.contacts += x.contacts;
        i.converted += x.converted;
        i.wrapped += x.wrapped;
        i.talk_ms += x.talk_ms;
        i.hold_ms += x.hold_ms;
        i.wrap_ms += x.wrap_ms;
        i.sales += x.sales;
        i.revenue += x.revenue;
        i.incremental += x.incremental;
        i.cancelled += x.cancelled;
        i.task.met += x.task.met;
        i.task.missed += x.task.missed;
        i.qa.merge(&x.qa);
        i.coach.add(&x.coach, 1);
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TaskInputs {
    pub met: u64,
    pub missed: u64,
    /// Time from created to completed, estimated from the histogram.
    pub p50_s: Option<f64>,
    pub p90_s: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Now {
    pub waiting: u64,
    pub oldest_wait_s: f64,
    pub open: u64,
    pub overdue: u64,
}

/// A measured value and what it was computed from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Measured {
    pub value: Option<f64>,
    pub numerator: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denominator: Option<f64>,
}

fn ratio(num: u64, den: u64) -> Measured {
    Measured {
        value: (den > 0).then(|| num as f64 / den as f64),
        numerator: num as f64,
        denominator: Some(den as f64),
    }
}

fn mean_s(ms: i64, n: u64) -> Measured {
    Measured {
        value: (n > 0).then(|| ms as f64 / 1000.0 / n as f64),
        numerator: ms as f64 / 1000.0,
        denominator: Some(n as f64),
    }
}

fn plain(v: Option<f64>) -> Measured {
    Measured {
        value: v,
        numerator: v.unwrap_or(0.0),
        denominator: None,
    }
}

/// Options a goal passes to its KPI.
#[derive(Debug, Clone, Copy, Default)]
pub struct Params {
    pub abandons: Abandons,
    pub exits: Exits,
}

/// How a KPI's value is measured over a period (`now` is `None` when
/// the period is a past interval, so "now" KPIs have no value there).
pub type Compute = fn(&Inputs, Params) -> Measured;

/// Whether a KPI is a state "now" or a sum over its period.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Counted over the goal's period.
    Period,
    /// The value at this moment; in a past interval, the interval's
    /// worst (only `oldest_wait` has one: the longest wait that ended).
    Now,
}

/// One KPI.
#[derive(Debug, Clone, Copy)]
pub struct Def {
    pub id: &'static str,
    pub title: &'static str,
    pub unit: Unit,
    pub better: Better,
    pub basis: Basis,
    /// In plain words, for the goal sheet.
    pub numerator: &'static str,
    pub denominator: Option<&'static str>,
    pub scopes: &'static [ScopeKind],
    pub events: &'static [&'static str],
    /// The goal must name a task kind (`kind = "offer"`).
    pub needs_kind: bool,
    /// Defaults to callbacks when the goal names no kind.
    pub callback_kind: bool,
    pub compute: Compute,
}

/// Quality management's events (docs/quality.md): a KPI fed only by
/// these is shown only to roles allowed to see QA data.
pub const QUALITY_EVENTS: &[&str] = &["qa_scored", "contact_tagged"];
const CALL_EVENTS: &[&str] = &[
    "call_offered",
    "call_answered",
    "call_abandoned",
    "call_exited",
    "call_refused",
];
const CONTACT_EVENTS: &[&str] = &["call_ended", "wrap_ended", "task_completed"];
const SALE_EVENTS: &[&str] = &["sale", "sale_cancelled"];
const TASK_EVENTS: &[&str] = &["task_created", "task_completed", "task_cancelled"];
const CALLBACK_EVENTS: &[&str] = &[
    "callback_requested",
    "call_abandoned",
    "callback_attempt",
    "task_completed",
];

/// The registry. Order is the order of the goal sheet and the panels.
pub static REGISTRY: &[Def] = &[
    Def {
        id: "service_level",
        title: "Service level",
        unit: Unit::Ratio,
        better: Better::Higher,
        basis: Basis::Period,
        numerator: "calls answered within the queue's service-level threshold",
        denominator: Some("calls answered + abandoned (short abandons per the goal's `abandons`) + exited (timeout, key, empty; and refused, per the goal's `exits`)"),
        scopes: ALL_SCOPES,
        events: CALL_EVENTS,
        needs_kind: false,
        callback_kind: false,
        compute: |i, p| {
            let den = match p.abandons {
                Abandons::Long => (i.answered + i.abandoned).saturating_sub(i.abandoned_short),
                Abandons::All => i.answered + i.abandoned,
                Abandons::None => i.answered,
            };
            let left = match p.exits {
                Exits::Waiting => i.exited,
                Exits::All => i.exited + i.refused,
                Exits::None => 0,
            };
            ratio(i.answered_in_sl, den + left)
        },
    },
    Def {
        id: "abandon_rate",
        title: "Abandon rate",
        unit: Unit::Ratio,
        better: Better::Lower,
        basis: Basis::Period,
        numerator: "calls abandoned after the short-abandon threshold",
        denominator: Some("calls answered + abandoned − short abandons"),
        scopes: ALL_SCOPES,
        events: CALL_EVENTS,
        needs_kind: false,
        callback_kind: false,
        compute: |i, _| {
            let long = i.abandoned.saturating_sub(i.abandoned_short);
            ratio(long, i.answered + long)
        },
    },
    Def {
        id: "oldest_wait",
        title: "Oldest wait",
        unit: Unit::Seconds,
        better: Better::Lower,
        basis: Basis::Now,
        numerator: "seconds the longest-waiting caller has waited now (in a past interval: the longest wait that ended in it)",
        denominator: None,
        scopes: ALL_SCOPES,
        events: CALL_EVENTS,
        needs_kind: false,
        callback_kind: false,
        compute: |i, _| match i.now {
            Some(n) => plain(Some(n.oldest_wait_s)),
            None => plain(
                (i.answered + i.abandoned + i.exited > 0).then(|| i.max_wait_ms as f64 / 1000.0),
            ),
        },
    },
    Def {
        id: "asa",
        title: "Average speed of answer",
        unit: Unit::Seconds,
        better: Better::Lower,
        basis: Basis::Period,
        numerator: "total wait of answered calls, seconds",
        denominator: Some("calls answered"),
        scopes: ALL_SCOPES,
        events: CALL_EVENTS,
        needs_kind: false,
        callback_kind: false,
        compute: |i, _| mean_s(i.wait_ms, i.answered),
    },
    Def {
        id: "callbacks_open",
        title: "Callbacks open",
        unit: Unit::Count,
        better: Better::Lower,
        basis: Basis::Now,
        numerator: "callbacks owed and not yet closed, now",
        denominator: None,
        scopes: ALL_SCOPES,
        events: CALLBACK_EVENTS,
        needs_kind: false,
        callback_kind: true,
        compute: |i, _| plain(i.now.map(|n| n.open as f64)),
    },
    Def {
        id: "callbacks_overdue",
        title: "Callbacks overdue",
        unit: Unit::Count,
        better: Better::Lower,
        basis: Basis::Now,
        numerator: "open callbacks past their deadline, now",
        denominator: None,
        scopes: ALL_SCOPES,
        events: CALLBACK_EVENTS,
        needs_kind: false,
        callback_kind: true,
        compute: |i, _| plain(i.now.map(|n| n.overdue as f64)),
    },
    Def {
        id: "callback_sla",
        title: "Callback SLA attainment",
        unit: Unit::Ratio,
        better: Better::Higher,
        basis: Basis::Period,
        numerator: "callbacks completed by their deadline",
        denominator: Some("callbacks completed"),
        scopes: ALL_SCOPES,
        events: CALLBACK_EVENTS,
        needs_kind: false,
        callback_kind: true,
        compute: |i, _| ratio(i.task.met, i.task.met + i.task.missed),
    },
    Def {
        id: "callback_duration_p50",
        title: "Callback duration (median)",
        unit: Unit::Seconds,
        better: Better::Lower,
        basis: Basis::Period,
        numerator: "median time from the callback being owed to the customer reached, seconds (estimated from the completion histogram)",
        denominator: None,
        scopes: ALL_SCOPES,
        events: CALLBACK_EVENTS,
        needs_kind: false,
        callback_kind: true,
        compute: |i, _| plain(i.task.p50_s),
    },
    Def {
        id: "callback_duration_p90",
        title: "Callback duration (90th percentile)",
        unit: Unit::Seconds,
        better: Better::Lower,
        basis: Basis::Period,
        numerator: "90th percentile of the time from owed to reached, seconds (estimated from the completion histogram)",
        denominator: None,
        scopes: ALL_SCOPES,
        events: CALLBACK_EVENTS,
        needs_kind: false,
        callback_kind: true,
        compute: |i, _| plain(i.task.p90_s),
    },
    Def {
        id: "task_sla",
        title: "Processing within SLA",
        unit: Unit::Ratio,
        better: Better::Higher,
        basis: Basis::Period,
        numerator: "tasks of the goal's kind completed by their deadline",
        denominator: Some("tasks of that kind completed"),
        scopes: ALL_SCOPES,
        events: TASK_EVENTS,
        needs_kind: true,
        callback_kind: false,
        compute: |i, _| ratio(i.task.met, i.task.met + i.task.missed),
    },
    Def {
        id: "task_time_p90",
        title: "Processing time (90th percentile)",
        unit: Unit::Seconds,
        better: Better::Lower,
        basis: Basis::Period,
        numerator: "90th percentile of the time from created to completed for the goal's kind, seconds",
        denominator: None,
        scopes: ALL_SCOPES,
        events: TASK_EVENTS,
        needs_kind: true,
        callback_kind: false,
        compute: |i, _| plain(i.task.p90_s),
    },
    Def {
        id: "backlog_overdue",
        title: "Backlog overdue",
        unit: Unit::Count,
        better: Better::Lower,
        basis: Basis::Now,
        numerator: "open tasks of the goal's kind past their deadline, now",
        denominator: None,
        scopes: ALL_SCOPES,
        events: TASK_EVENTS,
        needs_kind: true,
        callback_kind: false,
        compute: |i, _| plain(i.now.map(|n| n.overdue as f64)),
    },
    Def {
        id: "aht",
        title: "Average handling time",
        unit: Unit::Seconds,
        better: Better::Lower,
        basis: Basis::Period,
        numerator: "talk + hold + after-call work of contacts wrapped up, seconds",
        denominator: Some("contacts wrapped up"),
        scopes: PERSONAL_SCOPES,
        events: CONTACT_EVENTS,
        needs_kind: false,
        callback_kind: false,
        compute: |i, _| mean_s(i.talk_ms + i.hold_ms + i.wrap_ms, i.wrapped),
    },
    Def {
        id: "talk_time",
        title: "Average talk time",
        unit: Unit::Seconds,
        better: Better::Lower,
        basis: Basis::Period,
        numerator: "talk time of contacts wrapped up, seconds",
        denominator: Some("contacts wrapped up"),
        scopes: PERSONAL_SCOPES,
        events: CONTACT_EVENTS,
        needs_kind: false,
        callback_kind: false,
        compute: |i, _| mean_s(i.talk_ms, i.wrapped),
    },
    Def {
        id: "hold_time",
        title: "Average hold time",
        unit: Unit::Seconds,
        better: Better::Lower,
        basis: Basis::Period,
        numerator: "hold time of contacts wrapped up, seconds",
        denominator: Some("contacts wrapped up"),
        scopes: PERSONAL_SCOPES,
        events: CONTACT_EVENTS,
        needs_kind: false,
        callback_kind: false,
        compute: |i, _| mean_s(i.hold_ms, i.wrapped),
    },
    Def {
        id: "wrap_time",
        title: "Average after-call work",
        unit: Unit::Seconds,
        better: Better::Lower,
        basis: Basis::Period,
        numerator: "after-call work of contacts wrapped up, seconds",
        denominator: Some("contacts wrapped up"),
        scopes: PERSONAL_SCOPES,
        events: CONTACT_EVENTS,
        needs_kind: false,
        callback_kind: false,
        compute: |i, _| mean_s(i.wrap_ms, i.wrapped),
    },
    Def {
        id: "conversion",
        title: "Conversion",
        unit: Unit::Ratio,
        better: Better::Higher,
        basis: Basis::Period,
        numerator: "handled contacts with at least one sale not cancelled",
        denominator: Some("handled contacts"),
        scopes: PERSONAL_SCOPES,
        events: &["call_ended", "task_completed", "sale", "sale_cancelled"],
        needs_kind: false,
        callback_kind: false,
        compute: |i, _| ratio(i.converted, i.contacts),
    },
    Def {
        id: "incremental_revenue",
        title: "Incremental revenue",
        unit: Unit::Money,
        better: Better::Higher,
        basis: Basis::Period,
        numerator: "gain of upgrades and cross-sells minus the loss of downgrades, net of cancellations",
        denominator: None,
        scopes: PERSONAL_SCOPES,
        events: SALE_EVENTS,
        needs_kind: false,
        callback_kind: false,
        compute: |i, _| plain(Some(i.incremental)),
    },
    Def {
        id: "revenue",
        title: "Revenue",
        unit: Unit::Money,
        better: Better::Higher,
        basis: Basis::Period,
        numerator: "price × quantity of sales, net of cancellations",
        denominator: None,
        scopes: PERSONAL_SCOPES,
        events: SALE_EVENTS,
        needs_kind: false,
        callback_kind: false,
        compute: |i, _| plain(Some(i.revenue)),
    },
    Def {
        id: "sales_cancellation_rate",
        title: "Sales cancellation rate",
        unit: Unit::Ratio,
        better: Better::Lower,
        basis: Basis::Period,
        numerator: "sales cancelled",
        denominator: Some("sales booked (kept + cancelled)"),
        scopes: PERSONAL_SCOPES,
        events: SALE_EVENTS,
        needs_kind: false,
        callback_kind: false,
        compute: |i, _| ratio(i.cancelled, i.sales + i.cancelled),
    },
    Def {
        id: "buying_signal_conversion",
        title: "Buying signals converted",
        unit: Unit::Ratio,
        better: Better::Higher,
        basis: Basis::Period,
        numerator: "contacts tagged buying_signal that carry a sale not cancelled",
        denominator: Some("contacts tagged buying_signal (by when they were handled)"),
        scopes: PERSONAL_SCOPES,
        events: &["contact_tagged"],
        needs_kind: false,
        callback_kind: false,
        compute: |i, _| ratio(i.coach.signals_sold, i.coach.signals),
    },
    Def {
        id: "missed_opportunities",
        title: "Missed opportunities",
        unit: Unit::Ratio,
        better: Better::Lower,
        basis: Basis::Period,
        numerator: "contacts tagged buying_signal and also missed_opportunity, or without offer_made and without a sale",
        denominator: Some("contacts tagged buying_signal"),
        scopes: PERSONAL_SCOPES,
        events: &["contact_tagged"],
        needs_kind: false,
        callback_kind: false,
        compute: |i, _| ratio(i.coach.missed, i.coach.signals),
    },
    Def {
        id: "offer_conversion",
        title: "Offers sold",
        unit: Unit::Ratio,
        better: Better::Higher,
        basis: Basis::Period,
        numerator: "contacts tagged offer_made that carry a sale not cancelled",
        denominator: Some("contacts tagged offer_made"),
        scopes: PERSONAL_SCOPES,
        events: &["contact_tagged"],
        needs_kind: false,
        callback_kind: false,
        compute: |i, _| ratio(i.coach.offers_sold, i.coach.offers),
    },
    Def {
        id: "qa_score",
        title: "QA score",
        unit: Unit::Points,
        better: Better::Higher,
        basis: Basis::Period,
        numerator: "sum of the QA scores given in the period (0-100 each; docs/quality.md)",
        denominator: Some("evaluations given; a score whose t interval is wider than quality.max_interval_width is shown as not enough evaluations and earns no points"),
        scopes: PERSONAL_SCOPES,
        events: &["qa_scored"],
        needs_kind: false,
        callback_kind: false,
        compute: |i, _| Measured {
            value: (i.qa.n > 0).then(|| i.qa.sum as f64 / 100.0 / i.qa.n as f64),
            numerator: i.qa.sum as f64 / 100.0,
            denominator: Some(i.qa.n as f64),
        },
    },
];

/// The KPI with this id.
pub fn get(id: &str) -> Option<&'static Def> {
    REGISTRY.iter().find(|d| d.id == id)
}

/// Every id, for error messages.
pub fn ids() -> Vec<&'static str> {
    REGISTRY.iter().map(|d| d.id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique() {
        let mut ids = ids();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }

    #[test]
    fn service_level_formula_variants() {
        let i = Inputs {
            answered: 8,
            answered_in_sl: 6,
            abandoned: 4,
            abandoned_short: 2,
            ..Inputs::default()
        };
        let sl = |abandons, exits| {
            (get("service_level").expect("kpi").compute)(&i, Params { abandons, exits })
        };
        assert_eq!(sl(Abandons::Long, Exits::Waiting).value, Some(0.6));
        assert_eq!(sl(Abandons::All, Exits::Waiting).value, Some(0.5));
        assert_eq!(sl(Abandons::None, Exits::Waiting).value, Some(0.75));
        assert_eq!(sl(Abandons::Long, Exits::Waiting).denominator, Some(10.0));
        // Two timeouts and two callers turned away at a full queue.
        let i = Inputs {
            exited: 2,
            refused: 2,
            ..i
        };
        let sl = |abandons, exits| {
            (get("service_level").expect("kpi").compute)(&i, Params { abandons, exits })
        };
        assert_eq!(sl(Abandons::Long, Exits::Waiting).denominator, Some(12.0));
        assert_eq!(sl(Abandons::Long, Exits::Waiting).value, Some(0.5));
        assert_eq!(sl(Abandons::Long, Exits::All).denominator, Some(14.0));
        assert_eq!(sl(Abandons::Long, Exits::None).value, Some(0.6));
    }

    #[test]
    fn now_kpis_have_no_value_in_a_past_interval() {
        let i = Inputs::default();
        let m = (get("callbacks_overdue").expect("kpi").compute)(&i, Params::default());
        assert_eq!(m.value, None);
    }
}
