#!/usr/bin/env bash
# What building, publishing and running the service images needs, from Debian's
# packages when missing: podman and runc (to run containers; no Docker engine needed),
# docker-registry (a local OCI registry), skopeo (to inspect images) and mmdebstrap,
# which makes the images' base: a minimal Debian bookworm root filesystem, written
# once to ~/.cache/pulsetrack/tools/base/bookworm-minbase-ca.tar (PULSETRACK_BASE_ROOTFS
# overrides the path). Prints the base's path.
# podman reads scripts/containers.conf through CONTAINERS_CONF (runc, cgroupfs, lower
# ulimits: what works in sandboxes and CI containers); scripts export it.
set -euo pipefail
TOOLS="${PULSETRACK_TOOLS:-$HOME/.cache/pulsetrack/tools}"
# The name changes with the recipe (-ca: with ca-certificates), so that a base made
# by an older recipe is not taken for this one.
base="${PULSETRACK_BASE_ROOTFS:-$TOOLS/base/bookworm-minbase-ca.tar}"

need=()
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "containers: installing ${need[*]}" >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

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
