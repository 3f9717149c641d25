#!/usr/bin/env bash
# What building and running PulseTrack needs from Debian/Ubuntu packages: a C toolchain
# (librdkafka is built from source, bundled), PostgreSQL's server tools (`deployer up`
# runs a private cluster with initdb/pg_ctl), curl and python3. Installs only what is
# missing; needs root or sudo for that. Rust itself (cargo, edition 2024: 1.85 or newer)
# comes from rustup: https://rustup.rs
set -euo pipefail

need=()
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v make >/dev/null 2>&1 || need+=(make)
command -v perl >/dev/null 2>&1 || need+=(perl)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
# `deployer up` makes its private cluster's TLS certificate with the openssl CLI.
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql postgresql-client)
fi
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "packages: installing ${need[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust with rustup (https://rustup.rs), then run this again" >&2
  exit 1
fi
version=$(rustc --version | awk '{print $2}')
if [ "$(printf '%s\n1.85.0\n' "$version" | sort -V | head -n 1)" != "1.85.0" ]; then
  echo "rustc $version is too old for edition 2024 (needs 1.85+): rustup update stable" >&2
  exit 1
fi
