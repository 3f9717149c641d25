//! Processes by pid and programs by name: whether a recorded pid still runs (and still
//! runs what it ran), stopping pids `up` no longer supervises, and finding the
//! programs `up` starts.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context;

/// Whether `pid` runs (a zombie, exited but not yet reaped by its parent, does not).
pub(super) fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .is_some_and(|zombie| !zombie)
}

/// Whether `pid` still runs `binary` (a recorded pid may have been reused).
pub(super) fn runs(pid: u32, binary: &Path) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == binary)
}

/// SIGTERM to each of `pids`, then SIGKILL to those still running after `grace`.
pub(super) async fn terminate_all(pids: impl Iterator<Item = u32>, grace: Duration) -> anyhow::Result<()> {
    use nix::sys::signal::{Signal, kill};
    let pids: Vec<nix::unistd::Pid> =
        pids.map(|p| i32::try_from(p).map(nix::unistd::Pid::from_raw)).collect::<Result<_, _>>()?;
    for pid in &pids {
        let _ = kill(*pid, Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while pids.iter().any(|p| alive(p.as_raw().unsigned_abs())) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for pid in pids.iter().filter(|p| alive(p.as_raw().unsigned_abs())) {
        let _ = kill(*pid, Signal::SIGKILL);
    }
    Ok(())
}

/// The first file called `name` in the folders of PATH.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// Finds tansu: `--tansu`, `TANSU_BIN`, PATH, then the cache `scripts/install-tansu.sh` fills.
pub fn find_tansu(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = explicit.map(Path::to_path_buf).into_iter().collect();
    candidates.extend(std::env::var_os("TANSU_BIN").map(PathBuf::from));
    candidates.extend(on_path("tansu"));
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cache/pulsetrack/tools/bin/tansu"));
    }
    candidates.into_iter().find(|p| p.is_file()).context(
        "the tansu broker was not found: run scripts/install-tansu.sh (builds it once), pass --tansu PATH, \
         or give an existing broker with KAFKA_BROKERS",
    )
}
