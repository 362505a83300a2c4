#!/usr/bin/env bash
# The fidelity tests (compat/, docs/compatibility.md): the originals' own
# clients and specs against userstream. Installs the pinned Python packages of
# compat/requirements-compat.txt and compat/requirements-airflow3.txt once
# each, in virtual environments under ~/.cache/userstream named by the
# file's hash (never in the tree), and the Node.js client of
# compat/node/package-lock.json with npm ci, and runs the tests with them.
#   scripts/compat.sh        the long form (make compat): quick's tests in
#                            full, then the spark part
#   scripts/compat.sh quick  the quick form scripts/test.sh runs (CI)
#   scripts/compat.sh spark  only the original's Spark job (compat/spark/:
#                            pyspark from compat/requirements-spark.txt in
#                            an environment of its own, about 500 MB the
#                            first time), against USERSTREAM_TEST_POSTGRES
#   scripts/compat.sh spark-python  prints that environment's interpreter
#                            (for scripts/peers.sh)
#   scripts/compat.sh airflow-server-python  installs Apache Airflow 3 from
#                            compat/requirements-airflow-server.txt (about
#                            300 MB) and prints its interpreter (for
#                            scripts/peers.sh's scheduler comparison)
# Without python3's venv and pip (or PyPI) the quick form says so and passes;
# the long form fails.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-long}

missing() {
  echo "compat: $1; the compatibility tests (compat/) do not run (apt-get install python3-venv python3-pip)" >&2
  [ "$mode" = quick ] && exit 0
  exit 1
}
command -v python3 >/dev/null || missing "no python3"
python3 -c 'import venv, ensurepip' 2>/dev/null || missing "python3 has no venv or ensurepip module"

cache=${XDG_CACHE_HOME:-$HOME/.cache}/userstream
mkdir -p "$cache"

# venv REQ prints the interpreter of the environment of REQ, installing it
# once under $cache, named by REQ's hash. One install at a time; .complete
# marks a finished one, so an interrupted install is redone, not used.
venv() {
  local req=$1 dir
  dir=$cache/venv-$(sha256sum "$req" | cut -c1-16)
  (
    flock 9
    if [ ! -e "$dir/.complete" ]; then
      echo "compat: installing $req into $dir (once; a minute or two)" >&2
      rm -rf "$dir"
      python3 -m venv "$dir" >&2 || exit 1
      "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2 || exit 1
      touch "$dir/.complete"
    fi
  ) 9>"$cache/venv.lock" || return 1
  echo "$dir/bin/python"
}
spark_python() {
  venv compat/requirements-spark.txt \
    || missing "python3 -m venv or pip could not install compat/requirements-spark.txt (is PyPI reachable?)"
}
if [ "$mode" = spark-python ]; then
  spark_python
  exit 0
fi
if [ "$mode" = airflow-server-python ]; then
  venv compat/requirements-airflow-server.txt \
    || missing "python3 -m venv or pip could not install compat/requirements-airflow-server.txt (is PyPI reachable?)"
  exit 0
fi

if [ "$mode" != spark ]; then
  USERSTREAM_COMPAT_PYTHON=$(venv compat/requirements-compat.txt) \
    || missing "python3 -m venv or pip could not install compat/requirements-compat.txt (is PyPI reachable?)"
  # Airflow 3's client has the module name of Airflow 2's: its own environment.
  USERSTREAM_COMPAT_AIRFLOW3_PYTHON=$(venv compat/requirements-airflow3.txt) \
    || missing "python3 -m venv or pip could not install compat/requirements-airflow3.txt (is PyPI reachable?)"
  export USERSTREAM_COMPAT_PYTHON USERSTREAM_COMPAT_AIRFLOW3_PYTHON
  export USERSTREAM_COMPAT=$mode
  # Confluent's Node.js Schema Registry client, pinned by
  # compat/node/package-lock.json, into compat/node/node_modules (not
  # committed), again when the lock file changes. Without node and npm its
  # test skips.
  if command -v npm >/dev/null && { [ ! -e compat/node/node_modules/.package-lock.json ] ||
    [ compat/node/package-lock.json -nt compat/node/node_modules/.package-lock.json ]; }; then
    echo "compat: npm ci in compat/node (once; a minute)" >&2
    (cd compat/node && npm ci --no-audit --no-fund >&2) ||
      echo "compat: npm ci in compat/node failed; TestNodeSchemaRegistryClient tries again and says why" >&2
  fi

  go test -count=1 -timeout 20m ./compat/
  go test -count=1 -run '^TestConfluentPythonClient$' ./internal/schema/registry/
fi

# The original's Spark job: too heavy for CI (pyspark, a JVM, Apache Kafka).
if [ "$mode" = long ] || [ "$mode" = spark ]; then
  : "${USERSTREAM_TEST_POSTGRES:?compat: the Spark job writes to PostgreSQL: set USERSTREAM_TEST_POSTGRES=postgres://...}"
  USERSTREAM_SPARK_PYTHON=$(spark_python)
  export USERSTREAM_SPARK_PYTHON
  go test -count=1 -timeout 40m -v -run '^TestOriginalSparkJob$' ./compat/spark/
fi
