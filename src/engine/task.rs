//! Tasks: the desk's backlog of callbacks, offers, order confirmations,
//! complaints and credit notes, each with a deadline.
//!
//! A task's deadline is its explicit `due`, else creation time plus the
//! SLA of its kind (and queue), counted in wall time or in the queue's
//! open time (`clock = "business"`). It is overdue when now is past the
//! deadline. The moment it becomes overdue is a breach, counted once: an
//! open overdue task counts when read, and when it closes the breach moves
//! into the stored counter. The `breached` flag makes that sticky even if
//! the closing event carries an earlier time than a read that saw the task
//! overdue, so the exported counter never goes down.
//!
//! Callbacks are obligations (docs/callbacks.md): an abandoned caller can
//! be owed one, a customer owes at most one open callback per site from
//! abandons, and every open callback for a customer closes when that
//! customer is answered or reached.

use std::sync::atomic::{AtomicBool, Ordering};

use super::call::Contact;
use super::histogram::Histogram;
use super::Engine;
use crate::config::NO_QUEUE;
use crate::event::{AttemptResult, Text};
use crate::metric::buckets;
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
    breached: AtomicBool,
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
            breached: AtomicBool::new(false),
        }
    }

    /// Overdue at `now`; marks the breach so it stays counted.
    pub fn overdue(&self, now_ms: i64) -> bool {
        let over = now_ms > self.due_ms;
        if over && !self.breached.load(Ordering::Relaxed) {
            self.breached.store(true, Ordering::Relaxed);
        }
        over
    }

    /// Due soon at `now` (and not overdue).
    pub fn due_soon(&self, now_ms: i64) -> bool {
        now_ms >= self.soon_ms && now_ms <= self.due_ms
    }

    /// Whether a breach has been counted for this open task.
    pub fn breached(&self) -> bool {
        self.breached.load(Ordering::Relaxed)
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
    /// Breaches of closed tasks; open overdue tasks are added when read.
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

impl Engine {
    fn task_time(&mut self, task: &Text, t: i64) -> Result<i64, Rejection> {
        let Some(k) = self.tasks.get(task) else {
            return Err(unknown_task(self, task));
        };
        let mut last = k.last_ms;
        let t = self.clamp(t, &mut last);
        if let Some(k) = self.tasks.get_mut(task) {
            k.last_ms = last;
        }
        Ok(t)
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
        let queue = queue.cloned().unwrap_or_else(|| Text::from(NO_QUEUE));
        self.open_task(
            t,
            site,
            task,
            kind,
            queue,
            customer.clone(),
            due,
            priority,
            None,
        )
    }

    /// Opens a task (from an event, or a callback owed after an abandon).
    #[allow(clippy::too_many_arguments)]
    fn open_task(
        &mut self,
        t: i64,
        site: Option<&Text>,
        task: &Text,
        kind: &Text,
        queue: Text,
        customer: Option<Text>,
        due: Option<i64>,
        priority: Option<i32>,
        from_call: Option<&Text>,
    ) -> Result<(), Rejection> {
        if self.tasks.len() >= self.settings.limits.max_open_tasks {
            return Err(Rejection::new(
                Reason::LimitExceeded,
                "too many open tasks: limits.max_open_tasks",
            ));
        }
        let k = self.kind_index(kind)?;
        let q = self.queue_entry(&queue, site)?;
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
                breached: AtomicBool::new(false),
            },
        );
        Ok(())
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

    /// An abandoned call with a customer, in a queue that owes callbacks.
    /// Merges into the customer's open callback at the site if there is
    /// one (earliest deadline kept, request counted).
    pub(super) fn owe_callback(
        &mut self,
        t: i64,
        call: &Text,
        queue: &Text,
        customer: &Text,
    ) -> Result<(), Rejection> {
        let Some(q) = self.queues.get(queue) else {
            return Ok(());
        };
        let site = Text::from(q.params.site.as_str());
        let cal = q.params.calendar.clone();
        let existing = self.owed_to(&site, customer).first().cloned();
        if let Some(id) = existing {
            let sla = self.settings.sla(CALLBACK, queue);
            let due = sla.due(t, &cal);
            if let Some(task) = self.tasks.get_mut(&id) {
                if due < task.due_ms {
                    task.due_ms = due;
                    task.soon_ms = sla.soon(due, &cal);
                }
                if let Some(cb) = task.callback.as_mut() {
                    cb.requests += 1;
                }
            }
            return Ok(());
        }
        let id = Text::from(format!("cb-{call}"));
        if self.tasks.contains_key(&id) || self.closed_tasks.contains_key(&id) {
            return Ok(());
        }
        self.open_task(
            t,
            None,
            &id,
            &Text::from(CALLBACK),
            queue.clone(),
            Some(customer.clone()),
            None,
            None,
            Some(call),
        )
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

    pub(super) fn task_assigned(
        &mut self,
        t: i64,
        site: Option<&Text>,
        task: &Text,
        agent: &Text,
    ) -> Result<(), Rejection> {
        let t = self.task_time(task, t)?;
        self.agent_entry(agent, site, t)?;
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
        let t = self.task_time(task, t)?;
        self.agent_entry(agent, site, t)?;
        let max = {
            let k = self
                .tasks
                .get(task)
                .ok_or_else(|| unknown_task_plain(task))?;
            self.queues
                .get(&k.queue)
                .map(|q| (q.params.callback_max_attempts, q.params.callback_min_gap_ms))
        };
        let k = self
            .tasks
            .get_mut(task)
            .ok_or_else(|| unknown_task_plain(task))?;
        k.attempts += 1;
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
                if cb.last_attempt_ms.is_none_or(|last| t - last >= gap) {
                    cb.unsuccessful += 1;
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
        let t = self.task_time(task, t)?;
        if let Some(a) = agent {
            self.agent_entry(a, site, t)?;
        }
        self.close_task(t, task, agent, reason, reason == CloseReason::Completed);
        Ok(())
    }

    /// Takes a task out of the backlog. `handled` books it as a contact of
    /// its agent (completion by event, or reaching the customer).
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
        let stats = self
            .task_stats
            .entry((k.kind, k.queue.clone()))
            .or_default();
        if late || k.breached() {
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
                stats
                    .completion
                    .observe((t - k.created_ms).max(0) as f64 / 1000.0);
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

fn unknown_task_plain(task: &str) -> Rejection {
    Rejection::new(Reason::UnknownTask, format!("task {task:?} is not open"))
}
