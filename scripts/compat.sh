#!/usr/bin/env bash
# The fidelity tests (compat/, docs/compatibility.md): the originals' own
# clients and specs against userstream. Installs the pinned Python packages of
# compat/requirements-compat.txt once, in a virtual environment under
# ~/.cache/userstream named by the file's hash (never in the tree), and runs
# the tests with it.
#   scripts/compat.sh        the long form (make compat)
#   scripts/compat.sh quick  the quick form scripts/test.sh runs (CI)
# Without python3's venv and pip the quick form says so and passes; the long
# form fails.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-long}

missing() {
  echo "compat: $1; the compatibility tests (compat/) do not run (apt-get install python3-venv python3-pip)"
  [ "$mode" = quick ] && exit 0
  exit 1
}
command -v python3 >/dev/null || missing "no python3"
python3 -c 'import venv, ensurepip' 2>/dev/null || missing "python3 has no venv or ensurepip module"

req=compat/requirements-compat.txt
hash=$(sha256sum "$req" | cut -c1-16)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/userstream
venv=$cache/venv-$hash
mkdir -p "$cache"
# One install at a time; .complete marks a finished one, so an interrupted
# install is removed and done again rather than used.
exec 9>"$cache/venv.lock"
flock 9
if [ ! -e "$venv/.complete" ]; then
  echo "compat: installing $req into $venv (once; about two minutes)"
  rm -rf "$venv"
  python3 -m venv "$venv" || missing "python3 -m venv failed"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" \
    || { echo "compat: pip could not install $req (is PyPI reachable?)"; exit 1; }
  touch "$venv/.complete"
fi
flock -u 9
export USERSTREAM_COMPAT_PYTHON=$venv/bin/python
export USERSTREAM_COMPAT=$mode

go test -count=1 -timeout 20m ./compat/
go test -count=1 -run '^TestConfluentPythonClient$' ./internal/schema/registry/
