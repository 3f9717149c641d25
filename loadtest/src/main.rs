//! `loadtest`: the seed's load method (sign up 2 users, log in, create patients
//! concurrently, list patients concurrently) against a running PulseTrack, plus the
//! end-to-end delay from a create response to the billing account and the analytics
//! event existing.
//!
//! With `--patient-service-url` the create and list phases bypass the gateway and go
//! straight to patient-service with the logged-in user's token (patient-service
//! verifies it itself), so that comparing the two runs gives the gateway's overhead.

mod args;
mod identity;
mod phases;
mod plan;
mod progress;
mod report;
mod requests;
mod stats;
mod target;

use std::time::Duration;

use anyhow::Context;
use args::Args;
use clap::Parser;
use phases::Session;
use plan::Plan;
use progress::Progress;
use report::{Mode, Report};
use reqwest::Client;
use target::PatientTarget;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let plan = Plan::resolve(args.scenario, args.overrides())?;
    let admin = args.admin()?;
    let client = Client::builder().pool_max_idle_per_host(256).timeout(Duration::from_secs(30)).build()?;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let session = Session {
        client: &client,
        base: args.base_url.as_str(),
        run: &run,
        progress: Progress::new(!args.no_progress),
    };

    let (mut phases, token) = session.sign_up_and_log_in().await?;
    let target = PatientTarget::new(session.base, args.patient_service_url.as_deref(), &token)?;
    phases.extend(session.load(&plan, &target).await);
    if let Some(admin) = admin {
        phases.extend(session.end_to_end(&token, admin, args.e2e).await?);
    }

    let report = Report {
        mode: if args.patient_service_url.is_some() { Mode::Direct } else { Mode::Gateway },
        gateway_url: args.base_url.clone(),
        patient_service_url: args.patient_service_url.clone(),
        scenario: args.scenario,
        plan,
        e2e: args.e2e,
        phases,
    };
    write_report(&report, &args)
}

/// The report on stdout (a table, or JSON with `--json`), and as JSON in `--json-out`.
fn write_report(report: &Report, args: &Args) -> anyhow::Result<()> {
    let json = report.to_json()?;
    if let Some(path) = &args.json_out {
        std::fs::write(path, format!("{json}\n")).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{json}");
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}
