//! Sales and their cancellation.
//!
//! Revenue = quantity × unit_price; incremental revenue = revenue −
//! previous_value (negative for a downgrade). Totals only grow: a
//! cancellation is counted separately, so net revenue is
//! `revenue_total − revenue_cancelled_total`. "Today" figures are net.
//! Conversion is booked on the contact the sale links to (a call or a
//! task), to the agent who handled that contact.

use super::call::Contact;
use super::room::Room;
use super::Engine;
use crate::config::NO_QUEUE;
use crate::event::{SaleKind, SaleLink, Text};
use crate::money::Money;
use crate::reject::{Reason, Rejection};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SaleRecord {
    pub agent: Text,
    pub team: Text,
    pub queue: Text,
    pub kind: SaleKind,
    pub revenue: Money,
    pub incremental: Money,
    pub ts_ms: i64,
    pub link: Option<SaleLink>,
    pub cancelled: bool,
}

impl Engine {
    fn contact_mut(&mut self, link: &SaleLink) -> Option<(&mut Contact, Text)> {
        match link {
            SaleLink::Call(c) => {
                if let Some(call) = self.calls.get_mut(c) {
                    return Some((&mut call.contact, call.queue.clone()));
                }
                self.ended_calls
                    .get_mut(c)
                    .map(|e| (&mut e.contact, e.queue.clone()))
            }
            SaleLink::Task(k) => {
                if let Some(task) = self.tasks.get_mut(k) {
                    return Some((&mut task.contact, task.queue.clone()));
                }
                self.closed_tasks
                    .get_mut(k)
                    .map(|e| (&mut e.contact, e.queue.clone()))
            }
        }
    }

    /// Adds `delta` live sales to the linked contact and books a change
    /// in conversion when the contact crosses zero.
    fn link_sales(&mut self, link: &SaleLink, delta: i32) {
        // The QA register outlives the engine's own memory of the contact.
        if self.settings.quality.enabled {
            self.register_sale_link(link, delta);
        }
        let Some((contact, queue)) = self.contact_mut(link) else {
            return;
        };
        let before = contact.live_sales;
        contact.live_sales = before.saturating_add_signed(delta);
        let after = contact.live_sales;
        if let (Some(agent), Some(handled)) = (contact.agent.clone(), contact.handled_ms) {
            if before == 0 && after > 0 {
                self.conversion_changed(&agent, &queue, handled, 1);
            } else if before > 0 && after == 0 {
                self.conversion_changed(&agent, &queue, handled, -1);
            }
        }
    }

    /// The queue a sale's link books it to, or why the link is unknown.
    fn link_queue(&self, link: &SaleLink) -> Result<Text, Rejection> {
        let q = match link {
            SaleLink::Call(c) => self
                .calls
                .get(c)
                .map(|x| &x.queue)
                .or_else(|| self.ended_calls.get(c).map(|e| &e.queue)),
            SaleLink::Task(k) => self
                .tasks
                .get(k)
                .map(|x| &x.queue)
                .or_else(|| self.closed_tasks.get(k).map(|e| &e.queue)),
        };
        q.cloned().ok_or_else(|| match link {
            SaleLink::Call(c) => Rejection::new(
                Reason::UnknownCall,
                format!("sale links to call {c:?}, which is not known"),
            ),
            SaleLink::Task(k) => Rejection::new(
                Reason::UnknownTask,
                format!("sale links to task {k:?}, which is not known"),
            ),
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn sale(
        &mut self,
        t: i64,
        site: Option<&Text>,
        sale: &Text,
        agent: &Text,
        link: Option<&SaleLink>,
        kind: SaleKind,
        revenue: Money,
        previous: Money,
        currency: Option<&Text>,
    ) -> Result<(), Rejection> {
        if self.sales.contains_key(sale) {
            return Err(Rejection::new(
                Reason::InvalidTransition,
                format!("sale {sale:?} is already recorded"),
            ));
        }
        if let Some(c) = currency {
            if c.as_str() != self.settings.currency {
                return Err(Rejection::new(
                    Reason::CurrencyMismatch,
                    format!(
                        "sale in {c:?}, but this desk counts in {:?} (sales.currency)",
                        self.settings.currency
                    ),
                ));
            }
        }
        let queue = match link {
            None => Text::from(NO_QUEUE),
            Some(l) => self.link_queue(l)?,
        };
        let mut room = Room::default();
        self.agent_room(&mut room, agent, site, None, None);
        self.queue_room(&mut room, &queue, site);
        // Everything is checked: from here on nothing can fail.
        self.make(room, t)?;
        let incremental = revenue.saturating_sub(previous);
        let team = match self.agents.get_mut(agent) {
            Some(a) => {
                a.sales.add(kind, revenue, incremental);
                a.team.clone()
            }
            None => Text::from(super::NO_TEAM),
        };
        if let Some(tm) = self.teams.get_mut(&team) {
            tm.sales.add(kind, revenue, incremental);
        }
        if let Some(q) = self.queues.get_mut(&queue) {
            q.sales.add(kind, revenue, incremental);
        }
        self.tally_days(agent, &queue, t, |d| d.sold(revenue, incremental));
        if let Some(l) = link {
            self.link_sales(l, 1);
        }
        self.register_sale(sale, agent, &team, link, kind, t);
        self.sales.insert(
            sale.clone(),
            SaleRecord {
                agent: agent.clone(),
                team,
                queue,
                kind,
                revenue,
                incremental,
                ts_ms: t,
                link: link.cloned(),
                cancelled: false,
            },
        );
        Ok(())
    }

    pub(super) fn sale_cancelled(&mut self, sale: &Text) -> Result<(), Rejection> {
        let r = self.sales.get_mut(sale).ok_or_else(|| {
            Rejection::new(
                Reason::UnknownSale,
                format!("sale {sale:?} is not known (or older than retention.sales)"),
            )
        })?;
        if r.cancelled {
            return Err(Rejection::new(
                Reason::InvalidTransition,
                format!("sale {sale:?} is already cancelled"),
            ));
        }
        r.cancelled = true;
        let r = r.clone();
        if let Some(a) = self.agents.get_mut(&r.agent) {
            a.sales.cancel(r.revenue);
        }
        if let Some(tm) = self.teams.get_mut(&r.team) {
            tm.sales.cancel(r.revenue);
        }
        if let Some(q) = self.queues.get_mut(&r.queue) {
            q.sales.cancel(r.revenue);
        }
        // Today's net figures change only if the sale was made today.
        self.tally_days(&r.agent, &r.queue, r.ts_ms, |d| {
            d.unsold(r.revenue, r.incremental)
        });
        if let Some(l) = &r.link {
            self.link_sales(l, -1);
        }
        if let Some(q) = self.quality.sales.get_mut(sale) {
            q.cancelled = true;
        }
        Ok(())
    }
}
