#!/usr/bin/env bash
# Measures `userstream dev`'s footprint (docs/benchmarks.md, "Footprint"):
# how long each listener takes to accept after the start, how long the first
# row takes to land, and the resident memory and data dir size every
# SAMPLE seconds while the DAG ingests RATE users/s for DURATION.
#
#   scripts/footprint.sh                  # 10 minutes at 5000 users/s
#   DURATION=60 RATE=2000 scripts/footprint.sh
#
# Everything listens on 127.0.0.1 on ports of its own and stops by itself;
# the data dir is a temporary one, removed at the end (KEEP=1 keeps it).
# The topic's retention is RETENTION_BYTES a partition (default 64 MiB), so
# the broker's share of the data dir must stay bounded while users.db grows.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-600}
rate=${RATE:-5000}
sample=${SAMPLE:-10}
retention=${RETENTION_BYTES:-67108864}
bin=${BIN:-bin/userstream}
[ -x "$bin" ] || go build -o "$bin" ./cmd/userstream
dir=$(mktemp -d /tmp/userstream-footprint-XXXXXX)
base=$((20000 + RANDOM % 20000))
kafka=127.0.0.1:$base registry=127.0.0.1:$((base + 1)) api=127.0.0.1:$((base + 2))
web=127.0.0.1:$((base + 3)) metrics=127.0.0.1:$((base + 4)) connect=127.0.0.1:$((base + 5))

count_sql='SELECT (SELECT coalesce(sum(n), 0) FROM user_counts) + (SELECT count(*) FROM created_users WHERE rowid > (SELECT counted FROM user_counts_mark))'
now_ms() { date +%s%3N; }
up() { (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; }

start=$(now_ms)
USERSTREAM_ADMIN_PASSWORD=footprint-$RANDOM "$bin" dev --data-dir "$dir" --kafka-addr "$kafka" \
  --registry-addr "$registry" --api-addr "$api" --web-addr "$web" --metrics-addr "$metrics" --connect-addr "$connect" \
  --schedule '@every 10s' --users-per-run 0 --run-duration 10s --rate "$rate" \
  --retention-bytes "$retention" --status-every 60s >"$dir.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; [ "${KEEP:-0}" = 1 ] || rm -rf "$dir" "$dir.log"' EXIT

declare -A ready
pending="kafka registry api web metrics connect"
first_row=""
while :; do
  t=$(( $(now_ms) - start ))
  for name in $pending; do
    if up "${!name}"; then
      ready[$name]=$t
      pending=${pending//$name/}
    fi
  done
  if [ -z "$first_row" ] && [ -f "$dir/users.db" ] &&
    [ "$(sqlite3 -readonly "$dir/users.db" 'SELECT count(*) FROM (SELECT 1 FROM created_users LIMIT 1)' 2>/dev/null || echo 0)" -gt 0 ]; then
    first_row=$t
  fi
  if [ -z "${pending// /}" ] && [ -n "$first_row" ]; then break; fi
  if [ "$t" -gt 30000 ]; then
    echo "footprint: not ready after 30 s (listeners left: $pending; first row: ${first_row:-none}); log:" >&2
    cat "$dir.log" >&2
    exit 1
  fi
  sleep 0.01
done
echo "footprint: started $(date -u +%FT%TZ), $rate users/s for ${duration}s, retention.bytes $retention a partition"
for name in kafka registry api web metrics connect; do
  printf 'footprint: %-8s listening after %5d ms\n' "$name" "${ready[$name]}"
done
printf 'footprint: first row stored after %d ms\n' "$first_row"
printf '%8s %10s %12s %12s %12s\n' "t (s)" "RSS (MiB)" "kafka/ (MiB)" "users.db" "rows"
end=$(( $(date +%s) + duration ))
while [ "$(date +%s)" -lt "$end" ]; do
  sleep "$sample"
  kill -0 "$pid" 2>/dev/null || { echo "footprint: dev exited; log:" >&2; cat "$dir.log" >&2; exit 1; }
  rss=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$pid/status")
  kmb=$(du -sm "$dir/kafka" | cut -f1)
  dbmb=$(du -sm "$dir"/users.db* | awk '{s += $1} END {print s}')
  # The sink's own exact count (its per-nat counts plus the rows above
  # their mark), not a scan of millions of rows.
  rows=$(sqlite3 -readonly "$dir/users.db" "$count_sql" 2>/dev/null || echo "?")
  printf '%8d %10s %12s %12s %12s\n' "$(( ($(now_ms) - start) / 1000 ))" "$rss" "$kmb" "${dbmb}M" "$rows"
done
peak=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$pid/status")
echo "footprint: peak RSS ${peak} MiB"
