#!/usr/bin/env bash
# What the load drivers share: a fresh database and data dir, an operator key, and a release
# `artel up` on $PORT (local workers, rate limits out of the way), stopped and cleaned up on
# exit. Source it after setting PORT (and TAG, a name for the temporary things); then
# `start_artel [extra VAR=value ...]` starts the server and sets PID, URL and KEY.
#
#   ADMIN_DATABASE_URL   the test Postgres (default: the one `.ci/services.sh` starts)
#   CARGO_TARGET_DIR     where the release build is (default: $HOME/.cache/artel-target)

ADMIN=${ADMIN_DATABASE_URL:-postgres://postgres@127.0.0.1:54329/postgres}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/artel-target}
DB="artel_bench_${TAG}_$$"
DATA=$(mktemp -d "/tmp/artel-$TAG-XXXXXX")
chmod 755 "$DATA"
KEY="artel_$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')"
URL="http://127.0.0.1:$PORT"
# Files a driver wants removed at exit.
CLEANUP_FILES=()

cleanup() {
  [[ -n "${PID:-}" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
  rm -rf "$DATA" "${CLEANUP_FILES[@]}"
}
trap cleanup EXIT

start_artel() {
  psql -q "$ADMIN" -c "CREATE DATABASE $DB" >/dev/null
  env DATABASE_URL="${ADMIN%/*}/$DB" ARTEL_DATA_DIR="$DATA" ARTEL_ADMIN_KEY="$KEY" \
    ARTEL_WORKERS__RUNTIME=process ARTEL_HTTP__LISTEN="127.0.0.1:$PORT" \
    ARTEL_HTTP__RATE_LIMIT_PER_SEC=10000000 ARTEL_HTTP__RATE_LIMIT_BURST=10000000 \
    ARTEL_LOG=error "$@" "$CARGO_TARGET_DIR/release/artel" up >/dev/null &
  PID=$!
  for _ in $(seq 100); do curl -sf "$URL/health" >/dev/null && break; sleep 0.1; done
}
