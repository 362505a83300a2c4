#!/usr/bin/env bash
# Checks the deployment files without a Docker engine:
#  1. docker-compose.yml validates (`docker-compose config -q`, Debian's v1);
#  2. its normalised form keeps the rules of docs/deploy.md: pinned images,
#     no pip, service names inside the network, one network, healthchecks,
#     a scalable stream; a self-test shows each rule rejects a broken copy;
#  3. the Dockerfile is multi-stage, static, non-root, and its builder's
#     `go build` line, read from the Dockerfile and run as written (only /out
#     becomes a temporary directory), gives a static binary that runs alone in
#     an otherwise empty root file system as user 65532, and knows every
#     subcommand and flag the compose file gives it.
# Ends with "check-deploy: N passed, M failed"; exit 1 when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=/usr/bin/python3
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*" >&2; }
finish() {
  echo "check-deploy: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

tmp=$(mktemp -d /tmp/check-deploy.XXXXXX)
apipid=
trap '[ -n "$apipid" ] && kill "$apipid" 2>/dev/null; rm -rf "$tmp"' EXIT

# ---- 1. compose validates ---------------------------------------------------
if ! command -v docker-compose >/dev/null 2>&1; then
  bad "docker-compose is not installed: apt-get install docker-compose (Debian's v1 validates the file; .ci/run installs it)"
  finish
fi
echo "check-deploy: $(docker-compose version --short 2>/dev/null || docker-compose --version)"
# The defaults of the file, not whatever this shell exports or a local .env
# file says.
: >"$tmp/empty.env"
dc() { docker-compose --env-file "$tmp/empty.env" -f docker-compose.yml "$@"; }
unset USERSTREAM_SINK USERSTREAM_SOURCE USERSTREAM_DURATION USERSTREAM_HOST_ADDR \
  USERSTREAM_LOG_LEVEL USERSTREAM_LOG_FORMAT POSTGRES_PASSWORD COMPOSE_FILE COMPOSE_PROJECT_NAME
if dc config -q 2>"$tmp/config.err"; then
  ok "docker-compose -f docker-compose.yml config -q"
else
  bad "docker-compose config -q: $(cat "$tmp/config.err")"
  finish
fi
dc config >"$tmp/compose.yml" 2>"$tmp/config.err" ||
  { bad "docker-compose config: $(cat "$tmp/config.err")"; finish; }

# ---- 2. rules on the normalised file -----------------------------------------
if $PY deploy/check_deploy.py compose "$tmp/compose.yml"; then
  ok "compose rules: pinned images, no pip, service names inside, one network, healthchecks, scalable stream"
else
  bad "compose rules (above)"
fi
if $PY deploy/check_deploy.py selftest "$tmp/compose.yml" >"$tmp/selftest.out"; then
  ok "compose rules reject $(wc -l <"$tmp/selftest.out") deliberately broken copies"
else
  bad "compose rule self-test (above)"
fi
# The sink and source are variables: switching them must keep the file valid.
if USERSTREAM_SINK='postgres://userstream:userstream@postgres:5432/userstream?sslmode=disable' \
  USERSTREAM_SOURCE='https://randomuser.me/api/' dc config >"$tmp/pg.yml" 2>"$tmp/config.err" &&
  grep -q 'postgres://userstream:userstream@postgres:5432/userstream' "$tmp/pg.yml" &&
  grep -q 'https://randomuser.me/api/' "$tmp/pg.yml" &&
  $PY deploy/check_deploy.py compose "$tmp/pg.yml"; then
  ok "USERSTREAM_SINK=postgres://... and USERSTREAM_SOURCE=https://randomuser.me/api/ reach the commands and keep the rules"
else
  bad "switching sink/source by variable: $(cat "$tmp/config.err")"
fi

# ---- 3. the image: Dockerfile rules and its static binary --------------------
if buildcmd=$($PY deploy/check_deploy.py dockerfile Dockerfile); then
  ok "Dockerfile rules: multi-stage, pinned, distroless static nonroot, USER 65532, /data owned by it, labels"
else
  bad "Dockerfile rules (above)"
fi
if $PY deploy/check_deploy.py dockerfile-selftest Dockerfile >"$tmp/dselftest.out"; then
  ok "Dockerfile rules reject $(wc -l <"$tmp/dselftest.out") deliberately broken copies"
else
  bad "Dockerfile rule self-test (above)"
fi
if [ -z "${buildcmd:-}" ]; then
  bad "no go build command found in the Dockerfile"
  finish
fi

# The builder image's Go must be able to build the module without fetching a
# toolchain (the golang image sets GOTOOLCHAIN=local).
imgver=$(sed -n 's/^FROM[^ ]* *\(--[^ ]* *\)*golang:\([0-9][0-9.]*\).*/\2/p' Dockerfile | head -n 1)
modver=$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)
localver=$(go env GOVERSION | sed 's/^go//')
if [ -n "$imgver" ] && [ "$(printf '%s\n%s\n' "$modver" "$imgver" | sort -V | tail -n 1)" = "$imgver" ]; then
  ok "builder golang:$imgver can build go.mod's go $modver"
else
  bad "builder golang:${imgver:-?} is older than go.mod's go $modver"
fi
[ "$localver" = "$imgver" ] || echo "note: local Go is $localver, the builder image has $imgver"

# Run the builder's command as the Dockerfile writes it: in the build
# context's root (WORKDIR /src after COPY . .), with BuildKit's TARGETOS and
# TARGETARCH for this machine, by /bin/sh like RUN.
runcmd=${buildcmd//\/out\//$tmp\/out\/}
echo "build: $runcmd"
mkdir -p "$tmp/out"
built=false
for attempt in 1 2 3; do
  if env TARGETOS="$(go env GOOS)" TARGETARCH="$(go env GOARCH)" GOTOOLCHAIN=local GOFLAGS= \
    /bin/sh -c "$runcmd" 2>"$tmp/build.err"; then
    built=true
    break
  fi
  # Other work may be mid-change in a shared tree; CI builds a clean commit.
  [ -n "${CHECK_DEPLOY_RETRY:-}" ] || break
  echo "build failed (attempt $attempt), retrying in 60 s:" >&2
  head -n 5 "$tmp/build.err" >&2
  sleep 60
done
bin=$tmp/out/userstream
if $built && [ -x "$bin" ]; then
  ok "built $(du -h "$bin" | cut -f1) binary with the Dockerfile's command"
else
  bad "the Dockerfile's go build failed: $(head -n 20 "$tmp/build.err")"
  finish
fi

desc=$(file -b "$bin")
if ! grep -q 'dynamically linked' <<<"$desc" && grep -Eq 'statically linked|static-pie' <<<"$desc"; then
  ok "static: file says: $desc"
else
  bad "not static: file says: $desc"
fi
if ldd "$bin" >"$tmp/ldd.out" 2>&1; then
  bad "ldd lists shared libraries: $(cat "$tmp/ldd.out")"
else
  ok "ldd: $(tr -d '\t' <"$tmp/ldd.out")"
fi

# The final image holds /userstream, /data and certificates; nothing else the
# binary could lean on. Where we may chroot (root), run it in such an empty
# root as 65532:65532, as the image's USER would; otherwise run it with an
# empty environment.
root=$tmp/rootfs
mkdir -p "$root/data"
cp "$bin" "$root/userstream"
chown -R 65532:65532 "$root/data" 2>/dev/null || true
chroot=$(command -v chroot || true)
if [ "$(id -u)" = 0 ] && [ -n "$chroot" ]; then
  how="chroot into an empty root as 65532:65532"
  us_argv=(env -i "$chroot" --userspec=65532:65532 "$root" /userstream)
else
  how="empty environment (not root: no chroot)"
  us_argv=(env -i "$root/userstream")
fi
# env and chroot exec, so a background `us_argv` has the server's own pid.
us() { "${us_argv[@]}" "$@"; }
if us --help >"$tmp/help.out" 2>&1; then
  ok "userstream --help runs ($how)"
else
  bad "userstream --help failed ($how): $(head -n 5 "$tmp/help.out")"
fi
if us api --help >"$tmp/api.out" 2>&1 && grep -q -- '--addr' "$tmp/api.out"; then
  ok "userstream api --help runs and has --addr"
else
  bad "userstream api --help: no --addr flag yet: $(head -n 3 "$tmp/api.out")"
fi
code=0
us no-such-command >"$tmp/unknown.out" 2>&1 || code=$?
if [ "$code" -ne 0 ] && grep -q 'unknown command' "$tmp/unknown.out"; then
  ok "an unknown command exits $code and says so"
else
  bad "an unknown command exited $code: $(head -n 2 "$tmp/unknown.out")"
fi

# The api role serves from that root, as the `api` service does (on a
# loopback port of this machine here).
port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${us_argv[@]}" api --addr "127.0.0.1:$port" >"$tmp/api.log" 2>&1 &
apipid=$!
if $PY - "$port" <<'PYEOF'
import json, sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/api/?results=3&seed=check-deploy"
for _ in range(50):
    try:
        body = json.load(urllib.request.urlopen(url, timeout=2))
        break
    except OSError:
        time.sleep(0.2)
else:
    sys.exit(f"no answer from {url}")
assert len(body["results"]) == 3, body
assert body["info"]["version"] == "1.4", body["info"]
assert all("@" in u["email"] and u["login"]["uuid"] for u in body["results"]), body
PYEOF
then
  ok "userstream api served 3 users of API version 1.4 ($how)"
else
  bad "userstream api did not serve ($how): $(head -n 5 "$tmp/api.log")"
fi
kill "$apipid" 2>/dev/null
wait "$apipid" 2>/dev/null

# Every subcommand and flag that the compose file passes to our image exists.
$PY - "$tmp/compose.yml" >"$tmp/cmds" <<'EOF'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
for name, svc in sorted(cfg["services"].items()):
    if svc.get("image") != "userstream:dev":
        continue
    cmd = [str(c) for c in svc.get("command") or []]
    sub = []
    for c in cmd:
        if c.startswith("-"):
            break
        sub.append(c)
    flags = sorted({c.split("=")[0] for c in cmd if c.startswith("--")})
    print(name, ",".join(sub), ",".join(flags))
EOF
while read -r svc sub flags; do
  IFS=, read -r -a subargs <<<"$sub"
  if ! us "${subargs[@]}" --help >"$tmp/sub.out" 2>&1; then
    bad "$svc: userstream ${subargs[*]} --help failed: $(head -n 2 "$tmp/sub.out")"
    continue
  fi
  missing=()
  IFS=, read -r -a fl <<<"$flags"
  for f in "${fl[@]}"; do
    grep -q -- "$f\b" "$tmp/sub.out" || missing+=("$f")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    ok "$svc: userstream ${subargs[*]} knows ${fl[*]}"
  else
    bad "$svc: userstream ${subargs[*]} lacks ${missing[*]}"
  fi
done <"$tmp/cmds"

finish
