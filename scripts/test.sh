#!/usr/bin/env bash
# README's test command: every test of the workspace, against real servers.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pulsetrack/target}"

scripts/ensure-postgres.sh
scripts/ensure-python-tools.sh
# Images and containers: podman (with this repository's settings), a local OCI
# registry, skopeo and the Debian base root filesystem the images are built on.
PULSETRACK_BASE_ROOTFS="$(scripts/ensure-containers.sh)"
export PULSETRACK_BASE_ROOTFS
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/scripts/containers.conf}"
# `deployer up --prometheus` is tested with Debian's prometheus (and promtool checks the
# generated scrape configuration).
if ! command -v prometheus >/dev/null 2>&1; then
  echo "prometheus: installing Debian's package"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
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
