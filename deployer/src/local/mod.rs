//! `deployer up`: the stack model run on one machine. Every Fargate service becomes a
//! process of the workspace binary of the same name, every RDS instance a database on
//! one local Postgres, MSK a local tansu broker, the ALB's :4004 listener the gateway
//! on 127.0.0.1:4004. `deployer down` stops it; `deployer status --local` shows it.

pub mod containers;
pub mod down;
pub mod guard;
mod health;
mod net;
pub mod options;
pub mod plan;
pub mod postgres;
mod process;
pub mod prometheus;
mod running;
pub mod state;
pub mod status;
pub mod supervisor;
pub mod tansu_db;
pub mod tansu_scram;
pub mod top;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use tokio::sync::mpsc;

use self::{
    containers::Engine,
    process::alive,
    running::Running,
    status::print_table,
    supervisor::{Backoff, Printer, Supervision},
};
pub use self::{
    down::down,
    net::wait_tcp,
    options::{ContainerOptions, KafkaLogin, UpOptions},
    process::{find_tansu, on_path},
    running::{
        AUDIT_ANCHORS_DIR, BILLING_GRPC_SECRET_FILE, GATEWAY_AUDIT_SECRET_FILE, JWT_SIGNING_SECRET_FILE,
        MFA_ENCRYPTION_KEY_FILE, audit_key_file,
    },
    state::{ProcessState, State, read_state, state_file},
    status::{render_status, status},
};

/// Runs the system until Ctrl-C or SIGTERM.
pub async fn up(options: UpOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    let data_dir = claim_data_dir(&options.data_dir)?;
    let names = service_binaries(&options.bin_dir)?;
    let tansu = match &options.kafka_brokers {
        Some(_) => None,
        None => Some(find_tansu(options.tansu.as_deref())?),
    };
    let engine = match &options.containers {
        Some(c) => Some(Engine::find(c.engine.as_deref())?.with_project_settings(&data_dir)?),
        None => None,
    };

    let printer = Printer::new(names.iter().map(String::as_str).chain(["postgres", "tansu", "registry", "up"]));
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let supervision =
        Supervision { printer, events: events_tx, backoff: Backoff::default(), grace: Duration::from_secs(10) };
    let settings_note = engine.as_ref().and_then(Engine::settings_note);
    let mut running = Running::new(engine, supervision, &data_dir);
    if let Some(note) = settings_note {
        running.say(note);
    }
    // Stops everything if this process is killed before it can.
    let guard = guard::spawn(&data_dir)?;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // Ctrl-C or SIGTERM during the start-up stops what was started so far.
    let start = tokio::select! {
        result = running.start_all(&options, tansu) => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted by Ctrl-C")),
        _ = sigterm.recv() => Err(anyhow::anyhow!("interrupted by SIGTERM")),
    };
    if let Err(e) = start {
        running.say(format!("start failed: {e:#}; stopping what was started"));
        running.shut_down(&mut events, guard).await;
        return Err(e);
    }
    running.save_state();
    print_table(running.state(), &options, &data_dir, started.elapsed());

    running.run_until_stopped(&mut events, &mut sigterm).await;
    let printer = running.printer();
    running.shut_down(&mut events, guard).await;
    printer.line("up", 7, "stopped");
    Ok(())
}

/// Creates the data folder; refuses it while another `up` runs on it.
fn claim_data_dir(data_dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    let data_dir = data_dir.canonicalize()?;
    if let Some(state) = read_state(&data_dir)
        && state.pid != std::process::id()
        && alive(state.pid)
    {
        bail!(
            "`deployer up` already runs on {} (pid {}, {}): `deployer down --data-dir {}` stops it",
            data_dir.display(),
            state.pid,
            state.gateway_url,
            data_dir.display()
        );
    }
    Ok(data_dir)
}

/// The services' names, once each has its binary in `bin_dir`.
fn service_binaries(bin_dir: &Path) -> anyhow::Result<Vec<String>> {
    // The binaries first: a missing one is a build problem, reported before anything starts.
    let probe = plan::local_template("127.0.0.1:9092", BTreeMap::new())?;
    let names: Vec<String> = pulsetrack_stacks::ecs::Template::read(&probe)
        .context("the local template's task definitions cannot be read")?
        .containers()
        .into_keys()
        .collect();
    let missing: Vec<&String> = names.iter().filter(|n| !bin_dir.join(n).is_file()).collect();
    if !missing.is_empty() {
        bail!(
            "{} missing in {}: build them first (`cargo build --release -p {}`) or pass --bin-dir",
            missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            bin_dir.display(),
            missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" -p ")
        );
    }
    Ok(names)
}
