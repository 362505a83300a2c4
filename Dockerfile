# syntax=docker/dockerfile:1
# userstream: one static, non-root image for every role of the pipeline
# (api, produce, stream, topics, users, scheduler). See docs/deploy.md.
#
#   docker build -t userstream:dev .
#   docker run --rm userstream:dev --help
#
# The first line above is a parser directive and must stay the very first
# line: it makes BuildKit use the current Dockerfile 1.x frontend, which
# understands RUN --mount. RUN --mount needs BuildKit: the default builder of
# `docker build` since Docker 23 and of `docker compose build` (Compose v2).
# The classic builder, which docker-compose v1 uses unless told otherwise,
# cannot build this file; with v1 set DOCKER_BUILDKIT=1
# COMPOSE_DOCKER_CLI_BUILD=1 (docs/deploy.md, "Compose v2").
#
# Both base images are pinned by tag and by digest (deploy/images.lock says
# where each digest was read); the digests are multi-platform index digests,
# so --platform still selects the architecture.
#
# scripts/check-deploy.sh reads the `go build` instruction below and runs it
# as written (only /out becomes a temporary directory), so the binary it
# checks is the one this file would copy into the image. Keep that command on
# the RUN line that contains `go build`.

# ---- build stage: the Go toolchain the module asks for (go.mod: go 1.26.8)
FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm@sha256:f4191582e1522dfc5980a6bdc0309a756f9697f3e7d0f199c7e26fc82ab324fd AS build
WORKDIR /src

# Dependencies first, so a change in the sources does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

# Only the binary's sources, not the whole directory: scripts/check-deploy.sh
# checks that every package of this module that ./cmd/userstream needs lies
# under these two. So a .env file beside docker-compose.yml (passwords) never
# enters a build layer or the build cache.
COPY cmd ./cmd
COPY internal ./internal
# Cross-compiles for the target platform (docker buildx build --platform ...)
# without emulation: CGO is off, so the result is one static binary. BuildKit
# sets TARGETOS and TARGETARCH for every build.
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags='-s -w' -o /out/userstream ./cmd/userstream
# The data directory of the final image, made here because the final image has
# no shell: SQLite sinks, the embedded broker's log and run metadata go there.
RUN mkdir -p /out/data

# ---- final stage: no shell, no package manager, CA certificates and tzdata
# included (randomuser.me is reached over HTTPS), user nonroot (65532).
# Debian 13: the debian12 images end with Debian 12's support (September 2026).
# `nonroot` is a moving tag, so it is only ever used with its digest.
FROM gcr.io/distroless/static-debian13:nonroot@sha256:e2e927ec666bae08560abb3c55d0659eceabb657f56b6782ab500a9fc7f555e3

ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="userstream" \
      org.opencontainers.image.description="Realtime user-data pipeline: Random User API -> Kafka users_created -> stream -> Cassandra, PostgreSQL or SQLite, in one static Go binary" \
      org.opencontainers.image.source="https://github.com/userstream/userstream" \
      org.opencontainers.image.url="https://github.com/userstream/userstream" \
      org.opencontainers.image.documentation="https://github.com/userstream/userstream/blob/main/docs/deploy.md" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian13:nonroot" \
      org.opencontainers.image.base.digest="sha256:e2e927ec666bae08560abb3c55d0659eceabb657f56b6782ab500a9fc7f555e3"

COPY --from=build /out/userstream /userstream
COPY --from=build --chown=65532:65532 /out/data /data

USER 65532:65532
WORKDIR /data
VOLUME ["/data"]

# 8088 `userstream api` (Random User API v1.4 at /api/)
# 9102 `userstream stream` Prometheus /metrics and /healthz (--metrics-addr)
# 8080 `userstream web` / `userstream scheduler` UI
EXPOSE 8088 9102 8080

ENTRYPOINT ["/userstream"]
CMD ["--help"]
