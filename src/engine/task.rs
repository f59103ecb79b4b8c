//! Tasks: the desk's backlog of callbacks, offers, order confirmations,
//! complaints and credit notes, each with a deadline.
//!
//! A task's deadline is its explicit `due`, else creation time plus the
//! SLA of its kind (and queue), counted in wall time or in the queue's
//! open time (`clock = "business"`). It is overdue when now is past the
//! deadline. A breach is decided on the engine's own clock (the latest
//! event time applied), never by a reader: an open task whose deadline
//! that clock has passed counts as breached, and it stays counted when it
//! closes, even by an event stamped before its deadline. So the breach
//! total is a function of the accepted events, never goes down, and is
//! the same after a restart or on a replica. Overdue (a view) is judged
//! against the reader's "now".
//!
//! Callbacks are obligations (docs/callbacks.md): an abandoned caller can
//! be owed one, a customer owes at most one open callback per site from
//! abandons, and every open callback for a customer closes when that
//! customer is answered or reached.

use super::call::Contact;
use super::histogram::Histogram;
use super::ledger;
use super::room::Room;
use super::Engine;
use crate::buckets;
use crate::config::NO_QUEUE;
use crate::event::{AttemptResult, Text};
use crate::reject::{Reason, Rejection};

pub const CALLBACK: &str = "callback";

/// Why a callback exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CallbackSource {
    Requested,
    Abandoned,
}

impl CallbackSource {
    pub const ALL: [CallbackSource; 2] = [CallbackSource::Requested, CallbackSource::Abandoned];
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackSource::Requested => "requested",
            CallbackSource::Abandoned => "abandoned",
        }
    }
}

/// Why a task left the backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CloseReason {
    /// The customer called in and was answered.
    CustomerCalledBack,
    /// An agent reached the customer (outbound call or attempt).
    ReachedOutbound,
    /// `task_completed`.
    Completed,
    /// The maximum of unsuccessful attempts was reached.
    Unreachable,
    /// `task_cancelled`.
    Cancelled,
}

impl CloseReason {
    pub const ALL: [CloseReason; 5] = [
        CloseReason::CustomerCalledBack,
        CloseReason::ReachedOutbound,
        CloseReason::Completed,
        CloseReason::Unreachable,
        CloseReason::Cancelled,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::CustomerCalledBack => "customer_called_back",
            CloseReason::ReachedOutbound => "reached_outbound",
            CloseReason::Completed => "completed",
            CloseReason::Unreachable => "unreachable",
            CloseReason::Cancelled => "cancelled",
        }
    }
    /// Closed as done (met or missed), as opposed to cancelled or given up.
    fn satisfied(self) -> bool {
        matches!(
            self,
            CloseReason::CustomerCalledBack | CloseReason::ReachedOutbound | CloseReason::Completed
        )
    }
}

/// What only callbacks carry (boxed: most tasks are not callbacks).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Callback {
    pub source: CallbackSource,
    /// The call it was generated from.
    pub call: Option<Text>,
    pub site: Text,
    /// How often the customer asked (abandons merged into this one).
    pub requests: u32,
    /// Attempts that count towards `callback_max_attempts`.
    pub unsuccessful: u32,
    pub last_attempt_ms: Option<i64>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Task {
    pub kind: u8,
    pub queue: Text,
    pub customer: Option<Text>,
    pub created_ms: i64,
    pub due_ms: i64,
    /// From this instant the task is due soon.
    pub soon_ms: i64,
    pub priority: i32,
    pub attempts: u32,
    pub last_result: Option<AttemptResult>,
    pub last_ms: i64,
    pub contact: Contact,
    pub callback: Option<Box<Callback>>,
}

impl Task {
    /// A plain open task of kind 0 in no queue, due at once.
    #[cfg(test)]
    pub(crate) fn for_tests() -> Task {
        Task {
            kind: 0,
            queue: Text::from(NO_QUEUE),
            customer: None,
            created_ms: 0,
            due_ms: 0,
            soon_ms: 0,
            priority: 0,
            attempts: 0,
            last_result: None,
            last_ms: 0,
            contact: Contact::default(),
            callback: None,
        }
    }

    /// Overdue at `now`. Against the engine's clock this is the breach
    /// (state); against a reader's "now" it is the overdue view.
    pub fn overdue(&self, now_ms: i64) -> bool {
        now_ms > self.due_ms
    }

    /// Due soon at `now` (and not overdue).
    pub fn due_soon(&self, now_ms: i64) -> bool {
        now_ms >= self.soon_ms && now_ms <= self.due_ms
    }
}

/// What is remembered of a closed task.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ClosedTask {
    pub queue: Text,
    pub closed_ms: i64,
    pub reason: CloseReason,
    pub contact: Contact,
}

/// Counters per task kind and queue.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TaskStats {
    pub created: u64,
    pub completed_met: u64,
    pub completed_missed: u64,
    pub cancelled: u64,
    pub unreachable: u64,
    /// Breaches of closed tasks; open tasks past their deadline on the
    /// engine's clock are added when read (see module doc).
    pub breaches: u64,
    pub attempts: [u64; 5],
    pub completion: Histogram,
}

impl Default for TaskStats {
    fn default() -> Self {
        TaskStats {
            created: 0,
            completed_met: 0,
            completed_missed: 0,
            cancelled: 0,
            unreachable: 0,
            breaches: 0,
            attempts: [0; 5],
            completion: Histogram::new(&buckets::COMPLETION),
        }
    }
}

fn unknown_task(engine: &Engine, task: &str) -> Rejection {
    if engine.closed_tasks.contains_key(task) {
        Rejection::new(
            Reason::InvalidTransition,
            format!("task {task:?} is already closed"),
        )
    } else {
        Rejection::new(
            Reason::UnknownTask,
            format!("task {task:?} is not open (no task_created seen)"),
        )
    }
}

/// What an abandon owes, decided before anything changes.
pub(super) enum CallbackPlan {
    /// Merge into the customer's open callback with this id.
    Merge(Text),
    /// Open a new callback with this id.
    Open(Text),
}

impl Engine {
    /// The open task, or why it cannot take events.
    fn open_task_ref(&self, task: &Text) -> Result<&Task, Rejection> {
        self.tasks.get(task).ok_or_else(|| unknown_task(self, task))
    }

    /// The task's time for an event at `t` (never before its last), and
    /// moves the task's clock there.
    fn touch_task(&mut self, task: &Text, t: i64) -> i64 {
        let last = self.tasks.get(task).map_or(t, |k| k.last_ms);
        let t = self.at_least(t, last);
        if let Some(k) = self.tasks.get_mut(task) {
            k.last_ms = t;
        }
        t
    }

    fn task_room_left(&self) -> Result<(), Rejection> {
        if self.tasks.len() >= self.settings.limits.max_open_tasks {
            return Err(Rejection::new(
                Reason::LimitExceeded,
                "too many open tasks: limits.max_open_tasks",
            ));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn task_created(
        &mut self,
        t: i64,
        site: Option<&Text>,
        task: &Text,
        kind: &Text,
        queue: Option<&Text>,
        customer: &Option<Text>,
        due: Option<i64>,
        priority: Option<i32>,
    ) -> Result<(), Rejection> {
        if self.tasks.contains_key(task) || self.closed_tasks.contains_key(task) {
            return Err(Rejection::new(
                Reason::InvalidTransition,
                format!("task {task:?} already exists"),
            ));
        }
        self.task_room_left()?;
        let queue = queue.cloned().unwrap_or_else(|| Text::from(NO_QUEUE));
        let mut room = Room::default();
        self.kind_room(&mut room, kind);
        self.queue_room(&mut room, &queue, site);
        self.make(room, t)?;
        self.open_task(t, task, kind, queue, customer.clone(), due, priority, None);
        Ok(())
    }

    /// Opens a task (from an event, or a callback owed after an abandon)
    /// whose kind and queue exist and for which there is room.
    #[allow(clippy::too_many_arguments)]
    fn open_task(
        &mut self,
        t: i64,
        task: &Text,
        kind: &Text,
        queue: Text,
        customer: Option<Text>,
        due: Option<i64>,
        priority: Option<i32>,
        from_call: Option<&Text>,
    ) {
        let (Some(k), Some(q)) = (self.kind_of(kind), self.queues.get_mut(&queue)) else {
            return;
        };
        q.last_activity_ms = q.last_activity_ms.max(t);
        let cal = q.params.calendar.clone();
        let queue_site = Text::from(q.params.site.as_str());
        let sla = self.settings.sla(kind, &queue);
        let due_ms = due.unwrap_or_else(|| sla.due(t, &cal));
        let callback = (kind.as_str() == CALLBACK).then(|| {
            let source = if from_call.is_some() {
                CallbackSource::Abandoned
            } else {
                CallbackSource::Requested
            };
            Box::new(Callback {
                source,
                call: from_call.cloned(),
                site: queue_site.clone(),
                requests: 1,
                unsuccessful: 0,
                last_attempt_ms: None,
            })
        });
        if let Some(cb) = &callback {
            if let Some(q) = self.queues.get_mut(&queue) {
                q.callbacks_created[cb.source as usize] += 1;
            }
        }
        self.task_stats
            .entry((k, queue.clone()))
            .or_default()
            .created += 1;
        self.tasks.insert(
            task.clone(),
            Task {
                kind: k,
                queue,
                customer,
                created_ms: t,
                due_ms,
                soon_ms: sla.soon(due_ms, &cal),
                priority: priority.unwrap_or(0),
                attempts: 0,
                last_result: None,
                last_ms: t,
                contact: Contact::default(),
                callback,
            },
        );
    }

    /// The open callbacks owed to `customer` at `site`, earliest created
    /// first (so which one an abandon merges into does not depend on the
    /// order of the index).
    pub(super) fn owed_to(&self, site: &str, customer: &str) -> Vec<Text> {
        let mut mine: Vec<(i64, &Text)> = self
            .tasks
            .owed_to(site, customer)
            .map(|(id, t)| (t.created_ms, id))
            .collect();
        mine.sort();
        mine.into_iter().map(|(_, id)| id.clone()).collect()
    }

    /// What an abandoned call with a customer, in a queue that owes
    /// callbacks, would do to the backlog; admits the callback kind. A
    /// full backlog refuses the abandon (nothing changes).
    pub(super) fn plan_callback(
        &self,
        call: &Text,
        queue: &Text,
        customer: &Text,
    ) -> Result<Option<CallbackPlan>, Rejection> {
        let Some(q) = self.queues.get(queue) else {
            return Ok(None);
        };
        let site = Text::from(q.params.site.as_str());
        if let Some(id) = self.owed_to(&site, customer).first() {
            return Ok(Some(CallbackPlan::Merge(id.clone())));
        }
        let id = Text::from(format!("cb-{call}"));
        if self.tasks.contains_key(&id) || self.closed_tasks.contains_key(&id) {
            return Ok(None);
        }
        self.task_room_left()?;
        let mut room = Room::default();
        self.kind_room(&mut room, &Text::from(CALLBACK));
        self.check_room(&room)?;
        Ok(Some(CallbackPlan::Open(id)))
    }

    /// Carries out a `plan_callback` (earliest deadline kept on a merge,
    /// the request counted).
    pub(super) fn owe_callback(
        &mut self,
        t: i64,
        call: &Text,
        queue: &Text,
        customer: &Text,
        plan: CallbackPlan,
    ) {
        let Some(cal) = self.queues.get(queue).map(|q| q.params.calendar.clone()) else {
            return;
        };
        match plan {
            CallbackPlan::Merge(id) => {
                let sla = self.settings.sla(CALLBACK, queue);
                let due = sla.due(t, &cal);
                if let Some(task) = self.tasks.get_mut(&id) {
                    if due < task.due_ms {
                        task.due_ms = due;
                        task.soon_ms = sla.soon(due, &cal);
                    }
                    if let Some(cb) = task.callback.as_mut() {
                        cb.requests = cb.requests.saturating_add(1);
                    }
                }
            }
            CallbackPlan::Open(id) => {
                let kind = Text::from(CALLBACK);
                if self.kind_of(&kind).is_none() {
                    self.kinds.push(kind.clone());
                }
                self.open_task(
                    t,
                    &id,
                    &kind,
                    queue.clone(),
                    Some(customer.clone()),
                    None,
                    None,
                    Some(call),
                );
            }
        }
    }

    /// Closes every open callback owed to `customer` at `site`.
    pub(super) fn close_callbacks_for(
        &mut self,
        t: i64,
        site: &str,
        customer: &Text,
        reason: CloseReason,
    ) {
        for id in self.owed_to(site, customer) {
            self.close_task(t, &id, None, reason, false);
        }
    }

    /// The room a task event's agent needs (a new agent belongs to the
    /// task's queue's site unless the event or their team says).
    fn task_agent_room(&self, task: &Task, agent: &Text, site: Option<&Text>) -> Room {
        let fallback = self.queues.get(&task.queue).map(|q| q.params.site.clone());
        let mut room = Room::default();
        self.agent_room(&mut room, agent, site, None, fallback.as_deref());
        room
    }

    pub(super) fn task_assigned(
        &mut self,
        t: i64,
        site: Option<&Text>,
        task: &Text,
        agent: &Text,
    ) -> Result<(), Rejection> {
        let room = self.task_agent_room(self.open_task_ref(task)?, agent, site);
        self.make(room, t)?;
        self.touch_task(task, t);
        if let Some(k) = self.tasks.get_mut(task) {
            k.contact.agent = Some(agent.clone());
        }
        Ok(())
    }

    pub(super) fn task_attempted(
        &mut self,
        t: i64,
        site: Option<&Text>,
        task: &Text,
        agent: &Text,
        result: AttemptResult,
    ) -> Result<(), Rejection> {
        let k = self.open_task_ref(task)?;
        let max = self
            .queues
            .get(&k.queue)
            .map(|q| (q.params.callback_max_attempts, q.params.callback_min_gap_ms));
        let room = self.task_agent_room(k, agent, site);
        self.make(room, t)?;
        let t = self.touch_task(task, t);
        let Some(k) = self.tasks.get_mut(task) else {
            return Ok(());
        };
        k.attempts = k.attempts.saturating_add(1);
        k.last_result = Some(result);
        k.contact.agent = Some(agent.clone());
        let key = (k.kind, k.queue.clone());
        let customer = k.customer.clone();
        let mut give_up = false;
        let mut site_of = None;
        if let (Some(cb), Some((max, gap))) = (k.callback.as_mut(), max) {
            site_of = Some(cb.site.clone());
            if result != AttemptResult::Reached {
                // Attempts closer together than the minimum gap count once.
                if cb
                    .last_attempt_ms
                    .is_none_or(|last| t.saturating_sub(last) >= gap)
                {
                    cb.unsuccessful = cb.unsuccessful.saturating_add(1);
                }
                give_up = cb.unsuccessful >= max;
            }
            cb.last_attempt_ms = Some(t);
        }
        self.task_stats.entry(key).or_default().attempts[result as usize] += 1;
        match (result, site_of) {
            (AttemptResult::Reached, Some(site)) => {
                // Reaching the customer settles this callback (a contact
                // handled by the agent) and any other owed to them.
                self.close_task(t, task, Some(agent), CloseReason::ReachedOutbound, true);
                if let Some(c) = customer {
                    self.close_callbacks_for(t, &site, &c, CloseReason::ReachedOutbound);
                }
            }
            _ if give_up => {
                self.close_task(t, task, None, CloseReason::Unreachable, false);
            }
            _ => {}
        }
        Ok(())
    }

    /// Completes or cancels a task by event.
    pub(super) fn task_done(
        &mut self,
        t: i64,
        site: Option<&Text>,
        task: &Text,
        agent: Option<&Text>,
        reason: CloseReason,
    ) -> Result<(), Rejection> {
        let k = self.open_task_ref(task)?;
        if let Some(a) = agent {
            let room = self.task_agent_room(k, a, site);
            self.make(room, t)?;
        }
        let t = self.touch_task(task, t);
        self.close_task(t, task, agent, reason, reason == CloseReason::Completed);
        Ok(())
    }

    /// Takes a task out of the backlog. `handled` books it as a contact of
    /// its agent (completion by event, or reaching the customer).
    ///
    /// Breach: a task breached its deadline if it closed after it, or if
    /// the engine's clock had already passed it (it was counted as an
    /// open breach then, so it stays counted: the total never goes down).
    fn close_task(
        &mut self,
        t: i64,
        task: &Text,
        agent: Option<&Text>,
        reason: CloseReason,
        handled: bool,
    ) {
        let Some(mut k) = self.tasks.remove(task) else {
            return;
        };
        if k.callback.is_some() {
            if let Some(q) = self.queues.get_mut(&k.queue) {
                q.callbacks_closed[reason as usize] += 1;
            }
        }
        let t = t.max(k.last_ms);
        let late = t > k.due_ms;
        let breached = k.overdue(self.clock_ms.max(t));
        let stats = self
            .task_stats
            .entry((k.kind, k.queue.clone()))
            .or_default();
        if breached {
            stats.breaches += 1;
        }
        match reason {
            CloseReason::Cancelled => stats.cancelled += 1,
            CloseReason::Unreachable => stats.unreachable += 1,
            r if r.satisfied() => {
                if late {
                    stats.completed_missed += 1;
                } else {
                    stats.completed_met += 1;
                }
                let took = t.saturating_sub(k.created_ms).max(0);
                stats.completion.observe(took as f64 / 1000.0);
                if let Some(q) = self.queues.get_mut(&k.queue) {
                    let slot = q.slot(t).task(k.kind);
                    if late {
                        slot.missed += 1;
                    } else {
                        slot.met += 1;
                    }
                    slot.durations[ledger::duration_bucket(took)] += 1;
                }
            }
            _ => {}
        }
        if let Some(a) = agent {
            k.contact.agent = Some(a.clone());
        }
        if handled {
            if let Some(a) = k.contact.agent.clone() {
                k.contact.handled_ms = Some(t);
                self.contact_handled(&a, &k.queue, t, k.contact.live_sales > 0);
                let kind = Text::from(self.kind_name(k.kind));
                self.register_contact(
                    crate::event::ContactRef::Task(task.clone()),
                    kind,
                    &a,
                    &k.queue,
                    t,
                    None,
                    k.customer.clone(),
                    k.contact.live_sales,
                );
            }
        }
        self.closed_tasks.insert(
            task.clone(),
            ClosedTask {
                queue: k.queue,
                closed_ms: t,
                reason,
                contact: k.contact,
            },
        );
    }
}
