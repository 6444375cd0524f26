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
TAG=ws
# shellcheck source=lib.sh
. benches/drivers/lib.sh
ulimit -n "$(ulimit -Hn)"   # 10k sockets on each side of loopback

cargo build --release -q -p artel
cargo build --release -q -p artel-benches --bin ws_fanout
start_artel
ARTEL_URL="$URL" ARTEL_KEY="$KEY" "$CARGO_TARGET_DIR/release/ws_fanout"
echo "server RSS after the run: $(ps -o rss= -p "$PID") KiB; machine: $(nproc) cores"
