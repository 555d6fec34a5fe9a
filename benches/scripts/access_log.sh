#!/usr/bin/env bash
# Issue 28's access-log figure, side by side in one run: an nginx access log in the
# `ops_canary` format (MIB MiB, default 1024), counted by `ops_host::access_log::AccessLog`
# (the canary's requests, errors and latency histogram over the whole file) and by `grep -c`
# on the same file, both from the page cache (one unmeasured read first). Usage:
#   bash benches/scripts/access_log.sh [MIB] [ROUNDS]
set -euo pipefail
mib=${1:-1024}
rounds=${2:-3}
cd "$(dirname "$0")/../.."
cargo build --release -q -p ops-benches --bin access_log_scan
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log="$work/app.log"
target/release/access_log_scan gen "$log" "$mib"
bytes=$(stat -c %s "$log")
echo "cores: $(nproc); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2); log: $bytes bytes"
cat "$log" > /dev/null
measure() { # label command...
  local label=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@" > "$work/out" 2>&1 || { cat "$work/out"; exit 1; }
  read -r secs user sys kib < "$work/time"
  printf '%-28s wall %6.2f s  %6.0f MB/s  cpu %5.2f s  peak RSS %6.1f MiB  %s\n' "$label" "$secs" \
    "$(echo "$bytes / 1000000 / $secs" | bc -l)" "$(echo "$user + $sys" | bc -l)" \
    "$(echo "$kib / 1024" | bc -l)" "$(tail -1 "$work/out")"
}
for i in $(seq "$rounds"); do
  measure "grep -c 127.0.0.1:3002" grep -c '127.0.0.1:3002' "$log"
  measure "AccessLog::counts" target/release/access_log_scan count "$log"
done
