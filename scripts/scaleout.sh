#!/usr/bin/env bash
# Stream workers in one group into PostgreSQL, 1, 2 and 3 of them as
# separate processes (docs/benchmarks.md, "Scale-out"): the embedded broker
# is filled with USERS users (JSON, PARTITIONS partitions), then for each
# worker count a fresh group and a fresh schema read the whole topic; the
# script prints rows/s and the CPU seconds the PostgreSQL server and the
# workers spent.
#
#   USERSTREAM_TEST_POSTGRES=postgres://user@127.0.0.1:5432/db?sslmode=disable scripts/scaleout.sh
#
# The database must be on this machine (its server's CPU is read from
# /proc); the script's schemas are dropped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
pgurl=${USERSTREAM_TEST_POSTGRES:?set USERSTREAM_TEST_POSTGRES to a postgres:// URL}
users=${USERS:-200000}
partitions=${PARTITIONS:-6}
workers=${WORKERS:-1 2 3}
bin=${BIN:-bin/userstream}
[ -x "$bin" ] || go build -o "$bin" ./cmd/userstream
dir=$(mktemp -d /tmp/userstream-scaleout-XXXXXX)
base=$((20000 + RANDOM % 20000))
kafka=127.0.0.1:$base
stamp=$$
pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  for n in $workers; do
    psql "${pgurl}" -qc "DROP SCHEMA IF EXISTS scaleout_${stamp}_$n CASCADE" >/dev/null 2>&1 || true
  done
  rm -rf "$dir"
}
trap cleanup EXIT
"$bin" broker --data-dir "$dir/kafka" --addr "$kafka" --registry-addr "" --partitions "$partitions" >"$dir/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$base") 2>/dev/null && break; sleep 0.1; done
echo "scaleout: producing $users users into $partitions partitions..."
"$bin" produce --brokers "$kafka" --schema-registry none --users "$users" >"$dir/produce.log" 2>&1

# cpu PID... prints the CPU seconds (user + system) the processes used.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{s += $14 + $15} END {printf "%.2f", s / hz}' $(printf '/proc/%s/stat ' "$@") 2>/dev/null; }
pgpids() { pgrep -d' ' -u postgres || true; } # the server's processes

printf '%8s %10s %10s %14s %16s\n' workers seconds rows/s "postgres CPU s" "workers CPU s"
for n in $workers; do
  schema=scaleout_${stamp}_$n
  sep='?'
  case $pgurl in *\?*) sep='&' ;; esac
  url="${pgurl}${sep}schema=$schema"
  pg_before=0
  for p in $(pgpids); do pg_before=$(echo "$pg_before + $(cpu "$p" || echo 0)" | bc); done
  start=$(date +%s.%N)
  wpids=()
  for i in $(seq "$n"); do
    "$bin" stream --brokers "$kafka" --schema-registry none --group "scaleout-$stamp-$n" --metrics-addr "" \
      --sink "$url" >"$dir/stream-$n-$i.log" 2>&1 &
    wpids+=($!)
  done
  pids+=("${wpids[@]}")
  while :; do
    # psql, not a `userstream users count` process ten times a second,
    # which would take CPU from what is measured.
    rows=$(psql "$pgurl" -tAc "SELECT count(*) FROM $schema.created_users" 2>/dev/null || echo 0)
    [ "$rows" -ge "$users" ] && break
    sleep 0.1
  done
  end=$(date +%s.%N)
  wcpu=$(cpu "${wpids[@]}")
  pg_after=0
  for p in $(pgpids); do pg_after=$(echo "$pg_after + $(cpu "$p" || echo 0)" | bc); done
  kill "${wpids[@]}" 2>/dev/null || true
  wait "${wpids[@]}" 2>/dev/null || true
  secs=$(echo "$end - $start" | bc)
  printf '%8d %10.2f %10.0f %14.2f %16s\n' "$n" "$secs" "$(echo "$users / $secs" | bc -l)" \
    "$(echo "$pg_after - $pg_before" | bc)" "$wcpu"
done
echo "scaleout: $(nproc) CPUs; the rates count each worker's start and group join"
