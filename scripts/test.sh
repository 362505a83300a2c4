#!/usr/bin/env bash
# Runs the whole test suite, the quick form of the fault suite (chaos/)
# included. When PostgreSQL's server binaries are installed
# and USERSTREAM_TEST_POSTGRES is not set, it starts a throwaway cluster on
# 127.0.0.1 for the run and removes it afterwards, so the PostgreSQL tests run
# instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

cleanup() { :; }
if [ -z "${USERSTREAM_TEST_POSTGRES:-}" ]; then
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$bindir" ] && [ -x "$bindir/initdb" ]; then
    pgdir=$(mktemp -d /tmp/userstream-pg.XXXXXX)
    port=${USERSTREAM_TEST_PG_PORT:-55432}
    # A port another cluster (a developer's, say) already holds is skipped.
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    runas=()
    if [ "$(id -u)" = 0 ]; then
      id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
      chown postgres "$pgdir"
      runas=(runuser -u postgres --)
    fi
    # Set before the cluster starts, so a failure below still stops and removes it.
    cleanup() { "${runas[@]}" "$bindir/pg_ctl" -D "$pgdir/data" -m fast -w stop >/dev/null 2>&1 || true; rm -rf "$pgdir"; }
    trap cleanup EXIT
    "${runas[@]}" "$bindir/initdb" -D "$pgdir/data" -U userstream --auth=trust >/dev/null
    "${runas[@]}" "$bindir/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w \
      -o "-h 127.0.0.1 -p $port -k $pgdir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null \
      || { echo "test.sh: PostgreSQL did not start; its log:"; cat "$pgdir/log"; exit 1; }
    "${runas[@]}" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U userstream userstream_test
    export USERSTREAM_TEST_POSTGRES="postgres://userstream@127.0.0.1:$port/userstream_test?sslmode=disable"
    echo "test.sh: PostgreSQL $($bindir/postgres --version | awk '{print $3}') on 127.0.0.1:$port for this run"
  else
    echo "test.sh: no PostgreSQL server installed; PostgreSQL tests will skip (apt-get install postgresql)"
  fi
fi
trap 'cleanup; cleanup_cassandra' EXIT
cleanup_cassandra() { :; }

# The real engines' jars (internal/engines/poms), resolved once before the
# packages that start them run side by side.
if command -v java >/dev/null && command -v mvn >/dev/null; then
  bash scripts/engines.sh resolve >/dev/null
  # One Cassandra node for the whole run (a keyspace per test), instead of
  # one per test binary; unset, each binary starts its own.
  if [ -z "${USERSTREAM_TEST_CASSANDRA:-}" ]; then
    cassdir=$(mktemp -d /tmp/userstream-cassandra.XXXXXX)
    cleanup_cassandra() { ENGINES_DIR=$cassdir bash scripts/engines.sh kill cassandra >/dev/null 2>&1 || true; rm -rf "$cassdir"; }
    addr=$(ENGINES_DIR=$cassdir bash scripts/engines.sh start cassandra --port 0 | sed -n 's/^CASSANDRA=//p')
    export USERSTREAM_TEST_CASSANDRA=$addr
    echo "test.sh: Apache Cassandra on $addr for this run"
  fi
fi

go vet ./...
# PKGS narrows the run (make chaos: PKGS=./chaos/); extra arguments go to
# go test.
go test -count=1 -timeout 20m "$@" ${PKGS:-./...}

# The fidelity tests, quick form (scripts/compat.sh, docs/compatibility.md):
# the originals' own clients from a pinned virtual environment. Not with PKGS
# (make chaos); COMPAT=none skips them.
if [ -z "${PKGS:-}" ] && [ "${COMPAT:-quick}" != none ]; then
  bash scripts/compat.sh quick
fi

# The end-to-end matrix: the same cases again on real Apache Kafka
# (internal/engines runs it from Maven jars; USERSTREAM_TEST_BROKER picks the
# broker, docs/engines.md). The quick form runs the pipeline's cases on Kafka
# 4 (KRaft) and one on Kafka 3.9 on ZooKeeper; with PKGS set (make chaos) the
# whole of PKGS runs on both. MATRIX=none skips it.
if [ "${MATRIX:-quick}" != none ]; then
  if command -v java >/dev/null && command -v mvn >/dev/null; then
    if [ -n "${PKGS:-}" ]; then
      for kind in kafka kafka-zk; do
        echo "test.sh: $PKGS on $kind"
        USERSTREAM_TEST_BROKER=$kind go test -count=1 -timeout 20m "$@" $PKGS
      done
    else
      echo "test.sh: the end-to-end matrix on Apache Kafka 4 (KRaft)"
      USERSTREAM_TEST_BROKER=kafka go test -count=1 -timeout 20m "$@" \
        -run 'TestEndToEnd|TestTopicsCreateDescribe|TestDevOutsideKafka|TestPoison|TestConnectWorkerKill|TestTwoWorkersShareAndTakeOver|TestJDBCConnectorLifecycle|TestPagesAndTwins' \
        ./cmd/userstream/ ./chaos/ ./internal/connect/ ./internal/web/
      echo "test.sh: topics and the UI's pages on a three-node Apache Kafka 4 cluster"
      USERSTREAM_TEST_BROKER=kafka3 go test -count=1 -timeout 20m "$@" -run 'TestPagesAndTwins|TestTopicsCreateDescribe' \
        ./internal/web/ ./cmd/userstream/
      echo "test.sh: the end-to-end matrix on Apache Kafka 3.9 on ZooKeeper"
      USERSTREAM_TEST_BROKER=kafka-zk go test -count=1 -timeout 20m "$@" \
        -run 'TestEndToEndKilledStreamLosesNothing|TestTwoWorkersShareAndTakeOver' ./cmd/userstream/ ./internal/connect/
    fi
  else
    echo "test.sh: no java or mvn: the matrix on Apache Kafka does not run (apt-get install openjdk-17-jdk-headless maven)"
  fi
fi
