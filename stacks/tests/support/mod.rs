//! What the container and compose tests share: the repository's root, and running an
//! external tool that may be missing (skipped locally, a failure under CI).

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

/// A missing tool skips the check locally and fails it under CI.
pub fn missing(tool: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    assert!(!ci, "{tool} is not installed, and CI is set: scripts/ensure-python-tools.sh installs it");
    eprintln!("{tool} not installed: check skipped (scripts/ensure-python-tools.sh installs it)");
}
