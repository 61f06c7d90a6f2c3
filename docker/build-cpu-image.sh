#!/usr/bin/env bash
# Build the CPU image offline: base image (debootstrap) + host wheelhouse + the project wheel.
#
# Usage: docker/build-cpu-image.sh CACHE_DIR [TAG]    (TAG default: deepsynth/cpu:<project version>)
# Needs DOCKER_HOST pointing at an engine (docker/engine.sh start). Layers are reused while
# requirements.lock and pyproject.toml's dependencies are unchanged; a code change rebuilds only the
# last layer.
set -euo pipefail

CACHE=${1:?usage: build-cpu-image.sh CACHE_DIR [TAG]}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
VERSION=$("$PYTHON" -c "import tomllib;print(tomllib.load(open('$ROOT/pyproject.toml','rb'))['project']['version'])")
TAG=${2:-deepsynth/cpu:$VERSION}
export DOCKER_BUILDKIT=0   # the preinstalled docker 28 client has no buildx here; the classic builder caches layers too

"$ROOT/docker/build-base-image.sh" "$CACHE"
"$ROOT/docker/build-wheelhouse.sh" "$CACHE/wheelhouse"

CTX="$CACHE/context-cpu"
rm -rf "$CTX" && mkdir -p "$CTX/dist"
cp -al "$CACHE/wheelhouse" "$CTX/wheelhouse" 2>/dev/null || cp -a "$CACHE/wheelhouse" "$CTX/wheelhouse"
rm -f "$CTX/wheelhouse/.stamp"
cp "$ROOT/requirements.lock" "$ROOT/docker/Dockerfile.cpu" "$CTX/"
"$PYTHON" -c "import tomllib;print('\n'.join((p:=tomllib.load(open('$ROOT/pyproject.toml','rb'))['project'])['dependencies']+p['optional-dependencies']['pipelines']))" >"$CTX/deps.txt"
# The project wheel (no dependencies: those come from the wheelhouse layer).
"$PYTHON" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$CTX/dist" "$ROOT" 2>&1 \
  | { grep -v "^WARNING: Location 'file:" || true; }
rm -rf "$ROOT/build"

start=$(date +%s)
docker build --quiet -f "$CTX/Dockerfile.cpu" -t "$TAG" "$CTX" >/dev/null \
  || { echo "build-cpu-image: docker build failed; rerun without --quiet: DOCKER_BUILDKIT=0 docker build -f $CTX/Dockerfile.cpu $CTX" >&2; exit 1; }
echo "built $TAG in $(( $(date +%s) - start )) s ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}'))"
