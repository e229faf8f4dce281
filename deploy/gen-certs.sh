#!/bin/sh
# Makes the example cluster's CA, certificates and secrets (see
# deploy/certs/main.go) with the Go toolchain:
#
#   deploy/gen-certs.sh -out certs -hosts 'node0,node1,node2,node3,localhost,127.0.0.1'
#   deploy/gen-certs.sh -out certs -hosts '*.dsync.default.svc.cluster.local,localhost,127.0.0.1'   # Kubernetes
#
# compose.yaml does the same in a container, without Go on the host.
set -eu
cd "$(dirname "$0")/.."
exec go run ./deploy/certs "$@"
