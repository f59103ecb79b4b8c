//! Why an event was refused.
//!
//! Every refusal carries one `Reason` (a bounded label for
//! `callwatch_events_rejected_total{reason}`) and a human sentence for the
//! sender. Keeping both in one type means a new failure mode cannot be added
//! without choosing its label.

use std::fmt;

/// The bounded set of rejection reasons; each is a metric label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Not JSON at all, or truncated JSON.
    MalformedJson,
    /// `type` names no known event.
    UnknownType,
    /// A required field is absent.
    MissingField,
    /// A field has the wrong JSON type.
    InvalidField,
    /// `ts` or `due` is not RFC 3339 with an offset.
    BadTimestamp,
    /// A field is well-typed but out of range (negative quantity, bad kind...).
    InvalidValue,
    /// A line or body over the configured size limit.
    TooLarge,
    /// The event names a call that is not live.
    UnknownCall,
    /// The event names a task that is not open.
    UnknownTask,
    /// The event names a sale that is not known.
    UnknownSale,
    /// The event is not allowed in the entity's current state (ended twice...).
    InvalidTransition,
    /// A configured bound (queues, agents, task kinds, open tasks) is reached.
    LimitExceeded,
    /// A sale in another currency than the configured one.
    CurrencyMismatch,
    /// `ts` (or `due`) is outside the plausible window: before 2000, after
    /// 2100, or too far from the daemon's clock (`limits.event_max_age`,
    /// `limits.event_max_lead`).
    ImplausibleTimestamp,
    /// A field the event's type does not take, refused under
    /// `ingest.strict` (ignored otherwise).
    UnknownField,
    /// A webhook request without a valid signature (Twilio's
    /// `X-Twilio-Signature`) or key (Amazon Connect): answered 403.
    BadSignature,
}

impl Reason {
    /// Every reason, for documentation and for pre-registering series.
    pub const ALL: [Reason; 16] = [
        Reason::MalformedJson,
        Reason::UnknownType,
        Reason::MissingField,
        Reason::InvalidField,
        Reason::BadTimestamp,
        Reason::InvalidValue,
        Reason::TooLarge,
        Reason::UnknownCall,
        Reason::UnknownTask,
        Reason::UnknownSale,
        Reason::InvalidTransition,
        Reason::LimitExceeded,
        Reason::CurrencyMismatch,
        Reason::ImplausibleTimestamp,
        Reason::UnknownField,
        Reason::BadSignature,
    ];

    /// The metric label value and the word used in error replies.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MalformedJson => "malformed_json",
            Reason::UnknownType => "unknown_type",
            Reason::MissingField => "missing_field",
            Reason::InvalidField => "invalid_field",
            Reason::BadTimestamp => "bad_timestamp",
            Reason::InvalidValue => "invalid_value",
            Reason::TooLarge => "too_large",
            Reason::UnknownCall => "unknown_call",
            Reason::UnknownTask => "unknown_task",
            Reason::UnknownSale => "unknown_sale",
            Reason::InvalidTransition => "invalid_transition",
            Reason::LimitExceeded => "limit_exceeded",
            Reason::CurrencyMismatch => "currency_mismatch",
            Reason::ImplausibleTimestamp => "implausible_timestamp",
            Reason::UnknownField => "unknown_field",
            Reason::BadSignature => "bad_signature",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused event: the label and the sentence.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct Rejection {
    pub reason: Reason,
    pub message: String,
}

impl Rejection {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Rejection {
            reason,
            message: message.into(),
        }
    }
}
