//! The canonical event model (v1) and its JSON codec.
//!
//! Decoding is two steps on purpose: serde reads the object into a flat
//! [`Wire`] record in one pass (no buffering of the whole object as an
//! internally tagged enum would do), then [`Wire::into_event`] checks the
//! fields the named `type` needs. The second step is what lets every
//! refusal name the exact field and reason instead of relaying serde's
//! generic wording. Unknown fields are ignored so that senders can add
//! fields before callwatch knows them.

use std::borrow::Cow;

use chrono::{DateTime, FixedOffset};
use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::money::{Money, Quantity};
use crate::reject::{Reason, Rejection};

/// Short strings (ids, names) live inline up to 24 bytes: no heap per field.
pub type Text = CompactString;

/// Longest accepted string field, in bytes. Ids and names are short; this
/// bounds what one client can make the daemon keep per entity.
pub const MAX_TEXT: usize = 256;
/// Most queues one `agent_login` may name.
pub const MAX_LOGIN_QUEUES: usize = 64;
/// Longest duration an event may state (`talk_s`, `hold_s`): 7 days.
pub const MAX_DURATION_MS: i64 = 7 * 24 * 3_600_000;
/// Event times before this (2000-01-01T00:00:00Z) are implausible.
pub const MIN_TS_MS: i64 = 946_684_800_000;
/// Event times from this (2100-01-01T00:00:00Z) on are implausible.
pub const MAX_TS_MS: i64 = 4_102_444_800_000;
/// How far a task's `due` may lie from the event's own time: 400 days.
pub const MAX_DUE_SPAN_MS: i64 = 400 * 24 * 3_600_000;

/// One event: the envelope and its typed body.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Sender-chosen unique id; a repeated id is a duplicate.
    pub id: Text,
    /// The event's own time, with the offset the sender gave.
    pub ts: DateTime<FixedOffset>,
    pub site: Option<Text>,
    pub body: Body,
}

impl Event {
    /// Event time as Unix milliseconds, the engine's time unit.
    pub fn ts_ms(&self) -> i64 {
        self.ts.timestamp_millis()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Available,
    OnCall,
    OnHold,
    WrapUp,
    Paused,
    Offline,
}

impl AgentStatus {
    pub const ALL: [AgentStatus; 6] = [
        AgentStatus::Available,
        AgentStatus::OnCall,
        AgentStatus::OnHold,
        AgentStatus::WrapUp,
        AgentStatus::Paused,
        AgentStatus::Offline,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Available => "available",
            AgentStatus::OnCall => "on_call",
            AgentStatus::OnHold => "on_hold",
            AgentStatus::WrapUp => "wrap_up",
            AgentStatus::Paused => "paused",
            AgentStatus::Offline => "offline",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Inbound,
    Outbound,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AttemptResult {
    Reached,
    NoAnswer,
    Busy,
    Voicemail,
    InvalidNumber,
}

impl AttemptResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptResult::Reached => "reached",
            AttemptResult::NoAnswer => "no_answer",
            AttemptResult::Busy => "busy",
            AttemptResult::Voicemail => "voicemail",
            AttemptResult::InvalidNumber => "invalid_number",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SaleKind {
    New,
    Upsell,
    CrossSell,
    Upgrade,
    Downgrade,
    Renewal,
}

impl SaleKind {
    pub const ALL: [SaleKind; 6] = [
        SaleKind::New,
        SaleKind::Upsell,
        SaleKind::CrossSell,
        SaleKind::Upgrade,
        SaleKind::Downgrade,
        SaleKind::Renewal,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            SaleKind::New => "new",
            SaleKind::Upsell => "upsell",
            SaleKind::CrossSell => "cross_sell",
            SaleKind::Upgrade => "upgrade",
            SaleKind::Downgrade => "downgrade",
            SaleKind::Renewal => "renewal",
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Where a call is transferred to.
#[derive(Debug, Clone, PartialEq)]
pub enum TransferTarget {
    Agent(Text),
    Queue(Text),
}

/// What a sale belongs to, for conversion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SaleLink {
    Call(Text),
    Task(Text),
}

/// The contact a QA evaluation is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ContactRef {
    Call(Text),
    Task(Text),
    Sale(Text),
}

impl ContactRef {
    pub fn kind(&self) -> &'static str {
        match self {
            ContactRef::Call(_) => "call",
            ContactRef::Task(_) => "task",
            ContactRef::Sale(_) => "sale",
        }
    }
    pub fn id(&self) -> &Text {
        match self {
            ContactRef::Call(t) | ContactRef::Task(t) | ContactRef::Sale(t) => t,
        }
    }
}

/// A tag on a contact (`contact_tagged`), for coaching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tag {
    BuyingSignal,
    OfferMade,
    Objection,
    MissedOpportunity,
}

impl Tag {
    pub const ALL: [Tag; 4] = [
        Tag::BuyingSignal,
        Tag::OfferMade,
        Tag::Objection,
        Tag::MissedOpportunity,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Tag::BuyingSignal => "buying_signal",
            Tag::OfferMade => "offer_made",
            Tag::Objection => "objection",
            Tag::MissedOpportunity => "missed_opportunity",
        }
    }
    /// The tag's bit in a `u8` set.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Why a caller left a queue without an agent (`call_exited`), or was
/// turned away before entering it (`call_refused`). The names are
/// Asterisk's (docs/events.md maps the other platforms onto them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    /// The queue's maximum wait passed (EXITWITHTIMEOUT).
    Timeout,
    /// The caller pressed an exit key (EXITWITHKEY).
    Key,
    /// The queue had no members left while the caller waited (EXITEMPTY).
    Empty,
    /// The leaveempty rule removed the caller (members unavailable).
    Leaveempty,
    /// Turned away: the queue was full.
    Full,
    /// Turned away: the joinempty rule (no, or no available, members).
    Joinempty,
    /// Turned away: the queue was closed (outside opening hours).
    Closed,
    /// Closed by a source's resync: the platform no longer listed the
    /// waiting call after a reconnect, so how it left is unknown (not in
    /// the service level).
    Resync,
}

impl ExitReason {
    pub const ALL: [ExitReason; 8] = [
        ExitReason::Timeout,
        ExitReason::Key,
        ExitReason::Empty,
        ExitReason::Leaveempty,
        ExitReason::Full,
        ExitReason::Joinempty,
        ExitReason::Closed,
        ExitReason::Resync,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Timeout => "timeout",
            ExitReason::Key => "key",
            ExitReason::Empty => "empty",
            ExitReason::Leaveempty => "leaveempty",
            ExitReason::Full => "full",
            ExitReason::Joinempty => "joinempty",
            ExitReason::Closed => "closed",
            ExitReason::Resync => "resync",
        }
    }
    pub fn parse(s: &str) -> Option<ExitReason> {
        ExitReason::ALL.into_iter().find(|r| r.as_str() == s)
    }
    /// A caller who was in the queue and left it unanswered for a known
    /// reason: not answered in time, for the service level.
    pub fn counts_against_service_level(self) -> bool {
        matches!(
            self,
            ExitReason::Timeout | ExitReason::Key | ExitReason::Empty | ExitReason::Leaveempty
        )
    }
    /// A refusal happens before the caller enters the queue.
    pub fn is_refusal(self) -> bool {
        matches!(
            self,
            ExitReason::Full | ExitReason::Joinempty | ExitReason::Closed
        )
    }
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One item of a QA form: `score` of `max` points.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QaItemScore {
    pub score: f64,
    pub max: f64,
}

/// Most items on one QA form.
pub const MAX_QA_ITEMS: usize = 64;

/// The typed body of each event type.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    AgentLogin {
        agent: Text,
        name: Option<Text>,
        team: Option<Text>,
        queues: Vec<Text>,
    },
    AgentState {
        agent: Text,
        state: AgentStatus,
        reason: Option<Text>,
    },
    AgentLogout {
        agent: Text,
        /// Leave only these queues (empty: log out of all).
        queues: Vec<Text>,
    },
    CallOffered {
        call: Text,
        queue: Text,
        direction: Direction,
        customer: Option<Text>,
    },
    CallAnswered {
        call: Text,
        agent: Text,
        /// The caller's wait as the PBX states it, milliseconds (`wait_s`
        /// on the wire); it wins over the time since the offer.
        wait_ms: Option<i64>,
    },
    CallHold {
        call: Text,
    },
    CallResume {
        call: Text,
    },
    /// The caller hung up while waiting.
    CallAbandoned {
        call: Text,
    },
    /// The waiting caller left the queue without an agent for a reason
    /// other than hanging up (a timeout, an exit key, an empty queue).
    CallExited {
        call: Text,
        reason: ExitReason,
    },
    /// A caller turned away before entering the queue (full, joinempty,
    /// closed). `call` names the channel when the platform gives one.
    CallRefused {
        queue: Text,
        reason: ExitReason,
        call: Option<Text>,
        customer: Option<Text>,
    },
    /// The call rang at an agent who did not take it (Asterisk
    /// RINGNOANSWER): the caller keeps waiting.
    CallMissed {
        call: Text,
        agent: Text,
        /// How long it rang, milliseconds (`ring_s` on the wire).
        ring_ms: Option<i64>,
    },
    CallTransferred {
        call: Text,
        to: TransferTarget,
    },
    CallEnded {
        call: Text,
        /// Stated talk time, milliseconds (`talk_s` on the wire).
        talk_ms: Option<i64>,
        hold_ms: Option<i64>,
    },
    WrapEnded {
        call: Text,
        outcome: Option<Text>,
    },
    TaskCreated {
        task: Text,
        kind: Text,
        queue: Option<Text>,
        customer: Option<Text>,
        due: Option<DateTime<FixedOffset>>,
        priority: Option<i32>,
    },
    TaskAssigned {
        task: Text,
        agent: Text,
    },
    TaskAttempted {
        task: Text,
        agent: Text,
        result: AttemptResult,
    },
    TaskCompleted {
        task: Text,
        agent: Option<Text>,
        outcome: Option<Text>,
    },
    TaskCancelled {
        task: Text,
        reason: Option<Text>,
    },
    Sale {
        sale: Text,
        agent: Text,
        link: Option<SaleLink>,
        kind: SaleKind,
        product: Option<Text>,
        quantity: Quantity,
        unit_price: Money,
        previous_value: Money,
        currency: Option<Text>,
    },
    SaleCancelled {
        sale: Text,
        reason: Option<Text>,
    },
    /// A QA evaluation of a contact (docs/quality.md).
    QaScored {
        contact: ContactRef,
        agent: Text,
        evaluator: Text,
        form: Text,
        /// 0 to 100.
        score: f64,
        /// Per-item scores, in form order (names are kept in the journal
        /// only: the engine checks them but does not count per item).
        items: Vec<(Text, QaItemScore)>,
    },
    /// Tags on a handled call or task, from wrap-up or a reviewer.
    ContactTagged {
        contact: ContactRef,
        agent: Text,
        tags: Vec<Tag>,
    },
    /// Time passes: no fact, only the sender's clock. Moves the engine's
    /// clock on a quiet desk (retention, breaches), as a journaled event.
    Heartbeat,
}

impl Body {
    /// The `type` string of this body.
    pub fn type_name(&self) -> &'static str {
        match self {
            Body::AgentLogin { .. } => "agent_login",
            Body::AgentState { .. } => "agent_state",
            Body::AgentLogout { .. } => "agent_logout",
            Body::CallOffered { .. } => "call_offered",
            Body::CallAnswered { .. } => "call_answered",
            Body::CallHold { .. } => "call_hold",
            Body::CallResume { .. } => "call_resume",
            Body::CallAbandoned { .. } => "call_abandoned",
            Body::CallExited { .. } => "call_exited",
            Body::CallRefused { .. } => "call_refused",
            Body::CallMissed { .. } => "call_missed",
            Body::CallTransferred { .. } => "call_transferred",
            Body::CallEnded { .. } => "call_ended",
            Body::WrapEnded { .. } => "wrap_ended",
            Body::TaskCreated { .. } => "task_created",
            Body::TaskAssigned { .. } => "task_assigned",
            Body::TaskAttempted { .. } => "task_attempted",
            Body::TaskCompleted { .. } => "task_completed",
            Body::TaskCancelled { .. } => "task_cancelled",
            Body::Sale { .. } => "sale",
            Body::SaleCancelled { .. } => "sale_cancelled",
            Body::QaScored { .. } => "qa_scored",
            Body::ContactTagged { .. } => "contact_tagged",
            Body::Heartbeat => "heartbeat",
        }
    }
}

/// Every event type name, in documentation order.
pub const TYPES: [&str; 24] = [
    "agent_login",
    "agent_state",
    "agent_logout",
    "call_offered",
    "call_answered",
    "call_hold",
    "call_resume",
    "call_abandoned",
    "call_exited",
    "call_refused",
    "call_missed",
    "call_transferred",
    "call_ended",
    "wrap_ended",
    "task_created",
    "task_assigned",
    "task_attempted",
    "task_completed",
    "task_cancelled",
    "sale",
    "sale_cancelled",
    "qa_scored",
    "contact_tagged",
    "heartbeat",
];

/// The flat wire record: every field any event type may carry.
#[derive(Debug, Default, Deserialize, Serialize)]
struct Wire<'a> {
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    ts: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type", skip_serializing_if = "Option::is_none")]
    ty: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    site: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    team: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    queues: Option<Vec<Text>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<AgentStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    call: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    queue: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    direction: Option<Direction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to_agent: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to_queue: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    talk_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wait_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ring_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hold_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<Text>,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    due: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<AttemptResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sale: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    product: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quantity: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit_price: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    evaluator: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    form: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    items: Option<Vec<WireItem>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<Text>>,
}

/// One item of a QA form on the wire.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct WireItem {
    name: Text,
    score: f64,
    max: f64,
}

fn missing(field: &str, ty: &str) -> Rejection {
    Rejection::new(
        Reason::MissingField,
        format!("missing field `{field}` (required for {ty})"),
    )
}

fn invalid(message: String) -> Rejection {
    Rejection::new(Reason::InvalidValue, message)
}

fn parse_time(field: &str, raw: &str) -> Result<DateTime<FixedOffset>, Rejection> {
    DateTime::parse_from_rfc3339(raw).map_err(|e| {
        Rejection::new(
            Reason::BadTimestamp,
            format!("`{field}` is not an RFC 3339 time with offset ({e}): {raw:?}"),
        )
    })
}

fn check_text(field: &str, value: &str) -> Result<(), Rejection> {
    if value.is_empty() {
        return Err(invalid(format!("`{field}` must not be empty")));
    }
    if value.len() > MAX_TEXT {
        return Err(invalid(format!(
            "`{field}` is {} bytes, longer than {MAX_TEXT}",
            value.len()
        )));
    }
    Ok(())
}

/// The `reason` of an exit or a refusal: required, one of the list.
fn exit_reason(ty: &str, reason: Option<Text>) -> Result<ExitReason, Rejection> {
    let r = reason.ok_or_else(|| missing("reason", ty))?;
    ExitReason::parse(&r).ok_or_else(|| {
        invalid(format!(
            "`reason` {r:?} is not one of timeout, key, empty, leaveempty, full, joinempty, closed, resync"
        ))
    })
}

/// The queues an agent joins or leaves: bounded, each a valid name.
fn check_queues(queues: Option<Vec<Text>>) -> Result<Vec<Text>, Rejection> {
    let queues = queues.unwrap_or_default();
    if queues.len() > MAX_LOGIN_QUEUES {
        return Err(invalid(format!(
            "`queues` names {} queues, more than {MAX_LOGIN_QUEUES}",
            queues.len()
        )));
    }
    for q in &queues {
        check_text("queues[]", q)?;
    }
    Ok(queues)
}

/// A task kind is a label value: keep it a bounded, safe identifier.
pub fn valid_task_kind(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= 32
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn money(field: &str, value: f64) -> Result<Money, Rejection> {
    Money::from_units(value).map_err(|e| invalid(format!("`{field}` {e}")))
}

fn quantity(value: f64) -> Result<Quantity, Rejection> {
    Quantity::from_f64(value).map_err(|e| invalid(format!("`quantity` {e}")))
}

/// A duration in seconds, to milliseconds, within [0, 7 days].
fn duration(field: &str, value: f64) -> Result<i64, Rejection> {
    let max_s = (MAX_DURATION_MS / 1000) as f64;
    if !value.is_finite() || value < 0.0 || value > max_s {
        return Err(invalid(format!(
            "`{field}` must be a number of seconds in [0, {max_s}], got {value}"
        )));
    }
    // Bounded above, so the product is exact and fits.
    Ok((value * 1000.0).round() as i64)
}

fn implausible(field: &str, raw: &str, why: &str) -> Rejection {
    Rejection::new(
        Reason::ImplausibleTimestamp,
        format!("`{field}` {raw:?} {why}"),
    )
}

impl<'a> Wire<'a> {
    fn take(field: &'static str, ty: &str, v: Option<Text>) -> Result<Text, Rejection> {
        let v = v.ok_or_else(|| missing(field, ty))?;
        check_text(field, &v)?;
        Ok(v)
    }

    fn opt(field: &'static str, v: Option<Text>) -> Result<Option<Text>, Rejection> {
        if let Some(v) = &v {
            check_text(field, v)?;
        }
        Ok(v)
    }

    fn into_event(self) -> Result<Event, Rejection> {
        let id = self.id.ok_or_else(|| missing("id", "every event"))?;
        check_text("id", &id)?;
        let ty = self.ty.ok_or_else(|| missing("type", "every event"))?;
        let ts_raw = self.ts.ok_or_else(|| missing("ts", "every event"))?;
        let ts = parse_time("ts", &ts_raw)?;
        let site = Self::opt("site", self.site)?;
        let t: &str = &ty;
        let body = match t {
            "agent_login" => {
                let queues = check_queues(self.queues)?;
                Body::AgentLogin {
                    agent: Self::take("agent", t, self.agent)?,
                    name: Self::opt("name", self.name)?,
                    team: Self::opt("team", self.team)?,
                    queues,
                }
            }
            "agent_state" => Body::AgentState {
                agent: Self::take("agent", t, self.agent)?,
                state: self.state.ok_or_else(|| missing("state", t))?,
                reason: Self::opt("reason", self.reason)?,
            },
            "agent_logout" => Body::AgentLogout {
                agent: Self::take("agent", t, self.agent)?,
                queues: check_queues(self.queues)?,
            },
            "call_offered" => Body::CallOffered {
                call: Self::take("call", t, self.call)?,
                queue: Self::take("queue", t, self.queue)?,
                direction: self.direction.unwrap_or_default(),
                customer: Self::opt("customer", self.customer)?,
            },
            "call_answered" => Body::CallAnswered {
                call: Self::take("call", t, self.call)?,
                agent: Self::take("agent", t, self.agent)?,
                wait_ms: self.wait_s.map(|v| duration("wait_s", v)).transpose()?,
            },
            "call_hold" => Body::CallHold {
                call: Self::take("call", t, self.call)?,
            },
            "call_resume" => Body::CallResume {
                call: Self::take("call", t, self.call)?,
            },
            "call_abandoned" => Body::CallAbandoned {
                call: Self::take("call", t, self.call)?,
            },
            "call_exited" => {
                let reason = exit_reason(t, self.reason)?;
                if reason.is_refusal() {
                    return Err(invalid(format!(
                        "`reason` {:?} turns a caller away before the queue: send call_refused",
                        reason.as_str()
                    )));
                }
                Body::CallExited {
                    call: Self::take("call", t, self.call)?,
                    reason,
                }
            }
            "call_refused" => {
                let reason = exit_reason(t, self.reason)?;
                if !reason.is_refusal() {
                    return Err(invalid(format!(
                        "`reason` {:?} is for a caller who was in the queue: send call_exited",
                        reason.as_str()
                    )));
                }
                Body::CallRefused {
                    queue: Self::take("queue", t, self.queue)?,
                    reason,
                    call: Self::opt("call", self.call)?,
                    customer: Self::opt("customer", self.customer)?,
                }
            }
            "call_missed" => Body::CallMissed {
                call: Self::take("call", t, self.call)?,
                agent: Self::take("agent", t, self.agent)?,
                ring_ms: self.ring_s.map(|v| duration("ring_s", v)).transpose()?,
            },
            "call_transferred" => {
                let call = Self::take("call", t, self.call)?;
                let to = match (self.to_agent, self.to_queue) {
                    (Some(a), None) => {
                        check_text("to_agent", &a)?;
                        TransferTarget::Agent(a)
                    }
                    (None, Some(q)) => {
                        check_text("to_queue", &q)?;
                        TransferTarget::Queue(q)
                    }
                    (None, None) => return Err(missing("to_agent` or `to_queue", t)),
                    (Some(_), Some(_)) => {
                        return Err(invalid(
                            "give either `to_agent` or `to_queue`, not both".into(),
                        ))
                    }
                };
                Body::CallTransferred { call, to }
            }
            "call_ended" => Body::CallEnded {
                call: Self::take("call", t, self.call)?,
                talk_ms: self.talk_s.map(|v| duration("talk_s", v)).transpose()?,
                hold_ms: self.hold_s.map(|v| duration("hold_s", v)).transpose()?,
            },
            "wrap_ended" => Body::WrapEnded {
                call: Self::take("call", t, self.call)?,
                outcome: Self::opt("outcome", self.outcome)?,
            },
            "task_created" => {
                let kind = Self::take("kind", t, self.kind)?;
                if !valid_task_kind(&kind) {
                    return Err(invalid(format!(
                        "task `kind` {kind:?} must match [a-z0-9_]{{1,32}}"
                    )));
                }
                Body::TaskCreated {
                    task: Self::take("task", t, self.task)?,
                    kind,
                    queue: Self::opt("queue", self.queue)?,
                    customer: Self::opt("customer", self.customer)?,
                    due: self.due.map(|d| parse_due(&d, &ts)).transpose()?,
                    priority: self.priority,
                }
            }
            "task_assigned" => Body::TaskAssigned {
                task: Self::take("task", t, self.task)?,
                agent: Self::take("agent", t, self.agent)?,
            },
            "task_attempted" => Body::TaskAttempted {
                task: Self::take("task", t, self.task)?,
                agent: Self::take("agent", t, self.agent)?,
                result: self.result.ok_or_else(|| missing("result", t))?,
            },
            "task_completed" => Body::TaskCompleted {
                task: Self::take("task", t, self.task)?,
                agent: Self::opt("agent", self.agent)?,
                outcome: Self::opt("outcome", self.outcome)?,
            },
            "task_cancelled" => Body::TaskCancelled {
                task: Self::take("task", t, self.task)?,
                reason: Self::opt("reason", self.reason)?,
            },
            "sale" => {
                let link = match (self.call, self.task) {
                    (Some(c), None) => Some(SaleLink::Call(c)),
                    (None, Some(k)) => Some(SaleLink::Task(k)),
                    (None, None) => None,
                    (Some(_), Some(_)) => {
                        return Err(invalid(
                            "a sale links to either `call` or `task`, not both".into(),
                        ))
                    }
                };
                let kind = match self.kind.as_deref() {
                    None => return Err(missing("kind", t)),
                    Some(k) => sale_kind(k)?,
                };
                Body::Sale {
                    sale: Self::take("sale", t, self.sale)?,
                    agent: Self::take("agent", t, self.agent)?,
                    link,
                    kind,
                    product: Self::opt("product", self.product)?,
                    quantity: quantity(self.quantity.unwrap_or(1.0))?,
                    unit_price: money(
                        "unit_price",
                        self.unit_price.ok_or_else(|| missing("unit_price", t))?,
                    )?,
                    previous_value: money("previous_value", self.previous_value.unwrap_or(0.0))?,
                    currency: Self::opt("currency", self.currency)?,
                }
            }
            "sale_cancelled" => Body::SaleCancelled {
                sale: Self::take("sale", t, self.sale)?,
                reason: Self::opt("reason", self.reason)?,
            },
            "qa_scored" => {
                let contact = contact_ref(self.call, self.task, self.sale, true, t)?;
                let score = self.score.ok_or_else(|| missing("score", t))?;
                if !(0.0..=100.0).contains(&score) {
                    return Err(invalid(format!("`score` must be in [0, 100], got {score}")));
                }
                let items = self.items.unwrap_or_default();
                if items.len() > MAX_QA_ITEMS {
                    return Err(invalid(format!(
                        "`items` has {} entries, more than {MAX_QA_ITEMS}",
                        items.len()
                    )));
                }
                let mut checked = Vec::with_capacity(items.len());
                for (i, it) in items.into_iter().enumerate() {
                    check_text("items[].name", &it.name)?;
                    if !(it.max.is_finite() && it.max > 0.0 && it.max <= 1000.0) {
                        return Err(invalid(format!(
                            "`items[{i}].max` must be in (0, 1000], got {}",
                            it.max
                        )));
                    }
                    if !(0.0..=it.max).contains(&it.score) {
                        return Err(invalid(format!(
                            "`items[{i}].score` must be in [0, max = {}], got {}",
                            it.max, it.score
                        )));
                    }
                    checked.push((
                        it.name,
                        QaItemScore {
                            score: it.score,
                            max: it.max,
                        },
                    ));
                }
                Body::QaScored {
                    contact,
                    agent: Self::take("agent", t, self.agent)?,
                    evaluator: Self::take("evaluator", t, self.evaluator)?,
                    form: Self::take("form", t, self.form)?,
                    score,
                    items: checked,
                }
            }
            "contact_tagged" => {
                let contact = contact_ref(self.call, self.task, self.sale, false, t)?;
                let raw = self.tags.ok_or_else(|| missing("tags", t))?;
                if raw.is_empty() || raw.len() > Tag::ALL.len() {
                    return Err(invalid(format!(
                        "`tags` must name 1 to {} tags, got {}",
                        Tag::ALL.len(),
                        raw.len()
                    )));
                }
                let mut tags = Vec::with_capacity(raw.len());
                for r in &raw {
                    let tag = Tag::ALL
                        .into_iter()
                        .find(|x| x.as_str() == r.as_str())
                        .ok_or_else(|| {
                            let shown: String = r.chars().take(40).collect();
                            invalid(format!(
                                "tag {shown:?} is not one of buying_signal, offer_made, objection, missed_opportunity"
                            ))
                        })?;
                    if !tags.contains(&tag) {
                        tags.push(tag);
                    }
                }
                Body::ContactTagged {
                    contact,
                    agent: Self::take("agent", t, self.agent)?,
                    tags,
                }
            }
            "heartbeat" => Body::Heartbeat,
            other => {
                let shown: String = other.chars().take(40).collect();
                return Err(Rejection::new(
                    Reason::UnknownType,
                    format!("unknown event type {shown:?}"),
                ));
            }
        };
        Ok(Event {
            id: Text::from(id.as_ref()),
            ts,
            site,
            body,
        })
    }
}

/// A deadline, within [`MAX_DUE_SPAN_MS`] of the event's own time.
fn parse_due(raw: &str, ts: &DateTime<FixedOffset>) -> Result<DateTime<FixedOffset>, Rejection> {
    let due = parse_time("due", raw)?;
    let span = due.timestamp_millis().saturating_sub(ts.timestamp_millis());
    if span.abs() > MAX_DUE_SPAN_MS {
        return Err(implausible("due", raw, "is more than 400 days from `ts`"));
    }
    Ok(due)
}

fn set_contact(w: &mut Wire<'_>, c: &ContactRef) {
    match c {
        ContactRef::Call(x) => w.call = Some(x.clone()),
        ContactRef::Task(x) => w.task = Some(x.clone()),
        ContactRef::Sale(x) => w.sale = Some(x.clone()),
    }
}

/// The one contact an event names: `call`, `task` or (for QA) `sale`.
fn contact_ref(
    call: Option<Text>,
    task: Option<Text>,
    sale: Option<Text>,
    sale_ok: bool,
    ty: &str,
) -> Result<ContactRef, Rejection> {
    let which = if sale_ok {
        "`call`, `task` or `sale`"
    } else {
        "`call` or `task`"
    };
    let sale = if sale_ok {
        sale
    } else if sale.is_some() {
        return Err(invalid(format!(
            "{ty} names its contact by {which}, not `sale`"
        )));
    } else {
        None
    };
    let r = match (call, task, sale) {
        (Some(c), None, None) => {
            check_text("call", &c)?;
            ContactRef::Call(c)
        }
        (None, Some(k), None) => {
            check_text("task", &k)?;
            ContactRef::Task(k)
        }
        (None, None, Some(s)) => {
            check_text("sale", &s)?;
            ContactRef::Sale(s)
        }
        (None, None, None) => return Err(missing(which, ty)),
        _ => {
            return Err(invalid(format!(
                "{ty} names one contact: {which}, not several"
            )))
        }
    };
    Ok(r)
}

fn sale_kind(k: &str) -> Result<SaleKind, Rejection> {
    SaleKind::ALL
        .into_iter()
        .find(|s| s.as_str() == k)
        .ok_or_else(|| {
            invalid(format!(
                "sale `kind` {k:?} is not one of new, upsell, cross_sell, upgrade, downgrade, renewal"
            ))
        })
}

/// Turns serde's error into a rejection with a stable reason.
fn json_error(e: serde_json::Error) -> Rejection {
    use serde_json::error::Category;
    let reason = match e.classify() {
        Category::Data => Reason::InvalidField,
        Category::Syntax | Category::Eof | Category::Io => Reason::MalformedJson,
    };
    Rejection::new(reason, e.to_string())
}

/// Decodes one JSON object (one NDJSON line, or one array element).
pub fn decode(bytes: &[u8]) -> Result<Event, Rejection> {
    let wire: Wire<'_> = serde_json::from_slice(bytes).map_err(json_error)?;
    wire.into_event()
}

/// Decodes like [`decode`], then refuses a field the event's type does
/// not take (`ingest.strict`; the table is [`crate::schema`]). Only the
/// keys are read a second time, borrowed: no allocation for a valid event.
pub fn decode_strict(bytes: &[u8]) -> Result<Event, Rejection> {
    let ev = decode(bytes)?;
    let ty = ev.body.type_name();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde::de::DeserializeSeed::deserialize(UnknownKey(ty), &mut de) {
        Ok(None) => Ok(ev),
        Ok(Some(key)) => Err(Rejection::new(
            Reason::UnknownField,
            format!("`{key}` is not a field of {ty} (ingest.strict refuses unknown fields)"),
        )),
        Err(e) => Err(json_error(e)),
    }
}

/// Finds the first key of a JSON object that events of type `.0` do not
/// take.
struct UnknownKey(&'static str);

impl<'de> serde::de::DeserializeSeed<'de> for UnknownKey {
    type Value = Option<String>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for UnknownKey {
    type Value = Option<String>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut unknown = None;
        // `Some(None)`: a known key; read through `visit_str`, so a key
        // is never copied unless it is the one refused.
        while let Some(key) = map.next_key_seed(Key(self.0))? {
            map.next_value::<serde::de::IgnoredAny>()?;
            if unknown.is_none() {
                unknown = key;
            }
        }
        Ok(unknown)
    }
}

/// One key: `None` when type `.0` takes it, else the key.
struct Key(&'static str);

impl<'de> serde::de::DeserializeSeed<'de> for Key {
    type Value = Option<String>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Key {
    type Value = Option<String>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok((!crate::schema::takes(self.0, v)).then(|| v.to_owned()))
    }
}

/// Splits a POST body that is a JSON array into its elements without
/// decoding them, so one bad element does not cost the others.
pub fn split_array(bytes: &[u8]) -> Result<Vec<&serde_json::value::RawValue>, Rejection> {
    serde_json::from_slice(bytes).map_err(|e| {
        Rejection::new(
            Reason::MalformedJson,
            format!("body is not a JSON array of events: {e}"),
        )
    })
}

/// Encodes an event as one canonical JSON object (no trailing newline).
pub fn encode(ev: &Event) -> String {
    let mut buf = Vec::with_capacity(192);
    encode_into(&mut buf, ev);
    // serde_json writes UTF-8 only.
    String::from_utf8(buf).unwrap_or_default()
}

/// Appends the canonical JSON of `ev` to `buf`.
pub fn encode_into(buf: &mut Vec<u8>, ev: &Event) {
    let mut w = Wire {
        id: Some(Cow::Borrowed(&ev.id)),
        ts: Some(Cow::Owned(
            ev.ts.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        )),
        ty: Some(Cow::Borrowed(ev.body.type_name())),
        site: ev.site.clone(),
        ..Wire::default()
    };
    match &ev.body {
        Body::AgentLogin {
            agent,
            name,
            team,
            queues,
        } => {
            w.agent = Some(agent.clone());
            w.name = name.clone();
            w.team = team.clone();
            if !queues.is_empty() {
                w.queues = Some(queues.clone());
            }
        }
        Body::AgentState {
            agent,
            state,
            reason,
        } => {
            w.agent = Some(agent.clone());
            w.state = Some(*state);
            w.reason = reason.clone();
        }
        Body::AgentLogout { agent, queues } => {
            w.agent = Some(agent.clone());
            if !queues.is_empty() {
                w.queues = Some(queues.clone());
            }
        }
        Body::CallOffered {
            call,
            queue,
            direction,
            customer,
        } => {
            w.call = Some(call.clone());
            w.queue = Some(queue.clone());
            if *direction == Direction::Outbound {
                w.direction = Some(*direction);
            }
            w.customer = customer.clone();
        }
        Body::CallAnswered {
            call,
            agent,
            wait_ms,
        } => {
            w.call = Some(call.clone());
            w.agent = Some(agent.clone());
            w.wait_s = wait_ms.map(|v| v as f64 / 1000.0);
        }
        Body::CallMissed {
            call,
            agent,
            ring_ms,
        } => {
            w.call = Some(call.clone());
            w.agent = Some(agent.clone());
            w.ring_s = ring_ms.map(|v| v as f64 / 1000.0);
        }
        Body::CallHold { call } | Body::CallResume { call } | Body::CallAbandoned { call } => {
            w.call = Some(call.clone())
        }
        Body::CallExited { call, reason } => {
            w.call = Some(call.clone());
            w.reason = Some(Text::from(reason.as_str()));
        }
        Body::CallRefused {
            queue,
            reason,
            call,
            customer,
        } => {
            w.queue = Some(queue.clone());
            w.reason = Some(Text::from(reason.as_str()));
            w.call = call.clone();
            w.customer = customer.clone();
        }
        Body::CallTransferred { call, to } => {
            w.call = Some(call.clone());
            match to {
                TransferTarget::Agent(a) => w.to_agent = Some(a.clone()),
                TransferTarget::Queue(q) => w.to_queue = Some(q.clone()),
            }
        }
        Body::CallEnded {
            call,
            talk_ms,
            hold_ms,
        } => {
            w.call = Some(call.clone());
            w.talk_s = talk_ms.map(|v| v as f64 / 1000.0);
            w.hold_s = hold_ms.map(|v| v as f64 / 1000.0);
        }
        Body::WrapEnded { call, outcome } => {
            w.call = Some(call.clone());
            w.outcome = outcome.clone();
        }
        Body::TaskCreated {
            task,
            kind,
            queue,
            customer,
            due,
            priority,
        } => {
            w.task = Some(task.clone());
            w.kind = Some(kind.clone());
            w.queue = queue.clone();
            w.customer = customer.clone();
            w.due = due.map(|d| Cow::Owned(d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)));
            w.priority = *priority;
        }
        Body::TaskAssigned { task, agent } => {
            w.task = Some(task.clone());
            w.agent = Some(agent.clone());
        }
        Body::TaskAttempted {
            task,
            agent,
            result,
        } => {
            w.task = Some(task.clone());
            w.agent = Some(agent.clone());
            w.result = Some(*result);
        }
        Body::TaskCompleted {
            task,
            agent,
            outcome,
        } => {
            w.task = Some(task.clone());
            w.agent = agent.clone();
            w.outcome = outcome.clone();
        }
        Body::TaskCancelled { task, reason } => {
            w.task = Some(task.clone());
            w.reason = reason.clone();
        }
        Body::Sale {
            sale,
            agent,
            link,
            kind,
            product,
            quantity,
            unit_price,
            previous_value,
            currency,
        } => {
            w.sale = Some(sale.clone());
            w.agent = Some(agent.clone());
            match link {
                Some(SaleLink::Call(c)) => w.call = Some(c.clone()),
                Some(SaleLink::Task(t)) => w.task = Some(t.clone()),
                None => {}
            }
            w.kind = Some(Text::from(kind.as_str()));
            w.product = product.clone();
            if *quantity != Quantity::ONE {
                w.quantity = Some(quantity.as_f64());
            }
            w.unit_price = Some(unit_price.units());
            if *previous_value != Money::ZERO {
                w.previous_value = Some(previous_value.units());
            }
            w.currency = currency.clone();
        }
        Body::SaleCancelled { sale, reason } => {
            w.sale = Some(sale.clone());
            w.reason = reason.clone();
        }
        Body::QaScored {
            contact,
            agent,
            evaluator,
            form,
            score,
            items,
        } => {
            set_contact(&mut w, contact);
            w.agent = Some(agent.clone());
            w.evaluator = Some(evaluator.clone());
            w.form = Some(form.clone());
            w.score = Some(*score);
            if !items.is_empty() {
                w.items = Some(
                    items
                        .iter()
                        .map(|(name, i)| WireItem {
                            name: name.clone(),
                            score: i.score,
                            max: i.max,
                        })
                        .collect(),
                );
            }
        }
        Body::ContactTagged {
            contact,
            agent,
            tags,
        } => {
            set_contact(&mut w, contact);
            w.agent = Some(agent.clone());
            w.tags = Some(tags.iter().map(|t| Text::from(t.as_str())).collect());
        }
        Body::Heartbeat => {}
    }
    // A Wire of strings and finite numbers always serialises.
    // Writing to a Vec cannot fail, and every field serialises.
    let _ = serde_json::to_writer(buf, &w);
}

/// The names of every field the wire record reads, as serde's derive
/// lists them (a deserializer that only asks `Wire` for its field list),
/// so tests can hold the schema table to the decoder.
#[cfg(test)]
pub(crate) fn wire_fields() -> &'static [&'static str] {
    struct Names(Option<&'static [&'static str]>);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("field names taken")
        }
    }
    impl std::error::Error for Stop {}
    impl serde::de::Error for Stop {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Stop
        }
    }
    impl<'de> serde::Deserializer<'de> for &mut Names {
        type Error = Stop;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = Some(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut names = Names(None);
    let _ = Wire::deserialize(&mut names);
    names.0.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(line: &str) -> Reason {
        match decode(line.as_bytes()) {
            Ok(ev) => panic!("expected a rejection, decoded {ev:?}"),
            Err(r) => r.reason,
        }
    }

    #[test]
    fn strict_decoding_refuses_only_fields_the_type_does_not_take() {
        let ok = br#"{"id":"1","ts":"2026-03-02T08:00:00Z","type":"call_offered","call":"c","queue":"q","\u0063ustomer":"K","site":"hq"}"#;
        let strict = decode_strict(ok).expect("an escaped known key is known");
        assert_eq!(Ok(strict), decode(ok));
        // `queue` is a field, but not of call_answered.
        let other = br#"{"id":"1","ts":"2026-03-02T08:00:00Z","type":"call_answered","call":"c","agent":"a","queue":"q"}"#;
        assert!(decode(other).is_ok());
        let err = decode_strict(other).expect_err("queue is not taken");
        assert_eq!(err.reason, Reason::UnknownField);
        assert!(
            err.message
                .starts_with("`queue` is not a field of call_answered"),
            "{err}"
        );
        // The decoder's own refusal comes first.
        let both =
            br#"{"id":"1","ts":"2026-03-02T08:00:00Z","type":"call_answered","call":"c","x":1}"#;
        assert_eq!(
            decode_strict(both).map_err(|e| e.reason),
            Err(Reason::MissingField)
        );
    }

    #[test]
    fn decodes_and_reencodes_every_shape() {
        let lines = [
            r#"{"id":"1","ts":"2026-03-02T08:00:00+01:00","type":"agent_login","agent":"a1","name":"Anna","team":"t1","queues":["orders"]}"#,
            r#"{"id":"2","ts":"2026-03-02T08:00:00+01:00","type":"call_transferred","call":"c1","to_queue":"service"}"#,
            r#"{"id":"3","ts":"2026-03-02T08:00:00+01:00","type":"sale","sale":"s1","agent":"a1","call":"c1","kind":"upgrade","quantity":2,"unit_price":10.5,"previous_value":5}"#,
            r#"{"id":"4","ts":"2026-03-02T08:00:00+01:00","type":"task_created","task":"k1","kind":"callback","due":"2026-03-02T10:00:00+01:00"}"#,
        ];
        for line in lines {
            let ev = decode(line.as_bytes()).expect("valid");
            let again = decode(encode(&ev).as_bytes()).expect("re-decodes");
            assert_eq!(ev, again);
        }
    }

    #[test]
    fn each_bad_input_has_its_reason() {
        assert_eq!(reason("{not json"), Reason::MalformedJson);
        assert_eq!(
            reason(r#"{"id":"1","ts":"2026-03-02T08:00:00Z","type":"fax_received"}"#),
            Reason::UnknownType
        );
        assert_eq!(
            reason(r#"{"id":"1","ts":"2026-03-02T08:00:00Z","type":"call_answered","call":"c"}"#),
            Reason::MissingField
        );
        assert_eq!(
            reason(r#"{"id":"1","ts":"2026-03-02T08:00:00Z","type":"call_hold","call":5}"#),
            Reason::InvalidField
        );
        assert_eq!(
            reason(r#"{"id":"1","ts":"yesterday","type":"call_hold","call":"c"}"#),
            Reason::BadTimestamp
        );
        assert_eq!(
            reason(r#"{"id":"1","ts":"2026-03-02T08:00:00","type":"call_hold","call":"c"}"#),
            Reason::BadTimestamp
        );
        assert_eq!(
            reason(
                r#"{"id":"1","ts":"2026-03-02T08:00:00Z","type":"sale","sale":"s","agent":"a","kind":"new","quantity":-1,"unit_price":3}"#
            ),
            Reason::InvalidValue
        );
        assert_eq!(
            reason(
                r#"{"id":"1","ts":"2026-03-02T08:00:00Z","type":"task_created","task":"t","kind":"Call Back"}"#
            ),
            Reason::InvalidValue
        );
    }

    #[test]
    fn missing_field_names_the_field() {
        let err =
            decode(br#"{"id":"1","ts":"2026-03-02T08:00:00Z","type":"call_answered","call":"c"}"#)
                .expect_err("agent missing");
        assert_eq!(
            err.message,
            "missing field `agent` (required for call_answered)"
        );
    }
}
