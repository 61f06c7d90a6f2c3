#!/usr/bin/env bash
# `make test-containers`: a real Docker engine, a locally built CPU image, and the pipeline with
# each step in its own container (pytest -m containers). Stops the engine it started, by PID.
#
# Cache (reused across runs; DEEPSYNTH_CONTAINER_CACHE, default ~/.cache/deepsynth-containers):
# Debian root file system tarball, wheelhouse, the engine's data root (images and layers).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${DEEPSYNTH_CONTAINER_CACHE:-$HOME/.cache/deepsynth-containers}
START=$(date +%s)
say() { echo "[test-containers +$(( $(date +%s) - START ))s] $*"; }
die() { echo "test-containers: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (it installs packages and runs dockerd); this machine runs as uid $(id -u)"
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v pg_ctl >/dev/null || [ -x /usr/lib/postgresql/15/bin/pg_ctl ] || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} (apt-get)"
  command -v apt-get >/dev/null || die "no apt-get: install ${missing[*]} by hand"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >"${TMPDIR:-/tmp}/test-containers-apt.log" 2>&1 || { tail -20 "${TMPDIR:-/tmp}/test-containers-apt.log" >&2; die "apt-get install ${missing[*]} failed"; }
fi

mkdir -p "$CACHE"
ENGINE_OUT=$(docker/engine.sh start "$CACHE") || die "could not start a Docker engine (see above); this machine cannot run the container tests"
eval "$ENGINE_OUT"
export DOCKER_HOST
# Stop the engine only if this run started it (by the PID file it wrote).
[ "${DEEPSYNTH_ENGINE_STARTED:-0}" = 1 ] && trap 'docker/engine.sh stop "$CACHE"' EXIT
say "engine up at $DOCKER_HOST"

docker/build-cpu-image.sh "$CACHE"
say "CPU image ready"

.venv/bin/python -m pytest -q -m containers tests/containers "$@"
say "done"
