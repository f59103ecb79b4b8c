//! A team: the unit a team lead steers, and the smallest group the
//! wallboard shows figures for.

use chrono_tz::Tz;

use super::tally::{DayTally, SalesTotals};
use super::window::Daily;
use crate::event::Text;

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Team {
    pub site: Text,
    pub sales: SalesTotals,
    pub today: Daily<DayTally>,
}

impl Team {
    pub fn new(site: Text) -> Team {
        Team {
            site,
            ..Team::default()
        }
    }

    /// Today's tally for an event at `t`, given the team's time zone.
    pub fn day(&mut self, t: i64, tz: Tz) -> Option<&mut DayTally> {
        self.today.at_mut(t, tz)
    }
}
