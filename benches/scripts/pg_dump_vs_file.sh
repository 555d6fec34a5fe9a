#!/usr/bin/env bash
# Dumps a generated database (pgbench -i -s SCALE; 70 ≈ 1 GB) with PgBackups::backup (pg_dump
# streamed into an FsBackupStore, CRC32C on the way) and with `pg_dump -Fc > file`, alternating,
# in one run; prints wall time, dump size and peak RSS (GNU time) of each. Usage:
#   bash benches/scripts/pg_dump_vs_file.sh [SCALE] [ROUNDS]
set -euo pipefail
scale=${1:-70}
rounds=${2:-2}
cd "$(dirname "$0")/../.."
cargo build --release -q -p ops-benches --bin pg_cluster_server --bin pg_dump_stream
work=$(mktemp -d)
chmod 777 "$work"
trap 'exec 3>&- 2>/dev/null || true; rm -rf "$work"' EXIT
bin=$(dirname "$(command -v pg_dump || ls /usr/lib/postgresql/*/bin/pg_dump | tail -1)")

coproc SERVER { target/release/pg_cluster_server; }
exec 3>&"${SERVER[1]}"
read -r url <&"${SERVER[0]}"
db_url="${url%/postgres*}/bench?sslmode=disable"
"$bin/psql" -q "$url" -c "CREATE DATABASE bench"
echo "generating pgbench scale $scale..."
"$bin/pgbench" -q -i -s "$scale" "$db_url" >/dev/null 2>&1
size=$("$bin/psql" -At "$db_url" -c "SELECT pg_size_pretty(pg_database_size('bench'))")
echo "database: $size"

measure() { # label command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/out" 2>&1 || { cat "$work/out"; exit 1; }
  read -r secs kib < "$work/time"
  printf '%-10s %7.2f s  peak RSS %6.1f MiB  %s\n' "$label" "$secs" "$(echo "$kib / 1024" | bc -l)" "$(tail -1 "$work/out")"
}

for i in $(seq "$rounds"); do
  rm -rf "$work/store"; mkdir -p "$work/store"
  measure ops target/release/pg_dump_stream "$db_url" "$work/store"
  measure pg_dump bash -c "'$bin/pg_dump' -Fc --compress=6 -d '$db_url' > '$work/plain.dump' && ls -l '$work/plain.dump' | awk '{print \$5\" bytes\"}'"
done
