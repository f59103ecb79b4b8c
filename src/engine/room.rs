//! Room: the entities an event would create, admitted all at once.
//!
//! Sites, teams, agents, queues and task kinds are created on first
//! sight, and each set is bounded by a limit. Creating them one by one
//! while applying an event left half an event behind when a later step
//! hit a limit (a refused sale had already created its agent's site).
//! So a handler first asks what the event would create (`*_room`, pure),
//! checks the whole [`Room`] against the limits, and only then creates
//! it (`make`), after which nothing in the handler can fail. The
//! resolution rules (which site a new agent or team belongs to) live here
//! once, so the check and the creation cannot disagree.

use super::{Agent, Engine, Queue, Site, Team, NO_TEAM};
use crate::event::Text;
use crate::reject::{Reason, Rejection};

/// What an event would add. Empty (and allocation-free) in the common
/// case, where everything the event names already exists.
#[derive(Debug, Default)]
pub(crate) struct Room {
    sites: Vec<Text>,
    /// (team, its site)
    teams: Vec<(Text, Text)>,
    /// (id, site, team)
    agent: Option<(Text, Text, Text)>,
    /// (name, site)
    queue: Option<(Text, Text)>,
    kind: Option<Text>,
}

pub(super) fn limit(what: &str, max: usize) -> Rejection {
    Rejection::new(
        Reason::LimitExceeded,
        format!("too many {what}: the configured limit is {max}"),
    )
}

impl Room {
    fn site(&mut self, e: &Engine, site: &Text) {
        if !e.sites.contains_key(site) && !self.sites.contains(site) {
            self.sites.push(site.clone());
        }
    }

    /// A team, if new, with the site it belongs to: its configured site,
    /// else `site` (where its first agent is).
    fn team(&mut self, e: &Engine, team: &Text, site: &Text) {
        if e.teams.contains_key(team) || self.teams.iter().any(|(t, _)| t == team) {
            return;
        }
        let site = e
            .settings
            .team_site(team)
            .map_or_else(|| site.clone(), Text::from);
        self.site(e, &site);
        self.teams.push((team.clone(), site));
    }

    pub fn is_empty(&self) -> bool {
        self.sites.is_empty()
            && self.teams.is_empty()
            && self.agent.is_none()
            && self.queue.is_none()
            && self.kind.is_none()
    }
}

impl Engine {
    /// Where an agent belongs: the event's site, else the configured site
    /// of their team, else what is known of them, else `fallback` (the
    /// site of the queue that brought them), else the default site.
    pub(super) fn agent_site(
        &self,
        id: &Text,
        site: Option<&Text>,
        team: Option<&Text>,
        fallback: Option<&str>,
    ) -> Text {
        if let Some(s) = site {
            return s.clone();
        }
        let known = self.agents.get(id);
        let team = team.or(known.map(|a| &a.team));
        if let Some(s) = team.and_then(|t| self.settings.team_site(t)) {
            return Text::from(s);
        }
        if let Some(a) = known {
            return a.site.clone();
        }
        Text::from(fallback.unwrap_or(&self.settings.default_site))
    }

    /// The room an event about agent `id` needs: the agent if new (in
    /// `team`, else in no team), and any site or team the event names
    /// that does not exist yet.
    pub(super) fn agent_room(
        &self,
        room: &mut Room,
        id: &Text,
        site: Option<&Text>,
        team: Option<&Text>,
        fallback: Option<&str>,
    ) {
        let place = self.agent_site(id, site, team, fallback);
        room.site(self, &place);
        let known = self.agents.get(id);
        let team = match (team, known) {
            (Some(t), _) => t.clone(),
            (None, Some(a)) => a.team.clone(),
            (None, None) => Text::from(NO_TEAM),
        };
        room.team(self, &team, &place);
        if known.is_none() {
            room.agent = Some((id.clone(), place, team));
        }
    }

    /// The room a queue needs when it is new: the queue and its site (the
    /// event's, for a queue the configuration does not name).
    pub(super) fn queue_room(&self, room: &mut Room, name: &Text, site: Option<&Text>) {
        if self.queues.contains_key(name) {
            return;
        }
        let configured = self
            .settings
            .configured_queues()
            .any(|q| q == name.as_str());
        let place = match site {
            Some(s) if !configured => s.clone(),
            _ => Text::from(self.settings.queue_site(name)),
        };
        room.site(self, &place);
        room.queue = Some((name.clone(), place));
    }

    pub(super) fn kind_room(&self, room: &mut Room, kind: &Text) {
        if !self.kinds.contains(kind) {
            room.kind = Some(kind.clone());
        }
    }

    /// Refuses the event if what it would create does not fit the limits.
    pub(super) fn check_room(&self, room: &Room) -> Result<(), Rejection> {
        if room.is_empty() {
            return Ok(());
        }
        let l = &self.settings.limits;
        let fits = |have: usize, add: usize, max: usize| have + add <= max;
        if !fits(self.sites.len(), room.sites.len(), l.max_sites) {
            return Err(limit("sites", l.max_sites));
        }
        if !fits(self.teams.len(), room.teams.len(), l.max_teams) {
            return Err(limit("teams", l.max_teams));
        }
        if !fits(self.agents.len(), room.agent.iter().count(), l.max_agents) {
            return Err(limit("agents", l.max_agents));
        }
        if !fits(self.queues.len(), room.queue.iter().count(), l.max_queues) {
            return Err(limit("queues", l.max_queues));
        }
        let max_kinds = l.max_task_kinds.min(255);
        if let Some(kind) = &room.kind {
            if self.kinds.len() >= max_kinds {
                return Err(Rejection::new(
                    Reason::LimitExceeded,
                    format!("task kind {kind:?} would exceed limits.max_task_kinds ({max_kinds})"),
                ));
            }
        }
        Ok(())
    }

    /// Checks `room` and creates everything in it, or changes nothing.
    pub(super) fn make(&mut self, room: Room, t: i64) -> Result<(), Rejection> {
        self.check_room(&room)?;
        for site in room.sites {
            let tz = self.settings.site_tz(&site);
            self.sites.insert(site, Site { tz });
            self.counters.created_sites += 1;
        }
        for (team, site) in room.teams {
            self.teams.insert(team, Team::new(site));
            self.counters.created_teams += 1;
        }
        if let Some((name, site)) = room.queue {
            let mut p = self.settings.queue(&name);
            if !p.configured {
                p.calendar = self.settings.site_calendar(&site);
                p.site = site.to_string();
            }
            p.tz = self.site_tz(&p.site);
            self.queues.insert(name, Queue::new(p));
            self.counters.created_queues += 1;
        }
        if let Some((id, site, team)) = room.agent {
            let tz = self.site_tz(&site);
            self.agents.insert(id, Agent::new(site, tz, team, t));
            self.counters.created_agents += 1;
        }
        if let Some(kind) = room.kind {
            self.kinds.push(kind);
        }
        Ok(())
    }

    pub(super) fn site_tz(&self, site: &str) -> chrono_tz::Tz {
        self.sites
            .get(site)
            .map_or_else(|| self.settings.site_tz(site), |s| s.tz)
    }
}
