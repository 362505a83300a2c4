#!/usr/bin/env bash
# Real engines without Docker: Apache Kafka 4 (KRaft, 1 or 3 nodes), Kafka 3.9
# on ZooKeeper, Apache Cassandra 5.0 (one node). Versions are pinned in internal/engines/poms; the first start
# resolves the jars with Maven into ~/.m2. Data and logs under ENGINES_DIR.
#   scripts/engines.sh start kafka [--nodes 1|3]   # last line: BOOTSTRAP=host:port,...
#   scripts/engines.sh start kafka-zk
#   scripts/engines.sh start cassandra             # last line: CASSANDRA=127.0.0.1:9042
#   scripts/engines.sh kill kafka N | restart kafka N
#   scripts/engines.sh kill cassandra | restart cassandra
#   scripts/engines.sh stop [NAME] | status | resolve [NAME...]
# See docs/engines.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=bin/engines
# Rebuilt when any of its sources is newer than the binary.
if [ ! -x "$bin" ] || [ -n "$(find cmd/engines internal/engines -newer "$bin" -type f 2>/dev/null | head -1)" ]; then
  command -v go >/dev/null || { echo "engines.sh: go is not on PATH (Go 1.26 builds the harness)" >&2; exit 1; }
  go build -o "$bin" ./cmd/engines
fi
exec "$bin" "$@"
