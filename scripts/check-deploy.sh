#!/usr/bin/env bash
# Checks the deployment files without a Docker engine:
#  1. docker-compose.yml validates (`docker-compose config -q`, Debian's v1),
#     alone and with deploy/compose.jmx.yml;
#  2. its rendered form keeps the rules of docs/deploy.md (deploy/check_deploy.py):
#     images pinned by tag and digest as deploy/images.lock records them and
#     none past end of support, heaps capped under per-container memory
#     ceilings that fit 8 GB, host ports on 127.0.0.1 and each one a
#     variable, JMX only on demand, no default password, a network Compose
#     names, healthchecks that mean ready, a producer that plain `up` never
#     starts, service names inside the network, a scalable stream; the source
#     is rendered under several environments (no password, moved ports, the
#     JMX override), and self-tests show each rule rejects a broken copy,
#     including the old form of every fixed item;
#  3. the Dockerfile: `# syntax=docker/dockerfile:1` first, multi-stage, both
#     bases pinned by digest, static, non-root; its builder's `go build` line,
#     read from the Dockerfile and run as written (only /out becomes a
#     temporary directory), gives a static binary that runs alone in an
#     otherwise empty root file system as user 65532, and knows every
#     subcommand and flag that the compose file and scripts/compose-smoke.sh
#     give it;
#  4. scripts/compose-smoke.sh and deploy/pin-digests.sh run against a
#     stand-in `docker` (their control flow and the commands they issue; the
#     real run needs a Docker host).
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
# file says; only the password, which has no default, is given.
printf 'POSTGRES_PASSWORD=check-deploy-not-a-secret\n' >"$tmp/test.env"
dc() { docker-compose --env-file "$tmp/test.env" -f docker-compose.yml "$@"; }
unset USERSTREAM_SINK USERSTREAM_SOURCE USERSTREAM_DURATION USERSTREAM_HOST_ADDR USERSTREAM_HOST_IP \
  USERSTREAM_ZOOKEEPER_HOST_PORT USERSTREAM_KAFKA_HOST_PORT USERSTREAM_SCHEMA_REGISTRY_HOST_PORT \
  USERSTREAM_CONTROL_CENTER_HOST_PORT USERSTREAM_CASSANDRA_HOST_PORT USERSTREAM_POSTGRES_HOST_PORT \
  USERSTREAM_API_HOST_PORT USERSTREAM_JMX_HOST_PORT \
  USERSTREAM_LOG_LEVEL USERSTREAM_LOG_FORMAT POSTGRES_PASSWORD COMPOSE_FILE COMPOSE_PROJECT_NAME COMPOSE_PROFILES
if dc config -q 2>"$tmp/config.err"; then
  ok "docker-compose -f docker-compose.yml config -q"
else
  bad "docker-compose config -q: $(cat "$tmp/config.err")"
  finish
fi
if dc -f deploy/compose.jmx.yml config -q 2>"$tmp/config.err"; then
  ok "docker-compose -f docker-compose.yml -f deploy/compose.jmx.yml config -q"
else
  bad "the JMX override does not validate: $(cat "$tmp/config.err")"
fi
dc config >"$tmp/compose.yml" 2>"$tmp/config.err" ||
  { bad "docker-compose config: $(cat "$tmp/config.err")"; finish; }

# ---- 2. rules on the rendered file -------------------------------------------
if $PY deploy/check_deploy.py compose "$tmp/compose.yml"; then
  ok "compose rules: pinned images, memory, loopback ports, no JMX, one named-by-Compose network, healthchecks, producer profile, service names inside, scalable stream"
else
  bad "compose rules (above)"
fi
if $PY deploy/check_deploy.py selftest "$tmp/compose.yml" >"$tmp/selftest.out"; then
  ok "compose rules reject $(wc -l <"$tmp/selftest.out") deliberately broken copies, each by its own rule"
else
  bad "compose rule self-test (above)"
fi
if $PY deploy/check_deploy.py source docker-compose.yml 2>"$tmp/source.err"; then
  ok "source rules: no password default (render without one fails), every host port and the bind address a variable, advertised port follows, JMX override on loopback"
  sed 's/^/     /' "$tmp/source.err"
else
  bad "source rules: $(cat "$tmp/source.err")"
fi
if $PY deploy/check_deploy.py source-selftest docker-compose.yml >"$tmp/sselftest.out"; then
  ok "source rules reject the old form of each item ($(wc -l <"$tmp/sselftest.out") rendered copies):"
  sed 's/^source-selftest: rejects /     /; s/ -> .*//' "$tmp/sselftest.out"
else
  bad "source self-test (above)"
fi
# The sink and source are variables: switching them must keep the file valid.
if USERSTREAM_SINK='postgres://userstream:secret@postgres:5432/userstream?sslmode=disable' \
  USERSTREAM_SOURCE='https://randomuser.me/api/' dc config >"$tmp/pg.yml" 2>"$tmp/config.err" &&
  grep -q 'postgres://userstream:secret@postgres:5432/userstream' "$tmp/pg.yml" &&
  grep -q 'https://randomuser.me/api/' "$tmp/pg.yml" &&
  $PY deploy/check_deploy.py compose "$tmp/pg.yml"; then
  ok "USERSTREAM_SINK=postgres://... and USERSTREAM_SOURCE=https://randomuser.me/api/ reach the commands and keep the rules"
else
  bad "switching sink/source by variable: $(cat "$tmp/config.err")"
fi

# ---- 4 (no binary needed). the smoke test and the pinning script, against a
# stand-in docker that logs each call and answers as a healthy stack would.
stub=$tmp/stubbin
mkdir -p "$stub"
cat >"$stub/docker" <<'STUB'
#!/usr/bin/env bash
# Stand-in for docker: logs its argv (shell-quoted, one call a line).
printf '%q ' "$@" >>"$STUB_LOG"
printf '\n' >>"$STUB_LOG"
args=" $* "
case "$args" in
  " compose version --short ") echo "2.31.0" ;;
  *" up --help "*) echo "      --wait-timeout int   Maximum duration to wait for the project to be running|healthy" ;;
  *" exec -T cassandra cqlsh "*) printf '\n count\n-------\n %s\n\n(1 rows)\n' "$STUB_USERS" ;;
  *" exec -T postgres psql "*) echo "$STUB_USERS" ;;
  *" users count "*) echo "$STUB_USERS" ;;
  *" buildx version "*) echo "github.com/docker/buildx v0.19.0" ;;
  *" buildx imagetools inspect "*)
    ref=${*: -1}
    want=$(awk -v r="$ref" '$1 == r { print $2 }' "$STUB_LOCK")
    case $want in
      sha256:*) d=$want ;;
      *) d=sha256:$(printf '%s' "$ref" | sha256sum | cut -d' ' -f1) ;;
    esac
    printf 'Name:      docker.io/%s\nMediaType: application/vnd.oci.image.index.v1+json\nDigest:    %s\n' "$ref" "$d"
    ;;
esac
exit 0
STUB
chmod +x "$stub/docker"

: >"$tmp/smoke.log"
if bash -n scripts/compose-smoke.sh &&
  PATH="$stub:$PATH" STUB_LOG="$tmp/smoke.log" STUB_USERS=10000 SMOKE_TIMEOUT=30 \
    bash scripts/compose-smoke.sh >"$tmp/smoke.out" 2>&1 &&
  grep -q 'compose-smoke: ok: 10000 users in Cassandra and in PostgreSQL' "$tmp/smoke.out"; then
  ok "scripts/compose-smoke.sh runs to its end against a stand-in docker ($(wc -l <"$tmp/smoke.log") docker calls)"
else
  bad "scripts/compose-smoke.sh against a stand-in docker: $(tail -n 15 "$tmp/smoke.out")"
fi
# The calls it made: up --wait with a build, the producer through its profile
# with --users 10000, counts in both databases, and down -v last.
if $PY deploy/check_deploy.py smoke-calls "$tmp/smoke.log" >"$tmp/smoke-cmds" 2>"$tmp/smoke-check.err"; then
  ok "compose-smoke issues up --build --wait, the producer by profile with --users 10000, cqlsh and psql counts, down -v last"
else
  bad "compose-smoke's calls: $(cat "$tmp/smoke-check.err")"
fi

# pin-digests.sh on a copy: fills in the unverified digests, leaves the
# verified ones, and the copy then passes the rules with no tag-only image.
pin=$tmp/pin
mkdir -p "$pin/deploy"
cp docker-compose.yml Dockerfile "$pin/" && find deploy -maxdepth 1 -type f -exec cp {} "$pin/deploy/" \;
if bash -n deploy/pin-digests.sh &&
  PATH="$stub:$PATH" STUB_LOG="$tmp/pin.log" STUB_LOCK=deploy/images.lock PIN_ROOT="$pin" \
    bash deploy/pin-digests.sh --write >"$tmp/pin.out" 2>&1 &&
  ! grep -v '^#' "$pin/deploy/images.lock" | grep -q unverified &&
  cmp -s <(grep -v '^#' deploy/images.lock | grep -v unverified) <(grep -v '^#' "$pin/deploy/images.lock" | grep -v 'imagetools inspect') &&
  $PY "$pin/deploy/check_deploy.py" source "$pin/docker-compose.yml" 2>"$tmp/pin.err" &&
  ! grep -q 'pinned by tag only' "$tmp/pin.err" &&
  $PY "$pin/deploy/check_deploy.py" dockerfile "$pin/Dockerfile" >/dev/null; then
  ok "deploy/pin-digests.sh --write pins $(grep -c '^pin ' "$tmp/pin.out") unverified images in lock and compose file, keeps the verified pins, and the result passes every rule"
else
  bad "deploy/pin-digests.sh against a stand-in docker: $(tail -n 10 "$tmp/pin.out") $(cat "$tmp/pin.err" 2>/dev/null)"
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

# The build stage copies only some paths of the context (not a .env with
# passwords): every package of this module that ./cmd/userstream needs, and
# the files it embeds, must lie under them, or the image would not build
# while the build here (in the whole tree) still would.
mapfile -t copied < <($PY deploy/check_deploy.py build-sources Dockerfile)
missing=()
while IFS= read -r dir; do
  rel=${dir#"$PWD"/}
  inside=false
  for c in "${copied[@]}"; do
    c=${c%/}
    case "$rel" in "$c" | "$c"/*) inside=true ;; esac
  done
  $inside || missing+=("$rel")
done < <(go list -deps -f '{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}' ./cmd/userstream 2>/dev/null)
if [ ${#copied[@]} -gt 0 ] && [ ${#missing[@]} -eq 0 ]; then
  ok "the build stage copies ${copied[*]}: every package ./cmd/userstream needs is inside"
else
  bad "the build stage copies ${copied[*]:-nothing}, but ./cmd/userstream also needs: ${missing[*]}"
fi

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

# Every subcommand and flag that the compose file (and compose-smoke.sh, above)
# passes to our image exists.
$PY deploy/check_deploy.py commands "$tmp/compose.yml" >"$tmp/cmds"
cat "$tmp/smoke-cmds" >>"$tmp/cmds" 2>/dev/null
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
