# Sourced by the bench scripts that run whole systems: wrk, the build tools and tansu
# (exported as TANSU_BIN), and a fresh folder for the raw results.
#   prepare_bench NAME  → exports TANSU_BIN, sets OUT=/tmp/pulsetrack-NAME.XXXXXX
prepare_bench() {
  . scripts/lib/apt.sh
  command -v wrk >/dev/null || apt_install wrk
  scripts/ensure-build-tools.sh
  TANSU_BIN="$(scripts/install-tansu.sh)"
  export TANSU_BIN
  OUT="$(mktemp -d "/tmp/pulsetrack-$1.XXXXXX")"
  chmod 755 "$OUT"   # run as root, Postgres runs as the postgres user, which must enter it
  echo "$1: raw results in $OUT"
}
