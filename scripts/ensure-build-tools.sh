#!/usr/bin/env bash
# What building and running PulseTrack needs from Debian/Ubuntu packages: a C toolchain
# (librdkafka is built from source, bundled), OpenSSL's headers (libssl-dev),
# PostgreSQL's server tools (`deployer up` runs a private cluster with initdb/pg_ctl),
# curl and python3. Installs only what is missing; needs root or sudo for that. Rust
# itself (cargo, at least the workspace's `rust-version` in Cargo.toml) comes from
# rustup: https://rustup.rs
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/apt.sh

need=()
need_cmd cc build-essential
need_cmd make make
need_cmd perl perl
need_cmd curl curl
need_cmd python3 python3
need_cmd pkg-config pkg-config
# `deployer up` makes its private cluster's TLS certificate with the openssl CLI.
need_cmd openssl openssl
# librdkafka's TLS and SCRAM link the system's OpenSSL 3.
pkg-config --exists openssl 2>/dev/null || need+=(libssl-dev)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql postgresql-client)
fi
apt_install "${need[@]}"

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust with rustup (https://rustup.rs), then run this again" >&2
  exit 1
fi
minimum=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
version=$(rustc --version | awk '{print $2}')
if [ "$(printf '%s\n%s\n' "$version" "$minimum" | sort -V | head -n 1)" != "$minimum" ]; then
  echo "rustc $version is older than the workspace's rust-version $minimum: rustup update stable" >&2
  exit 1
fi
