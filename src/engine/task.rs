//! Tasks: the desk's backlog of callbacks, offers, order confirmations,
//! complaints and credit notes, each with a deadline.
//!
//! A task's deadline is its explicit `due`, else creation time plus the
//! SLA of its kind (and queue). It is overdue when now is past the
//! deadline. The moment it becomes overdue is a breach, counted once: an
//! open overdue task counts when read, and when it closes the breach moves
//! into the stored counter. The `breached` flag makes that sticky even if
//! the closing event carries an earlier time than a read that saw the task
//! overdue, so the exported counter never goes down.

use std::sync::atomic::{AtomicBool, Ordering};

use super::call::Contact;
use super::histogram::Histogram;
use super::Engine;
use crate::config::NO_QUEUE;
use crate::event::{AttemptResult, Text};
use crate::metric::buckets;
use crate::reject::{Reason, Rejection};

#[derive(Debug)]
pub struct Task {
    pub kind: u8,
    pub queue: Text,
    pub customer: Option<Text>,
    pub created_ms: i64,
    pub due_ms: i64,
    pub priority: i32,
    pub attempts: u32,
    pub last_result: Option<AttemptResult>,
    pub last_ms: i64,
    pub contact: Contact,
    breached: AtomicBool,
}

impl Task {
    /// Overdue at `now`; marks the breach so it stays counted.
    pub fn overdue(&self, now_ms: i64) -> bool {
        let over = now_ms > self.due_ms;
        if over && !self.breached.load(Ordering::Relaxed) {
            self.breached.store(true, Ordering::Relaxed);
        }
        over
    }

    /// Whether a breach has been counted for this open task.
    pub fn breached(&self) -> bool {
        self.breached.load(Ordering::Relaxed)
    }
}

/// What is remembered of a closed task.
#[derive(Debug, Clone)]
pub struct ClosedTask {
    pub queue: Text,
    pub closed_ms: i64,
    pub contact: Contact,
}

/// Counters per task kind and queue.
#[derive(Debug, Clone)]
pub struct TaskStats {
    pub created: u64,
    pub completed_met: u64,
    pub completed_missed: u64,
    pub cancelled: u64,
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
        if self.tasks.len() >= self.settings.limits.max_open_tasks {
            return Err(Rejection::new(
                Reason::LimitExceeded,
                "too many open tasks: limits.max_open_tasks",
            ));
        }
        let k = self.kind_index(kind)?;
        let queue = queue.cloned().unwrap_or_else(|| Text::from(NO_QUEUE));
        self.queue_entry(&queue, site)?.last_activity_ms = t;
        let due_ms = due.unwrap_or_else(|| t + self.settings.sla(kind, &queue).sla_ms);
        self.task_stats
            .entry((k, queue.clone()))
            .or_default()
            .created += 1;
        self.tasks.insert(
            task.clone(),
            Task {
                kind: k,
                queue,
                customer: customer.clone(),
                created_ms: t,
                due_ms,
                priority: priority.unwrap_or(0),
                attempts: 0,
                last_result: None,
                last_ms: t,
                contact: Contact::default(),
                breached: AtomicBool::new(false),
            },
        );
        Ok(())
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
        let k = self
            .tasks
            .get_mut(task)
            .ok_or_else(|| unknown_task_plain(task))?;
        k.attempts += 1;
        k.last_result = Some(result);
        k.contact.agent = Some(agent.clone());
        let key = (k.kind, k.queue.clone());
        self.task_stats.entry(key).or_default().attempts[result as usize] += 1;
        Ok(())
    }

    /// Completes (`cancelled == false`) or cancels a task.
    pub(super) fn task_closed(
        &mut self,
        t: i64,
        site: Option<&Text>,
        task: &Text,
        agent: Option<&Text>,
        cancelled: bool,
    ) -> Result<(), Rejection> {
        let t = self.task_time(task, t)?;
        if let Some(a) = agent {
            self.agent_entry(a, site, t)?;
        }
        let mut k = self
            .tasks
            .remove(task)
            .ok_or_else(|| unknown_task_plain(task))?;
        let late = t > k.due_ms;
        let stats = self
            .task_stats
            .entry((k.kind, k.queue.clone()))
            .or_default();
        if late || k.breached() {
            stats.breaches += 1;
        }
        if cancelled {
            stats.cancelled += 1;
        } else {
            if late {
                stats.completed_missed += 1;
            } else {
                stats.completed_met += 1;
            }
            stats
                .completion
                .observe((t - k.created_ms).max(0) as f64 / 1000.0);
            if let Some(a) = agent {
                k.contact.agent = Some(a.clone());
            }
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
                contact: k.contact,
            },
        );
        Ok(())
    }
}

fn unknown_task_plain(task: &str) -> Rejection {
    Rejection::new(Reason::UnknownTask, format!("task {task:?} is not open"))
}
