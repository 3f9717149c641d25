//! The state file, `<data>/up.json`: what `up` runs, where, and with which pids. It is
//! how `down`, `status --local`, `top`, the guard and the tests find a running `up`.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::containers::Engine;

/// Written to `<data>/up.json` while `up` runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub pid: u32,
    pub gateway_url: String,
    pub postgres: String,
    /// The private cluster's data folder, when `up` runs one.
    pub postgres_data: Option<PathBuf>,
    pub postgres_pid: Option<u32>,
    pub kafka_brokers: String,
    pub processes: BTreeMap<String, ProcessState>,
    /// The engine the services run in, with `--containers`.
    #[serde(default)]
    pub engine: Option<Engine>,
    /// The seeded ADMIN's email, as auth-service's task definition gives it.
    #[serde(default)]
    pub admin_email: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessState {
    pub pid: Option<u32>,
    pub url: Option<String>,
    pub ports: Vec<u16>,
    pub restarts: u32,
    pub binary: PathBuf,
    /// With `--containers`: the container's name and its image (by digest).
    #[serde(default)]
    pub container: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    /// The container's main process (what PID and RSS show for a container).
    #[serde(default)]
    pub container_pid: Option<u32>,
}

impl ProcessState {
    /// A process (not a container), not restarted yet.
    pub(super) fn process(pid: Option<u32>, url: Option<String>, ports: Vec<u16>, binary: PathBuf) -> Self {
        Self { pid, url, ports, restarts: 0, binary, container: None, image: None, container_pid: None }
    }
}

pub fn state_file(data_dir: &Path) -> PathBuf {
    data_dir.join("up.json")
}

pub fn read_state(data_dir: &Path) -> Option<State> {
    serde_json::from_str(&std::fs::read_to_string(state_file(data_dir)).ok()?).ok()
}

pub(super) fn write_state(data_dir: &Path, state: &State) {
    // Written aside and renamed into place: a reader (`status --local`, `down`, a test)
    // never sees a half-written file.
    if let Ok(text) = serde_json::to_string_pretty(state) {
        let path = state_file(data_dir);
        let tmp = path.with_extension("json.tmp");
        if std::fs::write(&tmp, text + "\n").is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
}

/// Removes the state file once nothing it names runs any more.
pub(super) fn remove_state(data_dir: &Path) {
    let _ = std::fs::remove_file(state_file(data_dir));
}
