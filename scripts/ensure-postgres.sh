#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 for user `postgres`
# without a password (what the services' defaults and the tests expect).
# Starts an installed cluster, or installs one from Debian's packages.
set -euo pipefail
. "$(dirname "$0")/lib/apt.sh"

PGHOST_ADDR=127.0.0.1
PGPORT_NUM=5432

# The openssl CLI makes the test CAs and `deployer up`'s private cluster certificate.
need=()
need_cmd openssl openssl
apt_install "${need[@]}"

ready() { pg_isready -q -h "$PGHOST_ADDR" -p "$PGPORT_NUM" 2>/dev/null; }
can_login() { psql -h "$PGHOST_ADDR" -p "$PGPORT_NUM" -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; }

if command -v pg_isready >/dev/null && ready && can_login; then
  echo "postgres: already running on $PGHOST_ADDR:$PGPORT_NUM"
  exit 0
fi

installed_here=0
if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  echo "postgres: not installed; installing from apt"
  apt_install postgresql postgresql-client
  installed_here=1
fi

version=$(ls /etc/postgresql | sort -V | tail -n 1)
if [ "$installed_here" = 1 ]; then
  # A fresh cluster asks for passwords over TCP; this dev/CI server trusts loopback.
  hba=/etc/postgresql/$version/main/pg_hba.conf
  sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
fi

if ! ready; then
  echo "postgres: starting cluster $version/main"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi

for _ in $(seq 1 30); do
  if ready && can_login; then
    echo "postgres: ready on $PGHOST_ADDR:$PGPORT_NUM"
    exit 0
  fi
  sleep 1
done
echo "postgres: not reachable on $PGHOST_ADDR:$PGPORT_NUM as user postgres without a password" >&2
exit 1
