//! Who sees what: read roles, pseudonyms, and the redaction rules that
//! apply alike to the API, the feed and the wallboard.
//!
//! German works councils co-determine technical monitoring of employees
//! (BetrVG §87(1)6), so the lawful setup must be the easy one: the
//! `wallboard` role (the TV on the floor) sees agents only as configured
//! (names, pseudonyms or not at all), never a customer reference, per-agent
//! sales only when allowed, and team figures only for teams of at least
//! `min_group_size` agents. The `supervisor` role sees everything.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::{AgentDisplay, AuthConfig, PrivacyConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Wallboard,
    Supervisor,
}

/// A token that matches no configured role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unauthorized;

fn matches(given: &[u8], configured: &Option<String>) -> bool {
    configured
        .as_deref()
        .is_some_and(|t| bool::from(given.ct_eq(t.as_bytes())))
}

/// The role of a read request. A given token must match a configured
/// one; without a token the request gets `privacy.anonymous_role`, unless
/// a read token is configured (then it must authenticate).
pub fn resolve(
    token: Option<&[u8]>,
    auth: &AuthConfig,
    p: &PrivacyConfig,
) -> Result<Role, Unauthorized> {
    match token {
        Some(t) if matches(t, &auth.supervisor_token) || matches(t, &auth.read_token) => {
            Ok(Role::Supervisor)
        }
        Some(t) if matches(t, &auth.wallboard_token) => Ok(Role::Wallboard),
        Some(_) => Err(Unauthorized),
        None if auth.read_token.is_some() => Err(Unauthorized),
        None => Ok(p.anonymous_role),
    }
}

/// Redaction rules resolved from the configuration.
#[derive(Clone)]
pub struct Privacy {
    pub agents: AgentDisplay,
    pub agent_sales: bool,
    pub min_group_size: u64,
    key: Vec<u8>,
    period_days: i64,
}

impl std::fmt::Debug for Privacy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Privacy")
            .field("agents", &self.agents)
            .finish()
    }
}

impl Privacy {
    pub fn new(p: &PrivacyConfig) -> Privacy {
        let key = match &p.pseudonym_key {
            Some(k) => k.as_bytes().to_vec(),
            None => {
                // A key per process start: pseudonyms stay stable until a
                // restart. Configure one to keep them stable across restarts.
                let mut k = [0u8; 32];
                rand::fill(&mut k);
                k.to_vec()
            }
        };
        Privacy {
            agents: p.wallboard_agents,
            agent_sales: p.wallboard_agent_sales,
            min_group_size: p.min_group_size,
            key,
            period_days: p.pseudonym_period_days.max(1) as i64,
        }
    }

    /// A stable, non-reversible pseudonym of an agent for the period that
    /// contains `now_ms` (HMAC-SHA-256 of the period and the agent id).
    pub fn pseudonym(&self, agent: &str, now_ms: i64) -> String {
        let period = now_ms.div_euclid(self.period_days * 86_400_000);
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return "Agent".into();
        };
        mac.update(&period.to_le_bytes());
        mac.update(agent.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("Agent {:02X}{:02X}{:02X}", tag[0], tag[1], tag[2])
    }
}
