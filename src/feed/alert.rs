//! Alerts: what needs attention now, sent to feed clients at once.

use serde::Serialize;

use super::board::{Board, Scope};

/// Something that needs attention now.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Alert {
    /// A task passed its deadline.
    TaskOverdue {
        task: String,
        task_kind: String,
        queue: String,
        due: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        customer: Option<String>,
    },
    /// A queue's oldest wait crossed its warn or critical threshold.
    OldestWait {
        queue: String,
        level: &'static str,
        since: i64,
        threshold_s: f64,
    },
    /// An agent has been paused longer than allowed for the reason.
    PauseTooLong {
        agent: String,
        team: String,
        site: String,
        reason: Option<String>,
        since: i64,
        limit_s: f64,
    },
}

impl Alert {
    /// Whether the alert concerns what `scope` shows of `board`; for an
    /// agent's alert also the agent's configured name (for the policy's
    /// labelling). What the viewer's role may see of it is
    /// `privacy::Policy::alert`'s to decide.
    pub fn in_scope<'a>(&self, board: &'a Board, scope: &Scope) -> Option<Option<&'a str>> {
        match self {
            Alert::TaskOverdue {
                queue, task_kind, ..
            } => {
                let in_scope = board
                    .queues
                    .get(queue)
                    .is_some_and(|q| scope.queue(queue, q))
                    || (queue == crate::config::NO_QUEUE
                        && scope.queues.is_empty()
                        && scope.teams.is_empty());
                let kinds_ok = scope.kinds.is_empty() || scope.kinds.iter().any(|k| k == task_kind);
                (in_scope && kinds_ok).then_some(None)
            }
            Alert::OldestWait { queue, .. } => board
                .queues
                .get(queue)
                .is_some_and(|q| scope.queue(queue, q))
                .then_some(None),
            Alert::PauseTooLong { agent, .. } => {
                let tile = board.agents.get(agent)?;
                scope.agent(tile).then_some(tile.name.as_deref())
            }
        }
    }
}
