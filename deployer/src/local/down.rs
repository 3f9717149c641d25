//! `deployer down`: stops a running `up` by asking it (it tears down what it started
//! itself), or, after a killed `up`, stops what its state file says it left.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::bail;

use super::{
    postgres::{self, PrivateCluster},
    process::{alive, runs, terminate_all},
    state::{read_state, remove_state},
};

/// `deployer down`: asks a running `up` to stop and waits; after a killed `up`, stops
/// what it left (its processes, the private Postgres).
pub async fn down(data_dir: &Path, timeout: Duration) -> anyhow::Result<String> {
    let Some(state) = read_state(data_dir) else {
        return Ok(format!("nothing runs on {}", data_dir.display()));
    };
    if alive(state.pid) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(state.pid)?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
        let deadline = Instant::now() + timeout;
        while alive(state.pid) {
            if Instant::now() >= deadline {
                bail!("`deployer up` (pid {}) did not stop within {}s", state.pid, timeout.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        return Ok(format!("stopped `deployer up` (pid {})", state.pid));
    }
    let mut stopped = Vec::new();
    if let Some(engine) = &state.engine {
        for (name, process) in &state.processes {
            if let Some(container) = &process.container {
                engine.remove(container).await;
                stopped.push(format!("{name} (container {container})"));
            }
        }
    }
    let left: Vec<(&String, u32)> = state
        .processes
        .iter()
        .filter_map(|(name, p)| Some((name, p.pid.filter(|pid| runs(*pid, &p.binary))?)))
        .collect();
    terminate_all(left.iter().map(|(_, pid)| *pid), timeout).await?;
    stopped.extend(left.iter().map(|(name, _)| name.to_string()));
    if let Some(data) = &state.postgres_data {
        let bin = postgres::find_bin_dir(None)?;
        let root = data.parent().unwrap_or(data_dir);
        let cluster = PrivateCluster::existing(root, bin)?;
        if cluster.is_running().await {
            cluster.stop().await?;
            stopped.push("postgres".into());
        }
    }
    remove_state(data_dir);
    Ok(format!("`deployer up` (pid {}) was gone; stopped what it left: {}", state.pid, stopped.join(", ")))
}
