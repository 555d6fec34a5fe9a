#!/usr/bin/env bash
# Issue 26's figures, side by side in one run: a pgbench database (scale 70 ≈ 1 GB) dumped by
# bare `pg_dump -Fc > file` and by the ops backup into an FsBackupStore with zstd at its
# default level and at level 1; the restore of the zstd artifact against bare `pg_restore` of
# the -Fc file; and a 1 GiB SQLite file and 1 GiB of random bytes stored raw and through the
# codec stage (which stores an incompressible stream raw). Each line: wall time, CPU seconds
# (user + system of the process and its children: pg_dump, pg_restore), peak RSS, and what the
# tool printed (bytes). Usage:
#   bash benches/scripts/zstd_backups.sh [SCALE] [ROUNDS] [GIB] [PARTS]
# PARTS is any of `dumps restores files` (all three by default); the restores need the dumps'
# artifacts, so `restores` alone still makes one of each, unmeasured.
set -euo pipefail
scale=${1:-70}
rounds=${2:-2}
gib=${3:-1}
parts=${4:-dumps restores files}
cd "$(dirname "$0")/../.."
cargo build --release -q -p ops-benches --bin pg_cluster_server --bin pg_dump_stream \
  --bin pg_restore_stream --bin codec_file
work=$(mktemp -d)
chmod 777 "$work"
trap 'exec 3>&- 2>/dev/null || true; rm -rf "$work"' EXIT
bin=$(dirname "$(command -v pg_dump || ls /usr/lib/postgresql/*/bin/pg_dump | tail -1)")
echo "cores: $(nproc); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"

coproc SERVER { target/release/pg_cluster_server; }
exec 3>&"${SERVER[1]}"
read -r url <&"${SERVER[0]}"
base="${url%/postgres*}"
db_url="$base/bench?sslmode=disable"
"$bin/psql" -q "$url" -c "CREATE DATABASE bench"
echo "generating pgbench scale $scale..."
"$bin/pgbench" -q -i -s "$scale" "$db_url" >/dev/null 2>&1
echo "database: $("$bin/psql" -At "$db_url" -c "SELECT pg_size_pretty(pg_database_size('bench'))")"

measure() { # label command...
  local label=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@" > "$work/out" 2>&1 || { cat "$work/out"; exit 1; }
  read -r secs user sys kib < "$work/time"
  printf '%-24s wall %7.2f s  cpu %7.2f s  peak RSS %6.1f MiB  %s\n' "$label" "$secs" \
    "$(echo "$user + $sys" | bc -l)" "$(echo "$kib / 1024" | bc -l)" "$(tail -1 "$work/out")"
}

want() { [[ " $parts " == *" $1 "* ]]; }

if want dumps; then
echo "## dumps"
for i in $(seq "$rounds"); do
  rm -rf "$work"/z3 "$work"/z1; mkdir -p "$work"/z3 "$work"/z1
  measure "pg_dump -Fc > file" bash -c "'$bin/pg_dump' -Fc --compress=6 -d '$db_url' > '$work/plain.dump' && stat -c '%s bytes' '$work/plain.dump'"
  measure "ops zstd-3 (default)" target/release/pg_dump_stream "$db_url" "$work/z3" zstd-3
  measure "ops zstd-1" target/release/pg_dump_stream "$db_url" "$work/z1" zstd-1
done
else
  mkdir -p "$work"/z3
  "$bin/pg_dump" -Fc --compress=6 -d "$db_url" > "$work/plain.dump"
  target/release/pg_dump_stream "$db_url" "$work/z3" zstd-3 > /dev/null
fi

if want restores; then

echo "## restores"
restore_bare() {
  "$bin/psql" -q "$url" -c "CREATE DATABASE r_bare" -c CHECKPOINT
  measure "pg_restore file.dump" "$bin/pg_restore" --no-owner --exit-on-error --single-transaction \
    -d "$base/r_bare?sslmode=disable" "$work/plain.dump"
  "$bin/psql" -q "$url" -c "DROP DATABASE r_bare"
}
restore_ops() {
  "$bin/psql" -q "$url" -c "CREATE DATABASE r_ops" -c CHECKPOINT
  measure "ops from zstd-3" target/release/pg_restore_stream "$db_url" "$work/z3" r_ops
  "$bin/psql" -q "$url" -c "DROP DATABASE r_ops"
}
# A CHECKPOINT before each: otherwise one restore pays for writing out the one before it.
# The order alternates between rounds, so neither side always follows the other.
for i in $(seq "$rounds"); do
  if (( i % 2 )); then restore_bare; restore_ops; else restore_ops; restore_bare; fi
done
fi

want files || exit 0

echo "## files of $gib GiB"
head -c "$((gib * 1024 * 1024 * 1024))" /dev/urandom > "$work/random.bin"
python3 - "$work/app.db" "$gib" <<'PY'
import sqlite3, sys, random
path, gib = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path)
db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT, at TEXT, payload TEXT)")
rng = random.Random(7)
kinds = ["order.created", "order.paid", "order.shipped", "user.login", "user.logout"]
rows = (gib * 1024 ** 3) // 160
batch = []
for i in range(rows):
    batch.append((kinds[i % 5], f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
                  f'{{"user":{rng.randrange(100000)},"amount":{rng.randrange(10**6)},"note":"item {i % 977}"}}'))
    if len(batch) == 100000:
        db.executemany("INSERT INTO events (kind, at, payload) VALUES (?, ?, ?)", batch)
        batch.clear()
db.executemany("INSERT INTO events (kind, at, payload) VALUES (?, ?, ?)", batch)
db.commit()
db.close()
PY
echo "sqlite file: $(stat -c %s "$work/app.db") bytes"
for i in $(seq "$rounds"); do
  for f in random.bin app.db; do
    for c in raw zstd-3; do
      rm -rf "$work/s"; mkdir -p "$work/s"
      measure "$f $c" target/release/codec_file "$work/$f" "$work/s" "$c"
    done
  done
done
