#!/bin/sh
# Builds dsync-node and dsync exactly as the Dockerfile does: static
# (no cgo), trimmed paths, stripped, with the module version and the VCS
# revision stamped for -version. CI runs it and tests the binaries it makes
# (DSYNC_TEST_BIN_DIR), since CI has no Docker daemon.
#
#   deploy/build.sh [OUTDIR]     (default: bin)
set -eu
out=${1:-bin}
mkdir -p "$out"
# Stamp the VCS revision where git can read the repository (a clone, or a
# Docker context with .git); not elsewhere (a tarball, a git worktree whose
# repository is out of reach), where stamping would fail the build.
vcs=false
if git status --porcelain >/dev/null 2>&1; then
  vcs=auto
fi
CGO_ENABLED=0 go build -buildvcs=$vcs -trimpath -ldflags='-s -w' -o "$out/" ./cmd/dsync-node ./cmd/dsync
