# Sourced by the bench scripts: waits (at most 2 minutes) until the `deployer up` of
# pid $2 logs "PulseTrack is up" into $1; exits with its log if it dies or never does.
wait_until_up() {
  local log=$1 pid=$2
  for _ in $(seq 1 600); do
    grep -q "PulseTrack is up" "$log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.2
  done
  echo "up did not become ready"
  cat "$log"
  exit 1
}
