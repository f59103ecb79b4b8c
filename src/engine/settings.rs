//! The configuration, resolved into the lookups the engine makes per event.
//!
//! Resolution happens once at start-up: inheritance (queue → site →
//! defaults), durations in milliseconds, and the target chain, so the hot
//! path never walks the TOML structure.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono_tz::Tz;

use crate::calendar::Calendar;
use crate::config::{Config, LimitsConfig, SlaClock};
use crate::goal::Matrix;

/// Everything a queue needs per event.
#[derive(Debug, Clone)]
pub struct QueueParams {
    pub site: String,
    pub team: Option<String>,
    pub tz: Tz,
    pub sl_threshold_ms: i64,
    pub short_abandon_ms: i64,
    pub configured: bool,
    /// Opening hours (the queue's own, else its site's, else always open).
    pub calendar: Arc<Calendar>,
    pub abandon_creates_callback: bool,
    pub abandon_min_wait_ms: i64,
    pub callback_max_attempts: u32,
    pub callback_min_gap_ms: i64,
    /// Length of a ledger interval (`goals.guardrail.interval`).
    pub interval_ms: i64,
}

#[derive(Debug, Clone, Copy)]
pub struct Sla {
    pub sla_ms: i64,
    pub due_soon_ms: i64,
    pub clock: SlaClock,
}

impl Default for QueueParams {
    fn default() -> Self {
        QueueParams {
            site: String::new(),
            team: None,
            tz: Tz::UTC,
            sl_threshold_ms: 0,
            short_abandon_ms: 0,
            configured: false,
            calendar: Arc::new(Calendar::always(Tz::UTC)),
            abandon_creates_callback: false,
            abandon_min_wait_ms: 0,
            callback_max_attempts: 1,
            callback_min_gap_ms: 0,
            interval_ms: 900_000,
        }
    }
}

impl Sla {
    /// The deadline of a task created at `t` without an explicit `due`.
    pub fn due(&self, t: i64, cal: &Calendar) -> i64 {
        match self.clock {
            SlaClock::Calendar => t.saturating_add(self.sla_ms),
            SlaClock::Business => cal.add(t, self.sla_ms),
        }
    }

    /// When a task due at `due` becomes due soon.
    pub fn soon(&self, due: i64, cal: &Calendar) -> i64 {
        match self.clock {
            SlaClock::Calendar => due.saturating_sub(self.due_soon_ms),
            SlaClock::Business => cal.sub(due, self.due_soon_ms),
        }
    }
}

/// Quality management, resolved (docs/quality.md).
#[derive(Debug, Clone)]
pub struct QualitySettings {
    pub enabled: bool,
    pub retention_ms: i64,
    pub max_records: usize,
    pub confidence: f64,
    pub max_interval_width: f64,
    pub significance: f64,
    pub short_contact_ms: i64,
    pub repeat_window_ms: i64,
    pub sample: crate::config::SampleConfig,
}

/// The resolved configuration the engine runs on.
#[derive(Debug, Clone)]
pub struct Settings {
    pub limits: LimitsConfig,
    pub quality: QualitySettings,
    pub currency: String,
    pub default_site: String,
    pub dedup_horizon_ms: i64,
    pub agent_retention_ms: i64,
    pub idle_queue_ms: i64,
    pub closed_retention_ms: i64,
    pub sales_retention_ms: i64,
    /// The plausible window around the daemon's clock (`None`: off).
    pub event_max_age_ms: Option<i64>,
    pub event_max_lead_ms: Option<i64>,
    /// The daemon runs on the system clock (so time passes without
    /// events, and the writer applies heartbeats).
    pub wall_clock: bool,
    default_tz: Tz,
    site_calendars: BTreeMap<String, Arc<Calendar>>,
    default_queue: QueueParams,
    queues: BTreeMap<String, QueueParams>,
    site_tz: BTreeMap<String, Tz>,
    team_site: BTreeMap<String, String>,
    default_sla: Sla,
    kind_sla: BTreeMap<String, (Sla, BTreeMap<String, Sla>)>,
    /// The goal matrix the statuses and scorecards judge by.
    pub matrix: Arc<Matrix>,
    /// How long the ledger keeps its intervals.
    pub ledger_retention_ms: i64,
    /// Agents keep today's sums per interval (for agent scorecards, whose
    /// guardrail credits an agent's sales interval by interval); off
    /// unless `privacy.agent_scorecards`, so nothing is kept per person
    /// that nobody may see.
    pub agent_ledger: bool,
    team_partner: BTreeMap<String, String>,
    site_partner: BTreeMap<String, String>,
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Settings {
    pub fn from_config(c: &Config) -> Settings {
        let d = &c.defaults;
        let site_tz: BTreeMap<String, Tz> = c
            .sites
            .iter()
            .map(|(name, s)| (name.clone(), s.timezone.unwrap_or(d.timezone)))
            .collect();
        let tz_of = |site: &str| site_tz.get(site).copied().unwrap_or(d.timezone);
        // Validation has checked the hours; a bad one here means "always".
        let site_calendars: BTreeMap<String, Arc<Calendar>> = c
            .sites
            .iter()
            .map(|(name, site)| {
                let tz = tz_of(name);
                let cal = site
                    .hours
                    .as_ref()
                    .and_then(|h| Calendar::from_config(tz, h, "").ok())
                    .unwrap_or_else(|| Calendar::always(tz));
                (name.clone(), Arc::new(cal))
            })
            .collect();
        let cal_of = |site: &str| {
            site_calendars
                .get(site)
                .cloned()
                .unwrap_or_else(|| Arc::new(Calendar::always(tz_of(site))))
        };
        let interval_ms = ms(c.goals.guardrail.interval.0).max(60_000);
        let default_queue = QueueParams {
            site: d.site.clone(),
            team: None,
            tz: tz_of(&d.site),
            sl_threshold_ms: ms(d.service_level_threshold),
            short_abandon_ms: ms(d.short_abandon_threshold),
            configured: false,
            calendar: cal_of(&d.site),
            abandon_creates_callback: d.abandon_creates_callback,
            abandon_min_wait_ms: ms(d.abandon_min_wait),
            callback_max_attempts: d.callback_max_attempts,
            callback_min_gap_ms: ms(d.callback_min_gap),
            interval_ms,
        };
        let queues = c
            .queues
            .iter()
            .map(|q| {
                let site = q.site.clone().unwrap_or_else(|| d.site.clone());
                let tz = q.timezone.unwrap_or_else(|| tz_of(&site));
                let calendar = match &q.hours {
                    Some(h) => Arc::new(
                        Calendar::from_config(tz, h, "").unwrap_or_else(|_| Calendar::always(tz)),
                    ),
                    None => cal_of(&site),
                };
                let p = QueueParams {
                    tz,
                    calendar,
                    abandon_creates_callback: q
                        .abandon_creates_callback
                        .unwrap_or(d.abandon_creates_callback),
                    abandon_min_wait_ms: ms(q.abandon_min_wait.unwrap_or(d.abandon_min_wait)),
                    callback_max_attempts: q
                        .callback_max_attempts
                        .unwrap_or(d.callback_max_attempts),
                    callback_min_gap_ms: ms(q.callback_min_gap.unwrap_or(d.callback_min_gap)),
                    site,
                    team: q.team.clone(),
                    sl_threshold_ms: ms(q
                        .service_level_threshold
                        .unwrap_or(d.service_level_threshold)),
                    short_abandon_ms: ms(q
                        .short_abandon_threshold
                        .unwrap_or(d.short_abandon_threshold)),
                    configured: true,
                    interval_ms,
                };
                (q.name.clone(), p)
            })
            .collect();
        let default_sla = Sla {
            sla_ms: ms(c.tasks.default_sla),
            due_soon_ms: ms(c.tasks.default_due_soon),
            clock: SlaClock::Calendar,
        };
        let kind_sla = c
            .tasks
            .kinds
            .iter()
            .map(|(kind, k)| {
                let base = Sla {
                    sla_ms: k.sla.map(ms).unwrap_or(default_sla.sla_ms),
                    due_soon_ms: k.due_soon.map(ms).unwrap_or(default_sla.due_soon_ms),
                    clock: k.clock.unwrap_or_default(),
                };
                let per_queue = k
                    .queues
                    .iter()
                    .map(|(q, kq)| {
                        (
                            q.clone(),
                            Sla {
                                sla_ms: kq.sla.map(ms).unwrap_or(base.sla_ms),
                                due_soon_ms: kq.due_soon.map(ms).unwrap_or(base.due_soon_ms),
                                clock: kq.clock.unwrap_or(base.clock),
                            },
                        )
                    })
                    .collect();
                (kind.clone(), (base, per_queue))
            })
            .collect();
        let r = &c.retention;
        Settings {
            limits: c.limits.clone(),
            quality: QualitySettings {
                enabled: c.quality.enabled,
                retention_ms: ms(c.quality.retention),
                max_records: c.quality.max_records,
                confidence: c.quality.confidence,
                max_interval_width: c.quality.max_interval_width,
                significance: c.quality.significance,
                short_contact_ms: ms(c.quality.short_contact),
                repeat_window_ms: ms(c.quality.repeat_window),
                sample: c.quality.sample.clone(),
            },
            currency: c.sales.currency.clone(),
            default_site: d.site.clone(),
            dedup_horizon_ms: ms(r.dedup_horizon),
            agent_retention_ms: ms(r.agent_after_logout),
            idle_queue_ms: ms(r.idle_queue),
            closed_retention_ms: ms(r.closed_items),
            sales_retention_ms: ms(r.sales),
            wall_clock: c.clock.mode == crate::config::ClockMode::System,
            event_max_age_ms: Some(ms(c.limits.event_max_age)).filter(|&v| v > 0),
            event_max_lead_ms: Some(ms(c.limits.event_max_lead))
                .filter(|&v| v > 0 && c.clock.mode == crate::config::ClockMode::System),
            default_tz: d.timezone,
            site_calendars: site_calendars.clone(),
            default_queue,
            queues,
            team_site: c
                .teams
                .iter()
                .filter_map(|(n, t)| t.site.clone().map(|s| (n.clone(), s)))
                .collect(),
            site_tz,
            default_sla,
            kind_sla,
            matrix: Arc::new(Matrix::from_config(c)),
            ledger_retention_ms: ms(r.goal_intervals),
            agent_ledger: c.privacy.agent_scorecards,
            team_partner: c
                .teams
                .iter()
                .filter_map(|(n, t)| t.partner.clone().map(|p| (n.clone(), p)))
                .collect(),
            site_partner: c
                .sites
                .iter()
                .filter_map(|(n, s)| s.partner.clone().map(|p| (n.clone(), p)))
                .collect(),
        }
    }

    /// A queue's parameters; unconfigured queues get the defaults.
    pub fn queue(&self, name: &str) -> QueueParams {
        self.queues
            .get(name)
            .cloned()
            .unwrap_or_else(|| self.default_queue.clone())
    }

    /// The site a queue belongs to by configuration (or the default).
    pub fn queue_site(&self, name: &str) -> &str {
        self.queues
            .get(name)
            .map_or(self.default_queue.site.as_str(), |p| p.site.as_str())
    }

    /// Queues named in the configuration.
    pub fn configured_queues(&self) -> impl Iterator<Item = &str> {
        self.queues.keys().map(String::as_str)
    }

    /// A site's opening hours (always open when none are configured).
    pub fn site_calendar(&self, site: &str) -> Arc<Calendar> {
        self.site_calendars
            .get(site)
            .cloned()
            .unwrap_or_else(|| Arc::new(Calendar::always(self.site_tz(site))))
    }

    pub fn site_tz(&self, site: &str) -> Tz {
        self.site_tz.get(site).copied().unwrap_or(self.default_tz)
    }

    /// The site a team belongs to, if configured.
    pub fn team_site(&self, team: &str) -> Option<&str> {
        self.team_site.get(team).map(String::as_str)
    }

    /// SLA and due-soon lead of a task kind in a queue.
    pub fn sla(&self, kind: &str, queue: &str) -> Sla {
        match self.kind_sla.get(kind) {
            Some((base, per_queue)) => per_queue.get(queue).copied().unwrap_or(*base),
            None => self.default_sla,
        }
    }

    pub fn configured_kinds(&self) -> impl Iterator<Item = &str> {
        self.kind_sla.keys().map(String::as_str)
    }

    /// The partner running a team (or, failing that, the team's site).
    pub fn partner_of(&self, team: Option<&str>, site: &str) -> Option<&str> {
        team.and_then(|t| self.team_partner.get(t))
            .or_else(|| self.site_partner.get(site))
            .map(String::as_str)
    }

    /// Every partner named in the configuration.
    pub fn partners(&self) -> std::collections::BTreeSet<&str> {
        self.team_partner
            .values()
            .chain(self.site_partner.values())
            .map(String::as_str)
            .collect()
    }

    /// The ledger's interval length.
    pub fn default_interval_ms(&self) -> i64 {
        self.default_queue.interval_ms
    }
}
