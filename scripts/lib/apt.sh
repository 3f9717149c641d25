# Sourced by the scripts that install what is missing from Debian's packages.
# apt_install [--no-recommends] PKG...: installs the packages in one apt-get run (index
# refreshed once per script), quietly, through sudo when not root. Callers decide what
# is missing.
apt_install() {
  local opts=()
  if [ "${1:-}" = --no-recommends ]; then
    opts+=(--no-install-recommends)
    shift
  fi
  [ "$#" -gt 0 ] || return 0
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "packages: installing $*" >&2
  if [ -z "${PULSETRACK_APT_UPDATED:-}" ]; then
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    PULSETRACK_APT_UPDATED=1
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${opts[@]}" "$@" >/dev/null
}

# need_cmd CMD PKG: adds PKG to the array `need` when CMD is not on PATH.
need_cmd() {
  command -v "$1" >/dev/null 2>&1 || need+=("$2")
}
