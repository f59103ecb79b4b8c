//! The wallboard page: the static assets, with the configuration's
//! display settings (locale, currency, the default site and each site's
//! time zone) written into the page's root element once at start-up, so
//! the page needs no second request to format a number.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::sheet::esc;

const PAGE: &str = include_str!("../assets/wallboard.html");
pub const SCRIPT: &str = include_str!("../assets/wallboard.js");
pub const STYLE: &str = include_str!("../assets/wallboard.css");

/// The page for `c` (a validated configuration).
pub fn page(c: &Config) -> String {
    let mut zones: BTreeMap<&str, String> = c
        .sites
        .iter()
        .map(|(name, s)| {
            (
                name.as_str(),
                s.timezone.unwrap_or(c.defaults.timezone).name().to_string(),
            )
        })
        .collect();
    zones
        .entry(c.defaults.site.as_str())
        .or_insert_with(|| c.defaults.timezone.name().to_string());
    let locale = &c.wallboard.locale;
    let lang = locale.split('-').next().unwrap_or("en");
    let attrs = format!(
        r#"lang="{}" data-locale="{}" data-currency="{}" data-site="{}" data-timezones="{}" data-peers="{}""#,
        esc(lang),
        esc(locale),
        esc(&c.sales.currency),
        esc(&c.defaults.site),
        esc(&serde_json::to_string(&zones).unwrap_or_default()),
        esc(&serde_json::to_string(&c.wallboard.peers).unwrap_or_default()),
    );
    PAGE.replacen("<html>", &format!("<html {attrs}>"), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_carries_the_display_settings() {
        let c = Config::parse(
            "[wallboard]\nlocale = \"en-GB\"\n[sales]\ncurrency = \"GBP\"\n\
             [defaults]\nsite = \"hq\"\ntimezone = \"Europe/London\"\n\
             [sites.hq]\n[sites.far]\ntimezone = \"Asia/Tokyo\"\n",
            "t.toml",
        )
        .expect("parses");
        let p = page(&c);
        assert!(
            p.contains(r#"<html lang="en" data-locale="en-GB" data-currency="GBP" data-site="hq""#),
            "{}",
            &p[..300]
        );
        assert!(
            p.contains("&quot;far&quot;:&quot;Asia/Tokyo&quot;")
                && p.contains("&quot;hq&quot;:&quot;Europe/London&quot;"),
            "{}",
            &p[..400]
        );
    }
}
