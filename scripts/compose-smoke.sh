#!/usr/bin/env bash
# Smoke test of the Compose stack, for a machine with Docker (the development
# machines have none: scripts/check-deploy.sh checks everything that can be
# checked without it, and runs this script against a stand-in `docker`).
#
#   scripts/compose-smoke.sh
#
# In its own Compose project (userstream-smoke, so your own stack and its
# volumes are not touched), with free loopback ports and a throwaway
# PostgreSQL password:
#   1. docker compose up -d --build --wait   (every healthcheck passes)
#   2. produce SMOKE_USERS users (10000) through the api service
#   3. the stream worker writes them to Cassandra: count the rows with cqlsh
#      and with `userstream users count`
#   4. a second consumer group writes the same topic to PostgreSQL: count the
#      rows with psql and with `userstream users count`
#   5. docker compose down -v   (always, also on failure; SMOKE_KEEP=1 keeps it)
#
# Needs Docker Compose v2 (`docker compose`: up --wait, BuildKit builds) and
# about 8 GB of memory for Docker. Prints "compose-smoke: ok ..." and exits 0
# when both databases hold exactly SMOKE_USERS rows.
set -euo pipefail
cd "$(dirname "$0")/.."

users=${SMOKE_USERS:-10000}
timeout=${SMOKE_TIMEOUT:-900}   # seconds for `up --wait`, and for each count to arrive
project=${SMOKE_PROJECT:-userstream-smoke}
keep=${SMOKE_KEEP:-}
pg_stream=$project-pg-stream

say() { echo "compose-smoke: $*"; }
die() {
  echo "compose-smoke: FAIL $*" >&2
  exit 1
}

command -v docker >/dev/null 2>&1 || die "no docker command: this test needs a Docker host"
version=$(docker compose version --short 2>/dev/null) ||
  die "needs Docker Compose v2 (\`docker compose\`); docker-compose v1 has no up --wait and builds without BuildKit"
case $version in
  1.* | v1.*) die "needs Docker Compose v2, found $version" ;;
esac
say "Docker Compose $version"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/compose-smoke.XXXXXX")

# A port nothing listens on now, or the default when python3 is missing.
free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
  else
    echo "$1"
  fi
}

# Everything this run needs, in its own env file: no .env of yours and
# nothing exported in this shell changes what is tested.
password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
{
  echo "POSTGRES_PASSWORD=$password"
  echo "USERSTREAM_HOST_IP=127.0.0.1"
  echo "USERSTREAM_ZOOKEEPER_HOST_PORT=$(free_port 2181)"
  echo "USERSTREAM_KAFKA_HOST_PORT=$(free_port 9092)"
  echo "USERSTREAM_SCHEMA_REGISTRY_HOST_PORT=$(free_port 8081)"
  echo "USERSTREAM_CONTROL_CENTER_HOST_PORT=$(free_port 9021)"
  echo "USERSTREAM_CASSANDRA_HOST_PORT=$(free_port 9042)"
  echo "USERSTREAM_POSTGRES_HOST_PORT=$(free_port 5432)"
  echo "USERSTREAM_API_HOST_PORT=$(free_port 8088)"
} >"$tmp/smoke.env"
unset USERSTREAM_SINK USERSTREAM_SOURCE USERSTREAM_DURATION COMPOSE_FILE COMPOSE_PROFILES

dc() { docker compose -p "$project" -f docker-compose.yml --env-file "$tmp/smoke.env" "$@"; }

cleanup() {
  status=$?
  if [ "$status" -ne 0 ]; then
    echo "compose-smoke: state at the failure:" >&2
    dc ps -a >&2 || true
    dc logs --no-color --tail 40 >&2 || true
    docker logs --tail 40 "$pg_stream" >&2 2>/dev/null || true
  fi
  docker rm -f "$pg_stream" >/dev/null 2>&1 || true
  if [ -n "$keep" ]; then
    say "SMOKE_KEEP is set: the stack stays up (docker compose -p $project down -v to remove it)"
  else
    say "docker compose down -v"
    dc down -v --remove-orphans >/dev/null 2>&1 || echo "compose-smoke: down -v failed" >&2
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT

# Waits until CMD prints exactly $users, or $timeout seconds pass.
await_count() {
  local what=$1 got= start=$SECONDS
  shift
  while :; do
    got=$("$@" 2>/dev/null | tr -d '[:space:]' || true)
    [ "$got" = "$users" ] && break
    [ $((SECONDS - start)) -ge "$timeout" ] && die "$what: ${got:-nothing} rows after ${timeout}s, want $users"
    sleep 5
  done
  say "$what: $got rows"
}

# 1. Up, healthy.
wait_args=(--wait)
if dc up --help 2>/dev/null | grep -q -- '--wait-timeout'; then
  wait_args+=(--wait-timeout "$timeout")
fi
say "docker compose up -d --build ${wait_args[*]}"
dc up -d --build "${wait_args[@]}" || die "up --wait: a service did not become healthy"

# 2. Produce.
say "producing $users users"
dc --profile ingest run --rm -T producer produce \
  --brokers broker:29092 --schema-registry http://schema-registry:8081 \
  --source http://api:8088/api/ --users "$users" || die "producer run failed"

# 3. Cassandra, through the stack's own stream worker.
cassandra_url='cassandra://cassandra:9042/spark_streams?consistency=one'
cql_count() {
  dc exec -T cassandra cqlsh cassandra -e 'SELECT COUNT(*) FROM spark_streams.created_users;' |
    awk '/^-+$/ { getline; print $1; exit }'
}
await_count "Cassandra (cqlsh)" cql_count
await_count "Cassandra (userstream users count)" \
  dc run --rm -T --no-deps stream users count --sink "$cassandra_url"

# 4. PostgreSQL, through a second consumer group reading the topic from the start.
pg_url="postgres://userstream:$password@postgres:5432/userstream?sslmode=disable"
say "a PostgreSQL stream worker (group userstream-smoke-pg)"
dc run -d --no-deps --name "$pg_stream" stream stream \
  --brokers broker:29092 --schema-registry http://schema-registry:8081 \
  --group userstream-smoke-pg --sink "$pg_url" --metrics-addr "" >/dev/null ||
  die "could not start the PostgreSQL stream worker"
psql_count() {
  dc exec -T postgres psql -U userstream -d userstream -tAc 'SELECT count(*) FROM created_users'
}
await_count "PostgreSQL (psql)" psql_count
await_count "PostgreSQL (userstream users count)" \
  dc run --rm -T --no-deps stream users count --sink "$pg_url"

say "ok: $users users in Cassandra and in PostgreSQL"
