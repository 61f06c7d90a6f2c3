#!/usr/bin/env bash
# Build a wheelhouse of the project's pinned dependency set on the host, for images built without
# network access (and for air-gapped clusters): `pip install --no-index --find-links` inside the image.
#
# Usage: docker/build-wheelhouse.sh OUT_DIR [EXTRA_REQUIREMENT ...]
#   One source of truth: pyproject.toml's dependencies and [pipelines] extra, constrained by requirements.lock;
#   torch==2.13.0 is the CPU wheel this machine's pip configuration finds. The folder is reused
#   while requirements.lock, pyproject.toml's dependency list and the extras are unchanged
#   (a stamp file records the key).
set -euo pipefail

OUT=${1:?usage: build-wheelhouse.sh OUT_DIR [EXTRA_REQUIREMENT ...]}
shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3

DEPS=$("$PYTHON" - "$ROOT/pyproject.toml" <<'PY'
import sys, tomllib
print("\n".join((p := tomllib.load(open(sys.argv[1], "rb"))["project"])["dependencies"] + p["optional-dependencies"]["pipelines"]))
PY
)
KEY=$( { printf '%s\n' "$DEPS" "$@"; cat "$ROOT/requirements.lock"; } | sha256sum | cut -c1-16)
if [ -f "$OUT/.stamp" ] && [ "$(cat "$OUT/.stamp")" = "$KEY" ]; then
  echo "wheelhouse $OUT is up to date ($KEY, $(ls "$OUT"/*.whl | wc -l) wheels)"
  exit 0
fi

mkdir -p "$OUT"
rm -f "$OUT/.stamp"
REQS=$(mktemp)
trap 'rm -f "$REQS"' EXIT
printf '%s\n' "$DEPS" "$@" >"$REQS"
echo "building wheelhouse $OUT ($(grep -c . "$REQS") requirements, constrained by requirements.lock) …"
start=$(date +%s)
# pip wheel downloads wheels as they are and builds the few sdists; torch comes first from the
# local CPU wheel (find-links in this machine's pip configuration).
"$PYTHON" -m pip wheel --quiet --wheel-dir "$OUT" torch==2.13.0 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }
"$PYTHON" -m pip wheel --quiet --wheel-dir "$OUT" -c "$ROOT/requirements.lock" -r "$REQS" 2>&1 \
  | { grep -v "^WARNING: Location 'file:" || true; }
# Any CUDA runtime wheel here means the multi-GB CUDA torch slipped in: the CPU image must not carry it.
if ls "$OUT" | grep -q '^nvidia_'; then
  echo "build-wheelhouse: CUDA wheels (nvidia_*) in $OUT: torch must be the CPU build" >&2
  exit 1
fi
echo "$KEY" >"$OUT/.stamp"
echo "wheelhouse ready in $(( $(date +%s) - start )) s: $(ls "$OUT"/*.whl | wc -l) wheels, $(du -sh "$OUT" | cut -f1)"
