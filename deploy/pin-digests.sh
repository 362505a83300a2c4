#!/usr/bin/env bash
# Checks the digests of deploy/images.lock against the registries, and fills
# in the ones marked "unverified". Needs Docker with buildx (any Docker
# Desktop, or docker-ce with docker-buildx-plugin) and access to Docker Hub
# and gcr.io; the development machines have neither, which is why the lock
# names where each digest was read.
#
#   deploy/pin-digests.sh            # check only: exit 1 if anything is unverified or moved
#   deploy/pin-digests.sh --write    # also pin every unverified image: its digest goes into
#                                    # deploy/images.lock, docker-compose.yml and the Dockerfile
#
# A digest already in the lock is never changed: when a tag has moved since
# (a rebuilt image), this reports it and leaves the pin alone; re-pinning is a
# deliberate edit. Afterwards run scripts/check-deploy.sh and commit the three
# files. PIN_ROOT=DIR works on a copy of the repository instead.
set -euo pipefail
root=${PIN_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
lock=$root/deploy/images.lock
write=false
case "${1:-}" in
  --write) write=true ;;
  "" | --check) ;;
  *) echo "usage: $0 [--check | --write]" >&2; exit 2 ;;
esac
command -v docker >/dev/null || { echo "pin-digests: no docker command" >&2; exit 1; }
docker buildx version >/dev/null 2>&1 || { echo "pin-digests: needs docker buildx (imagetools)" >&2; exit 1; }

# The index digest of a reference: what `docker pull REF` resolves first.
resolve() {
  docker buildx imagetools inspect "$1" 2>/dev/null | awk '$1 == "Digest:" { print $2; exit }'
}

status=0
today=$(date -u +%Y-%m-%d)
tmp=$(mktemp "$lock.XXXXXX")
trap 'rm -f "$tmp"' EXIT
while IFS= read -r line; do
  case "$line" in
    "" | "#"*) printf '%s\n' "$line" >>"$tmp"; continue ;;
  esac
  read -r ref pinned _source <<<"$line"
  got=$(resolve "$ref" || true)
  if ! [[ $got =~ ^sha256:[0-9a-f]{64}$ ]]; then
    echo "FAIL $ref: no digest from the registry (does the tag exist?)" >&2
    status=1
    printf '%s\n' "$line" >>"$tmp"
    continue
  fi
  if [ "$pinned" = unverified ]; then
    if $write; then
      echo "pin  $ref@$got"
      printf '%-48s %s  %s\n' "$ref" "$got" "docker buildx imagetools inspect, $today" >>"$tmp"
      # image: REF (compose) and FROM [--platform=...] REF (Dockerfile), only
      # where REF carries no digest yet.
      esc=$(printf '%s' "$ref" | sed 's/[.[\*^$|+?(){}]/\\&/g')
      sed -i -E "s|^([[:space:]]*image:[[:space:]]*)$esc[[:space:]]*\$|\1$ref@$got|" "$root/docker-compose.yml"
      sed -i -E "s|^(FROM([[:space:]]+--[^[:space:]]+)*[[:space:]]+)$esc([[:space:]].*)?\$|\1$ref@$got\3|" "$root/Dockerfile"
      continue
    fi
    echo "todo $ref: unverified; the registry says $got (run with --write to pin it)"
    status=1
  elif [ "$pinned" = "$got" ]; then
    echo "ok   $ref@$got"
  else
    echo "moved $ref: pinned $pinned, the tag now points to $got (pin left as it is)" >&2
    status=1
  fi
  printf '%s\n' "$line" >>"$tmp"
done <"$lock"
if $write; then
  cat "$tmp" >"$lock"
fi
exit "$status"
