#!/usr/bin/env bash
# Fuzzes every decoder (the Random User API's JSON, the original pipeline's
# JSON, the Avro wire format, the CQL test double's frames) and Validate's
# fast roads against net/mail and net/url, each for
# FUZZTIME (default 10m; CI passes 20s). New interesting inputs are kept as
# corpora under each package's testdata/fuzz/, where `go test` replays them
# as regression cases; commit them. FUZZ_PARALLEL sets the fuzzing workers
# (default: one a core).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-10m}
keep=${FUZZ_KEEP:-1}
targets=(
  "./internal/randomuser FuzzDecode"
  "./internal/user FuzzAppendJSONString"
  "./internal/user FuzzAppendJSON"
  "./internal/user FuzzDecodeJSON"
  "./internal/user FuzzDecodeJSONFast"
  "./internal/user FuzzPlainEmail"
  "./internal/user FuzzPlainURL"
  "./internal/schema FuzzSerdeDecode"
  "./internal/sink/cassandra/cassandratest FuzzFrames"
)
cache=$(go env GOCACHE)/fuzz
for t in "${targets[@]}"; do
  read -r pkg fn <<<"$t"
  echo "fuzz: $pkg $fn for $fuzztime"
  # New interesting inputs are minimized for at most 5 s each (60 s by
  # default): a whole API response takes that long, and the workers stand
  # still meanwhile.
  log=$(mktemp)
  rc=0
  go test -run '^$' -fuzz "^$fn\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s -parallel "${FUZZ_PARALLEL:-$(nproc)}" "$pkg" 2>&1 | tee "$log" || rc=$?
  if [ "$rc" != 0 ]; then
    # Go 1.26's fuzz coordinator can report its own -fuzztime deadline as a
    # failure (golang/go#75804, fixed in 1.27): a bare "context deadline
    # exceeded" with no failing input written and no panic or test error.
    # Anything else, or any reproducer, fails the run.
    if grep -q 'context deadline exceeded' "$log" &&
      ! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$log"; then
      echo "fuzz: $fn: ignoring the fuzz coordinator's deadline report (golang/go#75804); no failing input was found"
    else
      rm -f "$log"
      exit "$rc"
    fi
  fi
  rm -f "$log"
  if [ "$keep" = 1 ]; then
    src="$cache/$(go list "$pkg")/$fn"
    if [ -d "$src" ]; then
      mkdir -p "$pkg/testdata/fuzz/$fn"
      cp -n "$src"/* "$pkg/testdata/fuzz/$fn/" 2>/dev/null || true
      echo "fuzz: corpus of $fn: $(ls "$pkg/testdata/fuzz/$fn" | wc -l) inputs in $pkg/testdata/fuzz/$fn"
    fi
  fi
done
