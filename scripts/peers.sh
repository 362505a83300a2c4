#!/usr/bin/env bash
# Side by side with the engines userstream replaces (issue 22; docs/benchmarks.md
# "Peers, side by side"). Runs the comparisons of peers/ (Go tests, one driver
# file each), each pair on the same machine, data and PostgreSQL, in turn:
#   stream     our stream vs the original's Spark job (pyspark 4.0, default and 1 s triggers)
#   connect    our Connect JDBC sink vs Kafka Connect 4.3.1 + Debezium's JDBC sink, tasks.max 1 and 2
#   scheduler  our scheduler vs Apache Airflow 3 (standalone)
#   broker     the embedded broker vs Apache Kafka 4.4: ready, produce and consume MB/s, RSS
#   dev        `userstream dev` embedded vs `dev --brokers` Apache Kafka, end to end
#   stack      the original's set of engines vs `userstream dev`: first stored user, total RSS
# It prints a table and writes --out (default peers.json): {"quick", "when",
# "results": [{name, ours, peer, unit, ratio, peer_name}], "skipped": [...]},
# ratio being how many times better ours is (ours/peer for rates, peer/ours
# for seconds and MiB).
#   scripts/peers.sh [--quick] [--out FILE] [--only NAME[,NAME]]
# --quick: smaller sizes (5,000-user backlogs, 10 s of latency, 50,000 broker
# records, a 30 s scheduler window and a burst of 30 runs), within 10 minutes
# on an idle two-core machine
# (setup, the first resolve of the jars and pip installs, not counted).
# Sizes can be set one by one: USERSTREAM_PEERS_USERS, _LATENCY_SECONDS,
# _BROKER_RECORDS, _DEV_USERS, _STACK_USERS, _SCHED_SECONDS, _SCHED_BURST.
# Needs USERSTREAM_TEST_POSTGRES (a role that may create databases: the
# scheduler comparison gives each side one), java 17 and mvn; installs pyspark and
# Airflow with scripts/compat.sh. A measurement: run it on an
# otherwise idle machine.
set -euo pipefail
out=peers.json quick=0 only=stream,connect,scheduler,broker,dev,stack
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --only) only=$2; shift 2 ;;
    *) echo "peers.sh: unknown argument $1 (want --quick, --out FILE, --only NAME[,NAME])" >&2; exit 2 ;;
  esac
done
declare -A tests=([stream]=TestStreamVsSpark [connect]=TestConnectSink [scheduler]=TestSchedulerVsAirflow
  [broker]=TestBroker [dev]=TestDevOnKafka [stack]=TestWholeStack)
run=()
for n in ${only//,/ }; do
  [ -n "${tests[$n]:-}" ] || { echo "peers.sh: --only $n: want one of ${!tests[*]}" >&2; exit 2; }
  run+=("${tests[$n]}")
done
USERSTREAM_PEERS_OUT=$(realpath -m "$out") # relative to where it is called
cd "$(dirname "$0")/.."
: "${USERSTREAM_TEST_POSTGRES:?peers.sh: the sides write to PostgreSQL: set USERSTREAM_TEST_POSTGRES=postgres://...}"
# Setup, not measured: the Python environments and the jars.
USERSTREAM_SPARK_PYTHON=$(scripts/compat.sh spark-python)
if [[ " ${run[*]} " == *" TestSchedulerVsAirflow "* ]]; then
  USERSTREAM_AIRFLOW_PYTHON=$(scripts/compat.sh airflow-server-python)
  export USERSTREAM_AIRFLOW_PYTHON
fi
export USERSTREAM_SPARK_PYTHON USERSTREAM_PEERS_OUT USERSTREAM_PEERS_QUICK=$quick
pattern="^($(IFS='|'; echo "${run[*]}"))\$"
begin=$(date +%s)
status=0
go test -count=1 -timeout 120m -v -run "$pattern" ./peers/ || status=$?
echo "peers.sh: $(( $(date +%s) - begin )) s"
python3 - "$USERSTREAM_PEERS_OUT" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(("quick form" if d["quick"] else "full form") + f", {d['when']}; ratio: how many times better ours is")
print(f"{'comparison':66} {'ours':>10} {'peer':>10} {'unit':>9} {'ratio':>7}  peer")
for r in d["results"]:
    print(f"{r['name']:66} {r['ours']:10.1f} {r['peer']:10.1f} {r['unit']:>9} {r['ratio']:7.2f}  {r['peer_name']}")
for s in d["skipped"]:
    print("skipped:", s)
print("written to", sys.argv[1])
PY
exit $status
