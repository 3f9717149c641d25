//! The command line: the gateway (or patient-service directly), a scenario and the
//! flags that override it, the e2e phase's ADMIN account, and where the report goes.

use std::path::PathBuf;

use anyhow::bail;
use clap::Parser;

use crate::plan::{Overrides, http_url};

#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Args {
    /// The gateway. Signup, login and the e2e phase always go here; the create and list
    /// phases too unless --patient-service-url is given.
    #[arg(long, env = "LOADTEST_BASE_URL", default_value = "http://127.0.0.1:4004", value_parser = http_url)]
    pub base_url: String,
    /// DIRECT mode, to measure the gateway's overhead: send the create and list phases
    /// straight to patient-service (e.g. http://127.0.0.1:4000) with the logged-in
    /// user's token, which patient-service verifies itself.
    #[arg(long, value_name = "URL", value_parser = http_url)]
    pub patient_service_url: Option<String>,
    /// One of the seed's scenarios: 1 (500 creates at 10, 1000 lists at 20),
    /// 2 (200 at 20, 400 at 40), 3 (400 at 100, 600 at 120). Flags below override its
    /// values; without it, scenario 1.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub scenario: Option<u8>,
    /// Patients to create (0: no create phase) [default: the scenario's]
    #[arg(long)]
    pub creates: Option<usize>,
    /// Creates in flight at once, at least 1 [default: the scenario's]
    #[arg(long)]
    pub create_concurrency: Option<usize>,
    /// Patient lists to request (0: no list phase) [default: the scenario's]
    #[arg(long, conflicts_with = "skip_lists")]
    pub lists: Option<usize>,
    /// Lists in flight at once, at least 1 [default: the scenario's]
    #[arg(long)]
    pub list_concurrency: Option<usize>,
    /// Run no list phase (the same as --lists 0).
    #[arg(long)]
    pub skip_lists: bool,
    /// Sequential creates (through the gateway) whose billing account and analytics
    /// event are awaited (0: skip).
    #[arg(long, default_value_t = 0)]
    pub e2e: usize,
    /// An ADMIN account, needed to read analytics in the e2e phase.
    #[arg(long, env = "PULSETRACK_ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    #[arg(long, env = "PULSETRACK_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Print the report on stdout as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
    /// Draw no progress bars (they are never drawn when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

impl Args {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            creates: self.creates,
            create_concurrency: self.create_concurrency,
            lists: self.lists,
            list_concurrency: self.list_concurrency,
            skip_lists: self.skip_lists,
        }
    }

    /// The ADMIN account the e2e phase reads analytics with; `None` without that phase.
    pub fn admin(&self) -> anyhow::Result<Option<(&str, &str)>> {
        Ok(match (self.e2e, &self.admin_email, &self.admin_password) {
            (0, _, _) => None,
            (_, Some(email), Some(password)) => Some((email.as_str(), password.as_str())),
            _ => bail!("--e2e needs --admin-email and --admin-password (or PULSETRACK_ADMIN_EMAIL/PASSWORD)"),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::plan::Plan;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("loadtest").chain(args.iter().copied()))
    }

    #[test]
    fn command_line_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults_target_the_local_gateway_with_scenario_one() {
        let args = parse(&[]).expect("parses");
        if std::env::var_os("LOADTEST_BASE_URL").is_none() {
            assert_eq!(args.base_url, "http://127.0.0.1:4004");
        }
        assert_eq!(args.patient_service_url, None);
        assert_eq!(Plan::resolve(args.scenario, args.overrides()).ok(), Plan::preset(1));
    }

    #[test]
    fn scenario_flags_and_skip_lists_combine() {
        let args = parse(&["--scenario", "3", "--skip-lists", "--create-concurrency", "5"]).expect("parses");
        let plan = Plan::resolve(args.scenario, args.overrides()).expect("plan");
        assert_eq!(plan, Plan { creates: 400, create_concurrency: 5, lists: 0, list_concurrency: 120 });
        assert!(parse(&["--skip-lists", "--lists", "3"]).is_err());
        assert!(parse(&["--scenario", "4"]).is_err());
    }

    #[test]
    fn direct_mode_and_outputs_parse() {
        let args = parse(&[
            "--patient-service-url",
            "http://127.0.0.1:4000/",
            "--json",
            "--json-out",
            "r.json",
            "--no-progress",
        ])
        .expect("parses");
        assert_eq!(args.patient_service_url.as_deref(), Some("http://127.0.0.1:4000"));
        assert!(args.json && args.no_progress);
        assert_eq!(args.json_out, Some(PathBuf::from("r.json")));
        assert!(parse(&["--patient-service-url", "127.0.0.1:4000"]).is_err());
    }
}
