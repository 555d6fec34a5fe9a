#!/usr/bin/env bash
# Streams a file into fake-gcs-server (a third-party Cloud Storage emulator, its own process on
# loopback) with CloudStorage::put_artifact at several chunk sizes, and with `curl -T` of the
# same file to the same server, in one run. Prints, for each: wall time, the uploader's CPU
# time (user + system) and peak RSS (GNU time), and for ops the number of chunk requests
# against the number a clean path needs (no byte sent twice). Usage:
#   bash benches/scripts/gcs_upload_fake_gcs.sh [SIZE_MIB] [ROUNDS] [CHUNK_MIB...]
set -euo pipefail
size_mib=${1:-1024}
rounds=${2:-2}
shift $(( $# > 2 ? 2 : $# ))
chunks=("$@")
[ ${#chunks[@]} -gt 0 ] || chunks=(8 64 256)
cd "$(dirname "$0")/../.."
.ci/install-fake-gcs-server > /dev/null
cargo build --release -q -p ops-benches --bin gcs_upload
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
target/tools/bin/fake-gcs-server -scheme http -backend filesystem -filesystem-root "$work/data" \
  -host 127.0.0.1 -port "$port" -external-url "$base" -log-level error &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "$base/storage/v1/b" > /dev/null && break; sleep 0.1; done
curl -sf -X POST "$base/storage/v1/b" -H 'content-type: application/json' -d '{"name":"bench-bucket"}' > /dev/null
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/artifact.bin"
echo "fake-gcs-server at $base; artifact ${size_mib} MiB; $rounds rounds; chunks ${chunks[*]} MiB"

measure() { # label command...
  local label=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@" > "$work/out" 2>&1 || { cat "$work/out"; exit 1; }
  read -r secs user sys kib < "$work/time"
  printf '%-10s %7.2f s  %7.1f MiB/s  CPU user %5.2f s + sys %5.2f s per GiB  peak RSS %6.1f MiB' \
    "$label" "$secs" "$(echo "$size_mib / $secs" | bc -l)" "$(echo "$user * 1024 / $size_mib" | bc -l)" \
    "$(echo "$sys * 1024 / $size_mib" | bc -l)" "$(echo "$kib / 1024" | bc -l)"
}
drop() { curl -sf -X DELETE "$base/storage/v1/b/bench-bucket/o/$1" > /dev/null || true; }

for i in $(seq "$rounds"); do
  for c in "${chunks[@]}"; do
    rm -rf "$work/rec"
    OPS_HTTP_RECORD="$work/rec" measure "ops ${c}MiB" target/release/gcs_upload "$base" "$work/artifact.bin" "$c"
    puts=$(cat "$work/rec"/*.jsonl | grep -c '"method":"PUT"' || true)
    need=$(( (size_mib + c - 1) / c ))
    printf '  chunk requests %d (clean path: %d)\n' "$puts" "$need"
    drop "bench%2Fupload-$(grep -o 'upload-[0-9]*' "$work/rec"/*.jsonl | head -1 | cut -d- -f2)"
    rm -rf "$work/data/bench-bucket"/bench* 2>/dev/null || true
  done
  measure curl curl -sS -f -X POST -T "$work/artifact.bin" -H "content-type: application/octet-stream" \
    "$base/upload/storage/v1/b/bench-bucket/o?uploadType=media&name=curl-$i"
  echo
  drop "curl-$i"
done
