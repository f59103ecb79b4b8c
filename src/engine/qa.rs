//! Quality management's state: the register of handled contacts, QA
//! evaluations and contact tags (docs/quality.md).
//!
//! Evaluations arrive days after the contact, long after the engine has
//! forgotten the call itself (`retention.closed_items`), so every handled
//! call and task is kept in a small register for `quality.retention`:
//! who handled it, in which queue, when. An evaluation or a tag names a
//! contact from the register (or a sale); anything else is refused.
//!
//! Scores are kept in hundredths of a point, as integers, so sums are
//! exact and a re-scored contact's old score is taken off exactly: the
//! state stays a pure function of the events.

use super::room::limit;
use super::{Engine, Map, NO_TEAM};
use crate::event::{AgentStatus, ContactRef, SaleKind, SaleLink, Tag, Text};
use crate::reject::{Reason, Rejection};

/// A handled call or task, as quality management needs it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Handled {
    pub agent: Text,
    pub queue: Text,
    pub handled_ms: i64,
    /// The contact type: `inbound`, `outbound` (calls) or the task kind.
    pub kind: Text,
    /// Talk time of a call (none for a task).
    pub talk_ms: Option<i64>,
    pub customer: Option<Text>,
    /// Sales on it that are not cancelled.
    pub live_sales: u32,
    /// Its place in the QA sample's draw (with a secret), computed once
    /// when it is registered: the sample pass then needs no HMAC.
    pub draw_key: Option<u64>,
}

/// A sale, as the integrity signals need it (kept for
/// `quality.retention`, longer than the engine's own `retention.sales`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QaSale {
    pub agent: Text,
    pub team: Text,
    pub ts_ms: i64,
    pub kind: SaleKind,
    pub contact: Option<ContactRef>,
    /// The agent was not logged in when the sale was booked.
    pub outside_login: bool,
    pub cancelled: bool,
}

/// Why a sale is worth a look (an integrity signal on one sale).
#[derive(Debug, Clone, PartialEq)]
pub enum SaleFlag {
    /// On a call with this little talk (ms).
    Short(i64),
    /// On a contact another agent handled (`Some`), or on none.
    Foreign(Option<Text>),
    /// Booked while the agent was not logged in.
    OutsideLogin,
}

impl SaleFlag {
    pub fn signal(&self) -> &'static str {
        match self {
            SaleFlag::Short(_) => "short_contact",
            SaleFlag::Foreign(_) => "no_own_contact",
            SaleFlag::OutsideLogin => "outside_login",
        }
    }
}

/// A drawn contact of the QA sample.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Drawn {
    pub agent: Text,
    pub team: Text,
    /// Start of the sample period (UTC ms).
    pub period_ms: i64,
    /// `kind/sale` or `kind/no_sale`, as when drawn.
    pub stratum: Text,
    /// `random`, or the signal that points at it.
    pub reason: Text,
    pub drawn_ms: i64,
    /// When it was first evaluated.
    pub evaluated_ms: Option<i64>,
}

/// The register entry a sale's link names.
pub fn contact_of_link(l: &SaleLink) -> ContactRef {
    match l {
        SaleLink::Call(c) => ContactRef::Call(c.clone()),
        SaleLink::Task(k) => ContactRef::Task(k.clone()),
    }
}

/// One evaluation of one contact by one evaluator on one form.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Evaluation {
    pub agent: Text,
    pub team: Text,
    pub queue: Text,
    pub score_centi: i64,
    pub ts_ms: i64,
}

/// The tags of one contact (a bit per [`Tag`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tagged {
    pub agent: Text,
    pub team: Text,
    pub queue: Text,
    pub tags: u8,
    pub ts_ms: i64,
}

/// Sums of QA scores (hundredths) in a ledger interval.
#[derive(Debug, Default, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QaSums {
    pub n: u64,
    pub sum: i64,
    pub sum_sq: i128,
}

impl QaSums {
    pub fn add(&mut self, centi: i64, sign: i64) {
        self.n = self.n.saturating_add_signed(sign);
        self.sum += sign * centi;
        self.sum_sq += sign as i128 * (centi as i128 * centi as i128);
    }

    pub fn merge(&mut self, o: &QaSums) {
        self.n += o.n;
        self.sum += o.sum;
        self.sum_sq += o.sum_sq;
    }
}

/// Coaching sums of tagged contacts (docs/quality.md): contacts with a
/// buying signal, those of them that sold, missed opportunities (of
/// those: tagged so, or without an offer and without a sale), offers
/// made and offers that sold.
#[derive(Debug, Default, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CoachSums {
    pub signals: u64,
    pub signals_sold: u64,
    pub missed: u64,
    pub offers: u64,
    pub offers_sold: u64,
}

impl CoachSums {
    /// What one contact with `tags` (bits) contributes.
    pub fn of(tags: u8, sold: bool) -> CoachSums {
        let has = |t: Tag| tags & t.bit() != 0;
        let signal = has(Tag::BuyingSignal);
        let offer = has(Tag::OfferMade);
        CoachSums {
            signals: signal as u64,
            signals_sold: (signal && sold) as u64,
            missed: (signal && (has(Tag::MissedOpportunity) || (!offer && !sold))) as u64,
            offers: offer as u64,
            offers_sold: (offer && sold) as u64,
        }
    }

    pub fn add(&mut self, o: &CoachSums, sign: i64) {
        let f = |a: &mut u64, b: u64| *a = a.saturating_add_signed(sign * b as i64);
        f(&mut self.signals, o.signals);
        f(&mut self.signals_sold, o.signals_sold);
        f(&mut self.missed, o.missed);
        f(&mut self.offers, o.offers);
        f(&mut self.offers_sold, o.offers_sold);
    }
}

/// (contact, form, evaluator): a second evaluation by the same evaluator
/// on the same form replaces the first (a correction); another
/// evaluator's is a second opinion and counts on its own.
pub type EvalKey = (ContactRef, Text, Text);

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Quality {
    pub register: Map<ContactRef, Handled>,
    pub evaluations: Map<EvalKey, Evaluation>,
    pub tags: Map<ContactRef, Tagged>,
    pub sales: Map<Text, QaSale>,
    /// The QA sample: once drawn, a contact stays in it.
    pub drawn: Map<ContactRef, Drawn>,
    /// When the sample is drawn next, on the event clock.
    pub next_draw_ms: i64,
    /// When retention runs next (hourly: the records live for days, and
    /// a pass over the register is not free).
    pub next_prune_ms: i64,
}

impl Quality {
    pub fn is_empty(&self) -> bool {
        self.register.is_empty()
            && self.evaluations.is_empty()
            && self.tags.is_empty()
            && self.sales.is_empty()
            && self.drawn.is_empty()
    }
}

fn off() -> Rejection {
    Rejection::new(
        Reason::InvalidValue,
        "quality management is off (quality.enabled = false)",
    )
}

impl Engine {
    /// Books a handled call or task into the register.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn register_contact(
        &mut self,
        c: ContactRef,
        kind: Text,
        agent: &Text,
        queue: &Text,
        t: i64,
        talk_ms: Option<i64>,
        customer: Option<Text>,
        live_sales: u32,
    ) {
        let s = &self.settings;
        if !s.quality.enabled {
            return;
        }
        if self.quality.register.len() >= s.quality.max_records
            && !self.quality.register.contains_key(&c)
        {
            // Bounded: the oldest go first at the next sweep; until then
            // new contacts are not registered (counted as refusals of
            // their evaluations later, with a clear reason).
            return;
        }
        let draw_key = s.quality.sample.secret.as_ref().map(|secret| {
            let tz = s.site_tz(&s.default_site);
            let (from, _) = super::window::period_bounds(
                s.quality.sample.period,
                t,
                tz,
                s.default_interval_ms(),
            );
            super::sample::draw_key(secret.as_bytes(), from, agent, &c)
        });
        self.quality.register.insert(
            c,
            Handled {
                agent: agent.clone(),
                queue: queue.clone(),
                handled_ms: t,
                kind,
                talk_ms,
                customer,
                live_sales,
                draw_key,
            },
        );
    }

    /// A sale on (or off) a registered contact: its live sales, and its
    /// coaching sums when it crosses between sold and not sold.
    pub(super) fn register_sale_link(&mut self, link: &SaleLink, delta: i32) {
        let c = contact_of_link(link);
        let Some(h) = self.quality.register.get_mut(&c) else {
            return;
        };
        let before = h.live_sales > 0;
        h.live_sales = h.live_sales.saturating_add_signed(delta);
        let after = h.live_sales > 0;
        if before != after {
            if let Some(tags) = self.quality.tags.get(&c).map(|t| t.tags) {
                self.rebook_coaching(&c, (tags, before), (tags, after));
            }
        }
    }

    /// Books a sale for the integrity signals.
    pub(super) fn register_sale(
        &mut self,
        sale: &Text,
        agent: &Text,
        team: &Text,
        link: Option<&SaleLink>,
        kind: SaleKind,
        t: i64,
    ) {
        let s = &self.settings;
        if !s.quality.enabled || self.quality.sales.len() >= s.quality.max_records {
            return;
        }
        let outside_login = self
            .agents
            .get(agent)
            .is_none_or(|a| a.status == AgentStatus::Offline);
        self.quality.sales.insert(
            sale.clone(),
            QaSale {
                agent: agent.clone(),
                team: team.clone(),
                ts_ms: t,
                kind,
                contact: link.map(contact_of_link),
                outside_login,
                cancelled: false,
            },
        );
    }

    /// Who handled `c`, and in which queue: from the register, or the
    /// sale itself.
    fn handled(&self, c: &ContactRef) -> Result<(Text, Text), Rejection> {
        if let Some(h) = self.quality.register.get(c) {
            return Ok((h.agent.clone(), h.queue.clone()));
        }
        let (reason, what) = match c {
            ContactRef::Sale(id) => {
                return self
                    .sales
                    .get(id)
                    .map(|s| (s.agent.clone(), s.queue.clone()))
                    .ok_or_else(|| {
                        Rejection::new(Reason::UnknownSale, format!("sale {id:?} is not known"))
                    })
            }
            ContactRef::Call(_) => (Reason::UnknownCall, "call"),
            ContactRef::Task(_) => (Reason::UnknownTask, "task"),
        };
        let id = c.id();
        let live = match c {
            // A call in wrap-up is handled: only talking or waiting is not.
            ContactRef::Call(x) => self
                .calls
                .get(x)
                .is_some_and(|c| !matches!(c.phase, super::CallPhase::Wrap { .. })),
            ContactRef::Task(x) => self.tasks.get(x).is_some(),
            ContactRef::Sale(_) => false,
        };
        Err(if live {
            Rejection::new(
                Reason::InvalidTransition,
                format!("{what} {id:?} is not handled yet (a call is handled when it ends, a task when it is completed)"),
            )
        } else {
            Rejection::new(
                reason,
                format!(
                    "{what} {id:?} is not a handled contact of the last {} (quality.retention)",
                    humantime_serde::re::humantime::format_duration(
                        std::time::Duration::from_millis(
                            self.settings.quality.retention_ms.max(0) as u64
                        )
                    )
                ),
            )
        })
    }

    /// The contact's agent and queue, checked against the event's agent.
    fn contact_of(&self, c: &ContactRef, agent: &Text) -> Result<(Text, Text), Rejection> {
        let (handler, queue) = self.handled(c)?;
        if handler != *agent {
            return Err(Rejection::new(
                Reason::InvalidValue,
                format!(
                    "{} {:?} was handled by {handler:?}, not {agent:?}",
                    c.kind(),
                    c.id()
                ),
            ));
        }
        Ok((handler, queue))
    }

    pub fn team_of(&self, agent: &Text) -> Text {
        self.agents
            .get(agent)
            .map(|a| a.team.clone())
            .unwrap_or_else(|| Text::from(NO_TEAM))
    }

    pub(super) fn qa_scored(
        &mut self,
        t: i64,
        contact: &ContactRef,
        agent: &Text,
        evaluator: &Text,
        form: &Text,
        score: f64,
    ) -> Result<(), Rejection> {
        if !self.settings.quality.enabled {
            return Err(off());
        }
        let (agent, queue) = self.contact_of(contact, agent)?;
        let key: EvalKey = (contact.clone(), form.clone(), evaluator.clone());
        let old = self.quality.evaluations.get(&key).cloned();
        if old.is_none() && self.quality.evaluations.len() >= self.settings.quality.max_records {
            return Err(limit("QA evaluations", self.settings.quality.max_records));
        }
        // Checked: from here on nothing fails.
        let centi = (score * 100.0).round() as i64;
        if let Some(o) = &old {
            if let Some(q) = self.queues.get_mut(&o.queue) {
                if let Some(slot) = q.ledger.get_mut(o.ts_ms, q.params.interval_ms) {
                    slot.qa.add(o.score_centi, -1);
                }
            }
        }
        if let Some(q) = self.queues.get_mut(&queue) {
            q.slot(t).qa.add(centi, 1);
        }
        let team = self.team_of(&agent);
        if let Some(d) = self.quality.drawn.get_mut(contact) {
            d.evaluated_ms.get_or_insert(t);
        }
        self.quality.evaluations.insert(
            key,
            Evaluation {
                agent,
                team,
                queue,
                score_centi: centi,
                ts_ms: t,
            },
        );
        Ok(())
    }

    pub(super) fn contact_tagged(
        &mut self,
        t: i64,
        contact: &ContactRef,
        agent: &Text,
        tags: &[Tag],
    ) -> Result<(), Rejection> {
        if !self.settings.quality.enabled {
            return Err(off());
        }
        let (agent, queue) = self.contact_of(contact, agent)?;
        let bits = tags.iter().fold(0u8, |b, t| b | t.bit());
        if !self.quality.tags.contains_key(contact)
            && self.quality.tags.len() >= self.settings.quality.max_records
        {
            return Err(limit("tagged contacts", self.settings.quality.max_records));
        }
        let team = self.team_of(&agent);
        let e = self
            .quality
            .tags
            .entry(contact.clone())
            .or_insert_with(|| Tagged {
                agent,
                team,
                queue,
                tags: 0,
                ts_ms: t,
            });
        let old = e.tags;
        e.tags |= bits;
        e.ts_ms = e.ts_ms.max(t);
        let new = e.tags;
        let sold = self
            .quality
            .register
            .get(contact)
            .is_some_and(|h| h.live_sales > 0);
        self.rebook_coaching(contact, (old, sold), (new, sold));
        Ok(())
    }

    /// The integrity flags of one sale (docs/quality.md).
    pub fn sale_flags(&self, x: &QaSale) -> Vec<SaleFlag> {
        let mut out = Vec::new();
        let contact = x
            .contact
            .as_ref()
            .and_then(|k| self.quality.register.get(k));
        match contact {
            Some(h) if h.agent != x.agent => out.push(SaleFlag::Foreign(Some(h.agent.clone()))),
            None => out.push(SaleFlag::Foreign(None)),
            Some(_) => {}
        }
        if let Some(talk) = contact.and_then(|h| h.talk_ms) {
            if talk < self.settings.quality.short_contact_ms {
                out.push(SaleFlag::Short(talk));
            }
        }
        if x.outside_login {
            out.push(SaleFlag::OutsideLogin);
        }
        out
    }

    /// Pairs of (not cancelled) sales, in time order, to one customer
    /// within `quality.repeat_window`: (earlier, later) sale ids.
    pub fn repeat_pairs<'a>(&'a self, sales: &[(&'a str, &'a QaSale)]) -> Vec<(&'a str, &'a str)> {
        let mut by: std::collections::BTreeMap<&str, Vec<(&str, &QaSale)>> = Default::default();
        for (id, x) in sales.iter().filter(|(_, x)| !x.cancelled) {
            let cust = x
                .contact
                .as_ref()
                .and_then(|k| self.quality.register.get(k))
                .and_then(|h| h.customer.as_deref());
            if let Some(c) = cust {
                by.entry(c).or_default().push((id, x));
            }
        }
        let mut out = Vec::new();
        for list in by.values_mut() {
            list.sort_by(|a, b| (a.1.ts_ms, a.0).cmp(&(b.1.ts_ms, b.0)));
            for w in list.windows(2) {
                if w[1].1.ts_ms - w[0].1.ts_ms <= self.settings.quality.repeat_window_ms {
                    out.push((w[0].0, w[1].0));
                }
            }
        }
        out
    }

    /// Adds the QA scores `agent` was given in `[from, to)` to `sums`.
    pub fn qa_sums_of(&self, agent: &str, from: i64, to: i64, sums: &mut QaSums) {
        for e in self
            .quality
            .evaluations
            .values()
            .filter(|e| e.agent == agent && (from..to).contains(&e.ts_ms))
        {
            sums.add(e.score_centi, 1);
        }
    }

    /// Moves a tagged contact's coaching sums in its queue's ledger (the
    /// interval it was handled in) from `old` to `new` (tags, sold).
    pub(super) fn rebook_coaching(&mut self, c: &ContactRef, old: (u8, bool), new: (u8, bool)) {
        let (a, b) = (CoachSums::of(old.0, old.1), CoachSums::of(new.0, new.1));
        if a == b {
            return;
        }
        let Some(h) = self.quality.register.get(c) else {
            return;
        };
        let (queue, at) = (h.queue.clone(), h.handled_ms);
        if let Some(q) = self.queues.get_mut(&queue) {
            if let Some(slot) = q.ledger.get_mut(at, q.params.interval_ms) {
                slot.coach.add(&a, -1);
                slot.coach.add(&b, 1);
            } else if old.0 == 0 {
                q.slot(at).coach.add(&b, 1);
            }
        }
    }

    /// Adds the coaching sums of `agent`'s contacts handled in
    /// `[from, to)` to `sums`.
    pub fn coach_sums_of(&self, agent: &str, from: i64, to: i64, sums: &mut CoachSums) {
        for (c, t) in self.quality.tags.iter().filter(|(_, t)| t.agent == agent) {
            if let Some(h) = self.quality.register.get(c) {
                if (from..to).contains(&h.handled_ms) {
                    sums.add(&CoachSums::of(t.tags, h.live_sales > 0), 1);
                }
            }
        }
    }

    /// Forgets what is older than `quality.retention` (part of `sweep`).
    pub(super) fn sweep_quality(&mut self, now_ms: i64) {
        const HOUR: i64 = 3_600_000;
        if now_ms < self.quality.next_prune_ms {
            return;
        }
        self.quality.next_prune_ms = (now_ms.div_euclid(HOUR) + 1) * HOUR;
        let keep = self.settings.quality.retention_ms;
        let q = &mut self.quality;
        q.register
            .retain(|_, h| now_ms.saturating_sub(h.handled_ms) <= keep);
        q.evaluations
            .retain(|_, e| now_ms.saturating_sub(e.ts_ms) <= keep);
        q.tags.retain(|_, e| now_ms.saturating_sub(e.ts_ms) <= keep);
        q.sales
            .retain(|_, e| now_ms.saturating_sub(e.ts_ms) <= keep);
    }
}
