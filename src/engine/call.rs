//! Calls: waiting, talking (with hold), after-call work.
//!
//! Wait, talk, hold and after-call work are derived from event times
//! unless `call_ended` states talk_s / hold_s. Talk excludes hold, so
//! AHT = talk + hold + wrap adds up without double counting. A transfer
//! closes the transferring agent's segment (their talk and hold are
//! booked to them) and either hands the call to another agent or puts it
//! back to wait in another queue, where it is offered anew.

use super::tally::DayTally;
use super::{CloseReason, Engine};
use crate::event::{AgentStatus, Direction, Text, TransferTarget};
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
    /// Clamps `t` to the call's last event and returns it, or explains why
    /// the call cannot take events.
    fn call_time(&mut self, call: &Text, t: i64) -> Result<i64, Rejection> {
        let Some(c) = self.calls.get(call) else {
            return Err(if self.ended_calls.contains_key(call) {
                transition(call, "has already ended")
            } else {
                unknown_call(call)
            });
        };
        let mut last = c.last_ms;
        let t = self.clamp(t, &mut last);
        if let Some(c) = self.calls.get_mut(call) {
            c.last_ms = last;
        }
        Ok(t)
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
        self.queue_entry(queue, site)?
            .offered(t, direction == Direction::Outbound);
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

    pub(super) fn call_answered(
        &mut self,
        t: i64,
        site: Option<&Text>,
        call: &Text,
        agent: &Text,
    ) -> Result<(), Rejection> {
        let t = self.call_time(call, t)?;
        let c = self.calls.get(call).ok_or_else(|| unknown_call(call))?;
        if !matches!(c.phase, CallPhase::Waiting) {
            return Err(transition(call, "is already answered"));
        }
        let (queue, offered, inbound, customer) = (
            c.queue.clone(),
            c.offered_ms,
            c.direction == Direction::Inbound,
            c.customer.clone(),
        );
        let site = site.cloned().or_else(|| {
            self.queues
                .get(&queue)
                .map(|q| Text::from(q.params.site.as_str()))
        });
        let a = self.agent_entry(agent, site.as_ref(), t)?;
        a.set_status(t, AgentStatus::OnCall, None);
        a.call = Some(call.clone());
        if inbound {
            if let Some(q) = self.queues.get_mut(&queue) {
                q.answered(t, t - offered);
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

    pub(super) fn call_hold(&mut self, t: i64, call: &Text, hold: bool) -> Result<(), Rejection> {
        let t = self.call_time(call, t)?;
        let c = self.calls.get_mut(call).ok_or_else(|| unknown_call(call))?;
        let CallPhase::Talking {
            agent,
            seg_hold,
            hold_since,
            ..
        } = &mut c.phase
        else {
            return Err(transition(call, "is not connected to an agent"));
        };
        match (hold, *hold_since) {
            (true, Some(_)) => return Err(transition(call, "is already on hold")),
            (false, None) => return Err(transition(call, "is not on hold")),
            (true, None) => *hold_since = Some(t),
            (false, Some(since)) => {
                *seg_hold += (t - since).max(0);
                *hold_since = None;
            }
        }
        let agent = agent.clone();
        if let Some(a) = self.agents.get_mut(&agent) {
            if a.call.as_ref() == Some(call) {
                let s = if hold {
                    AgentStatus::OnHold
                } else {
                    AgentStatus::OnCall
                };
                a.set_status(t, s, None);
            }
        }
        Ok(())
    }

    pub(super) fn call_abandoned(&mut self, t: i64, call: &Text) -> Result<(), Rejection> {
        let t = self.call_time(call, t)?;
        let c = self.calls.get(call).ok_or_else(|| unknown_call(call))?;
        if !matches!(c.phase, CallPhase::Waiting) {
            return Err(transition(call, "is connected; send call_ended"));
        }
        let c = self.calls.remove(call).ok_or_else(|| unknown_call(call))?;
        let wait = t - c.offered_ms;
        let mut owed = false;
        if c.direction == Direction::Inbound {
            if let Some(q) = self.queues.get_mut(&c.queue) {
                q.abandoned(t, wait);
                owed = q.params.abandon_creates_callback && wait >= q.params.abandon_min_wait_ms;
            }
        }
        if let (true, Some(customer)) = (owed, &c.customer) {
            self.owe_callback(t, call, &c.queue, customer)?;
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

    /// Closes the current agent's segment: books their talk and hold,
    /// frees them, and returns (agent, talk, hold) of the segment.
    fn close_segment(
        &mut self,
        call: &Text,
        t: i64,
        talk_total: Option<i64>,
        hold_total: Option<i64>,
    ) -> Result<(Text, i64, i64), Rejection> {
        let c = self.calls.get_mut(call).ok_or_else(|| unknown_call(call))?;
        let CallPhase::Talking {
            agent,
            seg_start,
            seg_hold,
            hold_since,
        } = &c.phase
        else {
            return Err(match c.phase {
                CallPhase::Waiting => transition(call, "was never answered; send call_abandoned"),
                _ => transition(call, "has already ended"),
            });
        };
        let hold = seg_hold + hold_since.map(|s| (t - s).max(0)).unwrap_or(0);
        let talk = (t - seg_start - hold).max(0);
        // Stated totals win; this segment gets what the earlier ones did not.
        let talk = talk_total.map_or(talk, |v| (v - c.talk_ms).max(0));
        let hold = hold_total.map_or(hold, |v| (v - c.hold_ms).max(0));
        let agent = agent.clone();
        c.talk_ms += talk;
        c.hold_ms += hold;
        if let Some(a) = self.agents.get_mut(&agent) {
            a.talk_ms += talk;
            a.hold_ms += hold;
        }
        Ok((agent, talk, hold))
    }

    fn free_agent(&mut self, agent: &Text, call: &Text, t: i64) {
        if let Some(a) = self.agents.get_mut(agent) {
            if a.call.as_ref() == Some(call) {
                a.call = None;
                if matches!(
                    a.status,
                    AgentStatus::OnCall | AgentStatus::OnHold | AgentStatus::WrapUp
                ) {
                    a.set_status(t, AgentStatus::Available, None);
                }
            }
        }
    }

    pub(super) fn call_transferred(
        &mut self,
        t: i64,
        site: Option<&Text>,
        call: &Text,
        to: &TransferTarget,
    ) -> Result<(), Rejection> {
        let waiting = match self.calls.get(call).map(|c| &c.phase) {
            None => {
                return Err(if self.ended_calls.contains_key(call) {
                    transition(call, "has already ended")
                } else {
                    unknown_call(call)
                })
            }
            Some(CallPhase::Waiting) => true,
            Some(CallPhase::Talking { .. }) => false,
            Some(CallPhase::Wrap { .. }) => return Err(transition(call, "has already ended")),
        };
        match to {
            TransferTarget::Agent(agent) if waiting => self.call_answered(t, site, call, agent),
            TransferTarget::Queue(queue) => {
                let t = self.call_time(call, t)?;
                if waiting {
                    let old = self.calls.get(call).map(|c| c.queue.clone());
                    if let Some(q) = old.and_then(|old| self.queues.get_mut(&old)) {
                        q.transferred_out(t);
                    }
                } else {
                    let (agent, _, _) = self.close_segment(call, t, None, None)?;
                    self.free_agent(&agent, call, t);
                }
                let outbound = self
                    .calls
                    .get(call)
                    .is_some_and(|c| c.direction == Direction::Outbound);
                self.queue_entry(queue, site)?.offered(t, outbound);
                if let Some(c) = self.calls.get_mut(call) {
                    c.queue = queue.clone();
                    c.offered_ms = t;
                    c.phase = CallPhase::Waiting;
                }
                Ok(())
            }
            TransferTarget::Agent(agent) => {
                let t = self.call_time(call, t)?;
                let (old, _, _) = self.close_segment(call, t, None, None)?;
                self.free_agent(&old, call, t);
                let a = self.agent_entry(agent, site, t)?;
                a.set_status(t, AgentStatus::OnCall, None);
                a.call = Some(call.clone());
                if let Some(c) = self.calls.get_mut(call) {
                    c.phase = CallPhase::Talking {
                        agent: agent.clone(),
                        seg_start: t,
                        seg_hold: 0,
                        hold_since: None,
                    };
                    c.contact.agent = Some(agent.clone());
                }
                Ok(())
            }
        }
    }

    pub(super) fn call_ended(
        &mut self,
        t: i64,
        call: &Text,
        talk_s: Option<f64>,
        hold_s: Option<f64>,
    ) -> Result<(), Rejection> {
        let t = self.call_time(call, t)?;
        let to_ms = |s: f64| (s * 1000.0).round() as i64;
        let (agent, _, _) = self.close_segment(call, t, talk_s.map(to_ms), hold_s.map(to_ms))?;
        let c = self.calls.get_mut(call).ok_or_else(|| unknown_call(call))?;
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
        if let Some(a) = self.agents.get_mut(&agent) {
            if a.call.as_ref() == Some(call) {
                a.set_status(t, AgentStatus::WrapUp, None);
            }
        }
        self.contact_handled(&agent, &queue, t, converted);
        Ok(())
    }

    pub(super) fn wrap_ended(&mut self, t: i64, call: &Text) -> Result<(), Rejection> {
        let t = self.call_time(call, t)?;
        let c = self.calls.get(call).ok_or_else(|| unknown_call(call))?;
        let CallPhase::Wrap { agent, ended_ms } = &c.phase else {
            return Err(transition(call, "has not ended; send call_ended first"));
        };
        let (agent, wrap) = (agent.clone(), (t - ended_ms).max(0));
        let c = self.calls.remove(call).ok_or_else(|| unknown_call(call))?;
        let (talk, hold) = (c.talk_ms, c.hold_ms);
        if let Some(q) = self.queues.get_mut(&c.queue) {
            q.wrap.observe(wrap as f64 / 1000.0);
        }
        if let Some(a) = self.agents.get_mut(&agent) {
            a.wrap_ms += wrap;
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
        if let Some(d) = self.queues.get_mut(queue).and_then(|q| q.day(t)) {
            f(d);
        }
        let team = self.agents.get_mut(agent).map(|a| {
            if let Some(d) = a.day(t) {
                f(d);
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
            a.contacts += 1;
        }
        self.tally_days(agent, queue, t, |d| {
            d.contacts += 1;
            if converted {
                d.converted += 1;
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
