//! An agent: state, time in state, pause reason, and what they handled.
//!
//! States change by explicit `agent_state` events and are also derived
//! from call events (answered → on_call, hold → on_hold, ended → wrap_up,
//! wrap ended → available), so a source that only reports calls still
//! gives a correct agent grid.

use chrono_tz::Tz;

use super::ledger::Ledger;
use super::room::Room;
use super::tally::{DayTally, SalesTotals};
use super::window::Daily;
use super::Engine;
use crate::event::{AgentStatus, Text, MAX_LOGIN_QUEUES};
use crate::reject::{Reason, Rejection};

#[derive(Debug, Default, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct AgentDay {
    pub tally: DayTally,
    /// Time spent available (idle) today, up to the last state change.
    pub idle_ms: i64,
    pub paused_ms: i64,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Agent {
    pub name: Option<Text>,
    pub team: Text,
    pub site: Text,
    pub tz: Tz,
    pub queues: Vec<Text>,
    pub status: AgentStatus,
    pub reason: Option<Text>,
    pub since_ms: i64,
    pub last_ms: i64,
    pub logged_out_ms: Option<i64>,
    /// The call the agent is on or wrapping up, if any.
    pub call: Option<Text>,
    pub contacts: u64,
    /// Calls that rang here and were not taken.
    pub missed: u64,
    pub talk_ms: i64,
    pub hold_ms: i64,
    pub wrap_ms: i64,
    pub sales: SalesTotals,
    pub today: Daily<AgentDay>,
    /// Today's sums per interval, only with `Settings::agent_ledger`.
    pub ledger: Ledger<DayTally>,
}

impl Agent {
    pub fn new(site: Text, tz: Tz, team: Text, t: i64) -> Agent {
        Agent {
            name: None,
            team,
            site,
            tz,
            queues: Vec::new(),
            status: AgentStatus::Offline,
            reason: None,
            since_ms: t,
            last_ms: t,
            logged_out_ms: None,
            call: None,
            contacts: 0,
            missed: 0,
            talk_ms: 0,
            hold_ms: 0,
            wrap_ms: 0,
            sales: SalesTotals::default(),
            today: Daily::default(),
            ledger: Ledger::default(),
        }
    }

    /// Moves to `status` at `t`, booking the time spent in the old state.
    pub fn set_status(&mut self, t: i64, status: AgentStatus, reason: Option<&Text>) {
        let spent = t.saturating_sub(self.since_ms).max(0);
        let old = self.status;
        if let Some(d) = self.today.at_mut(t, self.tz) {
            match old {
                AgentStatus::Available => d.idle_ms = d.idle_ms.saturating_add(spent),
                AgentStatus::Paused => d.paused_ms = d.paused_ms.saturating_add(spent),
                _ => {}
            }
        }
        self.reason = if status == AgentStatus::Paused {
            reason.cloned()
        } else {
            None
        };
        if old != status {
            self.since_ms = t;
        }
        self.status = status;
        if status == AgentStatus::Offline {
            self.logged_out_ms = Some(t);
            self.call = None;
        } else {
            self.logged_out_ms = None;
        }
    }

    pub fn day(&mut self, t: i64) -> Option<&mut DayTally> {
        self.today.at_mut(t, self.tz).map(|d| &mut d.tally)
    }
}

impl Engine {
    /// Applies an agent's own event (login, state, logout) at `t`, or
    /// notes it as late when the agent's state is newer: a late event
    /// never regresses newer state (docs/events.md, "Late events").
    fn agent_fresh(&mut self, id: &Text, t: i64) -> bool {
        match self.agents.get(id) {
            Some(a) if t < a.last_ms => {
                self.late = true;
                false
            }
            _ => true,
        }
    }

    /// Moves the agent to `status` at `t` because of an event about their
    /// call, unless the agent's state is newer than `t` (then only the
    /// call's own figures change, and the event counts as late).
    pub(super) fn follow_call(&mut self, id: &Text, t: i64, status: AgentStatus) {
        let Some(a) = self.agents.get_mut(id) else {
            return;
        };
        if t < a.last_ms {
            self.late = true;
            return;
        }
        a.last_ms = t;
        a.set_status(t, status, None);
    }

    pub(super) fn agent_login(
        &mut self,
        t: i64,
        site: Option<&Text>,
        id: &Text,
        name: &Option<Text>,
        team: Option<&Text>,
        queues: &[Text],
    ) -> Result<(), Rejection> {
        let mut room = Room::default();
        self.agent_room(&mut room, id, site, team, None);
        // The membership after this login, checked before anything moves.
        let joined = self.agents.get(id).map_or(0, |a| {
            queues.iter().filter(|q| !a.queues.contains(q)).count() + a.queues.len()
        });
        if joined.max(queues.len()) > MAX_LOGIN_QUEUES {
            return Err(Rejection::new(
                Reason::LimitExceeded,
                format!("agent {id:?} would be a member of more than {MAX_LOGIN_QUEUES} queues"),
            ));
        }
        let place = self.agent_site(id, site, team, None);
        self.make(room, t)?;
        if !self.agent_fresh(id, t) {
            return Ok(());
        }
        let tz = self.site_tz(&place);
        if let Some(a) = self.agents.get_mut(id) {
            a.last_ms = t;
            a.site = place;
            a.tz = tz;
            if let Some(team) = team {
                a.team = team.clone();
            }
            if name.is_some() {
                a.name = name.clone();
            }
            if a.status == AgentStatus::Offline {
                a.queues.clear();
            }
            for q in queues {
                if !a.queues.contains(q) {
                    a.queues.push(q.clone());
                }
            }
            if a.status == AgentStatus::Offline {
                a.set_status(t, AgentStatus::Available, None);
            }
            a.logged_out_ms = None;
        }
        Ok(())
    }

    pub(super) fn agent_state(
        &mut self,
        t: i64,
        site: Option<&Text>,
        id: &Text,
        status: AgentStatus,
        reason: Option<&Text>,
    ) -> Result<(), Rejection> {
        let mut room = Room::default();
        self.agent_room(&mut room, id, site, None, None);
        self.make(room, t)?;
        if !self.agent_fresh(id, t) {
            return Ok(());
        }
        if let Some(a) = self.agents.get_mut(id) {
            a.last_ms = t;
            if status == AgentStatus::Offline {
                a.queues.clear();
            }
            a.set_status(t, status, reason);
        }
        Ok(())
    }

    /// Leaves the named queues, or all of them; the agent is offline once
    /// they are a member of none.
    pub(super) fn agent_logout(
        &mut self,
        t: i64,
        site: Option<&Text>,
        id: &Text,
        queues: &[Text],
    ) -> Result<(), Rejection> {
        let mut room = Room::default();
        self.agent_room(&mut room, id, site, None, None);
        self.make(room, t)?;
        if !self.agent_fresh(id, t) {
            return Ok(());
        }
        if let Some(a) = self.agents.get_mut(id) {
            a.last_ms = t;
            if queues.is_empty() {
                a.queues.clear();
            } else {
                a.queues.retain(|q| !queues.contains(q));
            }
            if a.queues.is_empty() || queues.is_empty() {
                a.set_status(t, AgentStatus::Offline, None);
            }
        }
        Ok(())
    }
}
