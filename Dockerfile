# syntax=docker/dockerfile:1
#
# dsync-node and the dsync CLI in one small image: a static binary each,
# on distroless (no shell, no package manager), run as a non-root user.
#
#   docker build -t dsync:local .
#   docker run --rm dsync:local -h
#
# The build stage also holds the example certificate tool (/out/dsync-certs),
# which compose.yaml runs from it; the final image does not.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The same command CI runs to build the binaries it tests.
RUN sh deploy/build.sh /out \
 && CGO_ENABLED=0 go build -trimpath -o /out/dsync-certs ./deploy/certs \
 && mkdir -p /state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dsync-node /out/dsync /usr/local/bin/
# The boot record's directory, writable by the nonroot user (65532); mount
# a volume here so that a restarted node knows whether it held locks.
COPY --from=build --chown=65532:65532 /state /var/lib/dsync-node
USER 65532:65532
ENV DSYNC_LISTEN=0.0.0.0:9000 \
    DSYNC_OPS_LISTEN=0.0.0.0:9001 \
    DSYNC_STATE_DIR=/var/lib/dsync-node
EXPOSE 9000 9001
# 200 while the node serves (in its restart grace too); 503 once it drains.
HEALTHCHECK --interval=10s --timeout=6s --start-period=5s \
  CMD ["/usr/local/bin/dsync-node", "-check", "http://127.0.0.1:9001/readyz"]
VOLUME ["/var/lib/dsync-node"]
ENTRYPOINT ["/usr/local/bin/dsync-node"]
