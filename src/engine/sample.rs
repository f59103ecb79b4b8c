//! The QA sample: per agent and period, a stratified random draw of the
//! handled contacts for review that nobody can cherry-pick, plus every
//! contact an integrity signal points at (docs/quality.md).
//!
//! Reproducible and tamper-evident: each contact's place in the draw is
//! HMAC-SHA-256(`quality.sample.secret`, period start, agent, contact),
//! so an auditor with the configuration and the events redraws the same
//! sample, and nobody without the secret can predict which contact will
//! be drawn. Once drawn, a contact stays drawn (the set only grows).
//!
//! The draw runs inside `apply` every 15 minutes of event time (like
//! retention), so replicas and replays draw the same contacts after the
//! same events. It is paced: at a fraction f of the period, the target is
//! f × the period's size, so the sample is spread over the whole period
//! instead of taking the first contacts.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use statrs::distribution::{ContinuousCDF, Normal};

use super::qa::Drawn;
use super::Engine;
use crate::event::{ContactRef, Text};

/// How often the sample is drawn, in event time.
pub const DRAW_EVERY_MS: i64 = 15 * 60_000;

/// The sample size for `population` contacts: the configured minimum, or
/// enough to estimate a mean score to ± `margin` at `confidence` for
/// scores of standard deviation `sd` (with the finite-population
/// correction), whichever is more; never more than the population.
///
/// n₀ = (z · sd / margin)², n = n₀ / (1 + (n₀ − 1) / N).
pub fn size(population: u64, min: u32, margin: f64, sd: f64, confidence: f64) -> u64 {
    if population == 0 {
        return 0;
    }
    let z = Normal::new(0.0, 1.0).map_or(1.96, |d| d.inverse_cdf(1.0 - (1.0 - confidence) / 2.0));
    let n0 = (z * sd / margin).powi(2);
    let n = n0 / (1.0 + (n0 - 1.0) / population as f64);
    (n.ceil() as u64).max(min as u64).min(population)
}

/// Shares `n` out over strata of the given sizes in proportion (largest
/// remainder, ties to the earlier stratum), each at most its size.
pub fn allocate(sizes: &[u64], n: u64) -> Vec<u64> {
    let total: u64 = sizes.iter().sum();
    if total == 0 {
        return vec![0; sizes.len()];
    }
    let n = n.min(total);
    let exact: Vec<f64> = sizes
        .iter()
        .map(|s| n as f64 * *s as f64 / total as f64)
        .collect();
    let mut out: Vec<u64> = exact.iter().map(|x| x.floor() as u64).collect();
    let mut left = n - out.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.partial_cmp(&ra)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    for i in order {
        if left == 0 {
            break;
        }
        if out[i] < sizes[i] {
            out[i] += 1;
            left -= 1;
        }
    }
    out
}

/// The contact's place in the draw.
pub fn draw_key(secret: &[u8], period_ms: i64, agent: &str, c: &ContactRef) -> u64 {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return u64::MAX;
    };
    mac.update(&period_ms.to_le_bytes());
    mac.update(agent.as_bytes());
    mac.update(&[0]);
    mac.update(c.kind().as_bytes());
    mac.update(&[0]);
    mac.update(c.id().as_bytes());
    let tag = mac.finalize().into_bytes();
    let mut b = [0u8; 8];
    b.copy_from_slice(&tag[..8]);
    u64::from_be_bytes(b)
}

/// A contact's stratum: its type and whether it sold.
pub fn stratum(kind: &str, sold: bool) -> String {
    format!("{kind}/{}", if sold { "sale" } else { "no_sale" })
}

impl Engine {
    /// Draws the QA sample of the current period (part of `apply`).
    pub(super) fn draw_samples(&mut self, now_ms: i64) {
        let q = &self.settings.quality;
        let Some(secret) = q.sample.secret.clone().filter(|_| q.enabled) else {
            return;
        };
        if now_ms < self.quality.next_draw_ms {
            return;
        }
        self.quality.next_draw_ms = (now_ms.div_euclid(DRAW_EVERY_MS) + 1) * DRAW_EVERY_MS;
        let sm = q.sample.clone();
        let confidence = q.confidence;
        let min_ms = sm.min_duration.as_millis() as i64;
        let tz = self.settings.site_tz(&self.settings.default_site);
        let (from, to) = super::window::period_bounds(
            sm.period,
            now_ms,
            tz,
            self.settings.default_interval_ms(),
        );
        let pace = ((now_ms - from) as f64 / (to - from).max(1) as f64).clamp(0.0, 1.0);
        // Every contact a per-sale signal points at, drawn as such.
        let mut flagged: Vec<(ContactRef, &'static str)> = Vec::new();
        let sales: Vec<(&str, &super::qa::QaSale)> = self
            .quality
            .sales
            .iter()
            .filter(|(_, x)| (from..to).contains(&x.ts_ms))
            .map(|(id, x)| (id.as_str(), x))
            .collect();
        for (_, x) in &sales {
            if let (Some(c), Some(f)) = (&x.contact, self.sale_flags(x).first()) {
                flagged.push((c.clone(), f.signal()));
            }
        }
        for (_, b) in self.repeat_pairs(&sales) {
            if let Some(c) = self.quality.sales.get(b).and_then(|x| x.contact.clone()) {
                flagged.push((c, "repeat_customer"));
            }
        }
        // The period's eligible contacts per agent, by stratum.
        type Pool = std::collections::BTreeMap<String, Vec<(u64, ContactRef)>>;
        let mut pools: std::collections::BTreeMap<Text, Pool> = Default::default();
        for (c, h) in self.quality.register.iter() {
            if !(from..to).contains(&h.handled_ms) || h.talk_ms.is_some_and(|t| t < min_ms) {
                continue;
            }
            // Keyed when registered, in the period it was handled in.
            let key = h
                .draw_key
                .unwrap_or_else(|| draw_key(secret.as_bytes(), from, &h.agent, c));
            pools
                .entry(h.agent.clone())
                .or_default()
                .entry(stratum(&h.kind, h.live_sales > 0))
                .or_default()
                .push((key, c.clone()));
        }
        let evaluated: std::collections::HashMap<&ContactRef, i64> = self
            .quality
            .evaluations
            .iter()
            .fold(Default::default(), |mut m, ((c, _, _), e)| {
                let t = m.entry(c).or_insert(e.ts_ms);
                *t = (*t).min(e.ts_ms);
                m
            });
        let mut add: Vec<(ContactRef, Drawn)> = Vec::new();
        for (c, why) in flagged {
            if self.quality.drawn.contains_key(&c) || add.iter().any(|(x, _)| *x == c) {
                continue;
            }
            if let Some(h) = self.quality.register.get(&c) {
                let evaluated_ms = evaluated.get(&c).copied();
                add.push((
                    c,
                    Drawn {
                        agent: h.agent.clone(),
                        team: self.team_of(&h.agent),
                        period_ms: from,
                        stratum: Text::from(stratum(&h.kind, h.live_sales > 0)),
                        reason: Text::from(why),
                        drawn_ms: now_ms,
                        evaluated_ms,
                    },
                ));
            }
        }
        for (agent, strata) in pools.iter_mut() {
            let sizes: Vec<u64> = strata.values().map(|v| v.len() as u64).collect();
            let population: u64 = sizes.iter().sum();
            let n = size(
                population,
                sm.min_per_agent,
                sm.margin,
                sm.assumed_sd,
                confidence,
            );
            let target = ((n as f64) * pace).ceil() as u64;
            let per = allocate(&sizes, target);
            for ((name, pool), want) in strata.iter_mut().zip(per) {
                let have = pool
                    .iter()
                    .filter(|(_, c)| {
                        self.quality
                            .drawn
                            .get(c)
                            .is_some_and(|d| d.period_ms == from && d.reason == "random")
                    })
                    .count() as u64;
                if have >= want {
                    continue;
                }
                pool.sort_unstable();
                let mut need = want - have;
                for (_, c) in pool.iter() {
                    if need == 0 {
                        break;
                    }
                    if self.quality.drawn.contains_key(c) || add.iter().any(|(x, _)| x == c) {
                        continue;
                    }
                    add.push((
                        c.clone(),
                        Drawn {
                            agent: agent.clone(),
                            team: self.team_of(agent),
                            period_ms: from,
                            stratum: Text::from(name.as_str()),
                            reason: Text::from("random"),
                            drawn_ms: now_ms,
                            evaluated_ms: evaluated.get(c).copied(),
                        },
                    ));
                    need -= 1;
                }
            }
        }
        if !add.is_empty() {
            self.version += 1;
        }
        for (c, d) in add {
            self.quality.drawn.insert(c, d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_size_formula() {
        // z(0.975) = 1.95996; n0 = (1.96 * 10 / 5)^2 = 15.37; with
        // N = 200: 15.37 / (1 + 14.37 / 200) = 14.34, so 15.
        assert_eq!(size(200, 4, 5.0, 10.0, 0.95), 15);
        assert_eq!(size(3, 4, 5.0, 10.0, 0.95), 3, "never more than there are");
        assert_eq!(size(1000, 30, 5.0, 10.0, 0.95), 30, "the minimum wins");
        assert_eq!(size(0, 4, 5.0, 10.0, 0.95), 0);
    }

    #[test]
    fn allocation_is_proportional_and_adds_up() {
        assert_eq!(allocate(&[60, 30, 10], 10), [6, 3, 1]);
        assert_eq!(allocate(&[5, 5, 5], 4), [2, 1, 1]);
        assert_eq!(allocate(&[1, 0, 9], 20), [1, 0, 9]);
        let a = allocate(&[7, 13, 2, 50], 9);
        assert_eq!(a.iter().sum::<u64>(), 9);
    }
}
