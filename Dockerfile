# userstream: one static, non-root image for every role of the pipeline
# (api, produce, stream, topics, users, scheduler). See docs/deploy.md.
#
#   docker build -t userstream:dev .
#   docker run --rm userstream:dev --help
#
# RUN --mount needs BuildKit, the default builder since Docker 23 and the
# one `docker compose build` uses.
#
# scripts/check-deploy.sh reads the `go build` instruction below and runs it
# as written (only /out becomes a temporary directory), so the binary it
# checks is the one this file would copy into the image. Keep that command on
# the RUN line that contains `go build`.

# ---- build stage: the Go toolchain the module asks for (go.mod: go 1.26.8)
FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm AS build
WORKDIR /src

# Dependencies first, so a change in the sources does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
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
FROM gcr.io/distroless/static-debian12:nonroot

ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="userstream" \
      org.opencontainers.image.description="Realtime user-data pipeline: Random User API -> Kafka users_created -> stream -> Cassandra, PostgreSQL or SQLite, in one static Go binary" \
      org.opencontainers.image.source="https://github.com/userstream/userstream" \
      org.opencontainers.image.url="https://github.com/userstream/userstream" \
      org.opencontainers.image.documentation="https://github.com/userstream/userstream/blob/main/docs/deploy.md" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot"

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
