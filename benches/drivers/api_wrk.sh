#!/usr/bin/env bash
# Load on the control plane with wrk (Debian's `wrk`): a read endpoint, a write endpoint and
# `/health` (the floor: routing and HTTP only, no auth, no database) in ONE run against one
# release `artel up`, so the ratios compare like with like on a noisy shared machine.
#
#   bash benches/drivers/api_wrk.sh            # 10 s per endpoint, 64 connections
#   DURATION=30s CONNECTIONS=128 POOL=24 bash benches/drivers/api_wrk.sh   # POOL: Postgres connections
#
# Needs the test services (`. .ci/services.sh`) and a release build (it builds one).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
PORT=${PORT:-18480}
TAG=wrk
# shellcheck source=lib.sh
. benches/drivers/lib.sh

command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
cargo build --release -q -p artel
LUA=$(mktemp /tmp/artel-wrk-XXXXXX.lua)
CLEANUP_FILES+=("$LUA")
start_artel ARTEL_DATABASE__MAX_CONNECTIONS="${POOL:-10}"
AUTH="Authorization: Bearer $KEY"
curl -sf -XPOST -H "$AUTH" -H 'content-type: application/json' \
  -d '{"name":"bench","description":"a project to read"}' "$URL/api/v1/projects" >/dev/null

cat > "$LUA" <<LUA
local n = 0
request = function()
  n = n + 1
  return wrk.format("PUT", "/api/v1/projects/bench/secrets/K" .. (n % 5000),
    {["Authorization"] = "Bearer $KEY", ["Content-Type"] = "application/json"},
    '{"value":"v' .. n .. '"}')
end
LUA

run() { # name, wrk args...
  local name=$1; shift
  echo "== $name"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" | \
    grep -E 'Requests/sec|Latency  |50%|99%|Non-2xx|Socket errors'
}
run "floor: GET /health" "$URL/health"
run "read, no database: GET /api/v1/tree (auth + rate limit + tree snapshot)" -H "$AUTH" \
  "$URL/api/v1/tree"
run "read: GET /api/v1/projects/bench (auth + rate limit + one SELECT)" -H "$AUTH" \
  "$URL/api/v1/projects/bench"
run "write: PUT /api/v1/projects/bench/secrets/K<n> (auth + encrypt + upsert)" -s "$LUA" "$URL"
echo "machine: $(nproc) cores; wrk shares them with artel and PostgreSQL"
