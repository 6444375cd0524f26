#!/usr/bin/env bash
# WebSocket fan-out: a release `artel up` with SUBSCRIBERS WebSocket clients (default 10,000)
# spread over PROJECTS projects (default 100), while RATE events per second (default 1,000)
# are appended through the API (notes), spread over the same projects; every delivery's
# latency from append to arrival. Client, server and PostgreSQL share the machine.
#
#   bash benches/drivers/ws_fanout.sh
#   SUBSCRIBERS=2000 PROJECTS=20 RATE=500 DURATION_SECS=10 bash benches/drivers/ws_fanout.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PORT=${PORT:-18481}
ADMIN=${ADMIN_DATABASE_URL:-postgres://postgres@127.0.0.1:54329/postgres}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/artel-target}
ulimit -n "$(ulimit -Hn)"   # 10k sockets on each side of loopback

cargo build --release -q -p artel
cargo build --release -q -p artel-benches --bin ws_fanout
DB="artel_bench_ws_$$"
psql -q "$ADMIN" -c "CREATE DATABASE $DB" >/dev/null
DATA=$(mktemp -d /tmp/artel-ws-XXXXXX)
chmod 755 "$DATA"
KEY="artel_$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')"
cleanup() {
  [[ -n "${PID:-}" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
  rm -rf "$DATA"
}
trap cleanup EXIT
DATABASE_URL="${ADMIN%/*}/$DB" ARTEL_DATA_DIR="$DATA" ARTEL_ADMIN_KEY="$KEY" ARTEL_WORKERS__RUNTIME=process \
  ARTEL_HTTP__LISTEN="127.0.0.1:$PORT" ARTEL_HTTP__RATE_LIMIT_PER_SEC=10000000 \
  ARTEL_HTTP__RATE_LIMIT_BURST=10000000 ARTEL_LOG=error \
  "$CARGO_TARGET_DIR/release/artel" up >/dev/null &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
ARTEL_URL="http://127.0.0.1:$PORT" ARTEL_KEY="$KEY" "$CARGO_TARGET_DIR/release/ws_fanout"
echo "server RSS after the run: $(ps -o rss= -p "$PID") KiB; machine: $(nproc) cores"
