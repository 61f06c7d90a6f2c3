#!/usr/bin/env bash
# Build the local base image deepsynth/python:3.11-bookworm without any registry:
# debootstrap a minimal Debian bookworm root file system (its python3 is 3.11) and `docker import` it.
#
# Usage: docker/build-base-image.sh CACHE_DIR [IMAGE]
#   CACHE_DIR  keeps the root file system tarball between runs (rebuilt only when this script changes)
#   IMAGE      tag to import as (default: deepsynth/python:3.11-bookworm)
# Needs: root, debootstrap, a reachable Debian mirror (DEBIAN_MIRROR, default deb.debian.org),
#        and DOCKER_HOST pointing at a running engine.
set -euo pipefail

CACHE=${1:?usage: build-base-image.sh CACHE_DIR [IMAGE]}
IMAGE=${2:-deepsynth/python:3.11-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
# fonts-noto-cjk and fonts-noto-core: the renderer's fallback fonts (CJK, Hebrew, Indic, math, symbols; see the Makefile)
PACKAGES=python3,python3-venv,ca-certificates,fonts-dejavu-core,fonts-noto-cjk,fonts-noto-core,tini
HERE=$(cd "$(dirname "$0")" && pwd)
# The tarball is keyed on this script's content: edit the package list and it is rebuilt.
KEY=$(sha256sum "$HERE/build-base-image.sh" | cut -c1-12)
TARBALL="$CACHE/rootfs-$SUITE-$KEY.tar"

die() { echo "build-base-image: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "debootstrap needs root"
command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
command -v docker >/dev/null || die "no docker client on PATH"

if docker image inspect "$IMAGE" >/dev/null 2>&1 \
   && [ "$(docker image inspect -f '{{index .Config.Labels "org.deepsynth.rootfs"}}' "$IMAGE")" = "$KEY" ]; then
  echo "base image $IMAGE is up to date (rootfs $KEY)"
  exit 0
fi

mkdir -p "$CACHE"
if [ ! -s "$TARBALL" ]; then
  ROOT=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  trap 'rm -rf "$ROOT"' EXIT
  echo "debootstrap $SUITE ($PACKAGES) from $MIRROR …"
  start=$(date +%s)
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOT" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -30 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (full log: $CACHE/debootstrap.log)"; }
  # Slim it: package lists, caches and docs are not needed at run time.
  rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb \
         "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/locale/*
  "$ROOT"/usr/bin/python3 --version >/dev/null 2>&1 || chroot "$ROOT" python3 --version
  tar -C "$ROOT" --numeric-owner -cf "$TARBALL.part" .
  mv "$TARBALL.part" "$TARBALL"
  echo "root file system ready in $(( $(date +%s) - start )) s: $TARBALL ($(du -h "$TARBALL" | cut -f1))"
fi

docker import \
  --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "LABEL org.deepsynth.rootfs=$KEY" \
  --change 'CMD ["/usr/bin/python3"]' \
  "$TARBALL" "$IMAGE" >/dev/null
echo "imported $IMAGE: $(docker run --rm --network none "$IMAGE" python3 --version)"
