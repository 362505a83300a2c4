#!/usr/bin/env bash
# Side by side with the engines userstream replaces (issue 22). A first
# stub with one comparison: our stream against the original's Spark job
# (compat/spark/spark_stream.py, pyspark 4.0, local[2], its default trigger),
# both reading the same topic of JSON users into the same PostgreSQL:
# rows/s from the first row to the last, time from start to the first row,
# peak RSS (the sum of each side's processes' VmHWM). It prints a table and
# writes --out (default peers.json): {"users", "broker", "results": [{name,
# ours, peer, unit, ratio}]}, ratio being how many times better ours is
# (ours/peer for rows/s, peer/ours for seconds and MiB).
#   scripts/peers.sh [--users N] [--out FILE]
# Needs USERSTREAM_TEST_POSTGRES; USERSTREAM_TEST_BROKER picks the broker
# (embedded by default). A measurement: run it on an otherwise idle machine.
set -euo pipefail
out=peers.json users=200000
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --users) users=$2; shift 2 ;;
    *) echo "peers.sh: unknown argument $1 (want --users N, --out FILE)" >&2; exit 2 ;;
  esac
done
USERSTREAM_PEERS_OUT=$(realpath -m "$out") # relative to where it is called
cd "$(dirname "$0")/.."
: "${USERSTREAM_TEST_POSTGRES:?peers.sh: both sides write to PostgreSQL: set USERSTREAM_TEST_POSTGRES=postgres://...}"
USERSTREAM_SPARK_PYTHON=$(scripts/compat.sh spark-python)
export USERSTREAM_SPARK_PYTHON USERSTREAM_PEERS_OUT USERSTREAM_PEERS_USERS=$users
go test -count=1 -timeout 60m -run '^TestPeerStreamPostgres$' ./compat/spark/
python3 - "$USERSTREAM_PEERS_OUT" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"{d['users']} users on the {d['broker']} broker; ratio: times better ours is")
print(f"{'comparison':52} {'ours':>10} {'Spark':>10} {'unit':>7} {'ratio':>7}")
for r in d["results"]:
    print(f"{r['name']:52} {r['ours']:10.1f} {r['peer']:10.1f} {r['unit']:>7} {r['ratio']:7.2f}")
print("written to", sys.argv[1])
PY
