#!/usr/bin/env bash
# Streams a 1 GiB file into the Cloud Storage simulator (its own process, on loopback) with
# CloudStorage::put_artifact and with `curl -T` to the same server, in one run, and prints
# wall time and the uploader's peak RSS for each (GNU time). Usage:
#   bash benches/scripts/gcs_upload_vs_curl.sh [SIZE_MIB] [ROUNDS]
set -euo pipefail
size_mib=${1:-1024}
rounds=${2:-3}
cd "$(dirname "$0")/../.."
cargo build --release -q -p ops-benches --bin gcs_sim_server --bin gcs_upload
work=$(mktemp -d)
trap 'exec 3>&- 2>/dev/null || true; rm -rf "$work"' EXIT
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/artifact.bin"

coproc SERVER { target/release/gcs_sim_server; }
exec 3>&"${SERVER[1]}"
read -r base <&"${SERVER[0]}"
echo "simulator at $base; artifact ${size_mib} MiB; $rounds rounds each"

measure() { # label command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/out" 2>&1 || { cat "$work/out"; exit 1; }
  read -r secs kib < "$work/time"
  printf '%-8s %6.2f s  %7.1f MiB/s  peak RSS %6.1f MiB\n' "$label" "$secs" \
    "$(echo "$size_mib / $secs" | bc -l)" "$(echo "$kib / 1024" | bc -l)"
}

for i in $(seq "$rounds"); do
  measure ops target/release/gcs_upload "$base" "$work/artifact.bin" 8
  measure curl curl -sS -f -X POST -T "$work/artifact.bin" -H "authorization: Bearer bench" \
    -H "content-type: application/octet-stream" \
    "$base/upload/storage/v1/b/bench-bucket/o?uploadType=media&name=curl-$i"
done
