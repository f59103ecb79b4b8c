//! An agent: state, time in state, pause reason, and what they handled.
//!
//! States change by explicit `agent_state` events and are also derived
//! from call events (answered → on_call, hold → on_hold, ended → wrap_up,
//! wrap ended → available), so a source that only reports calls still
//! gives a correct agent grid.

use chrono_tz::Tz;

use super::tally::{DayTally, SalesTotals};
use super::window::Daily;
use super::{Engine, NO_TEAM};
use crate::event::{AgentStatus, Text};
use crate::reject::Rejection;

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
    pub talk_ms: i64,
    pub hold_ms: i64,
    pub wrap_ms: i64,
    pub sales: SalesTotals,
    pub today: Daily<AgentDay>,
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
            talk_ms: 0,
            hold_ms: 0,
            wrap_ms: 0,
            sales: SalesTotals::default(),
            today: Daily::default(),
        }
    }

    /// Moves to `status` at `t`, booking the time spent in the old state.
    pub fn set_status(&mut self, t: i64, status: AgentStatus, reason: Option<&Text>) {
        let spent = (t - self.since_ms).max(0);
        let old = self.status;
        if let Some(d) = self.today.at_mut(t, self.tz) {
            match old {
                AgentStatus::Available => d.idle_ms += spent,
                AgentStatus::Paused => d.paused_ms += spent,
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
    /// Current agent time, clamped to the agent's last event.
    fn agent_time(&mut self, id: &Text, site: Option<&Text>, t: i64) -> Result<i64, Rejection> {
        let mut last = self.agent_entry(id, site, t)?.last_ms;
        let t = self.clamp(t, &mut last);
        if let Some(a) = self.agents.get_mut(id) {
            a.last_ms = last;
        }
        Ok(t)
    }

    pub(super) fn agent_login(
        &mut self,
        t: i64,
        site: Option<&Text>,
        id: &Text,
        name: &Option<Text>,
        team: &Option<Text>,
        queues: &[Text],
    ) -> Result<(), Rejection> {
        self.agent_entry_in(id, site, team.as_ref(), t)?;
        let t = self.agent_time(id, site, t)?;
        let agent_site = match self.agents.get(id) {
            Some(a) => site.cloned().unwrap_or_else(|| a.site.clone()),
            None => return Ok(()),
        };
        let tz = self.site_entry(&agent_site)?;
        let team = team.clone().unwrap_or_else(|| Text::from(NO_TEAM));
        self.team_entry(&team, &agent_site)?;
        if let Some(a) = self.agents.get_mut(id) {
            a.site = agent_site;
            a.tz = tz;
            a.team = team;
            if name.is_some() {
                a.name = name.clone();
            }
            a.queues = queues.to_vec();
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
        let t = self.agent_time(id, site, t)?;
        if let Some(a) = self.agents.get_mut(id) {
            a.set_status(t, status, reason);
        }
        Ok(())
    }

    pub(super) fn agent_logout(&mut self, t: i64, id: &Text) -> Result<(), Rejection> {
        self.agent_state(t, None, id, AgentStatus::Offline, None)
    }
}
