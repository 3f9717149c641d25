#!/usr/bin/env bash
# What building, publishing and running the service images needs, from Debian's
# packages when missing: podman and runc (to run containers; no Docker engine needed),
# docker-registry (a local OCI registry), skopeo (to inspect images) and mmdebstrap,
# which makes the images' base: a minimal Debian bookworm root filesystem, written
# once to ~/.cache/pulsetrack/tools/base/bookworm-minbase-ca.tar (PULSETRACK_BASE_ROOTFS
# overrides the path). Prints the base's path.
# `deployer up --containers` gives podman scripts/containers.conf (runc, cgroupfs, lower
# ulimits: what works in sandboxes and CI containers) unless CONTAINERS_CONF is set.
set -euo pipefail
. "$(dirname "$0")/lib/apt.sh"
TOOLS="${PULSETRACK_TOOLS:-$HOME/.cache/pulsetrack/tools}"
# The name changes with the recipe (-ca: with ca-certificates), so that a base made
# by an older recipe is not taken for this one.
base="${PULSETRACK_BASE_ROOTFS:-$TOOLS/base/bookworm-minbase-ca.tar}"

need=()
need_cmd podman podman
need_cmd runc runc
need_cmd docker-registry docker-registry
need_cmd skopeo skopeo
need_cmd mmdebstrap mmdebstrap
apt_install "${need[@]}"

if [ ! -s "$base" ]; then
  mkdir -p "$(dirname "$base")"
  echo "containers: making the base root filesystem $base (mmdebstrap, about a minute)" >&2
  # Reproducible (fixed timestamps) and small: no documentation, manuals or locales.
  # ca-certificates: the trust store the Kafka clients verify MSK's brokers with.
  SOURCE_DATE_EPOCH=1700000000 mmdebstrap --quiet --format=tar --variant=minbase \
    --include=ca-certificates \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*' \
    bookworm "$base.tmp" >&2
  mv "$base.tmp" "$base"
fi
echo "$base"
