#!/usr/bin/env bash
# Start or stop a private Docker engine for the container tests (Debian's docker.io, run as root).
#
# Usage: docker/engine.sh start CACHE_DIR   → prints `export DOCKER_HOST=unix://…` (and whether it started one) on success
#        docker/engine.sh stop  CACHE_DIR   → stops the engine this script started (by its PID file)
# The engine keeps images and layers in CACHE_DIR/docker (reused across runs); containers get no
# network (--bridge=none), which is what air-gapped steps need anyway.
set -euo pipefail

ACTION=${1:?usage: engine.sh start|stop CACHE_DIR}
CACHE=${2:?usage: engine.sh start|stop CACHE_DIR}
RUN=${DEEPSYNTH_DOCKER_RUN:-/run/deepsynth-docker}   # short path: unix socket paths are limited
SOCK=$RUN/docker.sock
PIDFILE=$RUN/dockerd.pid
LOG=$CACHE/dockerd.log

die() { echo "engine: $*" >&2; exit 1; }

case "$ACTION" in
start)
  [ "$(id -u)" = 0 ] || die "dockerd must run as root here (uid $(id -u))"
  command -v dockerd >/dev/null || die "dockerd not found: install Debian's docker.io (apt-get install docker.io)"
  mkdir -p "$CACHE/docker" "$RUN/exec"
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "engine: already running (pid $(cat "$PIDFILE")); leaving it running afterwards" >&2
    echo "export DEEPSYNTH_ENGINE_STARTED=0"
  else
    rm -f "$SOCK" "$PIDFILE"
    # --host-gateway-ip: ZenML's local_docker orchestrator maps host.docker.internal to host-gateway,
    # which has no value without a bridge.
    nohup dockerd --data-root "$CACHE/docker" --exec-root "$RUN/exec" --pidfile "$PIDFILE" \
      -H "unix://$SOCK" --iptables=false --ip6tables=false --bridge=none --host-gateway-ip=127.0.0.1 \
      >"$LOG" 2>&1 &
    for _ in $(seq 1 60); do
      DOCKER_HOST=unix://$SOCK docker version >/dev/null 2>&1 && break
      kill -0 $! 2>/dev/null || { tail -20 "$LOG" >&2; die "dockerd exited during start-up (log: $LOG)"; }
      sleep 0.5
    done
    DOCKER_HOST=unix://$SOCK docker version >/dev/null 2>&1 || { tail -20 "$LOG" >&2; die "dockerd did not answer within 30 s (log: $LOG)"; }
    echo "engine: started (pid $(cat "$PIDFILE"), data root $CACHE/docker)" >&2
    echo "export DEEPSYNTH_ENGINE_STARTED=1"
  fi
  echo "export DOCKER_HOST=unix://$SOCK"
  ;;
stop)
  if [ -f "$PIDFILE" ]; then
    pid=$(cat "$PIDFILE")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && { echo "engine: dockerd $pid ignored SIGTERM for 20 s: SIGKILL" >&2; kill -9 "$pid"; }
      echo "engine: stopped (pid $pid)" >&2
    fi
    rm -f "$PIDFILE"
  fi
  ;;
*) die "unknown action $ACTION (start|stop)" ;;
esac
