#!/usr/bin/env bash
# MLflow tracking server recipe: PostgreSQL backend store, an artifact root, basic auth, allowed hosts.
#
# Usage: docker/mlflow-server/mlflow-server.sh start STATE_DIR   (prints `export MLFLOW_TRACKING_URI=…` and the admin credentials)
#        docker/mlflow-server/mlflow-server.sh stop  STATE_DIR   (stops the server and the PostgreSQL it started, by PID)
# Settings (environment):
#   MLFLOW_PORT (5055)            port on MLFLOW_HOST (127.0.0.1: loopback only unless you put TLS in front)
#   MLFLOW_ALLOWED_HOSTS          --allowed-hosts (default: 127.0.0.1:PORT,localhost:PORT)
#   MLFLOW_ARTIFACTS_DESTINATION  artifact root (default STATE_DIR/artifacts; s3://…/gs://… in production)
#   MLFLOW_BACKEND_STORE_URI      an existing PostgreSQL (postgresql://user:pass@host/db); unset = a private
#                                 cluster under STATE_DIR on PG_PORT (5439) started with the Debian package's binaries
#   MLFLOW_ADMIN_PASSWORD         basic-auth admin password (default: generated, kept in STATE_DIR/admin-password)
# Clients authenticate with MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (in a ZenML secret:
# configs/stacks/k8s-gpu-s3.yaml). A SQLite backend is refused: schedules and CI share this server.
set -euo pipefail

ACTION=${1:?usage: mlflow-server.sh start|stop STATE_DIR}
STATE=$(mkdir -p "${2:?usage: mlflow-server.sh start|stop STATE_DIR}" && cd "$2" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
HOST=${MLFLOW_HOST:-127.0.0.1}
PORT=${MLFLOW_PORT:-5055}
PG_PORT=${PG_PORT:-5439}
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
die() { echo "mlflow-server: $*" >&2; exit 1; }

pg_as() {  # run a PostgreSQL binary as the unprivileged `postgres` user when we are root
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  [ -x "$PGBIN/pg_ctl" ] || die "PostgreSQL binaries not found (apt-get install postgresql, or set MLFLOW_BACKEND_STORE_URI)"
  local data=$STATE/pgdata
  if [ ! -s "$data/PG_VERSION" ]; then
    mkdir -p "$data"; [ "$(id -u)" = 0 ] && chown postgres:postgres "$data" "$STATE"
    pg_as "$PGBIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >"$STATE/initdb.log" 2>&1 || { cat "$STATE/initdb.log" >&2; die "initdb failed"; }
  fi
  mkdir -p "$STATE/pgsock"; [ "$(id -u)" = 0 ] && chown postgres:postgres "$STATE/pgsock"
  if ! pg_as "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    pg_as "$PGBIN/pg_ctl" -D "$data" -w -t 60 -l "$STATE/postgres.log" \
      -o "-p $PG_PORT -k $STATE/pgsock -c listen_addresses=127.0.0.1" start >/dev/null \
      || { tail -20 "$STATE/postgres.log" >&2; die "PostgreSQL did not start"; }
  fi
  pg_as "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='mlflow'" | grep -q 1 \
    || pg_as "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE mlflow" \
    || die "could not create database mlflow"
  echo "postgresql://postgres@127.0.0.1:$PG_PORT/mlflow"
}

case "$ACTION" in
start)
  BACKEND=${MLFLOW_BACKEND_STORE_URI:-}
  [ -n "$BACKEND" ] || BACKEND=$(start_postgres)
  case "$BACKEND" in postgresql*) ;; *) die "backend store must be PostgreSQL, got ${BACKEND%%:*}:… (SQLite/file stores are refused)";; esac
  ARTIFACTS=${MLFLOW_ARTIFACTS_DESTINATION:-$STATE/artifacts}
  mkdir -p "$STATE/logs"
  PASSFILE=$STATE/admin-password
  [ -s "$PASSFILE" ] || { (umask 077; printf '%s' "${MLFLOW_ADMIN_PASSWORD:-$("$PY" -c 'import secrets;print(secrets.token_urlsafe(18))')}" >"$PASSFILE"); }
  # Basic auth: the auth app keeps its users in the same PostgreSQL (own tables); the admin is created on first start.
  cat >"$STATE/basic_auth.ini" <<INI
[mlflow]
default_permission = READ
database_uri = $BACKEND
admin_username = admin
admin_password = $(cat "$PASSFILE")
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
  chmod 600 "$STATE/basic_auth.ini"
  if [ -f "$STATE/mlflow.pid" ] && kill -0 "$(cat "$STATE/mlflow.pid")" 2>/dev/null; then
    echo "mlflow-server: already running (pid $(cat "$STATE/mlflow.pid"))" >&2
  else
    SECRET=$STATE/flask-secret   # CSRF key of the auth app: stable across restarts and workers
    [ -s "$SECRET" ] || { (umask 077; "$PY" -c 'import secrets;print(secrets.token_hex(32))' >"$SECRET"); }
    MLFLOW_FLASK_SERVER_SECRET_KEY=$(cat "$SECRET") \
    MLFLOW_AUTH_CONFIG_PATH=$STATE/basic_auth.ini MLFLOW_DISABLE_TELEMETRY=true \
    nohup "$PY" -m mlflow server --app-name basic-auth \
      --backend-store-uri "$BACKEND" --artifacts-destination "$ARTIFACTS" --serve-artifacts \
      --host "$HOST" --port "$PORT" --workers "${MLFLOW_WORKERS:-1}" \
      --allowed-hosts "${MLFLOW_ALLOWED_HOSTS:-127.0.0.1:$PORT,localhost:$PORT}" \
      >"$STATE/logs/mlflow.log" 2>&1 &
    echo $! >"$STATE/mlflow.pid"
    for _ in $(seq 1 120); do
      "$PY" -c "import urllib.request,sys; urllib.request.urlopen('http://$HOST:$PORT/health', timeout=2)" 2>/dev/null && break
      kill -0 "$(cat "$STATE/mlflow.pid")" 2>/dev/null || { tail -30 "$STATE/logs/mlflow.log" >&2; die "mlflow server exited during start-up"; }
      sleep 1
    done
    "$PY" -c "import urllib.request; urllib.request.urlopen('http://$HOST:$PORT/health', timeout=2)" 2>/dev/null \
      || { tail -30 "$STATE/logs/mlflow.log" >&2; die "mlflow server did not answer /health within 120 s"; }
  fi
  echo "export MLFLOW_TRACKING_URI=http://$HOST:$PORT"
  echo "export MLFLOW_TRACKING_USERNAME=admin"
  echo "export MLFLOW_TRACKING_PASSWORD=$(cat "$PASSFILE")"
  ;;
stop)
  if [ -f "$STATE/mlflow.pid" ]; then
    pid=$(cat "$STATE/mlflow.pid")
    if kill -0 "$pid" 2>/dev/null; then
      pkill -TERM -P "$pid" 2>/dev/null || true   # gunicorn/uvicorn workers of this server only
      kill "$pid"
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$STATE/mlflow.pid"
  fi
  if [ -s "$STATE/pgdata/PG_VERSION" ] && [ -z "${MLFLOW_BACKEND_STORE_URI:-}" ]; then
    pg_as "$PGBIN/pg_ctl" -D "$STATE/pgdata" -m fast stop >/dev/null 2>&1 || true
  fi
  ;;
*) die "unknown action $ACTION (start|stop)" ;;
esac
