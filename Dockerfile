# syntax=docker/dockerfile:1
#
# stund container image: static stund and stuncheck binaries on a distroless,
# non-root base. Two targets:
#
#   docker build -t ghcr.io/stund/stund:0.1.0 --build-arg VERSION=0.1.0 .
#   docker build -t ghcr.io/stund/stund:0.1.0-debug --build-arg VERSION=0.1.0 --target debug .
#
# The default (last) target has no shell. The debug target adds busybox
# (/busybox/sh); the chart's `helm test` pod uses it to explain stuncheck's
# result. Multi-arch: docker buildx build --platform linux/amd64,linux/arm64 …
#
# Without an engine, `make image` writes the same images as docker-archive
# tarballs (docs/development.md#container-images): tools/image/images.json
# describes them, and internal/imagetest keeps this file and that
# description equal.
#
# Reproducible: the Go toolchain is pinned by GO_VERSION (pin the base images by
# digest in CI), the module graph by go.sum, and -trimpath and -buildvcs=false
# keep paths and VCS state out of the binaries.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -ldflags="-s -w -X main.version=${VERSION}" -o /out/ ./cmd/stund ./cmd/stuncheck

# Same binaries plus busybox, for the helm test hook and for debugging.
FROM gcr.io/distroless/static-debian12:debug-nonroot AS debug
ARG VERSION=dev
LABEL org.opencontainers.image.title="stund" \
      org.opencontainers.image.description="STUN Binding server that keeps the client's source IP behind Kubernetes load balancers" \
      org.opencontainers.image.source="https://github.com/stund/stund" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/stund /out/stuncheck /
USER 65532:65532
EXPOSE 3478/udp 3478/tcp 9478/tcp
ENTRYPOINT ["/stund"]

# The default image: nothing but the two binaries, CA certificates and tzdata.
FROM gcr.io/distroless/static-debian12:nonroot AS runtime
ARG VERSION=dev
LABEL org.opencontainers.image.title="stund" \
      org.opencontainers.image.description="STUN Binding server that keeps the client's source IP behind Kubernetes load balancers" \
      org.opencontainers.image.source="https://github.com/stund/stund" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/stund /out/stuncheck /
USER 65532:65532
EXPOSE 3478/udp 3478/tcp 9478/tcp
ENTRYPOINT ["/stund"]
