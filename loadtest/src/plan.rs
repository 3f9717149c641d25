//! How many requests each phase sends and how many at a time: the seed's scenario
//! presets, overridden by explicit flags.

use anyhow::bail;
use serde::Serialize;

/// Request counts and concurrency of the create and list phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub creates: usize,
    pub create_concurrency: usize,
    pub lists: usize,
    pub list_concurrency: usize,
}

/// Scenario 1, also the plan when no scenario is named.
pub const DEFAULT_SCENARIO: u8 = 1;

/// What the command line says about the plan; `None` leaves the preset's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    pub creates: Option<usize>,
    pub create_concurrency: Option<usize>,
    pub lists: Option<usize>,
    pub list_concurrency: Option<usize>,
    /// `--skip-lists`: the same as `--lists 0`.
    pub skip_lists: bool,
}

impl Plan {
    /// The seed's scenarios: (1) 500 creates at 10, 1000 lists at 20; (2) 200 at 20,
    /// 400 at 40; (3) 400 at 100, 600 at 120.
    pub const fn preset(scenario: u8) -> Option<Plan> {
        let (creates, create_concurrency, lists, list_concurrency) = match scenario {
            1 => (500, 10, 1000, 20),
            2 => (200, 20, 400, 40),
            3 => (400, 100, 600, 120),
            _ => return None,
        };
        Some(Plan { creates, create_concurrency, lists, list_concurrency })
    }

    /// The scenario's preset (scenario 1 when none is named) with the explicit flags
    /// applied over it. Counts may be 0 (the phase is skipped); concurrency may not.
    pub fn resolve(scenario: Option<u8>, overrides: Overrides) -> anyhow::Result<Plan> {
        let scenario = scenario.unwrap_or(DEFAULT_SCENARIO);
        let Some(preset) = Plan::preset(scenario) else {
            bail!("unknown scenario {scenario}; expected 1, 2 or 3");
        };
        let plan = Plan {
            creates: overrides.creates.unwrap_or(preset.creates),
            create_concurrency: overrides.create_concurrency.unwrap_or(preset.create_concurrency),
            lists: if overrides.skip_lists { 0 } else { overrides.lists.unwrap_or(preset.lists) },
            list_concurrency: overrides.list_concurrency.unwrap_or(preset.list_concurrency),
        };
        if plan.create_concurrency == 0 || plan.list_concurrency == 0 {
            bail!("concurrency must be at least 1");
        }
        Ok(plan)
    }
}

/// Parses an `http(s)://` base URL for clap, without its trailing slashes.
pub fn http_url(raw: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("expected an http:// or https:// URL with a host".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("a base URL takes no query or fragment".into());
    }
    Ok(raw.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_the_seed_scenarios() {
        let counts = |s| Plan::preset(s).map(|p| (p.creates, p.create_concurrency, p.lists, p.list_concurrency));
        assert_eq!(counts(1), Some((500, 10, 1000, 20)));
        assert_eq!(counts(2), Some((200, 20, 400, 40)));
        assert_eq!(counts(3), Some((400, 100, 600, 120)));
        assert_eq!(counts(4), None);
        assert_eq!(counts(0), None);
    }

    #[test]
    fn no_scenario_and_no_flags_is_scenario_one() {
        assert_eq!(Plan::resolve(None, Overrides::default()).ok(), Plan::preset(1));
    }

    #[test]
    fn explicit_flags_override_the_preset() {
        let overrides = Overrides { creates: Some(7), list_concurrency: Some(3), ..Overrides::default() };
        let plan = Plan::resolve(Some(3), overrides).expect("valid plan");
        assert_eq!(plan, Plan { creates: 7, create_concurrency: 100, lists: 600, list_concurrency: 3 });
    }

    #[test]
    fn zero_counts_are_valid_and_skip_lists_wins() {
        let overrides = Overrides { creates: Some(0), lists: Some(0), ..Overrides::default() };
        let plan = Plan::resolve(Some(2), overrides).expect("valid plan");
        assert_eq!((plan.creates, plan.lists), (0, 0));
        let plan = Plan::resolve(Some(2), Overrides { skip_lists: true, ..Overrides::default() }).expect("valid plan");
        assert_eq!((plan.creates, plan.lists), (200, 0));
    }

    #[test]
    fn zero_concurrency_is_refused() {
        for overrides in [
            Overrides { create_concurrency: Some(0), ..Overrides::default() },
            Overrides { list_concurrency: Some(0), lists: Some(0), ..Overrides::default() },
        ] {
            assert!(Plan::resolve(None, overrides).is_err(), "{overrides:?}");
        }
        assert!(Plan::resolve(Some(9), Overrides::default()).is_err());
    }

    #[test]
    fn base_urls_are_checked_and_trimmed() {
        assert_eq!(http_url("http://127.0.0.1:4000/").as_deref(), Ok("http://127.0.0.1:4000"));
        assert_eq!(http_url("https://gw.example/base").as_deref(), Ok("https://gw.example/base"));
        assert!(http_url("127.0.0.1:4000").is_err());
        assert!(http_url("ftp://127.0.0.1").is_err());
        assert!(http_url("http://127.0.0.1:4000/?x=1").is_err());
    }
}
