//! `up`'s guard: a small process of its own (its own process group, so a signal to
//! `up`'s group does not reach it) that waits for `up` to end and, if `up` ended
//! without stopping what it started (SIGKILL, OOM kill), stops it: the services and
//! the broker, containers, and the private Postgres, as `deployer down` does. No child
//! of `up` outlives it, whatever kind of process it is (a pg_ctl-started postmaster is
//! not `up`'s child at all, so a parent-death signal would not reach it).

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use std::os::unix::process::CommandExt as _;

use anyhow::Context as _;
use nix::unistd::{Pid, getppid};

use super::{down::down, state::read_state};

/// How often the guard looks for its parent.
const POLL: Duration = Duration::from_millis(100);

/// Starts the guard of this process (`deployer guard`), logging to `<data>/guard.log`.
pub fn spawn(data_dir: &Path) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("cannot find the deployer binary for the guard")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.join("guard.log"))
        .context("cannot open guard.log")?;
    Command::new(exe)
        .arg("guard")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--parent")
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("cannot start the guard")
}

/// `deployer guard`: waits until `parent` is gone (this process is re-parented), then
/// stops what the state file says it left running.
pub async fn run(data_dir: PathBuf, parent: u32) -> anyhow::Result<()> {
    let parent = Pid::from_raw(i32::try_from(parent)?);
    // Already re-parented: `up` died before the guard ran; it cleans up at once.
    while getppid() == parent {
        tokio::time::sleep(POLL).await;
    }
    // A normal stop removes the state file; one that still names the parent is left.
    match read_state(&data_dir) {
        Some(state) if i64::from(state.pid) == i64::from(parent.as_raw()) => {
            let report = down(&data_dir, Duration::from_secs(30)).await?;
            println!("guard: `deployer up` (pid {parent}) ended without stopping: {report}");
        }
        _ => {}
    }
    Ok(())
}
