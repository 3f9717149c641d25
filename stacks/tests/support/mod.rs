//! What the container and compose tests share: the repository's root, and running an
//! external tool that may be missing (skipped locally, a failure under CI).
// Each test crate uses some of these.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether `program args` can be started; `None` when it is not installed.
pub fn run(program: &str, args: &[&str]) -> Option<std::process::Output> {
    Command::new(program).args(args).current_dir(root()).output().ok()
}

/// A fresh folder under the temp directory for one test's files (`pulsetrack-<name>-<pid>`).
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pulsetrack-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Whether `tool --version` succeeds; a missing tool is [`missing`].
pub fn installed(tool: &str) -> bool {
    if run(tool, &["--version"]).is_some_and(|o| o.status.success()) {
        return true;
    }
    missing(tool);
    false
}

/// A missing tool skips the check locally and fails it under CI.
pub fn missing(tool: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    assert!(!ci, "{tool} is not installed, and CI is set: scripts/ensure-python-tools.sh installs it");
    eprintln!("{tool} not installed: check skipped (scripts/ensure-python-tools.sh installs it)");
}
