//! What runs, as a table: the status `up` prints once it is up, and `deployer status
//! --local`, which adds live pids, memory, readiness and patient-service's outbox.

use std::{collections::BTreeMap, path::Path, time::Duration};

use anyhow::bail;
use pulsetrack_stacks::settings::PULSETRACK_ADMIN_PASSWORD;
use serde::Deserialize;

use super::{
    options::UpOptions,
    process::alive,
    state::{ProcessState, State, read_state, state_file},
    supervisor,
};

pub(super) fn print_table(state: &State, options: &UpOptions, data_dir: &Path, took: Duration) {
    println!();
    println!("PulseTrack is up in {:.1}s: {}", took.as_secs_f64(), state.gateway_url);
    print!("{}", render_status(state));
    let admin = state.admin_email.as_deref().unwrap_or("admin");
    let password = if options.admin_password.is_some() {
        PULSETRACK_ADMIN_PASSWORD.to_string()
    } else {
        data_dir.join("admin-password").display().to_string()
    };
    println!("admin: {admin} (password in {password})");
    println!("data: {}   stop: Ctrl-C, or `deployer down` from another shell", data_dir.display());
    println!();
}

/// The status table: one row per process, with pid, state and resident memory.
pub fn render_status(state: &State) -> String {
    let mut out = format!("{:<18} {:>8} {:>9} {:>9}  {}\n", "PROCESS", "PID", "RSS", "RESTARTS", "ENDPOINT");
    let rss = |pid: Option<u32>| {
        pid.and_then(supervisor::rss_kib).map_or_else(|| "-".to_string(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
    };
    let pid_text = |pid: Option<u32>| pid.map_or_else(|| "down".to_string(), |p| p.to_string());
    if state.postgres_data.is_some() {
        out.push_str(&format!(
            "{:<18} {:>8} {:>9} {:>9}  {}\n",
            "postgres",
            pid_text(state.postgres_pid),
            rss(state.postgres_pid),
            "-",
            state.postgres
        ));
    }
    let mut rows: Vec<(&String, &ProcessState)> = state.processes.iter().collect();
    // tansu first, the gateway last, the rest by port.
    rows.sort_by_key(|(name, p)| (name.as_str() != "tansu", name.as_str() == "api-gateway", p.ports.clone()));
    for (name, process) in rows {
        let pid = process.container_pid.or(process.pid).filter(|p| alive(*p));
        let mut endpoint = process.url.clone().unwrap_or_default();
        if process.ports.len() > 1 {
            let extra: Vec<String> = process.ports[1..].iter().map(|p| format!("grpc :{p}")).collect();
            endpoint = format!("{endpoint}  {}", extra.join(" "));
        }
        out.push_str(&format!(
            "{:<18} {:>8} {:>9} {:>9}  {}\n",
            name,
            pid_text(pid),
            rss(pid),
            process.restarts,
            endpoint
        ));
    }
    let containers: Vec<(&String, &ProcessState)> =
        state.processes.iter().filter(|(_, p)| p.container.is_some()).collect();
    if let Some(engine) = &state.engine
        && !containers.is_empty()
    {
        out.push_str(&format!("\n{:<18} {}  ({})\n", "CONTAINER", "IMAGE", engine.program.display()));
        for (name, process) in containers {
            out.push_str(&format!(
                "{:<18} {}  {}\n",
                name,
                process.image.as_deref().unwrap_or("-"),
                process.container.as_deref().unwrap_or("-")
            ));
        }
    }
    out
}

/// `deployer status --local`: the state file, with live pids, memory and readiness.
pub async fn status(data_dir: &Path) -> anyhow::Result<String> {
    let Some(mut state) = read_state(data_dir) else {
        bail!("no `deployer up` runs on {} (no {})", data_dir.display(), state_file(data_dir).display());
    };
    if !alive(state.pid) {
        bail!("`deployer up` (pid {}) is gone; `deployer down --data-dir {}` cleans up", state.pid, data_dir.display());
    }
    if let Some(engine) = &state.engine {
        for process in state.processes.values_mut() {
            if let Some(container) = &process.container {
                process.container_pid = engine.pid(container).await;
            }
        }
    }
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let mut lines = format!("PulseTrack (up pid {}): {}\n", state.pid, state.gateway_url);
    for (name, process) in &state.processes {
        if name == "tansu" || name == "registry" || name == "prometheus" {
            continue;
        }
        let ready = match &process.url {
            Some(url) => client.get(format!("{url}/ready")).send().await.is_ok_and(|r| r.status().is_success()),
            None => false,
        };
        if !ready {
            lines.push_str(&format!("  {name}: NOT READY\n"));
        }
    }
    lines.push_str(&render_status(&state));
    if let Some(url) = state.processes.get("patient-service").and_then(|p| p.url.as_ref()) {
        lines.push_str(&outbox_line(&client, url).await);
    }
    Ok(lines)
}

/// patient-service's `/health` details: its outbox, per destination.
#[derive(Debug, Deserialize)]
struct PatientHealth {
    outbox: Option<BTreeMap<String, OutboxCounts>>,
}

#[derive(Debug, Deserialize)]
struct OutboxCounts {
    pending: i64,
    dead: i64,
}

/// `outbox  billing: 0 pending, 0 dead; patient-event: …`, with a warning for dead rows.
async fn outbox_line(client: &reqwest::Client, url: &str) -> String {
    let health = match client.get(format!("{url}/health")).send().await {
        Ok(response) => response.json::<PatientHealth>().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let outbox = match health {
        Ok(PatientHealth { outbox: Some(outbox) }) => outbox,
        Ok(PatientHealth { outbox: None }) => {
            return "\noutbox: unknown (patient-service cannot read its database)\n".into();
        }
        Err(e) => return format!("\noutbox: unknown (patient-service /health: {e})\n"),
    };
    let parts: Vec<String> =
        outbox.iter().map(|(dest, c)| format!("{dest}: {} pending, {} dead", c.pending, c.dead)).collect();
    let mut line = format!("\noutbox: {}\n", parts.join("; "));
    let dead: i64 = outbox.values().map(|c| c.dead).sum();
    if dead > 0 {
        line.push_str(&format!(
            "  {dead} DEAD outbox row(s): never delivered; patient-service logged each at ERROR, and keeps it \
             (with its last error) in the outbox table of its database\n"
        ));
    }
    line
}
