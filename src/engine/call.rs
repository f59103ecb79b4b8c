//! Calls: waiting, talking (with hold), after-call work.
//!
//! Wait, talk, hold and after-call work are derived from event times
//! unless `call_ended` states talk_s / hold_s. Talk excludes hold, so
//! AHT = talk + hold + wrap adds up without double counting. A transfer
//! closes the transferring agent's segment (their talk and hold are
//! booked to them) and either hands the call to another agent or puts it
//! back to wait in another queue, where it is offered anew.

use super::room::Room;
use super::tally::DayTally;
use super::{CloseReason, Engine};
use crate::event::{AgentStatus, Direction, ExitReason, Text, TransferTarget};
use crate::reject::{Reason, Rejection};

/// A contact's link to sales, for conversion.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Contact {
    /// The agent who handled (or is handling) the contact.
    pub agent: Option<Text>,
    /// When the conversation ended / the task was completed.
    pub handled_ms: Option<i64>,
    /// Sales on this contact that are not cancelled.
    pub live_sales: u32,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum CallPhase {
    Waiting,
    Talking {
        agent: Text,
        seg_start: i64,
        seg_hold: i64,
        hold_since: Option<i64>,
    },
    Wrap {
        agent: Text,
        ended_ms: i64,
    },
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Call {
    pub queue: Text,
    pub direction: Direction,
    pub customer: Option<Text>,
    /// When it started waiting in its current queue.
    pub offered_ms: i64,
    pub last_ms: i64,
    pub phase: CallPhase,
    pub talk_ms: i64,
    pub hold_ms: i64,
    pub contact: Contact,
}

/// What is remembered of a call after it ended or was abandoned.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EndedCall {
    pub queue: Text,
    pub closed_ms: i64,
    pub contact: Contact,
}

fn unknown_call(call: &str) -> Rejection {
    Rejection::new(
        Reason::UnknownCall,
        format!("call {call:?} is not live (no call_offered seen)"),
    )
}

fn transition(call: &str, why: &str) -> Rejection {
    Rejection::new(Reason::InvalidTransition, format!("call {call:?} {why}"))
}

impl Engine {
    /// The live call, or why it cannot take events.
    fn live_call(&self, call: &Text) -> Result<&Call, Rejection> {
        self.calls.get(call).ok_or_else(|| {
            if self.ended_calls.contains_key(call) {
                transition(call, "has already ended")
            } else {
                unknown_call(call)
            }
        })
    }

    /// Moves the call's own clock to `t` (validated by `live_call` and
    /// applied with `at_least`) once the event is known to be accepted.
    fn touch_call(&mut self, call: &Text, t: i64) {
        if let Some(c) = self.calls.get_mut(call) {
            c.last_ms = c.last_ms.max(t);
        }
    }

    pub(super) fn call_offered(
        &mut self,
        t: i64,
        site: Option<&Text>,
        call: &Text,
        queue: &Text,
        direction: Direction,
        customer: &Option<Text>,
    ) -> Result<(), Rejection> {
        if self.calls.contains_key(call) {
            return Err(transition(call, "is already live"));
        }
        if self.ended_calls.contains_key(call) {
            return Err(transition(call, "has already ended"));
        }
        if self.calls.len() >= self.settings.limits.max_live_calls {
            return Err(Rejection::new(
                Reason::LimitExceeded,
                "too many live calls: limits.max_live_calls",
            ));
        }
        let mut room = Room::default();
        self.queue_room(&mut room, queue, site);
        self.make(room, t)?;
        if let Some(q) = self.queues.get_mut(queue) {
            q.offered(t, direction == Direction::Outbound);
        }
        self.calls.insert(
            call.clone(),
            Call {
                queue: queue.clone(),
                direction,
                customer: customer.clone(),
                offered_ms: t,
                last_ms: t,
                phase: CallPhase::Waiting,
                talk_ms: 0,
                hold_ms: 0,
                contact: Contact::default(),
            },
        );
        Ok(())
    }

    /// The site a new agent picked up by a call belongs to, when neither
    /// the event nor their team says: the call's queue's.
    fn call_site(&self, c: &Call) -> Option<Text> {
        self.queues
            .get(&c.queue)
            .map(|q| Text::from(q.params.site.as_str()))
    }

    pub(super) fn call_answered(
        &mut self,
        t: i64,
        site: Option<&Text>,
        call: &Text,
        agent: &Text,
        wait_ms: Option<i64>,
    ) -> Result<(), Rejection> {
        let c = self.live_call(call)?;
        if !matches!(c.phase, CallPhase::Waiting) {
            return Err(transition(call, "is already answered"));
        }
        let (queue, offered, inbound, customer, last) = (
            c.queue.clone(),
            c.offered_ms,
            c.direction == Direction::Inbound,
            c.customer.clone(),
            c.last_ms,
        );
        let fallback = self.call_site(c);
        let mut room = Room::default();
        self.agent_room(&mut room, agent, site, None, fallback.as_deref());
        self.make(room, t)?;
        let t = self.at_least(t, last);
        self.touch_call(call, t);
        self.take_call(agent, call, t);
        if inbound {
            if let Some(q) = self.queues.get_mut(&queue) {
                // The PBX's own figure wins over the time since the
                // offer as this daemon received it.
                q.answered(t, wait_ms.unwrap_or(t - offered));
            }
        }
        if let Some(c) = self.calls.get_mut(call) {
            c.phase = CallPhase::Talking {
                agent: agent.clone(),
                seg_start: t,
                seg_hold: 0,
                hold_since: None,
            };
            c.contact.agent = Some(agent.clone());
        }
        // The customer got through (or was reached): callbacks owed to
        // them at this site are settled.
        if let Some(customer) = customer {
            let reason = if inbound {
                CloseReason::CustomerCalledBack
            } else {
                CloseReason::ReachedOutbound
            };
            if let Some(site) = self.queues.get(&queue).map(|q| q.params.site.clone()) {
                self.close_callbacks_for(t, &site, &customer, reason);
            }
        }
        Ok(())
    }

    /// The agent takes the call at `t` (on call), unless their state is
    /// newer (a late answer leaves a newer pause alone).
    fn take_call(&mut self, agent: &Text, call: &Text, t: i64) {
        if let Some(a) = self.agents.get_mut(agent) {
            if t >= a.last_ms || a.call.is_none() {
                a.call = Some(call.clone());
            }
        }
        self.follow_call(agent, t, AgentStatus::OnCall);
    }

    pub(super) fn call_hold(&mut self, t: i64, call: &Text, hold: bool) -> Result<(), Rejection> {
        let c = self.live_call(call)?;
        let CallPhase::Talking {
            agent, hold_since, ..
        } = &c.phase
        else {
            return Err(transition(call, "is not connected to an agent"));
        };
        match (hold, hold_since) {
            (true, Some(_)) => return Err(transition(call, "is already on hold")),
            (false, None) => return Err(transition(call, "is not on hold")),
            _ => {}
        }
        let (agent, last) = (agent.clone(), c.last_ms);
        let t = self.at_least(t, last);
        self.touch_call(call, t);
        if let Some(Call {
            phase:
                CallPhase::Talking {
                    seg_hold,
                    hold_since,
                    ..
                },
            ..
        }) = self.calls.get_mut(call)
        {
            match *hold_since {
                None => *hold_since = Some(t),
                Some(since) => {
                    *seg_hold = seg_hold.saturating_add(t.saturating_sub(since).max(0));
                    *hold_since = None;
                }
            }
        }
        if self.agents.get(&agent).and_then(|a| a.call.as_ref()) == Some(call) {
            let s = if hold {
                AgentStatus::OnHold
            } else {
                AgentStatus::OnCall
            };
            self.follow_call(&agent, t, s);
        }
        Ok(())
    }

    /// A ring at `agent` that was not taken: counted for the queue and the
    /// agent; the call keeps waiting.
    pub(super) fn call_missed(
        &mut self,
        t: i64,
        site: Option<&Text>,
        call: &Text,
        agent: &Text,
    ) -> Result<(), Rejection> {
        let c = self.live_call(call)?;
        if !matches!(c.phase, CallPhase::Waiting) {
            return Err(transition(
                call,
                "is connected; a missed ring is only for a waiting call",
            ));
        }
        let (queue, inbound) = (c.queue.clone(), c.direction == Direction::Inbound);
        let fallback = self.call_site(c);
        let mut room = Room::default();
        self.agent_room(&mut room, agent, site, None, fallback.as_deref());
        self.make(room, t)?;
        if inbound {
            if let Some(q) = self.queues.get_mut(&queue) {
                q.missed(t);
            }
        }
        if let Some(a) = self.agents.get_mut(agent) {
            a.missed += 1;
        }
        Ok(())
    }

    /// The caller hung up while waiting (`exit` is `None`), or left the
    /// queue for `exit`'s reason; only a hang-up may owe a callback.
    pub(super) fn call_left(
        &mut self,
        t: i64,
        call: &Text,
        exit: Option<ExitReason>,
    ) -> Result<(), Rejection> {
        let c = self.live_call(call)?;
        if !matches!(c.phase, CallPhase::Waiting) {
            return Err(transition(call, "is connected; send call_ended"));
        }
        let (t0, last) = (t, c.last_ms);
        let t = t.max(last);
        let wait = t - c.offered_ms;
        let inbound = c.direction == Direction::Inbound;
        let owed = exit.is_none()
            && inbound
            && self.queues.get(&c.queue).is_some_and(|q| {
                q.params.abandon_creates_callback && wait >= q.params.abandon_min_wait_ms
            });
        let owed = match (owed, &c.customer) {
            (true, Some(customer)) => Some((c.queue.clone(), customer.clone())),
            _ => None,
        };
        // Check the callback it would open before anything changes.
        let plan = match &owed {
            Some((queue, customer)) => self.plan_callback(call, queue, customer)?,
            None => None,
        };
        let t = self.at_least(t0, last);
        let Some(c) = self.calls.remove(call) else {
            return Err(unknown_call(call));
        };
        if inbound {
            if let Some(q) = self.queues.get_mut(&c.queue) {
                match exit {
                    None => q.abandoned(t, wait),
                    Some(reason) => q.exited(t, wait, reason),
                }
            }
        }
        if let (Some(plan), Some((queue, customer))) = (plan, owed) {
            self.owe_callback(t, call, &queue, &customer, plan);
        }
        self.ended_calls.insert(
            call.clone(),
            EndedCall {
                queue: c.queue,
                closed_ms: t,
                contact: c.contact,
            },
        );
        Ok(())
    }

    /// A caller turned away before the queue: counted for the queue. The
    /// call id, when given, is not reserved: the platform may send the
    /// same caller on to another queue.
    pub(super) fn call_refused(
        &mut self,
        t: i64,
        site: Option<&Text>,
        queue: &Text,
        reason: ExitReason,
        call: Option<&Text>,
    ) -> Result<(), Rejection> {
        if let Some(call) = call {
            if self.calls.contains_key(call) {
                return Err(transition(call, "is in a queue; send call_exited"));
            }
        }
        let mut room = Room::default();
        self.queue_room(&mut room, queue, site);
        self.make(room, t)?;
        if let Some(q) = self.queues.get_mut(queue) {
            q.refused(t, reason);
        }
        Ok(())
    }

    /// The agent, talk and hold of the current agent's segment of a
    /// talking call ending at `t` (stated totals win: this segment gets
    /// what the earlier ones did not), or why the call is not talking.
    fn segment(
        c: &Call,
        call: &Text,
        t: i64,
        talk_total: Option<i64>,
        hold_total: Option<i64>,
    ) -> Result<(Text, i64, i64), Rejection> {
        let CallPhase::Talking {
            agent,
            seg_start,
            seg_hold,
            hold_since,
        } = &c.phase
        else {
            return Err(match c.phase {
                CallPhase::Waiting => transition(
                    call,
                    "was never answered; send call_abandoned or call_exited",
                ),
                _ => transition(call, "has already ended"),
            });
        };
        let open_hold = hold_since.map_or(0, |s| t.saturating_sub(s).max(0));
        let hold = seg_hold.saturating_add(open_hold);
        let talk = t.saturating_sub(*seg_start).saturating_sub(hold).max(0);
        let talk = talk_total.map_or(talk, |v| v.saturating_sub(c.talk_ms).max(0));
        let hold = hold_total.map_or(hold, |v| v.saturating_sub(c.hold_ms).max(0));
        Ok((agent.clone(), talk, hold))
    }

    /// Books a closed segment to the call and its agent.
    fn book_segment(&mut self, call: &Text, agent: &Text, talk: i64, hold: i64) {
        if let Some(c) = self.calls.get_mut(call) {
            c.talk_ms = c.talk_ms.saturating_add(talk);
            c.hold_ms = c.hold_ms.saturating_add(hold);
        }
        if let Some(a) = self.agents.get_mut(agent) {
            a.talk_ms = a.talk_ms.saturating_add(talk);
            a.hold_ms = a.hold_ms.saturating_add(hold);
        }
    }

    /// The agent is done with `call` at `t`: no longer on it, and
    /// available unless their state is newer or they moved on.
    fn free_agent(&mut self, agent: &Text, call: &Text, t: i64) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        if a.call.as_ref() != Some(call) {
            return;
        }
        a.call = None;
        if matches!(
            a.status,
            AgentStatus::OnCall | AgentStatus::OnHold | AgentStatus::WrapUp
        ) {
            self.follow_call(agent, t, AgentStatus::Available);
        } else if t < a.last_ms {
            self.late = true;
        }
    }

    pub(super) fn call_transferred(
        &mut self,
        t: i64,
        site: Option<&Text>,
        call: &Text,
        to: &TransferTarget,
    ) -> Result<(), Rejection> {
        let c = self.live_call(call)?;
        let waiting = match &c.phase {
            CallPhase::Waiting => true,
            CallPhase::Talking { .. } => false,
            CallPhase::Wrap { .. } => return Err(transition(call, "has already ended")),
        };
        if let (TransferTarget::Agent(agent), true) = (to, waiting) {
            return self.call_answered(t, site, call, agent, None);
        }
        let (t0, last) = (t, c.last_ms);
        let t = t.max(last);
        let seg = if waiting {
            None
        } else {
            Some(Self::segment(c, call, t, None, None)?)
        };
        let outbound = c.direction == Direction::Outbound;
        let old_queue = c.queue.clone();
        let fallback = self.call_site(c);
        let mut room = Room::default();
        match to {
            TransferTarget::Queue(queue) => self.queue_room(&mut room, queue, site),
            TransferTarget::Agent(agent) => {
                self.agent_room(&mut room, agent, site, None, fallback.as_deref())
            }
        }
        self.make(room, t)?;
        let t = self.at_least(t0, last);
        self.touch_call(call, t);
        if let Some((agent, talk, hold)) = &seg {
            self.book_segment(call, agent, *talk, *hold);
            self.free_agent(agent, call, t);
        } else if let Some(q) = self.queues.get_mut(&old_queue) {
            q.transferred_out(t);
        }
        match to {
            TransferTarget::Queue(queue) => {
                if let Some(q) = self.queues.get_mut(queue) {
                    q.offered(t, outbound);
                }
                if let Some(c) = self.calls.get_mut(call) {
                    c.queue = queue.clone();
                    c.offered_ms = t;
                    c.phase = CallPhase::Waiting;
                }
            }
            TransferTarget::Agent(agent) => {
                self.take_call(agent, call, t);
                if let Some(c) = self.calls.get_mut(call) {
                    c.phase = CallPhase::Talking {
                        agent: agent.clone(),
                        seg_start: t,
                        seg_hold: 0,
                        hold_since: None,
                    };
                    c.contact.agent = Some(agent.clone());
                }
            }
        }
        Ok(())
    }

    pub(super) fn call_ended(
        &mut self,
        t: i64,
        call: &Text,
        talk_total: Option<i64>,
        hold_total: Option<i64>,
    ) -> Result<(), Rejection> {
        let c = self.live_call(call)?;
        let last = c.last_ms;
        let (agent, talk, hold) = Self::segment(c, call, t.max(last), talk_total, hold_total)?;
        let t = self.at_least(t, last);
        self.touch_call(call, t);
        self.book_segment(call, &agent, talk, hold);
        let Some(c) = self.calls.get_mut(call) else {
            return Ok(());
        };
        c.phase = CallPhase::Wrap {
            agent: agent.clone(),
            ended_ms: t,
        };
        c.contact.handled_ms = Some(t);
        let (queue, talk, hold, converted) = (
            c.queue.clone(),
            c.talk_ms,
            c.hold_ms,
            c.contact.live_sales > 0,
        );
        if let Some(q) = self.queues.get_mut(&queue) {
            q.talk.observe(talk as f64 / 1000.0);
            q.hold.observe(hold as f64 / 1000.0);
        }
        if self.agents.get(&agent).and_then(|a| a.call.as_ref()) == Some(call) {
            self.follow_call(&agent, t, AgentStatus::WrapUp);
        }
        self.contact_handled(&agent, &queue, t, converted);
        let (customer, sold, outbound) = self
            .calls
            .get(call)
            .map(|c| {
                (
                    c.customer.clone(),
                    c.contact.live_sales,
                    c.direction == Direction::Outbound,
                )
            })
            .unwrap_or_default();
        self.register_contact(
            crate::event::ContactRef::Call(call.clone()),
            Text::from(if outbound { "outbound" } else { "inbound" }),
            &agent,
            &queue,
            t,
            Some(talk),
            customer,
            sold,
        );
        Ok(())
    }

    pub(super) fn wrap_ended(&mut self, t: i64, call: &Text) -> Result<(), Rejection> {
        let c = self.live_call(call)?;
        let CallPhase::Wrap { agent, ended_ms } = &c.phase else {
            return Err(transition(call, "has not ended; send call_ended first"));
        };
        let (agent, ended, last) = (agent.clone(), *ended_ms, c.last_ms);
        let t = self.at_least(t, last);
        let wrap = t.saturating_sub(ended).max(0);
        let Some(c) = self.calls.remove(call) else {
            return Err(unknown_call(call));
        };
        let (talk, hold) = (c.talk_ms, c.hold_ms);
        if let Some(q) = self.queues.get_mut(&c.queue) {
            q.wrap.observe(wrap as f64 / 1000.0);
        }
        if let Some(a) = self.agents.get_mut(&agent) {
            a.wrap_ms = a.wrap_ms.saturating_add(wrap);
        }
        self.tally_days(&agent, &c.queue, t, |d| d.wrapped(talk, hold, wrap));
        self.free_agent(&agent, call, t);
        self.ended_calls.insert(
            call.clone(),
            EndedCall {
                queue: c.queue,
                closed_ms: t,
                contact: c.contact,
            },
        );
        Ok(())
    }

    pub(super) fn team_tz(&self, team: &Text) -> chrono_tz::Tz {
        let site = self.teams.get(team).map(|t| t.site.as_str());
        self.settings
            .site_tz(site.unwrap_or(&self.settings.default_site))
    }

    /// Applies `f` to the day tally of the queue, the agent and the
    /// agent's team that holds time `t` (nothing where `t` is an earlier
    /// day than the one a tally holds).
    pub(super) fn tally_days(
        &mut self,
        agent: &Text,
        queue: &Text,
        t: i64,
        f: impl Fn(&mut DayTally),
    ) {
        if let Some(q) = self.queues.get_mut(queue) {
            if let Some(d) = q.day(t) {
                f(d);
            }
            f(&mut q.slot(t).tally);
        }
        let (keep, iv) = (
            self.settings.agent_ledger,
            self.settings.default_interval_ms(),
        );
        let team = self.agents.get_mut(agent).map(|a| {
            if let Some(d) = a.day(t) {
                f(d);
                if keep {
                    f(a.ledger.at(t, iv));
                }
            }
            a.team.clone()
        });
        if let Some(team) = team {
            let tz = self.team_tz(&team);
            if let Some(d) = self.teams.get_mut(&team).and_then(|tm| tm.day(t, tz)) {
                f(d);
            }
        }
    }

    /// Books a handled contact to its agent, the agent's team and the queue.
    pub(super) fn contact_handled(&mut self, agent: &Text, queue: &Text, t: i64, converted: bool) {
        if let Some(a) = self.agents.get_mut(agent) {
            a.contacts = a.contacts.saturating_add(1);
        }
        self.tally_days(agent, queue, t, |d| {
            d.contacts = d.contacts.saturating_add(1);
            if converted {
                d.converted = d.converted.saturating_add(1);
            }
        });
    }

    /// A contact handled at `handled` gained its first live sale (+1) or
    /// lost its last (−1): adjust conversion where it counted today.
    pub(super) fn conversion_changed(
        &mut self,
        agent: &Text,
        queue: &Text,
        handled: i64,
        delta: i64,
    ) {
        self.tally_days(agent, queue, handled, |d| {
            d.converted = d.converted.saturating_add_signed(delta);
        });
    }
}
