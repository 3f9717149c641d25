#!/usr/bin/env bash
# README's test command: every test of the workspace, against real servers.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pulsetrack/target}"

scripts/ensure-postgres.sh
scripts/ensure-python-tools.sh
# Images and containers: podman, a local OCI registry, skopeo and the Debian base root
# filesystem the images are built on. `deployer up --containers` gives podman this
# repository's settings (scripts/containers.conf) by itself; nothing is exported.
PULSETRACK_BASE_ROOTFS="$(scripts/ensure-containers.sh)"
export PULSETRACK_BASE_ROOTFS
# `deployer up --prometheus` is tested with Debian's prometheus (and promtool checks the
# generated scrape configuration).
. scripts/lib/apt.sh
command -v prometheus >/dev/null 2>&1 || apt_install --no-recommends prometheus
# The event pipeline tests run a real tansu broker (built once, cached outside the clone).
TANSU_BIN="$(scripts/install-tansu.sh)"
export TANSU_BIN

# `deployer up`'s end-to-end test runs the service binaries from the same target folder.
cargo build --workspace --bins

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  echo "cargo-nextest not installed: running the same tests with cargo test"
  cargo test --workspace --no-fail-fast "$@"
fi

# The docs: the book builds, its links resolve, and every command block of README and
# docs/ runs as written (on the debug build just made; they start PulseTrack on :4004).
# Arguments given to this script select tests, so the docs run only with the whole suite.
if [ "$#" -eq 0 ]; then
  PULSETRACK_PROFILE=dev scripts/check-docs.sh
fi
