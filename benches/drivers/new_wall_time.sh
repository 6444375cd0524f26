#!/usr/bin/env bash
# `artel new` wall time, cold and warm, with a breakdown per phase.
#
#   benches/drivers/new_wall_time.sh [path/to/artel]   (default: the release build)
#
# Cold: a fresh data dir and no DATABASE_URL, so the managed PostgreSQL is initdb'd and
# started, migrations run, and the whole job goes from the request to a live URL. Warm: the
# same again on that data dir (the cluster exists). The breakdown comes from the events
# `--json` prints: start-up (process start → first event: Postgres, migrations, the tree),
# then every step from its `step_started` to its `step_succeeded`. Workers are local processes
# unless ARTEL_WORKERS__RUNTIME says otherwise (`docker` times the container path).
set -euo pipefail
artel=${1:-${CARGO_TARGET_DIR:-target}/release/artel}
[ -x "$artel" ] || { echo "no artel binary at $artel: cargo build --release -p artel" >&2; exit 2; }
dir=$(mktemp -d /tmp/artel-wall-XXXXXX)
chmod 755 "$dir"
owner="artel-wall-$$"
cleanup() {
  runuser -u postgres -- /usr/lib/postgresql/*/bin/pg_ctl -D "$dir/data/postgres/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  # With Docker: the service containers (kept stopped for a restart), their images, volumes.
  if command -v docker >/dev/null; then
    for c in $(docker ps -aq --filter "label=artel-owner=$owner" 2>/dev/null); do
      project=$(docker inspect -f '{{index .Config.Labels "artel-project"}}' "$c")
      docker rm -f "$c" >/dev/null
      docker images -q --filter "label=artel-project=$project" | xargs -r docker rmi -f --no-prune >/dev/null
      docker volume rm -f "artel-data-$project" >/dev/null 2>&1 || true
    done
  fi
}
trap cleanup EXIT

run() {
  local label=$1
  local start end
  start=$(date +%s.%N)
  env -u DATABASE_URL -u REDIS_URL ARTEL_DATA_DIR="$dir/data" ARTEL_LOG=off \
    ARTEL_DEPLOY__FIRST_PORT=25000 ARTEL_DEPLOY__LAST_PORT=25099 \
    ARTEL_WORKERS__FIRST_UID=2310000000 ARTEL_WORKERS__UID_COUNT=1000 \
    ARTEL_WORKERS__RUNTIME="${ARTEL_WORKERS__RUNTIME:-process}" ARTEL_INSTANCE="$owner" \
    "$artel" new "A URL shortener with a REST API" --json --exit-when-done \
    < /dev/null > "$dir/$label.jsonl"
  end=$(date +%s.%N)
  python3 - "$label" "$start" "$end" "$dir/$label.jsonl" <<'PY'
import datetime, json, sys
label, start, end, path = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
events = [json.loads(l) for l in open(path) if l.strip()]
at = lambda e: datetime.datetime.fromisoformat(e["at"].replace("Z", "+00:00")).timestamp()
first = at(events[0])
print(f"{label}: {end - start:.2f} s wall, request to live URL")
print(f"  start-up (postgres, migrations, tree)  {first - start:6.2f} s")
kinds = {}
for e in events:
    if e["kind"] == "task_created":
        kinds[e["task"]] = e["payload"]["task_kind"]
open_steps = {}
for e in events:
    key = (e["task"], e["payload"].get("step"))
    if e["kind"] == "step_started":
        open_steps[key] = at(e)
    elif e["kind"] == "step_succeeded" and key in open_steps:
        name = f'{kinds.get(e["task"], "?")} › {key[1]}'
        print(f"  {name:38} {at(e) - open_steps.pop(key):6.2f} s")
live = [e for e in events if e["kind"] == "deploy_succeeded"]
# `--exit-when-done` stops at `deploy_succeeded`, before the health check's step is closed.
for (task, step), began in open_steps.items():
    if live:
        name = f'{kinds.get(task, "?")} › {step} (to live)'
        print(f"  {name:38} {at(live[0]) - began:6.2f} s")
if live:
    print(f"  first event → live                     {at(live[0]) - first:6.2f} s")
    print(f"  exit after live (stop service, tree, postgres) {end - at(live[-1]):.2f} s")
PY
}

run cold
run warm
