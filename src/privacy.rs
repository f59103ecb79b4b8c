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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn privacy(key: &str, days: u32) -> Privacy {
        Privacy::new(&PrivacyConfig {
            pseudonym_key: Some(key.into()),
            pseudonym_period_days: days,
            ..PrivacyConfig::default()
        })
    }

    #[test]
    fn pseudonyms_are_stable_within_a_period_and_keyed() {
        let day = 86_400_000;
        let p = privacy("0123456789abcdef-key", 1);
        let t = 20_000 * day + 1000;
        let a = p.pseudonym("agent-7", t);
        assert!(a.starts_with("Agent ") && a.len() == 12, "{a}");
        assert_eq!(
            a,
            p.pseudonym("agent-7", t + day / 2),
            "same day, same pseudonym"
        );
        assert_ne!(a, p.pseudonym("agent-7", t + day), "next day, another");
        assert_ne!(a, p.pseudonym("agent-8", t), "another agent, another");
        assert_ne!(
            a,
            privacy("another-key-0123456", 1).pseudonym("agent-7", t),
            "not reproducible without the key"
        );
        let week = privacy("0123456789abcdef-key", 7);
        let start = 20_000 / 7 * 7 * day;
        assert_eq!(
            week.pseudonym("agent-7", start),
            week.pseudonym("agent-7", start + 6 * day)
        );
    }

    #[test]
    fn roles_follow_tokens() {
        let auth = AuthConfig {
            wallboard_token: Some("wallboard-token-123".into()),
            supervisor_token: Some("supervisor-token-12".into()),
            ..AuthConfig::default()
        };
        let p = PrivacyConfig::default();
        assert_eq!(
            resolve(Some(b"wallboard-token-123"), &auth, &p),
            Ok(Role::Wallboard)
        );
        assert_eq!(
            resolve(Some(b"supervisor-token-12"), &auth, &p),
            Ok(Role::Supervisor)
        );
        assert_eq!(resolve(Some(b"guess"), &auth, &p), Err(Unauthorized));
        assert_eq!(
            resolve(None, &auth, &p),
            Ok(Role::Wallboard),
            "anonymous_role"
        );
        let locked = AuthConfig {
            read_token: Some("read-token-1234567".into()),
            ..auth
        };
        assert_eq!(resolve(None, &locked, &p), Err(Unauthorized));
    }
}
